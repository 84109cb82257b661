"""ingest when members come and go and dependencies fail, on a real private Mosquitto and Kafka.

- Scaling down strands nothing: a member stopped with SIGTERM leaves the shared subscription
  cleanly, and the member still running receives every later message within seconds.
- A member killed with SIGKILL keeps its durable session: what the broker queued for it while
  it was down arrives once it is back with the same client id.
- Kafka down: ingest holds what it read, acknowledges nothing, keeps reporting its pending
  work, logs one line, and resumes by itself when Kafka is back; SIGTERM with Kafka down still
  stops it within 10 s (what Kafka did not confirm stays with the broker).
- Mosquitto restarted: paho reconnects, ingest resubscribes and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from core import bus, db
from core.contract import TOPIC_READINGS, telemetry_topic
from core.mqtt import Publisher
from core.settings import host_port
from forewarn.children import Child, spawn
from forewarn.launcher import Service, start_mosquitto, start_tansu

pytestmark = pytest.mark.integration

DEVICE = "faults-d"


@pytest.fixture(scope="module")
def device(services) -> str:  # type: ignore[no-untyped-def]
    db.add_customer(services.database_url, "faults-c", "Faults Test", "en", ["json://127.0.0.1:9/x"], tenant="acme")
    db.add_device(services.database_url, DEVICE, "acme", "faults-c", "equipment")
    return DEVICE


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Service]:
    """A Mosquitto of the test's own: no other ingest shares its subscription."""
    svc = start_mosquitto(log_dir=tmp_path)
    try:
        yield svc
    finally:
        svc.stop()


def publish(mqtt_url: str, seqs: range) -> None:
    publisher = Publisher(*host_port(mqtt_url, 1883), client_id=f"faults-pub-{uuid.uuid4().hex[:6]}")
    publisher.start()
    now = int(time.time() * 1000)
    topic = telemetry_topic("acme", DEVICE)
    infos = [
        publisher.publish(
            topic, orjson.dumps({"ts": now - 1000 + i % 1000, "seq": seq, "metrics": {"vibration_mm_s": 2.0}})
        )
        for i, seq in enumerate(seqs)
    ]
    publisher.flush(infos)
    publisher.stop()


def seqs_in_kafka(kafka_url: str, want: set[int], timeout: float = 30.0) -> set[int]:
    """The seqs of the test device's readings in ``forewarn.readings`` (stops once ``want`` are all there)."""
    found: set[int] = set()

    async def read() -> None:
        async for record in bus.read_topic(kafka_url, TOPIC_READINGS):
            doc = orjson.loads(record.value)
            if doc["device"] == DEVICE:
                found.update(r["seq"] for r in doc["readings"] if "seq" in r)
                if want <= found:
                    return

    async def bounded() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(read(), timeout)

    asyncio.run(bounded())
    return found & want


def ingest(env: dict[str, str], tmp_path: Path, name: str, **extra: str) -> Child:
    return spawn(name, ["ingest"], {**env, **extra}, tmp_path / f"{name}.log").ready(60)


def counted(child: Child) -> int:
    return int(child.status().get("messages", 0))


def wait_until(what: str, probe: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``probe()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not probe():
        assert time.monotonic() - started < timeout, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.1)
    return time.monotonic() - started


def sigterm(child: Child) -> float:
    """Seconds from SIGTERM to the process's exit (it must exit 0)."""
    started = time.monotonic()
    child.proc.send_signal(signal.SIGTERM)
    code = child.proc.wait(30)
    took = time.monotonic() - started
    assert code == 0, f"{child.name} exited {code}:\n{child.text()[-2000:]}"
    return took


def test_a_member_stopped_with_sigterm_leaves_its_share_to_the_running_one(  # type: ignore[no-untyped-def]
    services, device, broker, tmp_path
) -> None:
    env = {**services.env, "FOREWARN_MQTT_URL": broker.url}
    a = ingest(env, tmp_path, "ingest-a", FOREWARN_INGEST_CLIENT_ID=f"faults-a-{uuid.uuid4().hex[:6]}")
    b = ingest(env, tmp_path, "ingest-b", FOREWARN_INGEST_CLIENT_ID=f"faults-b-{uuid.uuid4().hex[:6]}")
    try:
        publish(broker.url, range(0, 40))
        wait_until("both members to take their share", lambda: counted(a) + counted(b) == 40, 20)
        assert counted(a) > 0 and counted(b) > 0, "the broker shares the subscription between them"

        stop_s = sigterm(a)
        assert stop_s < 10
        assert "left cleanly" in a.text()
        before = counted(b)
        publish(broker.url, range(100, 200))
        moved_s = wait_until(
            "the running member to receive all 100 later messages", lambda: counted(b) >= before + 100, 30
        )
        print(
            f"\nSIGTERM stop {stop_s:.2f} s; the running member had all 100 later messages "
            f"{moved_s:.2f} s after publishing"
        )
        want = set(range(0, 40)) | set(range(100, 200))
        assert seqs_in_kafka(services.kafka_url, want) == want
    finally:
        a.stop()
        b.stop()


def test_a_killed_member_gets_its_queued_share_when_it_is_back(services, device, broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**services.env, "FOREWARN_MQTT_URL": broker.url}
    a_id = f"faults-a-{uuid.uuid4().hex[:6]}"
    a = ingest(env, tmp_path, "ingest-a", FOREWARN_INGEST_CLIENT_ID=a_id)
    b = ingest(env, tmp_path, "ingest-b", FOREWARN_INGEST_CLIENT_ID=f"faults-b-{uuid.uuid4().hex[:6]}")
    try:
        a.proc.send_signal(signal.SIGKILL)  # no goodbye: its durable session stays with the broker
        a.proc.wait(10)
        publish(broker.url, range(300, 400))
        time.sleep(3)
        got_by_b = counted(b)
        assert got_by_b < 100, "the killed member's share waits for it in its session"
        a = ingest(env, tmp_path, "ingest-a2", FOREWARN_INGEST_CLIENT_ID=a_id)  # `forewarn up` restarts it
        want = set(range(300, 400))
        assert seqs_in_kafka(services.kafka_url, want) == want
        print(f"\nwhile one member was dead the other received {got_by_b} of 100; the rest came with the restart")
    finally:
        a.stop()
        b.stop()


def test_kafka_down_then_back_and_sigterm_while_it_is_down(services, device, broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    kafka = start_tansu(log_dir=tmp_path)
    port = host_port(kafka.url, 9092)[1]
    asyncio.run(bus.ensure_topics(kafka.url, services.settings.partitions))
    env = {**services.env, "FOREWARN_MQTT_URL": broker.url, "FOREWARN_KAFKA_URL": kafka.url}
    a = ingest(env, tmp_path, "ingest-k", FOREWARN_INGEST_CLIENT_ID=f"faults-k-{uuid.uuid4().hex[:6]}")
    try:
        publish(broker.url, range(500, 510))
        wait_until("the first messages to be acknowledged", lambda: a.status().get("acked") == 10, 20)

        kafka.stop()  # Kafka down for 30 s
        down_at = time.monotonic()
        publish(broker.url, range(510, 520))
        wait_until("ingest to report what it holds", lambda: a.status().get("pending") == 10, 20)
        reports = set()
        while time.monotonic() - down_at < 30:
            status = a.status()
            assert a.alive() and status.get("pending") == 10 and status.get("acked") == 10
            reports.add(status["at"])
            time.sleep(0.5)
        assert len(reports) >= 25, "ingest kept reporting while Kafka was down"
        kafka = start_tansu(port=port, log_dir=tmp_path)  # back, empty (Tansu keeps Kafka in memory)
        asyncio.run(bus.ensure_topics(kafka.url, services.settings.partitions))
        resumed_s = wait_until("ingest to resume by itself", lambda: a.status().get("acked") == 20, 60)
        assert seqs_in_kafka(kafka.url, set(range(510, 520))) == set(range(510, 520))
        log = a.text()
        assert log.count("Kafka unavailable") == 1 and log.count("Kafka back after") == 1, log[-3000:]

        kafka.stop()  # down again: SIGTERM must still stop ingest within 10 s
        publish(broker.url, range(520, 530))
        wait_until("ingest to hold the new messages", lambda: a.status().get("pending") == 10, 20)
        stop_s = sigterm(a)
        print(
            f"\nresumed {resumed_s:.1f} s after Kafka came back; "
            f"SIGTERM with Kafka down stopped ingest in {stop_s:.2f} s"
        )
        assert stop_s < 10
        assert "session is kept" in a.text()
    finally:
        a.stop()
        kafka.stop()


def test_a_mosquitto_restart_is_an_outage_ingest_rides_out(services, device, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "mosquitto-data"
    broker = start_mosquitto(log_dir=tmp_path, data_dir=data)
    port = host_port(broker.url, 1883)[1]
    env = {**services.env, "FOREWARN_MQTT_URL": broker.url}
    a = ingest(env, tmp_path, "ingest-m", FOREWARN_INGEST_CLIENT_ID=f"faults-m-{uuid.uuid4().hex[:6]}")
    try:
        publish(broker.url, range(600, 620))
        wait_until("the first messages", lambda: a.status().get("acked") == 20, 20)
        broker.stop()
        time.sleep(3)
        broker = start_mosquitto(port=port, log_dir=tmp_path, data_dir=data)
        wait_until("ingest to reconnect", lambda: "MQTT broker back" in a.text(), 40)
        publish(broker.url, range(620, 640))
        want = set(range(600, 640))
        assert seqs_in_kafka(services.kafka_url, want) == want
        assert a.alive() and a.text().count("MQTT broker unavailable") == 1
    finally:
        a.stop()
        broker.stop()


def test_postgresql_down_for_60_s_does_not_stop_ingest(services, device, broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The device registry is kept while PostgreSQL is away; a known device's readings flow on."""
    from forewarn.launcher import start_postgres, timescale_installed

    data = Path(tempfile.mkdtemp(prefix="forewarn-faults-pg-"))  # the postgres user cannot enter pytest's tmp_path
    pg = start_postgres(preload_timescale=timescale_installed(), data_dir=data)
    port = host_port(pg.url, 5432)[1]
    url = pg.url.rsplit("/", 1)[0] + "/faults"
    db.migrate(url, progress=lambda m: None)
    db.add_customer(url, "faults-c", "Faults Test", "en", ["json://127.0.0.1:9/x"], tenant="acme")
    db.add_device(url, DEVICE, "acme", "faults-c", "equipment")
    env = {**services.env, "FOREWARN_MQTT_URL": broker.url, "FOREWARN_DATABASE_URL": url}
    a = ingest(env, tmp_path, "ingest-p", FOREWARN_INGEST_CLIENT_ID=f"faults-p-{uuid.uuid4().hex[:6]}")
    try:
        pg.stop()
        down_at = time.monotonic()
        n = 0
        while time.monotonic() - down_at < 60:  # a reading every second
            publish(broker.url, range(700 + n, 701 + n))
            n += 1
            time.sleep(1)
        assert a.alive()
        wait_until("every reading sent meanwhile to be acknowledged", lambda: a.status().get("acked", 0) >= n, 20)
        pg = start_postgres(port=port, preload_timescale=timescale_installed(), data_dir=data)
        wait_until("the registry to be refreshed again", lambda: "PostgreSQL back" in a.text(), 60)
        want = set(range(700, 700 + n))
        assert seqs_in_kafka(services.kafka_url, want) == want
        assert a.text().count("PostgreSQL unavailable") == 1
    finally:
        a.stop()
        pg.stop()
        shutil.rmtree(data, ignore_errors=True)
