"""One incident, one warning: the rules that stop a second warning of the same incident.

- A freeze warning holds while the pipe is at, or levelling off, within ``near_c`` of freezing
  (``detectors.home.FreezeRisk``): a cold night whose forecast wobbles above and below 0 °C used
  to resolve and reopen the warning; now it is one warning. A new cold night after the pipe
  warmed up still warns again.
- A power cut's warning that told of water on the floor covers the flood's burst-pipe finding
  (``streams.decisions``); a burst during a power cut that has not told of water still escalates
  it, and a burst with nothing open opens its own warning.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable

import orjson
from test_escalate_decisions import Scripted, run, thread

from core.contract import Reading, WarningEvent
from detectors.home import HOLDING, FreezeRisk
from streams.decisions import DeviceMonitor, WarningPolicy

T0 = 1_700_000_000_000


def cold_night(m: float) -> float:
    """A pipe cooling 1 °C/h from 6 °C, levelling off towards 1.2 °C for hours (the forecast
    says it stays above freezing), then cooling again through 0 °C."""
    if m < 180:
        return 6 - m / 60
    if m < 900:
        return 1.2 + 1.8 * math.exp(-(m - 180) / 90)
    return 1.2 - (m - 900) / 120


def two_nights(m: float) -> float:
    """The cold night's first ten hours, a day at 10 °C, then a second night cooling 1 °C/h."""
    if m < 600:
        return cold_night(m)
    if m < 800:
        return cold_night(600) + (10 - cold_night(600)) * (m - 600) / 200
    if m < 1400:
        return 10.0
    return 10 - (m - 1400) / 60


def pipe(curve: Callable[[float], float], minutes: Iterable[int], **params: float) -> list[WarningEvent]:
    rng = random.Random(5)
    monitor = DeviceMonitor("t", "home-1", "home", [FreezeRisk(ice_plug_c=2.5, **params)])
    events: list[WarningEvent] = []
    for m in minutes:
        temp = curve(m) + rng.uniform(-0.1, 0.1)
        events += monitor.observe(Reading(ts=T0 + m * 60_000, metrics={"pipe_temp_c": temp}, seq=m))
    return events


def opens(events: list[WarningEvent]) -> list[int]:
    return [(e.at_ms - T0) // 60_000 for e in events if e.action == "open"]


def test_one_warning_a_cold_night_that_levels_off_near_freezing_is_one_warning() -> None:
    without_hold = pipe(cold_night, range(0, 1100, 5), near_c=0.0)
    assert len(opens(without_hold)) == 3, "the scenario: resolving at ~1-2 °C reopened the warning"
    events = pipe(cold_night, range(0, 1100, 5))
    assert [e.action for e in events] == ["open", "escalate"]
    assert opens(events) == opens(without_hold)[:1], "the first warning, and its lead, unchanged"
    assert events[-1].severity == "critical"


def test_one_warning_a_new_cold_night_after_a_warm_day_warns_again() -> None:
    events = pipe(two_nights, range(0, 2000, 5))
    assert [e.action for e in events] == ["open", "resolve", "open", "escalate"]
    resolved = next(e for e in events if e.action == "resolve")
    assert 600 < (resolved.at_ms - T0) // 60_000 < 800, "resolves once the pipe is clear of freezing"
    assert opens(events)[1] > 1400


def test_one_warning_near_freezing_holds_but_never_opens() -> None:
    policy = WarningPolicy()
    assert policy.clear_score <= HOLDING < policy.open_score
    detector = FreezeRisk()
    for m in range(0, 300, 5):  # standing at 1.5 °C: no trend, no forecast
        x = {"ts": 60.0 * m, "pipe_temp_c": 1.5}
        finding = detector.assess_one(x)
        detector.learn_one(x)
    assert finding.score == HOLDING and finding.severity == "advisory" and finding.evidence["near_freezing"]
    assert finding.time_to_loss_s is None
    warm = FreezeRisk()
    for m in range(0, 300, 5):
        x = {"ts": 60.0 * m, "pipe_temp_c": 8.0}
        finding = warm.assess_one(x)
        warm.learn_one(x)
    assert finding.score == 0.0
    assert pipe(lambda m: 1.5, range(0, 600, 5)) == [], "holding alone opens nothing"


def test_one_warning_a_restored_pipe_holds_as_the_live_one() -> None:
    live = DeviceMonitor("t", "home-1", "home", [FreezeRisk(ice_plug_c=2.5)])
    rng = random.Random(5)
    readings = [
        Reading(ts=T0 + m * 60_000, metrics={"pipe_temp_c": cold_night(m) + rng.uniform(-0.1, 0.1)}, seq=m)
        for m in range(0, 1100, 5)
    ]
    half = len(readings) // 2
    for r in readings[:half]:
        live.observe(r)
    saved = orjson.loads(orjson.dumps(live.to_state()))
    restored = DeviceMonitor.from_state(saved, [FreezeRisk(ice_plug_c=2.5)])
    later = [[e.action for e in m.observe(r)] for r in readings[half:] for m in (live, restored)]
    assert later[0::2] == later[1::2]
    assert ["escalate"] in later[0::2]


def flood(burst_from: int, wet: bool = True) -> list[Scripted]:
    cut = Scripted("power_cut", {m: (0.7, "critical" if m >= 60 else "warning", 3600.0) for m in range(5, 200)})
    water = Scripted("water_leak", {m: (1.0, "critical", 0.0) for m in range(90, 200)}) if wet else None
    burst = Scripted("burst_pipe", {m: (1.0, "critical", 0.0) for m in range(burst_from, 200)})
    return [d for d in (cut, water, burst) if d is not None]


def test_one_warning_a_burst_in_a_power_cuts_flood_joins_the_power_cut_warning() -> None:
    monitor = DeviceMonitor("t", "home-1", "home", flood(burst_from=105))
    events = run(monitor, range(200))
    assert thread(events) == [
        ("open", "power_cut", "warning", 5),
        ("escalate", "power_cut", "critical", 60),
        ("escalate", "power_cut", "critical", 90),  # water on the floor: said once
    ]
    assert monitor.joined["burst_pipe"] == 95, "the flood's burst finding joins, no second warning"
    restored = DeviceMonitor.from_state(orjson.loads(orjson.dumps(monitor.to_state())), flood(burst_from=105))
    assert run(restored, range(200, 210)) == []


def test_one_warning_a_burst_before_water_is_told_of_opens_its_own_warning() -> None:
    events = run(DeviceMonitor("t", "home-1", "home", flood(burst_from=50, wet=False)), range(200))
    assert [(e.action, e.risk) for e in events] == [
        ("open", "power_cut"),
        ("open", "burst_pipe"),  # the power cut's warning has not told of water: a loss of its own
        ("escalate", "power_cut"),  # the cut's own last quarter
    ]
    alone = Scripted("burst_pipe", {m: (1.0, "critical", 0.0) for m in range(10, 20)})
    assert [(e.action, e.risk) for e in run(DeviceMonitor("t", "home-1", "home", [alone]), range(30))] == [
        ("open", "burst_pipe")
    ]
