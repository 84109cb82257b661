"""The simulator: a seeded fleet whose streams obey the contract and whose incidents are true."""

from __future__ import annotations

import json
import math
import random
import time
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import pytest

from core.contract import METRICS, SEGMENT_RE, ContractError, parse_payload
from core.risks import RISK_TYPES
from simulator.clock import CompressedClock, paced
from simulator.fleet import (
    IDEAL,
    QUIET_PROFILES,
    Fleet,
    Realism,
    SimReading,
    build_fleet,
    demo_fleet,
    device_seed,
    replica_spread,
    standard_library,
)
from simulator.home import mould_dose_days
from simulator.incidents import Incident
from simulator.scenarios import SCENARIOS
from simulator.signals import Span, Trace
from simulator.wire import (
    GARBAGE_KINDS,
    garbage_payloads,
    read_ground_truth,
    read_jsonl,
    to_payload,
    wire_messages,
    write_jsonl,
)

HOUR_MS = 3_600_000
START_MS = 1_736_870_400_000  # 2025-01-15 00:00 CST
NOW_MS = START_MS + 80 * HOUR_MS  # "now" for parse_payload: after every simulated reading
REPLICAS = 5  # standard_library's defaults
QUIET_PER_KIND = 5


@pytest.fixture(scope="module")
def library() -> Fleet:
    started = time.perf_counter()
    fleet = standard_library()
    built = time.perf_counter() - started
    count = fleet.count_readings()
    total = time.perf_counter() - started
    print(
        f"\nstandard_library: {len(fleet.devices)} devices, {len(fleet.incidents)} incidents, "
        f"built in {built:.2f} s, {count} readings generated in {total:.2f} s total"
    )
    return fleet


def _small_fleet(seed: int = 3, scenarios: list[str] | None = None, **kw: object) -> Fleet:
    return build_fleet(
        seed,
        scenarios=scenarios or ["frozen_pipe", "harsh_braking_trip", "bearing_failure", "coldchain_failure"],
        start_ms=START_MS,
        duration_s=12 * 3600,
        **kw,
    )  # type: ignore[arg-type]


def _hours(fleet: Fleet, ts_ms: int) -> float:
    return (ts_ms - fleet.start_ms) / HOUR_MS


def _replicas(fleet: Fleet, scenario: str) -> list[Incident]:
    found = [i for i in fleet.incidents if i.scenario == scenario]
    assert found, scenario
    return found


# ------------------------------------------------------------------------ determinism


def test_the_same_seed_gives_the_same_fleet_and_streams() -> None:
    a, b = _small_fleet(), _small_fleet()
    assert a.devices == b.devices and a.customers == b.customers and a.incidents == b.incidents
    for device in a.devices:
        assert list(a.readings(device)) == list(b.readings(device.device))


def test_another_seed_gives_another_stream() -> None:
    a, b = _small_fleet(3), _small_fleet(4)
    device = a.devices[0]
    assert [r.metrics for r in a.readings(device)] != [r.metrics for r in b.readings(device.device)]


def test_adding_devices_does_not_change_any_other_device() -> None:
    few = build_fleet(11, scenarios=["frozen_pipe"], start_ms=START_MS, duration_s=24 * 3600)
    many = build_fleet(
        11,
        scenarios=["frozen_pipe", "slow_leak", "burst_pipe", "power_cut"],
        devices=12,
        start_ms=START_MS,
        duration_s=24 * 3600,
    )
    shared = [d for d in few.devices if d in many.devices]
    assert len(shared) == len(few.devices) >= 2  # the scenario device and a quiet one
    for device in shared:
        assert list(few.readings(device)) == list(many.readings(device))
        assert few.incident(device) == many.incident(device)


def test_the_same_seed_gives_the_same_library(library: Fleet) -> None:
    again = standard_library()
    assert again.devices == library.devices and again.customers == library.customers
    assert again.incidents == library.incidents
    assert all(again.parameters(d) == library.parameters(d) for d in library.devices)
    for device in library.devices[::7]:  # a sample of the streams: every kind, scenario and quiet
        assert list(again.readings(device)) == list(library.readings(device.device))


def test_more_replicas_change_no_replica_and_another_seed_changes_them(library: Fleet) -> None:
    small = standard_library(replicas=2, quiet_per_kind=2)
    assert len(small.devices) == 2 * len(SCENARIOS) + 2 * 4
    assert set(small.devices) <= set(library.devices)
    for device in small.devices:
        assert small.incident(device) == library.incident(device)
        assert small.parameters(device) == library.parameters(device)
        assert small.customer(device) == library.customer(device)
    for device in small.devices[::3]:
        assert list(small.readings(device)) == list(library.readings(device))
    other = standard_library(8, replicas=2, quiet_per_kind=0)
    assert all(other.parameters(d) != small.parameters(d.device) for d in other.devices)


def test_replica_spread_covers_the_range_whatever_the_number_of_replicas() -> None:
    for n in (3, 5, 8, 13):
        places = sorted(replica_spread(7, "frozen_pipe", k) for k in range(1, n + 1))
        assert len(set(places)) == n and all(0 <= p < 1 for p in places)
        assert places[-1] - places[0] >= 1 - 2.0 / n  # no big hole in the range
    assert replica_spread(7, "frozen_pipe", 2) == replica_spread(7, "frozen_pipe", 2)
    assert replica_spread(7, "frozen_pipe", 2) != replica_spread(8, "frozen_pipe", 2)


# ----------------------------------------------------------------------- the contract


def test_the_clean_stream_uses_only_catalog_metrics_within_range(library: Fleet) -> None:
    seen: set[str] = set()
    for device in library.devices:
        assert SEGMENT_RE.match(device.device)
        last_ts = -1
        for r in library.readings(device):
            assert r.ts_ms >= last_ts, f"{device.device} goes back in time"
            last_ts = r.ts_ms
            assert r.metrics, f"{device.device} sent an empty reading"
            for name, value in r.metrics.items():
                metric = METRICS[name]  # KeyError = a name outside the contract
                seen.add(name)
                if metric.kind == "bool":
                    assert isinstance(value, bool), (name, value)
                else:
                    assert isinstance(value, float) and math.isfinite(value), (name, value)
                    assert metric.low <= value <= metric.high, (device.device, name, value)
    # every kind reports its own metrics
    assert {
        "speed_kmh",
        "accel_long_g",
        "impact_g",
        "pipe_temp_c",
        "flow_lpm",
        "co_ppm",
        "vibration_mm_s",
        "bearing_temp_c",
        "compressor_on",
        "door_open",
        "mains_v",
    } <= seen


def test_every_payload_the_fleet_sends_is_accepted_by_the_contract() -> None:
    fleet = _small_fleet(realism=Realism(garbage_rate=0.0))
    messages = 0
    for m in wire_messages(fleet):
        parsed = parse_payload(m.payload, NOW_MS)
        assert not parsed.rejected, (m.topic, parsed.rejected[:1])
        assert len(parsed.readings) == m.readings
        messages += 1
    assert messages > 100


# ----------------------------------------------------------------------- ground truth


def test_the_library_has_every_scenario_replicated_with_incidents_inside_the_span(library: Fleet) -> None:
    by_scenario: dict[str, list[Incident]] = defaultdict(list)
    for incident in library.incidents:
        by_scenario[incident.scenario].append(incident)
    assert set(by_scenario) == set(SCENARIOS)
    for name, incidents in by_scenario.items():
        spec = SCENARIOS[name]
        stem = f"{spec.kind}-{name.replace('_', '-')}"
        assert [i.device for i in incidents] == [f"{stem}-{r:02d}" for r in range(1, REPLICAS + 1)]
        for incident in incidents:
            span = library.span(incident.device)
            assert span.duration_s == spec.natural_duration_s
            assert span.start_ms <= incident.precursor_start_ms < incident.loss_at_ms <= span.end_ms
            assert set(incident.risks) <= set(RISK_TYPES)
            lo, hi = incident.cost_band_cny
            assert 0 < lo <= incident.expected_cost_cny <= hi
            assert library.device(incident.device).scenario == incident.scenario
    quiet = [d for d in library.devices if d.scenario is None]
    assert len(library.devices) == len(SCENARIOS) * REPLICAS + len(quiet)
    assert all(library.incident(d) is None and library.parameters(d) == {} for d in quiet)
    for kind, profiles in QUIET_PROFILES.items():
        mine = [d for d in quiet if d.kind == kind]
        assert len(mine) == QUIET_PER_KIND
        assert {library.profile(d) for d in mine} == {f"quiet:{p}" for p, _ in profiles[:QUIET_PER_KIND]}
    seeds = {tuple(library.seed_of(d).generate_state(4)) for d in library.devices}
    assert len(seeds) == len(library.devices)


def test_replicas_differ_in_their_physics_and_so_in_their_losses(library: Fleet) -> None:
    for name, spec in SCENARIOS.items():
        incidents = _replicas(library, name)
        params = [library.parameters(i.device) for i in incidents]
        for p in params:
            assert {k.name for k in spec.knobs} <= set(p), name
            for knob in spec.knobs:
                assert knob.low <= p[knob.name] <= knob.high, (name, knob.name, p[knob.name])
                assert not knob.integer or p[knob.name] == int(p[knob.name])
        assert len({tuple(sorted(p.items())) for p in params}) == REPLICAS, name
        first = spec.knobs[0]
        placed = [p[first.name] for p in params]
        assert max(placed) - min(placed) >= 0.6 * (first.high - first.low), (name, placed)
        # different physics, different moments: every replica has its own warning window,
        # and its own moment of loss (read off a one-minute grid, two replicas may meet on
        # the same minute by chance)
        assert len({i.warning_window_s for i in incidents}) == REPLICAS, name
        assert len({i.loss_at_ms - library.span(i.device).start_ms for i in incidents}) >= REPLICAS - 1


def test_ground_truth_follows_each_replicas_physics(library: Fleet) -> None:
    for incident in _replicas(library, "slow_leak"):  # the loss: the damage volume has leaked
        p = library.parameters(incident.device)
        leaked_l = p["leak_lpm"] * incident.warning_window_s / 60
        assert leaked_l == pytest.approx(p["damage_l"], rel=0.1)
    for incident in _replicas(library, "fatigue_crash"):  # the crash after the driving hours
        p = library.parameters(incident.device)
        assert incident.warning_window_s == pytest.approx((p["driving_h"] - 4) * 3600, abs=1)
    for incident in _replicas(library, "power_cut"):  # the sump pit fills, then floods
        p = library.parameters(incident.device)
        assert incident.warning_window_s == pytest.approx(p["pit_free_l"] / p["inflow_lph"] * 3600, abs=1)
    for incident in _replicas(library, "electrical_fire"):
        p = library.parameters(incident.device)
        assert incident.warning_window_s == pytest.approx(p["arcing_h"] * 3600, abs=1)


def test_mould_takes_days_of_damp_as_the_mould_models_say(library: Fleet) -> None:
    """VTT / Sedlbauer time scales: mould damage after days of damp, never within hours."""
    spec = SCENARIOS["mould"]
    assert 8 * 24 * 3600 <= spec.natural_duration_s <= 12 * 24 * 3600
    for incident in _replicas(library, "mould"):
        p = library.parameters(incident.device)
        trace = library.trace(incident.device)
        span = library.span(incident.device)
        assert incident.precursor_start_ms == span.at(p["damp_starts_h"] * 3600)
        # the loss is the first moment the mould dose reaches the replica's mould_days
        dose = mould_dose_days(trace)
        i = int(np.searchsorted(trace.ts_ms, incident.loss_at_ms))
        assert dose[i] >= p["mould_days"] > dose[i - 1]
        # a room at 83-93 % RH grows mould faster than one at 80 %, but still takes days
        window_d = incident.warning_window_s / 86400
        assert 1.5 <= window_d <= p["mould_days"] + p["damp_tau_h"] / 8, (incident.device, window_d)
        # before the damp the room is dry: no dose
        before = trace.ts_ms < incident.precursor_start_ms
        assert dose[before][-1] < 0.05


def test_mould_dose_follows_humidity_and_warmth() -> None:
    offsets = np.arange(0, 4 * 86400 + 1, 600.0)
    ts = (START_MS + offsets * 1000).astype(np.int64)

    def days_to_mould(rh: float, temp: float = 20.0, need: float = 1.0) -> float:
        n = ts.size
        trace = Trace(ts, {}, {"humidity_pct": np.full(n, rh), "indoor_c": np.full(n, temp)})
        dose = mould_dose_days(trace)
        return float(offsets[np.argmax(dose >= need)] / 86400) if dose[-1] >= need else math.inf

    assert days_to_mould(70.0) == math.inf  # below ~75 % nothing grows
    assert days_to_mould(80.0) == pytest.approx(1.0, abs=0.01)  # one day at 80 % per day
    assert days_to_mould(90.0) == pytest.approx(1 / 2.5, abs=0.01)  # 2.5x faster at 90 %
    assert days_to_mould(77.5) == pytest.approx(2 * 2.5**0.25, abs=0.01)  # onset ramp
    assert days_to_mould(80.0, temp=10.0) > days_to_mould(80.0)  # slower in a cold room


def _series(fleet: Fleet, device: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(r.ts_ms, r.metrics[metric]) for r in fleet.readings(device) if metric in r.metrics]
    ts, values = zip(*pairs, strict=True)
    return np.array(ts), np.array(values, dtype=float)


def test_the_freezing_pipe_goes_through_zero_before_the_loss(library: Fleet) -> None:
    for incident in _replicas(library, "frozen_pipe"):
        ts, pipe = _series(library, incident.device, "pipe_temp_c")
        before = pipe[ts < incident.precursor_start_ms]
        assert before.min() > 2.0, incident.device  # fine while the heating works
        first_zero = ts[np.flatnonzero(pipe <= 0.0)[0]]
        # hours after the heating fails; a mild night holds the freezing water near 0 °C long
        assert incident.precursor_start_ms + HOUR_MS <= first_zero <= incident.loss_at_ms
        near_loss = pipe[np.abs(ts - incident.loss_at_ms) <= 10 * 60_000]
        assert near_loss.max() < 0.0 and near_loss.min() > -3.0  # at about -1 °C
    outdoor = {library.parameters(i.device)["outdoor_low_c"] for i in _replicas(library, "frozen_pipe")}
    assert max(outdoor) - min(outdoor) > 4  # mild and hard frosts


def test_quiet_homes_pipes_never_freeze(library: Fleet) -> None:
    homes = [d for d in library.devices if d.kind == "home" and d.scenario is None]
    assert homes
    for home in homes:
        _, pipe = _series(library, home.device, "pipe_temp_c")
        assert pipe.min() > 3.0, home.device


def test_a_slow_leak_keeps_water_flowing_all_night(library: Fleet) -> None:
    for incident in _replicas(library, "slow_leak"):
        ts, flow = _series(library, incident.device, "flow_lpm")
        leaking = flow[(ts >= incident.precursor_start_ms) & (ts < incident.loss_at_ms)]
        assert leaking.min() > 0.8 * library.parameters(incident.device)["leak_lpm"]
    quiet = next(d for d in library.devices if d.kind == "home" and d.scenario is None)
    _, quiet_flow = _series(library, quiet.device, "flow_lpm")
    assert (quiet_flow == 0).mean() > 0.5  # an ordinary home uses no water most of the time


def _harsh_brakes(fleet: Fleet, device: str) -> list[int]:
    ts, accel = _series(fleet, device, "accel_long_g")
    hits = ts[accel <= -0.4]
    return [int(t) for k, t in enumerate(hits) if k == 0 or t - hits[k - 1] > 5_000]


def test_the_aggressive_driver_brakes_hard_and_speeds_and_calm_drivers_do_not(library: Fleet) -> None:
    counts, fastest = [], []
    for risky in _replicas(library, "harsh_braking_trip"):
        p = library.parameters(risky.device)
        brakes = _harsh_brakes(library, risky.device)
        # brakes queued at a red light fire back to back and count once
        assert 1 <= len(brakes) <= p["harsh_brakes"], (risky.device, brakes, p)
        counts.append(len(brakes))
        ts, accel = _series(library, risky.device, "accel_long_g")
        # the hardest brake: the replica's deceleration (each brake within ±0.05 g), plus noise
        assert -accel.min() == pytest.approx(p["brake_g"], abs=0.09), (risky.device, p)
        if p["speeding_stretches"]:
            fastest.append(
                max(
                    r.metrics["speed_kmh"] / r.metrics["speed_limit_kmh"]
                    for r in library.readings(risky.device)
                    if "speed_limit_kmh" in r.metrics
                )
            )
    assert max(counts) >= 3
    assert fastest and max(fastest) > 1.2  # well above the posted limit for minutes at a time
    for car in (d for d in library.devices if d.kind == "vehicle" and d.scenario is None):
        assert _harsh_brakes(library, car.device) == [], car.device
        assert _longest_drive_h(library, car.device) < 4.0, car.device


def _longest_drive_h(fleet: Fleet, device: str) -> float:
    """Longest driving without a 20-minute break (China's fatigue-driving rule), from the
    device's clean trace: a transport dropout is not a rest."""
    trace = fleet.trace(device)
    longest, run_start, last_on = 0.0, None, None
    for ts, on in zip(trace.ts_ms.tolist(), trace.metrics["ignition"].tolist(), strict=True):
        if on > 0.5:
            if run_start is None or (last_on is not None and ts - last_on >= 20 * 60_000):
                run_start = ts
            last_on = ts
            longest = max(longest, (ts - run_start) / HOUR_MS)
    return longest


def test_the_fatigued_driver_drives_over_four_hours_and_crashes_at_the_loss(library: Fleet) -> None:
    for incident in _replicas(library, "fatigue_crash"):
        driving_h = library.parameters(incident.device)["driving_h"]
        assert _longest_drive_h(library, incident.device) == pytest.approx(driving_h, abs=0.05)
        impacts = [r for r in library.readings(incident.device) if r.metrics.get("impact_g", 0) > 4]
        assert impacts and abs(impacts[0].ts_ms - incident.loss_at_ms) <= 2_000


def test_a_drained_device_stops_sending_at_the_loss(library: Fleet) -> None:
    for incident in _replicas(library, "battery_drain"):
        readings = list(library.readings(incident.device))
        assert readings[-1].ts_ms < incident.loss_at_ms <= readings[-1].ts_ms + 2 * 60_000
        assert readings[-1].metrics["battery_pct"] <= 3
        assert "mains_v" not in readings[0].metrics  # a battery sensor pack


def test_a_stuck_sensor_repeats_the_same_value(library: Fleet) -> None:
    for incident in _replicas(library, "stuck_sensor"):
        ts, temp = _series(library, incident.device, "temp_c")
        assert len(set(temp[ts > incident.precursor_start_ms + 60_000])) == 1
        assert len(set(temp[ts < incident.precursor_start_ms])) > 20


def test_the_worn_bearing_vibrates_far_above_its_baseline_before_it_fails(library: Fleet) -> None:
    for incident in _replicas(library, "bearing_failure"):
        p = library.parameters(incident.device)
        ts, vib = _series(library, incident.device, "vibration_mm_s")
        baseline = np.median(vib[ts < incident.precursor_start_ms])
        assert baseline == pytest.approx(p["baseline_mm_s"], rel=0.15)
        last_hour = vib[(ts > incident.loss_at_ms - HOUR_MS) & (ts < incident.loss_at_ms)]
        assert np.median(last_hour) > max(4 * baseline, 0.6 * p["seize_mm_s"])
        assert np.median(vib[ts > incident.loss_at_ms + 600_000]) < 1.0  # seized and stopped


def test_the_coldchain_box_is_warm_when_the_goods_spoil(library: Fleet) -> None:
    for incident in _replicas(library, "coldchain_failure"):
        ts, temp = _series(library, incident.device, "temp_c")
        assert temp[ts < incident.precursor_start_ms].max() < 8.0
        assert temp[np.abs(ts - incident.loss_at_ms) < 120_000].min() > 8.0
    for box in (d for d in library.devices if d.kind == "coldchain" and d.scenario is None):
        _, temp = _series(library, box.device, "temp_c")  # warm depots too: cycling keeps up
        assert temp.max() < 8.0, (box.device, library.profile(box))


# -------------------------------------------------------------------------- the demo


def test_the_demo_freezes_a_pipe_in_hours_4_to_10_and_brakes_hard_early() -> None:
    fleet = demo_fleet(7, START_MS, 12 * 3600)
    by_scenario = {i.scenario: i for i in fleet.incidents}
    freeze = by_scenario["frozen_pipe"]
    assert 4 <= _hours(fleet, freeze.loss_at_ms) <= 10
    assert _hours(fleet, freeze.precursor_start_ms) >= 1
    brakes = _harsh_brakes(fleet, by_scenario["harsh_braking_trip"].device)
    assert brakes and _hours(fleet, brakes[0]) < 1.5
    assert "water_leak" in by_scenario["burst_pipe"].risks
    assert all(i.loss_at_ms <= fleet.end_ms for i in fleet.incidents)
    quiet_kinds = {d.kind for d in fleet.devices if d.scenario is None}
    assert quiet_kinds == {"vehicle", "home", "equipment", "coldchain"}
    assert {c.locale for c in fleet.customers} == {"zh-CN", "en"}


def test_the_demo_fleet_is_pinned() -> None:
    """The live demo and the end-to-end test rely on these exact incidents: replicas and new
    quiet profiles must leave the demo alone."""
    fleet = demo_fleet(7, START_MS, 12 * 3600)
    assert [(i.device, i.precursor_start_ms, i.loss_at_ms, i.expected_cost_cny) for i in fleet.incidents] == [
        ("home-frozen-pipe-01", 1736880370312, 1736896320000, 13800.0),
        ("vehicle-harsh-braking-trip-01", 1736871700559, 1736875079559, 4500.0),
        ("home-burst-pipe-01", 1736881492617, 1736885520000, 66900.0),
    ]
    assert [fleet.profile(d) for d in fleet.devices] == [
        "frozen_pipe",
        "harsh_braking_trip",
        "burst_pipe",
        "quiet:commuter",
        "quiet:family_home",
        "quiet:pump",
        "quiet:reefer",
        "quiet:city_flat",
    ]
    assert all(fleet.parameters(d) == {} for d in fleet.devices)  # the typical draws, no knobs


# ------------------------------------------------------------------ transport realism


def test_ideal_transport_sends_every_reading_once_on_the_grid() -> None:
    fleet = _small_fleet(realism=IDEAL)
    device = next(d for d in fleet.devices if d.kind == "home")
    readings = list(fleet.readings(device))
    assert [r.seq for r in readings] == list(range(len(readings)))
    assert all(r.ts_ms % 60_000 == START_MS % 60_000 for r in readings)


def test_realism_adds_gaps_jitter_and_duplicates() -> None:
    realism = Realism(dropouts_per_day=200, dropout_mean_s=900, jitter_ms=400, duplicate_rate=0.02)
    fleet = _small_fleet(realism=realism)
    device = next(d for d in fleet.devices if d.kind == "equipment")
    readings = list(fleet.readings(device))
    seqs = [r.seq for r in readings]
    duplicates = [a for a, b in zip(readings, readings[1:], strict=False) if a == b]
    gaps = [b - a for a, b in zip(seqs, seqs[1:], strict=False) if b - a > 1]
    offsets = {(r.ts_ms - START_MS) % 60_000 for r in readings}
    assert duplicates and gaps
    assert len(offsets) > 10
    assert all(o <= 400 or o >= 60_000 - 400 for o in offsets)
    assert seqs == sorted(seqs)


def test_merged_interleaves_every_device_in_time_order() -> None:
    fleet = _small_fleet()
    merged = list(fleet.merged())
    assert [r.ts_ms for r in merged] == sorted(r.ts_ms for r in merged)
    assert len(merged) == fleet.count_readings()
    assert {r.device.device for r in merged} == {d.device for d in fleet.devices}
    thinned = list(fleet.merged(interval_ms=600_000))
    assert 0 < len(thinned) < len(merged) / 5


# ------------------------------------------------------------------------- garbage


def _reject_reasons(payload: bytes) -> set[str]:
    try:
        parsed = parse_payload(payload, NOW_MS)
    except ContractError as exc:
        return {exc.reason}
    assert not parsed.readings, "a garbage message had an acceptable reading"
    return {r.reason for r in parsed.rejected}


@pytest.mark.parametrize("rng", [np.random.default_rng(5), random.Random(5)], ids=["numpy", "random"])
def test_garbage_payloads_are_rejected_with_the_expected_reason(rng: object) -> None:
    garbage = garbage_payloads(rng, 40, now_ms=NOW_MS)  # type: ignore[arg-type]
    assert len(garbage) == 40
    assert {reason for _, _, reason in garbage} >= {"malformed_json", "out_of_range", "unknown_metric", "future_ts"}
    for topic, payload, reason in garbage:
        assert topic == "forewarn/v1/demo/garbage-probe/telemetry"
        assert _reject_reasons(payload) == {reason}, payload


def test_garbage_in_the_message_stream_is_labelled_and_rejected() -> None:
    fleet = _small_fleet(realism=Realism(garbage_rate=0.05))
    garbage = 0
    for m in wire_messages(fleet):
        if m.expect_reject is None:
            assert not parse_payload(m.payload, NOW_MS).rejected
        else:
            garbage += 1
            assert _reject_reasons(m.payload) == {m.expect_reject}
    assert garbage > 20


def test_to_payload_refuses_mixed_devices() -> None:
    fleet = _small_fleet()
    a, b = fleet.devices[:2]
    with pytest.raises(ValueError):
        to_payload([next(fleet.readings(a)), next(fleet.readings(b))])


# ---------------------------------------------------------------------- replay files


def test_a_replay_file_round_trips_with_its_ground_truth(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fleet = _small_fleet(realism=Realism(garbage_rate=0.02))
    summary = write_jsonl(fleet, tmp_path / "fleet.jsonl")
    assert summary.incidents_path == tmp_path / "incidents.json"
    written = list(wire_messages(fleet))
    replayed = list(read_jsonl(summary.path))
    assert len(replayed) == len(written) == summary.messages
    assert summary.garbage == sum(1 for m in written if m.expect_reject)
    for original, copy in zip(written, replayed, strict=True):
        assert (copy.topic, copy.ts_ms, copy.expect_reject) == (original.topic, original.ts_ms, original.expect_reject)
        if original.expect_reject is None:
            assert parse_payload(copy.payload, NOW_MS) == parse_payload(original.payload, NOW_MS)
        else:
            assert copy.payload == original.payload
    truth = read_ground_truth(summary.incidents_path)
    assert truth.incidents == fleet.incidents
    assert truth.devices == fleet.devices and truth.customers == fleet.customers
    manifest = json.loads(summary.incidents_path.read_text(encoding="utf-8"))
    assert [d["profile"] for d in manifest["devices"]] == [fleet.profile(d) for d in fleet.devices]


def test_a_replicas_parameters_are_written_with_the_ground_truth(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fleet = standard_library(replicas=1, quiet_per_kind=0)
    summary = write_jsonl(fleet, tmp_path / "library.jsonl", interval_ms=3_600_000)
    manifest = json.loads(summary.incidents_path.read_text(encoding="utf-8"))
    assert [d["parameters"] for d in manifest["devices"]] == [fleet.parameters(d) for d in fleet.devices]
    assert all(d["parameters"] for d in manifest["devices"])


# ------------------------------------------------------------------------------ clock


def test_the_compressed_clock_runs_twelve_hours_a_minute_and_never_ahead() -> None:
    now_ms = START_MS + 100 * HOUR_MS
    clock = CompressedClock.catching_up(now_ms, 12 * 3600, 60)
    assert clock.sim_hours_per_wall_minute == pytest.approx(12)
    assert clock.sim_ms(now_ms / 1000) == now_ms - 12 * HOUR_MS
    assert clock.sim_ms(now_ms / 1000 + 60) == now_ms

    wall = [now_ms / 1000]

    def fake_now() -> float:
        return wall[0]

    def fake_sleep(seconds: float) -> None:
        wall[0] += seconds

    stamps = [now_ms - 12 * HOUR_MS + k * 600_000 for k in range(73)]
    released: list[tuple[int, float]] = []
    for ts in paced(stamps, clock, lambda x: x, now=fake_now, sleep=fake_sleep):
        released.append((ts, wall[0]))
    assert [ts for ts, _ in released] == stamps
    assert all(ts <= at * 1000 for ts, at in released)  # never in the future
    assert released[-1][1] - now_ms / 1000 == pytest.approx(60, abs=0.01)


def test_paced_waits_for_the_wall_clock_even_when_the_start_is_badly_chosen() -> None:
    wall = [1000.0]
    clock = CompressedClock(start_ms=1_000_000, compression=3600, wall_start_s=1000.0)
    stamps: Iterator[int] = iter([1_000_000, 1_500_000, 2_000_000])

    def fake_sleep(seconds: float) -> None:
        wall[0] += seconds

    for ts in paced(stamps, clock, lambda x: x, now=lambda: wall[0], sleep=fake_sleep):
        assert ts <= wall[0] * 1000


# ------------------------------------------------------------------------- validation


def test_bad_requests_fail_loudly() -> None:
    with pytest.raises(ValueError, match="unknown scenarios"):
        build_fleet(scenarios=["meteor_strike"], start_ms=START_MS, duration_s=3600 * 24)
    with pytest.raises(ValueError, match="longer duration"):
        build_fleet(scenarios=["mould"], start_ms=START_MS, duration_s=3600 * 12)
    with pytest.raises(ValueError):
        Incident("d", "s", ("freeze_risk",), 10, 10, "x", (1.0, 2.0), 1.5)
    with pytest.raises(ValueError):
        Incident("d", "s", ("not_a_risk",), 1, 10, "x", (1.0, 2.0), 1.5)


def test_build_fleet_counts_devices_and_spreads_quiet_ones_over_kinds() -> None:
    fleet = build_fleet(
        1, devices=10, quiet_ratio=0.4, scenarios=["burst_pipe"], start_ms=START_MS, duration_s=6 * 3600
    )
    assert len(fleet.devices) == 10
    assert sum(d.scenario == "burst_pipe" for d in fleet.devices) == 6
    assert {d.kind for d in fleet.devices if d.scenario is None} == {"vehicle", "home", "equipment", "coldchain"}
    assert len({d.device for d in fleet.devices}) == 10
    assert all(fleet.customer(d).locale in ("zh-CN", "en") for d in fleet.devices)


def test_bad_library_requests_fail_loudly() -> None:
    for bad in ({"replicas": 0}, {"replicas": 100}, {"quiet_per_kind": -1}):
        with pytest.raises(ValueError):
            standard_library(**bad)  # type: ignore[arg-type]
    spec = SCENARIOS["frozen_pipe"]
    with pytest.raises(ValueError, match="natural"):
        spec.simulate_variant(device_seed(7, "x"), Span(START_MS, 12 * 3600))
    with pytest.raises(ValueError, match="spread"):
        spec.simulate_variant(device_seed(7, "x"), Span(START_MS, spec.natural_duration_s), spread=1.0)


def test_every_garbage_kind_is_known() -> None:
    assert set(GARBAGE_KINDS) == {"malformed_json", "nan", "out_of_range", "unknown_metric", "future_ts"}


def test_readings_are_sim_readings_of_the_right_device(library: Fleet) -> None:
    device = library.devices[0]
    first = next(library.readings(device))
    assert isinstance(first, SimReading) and first.device == device
    assert first.to_json() == {"ts": first.ts_ms, "seq": first.seq, "metrics": first.metrics}
