"""The worker on real services when Kafka carries what ingest never let through, when the database
refuses a record, when a worker dies, and when it is stopped with the database not answering.

- hostile records written straight to ``forewarn.readings`` are refused with reasons (kept as
  rejects), a record the database refuses is set aside in ``dead_letters``, and the valid records
  around them are stored exactly once;
- with two workers in the group, a SIGKILLed worker's partitions are scored by the other within
  15 s (the figure is printed); both score their share, and the survivor restores the killed one's
  devices from the changelog: their open warnings stay open, nobody is told twice;
- SIGTERM stops a worker within 10 s while its agents wait on a database that does not answer.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from core import db
from core.bus import Producer
from core.contract import TOPIC_READINGS, Reading, readings_record
from forewarn.children import Child, spawn

pytestmark = pytest.mark.integration


def poll(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = probe()
    assert value, f"timed out waiting for {what}"
    return value


def produce(bootstrap: str, records: list[tuple[str, bytes]]) -> None:
    """Write records to forewarn.readings as anyone with access to Kafka could."""

    async def send() -> None:
        producer = Producer(bootstrap)
        await producer.start()
        try:
            for key, value in records:
                await producer.send_and_wait(TOPIC_READINGS, key, value)
        finally:
            await producer.stop()

    asyncio.run(send())


def record(tenant: str, device: str, kind: str, ts: int, metrics: dict[str, float], seq: int = 1) -> bytes:
    return readings_record(tenant, device, kind, [Reading(ts, metrics, seq)], int(time.time() * 1000))


def raw(tenant: str, device: str, kind: str, reading: dict[str, Any]) -> bytes:
    doc = {"v": 1, "tenant": tenant, "device": device, "kind": kind, "ingested_at": int(time.time() * 1000)}
    return orjson.dumps({**doc, "readings": [reading]})


def test_hostile_records_are_refused_a_refused_write_is_set_aside_and_valid_records_are_stored_once(  # type: ignore[no-untyped-def]
    services, worker_process
) -> None:
    url = services.database_url
    tag = uuid.uuid4().hex[:6]
    good, poison = f"good-{tag}", f"poison-{tag}"
    db.add_customer(url, f"owner-{tag}", "Owner", "en", [], tenant="acme")
    for device in (good, poison):
        db.add_device(url, device, "acme", f"owner-{tag}", "home")
    # a rule of this database the contract does not know: it refuses every reading of one device
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE readings ADD CONSTRAINT refuse_{tag} CHECK (device <> '{poison}')")
    now = int(time.time() * 1000)
    reading = {"ts": now - 60_000, "metrics": {"temp_c": 20.5}, "seq": 1}
    hostile = {
        "NaN": raw("acme", good, "home", reading).replace(b"20.5", b"NaN"),
        "Infinity": raw("acme", good, "home", reading).replace(b"20.5", b"Infinity"),
        "unknown metric": raw("acme", good, "home", {**reading, "metrics": {"flux_capacitor": 1.21}}),
        "unregistered device": raw("acme", f"ghost-{tag}", "home", reading),
        "hostile tenant": raw("x'; DROP TABLE readings;--", good, "home", reading),
        "bogus kind": raw("acme", good, "bogus", reading),
        "seq 2^63": raw("acme", good, "home", {**reading, "seq": 2**63}),
    }
    valid = [record("acme", good, "home", now - 30_000 + i * 1000, {"temp_c": 21.0 + i}, seq=i + 2) for i in range(5)]
    try:
        produce(
            services.settings.kafka_bootstrap,
            [(f"acme/{good}", value) for value in hostile.values()]
            + [(f"acme/{poison}", record("acme", poison, "home", now - 20_000, {"temp_c": 22.0}))]
            + [(f"acme/{good}", value) for value in valid],
        )

        def stored() -> list[dict[str, Any]]:
            return db.query(url, "SELECT device, value, seq FROM readings WHERE device LIKE %s", (f"%{tag}%",))

        poll("the valid readings stored", lambda: len(stored()) >= 5, 90)
        letters = poll(
            "the refused record set aside",
            lambda: db.query(
                url, "SELECT topic, key, record, reason FROM dead_letters WHERE key = %s", (f"acme/{poison}".encode(),)
            ),
            60,
        )
        rejects = poll(
            "the refusals kept",
            lambda: (
                rows
                if len(
                    rows := db.query(url, "SELECT reason, payload FROM rejects WHERE payload LIKE %s", (f"%{tag}%",))
                )
                >= len(hostile)
                else None
            ),
            60,
        )
        time.sleep(2)  # anything stored late would show now
        rows = stored()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE readings DROP CONSTRAINT refuse_{tag}")

    assert sorted((r["device"], r["value"], r["seq"]) for r in rows) == [(good, 21.0 + i, i + 2) for i in range(5)], (
        "the valid readings stored exactly once, nothing hostile, nothing of the refused record"
    )
    assert not [r for r in rows if not math.isfinite(r["value"])]
    [letter] = letters
    assert letter["topic"] == TOPIC_READINGS and orjson.loads(letter["record"])["device"] == poison
    assert "CheckViolation" in letter["reason"] and f"refuse_{tag}" in letter["reason"]
    assert sorted(r["reason"] for r in rejects) == sorted(
        ["malformed_json", "malformed_json", "unknown_metric", "unknown_device", "bad_tenant", "bad_kind", "bad_seq"]
    )
    assert all(r["payload"] for r in rejects), "each refusal keeps a copy of what was refused"
    # the operator reads them with the CLI
    listing = subprocess.run(
        [sys.executable, "-m", "forewarn.cli", "db", "dead-letters", "--topic", TOPIC_READINGS, "--limit", "50"],
        env={**os.environ, **services.env, "COLUMNS": "400"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert f"acme/{poison}" in listing.stdout and "CheckViolation" in listing.stdout


@pytest.fixture
def second_worker(services, tmp_path: Path) -> Iterator[Child]:  # type: ignore[no-untyped-def]
    worker = spawn("worker-2", ["worker"], services.env, tmp_path / "worker-2.log")
    try:
        yield worker
    finally:
        if worker.alive():
            worker.stop()


def test_a_killed_workers_partitions_are_scored_by_the_other_within_15_s(  # type: ignore[no-untyped-def]
    services, worker_process, second_worker
) -> None:
    url = services.database_url
    tag = uuid.uuid4().hex[:6]
    db.add_customer(url, f"owner-{tag}", "Owner", "en", [], tenant="acme")
    before = [f"pre-{tag}-{i}" for i in range(8)]
    after = [f"post-{tag}-{i}" for i in range(8)]  # 8 keys: both partitions, all but surely
    for device in before + after:
        db.add_device(url, device, "acme", f"owner-{tag}", "home")
    started = time.monotonic()
    second_worker.ready(150)
    print(f"\na second worker joined the group and was ready after {time.monotonic() - started:.1f} s")

    def leaks(devices: list[str]) -> list[tuple[str, bytes]]:
        now = int(time.time() * 1000)
        return [(f"acme/{d}", record("acme", d, "home", now, {"water_leak": 1.0, "flow_lpm": 4.0})) for d in devices]

    def warned(devices: list[str]) -> set[str]:
        rows = db.query(url, "SELECT DISTINCT device FROM warnings WHERE device = ANY(%s)", (devices,))
        return {r["device"] for r in rows}

    # both workers own partitions: the new one scores its share of the devices
    produce(services.settings.kafka_bootstrap, leaks(before))
    poll("every device scored before the kill", lambda: warned(before) == set(before), 120)
    poll("the second worker to have scored its share", lambda: second_worker.status().get("batches_scored"), 20)

    second_worker.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    second_worker.proc.wait(10)
    produce(services.settings.kafka_bootstrap, leaks(after))
    poll("every device scored after the kill", lambda: warned(after) == set(after), 60, every=0.1)
    took = time.monotonic() - killed
    print(f"\ntakeover: a SIGKILLed worker's partitions were scored again by the other after {took:.1f} s")
    assert took <= 15.0, f"the takeover took {took:.1f} s"


def test_two_workers_share_the_partitions_and_a_killed_ones_devices_keep_their_state(  # type: ignore[no-untyped-def]
    services, sink, worker_process, second_worker
) -> None:
    """Scale out and back: both workers score their share of 12 leaking homes; the second is
    SIGKILLed while the leaks go on. The survivor restores the victim's devices from the changelog:
    their leak warnings stay the ones already open (a monitor starting afresh would open new ones,
    at the time of the first reading it sees), and nobody gets a second message."""
    url = services.database_url
    tag = uuid.uuid4().hex[:6]
    path = f"scale-{tag}"
    db.add_customer(url, f"scale-{tag}", "Scale Out", "en", [sink.url(path)], tenant="acme")
    devices = [f"scale-{tag}-{i}" for i in range(12)]  # 12 keys: both workers' partitions, all but surely
    for device in devices:
        db.add_device(url, device, "acme", f"scale-{tag}", "home")
    first_before = int(worker_process.status().get("batches_scored", 0))
    second_worker.ready(150)
    start = int(time.time() * 1000) - 3600_000

    def leak(minutes: range) -> None:
        produce(
            services.settings.kafka_bootstrap,
            [
                (
                    f"acme/{d}",
                    record("acme", d, "home", start + m * 60_000, {"water_leak": 1.0, "flow_lpm": 4.0}, m + 1),
                )
                for m in minutes
                for d in devices
            ],
        )

    def warnings() -> list[dict[str, Any]]:
        return db.query(
            url, "SELECT id::text, device, status FROM warnings WHERE device = ANY(%s) ORDER BY device", (devices,)
        )

    def stored() -> int:
        return int(db.query(url, "SELECT count(*) AS n FROM readings WHERE device = ANY(%s)", (devices,))[0]["n"])

    def messages() -> list[Any]:
        return [d for d in sink.received if d.path.strip("/") == path]

    leak(range(0, 5))
    poll("a warning for every leaking home", lambda: len(warnings()) == len(devices), 120)
    poll("a message for every leaking home", lambda: len(messages()) == len(devices), 60)
    poll("the second worker to report its share", lambda: second_worker.status().get("batches_scored"), 20)
    poll(
        "the first worker to report its share",
        lambda: int(worker_process.status().get("batches_scored", 0)) > first_before,
        20,
    )
    opened = {r["device"]: r["id"] for r in warnings()}

    second_worker.proc.send_signal(signal.SIGKILL)
    second_worker.proc.wait(10)
    scored_at_kill = int(worker_process.status().get("batches_scored", 0))
    runs_at_kill = len(worker_process.exits)
    leak(range(5, 20))  # the leaks go on: every device's monitor must remember its open warning
    # Faust now and then leaves a partition of the survivor stuck after a takeover (README,
    # Faults): its watchdog seeks back, and if that does not help it exits with EXIT_STUCK and
    # its supervisor starts it again; either way the records must come, state intact
    try:
        poll("the readings after the kill stored", lambda: stored() == len(devices) * 20 * 2, 120)
    except AssertionError:
        if worker_process.alive():
            worker_process.proc.send_signal(signal.SIGUSR1)  # its tasks' stacks into its log (mode's Worker)
            time.sleep(2)
        raise
    restarted = len(worker_process.exits) > runs_at_kill
    poll(
        "the survivor to score the readings after the kill",
        lambda: (
            int(worker_process.status().get("batches_scored", 0)) >= (0 if restarted else scored_at_kill) + len(devices)
        ),
        60,
    )
    time.sleep(3)  # its notifier had time to act on whatever it decided

    after = warnings()
    assert {r["device"]: r["id"] for r in after} == opened, (
        "each home keeps the one warning opened before the kill (a lost state opens a second)"
    )
    assert {r["status"] for r in after} == {"notified"}
    assert sorted(d.path for d in messages()) == [f"/{path}"] * len(devices), "nobody is told twice"
    # its own lag check (streams.watchdog) reads Kafka's end offsets and its committed ones: all taken
    poll("the survivor to report nothing waiting on Kafka", lambda: worker_process.status().get("behind") == 0, 60)
    if "none was taken" in worker_process.text():
        print("\nthe survivor's watchdog found a partition stuck (records waiting, commit unmoved) and resumed it")
    if restarted:
        print(f"\nthe survivor exited ({worker_process.exits[runs_at_kill:]}) and was started again by its supervisor")


def test_sigterm_stops_a_worker_waiting_on_a_silent_database_within_10_s(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # a database that accepts connections and never answers (a blackhole, as after a partition)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    port = silent.getsockname()[1]
    env = {
        **services.env,
        "FOREWARN_DATABASE_URL": f"postgresql://forewarn@127.0.0.1:{port}/forewarn",
        "FOREWARN_WORKER_ID": f"forewarn-silent-{uuid.uuid4().hex[:6]}",  # a group of its own: it reads everything
    }
    worker = spawn("worker-silent", ["worker"], env, tmp_path / "worker-silent.log")
    try:
        worker.ready(150)
        tag = uuid.uuid4().hex[:6]
        produce(
            services.settings.kafka_bootstrap,
            [(f"acme/held-{tag}", record("acme", f"held-{tag}", "home", int(time.time() * 1000), {"temp_c": 20.0}))],
        )
        poll("the worker to hold records it cannot store", lambda: worker.status().get("pending"), 60)
        worker.proc.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        worker.proc.wait(30)
        took = time.monotonic() - asked
        print(f"\nSIGTERM with the database silent: the worker stopped after {took:.1f} s")
        assert took <= 10.0, f"the worker took {took:.1f} s to stop"
    finally:
        if worker.alive():
            worker.proc.kill()
        silent.close()
