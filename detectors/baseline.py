"""Adaptive baselines: how unusual a reading is for *this* device at *this* time of day and week.

The physical rules (:mod:`detectors.home`, :mod:`detectors.equipment` …) see what they name: a
pipe heading for 0 °C, a bearing in ISO 10816's alarm zone. A sensor drifting, a compressor
switching on and off three times as often as it used to, a pump drawing more current week after
week, a radio link that comes and goes: none of them crosses a physical threshold, yet each is
unusual *for that device*. :class:`UnusualReading` learns, per device, what is usual and says
when a reading stops being so.

**What it learns.** Each *channel* is one of the device's numeric metrics (its value), a boolean
metric's switches per hour (a compressor's on/off cycling, a door's openings), or the device's
readings per hour (its connection). Once every ``sample_s`` (10 min) of reading time it takes a
sample of every channel and compares it with that channel's baseline:

- a daily profile of ``buckets`` (6) levels around the local day (bucket centres 4 h apart,
  linearly interpolated, so the usual value moves smoothly through the day), relative to an
  anchor (the channel's first sample); learned on weekdays;
- a weekend offset (Saturday and Sunday against the weekday profile): the weekly seasonality;
- a scale: the exponentially weighted mean absolute deviation from that usual value (never
  below ``min_scale_frac`` × (1 + |usual|), so a quantised, nearly constant metric does not
  make a small step look enormous; for a count per hour never below one an hour).

Updates are exponentially weighted (``alpha`` for the levels, ``beta`` for the scale; faster
while the baseline is young) and robust: a residual counts at most ``learn_clip`` scales, a
sample more than ``slack`` scales away a quarter as much (and not at all for the scale), so a
fault is not learnt as the new usual within hours, and a real, lasting change still is within
days.

**When it speaks.** The sample's deviation in scales (``|z|``, at most ``z_clip``) feeds a CUSUM
per channel: it grows by ``|z| - slack`` while samples stay more than ``slack`` scales away (on
either side: a link that alternates gaps and bursts is as unusual as a steady drift), and
shrinks back otherwise. A channel is unusual once it reaches ``threshold``
(30: a few hours of samples several scales away; a single spike, a 45-minute radio drop-out or
an evening that is a little colder than usual is not). The score rises from 0.5 there to 1 at
twice that. Silent during the warm-up (``warmup_s``, 3 days: every hour of the day seen three
times) and, for weekend samples, until a weekend day has been seen.

**Severity.** ``advisory`` — below every physical rule's — unless corroborated: two or more
channels unusual at once make it a ``warning``. There is no forecast: how long until a loss is
unknown, and the warning says so.

**State.** The baselines are packed into one string (per channel: the anchor as float32, the
levels, weekend offset, scale, CUSUM and its length as float16; base64), rounded so at every
sample: what is saved is exactly what is live, and a restored device decides exactly as if it
had never been saved. About 32 bytes of JSON per channel.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Mapping
from typing import Any

from core.contract import METRICS
from core.risks import check_risk
from detectors.base import Finding, Severity
from detectors.checks import check, count, in_range, positive
from detectors.physical import PhysicalDetector, ramp, rnd
from detectors.readings import DEFAULT_UTC_OFFSET_H, num

READINGS = "readings_per_h"
"""The channel of a device's own reporting: readings per hour."""

SWITCHES = "_switches_per_h"
"""Suffix of a boolean metric's channel: its switches (0 → 1 or 1 → 0) per hour."""

_ROW = 4  # per channel beyond the levels: weekend offset, scale, CUSUM, samples the CUSUM has run
_WEEKEND, _SCALE, _CUSUM, _RUN = range(4)


def channel_names(metrics: tuple[str, ...], arrivals: bool = True) -> tuple[str, ...]:
    """The channels a baseline of ``metrics`` keeps, in order.

    >>> channel_names(("temp_c", "compressor_on"))
    ('temp_c', 'compressor_on_switches_per_h', 'readings_per_h')
    """
    names = tuple(m + SWITCHES if METRICS[m].kind == "bool" else m for m in metrics)
    return (*names, READINGS) if arrivals else names


class UnusualReading(PhysicalDetector):
    """A reading unusual for this device at this time of day and week (see the module).

    ``metrics`` are the metrics it learns (numeric: their values; boolean: their switches per
    hour); with ``arrivals`` also the device's readings per hour. With ``active_metric``, the
    metrics are sampled only from readings where it is at least ``active_min`` (a pump's
    current: a running machine is compared with itself running, not with itself stopped).

    >>> import random
    >>> rnd_ = random.Random(7)
    >>> detector = UnusualReading(metrics=("current_a",))
    >>> def amps(hour: float, creep: float) -> float:  # a pump: busier by day, a little noise
    ...     return 12.0 + 2.0 * math.sin(2 * math.pi * hour / 24) + rnd_.gauss(0, 0.2) + creep
    >>> finding = None
    >>> for minute in range(0, 10 * 1440, 5):  # ten days, a reading every 5 min
    ...     creep = max(0.0, (minute - 7 * 1440) / 1440) * 1.5  # from day 7: +1.5 A a day
    ...     x = {"ts": 1_763_654_400.0 + 60 * minute, "current_a": amps(minute / 60, creep)}
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    ...     if finding.score >= 0.5:
    ...         break
    >>> finding.evidence["metric"], finding.evidence["above"], finding.severity
    ('current_a', True, 'advisory')
    >>> 7 * 1440 < minute < 9 * 1440  # within two days of the creep starting
    True
    """

    risk = check_risk("unusual_reading")
    metrics: tuple[str, ...] = ("temp_c",)  # the default; an instance reads what it is given

    def __init__(
        self,
        metrics: tuple[str, ...] = ("temp_c",),
        arrivals: bool = True,
        sample_s: float = 600.0,
        buckets: int = 6,
        warmup_s: float = 3 * 86400.0,
        alpha: float = 0.02,
        beta: float = 0.005,
        learn_clip: float = 2.0,
        z_clip: float = 5.0,
        slack: float = 2.5,
        threshold: float = 30.0,
        min_scale_frac: float = 0.01,
        active_metric: str = "",
        active_min: float = 0.0,
        utc_offset_h: float = DEFAULT_UTC_OFFSET_H,
    ) -> None:
        check(isinstance(metrics, tuple) and len(metrics) > 0, "metrics must be a non-empty tuple of metric names")
        for m in metrics:
            check(m in METRICS, f"unknown metric {m!r}")
        check(len(set(metrics)) == len(metrics), "metrics must not repeat")
        check(isinstance(arrivals, bool), "arrivals must be True or False")
        self.arrivals = arrivals
        self.sample_s = positive("sample_s", sample_s)
        self.buckets = count("buckets", buckets, 2)
        self.warmup_s = in_range("warmup_s", warmup_s, 0.0, 365 * 86400.0)
        self.alpha = in_range("alpha", alpha, 1e-4, 1.0)
        self.beta = in_range("beta", beta, 1e-4, 1.0)
        self.learn_clip = positive("learn_clip", learn_clip)
        self.z_clip = positive("z_clip", z_clip)
        self.slack = in_range("slack", slack, 0.0, z_clip)
        check(slack < z_clip, "slack must be < z_clip")
        self.threshold = positive("threshold", threshold)
        self.min_scale_frac = in_range("min_scale_frac", min_scale_frac, 1e-6, 1.0)
        check(active_metric == "" or active_metric in METRICS, f"unknown active_metric {active_metric!r}")
        self.active_metric = active_metric
        self.active_min = in_range("active_min", active_min, -1e12, 1e12)
        self.utc_offset_h = in_range("utc_offset_h", utc_offset_h, -14.0, 14.0)
        object.__setattr__(self, "metrics", metrics)  # `metrics` is what a detector reads
        self._m = ""  # the packed baselines (empty: none yet)
        self._t: float | None = None  # the last sample's time
        self._t0: float | None = None  # the first reading's time (the warm-up's start)
        self._n = 0  # readings since the last sample
        self._k = 0  # samples taken
        self._kw = 0  # of them on a weekend
        self._sw = [0] * len(metrics)  # switches since the last sample, per metric (booleans only)
        self._b = 0  # booleans' last states: bit 2i known, bit 2i+1 on
        self._f: list[Any] | None = None  # the finding of the last sample: [score, severity, evidence]

    @property
    def channels(self) -> tuple[str, ...]:
        return channel_names(self.metrics, self.arrivals)

    # ------------------------------------------------------------------ scoring

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        """The judgement of the last sample (a sample is judged as it is learnt: at most
        ``sample_s`` old); quiet during the warm-up and while every channel is usual."""
        found = self._f
        if found is None:
            return self._quiet()
        return Finding(self.risk, found[0], found[1], None, {"triggers": ["unusual"], **found[2]})

    # ------------------------------------------------------------------ learning

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts = num(x, "ts")
        if ts is None:
            return
        self._n += 1
        metrics = self.metrics
        for i, m in enumerate(metrics):
            if METRICS[m].kind != "bool":
                continue
            v = num(x, m)
            if v is None:
                continue
            on = v > 0.5
            known, was = self._b >> (2 * i) & 1, self._b >> (2 * i + 1) & 1
            if known and bool(was) != on:
                self._sw[i] += 1
            self._b = (self._b & ~(3 << (2 * i))) | (1 << (2 * i)) | (int(on) << (2 * i + 1))
        if self._t is None:
            self._t = self._t0 = ts
            self._n = 0
            self._sw = [0] * len(metrics)
            return
        elapsed = ts - self._t
        if elapsed < self.sample_s:
            return
        per_h = 3600.0 / elapsed
        gate = self.active_metric
        active = not gate or (num(x, gate) or 0.0) >= self.active_min
        values: list[float | None] = [
            None if not active else self._sw[i] * per_h if METRICS[m].kind == "bool" else num(x, m)
            for i, m in enumerate(metrics)
        ]
        if self.arrivals:
            values.append(self._n * per_h)
        self._sample(ts, values)
        self._t, self._n = ts, 0
        self._sw = [0] * len(metrics)

    def _sample(self, ts: float, values: list[float | None]) -> None:
        anchors, rows = self._unpack()
        k = self.buckets
        local_h = ts / 3600.0 + self.utc_offset_h
        weekend = (math.floor(local_h / 24.0) + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        u = (local_h % 24.0) / (24.0 / k) - 0.5
        k0 = math.floor(u)
        w1 = u - k0
        k0, k1, w0 = k0 % k, (k0 + 1) % k, 1.0 - w1
        warm = self._t0 is not None and ts - self._t0 >= self.warmup_s
        judged = warm and (not weekend or self._kw * self.sample_s >= 86400.0)
        visits = (self._kw if weekend else self._k - self._kw) / k
        rate = max(self.alpha, 1.0 / (1.0 + visits))
        scale_rate = max(self.beta, 1.0 / (1.0 + self._k))
        unusual: list[tuple[float, str, float, float, float, float, float]] = []
        floors = [1.0 if name.endswith(SWITCHES) or name == READINGS else 0.0 for name in self.channels]
        for c, v in enumerate(values):
            if v is None:
                continue
            row = rows[c]
            if math.isnan(anchors[c]):
                anchors[c] = v
                rows[c] = row = [0.0] * (k + _ROW)
            usual = anchors[c] + w0 * row[k0] + w1 * row[k1] + (row[k + _WEEKEND] if weekend else 0.0)
            residual = v - usual
            scale = max(row[k + _SCALE], self.min_scale_frac * (1.0 + abs(usual)), floors[c])
            z = residual / scale
            cusum, run = row[k + _CUSUM], row[k + _RUN]
            far = abs(z) > self.slack
            if judged:
                cusum = max(0.0, min(2 * self.threshold, cusum + min(abs(z), self.z_clip) - self.slack))
                run = min(run + 1, 2000.0) if cusum > 0 else 0.0
                if cusum >= self.threshold:
                    unusual.append((cusum, self.channels[c], v, usual, scale, z, run))
            # learn: robust (a residual counts at most learn_clip scales), a quarter as fast from a
            # sample beyond the slack (and the scale not at all): a fault is not the new usual
            limit = self.learn_clip * scale
            clipped = max(-limit, min(limit, residual))
            slow = 0.25 if far and warm else 1.0
            if weekend:
                row[k + _WEEKEND] += rate * slow * clipped
            else:
                row[k0] += rate * slow * w0 * clipped
                row[k1] += rate * slow * w1 * clipped
            if not (far and warm):
                row[k + _SCALE] += scale_rate * (abs(clipped) - row[k + _SCALE])
            row[k + _CUSUM], row[k + _RUN] = cusum, run
        self._k += 1
        self._kw += weekend
        self._pack(anchors, rows)
        self._f = self._judge(unusual)

    def _judge(self, unusual: list[tuple[float, str, float, float, float, float, float]]) -> list[Any] | None:
        if not unusual:
            return None
        cusum, name, value, usual, scale, z, run = max(unusual)
        score = 0.5 + 0.5 * ramp(cusum, self.threshold, 2 * self.threshold)
        severity: Severity = "warning" if len(unusual) >= 2 else "advisory"
        evidence: dict[str, Any] = {
            "metric": name,
            "value": rnd(value, 2),
            "usual": rnd(usual, 2),
            "typical_deviation": rnd(scale, 2),
            "deviations": rnd(abs(z), 1),
            "above": value > usual,
            "unusual_for_s": rnd(run * self.sample_s, 0),
            "others_unusual": len(unusual) - 1,
        }
        if len(unusual) >= 2:
            evidence["also"] = ",".join(sorted(n for _, n, *_ in unusual if n != name))
        return [rnd(score, 4), severity, evidence]

    # ------------------------------------------------------------------ packing

    def _unpack(self) -> tuple[list[float], list[list[float]]]:
        """The anchors and the per-channel rows, as floats; fresh (NaN anchors) when nothing
        is saved or what is saved does not fit the channels (the configuration changed)."""
        n, width = len(self.channels), self.buckets + _ROW
        if self._m:
            try:
                blob = base64.b64decode(self._m, validate=True)
                values = struct.unpack(f"<{n}f{n * width}e", blob)
            except (ValueError, struct.error):
                values = ()
            if values:
                rows = [list(values[n + c * width : n + (c + 1) * width]) for c in range(n)]
                return list(values[:n]), rows
        return [math.nan] * n, [[0.0] * width for _ in range(n)]

    def _pack(self, anchors: list[float], rows: list[list[float]]) -> None:
        flat = [max(-65000.0, min(65000.0, v)) for row in rows for v in row]  # float16's range
        self._m = base64.b64encode(struct.pack(f"<{len(anchors)}f{len(flat)}e", *anchors, *flat)).decode("ascii")
