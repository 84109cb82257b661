"""The simulator's wire side: MQTT payloads, contract-breaking garbage, replay files.

Readings become telemetry payloads exactly as the contract says
(``{"batch": [{"ts": …, "seq": …, "metrics": {…}}]}`` on
``forewarn/v1/{tenant}/{device}/telemetry``). Garbage — malformed JSON, NaN, out-of-range
values, unknown metrics, timestamps in the future — is made only here, at the payload
layer, each message labelled with the reject reason the edge must give it, so the clean
reading stream stays intact for evaluation.

A replay file has one line per MQTT message, in send order:
``{"topic": …, "ts": <simulated send time, epoch ms>, "payload": <the JSON object, or the
raw text for garbage>, "reject": <expected reason, garbage only>}``; the fleet's customers,
devices (with their profile and, for a replica, its physical parameters) and incidents
are written next to it (``incidents.json``).
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.contract import MAX_BATCH, METRICS, telemetry_topic
from simulator.fleet import Fleet, SimCustomer, SimDevice, SimReading
from simulator.incidents import Incident
from simulator.signals import child

logger = logging.getLogger(__name__)

REPLAY_VERSION = 1
DAY_MS = 86_400_000

# garbage kind -> the reason core.contract.parse_payload gives it
GARBAGE_REASONS: dict[str, str] = {
    "malformed_json": "malformed_json",
    "nan": "malformed_json",  # NaN is not JSON: the parser refuses the literal
    "out_of_range": "out_of_range",
    "unknown_metric": "unknown_metric",
    "future_ts": "future_ts",
}
GARBAGE_KINDS: tuple[str, ...] = tuple(GARBAGE_REASONS)

DEFAULT_BATCH_MS: dict[str, int] = {"vehicle": 10_000, "home": 0, "equipment": 0, "coldchain": 0}

Rng = np.random.Generator | random.Random


@dataclass(frozen=True, slots=True)
class WireMessage:
    """One MQTT message: where it goes, its bytes, and when (simulated) the device sends it."""

    topic: str
    payload: bytes
    ts_ms: int
    readings: int  # how many readings it carries (0 for garbage)
    expect_reject: str | None = None  # the reason the edge must reject it with


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    path: Path
    incidents_path: Path
    messages: int
    readings: int
    garbage: int


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What ``incidents.json`` holds: the fleet needed to register devices, and the truth."""

    tenant: str
    seed: int
    customers: list[SimCustomer]
    devices: list[SimDevice]
    incidents: list[Incident]


# --------------------------------------------------------------------------- payloads


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def to_payload(readings: Sequence[SimReading]) -> bytes:
    """A batch telemetry payload for readings of one device (1 to ``MAX_BATCH`` of them)."""
    if not readings:
        raise ValueError("a payload needs at least one reading")
    if len(readings) > MAX_BATCH:
        raise ValueError(f"{len(readings)} readings exceed the batch limit {MAX_BATCH}")
    device = readings[0].device
    if any(r.device != device for r in readings):
        raise ValueError("a payload carries readings of one device only")
    return _dumps({"batch": [r.to_json() for r in readings]})


def _pick(rng: Rng, options: Sequence[Any]) -> Any:
    return options[min(int(rng.random() * len(options)), len(options) - 1)]


def corrupt(reading: SimReading | Mapping[str, Any], kind: str, rng: Rng, future_ms: int | None = None) -> bytes:
    """Break one reading the ``kind`` way (see :data:`GARBAGE_KINDS`) into payload bytes.

    ``future_ms`` is the timestamp a ``future_ts`` message carries (default: a year after
    the reading, which is in the future for any publisher whose clock is not ahead of it).
    """
    doc = dict(reading.to_json() if isinstance(reading, SimReading) else reading)
    metrics = dict(doc["metrics"])
    numeric = [m for m in metrics if METRICS[m].kind == "number"] or ["temp_c"]
    if kind == "malformed_json":
        text = _dumps(doc)
        cut = 1 + int(rng.random() * (len(text) - 2))
        variant = _pick(rng, ("truncate", "single_quotes", "trailing_comma"))
        if variant == "truncate":
            return text[:cut]
        if variant == "single_quotes":
            return text.replace(b'"', b"'")
        return text[:-2] + b",}}" if text.endswith(b"}}") else text[:cut]
    if kind == "nan":
        metrics[_pick(rng, numeric)] = math.nan
        doc["metrics"] = metrics
        return json.dumps(doc, separators=(",", ":"), allow_nan=True).encode()
    if kind == "out_of_range":
        name = _pick(rng, numeric)
        spec = METRICS[name]
        too_high = rng.random() < 0.5 or not math.isfinite(spec.low)
        metrics[name] = (spec.high + 1 + abs(spec.high)) if too_high else (spec.low - 1 - abs(spec.low))
        doc["metrics"] = metrics
        return _dumps(doc)
    if kind == "unknown_metric":
        metrics[_pick(rng, ("temperature", "temp_f", "Speed", "vibration_in_s", "door"))] = 42.0
        doc["metrics"] = metrics
        return _dumps(doc)
    if kind == "future_ts":
        doc["ts"] = future_ms if future_ms is not None else int(doc["ts"]) + 365 * DAY_MS
        return _dumps(doc)
    raise ValueError(f"unknown garbage kind {kind!r}; known: {GARBAGE_KINDS}")


def garbage_payloads(
    rng: Rng, n: int, *, now_ms: int | None = None, tenant: str = "demo", device: str = "garbage-probe"
) -> list[tuple[str, bytes, str]]:
    """``n`` contract-breaking messages as (topic, payload, expected reject reason).

    Timestamps are ``now_ms`` (default: the wall clock) for the value-level faults, so the
    only thing wrong with each message is the fault it was made with; kinds cycle so every
    kind appears once ``n`` ≥ 5.
    """
    if now_ms is None:
        import time

        now_ms = int(time.time() * 1000)
    topic = telemetry_topic(tenant, device)
    out: list[tuple[str, bytes, str]] = []
    for i in range(n):
        kind = GARBAGE_KINDS[i % len(GARBAGE_KINDS)]
        base = {
            "ts": now_ms - int(rng.random() * 60_000),
            "seq": i,
            "metrics": {
                "temp_c": round(15 + 10 * rng.random(), 2),
                "humidity_pct": round(40 + 20 * rng.random(), 1),
                "water_leak": False,
            },
        }
        future = now_ms + int((1 + 23 * rng.random()) * 3_600_000)
        out.append((topic, corrupt(base, kind, rng, future_ms=future), GARBAGE_REASONS[kind]))
    return out


# ---------------------------------------------------------------------------- messages


def _device_messages(
    fleet: Fleet,
    device: SimDevice,
    batch_ms: int,
    garbage_rate: float,
    rng: np.random.Generator,
    interval_ms: int | None,
) -> Iterator[WireMessage]:
    topic = device.topic
    batch: list[SimReading] = []

    def flush() -> Iterator[WireMessage]:
        last = batch[-1]
        yield WireMessage(topic, to_payload(batch), last.ts_ms, len(batch))
        if garbage_rate and rng.random() < garbage_rate:
            kind = GARBAGE_KINDS[int(rng.integers(len(GARBAGE_KINDS)))]
            yield WireMessage(topic, corrupt(last, kind, rng), last.ts_ms, 0, GARBAGE_REASONS[kind])

    for r in fleet.readings(device, interval_ms):
        if batch and (r.ts_ms - batch[0].ts_ms >= batch_ms or len(batch) >= MAX_BATCH):
            yield from flush()
            batch = []
        batch.append(r)
    if batch:
        yield from flush()


def wire_messages(
    fleet: Fleet,
    *,
    batch_ms: int | Mapping[str, int] | None = None,
    garbage_rate: float | None = None,
    interval_ms: int | None = None,
) -> Iterator[WireMessage]:
    """Every device's messages merged in send order, garbage interleaved.

    A device sends a batch once its readings span ``batch_ms`` (per kind; default 10 s for
    vehicles, one reading per message for the rest). ``garbage_rate`` (default: the
    fleet's realism) is the chance that a message is followed by a broken one.
    """
    rate = fleet.realism.garbage_rate if garbage_rate is None else garbage_rate
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"garbage_rate must be in [0, 1), got {rate}")
    per_kind = dict(DEFAULT_BATCH_MS)
    if isinstance(batch_ms, int):
        per_kind = dict.fromkeys(per_kind, batch_ms)
    elif batch_ms is not None:
        per_kind.update(batch_ms)
    streams = [
        _device_messages(
            fleet, d, per_kind.get(d.kind, 0), rate, np.random.default_rng(child(fleet.seed_of(d), 7)), interval_ms
        )
        for d in fleet.devices
    ]
    return heapq.merge(*streams, key=lambda m: m.ts_ms)


# -------------------------------------------------------------------------- replay files


def _fleet_manifest(fleet: Fleet) -> dict[str, Any]:
    return {
        "v": REPLAY_VERSION,
        "tenant": fleet.tenant,
        "seed": fleet.seed,
        "start_ms": fleet.start_ms,
        "end_ms": fleet.end_ms,
        "customers": [{"id": c.id, "name": c.name, "locale": c.locale} for c in fleet.customers],
        "devices": [
            {
                "tenant": d.tenant,
                "device": d.device,
                "kind": d.kind,
                "customer": d.customer,
                "scenario": d.scenario,
                "profile": fleet.profile(d),
                "parameters": fleet.parameters(d),
            }
            for d in fleet.devices
        ],
        "incidents": [i.to_json() for i in fleet.incidents],
    }


def write_jsonl(
    fleet: Fleet,
    path: str | Path,
    *,
    incidents_path: str | Path | None = None,
    batch_ms: int | Mapping[str, int] | None = None,
    garbage_rate: float | None = None,
    interval_ms: int | None = None,
) -> ReplaySummary:
    """Write the fleet's messages to ``path`` (JSON lines) and the ground truth beside it."""
    path = Path(path)
    truth_path = Path(incidents_path) if incidents_path else path.parent / "incidents.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    messages = readings = garbage = 0
    with path.open("w", encoding="utf-8") as out:
        for m in wire_messages(fleet, batch_ms=batch_ms, garbage_rate=garbage_rate, interval_ms=interval_ms):
            topic = json.dumps(m.topic)
            if m.expect_reject is None:
                out.write(f'{{"topic":{topic},"ts":{m.ts_ms},"payload":{m.payload.decode()}}}\n')
            else:
                raw = json.dumps(m.payload.decode("utf-8", errors="replace"), ensure_ascii=False)
                out.write(
                    f'{{"topic":{topic},"ts":{m.ts_ms},"payload":{raw},"reject":{json.dumps(m.expect_reject)}}}\n'
                )
                garbage += 1
            messages += 1
            readings += m.readings
    truth_path.write_text(json.dumps(_fleet_manifest(fleet), ensure_ascii=False, indent=1), encoding="utf-8")
    logger.info("wrote %d messages (%d readings, %d garbage) to %s", messages, readings, garbage, path)
    return ReplaySummary(path, truth_path, messages, readings, garbage)


def read_jsonl(path: str | Path) -> Iterator[WireMessage]:
    """The messages of a replay file, in the order they were written (send order)."""
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            doc = json.loads(line)
            body = doc["payload"]
            if isinstance(body, str):
                payload, count = body.encode(), 0
            else:
                payload = _dumps(body)
                count = len(body["batch"]) if "batch" in body else 1
            yield WireMessage(doc["topic"], payload, int(doc["ts"]), count, doc.get("reject"))


def read_ground_truth(path: str | Path) -> GroundTruth:
    """Read ``incidents.json``: customers, devices and incidents of a replay."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    return GroundTruth(
        tenant=str(doc["tenant"]),
        seed=int(doc["seed"]),
        customers=[SimCustomer(c["id"], c["name"], c["locale"]) for c in doc["customers"]],
        devices=[SimDevice(d["tenant"], d["device"], d["kind"], d["customer"], d["scenario"]) for d in doc["devices"]],
        incidents=[Incident.from_json(i) for i in doc["incidents"]],
    )
