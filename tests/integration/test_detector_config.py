"""Detector parameters per tenant and kind, and per device, on a real PostgreSQL: set and
cleared with the command line, shown with the level that set each, read by the worker's store.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from core import db
from forewarn.cli import app

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture
def cli(services, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr("forewarn.cli.get_settings", lambda: services.settings)
    db.add_customer(services.database_url, "cfg-c", "Config Test", "en", ["json://127.0.0.1:9/cfg"], tenant="cfgco")
    db.add_device(services.database_url, "cfg-home", "cfgco", "cfg-c", "home")

    def run(*args: str) -> str:
        result = runner.invoke(app, ["detectors", *args])
        assert result.exit_code == 0, result.output
        return result.output

    return run


def show(cli, *scope: str) -> dict[tuple[str, str], tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(detector, parameter) → (value, set by), from the table `detectors show` prints."""
    rows = {}
    for line in cli("show", *scope).splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 4 and cells[0] != "detector":
            rows[(cells[0], cells[1])] = (cells[2], cells[3])
    return rows


async def test_the_most_specific_level_wins_and_the_worker_reads_it(services, cli) -> None:  # type: ignore[no-untyped-def]
    tenant, device = ["--tenant", "cfgco", "--kind", "home"], ["--device", "cfg-home"]
    store = db.Store(services.database_url)
    await store.open()
    try:
        before = await store.detector_config_version()
        cli("set", *tenant, "freeze_risk", "horizon_s=10800", "margin_c=1.0")
        cli("set", *tenant, *device, "freeze_risk", "horizon_s=3600")
        cli("set", *tenant, "sensor_stuck", "ignore_values=[0.0]")
        assert await store.detector_config_version() > before

        assert await store.detector_overrides("cfgco", "home", "cfg-home") == {
            "freeze_risk": {"horizon_s": 3600, "margin_c": 1.0},
            "sensor_stuck": {"ignore_values": [0.0]},
        }
        assert (await store.detector_overrides("cfgco", "home", "other-home"))["freeze_risk"]["horizon_s"] == 10800

        shown = show(cli, *tenant, *device)
        assert shown[("freeze_risk", "horizon_s")] == ("3600", "device")
        assert shown[("freeze_risk", "margin_c")] == ("1.0", "tenant")
        assert shown[("freeze_risk", "window_s")] == ("7200.0", "default")
        assert shown[("sensor_stuck:pipe_temp_c", "metric")] == ("'pipe_temp_c'", "profile")
        assert shown[("sensor_stuck:pipe_temp_c", "ignore_values")] == ("(0.0,)", "tenant")

        cli("clear", *tenant, *device, "freeze_risk", "horizon_s")
        assert show(cli, *tenant, *device)[("freeze_risk", "horizon_s")] == ("10800", "tenant")
        cli("clear", *tenant)
        assert await store.detector_overrides("cfgco", "home", "cfg-home") == {}
        assert "nothing to clear" in cli("clear", *tenant)
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "cfg-home", "battery_drain", "empty_pct=15"], "empty_pct must be < low_pct"),
        (["--device", "ghost", "water_leak", "debounce_s=30"], "not registered"),
        (["freeze_risk", "horizon_s=-1"], "horizon_s must be > 0"),
        (["sensor_stuck", "metric=temp_c"], "would be the same"),
    ],
)
def test_configuration_that_would_not_work_is_refused_in_one_line(cli, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["detectors", "set", "--tenant", "cfgco", "--kind", "home", *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_a_change_at_the_tenant_level_is_checked_against_every_device_with_its_own(cli) -> None:  # type: ignore[no-untyped-def]
    tenant = ["--tenant", "cfgco", "--kind", "home"]
    cli("set", *tenant, "battery_drain", "low_pct=30")
    cli("set", *tenant, "--device", "cfg-home", "battery_drain", "empty_pct=20")
    result = runner.invoke(app, ["detectors", "clear", *tenant, "battery_drain", "low_pct"])
    assert (
        result.exit_code == 2 and "device cfg-home" in result.output and "empty_pct must be < low_pct" in result.output
    )
    cli("clear", *tenant, "--device", "cfg-home")
    cli("clear", *tenant)
