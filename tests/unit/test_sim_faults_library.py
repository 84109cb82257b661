"""The faults no rule names (``simulator.faults``): new devices of their own, labelled like every
incident, the fault really in the readings, and the standard library untouched."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from core.risks import RISKS
from simulator.faults import FAULT_DURATION_S, FAULTS
from simulator.fleet import Fleet, fault_library, standard_library


@functools.cache
def faults() -> Fleet:
    return fault_library(7, replicas=2)


def test_fault_devices_are_new_devices_apart_from_the_standard_library() -> None:
    standard = {d.device for d in standard_library(7).devices}
    names = [d.device for d in faults().devices]
    assert len(names) == 2 * len(FAULTS) and not set(names) & standard
    assert standard_library(7).library == "standard" and faults().library == ""


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_each_fault_is_labelled_like_an_incident_on_a_kind_watched_for_it(name: str) -> None:
    spec = FAULTS[name]
    assert all(spec.kind in RISKS[r].kinds for r in spec.risks) and spec.risks == ("unusual_reading",)
    for device in faults().devices:
        if device.scenario != name:
            continue
        incident = faults().incident(device)
        assert incident is not None
        span = faults().span(device)
        # a normal week for the baseline to learn, then the fault, then the loss inside the span
        assert span.start_ms + 5 * 86_400_000 <= incident.precursor_start_ms < incident.loss_at_ms <= span.end_ms
        assert span.duration_s == FAULT_DURATION_S


def _trace_of(scenario: str):  # type: ignore[no-untyped-def]
    device = next(d for d in faults().devices if d.scenario == scenario)
    return faults().trace(device), faults().incident(device)


def test_a_rising_current_is_30_percent_over_its_usual_at_the_loss() -> None:
    trace, incident = _trace_of("rising_current")
    amps, ts = trace.metrics["current_a"], trace.ts_ms
    running = amps > 1
    before = np.median(amps[running & (ts < incident.precursor_start_ms)])
    at_loss = np.median(amps[running & (ts > incident.loss_at_ms - 3_600_000) & (ts <= incident.loss_at_ms)])
    assert 1.2 < at_loss / before < 1.4


def test_a_short_cycling_compressor_switches_far_more_often() -> None:
    trace, incident = _trace_of("compressor_short_cycling")
    on, ts = trace.metrics["compressor_on"], trace.ts_ms
    switches = np.abs(np.diff(on))
    before = switches[ts[1:] < incident.precursor_start_ms].mean()
    after = switches[ts[1:] > incident.precursor_start_ms].mean()
    assert after > 4 * before


def test_a_drifting_sensor_reads_3_degrees_low_at_the_loss() -> None:
    trace, incident = _trace_of("sensor_drift")
    temp, ts = trace.metrics["temp_c"], trace.ts_ms
    before = temp[ts < incident.precursor_start_ms].mean()
    at_loss = temp[(ts > incident.loss_at_ms - 6 * 3_600_000) & (ts <= incident.loss_at_ms)].mean()
    assert 2.0 < before - at_loss < 4.0


def test_an_intermittent_link_leaves_gaps_and_bursts_then_stops() -> None:
    trace, incident = _trace_of("intermittent_connection")
    ts = trace.ts_ms
    gaps = np.diff(ts)
    normal = gaps[ts[1:] < incident.precursor_start_ms]
    faulty = gaps[(ts[1:] > incident.precursor_start_ms) & (ts[1:] <= incident.loss_at_ms)]
    assert np.median(normal) == 60_000 and normal.max() == 60_000
    assert faulty.max() >= 5 * 60_000 and faulty.min() <= 5_000  # gaps, and bursts
    assert ts[-1] < incident.loss_at_ms  # nothing after the link is gone


def test_a_fault_device_is_the_same_whatever_else_the_library_holds() -> None:
    one, two = fault_library(7, replicas=1), faults()
    device = one.devices[0]
    assert [r.to_json() for r in one.readings(device)][:500] == [r.to_json() for r in two.readings(device)][:500]
