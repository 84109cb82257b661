"""How fast the worker's pure scoring is, and what its per-device state costs per Kafka record.

For each device kind (home, vehicle, equipment, coldchain) the readings of
``simulator.fleet.standard_library()`` go through ``streams.decisions.DeviceMonitor`` exactly
as the worker's ``score_device_readings`` agent does (one fresh monitor per device, readings
in time order, booleans as 0.0 / 1.0). Printed per kind:

- readings/s and µs per reading through ``DeviceMonitor.observe`` (best of ``--repeat``);
- where that time goes, per detector (one extra timed pass; relative shares);
- the size of a DeviceMonitor's saved state (``orjson.dumps(monitor.to_state())``, what the
  worker writes to its changelogged table for every record), early in a device's life and at
  the end, and the time to save it and to restore it (``DeviceMonitor.from_state``);
- the worker's per-record scoring cost for records of K readings
  (restore + K × observe + save; the worker restores only when its live monitor is stale),
  the records/s and readings/s that allows on one core, and the same with Faust's own
  per-event cost from FIELD-NOTES added.

Figures only, no assertions. Pure CPU: no services needed. About 1-1.5 minutes.

    python benchmarks/detectors_throughput.py [--seed 7] [--repeat 3] [--records 1 10 100]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence

import orjson
from benchlib import machine, say, table  # this folder's helper

from core.contract import DEVICE_KINDS, Reading, check_metric
from simulator.fleet import Fleet, SimDevice, standard_library
from streams.decisions import DeviceMonitor

# FIELD-NOTES: "Faust worker, one event at a time / with one Table update per event: 4.2k / 1.7k events/s"
FAUST_EVENT_WITH_TABLE_S = 1 / 1700


def device_readings(fleet: Fleet, device: SimDevice) -> list[Reading]:
    """The device's readings as the worker sees them after ingest (catalog-checked floats)."""
    return [
        Reading(ts=r.ts_ms, metrics={k: check_metric(k, v) for k, v in r.metrics.items()}, seq=r.seq)
        for r in fleet.readings(device)
    ]


def run_kind(devices: Sequence[tuple[SimDevice, list[Reading]]]) -> tuple[float, int, list[DeviceMonitor]]:
    """Observe every reading of every device once; returns (seconds, warning events, monitors)."""
    monitors = []
    events = 0
    gc.collect()
    t0 = time.perf_counter()
    for device, readings in devices:
        monitor = DeviceMonitor(device.tenant, device.device, device.kind)
        observe = monitor.observe
        for reading in readings:
            events += len(observe(reading))
        monitors.append(monitor)
    return time.perf_counter() - t0, events, monitors


def per_detector(devices: Sequence[tuple[SimDevice, list[Reading]]]) -> dict[str, float]:
    """Seconds spent in each detector (assess_one + learn_one), by risk[/metric]."""
    spent: dict[str, float] = defaultdict(float)
    clock = time.perf_counter
    for device, readings in devices:
        monitor = DeviceMonitor(device.tenant, device.device, device.kind)
        names = [
            d.risk + (f"[{d.metric}]" if hasattr(d, "metric") and d.risk == "sensor_stuck" else "")
            for d in monitor.detectors
        ]
        for reading in readings:
            x = {"ts": reading.ts / 1000, **reading.metrics}
            for name, detector in zip(names, monitor.detectors, strict=True):
                t0 = clock()
                if detector.wants(x):
                    detector.assess_one(x)
                    detector.learn_one(x)
                spent[name] += clock() - t0
    return dict(spent)


def state_cost(monitors: Sequence[DeviceMonitor], budget_s: float = 2.0) -> tuple[float, float]:
    """Median seconds to save one monitor's state as JSON bytes and to restore it from them."""
    dumps_t, loads_t = [], []
    deadline = time.perf_counter() + budget_s
    rounds = 0
    while rounds < 5 or (time.perf_counter() < deadline and rounds < 200):
        for monitor in monitors:
            t0 = time.perf_counter()
            blob = orjson.dumps(monitor.to_state())
            t1 = time.perf_counter()
            DeviceMonitor.from_state(orjson.loads(blob))
            t2 = time.perf_counter()
            dumps_t.append(t1 - t0)
            loads_t.append(t2 - t1)
        rounds += 1
    return statistics.median(dumps_t), statistics.median(loads_t)


def sizes(monitors: Sequence[DeviceMonitor]) -> list[int]:
    return [len(orjson.dumps(m.to_state())) for m in monitors]


def early_monitors(devices: Sequence[tuple[SimDevice, list[Reading]]], n: int) -> list[DeviceMonitor]:
    out = []
    for device, readings in devices:
        monitor = DeviceMonitor(device.tenant, device.device, device.kind)
        for reading in readings[:n]:
            monitor.observe(reading)
        out.append(monitor)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per kind (best is kept)")
    parser.add_argument("--records", type=int, nargs="+", default=[1, 10, 100], help="readings per Kafka record K")
    args = parser.parse_args(argv)

    t_start = time.monotonic()
    say(f"building standard_library(seed={args.seed}) …")
    fleet = standard_library(args.seed)
    by_kind: dict[str, list[tuple[SimDevice, list[Reading]]]] = {k: [] for k in DEVICE_KINDS}
    for device in fleet.devices:
        by_kind[device.kind].append((device, device_readings(fleet, device)))

    speed_rows, detail, state_rows, record_rows = [], {}, [], []
    obs_cost: dict[str, float] = {}
    state_costs: dict[str, tuple[float, float]] = {}
    for kind in ("home", "vehicle", "equipment", "coldchain"):
        devices = by_kind[kind]
        n = sum(len(r) for _, r in devices)
        values = sum(len(x.metrics) for _, r in devices for x in r)
        best, events = float("inf"), 0
        monitors: list[DeviceMonitor] = []
        for i in range(args.repeat):
            seconds, events, monitors = run_kind(devices)
            best = min(best, seconds)
            say(f"  {kind}: pass {i + 1}/{args.repeat}: {n} readings in {seconds:.2f} s")
        obs_cost[kind] = best / n
        speed_rows.append(
            [
                kind,
                len(devices),
                f"{n:,}",
                f"{values / n:.1f}",
                f"{n / best:,.0f}",
                f"{best / n * 1e6:.1f}",
                f"{values / best:,.0f}",
                events,
            ]
        )
        say(f"  {kind}: timing each detector …")
        spent = per_detector(devices)
        total = sum(spent.values())
        detail[kind] = sorted(((k, v, v / total) for k, v in spent.items()), key=lambda t: -t[1])

        early = sizes(early_monitors(devices, 20))
        late = sizes(monitors)
        dumps_s, loads_s = state_cost(monitors)
        state_costs[kind] = (dumps_s, loads_s)
        state_rows.append(
            [
                kind,
                f"{int(statistics.median(early)):,}",
                f"{int(statistics.median(late)):,}",
                f"{max(late):,}",
                f"{dumps_s * 1e6:.0f}",
                f"{loads_s * 1e6:.0f}",
                f"{(dumps_s + loads_s) * 1e6:.0f}",
                f"{(dumps_s + loads_s) / obs_cost[kind]:.1f}",
            ]
        )
        for k in args.records:
            ours = dumps_s + loads_s + k * obs_cost[kind]
            with_faust = ours + FAUST_EVENT_WITH_TABLE_S
            record_rows.append(
                [
                    kind,
                    k,
                    f"{ours * 1e6:,.0f}",
                    f"{(dumps_s + loads_s) / ours:.0%}",
                    f"{1 / ours:,.0f}",
                    f"{k / ours:,.0f}",
                    f"{1 / with_faust:,.0f}",
                    f"{k / with_faust:,.0f}",
                ]
            )

    print()
    print(f"machine: {machine()}")
    print(
        f"standard_library(seed={args.seed}): {len(fleet.devices)} devices, "
        f"{sum(len(r) for v in by_kind.values() for _, r in v):,} readings"
    )
    print()
    print(f"## DeviceMonitor.observe throughput (one core, best of {args.repeat} passes)")
    print()
    print(
        table(
            ["kind", "devices", "readings", "metrics/reading", "readings/s", "µs/reading", "metric values/s", "events"],
            speed_rows,
        )
    )
    print()
    print("## Where the time goes, per detector (share of detector time; timed pass)")
    for kind, rows in detail.items():
        parts = ", ".join(f"{name} {share:.0%}" for name, _, share in rows[:5])
        print(f"- {kind}: {parts}")
    print()
    print("## DeviceMonitor state: saved size (JSON of to_state) and cost per record")
    print()
    print(
        table(
            [
                "kind",
                "bytes after 20 readings (median)",
                "bytes at end (median)",
                "bytes at end (max)",
                "save µs",
                "restore µs",
                "round trip µs",
                "round trip / one observe",
            ],
            state_rows,
        )
    )
    print()
    print("## The scoring agent's cost per Kafka record of K readings: restore + K × observe + save")
    print("(ours = our code on one core; + Faust = adding FIELD-NOTES' 1.7k events/s with one Table update per event)")
    print()
    print(
        table(
            [
                "kind",
                "K",
                "ours µs/record",
                "state share",
                "records/s (ours)",
                "readings/s (ours)",
                "records/s (+ Faust)",
                "readings/s (+ Faust)",
            ],
            record_rows,
        )
    )
    print()
    say(f"done in {time.monotonic() - t_start:.0f} s")


if __name__ == "__main__":
    main()
