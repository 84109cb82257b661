"""The local-stack launcher reuses what answers and starts (then stops) what is missing."""

from __future__ import annotations

import pytest

from forewarn import launcher

pytestmark = pytest.mark.integration


def test_reuses_running_services_and_starts_only_the_missing_broker(services) -> None:  # type: ignore[no-untyped-def]
    port = launcher.free_port()
    running = launcher.bring_up(services.mqtt_url, f"kafka://127.0.0.1:{port}", services.database_url, progress=print)
    try:
        how = {name: state for name, _, state in running.describe()}
        assert how == {"mqtt": "reused", "kafka (tansu)": "started", "postgresql": "reused"}
        assert running.kafka_url == f"kafka://127.0.0.1:{port}" and launcher.reachable("127.0.0.1", port)
    finally:
        running.stop()
    assert not launcher.reachable("127.0.0.1", port), "what the launcher started, it stops"


def test_a_missing_binary_is_named_with_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "_find", lambda *a, **k: None)
    with pytest.raises(launcher.StackError, match="apt-get install mosquitto"):
        launcher.start_mosquitto()
    with pytest.raises(launcher.StackError, match="apt-get install postgresql"):
        launcher.start_postgres()


def test_a_database_that_does_not_answer_is_an_error_not_an_empty_stand_in_unless_asked(services) -> None:  # type: ignore[no-untyped-def]
    port = launcher.free_port()  # nothing listens there
    with pytest.raises(launcher.StackError, match="FOREWARN_DATABASE_URL=.*--start-services"):
        launcher.bring_up(
            services.mqtt_url,
            services.kafka_url,
            f"postgresql://postgres@127.0.0.1:{port}/forewarn",
            progress=print,
            database_named=True,
            start_missing=False,
        )
    assert not launcher.reachable("127.0.0.1", port), "no stand-in database was started"
