import logging

from core.outage import Outage


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(caplog):
    now = [100.0]
    outage = Outage(
        "PostgreSQL", logging.getLogger("t"), "FOREWARN_DATABASE_URL", clock=lambda: now[0], jitter=lambda: 0.5
    )
    caplog.set_level(logging.WARNING)
    delays = []
    for _ in range(8):
        delays.append(outage.failed(ConnectionError("refused"), "storing readings"))
        now[0] += 5
    assert outage.down
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "PostgreSQL unavailable while storing readings" in lines[0]
    assert "FOREWARN_DATABASE_URL" in lines[0]
    assert delays[0] == 0.5 and delays[1] == 1.0 and max(delays) == 30.0  # backoff, capped
    outage.recovered()
    assert not outage.down
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "back after 40.0 s (8 attempts)" in lines[1]
    outage.recovered()  # nothing to tell
    assert len(caplog.records) == 2


def test_jitter_spreads_retries_around_the_backoff():
    outage = Outage("Kafka", logging.getLogger("t"), jitter=lambda: 0.0)
    assert outage.failed(OSError("x")) == 0.375
    outage2 = Outage("Kafka", logging.getLogger("t"), jitter=lambda: 1.0)
    assert outage2.failed(OSError("x")) == 0.625


def test_a_timeout_without_a_message_is_told_as_no_answer(caplog):
    caplog.set_level(logging.WARNING)
    Outage("Kafka", logging.getLogger("t")).failed(TimeoutError())
    assert "(TimeoutError: no answer in time)" in caplog.records[0].getMessage()
