// The desk's web console: sign-in, the live queue of warnings, a device's readings with its
// warnings marked, and the portfolio's charts. Plain ES modules, served as static files by
// `forewarn api` under /console/; everything it shows comes from the same service's /v1 API.

import * as api from "./api.js";
import { PALETTE, bars, rateBars, timeSeries } from "./charts.js";
import {
  LOCALES,
  formatCny,
  formatCnyShort,
  formatDay,
  formatDuration,
  formatMonth,
  formatNumber,
  formatPercent,
  formatTime,
  kindName,
  locale,
  metricLabel,
  outcomeName,
  riskName,
  setCatalogue,
  setLocale,
  severityName,
  statusName,
  t,
} from "./i18n.js";

const POLL_MS = 2500;
const QUEUE_LIMIT = 200;
const QUEUE_FILTERS = {
  live: ["open", "notified", "escalated", "acknowledged"],
  attention: ["open", "notified", "escalated"],
  acknowledged: ["acknowledged"],
  closed: ["resolved", "expired"],
};
const ACKNOWLEDGEABLE = new Set(["open", "notified", "escalated"]);
const ESCALATABLE = new Set(["open", "notified", "acknowledged"]);
// a device page's ranges: how far back, and the bucket width asked for (about 300 points)
const RANGES = {
  "6h": { span: 6 * 3600e3, resolution: "1m" },
  "24h": { span: 24 * 3600e3, resolution: "5m" },
  "7d": { span: 7 * 86400e3, resolution: "30m" },
  "30d": { span: 30 * 86400e3, resolution: "2h" },
};

const state = {
  me: null, // who the key belongs to: {tenant, role, …}
  leave: null, // the current page's clean-up (stops its timers)
  queueFilter: "live",
  deviceRange: "24h",
  portfolio: null, // {since, until} as yyyy-mm-dd
};

// ------------------------------------------------------------------ small DOM helpers

/** h("button", {class: "x", onclick: f}, "text", child…): an element, text set as text (never HTML). */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (selector) => document.querySelector(selector);

function announce(message) {
  const announcer = $("#announcer");
  announcer.textContent = "";
  // a fresh text node after a tick, so screen readers announce a repeated message too
  setTimeout(() => {
    announcer.textContent = message;
  }, 50);
}

function translateStatic() {
  document.documentElement.lang = locale();
  document.title = t("app_title");
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const select of document.querySelectorAll("select.language")) {
    select.replaceChildren(...LOCALES.map((l) => h("option", { value: l }, l === "zh-CN" ? "中文" : "English")));
    select.value = locale();
  }
  if (state.me)
    $("#who").textContent = t("signed_in_as", { tenant: state.me.tenant, role: t(`role_${state.me.role}`) });
}

const canAct = () => state.me && state.me.role !== "read_only";

// ------------------------------------------------------------------ sign-in and sign-out

async function whoAmI(key) {
  return api.call("/v1/me", { key });
}

function showSignIn(message = "") {
  leavePage();
  state.me = null;
  api.forgetKey();
  $("#main").replaceChildren(); // nothing of the app stays in the page
  $("#who").textContent = "";
  $("#announcer").textContent = "";
  $("#app").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = message;
  const input = $("#api-key");
  input.value = "";
  input.focus();
}

async function signIn(event) {
  event.preventDefault();
  const key = $("#api-key").value.trim();
  const error = $("#signin-error");
  const button = $("#signin-button");
  if (!key) {
    error.textContent = t("bad_key");
    return;
  }
  button.disabled = true;
  error.textContent = t("signing_in");
  try {
    state.me = await whoAmI(key);
  } catch (err) {
    button.disabled = false;
    error.textContent = err.status === 401 || err.status === 403 ? t("bad_key") : t("unreachable");
    $("#api-key").select();
    return;
  }
  button.disabled = false;
  api.storeKey(key);
  await enterApp();
}

async function enterApp() {
  try {
    setCatalogue(await api.call("/v1/catalog"));
  } catch {
    setCatalogue(null); // the raw names will do
  }
  $("#signin").hidden = true;
  $("#signin-error").textContent = "";
  $("#app").hidden = false;
  translateStatic();
  if (!location.hash || location.hash === "#" || location.hash === "#/") location.hash = "#/queue";
  else route();
}

function signOut() {
  location.hash = "";
  showSignIn();
}

// ------------------------------------------------------------------ routing

function leavePage() {
  if (state.leave) state.leave();
  state.leave = null;
  for (const dialog of document.querySelectorAll("dialog")) dialog.remove();
}

function route() {
  if (!state.me) return;
  leavePage();
  const [page, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const main = $("#main");
  main.replaceChildren();
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === (page || "queue")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (page === "devices" && rest.length) state.leave = devicePage(main, decodeURIComponent(rest.join("/")));
  else if (page === "devices") state.leave = devicesPage(main);
  else if (page === "portfolio") state.leave = portfolioPage(main);
  else state.leave = queuePage(main);
}

function rerender() {
  $("#announcer").textContent = "";
  translateStatic();
  route();
}

// ------------------------------------------------------------------ shared pieces

function pageOf(doc) {
  return Array.isArray(doc) ? doc : (doc?.items ?? []);
}

function severityBadge(severity) {
  return h("span", { class: `badge ${severity}` }, severityName(severity));
}

function deviceLink(device) {
  return h("a", { href: `#/devices/${encodeURIComponent(device)}` }, device);
}

function timeLeft(warning) {
  if (!warning.predicted_loss_at) return "—";
  const seconds = (new Date(warning.predicted_loss_at).getTime() - Date.now()) / 1000;
  const when = formatTime(warning.predicted_loss_at);
  return seconds > 60 ? `${when} (${t("in_time", { time: formatDuration(seconds) })})` : `${when} (${t("overdue")})`;
}

/** A time as a datetime-local input's value (the browser's clock), "" for none. */
function localInput(value) {
  if (!value) return "";
  const date = new Date(value);
  return new Date(date.getTime() - date.getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
}

function describe(warning) {
  return { risk: riskName(warning.risk), device: warning.device };
}

function dialog(title, fields, onSubmit) {
  const error = h("p", { class: "error", role: "alert" });
  const save = h("button", { type: "submit", class: "primary" }, t("save"));
  const form = h(
    "form",
    { method: "dialog" },
    h("h2", {}, title),
    ...fields,
    error,
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => box.close() }, t("cancel")), save),
  );
  const box = h("dialog", { "aria-label": title }, form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      await onSubmit(new FormData(form));
      box.close();
    } catch (err) {
      error.textContent = t("action_failed", { reason: err.message });
    } finally {
      save.disabled = false;
    }
  });
  box.addEventListener("close", () => box.remove());
  document.body.append(box);
  box.showModal();
  return box;
}

// ------------------------------------------------------------------ the live queue

function queuePage(main) {
  const rows = new Map(); // warning id → <tr>
  let seen = null; // ids seen on the previous poll (null before the first)
  let timer = null;
  let busy = false;
  let gone = false;

  const filter = h(
    "select",
    { id: "queue-filter", onchange: () => ((state.queueFilter = filter.value), (seen = null), refresh()) },
    ...Object.keys(QUEUE_FILTERS).map((name) => h("option", { value: name }, t(`show_${name}`))),
  );
  filter.value = state.queueFilter;
  const updated = h("span", { class: "muted", id: "queue-updated" });
  const body = h("tbody", { id: "queue-rows", "aria-live": "polite", "aria-relevant": "additions" });
  const empty = h("p", { id: "queue-empty", class: "muted", hidden: true }, t("queue_empty"));
  const more = h("p", { class: "muted", hidden: true }, t("queue_more", { n: QUEUE_LIMIT }));
  const columns = [
    "col_severity",
    "col_risk",
    "col_device",
    "col_customer",
    "col_opened",
    "col_time_left",
    "col_status",
    "col_outcome",
    "col_actions",
  ];
  main.append(
    h("h1", {}, t("queue_title")),
    h("p", { class: "help" }, t("queue_help"), canAct() ? "" : ` ${t("read_only_note")}`),
    h("div", { class: "toolbar" }, h("label", { for: "queue-filter" }, t("show")), filter, updated),
    h(
      "table",
      { class: "grid", id: "queue", "aria-describedby": "queue-updated" },
      h("caption", { class: "visually-hidden" }, t("queue_title")),
      h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, t(c))))),
      body,
    ),
    empty,
    more,
  );

  function actions(warning) {
    const what = describe(warning);
    const button = (action, onclick) =>
      h(
        "button",
        { type: "button", dataset: { action }, "aria-label": `${t(action)}: ${what.risk} · ${what.device}`, onclick },
        t(action),
      );
    return [
      canAct() &&
        ACKNOWLEDGEABLE.has(warning.status) &&
        button("acknowledge", (e) => acknowledge(warning, e.currentTarget)),
      canAct() && ESCALATABLE.has(warning.status) && button("escalate", () => escalate(warning)),
      canAct() && button("outcome", () => recordOutcome(warning)),
      button("details", () => showDetails(warning.id)),
    ];
  }

  function cells(warning) {
    return [
      h("td", {}, severityBadge(warning.severity)),
      h("td", { class: "risk" }, riskName(warning.risk)),
      h("td", {}, deviceLink(warning.device)),
      h("td", {}, warning.customer_name ?? warning.customer_id ?? "—"),
      h("td", {}, formatTime(warning.opened_at)),
      h("td", {}, timeLeft(warning)),
      h("td", { class: `status ${warning.status}`, dataset: { status: warning.status } }, statusName(warning.status)),
      h("td", { class: "outcome", dataset: { outcome: warning.outcome ?? "" } }, outcomeName(warning.outcome)),
      h("td", { class: "actions" }, ...actions(warning)),
    ];
  }

  function fingerprint(w) {
    return [w.status, w.severity, w.outcome, w.predicted_loss_at, w.customer_name, locale(), canAct()].join("|");
  }

  function show(warnings) {
    const ids = new Set(warnings.map((w) => w.id));
    for (const [id, row] of rows) {
      if (!ids.has(id)) {
        row.remove();
        rows.delete(id);
      }
    }
    const fresh = [];
    warnings.forEach((warning, index) => {
      let row = rows.get(warning.id);
      if (!row) {
        row = h("tr", { dataset: { warningId: warning.id, risk: warning.risk, device: warning.device } });
        rows.set(warning.id, row);
        if (seen !== null && !seen.has(warning.id)) {
          row.classList.add("fresh");
          fresh.push(warning);
        }
      }
      if (row.dataset.fingerprint !== fingerprint(warning)) {
        row.dataset.fingerprint = fingerprint(warning);
        row.dataset.status = warning.status;
        row.replaceChildren(...cells(warning));
      }
      if (body.children[index] !== row) body.insertBefore(row, body.children[index] ?? null);
    });
    seen = ids;
    empty.hidden = warnings.length > 0;
    if (fresh.length) announce(fresh.map((w) => t("new_warning", describe(w))).join("; "));
  }

  async function refresh() {
    if (busy || gone) return;
    busy = true;
    try {
      const doc = await api.call("/v1/warnings", {
        params: { status: QUEUE_FILTERS[state.queueFilter].join(","), limit: QUEUE_LIMIT },
      });
      if (gone) return;
      show(pageOf(doc));
      more.hidden = doc.next_offset === null || doc.next_offset === undefined;
      updated.textContent = t("queue_updated", { time: formatTime(new Date(), false) });
    } catch (err) {
      if (!gone && err.status !== 401) updated.textContent = t("queue_stale");
    } finally {
      busy = false;
    }
  }

  async function act(warning, path, body, message) {
    try {
      await api.call(`/v1/warnings/${encodeURIComponent(warning.id)}/${path}`, { method: "POST", body });
      announce(message);
    } catch (err) {
      announce(t("action_failed", { reason: err.message }));
      throw err;
    } finally {
      await refresh();
    }
  }

  async function acknowledge(warning, button) {
    button.disabled = true;
    await act(warning, "acknowledge", {}, t("acknowledged_ok", describe(warning))).catch(() => {
      button.disabled = false;
    });
  }

  function escalate(warning) {
    dialog(
      t("escalate_title"),
      [
        h("p", { class: "help" }, `${riskName(warning.risk)} · ${warning.device}`),
        h("p", { class: "help" }, t("escalate_help")),
        h("label", { for: "escalate-note" }, t("reason")),
        h("input", { id: "escalate-note", name: "note", type: "text", maxlength: 500 }),
      ],
      (form) => act(warning, "escalate", { note: form.get("note") || null }, t("escalated_ok", describe(warning))),
    );
  }

  function recordOutcome(warning) {
    const choice = (value) =>
      h(
        "label",
        {},
        h("input", { type: "radio", name: "outcome", value, required: true, checked: warning.outcome === value }),
        ` ${outcomeName(value)}`,
      );
    const claim = h("input", { id: "outcome-claim", name: "cost_cny", type: "number", min: 0, step: "0.01" });
    const avoided = h("input", { id: "outcome-avoided", name: "avoided_cny", type: "number", min: 0, step: "0.01" });
    const lossAt = h("input", {
      id: "outcome-loss-at",
      name: "loss_at",
      type: "datetime-local",
      step: 1,
      value: localInput(warning.predicted_loss_at),
    });
    const claimRow = h("div", {}, h("label", { for: "outcome-claim" }, t("claim_cny")), " ", claim);
    const lossAtRow = h(
      "div",
      {},
      h("label", { for: "outcome-loss-at" }, t("loss_at")),
      " ",
      lossAt,
      h("p", { class: "help" }, t("loss_at_help")),
    );
    const avoidedRow = h("div", {}, h("label", { for: "outcome-avoided" }, t("avoided_cny")), " ", avoided);
    const box = dialog(
      t("outcome_title"),
      [
        h("p", { class: "help" }, `${riskName(warning.risk)} · ${warning.device}`),
        h(
          "fieldset",
          {},
          h("legend", {}, t("outcome_kind")),
          ...["loss_avoided", "loss_occurred", "false_alarm"].map(choice),
        ),
        avoidedRow,
        claimRow,
        lossAtRow,
        h("label", { for: "outcome-note" }, t("note")),
        h("input", { id: "outcome-note", name: "note", type: "text", maxlength: 500 }),
      ],
      (form) => {
        const outcome = form.get("outcome");
        const body = { outcome, note: form.get("note") || null };
        if (outcome === "loss_occurred" && form.get("cost_cny")) body.cost_cny = Number(form.get("cost_cny"));
        if (outcome === "loss_avoided" && form.get("avoided_cny")) body.avoided_cny = Number(form.get("avoided_cny"));
        if (outcome !== "false_alarm" && form.get("loss_at"))
          body.loss_at = new Date(form.get("loss_at")).toISOString();
        return act(warning, "outcome", body, t("outcome_ok", { outcome: outcomeName(outcome) }));
      },
    );
    const sync = () => {
      const picked = box.querySelector("input[name=outcome]:checked")?.value;
      claimRow.hidden = picked !== "loss_occurred";
      avoidedRow.hidden = picked !== "loss_avoided";
      lossAtRow.hidden = !picked || picked === "false_alarm";
    };
    box.addEventListener("change", sync);
    sync();
  }

  refresh();
  timer = setInterval(refresh, POLL_MS);
  return () => {
    gone = true;
    clearInterval(timer);
  };
}

// ------------------------------------------------------------------ one warning's story

function table(columns, rows) {
  return h(
    "table",
    { class: "grid" },
    h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, t(c))))),
    h("tbody", {}, ...rows.map((cells) => h("tr", {}, ...cells.map((c) => h("td", {}, c ?? "—"))))),
  );
}

/** A read-only dialog with a warning's evidence, every transition, every message and its outcome. */
async function showDetails(warningId) {
  let w;
  try {
    w = await api.call(`/v1/warnings/${encodeURIComponent(warningId)}`);
  } catch (err) {
    announce(t("action_failed", { reason: err.message }));
    return;
  }
  const evidence = Object.entries(w.evidence ?? {}).map(([k, v]) => [
    h("dt", {}, k),
    h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v)),
  ]);
  const outcome = w.outcome_record;
  const box = h(
    "dialog",
    { class: "wide", "aria-labelledby": "details-title", id: "warning-details" },
    h("h2", { id: "details-title" }, `${riskName(w.risk)} · ${w.device}`),
    h(
      "p",
      {},
      severityBadge(w.severity),
      ` ${statusName(w.status)} · ${t("col_opened")} ${formatTime(w.opened_at)}`,
      w.customer_name ? ` · ${w.customer_name}` : "",
    ),
    evidence.length ? [h("h3", {}, t("evidence")), h("dl", { class: "evidence" }, ...evidence.flat())] : null,
    h("h3", {}, t("history")),
    table(
      ["col_at", "col_event", "col_status", "col_by", "note"],
      (w.transitions ?? []).map((x) => [
        formatTime(x.at),
        x.event,
        `${x.from_status ? statusName(x.from_status) + " → " : ""}${statusName(x.to_status)}`,
        x.actor,
        x.note,
      ]),
    ),
    h("h3", {}, t("messages")),
    (w.deliveries ?? []).length
      ? table(
          ["col_audience", "col_channel", "col_status", "col_attempts", "col_sent"],
          w.deliveries.map((d) => [d.audience, d.channel, d.status, String(d.attempts), formatTime(d.sent_at)]),
        )
      : h("p", { class: "muted" }, t("no_data")),
    h("h3", {}, t("col_outcome")),
    outcome
      ? h(
          "p",
          { id: "details-outcome" },
          [
            outcomeName(outcome.outcome),
            outcome.avoided_cny !== null && outcome.avoided_cny !== undefined
              ? `${t("avoided_cny")}: ${formatCny(outcome.avoided_cny)}`
              : null,
            outcome.cost_cny !== null && outcome.cost_cny !== undefined
              ? `${t("claim_cny")}: ${formatCny(outcome.cost_cny)}`
              : null,
            outcome.loss_at ? `${t("loss_at")}: ${formatTime(outcome.loss_at)}` : null,
            outcome.note,
            outcome.recorded_by,
          ]
            .filter(Boolean)
            .join(" · "),
        )
      : h("p", { class: "muted" }, t("outcome_none")),
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => box.close() }, t("close"))),
  );
  box.addEventListener("close", () => box.remove());
  document.body.append(box);
  box.showModal();
}

// ------------------------------------------------------------------ devices

const DEVICES_PER_PAGE = 100;

function devicesPage(main) {
  let gone = false;
  let offset = 0;
  const search = h("input", { id: "device-search", type: "search", maxlength: 100 });
  const status = h("p", { class: "muted" }, t("loading"));
  const table = h("div", { id: "devices-table" });
  const back = h(
    "button",
    { type: "button", onclick: () => ((offset = Math.max(0, offset - DEVICES_PER_PAGE)), load()) },
    t("previous_page"),
  );
  const next = h("button", { type: "button", onclick: () => ((offset += DEVICES_PER_PAGE), load()) }, t("next_page"));
  main.append(
    h("h1", {}, t("devices_title")),
    h(
      "form",
      { class: "toolbar", role: "search", onsubmit: (e) => (e.preventDefault(), (offset = 0), load()) },
      h("label", { for: "device-search" }, t("search_devices")),
      search,
      h("button", { type: "submit" }, t("search")),
    ),
    status,
    table,
    h("div", { class: "toolbar" }, back, next),
  );

  async function load() {
    let doc;
    try {
      doc = await api.call("/v1/devices", { params: { limit: DEVICES_PER_PAGE, offset, search: search.value.trim() } });
    } catch (err) {
      if (!gone) status.textContent = t("action_failed", { reason: err.message });
      return;
    }
    if (gone) return;
    const devices = pageOf(doc);
    back.hidden = offset === 0;
    next.hidden = doc.next_offset === null || doc.next_offset === undefined;
    status.textContent = devices.length ? "" : t("devices_empty");
    table.replaceChildren();
    if (!devices.length) return;
    table.append(
      h(
        "table",
        { class: "grid", id: "devices" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...["col_device", "col_kind", "col_customer", "col_open_warnings"].map((c) =>
              h("th", { scope: "col" }, t(c)),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          ...devices.map((d) =>
            h(
              "tr",
              { dataset: { device: d.id } },
              h("td", {}, deviceLink(d.id)),
              h("td", {}, kindName(d.kind)),
              h("td", {}, d.customer_name ?? d.customer_id ?? "—"),
              h("td", {}, d.open_warnings ?? "—"),
            ),
          ),
        ),
      ),
    );
  }
  load();
  return () => {
    gone = true;
  };
}

function devicePage(main, deviceId) {
  let gone = false;
  const title = h("h1", {}, t("device_title", { device: deviceId }));
  const info = h("p", { class: "muted" });
  const range = h(
    "select",
    { id: "device-range", onchange: () => ((state.deviceRange = range.value), load()) },
    ...Object.keys(RANGES).map((r) => h("option", { value: r }, t(`range_${r}`))),
  );
  range.value = state.deviceRange;
  const picker = h("fieldset", { class: "metric-picker" });
  const charts = h("div", { id: "device-charts" });
  const list = h("div", { id: "device-warnings" });
  const hiddenMetrics = new Set(); // metrics the user unticked
  main.append(
    h("p", {}, h("a", { href: "#/devices" }, `← ${t("back_to_devices")}`)),
    title,
    info,
    h("div", { class: "toolbar" }, h("label", { for: "device-range" }, t("range")), range),
    picker,
    h("p", { class: "help" }, t("warnings_marked")),
    charts,
    h("h2", {}, t("device_warnings")),
    list,
  );

  api
    .call(`/v1/devices/${encodeURIComponent(deviceId)}`)
    .then((device) => {
      if (gone) return;
      const customer = device.customer_name ?? device.customer_id;
      info.textContent = [kindName(device.kind), customer && t("device_customer", { customer })]
        .filter(Boolean)
        .join(" · ");
    })
    .catch(() => {});

  async function load() {
    const end = Date.now();
    const start = end - RANGES[state.deviceRange].span;
    charts.replaceChildren(h("p", { class: "muted" }, t("loading")));
    let doc;
    let warnings;
    try {
      [doc, warnings] = await Promise.all([
        api.call(`/v1/devices/${encodeURIComponent(deviceId)}/readings`, {
          params: {
            start: new Date(start).toISOString(),
            end: new Date(end).toISOString(),
            resolution: RANGES[state.deviceRange].resolution,
          },
        }),
        api.call("/v1/warnings", { params: { device: deviceId, limit: 200 } }),
      ]);
    } catch (err) {
      if (!gone) charts.replaceChildren(h("p", { class: "error" }, err.status === 404 ? t("not_found") : err.message));
      return;
    }
    if (gone) return;
    drawCharts(doc, start, end);
    drawWarnings(pageOf(warnings));
  }

  function drawCharts(doc, start, end) {
    const series = doc.series ?? {};
    const available = Object.keys(series).sort();
    const marks = (doc.warnings ?? []).map((w) => ({
      id: w.id,
      t: new Date(w.opened_at).getTime(),
      severity: w.severity,
      label: `${riskName(w.risk)} · ${severityName(w.severity)} · ${formatTime(w.opened_at)}`,
    }));
    picker.replaceChildren(
      h("legend", { class: "visually-hidden" }, t("metrics")),
      ...available.map((m) =>
        h(
          "label",
          {},
          h("input", {
            type: "checkbox",
            value: m,
            checked: !hiddenMetrics.has(m),
            onchange: (e) => (
              e.target.checked ? hiddenMetrics.delete(m) : hiddenMetrics.add(m),
              drawCharts(doc, start, end)
            ),
          }),
          ` ${metricLabel(m)[0]}`,
        ),
      ),
    );
    const shown = available.filter((m) => !hiddenMetrics.has(m));
    if (!shown.length) {
      charts.replaceChildren(h("p", { class: "muted", id: "no-readings" }, t("no_readings")));
      return;
    }
    const tick = (ms) => (end - start > 2 * 86400e3 ? formatDay(ms) : formatTime(new Date(ms), false).slice(0, 5));
    charts.replaceChildren(
      ...shown.map((metric) => {
        const [name, unit] = metricLabel(metric);
        const points = series[metric].map((p) => ({ t: new Date(p.ts).getTime(), v: p.value ?? p.avg }));
        const label = t("chart_of", {
          metric: name,
          start: formatTime(start),
          end: formatTime(end),
          n: points.length,
          w: marks.length,
        });
        return h(
          "figure",
          { dataset: { metric } },
          h("figcaption", {}, unit ? `${name} (${unit})` : name),
          timeSeries({ points, markers: marks, start, end, label, unit, formatTick: tick }),
        );
      }),
    );
  }

  function drawWarnings(warnings) {
    if (!warnings.length) {
      list.replaceChildren(h("p", { class: "muted" }, t("no_warnings")));
      return;
    }
    list.replaceChildren(
      h(
        "table",
        { class: "grid" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...["col_severity", "col_risk", "col_opened", "col_status", "col_outcome"].map((c) =>
              h("th", { scope: "col" }, t(c)),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          ...warnings.map((w) =>
            h(
              "tr",
              { dataset: { warningId: w.id } },
              h("td", {}, severityBadge(w.severity)),
              h("td", {}, riskName(w.risk)),
              h("td", {}, formatTime(w.opened_at)),
              h("td", { class: `status ${w.status}` }, statusName(w.status)),
              h("td", {}, outcomeName(w.outcome)),
            ),
          ),
        ),
      ),
    );
  }

  load();
  return () => {
    gone = true;
  };
}

// ------------------------------------------------------------------ portfolio

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function portfolioPage(main) {
  let gone = false;
  if (!state.portfolio) {
    const now = new Date();
    state.portfolio = { since: isoDay(new Date(now.getTime() - 365 * 86400e3)), until: isoDay(now) };
  }
  const since = h("input", { id: "portfolio-since", type: "date", value: state.portfolio.since });
  const until = h("input", { id: "portfolio-until", type: "date", value: state.portfolio.until });
  const form = h(
    "form",
    {
      class: "toolbar",
      onsubmit: (e) => (e.preventDefault(), (state.portfolio = { since: since.value, until: until.value }), load()),
    },
    h("label", { for: "portfolio-since" }, t("since")),
    since,
    h("label", { for: "portfolio-until" }, t("until")),
    until,
    h("button", { type: "submit" }, t("apply")),
  );
  const body = h("div", { id: "portfolio", "aria-live": "polite" }, h("p", { class: "muted" }, t("loading")));
  main.append(h("h1", {}, t("portfolio_title")), form, body);

  async function load() {
    let doc;
    try {
      const until = new Date(`${state.portfolio.until}T00:00:00Z`).getTime() + 86400e3;
      doc = await api.call("/v1/portfolio", {
        params: { since: `${state.portfolio.since}T00:00:00Z`, until: new Date(until).toISOString() },
      });
    } catch (err) {
      if (!gone) body.replaceChildren(h("p", { class: "error" }, err.message));
      return;
    }
    if (!gone) body.replaceChildren(...portfolioView(doc));
  }
  load();
  const timer = setInterval(load, 10_000);
  return () => {
    gone = true;
    clearInterval(timer);
  };
}

/** A figure of the portfolio: its label, the value as shown, and the raw value in data-value. */
function card(id, label, raw, format) {
  const shown = raw === null || raw === undefined ? "—" : format(raw);
  return h(
    "div",
    { class: "card", id, dataset: { value: raw ?? "" } },
    h("div", { class: "label" }, label),
    h("div", { class: "value" }, shown),
  );
}

function portfolioView(doc) {
  const totals = doc.totals ?? {};
  const nodes = [
    h(
      "div",
      { class: "cards" },
      card("kpi-warnings", t("kpi_warnings"), totals.warnings, (v) => formatNumber(v, 0)),
      card("kpi-ack-rate", t("kpi_ack_rate"), totals.acknowledgement_rate, formatPercent),
      card("kpi-false-alarms", t("kpi_false_alarms"), totals.false_alarms, (v) => formatNumber(v, 0)),
      card("kpi-loss-avoided", t("kpi_loss_avoided"), totals.loss_avoided_cny, formatCny),
      card("kpi-loss-occurred", t("kpi_loss_occurred"), totals.loss_occurred_cny, formatCny),
      card("kpi-median-lead", t("kpi_median_lead"), totals.median_lead_time_s, formatDuration),
    ),
  ];
  const figure = (id, caption, chart, help) =>
    h(
      "figure",
      { id },
      h("figcaption", {}, caption),
      help ? h("p", { class: "help" }, help) : null,
      chart ?? h("p", { class: "muted" }, t("no_data")),
    );

  const lead = doc.lead_time_histogram ?? [];
  const byRisk = perRisk(doc.by_risk ?? []);
  nodes.push(
    h(
      "div",
      { class: "charts" },
      figure(
        "chart-lead-time",
        t("chart_lead_time"),
        lead.some((b) => b.count > 0)
          ? bars({
              categories: lead.map(leadLabel),
              series: [{ name: t("kpi_warnings"), values: lead.map((b) => b.count) }],
              label: t("chart_lead_time"),
              formatValue: (v) => formatNumber(v, 0),
              integer: true,
            })
          : null,
        t("chart_lead_time_help"),
      ),
      figure("chart-loss-avoided", t("chart_loss_avoided"), lossAvoidedChart(doc.loss_avoided_by_month ?? [])),
      figure("chart-ack-rate", t("chart_ack_rate"), ackRateChart(byRisk, totals)),
      figure("chart-false-alarms", t("chart_false_alarms"), falseAlarmChart(byRisk)),
    ),
  );
  return nodes;
}

function lossAvoidedChart(rows) {
  if (!rows.length) return null;
  const months = [...new Set(rows.map((r) => r.month))].sort();
  const risks = [...new Set(rows.map((r) => r.risk))].sort();
  const series = risks.map((risk, k) => ({
    name: riskName(risk),
    colour: PALETTE[k % PALETTE.length],
    values: months.map((m) =>
      rows.filter((r) => r.month === m && r.risk === risk).reduce((s, r) => s + Number(r.loss_avoided_cny || 0), 0),
    ),
  }));
  return bars({
    categories: months.map(formatMonth),
    series,
    label: t("chart_loss_avoided"),
    formatValue: formatCny,
    formatTick: formatCnyShort,
  });
}

/** The portfolio's rows (one per risk and severity) summed per risk. */
function perRisk(rows) {
  const out = new Map();
  for (const r of rows) {
    const sum = out.get(r.risk) ?? { risk: r.risk, warnings: 0, acknowledged: 0, false_alarms: 0 };
    sum.warnings += r.warnings;
    sum.acknowledged += r.acknowledged;
    sum.false_alarms += r.false_alarms;
    out.set(r.risk, sum);
  }
  return [...out.values()].filter((r) => r.warnings > 0);
}

/** A lead-time bucket's name from its bounds in hours: "after the loss", "< 30 min", "2 h – 6 h", "≥ 24 h". */
function leadLabel(bucket) {
  const span = (hours) => formatDuration(hours * 3600);
  if (bucket.to_h !== null && bucket.to_h <= 0) return t("lead_after_loss");
  if (bucket.to_h === null) return `≥ ${span(bucket.from_h)}`;
  if (!bucket.from_h) return `< ${span(bucket.to_h)}`;
  return `${span(bucket.from_h)} – ${span(bucket.to_h)}`;
}

function ackRateChart(rows, totals) {
  if (!rows.length) return null;
  const all = {
    label: t("all_risks"),
    rate: totals.acknowledgement_rate,
    detail: `(${totals.acknowledged}/${totals.warnings})`,
    colour: "#1d2430",
  };
  return rateBars({
    label: t("chart_ack_rate"),
    formatRate: formatPercent,
    items: [
      all,
      ...rows.map((r) => ({
        label: riskName(r.risk),
        rate: r.acknowledged / r.warnings,
        detail: `(${r.acknowledged}/${r.warnings})`,
      })),
    ],
  });
}

function falseAlarmChart(rows) {
  if (!rows.length) return null;
  return bars({
    categories: rows.map((r) => riskName(r.risk)),
    series: [{ name: t("chart_false_alarms"), values: rows.map((r) => r.false_alarms ?? 0), colour: "#c92a2a" }],
    label: t("chart_false_alarms"),
    formatValue: (v) => formatNumber(v, 0),
    integer: true,
  });
}

// ------------------------------------------------------------------ start

function changeLanguage(event) {
  setLocale(event.target.value);
  if (state.me) rerender();
  else translateStatic();
}

async function start() {
  translateStatic();
  $("#signin-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", signOut);
  for (const select of document.querySelectorAll("select.language")) select.addEventListener("change", changeLanguage);
  window.addEventListener("hashchange", route);
  api.whenUnauthorised(() => showSignIn(t("bad_key")));
  const key = api.storedKey();
  if (key) {
    try {
      state.me = await whoAmI(key);
      await enterApp();
      return;
    } catch (err) {
      showSignIn(err.status === 401 ? t("bad_key") : t("unreachable"));
      return;
    }
  }
  showSignIn();
}

start();
