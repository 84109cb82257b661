"""Adaptive baselines: how unusual a reading is for *this* device at *this* time of day and week.

The physical rules (:mod:`detectors.home`, :mod:`detectors.equipment` …) see what they name: a
pipe heading for 0 °C, a bearing in ISO 10816's alarm zone. A sensor drifting, a compressor
switching on and off three times as often as it used to, a pump drawing more current week after
week, a radio link that comes and goes: none of them crosses a physical threshold, yet each is
unusual *for that device*. :class:`UnusualReading` learns, per device, what is usual and says
when a reading stops being so.

**What it learns.** Each *channel* is one of the device's numeric metrics (its value), a boolean
metric's switches per hour (a compressor's on/off cycling, a door's openings), or the device's
readings per hour (its connection). A channel has one of two roles: an *opening* one
(``metrics``, and the readings per hour) may open a warning; a *watched* one (``watched``) is
learnt and scored the same way, but only said: it is named (``watched_unusual``) in the evidence
of every finding while it is unusual — the quiet one included, whose score stays 0 — and never
opens a warning, nor makes one a ``warning`` rather than an ``advisory``; it learns from every
sample at the full rate, the scale too (it need not guard against learning a fault as the
usual: it opens no warning), so it follows a slow change (a battery draining, the season) and
names an abrupt one for a day or so. Watched is what varies
with the weather or with use more than with the hour (a home's temperatures, a vehicle's
driving: :mod:`detectors.profiles`), so unusual often enough that a warning of it would be a
false one every few device-days, yet worth naming beside a warning that opens. Once every
``sample_s`` (10 min) of reading time it takes a sample of every channel and compares it with
that channel's baseline:

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
shrinks back otherwise. A channel is unusual once it reaches ``threshold`` (30: a few hours of
samples several scales away; a single spike, a 45-minute radio drop-out or an evening that is a
little colder than usual is not). The score rises from 0.5 there to 1 at twice that. Two slower
statistics catch what keeps no CUSUM up, each far sample being followed by usual ones
(:meth:`UnusualReading._lasting`): a value's *drift*, its mean z over the last ``1 /
drift_rate`` samples (about 8 h), unusual at ``drift_limit`` (2.5) scales to one side — a sensor
drifting so slowly that the level follows it within a few scales; and the readings per hour's
*spread*, the share of its samples more than ``slack`` scales away over as long, unusual at
``spread_limit`` (a quarter; an eighth at most on the simulator's quiet devices) — a link whose
every other sample is a gap or a burst. Each counts on the CUSUM's scale (``threshold`` at its
limit); the evidence says which (``pattern``: ``away``, ``drifting``, ``irregular``). A watched
channel has its CUSUM only. Silent during the warm-up (``warmup_s``, 3 days: every hour of the
day seen three times) and, for weekend samples, until a weekend day has been seen: watched
channels too.

**Severity.** ``advisory`` — below every physical rule's — unless corroborated: two or more
channels unusual at once make it a ``warning``. There is no forecast: how long until a loss is
unknown, and the warning says so.

**State.** The baselines are packed into one string (base85): a header (the first reading's
time, the samples and weekend samples taken), per opening channel the anchor as float32 and
the levels, weekend offset, scale, CUSUM, its length and the drift or spread as float16 (about
33 bytes of JSON a channel), per watched channel 8 bytes (10 of JSON): ``watched_buckets`` (2: 04:00 and 16:00)
levels, absolute, and the weekend offset as float16, the scale as a byte on a 9 % log grid,
the CUSUM as a byte in hundredths of the threshold. A device has a dozen metrics and at most
4 KB of state (a home's other detectors hold 3.8 KB of it), hence the narrow watched rows. So
that float16 and bytes lose no learning — a level moving 0.02 °C a sample where float16's step
is 0.016, a scale moving 0.5 % where the byte's is 9 % — a watched channel's numbers are rounded
*stochastically* (to the upper neighbour with probability its nearness: unbiased), the
chance drawn from a hash of the sample's count and the slot, not from a generator: the
same in a restored device. Everything is rounded so at every sample: what is saved is
exactly what is live, and a restored device decides exactly as if it had never been saved.
"""

from __future__ import annotations

import base64
import functools
import math
import struct
from collections.abc import Mapping
from typing import Any, NamedTuple

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

_ROW = 5  # per channel beyond the levels: weekend offset, scale, CUSUM, samples it has run, drift or spread
_WEEKEND, _SCALE, _CUSUM, _RUN, _LASTING = range(5)


@functools.lru_cache(maxsize=256)
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
        drift_rate: float = 0.02,
        drift_limit: float = 2.5,
        spread_limit: float = 0.25,
        min_scale_frac: float = 0.01,
        active_metric: str = "",
        active_min: float = 0.0,
        utc_offset_h: float = DEFAULT_UTC_OFFSET_H,
        watched: tuple[str, ...] = (),
        watched_buckets: int = 2,
    ) -> None:
        check(isinstance(metrics, tuple) and len(metrics) > 0, "metrics must be a non-empty tuple of metric names")
        for m in metrics:
            check(m in METRICS, f"unknown metric {m!r}")
        check(len(set(metrics)) == len(metrics), "metrics must not repeat")
        check(isinstance(watched, tuple), "watched must be a tuple of metric names")
        for m in watched:
            check(m in METRICS, f"unknown watched metric {m!r}")
        check(len(set(watched)) == len(watched), "watched metrics must not repeat")
        both = sorted(set(watched) & set(metrics))
        check(not both, f"{', '.join(both)} cannot be both in metrics and in watched")
        self.watched = watched
        self.watched_buckets = count("watched_buckets", watched_buckets, 2)
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
        self.drift_rate = in_range("drift_rate", drift_rate, 1e-4, 1.0)
        self.drift_limit = in_range("drift_limit", drift_limit, 0.0, 1e6)
        self.spread_limit = in_range("spread_limit", spread_limit, 0.0, 1e6)
        self.min_scale_frac = in_range("min_scale_frac", min_scale_frac, 1e-6, 1.0)
        check(active_metric == "" or active_metric in METRICS, f"unknown active_metric {active_metric!r}")
        self.active_metric = active_metric
        self.active_min = in_range("active_min", active_min, -1e12, 1e12)
        self.utc_offset_h = in_range("utc_offset_h", utc_offset_h, -14.0, 14.0)
        object.__setattr__(self, "metrics", metrics)  # `metrics` is what a detector reads
        self._m = ""  # the packed baselines (empty: none yet)
        self._t: float | None = None  # the last sample's time
        self._n = 0  # readings since the last sample
        self._sw = [0] * len(self._bools)  # switches since the last sample, per boolean metric
        # booleans' last states: bit 2i known, bit 2i+1 on; above them (bit 2B + c, B booleans)
        # watched channel c unusual at the last sample
        self._b = 0
        self._f: list[Any] | None = None  # the finding of the last sample: [score, severity, evidence]

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels a warning may open on, in order (see :func:`channel_names`)."""
        return channel_names(self.metrics, self.arrivals)

    @property
    def watched_channels(self) -> tuple[str, ...]:
        """The watched channels: learnt and scored, named in the evidence, never opening alone."""
        return channel_names(self.watched, arrivals=False)

    @property
    def _bools(self) -> tuple[str, ...]:
        """The boolean metrics, opening then watched: the ones whose switches are counted."""
        return _booleans(self.metrics, self.watched)

    @property
    def _u(self) -> int:
        """The watched channels unusual at the last sample, as bits (bit c: watched channel c)."""
        return self._b >> (2 * len(self._bools))

    # ------------------------------------------------------------------ scoring

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        """The judgement of the last sample (a sample is judged as it is learnt: at most
        ``sample_s`` old); quiet during the warm-up and while every opening channel is usual
        (a quiet finding still names the watched channels that are unusual)."""
        found = self._f
        if found is None:
            return self._quiet({"watched_unusual": self._named(self._u)} if self._u else None)
        return Finding(self.risk, found[0], found[1], None, {"triggers": ["unusual"], **found[2]})

    def _named(self, bits: int) -> str:
        """The watched channels of a bit mask, comma-separated."""
        return ",".join(name for c, name in enumerate(self.watched_channels) if bits >> c & 1)

    # ------------------------------------------------------------------ learning

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts = num(x, "ts")
        if ts is None:
            return
        self._n += 1
        bools = _booleans(self.metrics, self.watched)  # self._bools, without the property
        for i, m in enumerate(bools):
            if m not in x:  # most readings carry few of them
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
            self._t, self._n = ts, 0
            self._sw = [0] * len(bools)
            self._pack(_Saved(ts, 0, 0, *self._fresh()))  # the warm-up starts now
            return
        elapsed = ts - self._t
        if elapsed < self.sample_s:
            return
        per_h = 3600.0 / elapsed
        gate = self.active_metric
        active = not gate or (num(x, gate) or 0.0) >= self.active_min
        switches = dict(zip(bools, self._sw, strict=True))
        values = [self._value(x, m, active, switches, per_h) for m in self.metrics]
        if self.arrivals:
            values.append(self._n * per_h)
        watched = [self._value(x, m, active, switches, per_h) for m in self.watched]
        self._sample(ts, values, watched)
        self._t, self._n = ts, 0
        self._sw = [0] * len(bools)

    @staticmethod
    def _value(x: Mapping[str, float], m: str, active: bool, switches: dict[str, int], per_h: float) -> float | None:
        """A metric's sample: a boolean's switches per hour, a number's value (``None``: none,
        or the machine is not running)."""
        if not active:
            return None
        return switches[m] * per_h if METRICS[m].kind == "bool" else num(x, m)

    def _sample(self, ts: float, values: list[float | None], watched: list[float | None]) -> None:
        saved = self._unpack()
        local_h = ts / 3600.0 + self.utc_offset_h
        weekend = (math.floor(local_h / 24.0) + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        warm = ts - saved.t0 >= self.warmup_s
        judged = warm and (not weekend or saved.kw * self.sample_s >= 86400.0)
        at = _When(local_h, weekend, warm, judged, saved.k, saved.kw)
        unusual = self._opening(at, values, saved.anchors, saved.rows)
        watched_unusual = self._watching(at, watched, saved.wrows)
        counted = saved.k < _MAX_COUNT  # both stop there: every rate is at its floor long before
        k, kw = saved.k + counted, saved.kw + (counted and weekend)
        self._pack(_Saved(saved.t0, k, kw, saved.anchors, saved.rows, saved.wrows))
        low = 2 * len(self._bools)
        self._b = (self._b & ((1 << low) - 1)) | sum(1 << (low + c) for _, c in watched_unusual)
        names = self.watched_channels
        self._f = self._judge(unusual, ",".join(names[c] for _, c in sorted(watched_unusual, reverse=True)))

    def _opening(
        self, at: _When, values: list[float | None], anchors: list[float], rows: list[list[float]]
    ) -> list[_Unusual]:
        """Score and learn the opening channels; the unusual ones (CUSUM first)."""
        k = self.buckets
        k0, k1, w0, w1 = _knots((at.local_h % 24.0) / (24.0 / k) - 0.5, k)
        weekend, warm = at.weekend, at.warm
        rate, scale_rate = self._rates(at, k)
        unusual: list[_Unusual] = []
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
            if at.judged:
                cusum = max(0.0, min(2 * self.threshold, cusum + min(abs(z), self.z_clip) - self.slack))
                lasting, pattern = self._lasting(row, k, z, self.channels[c])
                strength = max(cusum, lasting)
                run = min(run + 1, 2000.0) if strength > 0 else 0.0
                if strength >= self.threshold:
                    unusual.append(
                        (strength, self.channels[c], v, usual, scale, z, run, pattern if lasting > cusum else "away")
                    )
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
        return unusual

    def _rates(self, at: _When, k: int) -> tuple[float, float]:
        """How fast a sample teaches a profile of ``k`` levels a day: its levels (fast while the
        day's side, weekday or weekend, has been seen few times) and its scale (fast while few
        samples were taken)."""
        visits = (at.kw if at.weekend else at.k - at.kw) / k
        return max(self.alpha, 1.0 / (1.0 + visits)), max(self.beta, 1.0 / (1.0 + at.k))

    def _lasting(self, row: list[float], k: int, z: float, name: str) -> tuple[float, str]:
        """Update the channel's *drift* (a value's mean z) or *spread* (the share of the readings
        per hour's samples beyond the slack) over the last ``1 / drift_rate`` samples (about
        8 h), and say how unusual it is, on the CUSUM's scale (``threshold`` at its limit). A
        sensor drifting so slowly that the level follows it within a few scales, a link whose
        every other sample is a gap or a burst: neither keeps the CUSUM up (each far sample is
        followed by usual ones), yet one moves the drift from 0, the other the spread from its
        few percent. A count of switches has neither: its CUSUM sees a cycling that changes,
        and a thermostat's cycles wander too much for a spread. Measured (``forewarn eval``'s
        learned group, seed 7; 40 quiet devices of seed 3 over ten days): quiet channels peak
        at 0.2-0.6 of their limit (an rssi's drift at 0.8), the faults at 1.07-1.9."""
        if name.endswith(SWITCHES):
            return 0.0, ""
        zc = max(-self.z_clip, min(self.z_clip, z))
        spread = name == READINGS
        now = (abs(z) > self.slack) if spread else zc
        row[k + _LASTING] += self.drift_rate * (now - row[k + _LASTING])
        limit = self.spread_limit if spread else self.drift_limit
        lasting = self.threshold * abs(row[k + _LASTING]) / limit if limit > 0 else 0.0
        return lasting, "irregular" if spread else "drifting"

    def _watching(self, at: _When, values: list[float | None], wrows: list[list[float]]) -> list[tuple[float, int]]:
        """Score the watched channels as the opening ones, and learn them from every sample at
        the full rate, the scale too (their levels absolute, see the module): what opens no
        warning need not guard against learning a fault as the usual, and a slow change — a
        battery draining, the season — is followed rather than named for ever. The unusual
        ones as ``(CUSUM, index)``. Every stored number is rounded
        stochastically (:func:`_round16`), seeded by the sample and the slot: unbiased, however
        small the step, and the same in a restored device."""
        k = self.watched_buckets
        k0, k1, w0, w1 = _knots(((at.local_h - _FIRST_KNOT_H) % 24.0) / (24.0 / k), k)
        weekend = at.weekend
        rate, scale_rate = self._rates(at, k)
        step = self.threshold / _CUSUM_STEPS
        floors = [1.0 if name.endswith(SWITCHES) else 0.0 for name in self.watched_channels]
        unusual: list[tuple[float, int]] = []
        for c, v in enumerate(values):
            if v is None:
                continue
            row = wrows[c]  # levels, weekend offset, scale's byte, CUSUM's byte
            if math.isnan(row[0]):
                wrows[c] = [_round16(v, 0.5)] * k + [0.0, 0, 0]
                continue
            usual = w0 * row[k0] + w1 * row[k1] + (row[k] if weekend else 0.0)
            residual = v - usual
            learnt = _SCALE_MIN * 2.0 ** (row[k + 1] / _SCALE_STEPS)
            scale = max(learnt, self.min_scale_frac * (1.0 + abs(usual)), floors[c])
            z = residual / scale
            limit = self.learn_clip * scale
            clipped = max(-limit, min(limit, residual))
            u0, u1, u2, u3 = _uniforms(at.k * 131 + c)
            if weekend:
                row[k] = _round16(row[k] + rate * clipped, u0)
            else:
                row[k0] = _round16(row[k0] + rate * w0 * clipped, u0)
                row[k1] = _round16(row[k1] + rate * w1 * clipped, u1)
            row[k + 1] = _scale_byte(learnt + scale_rate * (abs(clipped) - learnt), u2)
            if at.judged:  # the CUSUM as stored decides, to a hundredth of the threshold
                cusum = max(0.0, min(2 * self.threshold, row[k + 2] * step + min(abs(z), self.z_clip) - self.slack))
                row[k + 2] = min(255, math.floor(cusum / step + u3))
                if row[k + 2] >= _CUSUM_STEPS:
                    unusual.append((row[k + 2], c))
        return unusual

    def _judge(self, unusual: list[_Unusual], watched_unusual: str) -> list[Any] | None:
        if not unusual:
            return None
        cusum, name, value, usual, scale, z, run, pattern = max(unusual)
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
            "pattern": pattern,
            "others_unusual": len(unusual) - 1,
        }
        if len(unusual) >= 2:
            evidence["also"] = ",".join(sorted(n for _, n, *_ in unusual if n != name))
        if watched_unusual:
            evidence["watched_unusual"] = watched_unusual
        return [rnd(score, 4), severity, evidence]

    # ------------------------------------------------------------------ packing

    def _layout(self) -> str:
        """The packed layout: the header (first reading's time, samples, weekend samples), the
        opening channels' anchors (float32) and rows (float16), then per watched channel its
        levels, weekend offset and scale (float16) and CUSUM (a byte)."""
        n, width = len(self.channels), self.buckets + _ROW
        return f"<dHH{n}f{n * width}e" + f"{self.watched_buckets + 1}eBB" * len(self.watched)

    def _fresh(self) -> tuple[list[float], list[list[float]], list[list[float]]]:
        n, width = len(self.channels), self.buckets + _ROW
        wrow: list[float] = [math.nan] * (self.watched_buckets + 1) + [0, 0]
        return [math.nan] * n, [[0.0] * width for _ in range(n)], [list(wrow) for _ in self.watched]

    def _unpack(self) -> _Saved:
        """What is saved, as floats; fresh (NaN anchors, the warm-up starting now) when what is
        saved does not fit the channels (the configuration changed)."""
        n, width, wk = len(self.channels), self.buckets + _ROW, self.watched_buckets + 3
        if self._m:
            try:
                values = _struct(self._layout()).unpack(base64.b85decode(self._m))
            except (ValueError, struct.error):
                values = ()
            if values:
                anchors = list(values[3 : 3 + n])
                at = 3 + n
                rows = [list(values[at + c * width : at + (c + 1) * width]) for c in range(n)]
                at += n * width
                wrows = [list(values[at + c * wk : at + (c + 1) * wk]) for c in range(len(self.watched))]
                return _Saved(values[0], values[1], values[2], anchors, rows, wrows)
        return _Saved(self._t if self._t is not None else 0.0, 0, 0, *self._fresh())

    def _pack(self, saved: _Saved) -> None:
        flat = [max(-65000.0, min(65000.0, v)) for row in saved.rows for v in row]  # float16's range
        watched = [x for row in saved.wrows for x in row]  # float16 values (or NaN) and bytes already
        head = (saved.t0, saved.k, saved.kw)
        blob = _struct(self._layout()).pack(*head, *saved.anchors, *flat, *watched)
        self._m = base64.b85encode(blob).decode("ascii")


@functools.lru_cache(maxsize=256)
def _booleans(metrics: tuple[str, ...], watched: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(m for m in (*metrics, *watched) if METRICS[m].kind == "bool")


_struct = functools.lru_cache(maxsize=256)(struct.Struct)
"""A layout's compiled :class:`struct.Struct`."""

_Unusual = tuple[float, str, float, float, float, float, float, str]
"""An unusual opening channel: how unusual (CUSUM's scale), its name, value, usual value, scale,
deviation (z), samples it has been so, and how (``away``: far for hours; ``drifting``: off to
one side for a day; ``irregular``: too often far, either side)."""

_MAX_COUNT = 2**16 - 1
"""The samples counted (16 bits: 455 days); from there on neither count moves."""
_FIRST_KNOT_H = 4.0
"""A watched channel's daily profile has its first knot at 04:00 (with two: 04:00 and 16:00,
about when a day is coldest and warmest)."""
_SCALE_MIN = 2.0**-12
_SCALE_STEPS = 8
"""A watched channel's scale is kept as a byte: ``_SCALE_MIN × 2^(byte / 8)``, steps of 9 %."""
_CUSUM_STEPS = 100
"""A watched channel's CUSUM is kept as a byte, in hundredths of the threshold (up to 2.55
thresholds: it never exceeds two)."""


class _Saved(NamedTuple):
    """A detector's packed state, unpacked."""

    t0: float  # the first reading's time: the warm-up's start
    k: int  # samples taken
    kw: int  # of them on a weekend
    anchors: list[float]
    rows: list[list[float]]
    wrows: list[list[float]]


class _When(NamedTuple):
    """A sample's time, as every channel needs it."""

    local_h: float
    weekend: bool
    warm: bool
    judged: bool
    k: int
    kw: int


def _knots(u: float, k: int) -> tuple[int, int, float, float]:
    """The two levels of a daily profile of ``k`` around position ``u`` (in levels, wrapping
    round the day) and their weights: ``(k0, k1, w0, w1)``."""
    k0 = math.floor(u)
    w1 = u - k0
    return k0 % k, (k0 + 1) % k, 1.0 - w1, w1


def _uniforms(seed: int) -> tuple[float, float, float, float]:
    """Four numbers in [0, 1) from ``seed`` (16 bits each of a SplitMix64 hash), the same on
    every machine: the chances of a watched channel's stochastic roundings at one sample."""
    z = ((seed + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return (z & 0xFFFF) / 65536.0, (z >> 16 & 0xFFFF) / 65536.0, (z >> 32 & 0xFFFF) / 65536.0, (z >> 48) / 65536.0


_MASK64 = 2**64 - 1


def _scale_byte(x: float, u: float) -> int:
    """A scale ``x`` as its byte, rounded stochastically on the byte's log grid (see
    :func:`_round16`)."""
    code = min(255.0, _SCALE_STEPS * math.log2(max(x, _SCALE_MIN) / _SCALE_MIN))
    return min(255, math.floor(code + u))


def _round16(x: float, u: float) -> float:
    """``x`` rounded to one of the two float16 values around it, the upper one with probability
    its nearness (``u`` uniform in [0, 1)): a step far below float16's precision still moves the
    value on average, where rounding to the nearest would lose it every time.

    >>> _round16(1.0 + 2**-12, 0.9), _round16(1.0 + 2**-12, 0.1)  # float16's step at 1 is 2**-10
    (1.0, 1.0009765625)
    """
    x = max(-65000.0, min(65000.0, x))
    if x == 0.0:
        return 0.0
    ulp = 2.0 ** max(math.frexp(x)[1] - 11, -24)  # float16's step around x: 10 bits, subnormal below 2^-14
    steps = x / ulp  # exact: a power of two
    low = math.floor(steps)
    return (low + (u < steps - low)) * ulp
