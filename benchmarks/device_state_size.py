"""Bytes per device in the worker's changelog, per device kind, after a simulated week.

The worker keeps each device's ``DeviceMonitor`` as versioned JSON (``DeviceMonitor.to_state``,
written with orjson to the ``device_to_monitor`` changelog); its size decides how many devices
fit in Kafka and in the worker's memory (the issue's target: at most 4 KB per device, so a
million devices fit in a few GB). For each kind, ``--devices`` quiet simulated devices
(``simulator.fleet.build_fleet``) are fed a week of readings; printed: the state's bytes, the
detectors holding most of it, the cost of writing it once (``to_state`` + ``orjson.dumps``) and
of one reading (``observe``), and beside the state's bytes those of the same state uncompacted
(every float as it is, the form saved before trends were packed as float32:
``detectors.state.capture(compact=False)``). Pure, in-process; figures only, no assertions.

    python benchmarks/device_state_size.py [--days 7] [--devices 2]
"""

from __future__ import annotations

import argparse
import time

import orjson
from benchlib import say, table  # this folder's helper

from core.contract import DEVICE_KINDS, Reading
from detectors.state import capture
from simulator.fleet import build_fleet
from streams.decisions import DeviceMonitor

TARGET_BYTES = 4096
START_MS = 1_763_654_400_000  # 2025-11-21 00:00 in China


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--devices", type=int, default=2, help="quiet devices per kind")
    args = parser.parse_args()
    fleet = build_fleet(
        7, devices=len(DEVICE_KINDS) * args.devices, quiet_ratio=1.0, start_ms=START_MS, duration_s=args.days * 86400
    )
    rows = []
    for sim in sorted(fleet.devices, key=lambda d: (d.kind, d.device)):
        say(f"{sim.device}: {args.days:g} simulated days …")
        readings = [
            Reading(int(r.ts_ms), {k: float(v) for k, v in r.metrics.items()}, r.seq) for r in fleet.readings(sim)
        ]
        monitor = DeviceMonitor(sim.tenant, sim.device, sim.kind)
        t0 = time.perf_counter()
        for reading in readings:
            monitor.heard(reading.ts)
            monitor.observe(reading)
        observe_us = (time.perf_counter() - t0) / max(len(readings), 1) * 1e6
        state = monitor.to_state()
        size = len(orjson.dumps(state))
        full = {name: capture(detector, compact=False) for name, detector in monitor._named_detectors()}
        full_size = len(orjson.dumps({**state, "detectors": full}))
        n = 200
        t0 = time.perf_counter()
        for _ in range(n):
            orjson.dumps(monitor.to_state())
        write_us = (time.perf_counter() - t0) / n * 1e6
        biggest = sorted(((len(orjson.dumps(v)), k) for k, v in state["detectors"].items()), reverse=True)[:3]
        rows.append(
            [
                sim.kind,
                sim.device,
                f"{len(readings):,}",
                f"{size:,}",
                f"{full_size:,}",
                "yes" if size <= TARGET_BYTES else "NO",
                ", ".join(f"{name} {b:,}" for b, name in biggest),
                f"{write_us:.0f}",
                f"{observe_us:.0f}",
            ]
        )
    print(f"\n## Device state after {args.days:g} simulated days (orjson bytes of DeviceMonitor.to_state)\n")
    headers = ["kind", "device", "readings", "state bytes", "uncompacted", f"≤ {TARGET_BYTES}", "largest detectors"]
    print(table([*headers, "µs to write", "µs/reading observe"], rows))
    print("(largest detectors: their bytes in the state)")


if __name__ == "__main__":
    main()
