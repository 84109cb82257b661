"""The worker's side of the fleet models: load them, read devices into windows, score in batches.

:meth:`FleetScorer.from_dir` loads the newest model of each device kind from
``FOREWARN_FLEET_MODEL_DIR`` (the manifests ``forewarn train`` writes; a file whose SHA-256
differs from its manifest's is refused). :meth:`FleetScorer.observe` reads a batch's readings
into each device's :class:`~detectors.fleet.FleetWindow` and queues a feature row whenever a
device completes a bucket of its window; :meth:`FleetScorer.score_due` scores the queued rows —
one scikit-learn call per kind, never one per row (a call costs milliseconds whatever its size)
— once ``batch_rows`` are queued or the oldest has waited ``max_wait_s``, and returns the
findings (:func:`detectors.fleet.score_rows`).

A fleet finding is advisory unless a physical rule's warning is open on the same device
(:func:`open_severity` reads that from the device's monitor); it then carries that warning's
severity, never more.

The windows live in this process only (at most ``max_devices``, the least recently heard from
dropped first): after a restart a device is scored again once it has reported for a whole
window (an hour by default), and its long-run level starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.contract import ReadingsBatch
from detectors.base import SEVERITIES, Finding
from detectors.fleet import FleetFinding, FleetModel, FleetRow, FleetWindow, observe, score_rows
from streams.decisions import DeviceMonitor

log = logging.getLogger(__name__)


class FleetModelError(ValueError):
    """A fleet model that cannot be loaded; the message names the file and why."""


@dataclass(frozen=True, slots=True)
class LoadedModel:
    model: FleetModel
    manifest: dict[str, Any]
    path: Path


def load_model(manifest_path: Path) -> LoadedModel:
    """One model from its manifest, its file checked against the manifest's SHA-256."""
    try:
        manifest = json.loads(manifest_path.read_text())
        path = manifest_path.parent / str(manifest["file"])
        data = path.read_bytes()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FleetModelError(f"{manifest_path}: {exc}") from None
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
        raise FleetModelError(f"{path}: its SHA-256 is not the one its manifest names; refusing it")
    try:
        model = FleetModel.from_bytes(data)
    except Exception as exc:  # noqa: BLE001 - skops' and our own refusals alike
        raise FleetModelError(f"{path}: {exc}") from None
    if model.kind != manifest.get("kind"):
        raise FleetModelError(f"{path}: a {model.kind} model under a {manifest.get('kind')} manifest")
    return LoadedModel(model, manifest, path)


def newest_manifests(folder: Path) -> dict[str, Path]:
    """Per device kind, the manifest made last (by its ``created_at``) in ``folder``."""
    newest: dict[str, tuple[str, Path]] = {}
    for path in sorted(folder.glob("fleet-*.json")):
        try:
            doc = json.loads(path.read_text())
            kind, created = str(doc["kind"]), str(doc["created_at"])
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s: not a fleet model manifest; skipped", path)
            continue
        if kind not in newest or created > newest[kind][0]:
            newest[kind] = (created, path)
    return {kind: path for kind, (_, path) in newest.items()}


def open_severity(monitor: DeviceMonitor | None) -> str | None:
    """The severity of the device's strongest open warning (its physical rules'), or ``None``."""
    if monitor is None:
        return None
    physical = [w.severity for risk, w in monitor.open.items() if risk != LEARNED_RISK]
    return max(physical, key=SEVERITIES.index) if physical else None


LEARNED_RISK = "unusual_reading"
"""The risk a fleet finding is warned as: the learned risk, which the device's own baseline
(``detectors.baseline``) shares, so one open warning covers what either learned detector finds."""


def finding_of(fleet: FleetFinding) -> Finding:
    """A fleet model's finding as the device monitor decides it (:meth:`DeviceMonitor.consider`)."""
    return Finding(LEARNED_RISK, fleet.score, fleet.severity, None, {"triggers": ["fleet"], **fleet.evidence})


class FleetScorer:
    """Per-device windows, queued feature rows and the models that score them (see the module)."""

    def __init__(
        self,
        models: Mapping[str, LoadedModel],
        *,
        batch_rows: int = 1000,
        max_wait_s: float = 5.0,
        max_devices: int = 200_000,
        threshold: float | None = None,
    ) -> None:
        if batch_rows < 1 or max_wait_s < 0 or max_devices < 1:
            raise ValueError("batch_rows and max_devices must be at least 1, max_wait_s at least 0")
        self.models = dict(models)
        self.batch_rows = batch_rows
        self.max_wait_s = max_wait_s
        self.max_devices = max_devices
        self.threshold = threshold
        self._windows: OrderedDict[str, FleetWindow] = OrderedDict()
        self._queued: list[FleetRow] = []
        self._oldest: float | None = None
        self.scored = 0
        self.findings = 0

    @classmethod
    def from_dir(cls, folder: str | Path | None, **kwargs: Any) -> FleetScorer:
        """The newest model of each kind in ``folder`` (empty or ``None``: no model, the scorer
        does nothing). A model that does not load is logged and left out."""
        models: dict[str, LoadedModel] = {}
        if folder:
            for kind, manifest in newest_manifests(Path(folder)).items():
                try:
                    models[kind] = load_model(manifest)
                except FleetModelError as exc:
                    log.error("fleet model of %s not loaded: %s", kind, exc)
                    continue
                log.info("fleet model of %s: %s", kind, models[kind].manifest.get("model_version"))
        return cls(models, **kwargs)

    @property
    def enabled(self) -> bool:
        return bool(self.models)

    @property
    def queued(self) -> int:
        return len(self._queued)

    def _window(self, key: str, model: FleetModel) -> FleetWindow:
        window = self._windows.get(key)
        if window is None or window.metrics != model.metrics:
            window = self._windows[key] = model.new_window()
            while len(self._windows) > self.max_devices:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(key)
        return window

    def observe(self, batches: Iterable[ReadingsBatch], now: float | None = None) -> int:
        """Read the batches' readings into their devices' windows; returns the rows queued."""
        before = len(self._queued)
        for batch in batches:
            loaded = self.models.get(batch.kind)
            if loaded is None:
                continue
            window = self._window(batch.key, loaded.model)
            for reading in batch.readings:
                x = {"ts": reading.ts / 1000.0, **reading.metrics}
                row = observe(window, x)
                if row is not None:
                    self._queued.append(FleetRow(batch.key, batch.kind, x["ts"], row))
        if len(self._queued) > before and self._oldest is None:
            self._oldest = time.monotonic() if now is None else now
        return len(self._queued) - before

    def due(self, now: float | None = None) -> bool:
        if not self._queued or self._oldest is None:
            return False
        now = time.monotonic() if now is None else now
        return len(self._queued) >= self.batch_rows or now - self._oldest >= self.max_wait_s

    def score_due(
        self, severity_of: Callable[[str], str | None], now: float | None = None, force: bool = False
    ) -> list[FleetFinding]:
        """Score the queued rows when due (or ``force``): findings, each graded by the severity
        ``severity_of(device key)`` of the device's open physical-rule warnings."""
        if not (force and self._queued) and not self.due(now):
            return []
        rows, self._queued, self._oldest = self._queued, [], None
        physical = {row.key: severity_of(row.key) for row in rows}
        findings: list[FleetFinding] = []
        for kind in {row.kind for row in rows}:
            loaded = self.models[kind]
            threshold = self.threshold or float(loaded.manifest.get("threshold", 0.9995))
            findings += score_rows(
                {kind: loaded.model}, [r for r in rows if r.kind == kind], physical, threshold=threshold
            )
        self.scored += len(rows)
        self.findings += len(findings)
        return findings
