// Small SVG charts of our own (no library, nothing fetched from elsewhere): a time series with
// warning markers, vertical bars (optionally stacked, with a legend) and horizontal rate bars.
// Each chart is an <svg role="img"> with an aria-label that says what it shows.

const NS = "http://www.w3.org/2000/svg";
export const PALETTE = ["#1f6feb", "#d9480f", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#c2255c", "#5c940d"];
const SEVERITY_COLOUR = { advisory: "#868e96", warning: "#f08c00", critical: "#c92a2a" };

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function svg(width, height, label) {
  return el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": label,
    class: "chart",
    preserveAspectRatio: "xMidYMid meet",
  });
}

/** About `count` round tick values covering [lo, hi] (whole numbers only when `integer`). */
export function niceTicks(lo, hi, count = 5, integer = false) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  if (integer) step = Math.max(1, Math.ceil(step));
  const ticks = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toFixed(10));
  return ticks;
}

function compact(value) {
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (abs >= 1e4) return `${+(value / 1e3).toFixed(0)}k`;
  return String(+value.toFixed(2));
}

/**
 * A time series (points: [{t: ms, v: number}]) over [start, end] (ms), with warnings marked as
 * vertical lines (markers: [{t: ms, label, severity}]).
 */
export function timeSeries({ points, markers = [], start, end, label, unit = "", formatTick }) {
  const W = 720;
  const H = 220;
  const pad = { l: 52, r: 12, t: 14, b: 28 };
  const chart = svg(W, H, label);
  const values = points.map((p) => p.v);
  let lo = values.length ? Math.min(...values) : 0;
  let hi = values.length ? Math.max(...values) : 1;
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const yTicks = niceTicks(lo, hi, 4);
  lo = Math.min(lo, yTicks[0]);
  hi = Math.max(hi, yTicks[yTicks.length - 1]);
  const x = (t) => pad.l + ((t - start) / Math.max(1, end - start)) * (W - pad.l - pad.r);
  const y = (v) => H - pad.b - ((v - lo) / (hi - lo)) * (H - pad.t - pad.b);

  for (const v of yTicks) {
    chart.append(el("line", { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: "grid" }));
    chart.append(el("text", { x: pad.l - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, compact(v)));
  }
  if (unit) chart.append(el("text", { x: 4, y: pad.t - 2, class: "tick" }, unit));
  const xTickCount = 6;
  for (let i = 0; i <= xTickCount; i++) {
    const t = start + ((end - start) * i) / xTickCount;
    const anchor = i === 0 ? "start" : i === xTickCount ? "end" : "middle";
    chart.append(el("text", { x: x(t), y: H - 8, class: "tick", "text-anchor": anchor }, formatTick(t)));
  }

  for (const m of markers) {
    if (m.t < start || m.t > end) continue;
    const g = el("g", { class: "marker", "data-warning": m.id ?? "" });
    const colour = SEVERITY_COLOUR[m.severity] ?? "#c92a2a";
    g.append(el("line", { x1: x(m.t), x2: x(m.t), y1: pad.t, y2: H - pad.b, stroke: colour }));
    g.append(el("path", { d: `M${x(m.t) - 5},${pad.t - 2} h10 l-5,7 z`, fill: colour }));
    g.append(el("title", {}, m.label));
    chart.append(g);
  }

  if (points.length) {
    const d = points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join("");
    chart.append(el("path", { d, class: "series", fill: "none", stroke: PALETTE[0] }));
    if (points.length <= 60) {
      for (const p of points) chart.append(el("circle", { cx: x(p.t), cy: y(p.v), r: 2.2, fill: PALETTE[0] }));
    }
  }
  chart.append(el("line", { x1: pad.l, x2: W - pad.r, y1: H - pad.b, y2: H - pad.b, class: "axis" }));
  return chart;
}

/**
 * Vertical bars: categories along x, one or more series stacked on each (series: [{name, values,
 * colour?}], values aligned with categories). A legend is drawn when there is more than one series.
 */
export function bars({ categories, series, label, formatValue = compact, formatTick, integer = false, width = 560 }) {
  const W = width;
  const legendRows = series.length > 1 ? Math.ceil(series.length / 4) : 0;
  const H = 220 + legendRows * 18;
  const pad = { l: 64, r: 12, t: 16 + legendRows * 18, b: 34 };
  const chart = svg(W, H, label);
  const totals = categories.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const top = Math.max(1, ...totals);
  const yTicks = niceTicks(0, top, 4, integer);
  const hi = Math.max(top, yTicks[yTicks.length - 1]);
  const y = (v) => H - pad.b - (v / hi) * (H - pad.t - pad.b);
  for (const v of yTicks) {
    chart.append(el("line", { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: "grid" }));
    chart.append(
      el("text", { x: pad.l - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, (formatTick ?? formatValue)(v)),
    );
  }
  const slot = (W - pad.l - pad.r) / Math.max(1, categories.length);
  const barWidth = Math.min(56, slot * 0.7);
  categories.forEach((category, i) => {
    const cx = pad.l + slot * (i + 0.5);
    let base = 0;
    series.forEach((s, k) => {
      const v = s.values[i] || 0;
      if (v > 0) {
        const rect = el("rect", {
          x: cx - barWidth / 2,
          y: y(base + v),
          width: barWidth,
          height: Math.max(0.5, y(base) - y(base + v)),
          fill: s.colour ?? PALETTE[k % PALETTE.length],
          class: "bar",
        });
        rect.append(el("title", {}, `${category} · ${s.name}: ${formatValue(v)}`));
        chart.append(rect);
      }
      base += v;
    });
    if (totals[i] > 0) {
      chart.append(
        el("text", { x: cx, y: y(totals[i]) - 4, class: "value", "text-anchor": "middle" }, formatValue(totals[i])),
      );
    }
    chart.append(el("text", { x: cx, y: H - pad.b + 16, class: "tick", "text-anchor": "middle" }, category));
  });
  chart.append(el("line", { x1: pad.l, x2: W - pad.r, y1: H - pad.b, y2: H - pad.b, class: "axis" }));
  if (legendRows) {
    series.forEach((s, k) => {
      const lx = pad.l + (k % 4) * ((W - pad.l) / 4);
      const ly = 6 + Math.floor(k / 4) * 18;
      chart.append(el("rect", { x: lx, y: ly, width: 10, height: 10, fill: s.colour ?? PALETTE[k % PALETTE.length] }));
      chart.append(el("text", { x: lx + 14, y: ly + 9, class: "legend" }, s.name));
    });
  }
  return chart;
}

/** Horizontal bars of rates in [0, 1] (items: [{label, rate, detail}]), e.g. acknowledgement rate by risk. */
export function rateBars({ items, label, formatRate, width = 560 }) {
  const W = width;
  const row = 26;
  const H = 10 + row * Math.max(1, items.length);
  const labelWidth = 150;
  const chart = svg(W, H, label);
  const x = (r) => labelWidth + r * (W - labelWidth - 110);
  items.forEach((item, i) => {
    const ty = 8 + i * row;
    chart.append(el("text", { x: labelWidth - 8, y: ty + 13, class: "tick", "text-anchor": "end" }, item.label));
    chart.append(el("rect", { x: x(0), y: ty, width: x(1) - x(0), height: 16, class: "track" }));
    const rate = item.rate ?? 0;
    const bar = el("rect", {
      x: x(0),
      y: ty,
      width: Math.max(0, x(rate) - x(0)),
      height: 16,
      fill: item.colour ?? PALETTE[0],
    });
    bar.append(el("title", {}, `${item.label}: ${formatRate(item.rate)} ${item.detail ?? ""}`));
    chart.append(bar);
    chart.append(
      el("text", { x: x(1) + 8, y: ty + 13, class: "value" }, `${formatRate(item.rate)} ${item.detail ?? ""}`),
    );
  });
  return chart;
}
