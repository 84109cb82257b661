"""``forewarn train``: fit a fleet model per device kind on the fleet's stored history.

The readings of every device of a kind are streamed from PostgreSQL (``core.db.kind_readings``,
a server-side cursor), each device read through a :class:`detectors.fleet.FleetWindow` into
one feature row per bucket (10 minutes by default), and the rows split in time: the model is
fitted on the earlier part and validated on the last ``holdout`` share of the data's time
range. It is written as a versioned artefact beside a JSON manifest:

- ``fleet-<kind>-<version>.skops`` — the model (skops' format: loading it runs no code);
- ``fleet-<kind>-<version>.json`` — kind, version, the file's SHA-256, method, window, the
  metrics and feature names, the data range (first/last reading, devices, readings, rows),
  the validation figures, the library versions and when it was made.

The worker loads the newest manifest of each kind from ``FOREWARN_FLEET_MODEL_DIR`` and
checks the file against its SHA-256 (``streams.fleet``).

Validation is on the held-out slice, which has no labels: how often its windows would raise a
fleet finding (per device-day, at the model's threshold), its score quantiles, and a synthetic
check — the same windows with one metric's level moved by 6 robust standard deviations should
score above the untouched ones (``synthetic_shift_auc``; 0.5 would mean the model cannot see it).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from core import db
from core.contract import DEVICE_KINDS, Reading
from detectors.fleet import (
    METHODS,
    FleetModel,
    FleetWindow,
    auc,
    choose_metrics,
    feature_names,
    fit_fleet_model,
    rows_of_device,
)

DEFAULT_THRESHOLD = 0.9995
"""A window scoring at least this (more unusual than 99.95 % of the training windows) is a finding."""
METRIC_SAMPLE_READINGS = 200_000
"""The first readings of a kind (whole devices) that decide which metrics its model reads."""
SHIFT_SIGMAS = 6.0


@dataclass(slots=True)
class TrainReport:
    """What one kind's training did (``manifest`` is what was written next to the model)."""

    kind: str
    manifest: dict[str, Any] = field(default_factory=dict)
    model_path: Path | None = None
    manifest_path: Path | None = None
    seconds: float = 0.0
    skipped: str | None = None


Progress = Callable[[int, int, str], None]
"""(devices read, devices of the kind, the device being read)."""


def _x(reading: Reading) -> dict[str, float]:
    return {"ts": reading.ts / 1000.0, **reading.metrics}


def _by_device(stream: Iterable[tuple[str, str, Reading]]) -> Iterator[tuple[str, list[Reading]]]:
    """Group a (tenant, device, reading) stream in device order into each device's readings."""
    key: str | None = None
    readings: list[Reading] = []
    for tenant, device, reading in stream:
        this = f"{tenant}/{device}"
        if this != key:
            if key is not None:
                yield key, readings
            key, readings = this, []
        readings.append(reading)
    if key is not None:
        yield key, readings


@dataclass(slots=True)
class _Rows:
    ts: list[float] = field(default_factory=list)
    X: list[list[float]] = field(default_factory=list)
    devices: int = 0
    readings: int = 0
    first_ms: int | None = None
    last_ms: int | None = None


def read_rows(
    url: str,
    kind: str,
    *,
    window_s: float,
    buckets: int,
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    total_devices: int = 0,
    progress: Progress | None = None,
) -> tuple[list[str], _Rows]:
    """Stream the kind's readings and make each device's feature rows; returns the metrics read."""
    out = _Rows()
    metrics: list[str] | None = None
    held: list[tuple[str, list[Reading]]] = []
    counts: Counter[str] = Counter()

    def rows_of(key: str, readings: list[Reading], chosen: list[str]) -> None:
        window = FleetWindow(chosen, window_s, buckets)
        for row in rows_of_device(window, (_x(r) for r in readings), key, kind):
            out.ts.append(row.ts)
            out.X.append(list(row.features))

    for key, readings in _by_device(db.kind_readings(url, kind, tenant=tenant, since=since, until=until)):
        out.devices += 1
        out.readings += len(readings)
        out.first_ms = min(out.first_ms if out.first_ms is not None else readings[0].ts, readings[0].ts)
        out.last_ms = max(out.last_ms if out.last_ms is not None else readings[-1].ts, readings[-1].ts)
        if progress:
            progress(out.devices, max(total_devices, out.devices), key)
        if metrics is None:
            held.append((key, readings))
            for r in readings:
                counts.update(r.metrics.keys())
            if sum(len(r) for _, r in held) < METRIC_SAMPLE_READINGS:
                continue
            metrics = choose_metrics(counts, sum(len(r) for _, r in held))
            for k, rs in held:
                rows_of(k, rs, metrics)
            held = []
            continue
        rows_of(key, readings, metrics)
    if metrics is None:
        metrics = choose_metrics(counts, sum(len(r) for _, r in held))
        for k, rs in held:
            if metrics:
                rows_of(k, rs, metrics)
    return metrics, out


def validate(model: FleetModel, X: np.ndarray, threshold: float, bucket_s: float, seed: int) -> dict[str, Any]:
    """Figures of the model on held-out rows (no labels there; see the module's docstring)."""
    if not len(X):
        return {"rows": 0}
    scores, _ = model.score_many(X)
    device_days = len(X) * bucket_s / 86_400.0
    shifted = np.array(X, dtype=float, copy=True)
    rng = np.random.default_rng(seed)
    names = model.feature_names
    for i in range(len(shifted)):
        metric = model.metrics[int(rng.integers(len(model.metrics)))]
        for stat in ("last", "mean", "min", "max", "vs_baseline"):
            j = names.index(f"{metric}:{stat}")
            shifted[i, j] = (shifted[i, j] if np.isfinite(shifted[i, j]) else model.medians[j]) + (
                SHIFT_SIGMAS * model.scales[j]
            )
    moved, _ = model.score_many(shifted)
    return {
        "rows": len(X),
        "device_days": round(device_days, 2),
        "findings_per_device_day": round(float(np.sum(scores >= threshold)) / device_days, 4) if device_days else None,
        "share_at_or_above_threshold": round(float(np.mean(scores >= threshold)), 6),
        "score_p50": round(float(np.quantile(scores, 0.5)), 4),
        "score_p99": round(float(np.quantile(scores, 0.99)), 4),
        "synthetic_shift_auc": round(auc(scores, moved), 4),
    }


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("scikit-learn", "numpy", "skops"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def train_kind(
    url: str,
    kind: str,
    out_dir: Path,
    *,
    method: str = "pca",
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    holdout: float = 0.2,
    threshold: float = DEFAULT_THRESHOLD,
    window_s: float = 3600.0,
    buckets: int = 6,
    max_rows: int = 500_000,
    seed: int = 0,
    progress: Progress | None = None,
) -> TrainReport:
    """Fit, validate and write one kind's fleet model (``skipped`` says why when there is too little data)."""
    if kind not in DEVICE_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(DEVICE_KINDS)}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be between 0 and 1, got {holdout!r}")
    t0 = time.perf_counter()
    report = TrainReport(kind)
    total = sum(1 for t in db.score_targets(url, tenant) if t["kind"] == kind)
    metrics, rows = read_rows(
        url,
        kind,
        window_s=window_s,
        buckets=buckets,
        tenant=tenant,
        since=since,
        until=until,
        total_devices=total,
        progress=progress,
    )
    if not rows.X or not metrics:
        report.skipped = f"no {kind} device has a whole window ({window_s / 3600:g} h) of stored readings"
        return report
    X, ts = np.array(rows.X, dtype=float), np.array(rows.ts)
    cut = float(ts.min() + (1.0 - holdout) * (ts.max() - ts.min()))
    fit_rows, held = X[ts < cut], X[ts >= cut]
    if len(fit_rows) < 10:
        report.skipped = f"{len(fit_rows)} feature rows before the held-out slice: too few to fit (10 at least)"
        return report
    if len(fit_rows) > max_rows:
        fit_rows = fit_rows[np.sort(np.random.default_rng(seed).choice(len(fit_rows), max_rows, replace=False))]
    model = fit_fleet_model(kind, metrics, fit_rows, method=method, window_s=window_s, buckets=buckets, seed=seed)
    data = model.to_bytes()
    digest = hashlib.sha256(data).hexdigest()
    created = datetime.now(UTC)
    version = f"{created:%Y%m%dT%H%M%SZ}-{digest[:12]}"
    out_dir.mkdir(parents=True, exist_ok=True)
    report.model_path = out_dir / f"fleet-{kind}-{version}.skops"
    report.manifest_path = out_dir / f"fleet-{kind}-{version}.json"
    report.manifest = {
        "kind": kind,
        "model_version": version,
        "file": report.model_path.name,
        "sha256": digest,
        "format": 1,
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "method": method,
        "threshold": threshold,
        "window_s": window_s,
        "buckets": buckets,
        "baseline_half_life_s": model.baseline_half_life_s,
        "metrics": metrics,
        "feature_names": feature_names(metrics),
        "data": {
            "tenant": tenant,
            "first_ts": _iso(rows.first_ms),
            "last_ts": _iso(rows.last_ms),
            "devices": rows.devices,
            "readings": rows.readings,
            "rows": len(X),
            "train_rows": len(fit_rows),
            "holdout_rows": len(held),
            "holdout_from": _iso(int(cut * 1000)),
        },
        "validation": validate(model, held, threshold, window_s / buckets, seed),
        "libraries": _library_versions(),
        "seed": seed,
    }
    tmp = report.model_path.with_suffix(".skops.tmp")
    tmp.write_bytes(data)
    tmp.replace(report.model_path)
    report.manifest_path.write_text(json.dumps(report.manifest, indent=2) + "\n")  # last: the model is there
    report.seconds = time.perf_counter() - t0
    return report


def train_command(
    url: str,
    out_dir: Path,
    kinds: Iterable[str],
    console: Any,
    err: Any,
    **options: Any,
) -> list[TrainReport]:
    """``forewarn train``: each kind's model with a progress bar (on ``err``) and a summary line."""
    from forewarn.progress import device_progress

    reports = []
    for kind in kinds:
        bar, advance = device_progress(f"reading {kind} devices", err)
        with bar:
            report = train_kind(url, kind, out_dir, progress=advance, **options)
        reports.append(report)
        if report.skipped:
            console.print(f"{kind}: no model ({report.skipped})")
            continue
        m, v = report.manifest, report.manifest["validation"]
        console.print(
            f"{kind}: model {m['model_version']} ({m['method']}, {len(m['metrics'])} metrics, "
            f"{len(m['feature_names'])} features) from {m['data']['devices']} devices, {m['data']['readings']:,} "
            f"readings, {m['data']['train_rows']:,} windows ({m['data']['first_ts']} to {m['data']['last_ts']}); "
            f"held-out {v['rows']:,} windows: {v.get('findings_per_device_day')} findings per device-day, "
            f"synthetic shift AUC {v.get('synthetic_shift_auc')}; {report.seconds:.1f} s"
        )
        console.print(f"  wrote {report.model_path} and {report.manifest_path.name if report.manifest_path else ''}")
    return reports
