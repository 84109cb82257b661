"""The fleet model (detectors.fleet): what scoring costs per row by batch size, what training
costs by fleet size, what reading a device into its window costs the worker, and how the
candidate methods compare on the simulator's labelled incidents (the measurement that chose
the default, ``pca``).

1. **Scoring**: an equipment model fitted on simulated pumps scores rows in batches of 1, 100
   and 1,000 (``FleetModel.score_many``: one scikit-learn call per batch); µs per row and the
   ratio to batch 1, per method.
2. **Windows**: µs per reading through ``detectors.fleet.observe`` (the worker's per-reading
   cost), and per row made.
3. **Training** (in memory: the pure part of ``forewarn train``): N pumps × D days of one
   reading a minute → feature rows → fit; seconds for each (N, D). With ``--database`` also the
   whole ``forewarn train`` path on a throw-away PostgreSQL database (store, then read back by
   server-side cursor, fit, write).
4. **Methods**: trained on the quiet devices of one seeded fleet, tested on another seed's
   quiet devices and incident devices (``simulator.fleet.build_fleet``): false findings per
   device-day on the quiet ones at the default threshold, AUC of precursor windows (between an
   incident's precursor start and its loss) against quiet windows, incidents with a finding
   before the loss, and the median lead time of the first.

Figures only, no assertions; about 2–4 minutes (``--quick``: smaller).

    python benchmarks/fleet_model.py [--quick] [--database]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from benchlib import machine, say, table  # this folder's helper

from core.contract import Reading, ReadingsBatch
from detectors.fleet import METHODS, FleetWindow, auc, fit_fleet_model, observe, rows_of_device
from forewarn.train import DEFAULT_THRESHOLD
from simulator.equipment import EquipmentParams, simulate_equipment
from simulator.fleet import STANDARD_START_MS, Fleet, SimDevice, build_fleet
from simulator.signals import Span

METRICS = ["bearing_temp_c", "current_a", "pressure_kpa", "rssi_dbm", "vibration_mm_s"]


def pump_readings(seed: int, days: float) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    params = EquipmentParams(
        baseline_vibration_mm_s=float(rng.uniform(1.2, 3.0)),
        rated_current_a=float(rng.uniform(30, 150)),
        pressure_kpa=float(rng.uniform(300, 800)),
    )
    trace = simulate_equipment(seed, Span(STANDARD_START_MS, days * 86_400.0), params)
    cols = [(m, trace.metrics[m].tolist()) for m in METRICS]
    return [
        {"ts": ts / 1000.0, **{m: c[i] for m, c in cols if not math.isnan(c[i])}}
        for i, ts in enumerate(trace.ts_ms.tolist())
    ]


def rows_of(readings_by_device: Sequence[list[dict[str, float]]]) -> np.ndarray:
    return np.array([r.features for rs in readings_by_device for r in rows_of_device(FleetWindow(METRICS), rs)])


def scoring(repeat: int) -> None:
    say("scoring cost by batch size")
    X = rows_of([pump_readings(s, 2) for s in range(1, 21)])
    out = []
    for method in METHODS:
        model = fit_fleet_model("equipment", METRICS, X, method=method)
        per_row = {}
        for batch in (1, 100, 1000):
            rows = X[np.arange(batch) % len(X)]
            calls = max(3, 2000 // batch)
            best = math.inf
            for _ in range(repeat):
                t0 = time.perf_counter()
                for _ in range(calls):
                    model.score_many(rows)
                best = min(best, (time.perf_counter() - t0) / (calls * batch))
            per_row[batch] = best * 1e6
        out.append(
            [method]
            + [f"{per_row[b]:,.1f}" for b in (1, 100, 1000)]
            + [f"{per_row[1] / per_row[1000]:,.0f}×", f"{1e6 / per_row[1000]:,.0f}"]
        )
    print("\n### Scoring: µs per row by batch size (equipment, 46 features)\n")
    print(table(["method", "batch 1", "batch 100", "batch 1,000", "1 ÷ 1,000", "rows/s at 1,000"], out))


def windows() -> None:
    say("window cost per reading")
    readings = pump_readings(3, 7)
    window = FleetWindow(METRICS)
    t0 = time.perf_counter()
    made = sum(1 for x in readings if observe(window, x) is not None)
    spent = time.perf_counter() - t0
    window = FleetWindow(METRICS)
    for x in readings:
        window.learn_one(x)
    t1 = time.perf_counter()
    for _ in range(1000):
        window.features()
    per_row = (time.perf_counter() - t1) / 1000
    print("\n### Windows (one pump, a week of one reading a minute)\n")
    print(
        table(
            ["readings", "rows made", "µs per reading (observe)", "µs per feature row"],
            [[f"{len(readings):,}", f"{made:,}", f"{spent / len(readings) * 1e6:.1f}", f"{per_row * 1e6:.1f}"]],
        )
    )


def training(sizes: Sequence[tuple[int, int]]) -> None:
    out = []
    for n, days in sizes:
        say(f"training on {n} pumps × {days} days")
        readings = [pump_readings(1000 + k, days) for k in range(n)]
        total = sum(len(r) for r in readings)
        t0 = time.perf_counter()
        X = rows_of(readings)
        t1 = time.perf_counter()
        row = [f"{n} × {days}", f"{total:,}", f"{len(X):,}", f"{t1 - t0:.1f}"]
        for method in ("pca", "iforest"):
            t2 = time.perf_counter()
            fit_fleet_model("equipment", METRICS, X, method=method)
            row.append(f"{time.perf_counter() - t2:.2f}")
        out.append(row)
    print("\n### Training in memory (features, then fit), seconds\n")
    print(table(["pumps × days", "readings", "rows", "features s", "fit pca s", "fit iforest s"], out))


def training_on_database(n: int, days: int) -> None:
    from benchlib import bench_database, bulk_devices

    from core import db
    from forewarn.train import train_kind

    with bench_database() as url:
        db.add_customer(url, "owner", "Owner", "en", ["json://127.0.0.1:1/x"], tenant="bench")
        bulk_devices(url, "bench", "owner", [(f"pump-{k}", "equipment") for k in range(n)])
        say(f"storing {n} pumps × {days} days")

        async def store() -> int:
            s = db.Store(url)
            await s.open()
            stored = 0
            try:
                for k in range(n):
                    rs = [
                        Reading(int(x["ts"] * 1000), {m: v for m, v in x.items() if m != "ts"})
                        for x in pump_readings(2000 + k, days)
                    ]
                    for i in range(0, len(rs), 5000):
                        part = tuple(rs[i : i + 5000])
                        stored += await s.store_readings([ReadingsBatch("bench", f"pump-{k}", "equipment", part, 0)])
            finally:
                await s.close()
            return stored

        rows = asyncio.run(store())
        say("forewarn train (equipment)")
        with tempfile.TemporaryDirectory() as folder:
            t0 = time.perf_counter()
            report = train_kind(url, "equipment", Path(folder))
            spent = time.perf_counter() - t0
        print("\n### `forewarn train` on PostgreSQL (read by server-side cursor, features, fit pca, write)\n")
        print(
            table(
                ["pumps × days", "rows stored", "feature rows", "seconds", "stored rows/s read and featurised"],
                [
                    [
                        f"{n} × {days}",
                        f"{rows:,}",
                        f"{report.manifest['data']['rows']:,}",
                        f"{spent:.1f}",
                        f"{rows / spent:,.0f}",
                    ]
                ],
            )
        )


def _device_rows(fleet: Fleet, device: SimDevice, metrics: list[str]) -> list[tuple[float, list[float]]]:
    xs = ({"ts": r.ts_ms / 1000.0, **{k: float(v) for k, v in r.metrics.items()}} for r in fleet.readings(device))
    return [(r.ts, list(r.features)) for r in rows_of_device(FleetWindow(metrics), xs)]


def methods(kind: str, scenarios: list[str], hours: float, devices: int) -> list[list[str]]:
    say(f"methods on {kind} ({', '.join(scenarios)})")
    train = build_fleet(1, devices=devices, quiet_ratio=1.0, start_ms=STANDARD_START_MS, duration_s=hours * 3600)
    mine = [d for d in train.devices if d.kind == kind]
    metrics = sorted(
        {m for d in mine[:3] for r in train.readings(d) for m in r.metrics} - {"lat", "lon", "heading_deg"}
    )
    X = np.array([f for d in mine for _, f in _device_rows(train, d, metrics)])
    test = build_fleet(
        2, devices=devices, scenarios=scenarios, quiet_ratio=0.5, start_ms=STANDARD_START_MS, duration_s=hours * 3600
    )
    quiet, incidents = [], []
    for d in test.devices:
        if d.kind != kind:
            continue
        rows = _device_rows(test, d, metrics)
        incident = test.incident(d)
        if incident is None:
            quiet += [f for _, f in rows]
        else:
            incidents.append((rows, incident.precursor_start_ms / 1000, incident.loss_at_ms / 1000))
    out = []
    for method in METHODS:
        model = fit_fleet_model(kind, metrics, X, method=method)
        q = model.score_many(np.array(quiet))[0]
        precursor, leads = [], []
        for rows, start, loss in incidents:
            ts = np.array([t for t, _ in rows])
            s = model.score_many(np.array([f for _, f in rows]))[0]
            precursor += list(s[(ts >= start) & (ts < loss)])
            hit = ts[(ts < loss) & (s >= DEFAULT_THRESHOLD)]
            if hit.size:
                leads.append((loss - hit[0]) / 3600)
        device_days = len(quiet) * 600 / 86_400
        out.append(
            [
                kind,
                method,
                f"{len(X):,}",
                f"{np.sum(q >= DEFAULT_THRESHOLD) / device_days:.2f}",
                f"{auc(q, precursor):.3f}",
                f"{len(leads)}/{len(incidents)}",
                f"{np.median(leads):.1f}" if leads else "-",
            ]
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller fleets")
    parser.add_argument("--database", action="store_true", help="also time forewarn train on PostgreSQL")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    scoring(args.repeat)
    windows()
    training([(10, 1), (10, 7)] if args.quick else [(10, 1), (10, 7), (50, 7), (100, 7)])
    if args.database:
        training_on_database(10, 2 if args.quick else 7)
    devices = 24 if args.quick else 40
    rows = methods("equipment", ["bearing_failure"], 48, devices)
    rows += methods("coldchain", ["coldchain_failure"], 24, devices)
    rows += methods("home", ["frozen_pipe", "slow_leak", "burst_pipe", "electrical_fire", "power_cut"], 36, devices)
    print(f"\n### Methods (trained on seed 1's quiet devices, tested on seed 2; threshold {DEFAULT_THRESHOLD})\n")
    print(
        table(
            [
                "kind",
                "method",
                "training rows",
                "findings / quiet device-day",
                "AUC precursor vs quiet",
                "incidents with a finding before the loss",
                "median lead h",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
