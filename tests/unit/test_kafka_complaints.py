"""The worker tells a Kafka outage in two lines, however loudly aiokafka complains.

aiokafka, under Faust, logs each failed attempt while Kafka is away (about 80 lines a second);
``streams.app.KafkaComplaints`` drops those on the log's handlers and ``note_kafka`` logs the
outage's start and end once each. ``test_kafka_outage`` shows it on a real 30 s outage.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import streams.app as worker


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[worker.KafkaComplaints, list[str]]]:
    """A filter and an outage of the test's own, the outage's lines collected."""
    complaints = worker.KafkaComplaints()
    told: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            told.append(record.getMessage())

    logger = logging.getLogger("test-kafka-complaints")
    logger.addHandler(handler := Collect())
    logger.propagate = False
    monkeypatch.setattr(worker, "kafka_complaints", complaints)
    monkeypatch.setattr(worker, "broker", worker.Outage("Kafka", logger, hint="FOREWARN_KAFKA_URL"))
    yield complaints, told
    logger.removeHandler(handler)


def record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_an_outage_is_two_lines_and_aiokafkas_attempts_are_dropped(fresh) -> None:  # type: ignore[no-untyped-def]
    complaints, told = fresh

    def failures() -> list[logging.LogRecord]:
        return [
            record("aiokafka.conn", logging.ERROR, "Unable connect to node with id %s: %s", 111, "Connect call failed"),
            record("aiokafka", logging.ERROR, "Unable to update metadata from [%s]", 111),
            record("aiokafka.consumer.group_coordinator", logging.WARNING, "Marking the coordinator dead (node 111)"),
        ]

    attempts = [r for _ in range(20) for r in failures()]
    assert not any(complaints.filter(r) for r in attempts), "every failed attempt is kept out of the log"
    assert not any(complaints.filter(r) for r in attempts), "a record seen by a second handler is counted once"
    overrun = record("mode.timers", logging.WARNING, "Timer %s is overlapping (interval=%r)", "commit", 30.0)
    assert not complaints.filter(overrun), "the commit timer waited for Kafka: not news during the outage"

    worker.note_kafka(complaints.last_at + 0.5)
    worker.note_kafka(complaints.last_at + 1.0)  # still complaining recently: nothing more
    assert len(told) == 1 and "Kafka unavailable" in told[0] and "Unable connect to node" in told[0]
    assert "FOREWARN_KAFKA_URL" in told[0], "the line says what to check"

    worker.note_kafka(complaints.last_at + worker.KAFKA_QUIET_S)
    assert len(told) == 2 and told[1].startswith("Kafka back after") and "(60 attempts)" in told[1]
    assert complaints.filter(overrun), "a timer that overruns with Kafka up is worth a line"

    worker.note_kafka(complaints.last_at + 60)
    assert len(told) == 2, "nothing more once it is back"
    assert not complaints.filter(failures()[0])
    worker.note_kafka(complaints.last_at + 0.1)
    assert len(told) == 3 and "Kafka unavailable" in told[2], "a second outage is told again"


def test_other_lines_pass(fresh) -> None:  # type: ignore[no-untyped-def]
    complaints, told = fresh
    assert complaints.filter(record("aiokafka.consumer.group_coordinator", logging.INFO, "Joined group 'w'"))
    assert complaints.filter(record("aiokafka", logging.ERROR, "OffsetCommit failed: %s", "RebalanceInProgressError"))
    assert complaints.filter(record("streams.app", logging.WARNING, "Kafka unavailable: our own line"))
    worker.note_kafka(1e9)
    assert told == [], "no complaint, no outage"
