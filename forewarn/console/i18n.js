// Every word the console shows, in zh-CN and en, and the locale's formats for times and money.
// Risk, severity, device-kind and metric names come from the service's own catalogue
// (GET /v1/catalog), so a message and the console call a risk the same.

const STRINGS = {
  "zh-CN": {
    app_title: "forewarn 风险预警台",
    skip_to_content: "跳到正文",
    language: "语言",
    sign_in: "登录",
    sign_out: "退出",
    sign_in_title: "登录风险预警台",
    sign_in_help: "请输入贵司的 API 密钥（由管理员用 forewarn key create 创建，形如 fw_…）。",
    api_key: "API 密钥",
    signing_in: "正在登录…",
    bad_key: "密钥无效或已撤销，请检查后重试。",
    unreachable: "无法连接服务，请稍后重试。",
    signed_in_as: "租户 {tenant} · 角色 {role}",
    role_admin: "管理员",
    role_staff: "工作人员",
    role_read_only: "只读",
    nav_queue: "预警队列",
    nav_devices: "设备",
    nav_portfolio: "组合分析",
    queue_title: "待处理预警",
    queue_help: "实时更新，无需刷新页面。",
    queue_empty: "目前没有待处理的预警。",
    queue_updated: "更新于 {time}",
    queue_stale: "连接中断，正在重试…",
    new_warning: "新预警：{risk}，设备 {device}",
    show: "显示",
    show_live: "未关闭",
    show_attention: "待确认",
    show_acknowledged: "已确认",
    show_closed: "已关闭",
    col_severity: "级别",
    col_risk: "风险",
    col_device: "设备",
    col_customer: "客户",
    col_opened: "发出时间",
    col_time_left: "预计损失",
    col_status: "状态",
    col_outcome: "结果",
    col_actions: "操作",
    acknowledge: "确认",
    escalate: "升级",
    outcome: "记录结果",
    details: "详情",
    evidence: "依据",
    history: "处理记录",
    messages: "消息发送",
    col_at: "时间",
    col_event: "事件",
    col_by: "操作人",
    col_audience: "接收方",
    col_channel: "渠道",
    col_attempts: "尝试次数",
    col_sent: "发送时间",
    acknowledged_ok: "已确认预警：{risk}，设备 {device}",
    escalated_ok: "已升级预警：{risk}，设备 {device}",
    outcome_ok: "已记录结果：{outcome}",
    action_failed: "操作失败：{reason}",
    read_only_note: "只读密钥：可查看，不能操作。",
    status_open: "新开",
    status_notified: "已通知",
    status_escalated: "已升级",
    status_acknowledged: "已确认",
    status_resolved: "已解除",
    status_expired: "已过期",
    outcome_loss_avoided: "避免损失",
    outcome_loss_occurred: "发生损失",
    outcome_false_alarm: "误报",
    outcome_none: "—",
    outcome_title: "记录预警结果",
    outcome_kind: "实际情况",
    claim_cny: "理赔金额（元）",
    avoided_cny: "避免的损失（元，估计）",
    loss_at: "损失时间",
    loss_at_help: "损失发生（或本会发生）的时间，用于计算提前时间。",
    lead_after_loss: "损失之后",
    all_risks: "全部风险",
    note: "备注",
    save: "保存",
    cancel: "取消",
    close: "关闭",
    escalate_title: "升级预警",
    escalate_help: "预警将标记为已升级，原因记入其处理记录。",
    reason: "原因",
    in_time: "{time} 后",
    overdue: "已到期",
    now: "现在",
    devices_title: "设备",
    devices_empty: "尚无设备。",
    search_devices: "按设备编号查找",
    search: "查找",
    previous_page: "上一页",
    next_page: "下一页",
    queue_more: "只显示最新的 {n} 条，请用筛选缩小范围。",
    col_kind: "类型",
    col_open_warnings: "未关闭预警",
    col_last_seen: "最近数据",
    device_title: "设备 {device}",
    device_customer: "客户：{customer}",
    range: "时间范围",
    range_6h: "6 小时",
    range_24h: "24 小时",
    range_7d: "7 天",
    range_30d: "30 天",
    metrics: "指标",
    no_readings: "此时间范围内没有数据。",
    warnings_marked: "图中竖线为预警发出时间。",
    device_warnings: "此设备的预警",
    no_warnings: "没有预警。",
    back_to_devices: "返回设备列表",
    chart_of: "{metric} 曲线，{start} 至 {end}，{n} 个数据点，{w} 条预警",
    portfolio_title: "组合分析",
    since: "开始",
    until: "结束",
    apply: "应用",
    kpi_warnings: "预警数",
    kpi_ack_rate: "确认率",
    kpi_false_alarms: "误报",
    kpi_loss_avoided: "避免损失",
    kpi_loss_occurred: "已发生损失",
    kpi_median_lead: "提前时间中位数",
    chart_lead_time: "提前时间分布",
    chart_lead_time_help: "从预警发出到损失发生（或本会发生）的时间，以已记录损失时间的结果为准。",
    chart_loss_avoided: "按月、按风险的避免损失",
    chart_ack_rate: "确认率",
    chart_false_alarms: "误报",
    chart_by_risk: "按风险",
    warnings_count: "{n} 条预警",
    acknowledged_count: "已确认 {n}",
    no_data: "暂无数据。",
    hours: "{n} 小时",
    minutes: "{n} 分钟",
    days: "{n} 天",
    under_a_minute: "不到 1 分钟",
    loading: "加载中…",
    not_found: "未找到。",
  },
  en: {
    app_title: "forewarn risk desk",
    skip_to_content: "Skip to content",
    language: "Language",
    sign_in: "Sign in",
    sign_out: "Sign out",
    sign_in_title: "Sign in to the risk desk",
    sign_in_help: "Enter your API key (created by an administrator with forewarn key create; it starts with fw_).",
    api_key: "API key",
    signing_in: "Signing in…",
    bad_key: "This key is not valid or has been revoked. Check it and try again.",
    unreachable: "The service cannot be reached. Please try again shortly.",
    signed_in_as: "Tenant {tenant} · role {role}",
    role_admin: "admin",
    role_staff: "staff",
    role_read_only: "read only",
    nav_queue: "Warnings",
    nav_devices: "Devices",
    nav_portfolio: "Portfolio",
    queue_title: "Open warnings",
    queue_help: "Updates live, no reload needed.",
    queue_empty: "No warnings need attention right now.",
    queue_updated: "Updated {time}",
    queue_stale: "Connection lost, retrying…",
    new_warning: "New warning: {risk} on {device}",
    show: "Show",
    show_live: "Not closed",
    show_attention: "Awaiting acknowledgement",
    show_acknowledged: "Acknowledged",
    show_closed: "Closed",
    col_severity: "Severity",
    col_risk: "Risk",
    col_device: "Device",
    col_customer: "Customer",
    col_opened: "Opened",
    col_time_left: "Predicted loss",
    col_status: "Status",
    col_outcome: "Outcome",
    col_actions: "Actions",
    acknowledge: "Acknowledge",
    escalate: "Escalate",
    outcome: "Record outcome",
    details: "Details",
    evidence: "Evidence",
    history: "History",
    messages: "Messages",
    col_at: "Time",
    col_event: "Event",
    col_by: "By",
    col_audience: "To",
    col_channel: "Channel",
    col_attempts: "Attempts",
    col_sent: "Sent",
    acknowledged_ok: "Acknowledged: {risk} on {device}",
    escalated_ok: "Escalated: {risk} on {device}",
    outcome_ok: "Outcome recorded: {outcome}",
    action_failed: "That did not work: {reason}",
    read_only_note: "Read-only key: you can look, not act.",
    status_open: "open",
    status_notified: "notified",
    status_escalated: "escalated",
    status_acknowledged: "acknowledged",
    status_resolved: "resolved",
    status_expired: "expired",
    outcome_loss_avoided: "Loss avoided",
    outcome_loss_occurred: "Loss occurred",
    outcome_false_alarm: "False alarm",
    outcome_none: "—",
    outcome_title: "Record what happened",
    outcome_kind: "What happened",
    claim_cny: "Claim (CNY)",
    avoided_cny: "Loss avoided (CNY, estimate)",
    loss_at: "Time of loss",
    loss_at_help: "When the loss happened (or would have): it gives the warning's lead time.",
    lead_after_loss: "after the loss",
    all_risks: "All risks",
    note: "Note",
    save: "Save",
    cancel: "Cancel",
    close: "Close",
    escalate_title: "Escalate this warning",
    escalate_help: "The warning is marked escalated, with your reason in its history.",
    reason: "Reason",
    in_time: "in {time}",
    overdue: "due now",
    now: "now",
    devices_title: "Devices",
    devices_empty: "No devices yet.",
    search_devices: "Find by device id",
    search: "Find",
    previous_page: "Previous page",
    next_page: "Next page",
    queue_more: "Only the newest {n} are shown: narrow the filter.",
    col_kind: "Kind",
    col_open_warnings: "Open warnings",
    col_last_seen: "Last reading",
    device_title: "Device {device}",
    device_customer: "Customer: {customer}",
    range: "Range",
    range_6h: "6 hours",
    range_24h: "24 hours",
    range_7d: "7 days",
    range_30d: "30 days",
    metrics: "Metrics",
    no_readings: "No readings in this range.",
    warnings_marked: "Vertical lines mark when a warning was opened.",
    device_warnings: "Warnings of this device",
    no_warnings: "No warnings.",
    back_to_devices: "Back to devices",
    chart_of: "{metric} from {start} to {end}, {n} points, {w} warnings",
    portfolio_title: "Portfolio",
    since: "From",
    until: "To",
    apply: "Apply",
    kpi_warnings: "Warnings",
    kpi_ack_rate: "Acknowledged",
    kpi_false_alarms: "False alarms",
    kpi_loss_avoided: "Loss avoided",
    kpi_loss_occurred: "Loss occurred",
    kpi_median_lead: "Median lead time",
    chart_lead_time: "Lead time distribution",
    chart_lead_time_help: "From the warning to the loss, where an outcome records when it happened (or would have).",
    chart_loss_avoided: "Loss avoided by month and risk",
    chart_ack_rate: "Acknowledgement rate",
    chart_false_alarms: "False alarms",
    chart_by_risk: "By risk",
    warnings_count: "{n} warnings",
    acknowledged_count: "{n} acknowledged",
    no_data: "No data yet.",
    hours: "{n} h",
    minutes: "{n} min",
    days: "{n} d",
    under_a_minute: "< 1 min",
    loading: "Loading…",
    not_found: "Not found.",
  },
};

export const LOCALES = Object.freeze(Object.keys(STRINGS));
const STORE_KEY = "forewarn.locale";
let current = pick();
let catalogue = null; // GET /v1/catalog, when the service has answered it

function pick() {
  const saved = localStorage.getItem(STORE_KEY);
  if (saved && STRINGS[saved]) return saved;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export function locale() {
  return current;
}

export function setLocale(next) {
  if (!STRINGS[next]) return;
  current = next;
  localStorage.setItem(STORE_KEY, next);
  document.documentElement.lang = next;
}

export function setCatalogue(doc) {
  catalogue = doc;
}

/** The UI string `key` in the current locale, with {placeholders} filled from `vars`. */
export function t(key, vars = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

function fromCatalogue(section, name) {
  const entry = catalogue?.[section]?.[name];
  if (!entry) return null;
  return entry[current] ?? entry.en ?? null;
}

export function riskName(risk) {
  const entry = fromCatalogue("risks", risk);
  return (entry && (entry.name ?? entry)) || risk;
}

export function severityName(severity) {
  return fromCatalogue("severities", severity) || severity;
}

export function kindName(kind) {
  return fromCatalogue("kinds", kind) || kind;
}

/** A metric's label and unit, e.g. ["Pipe temperature", "°C"]. */
export function metricLabel(metric) {
  const entry = fromCatalogue("metrics", metric);
  if (Array.isArray(entry)) return entry;
  if (entry && typeof entry === "object") return [entry.label ?? metric, entry.unit ?? ""];
  return [metric, ""];
}

export function statusName(status) {
  return t(`status_${status}`);
}

export function outcomeName(outcome) {
  return outcome ? t(`outcome_${outcome}`) : t("outcome_none");
}

export function formatTime(value, withDate = true) {
  if (!value) return "—";
  const date = value instanceof Date ? value : new Date(value);
  const options = withDate
    ? { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }
    : { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  return new Intl.DateTimeFormat(current, options).format(date);
}

export function formatDay(value) {
  const date = value instanceof Date ? value : new Date(value);
  return new Intl.DateTimeFormat(current, { year: "numeric", month: "2-digit", day: "2-digit" }).format(date);
}

export function formatMonth(value) {
  const date = value instanceof Date ? value : new Date(`${value}-01T00:00:00Z`);
  return new Intl.DateTimeFormat(current, { year: "numeric", month: "short", timeZone: "UTC" }).format(date);
}

export function formatNumber(value, digits = 1) {
  return new Intl.NumberFormat(current, { maximumFractionDigits: digits }).format(value);
}

export function formatCny(value) {
  return new Intl.NumberFormat(current, { style: "currency", currency: "CNY", maximumFractionDigits: 0 }).format(
    value || 0,
  );
}

/** Money on a chart's axis: "CN¥40K", "¥4万". */
export function formatCnyShort(value) {
  return new Intl.NumberFormat(current, { style: "currency", currency: "CNY", notation: "compact" }).format(value || 0);
}

export function formatPercent(value) {
  return value === null || value === undefined
    ? "—"
    : new Intl.NumberFormat(current, { style: "percent", maximumFractionDigits: 0 }).format(value);
}

/** A duration in seconds as "3 h 20 min", "45 min", "2 d". */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t("under_a_minute");
  if (s >= 2 * 86400) return t("days", { n: formatNumber(s / 86400, 1) });
  if (s >= 3600) {
    const h = Math.floor(s / 3600);
    const m = Math.round((s % 3600) / 60);
    return m ? `${t("hours", { n: h })} ${t("minutes", { n: m })}` : t("hours", { n: h });
  }
  return t("minutes", { n: Math.round(s / 60) });
}
