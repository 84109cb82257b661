"""What the REST API (``forewarn/api.py``) takes and gives, as pydantic models (they make its
OpenAPI schema), and the CSV imports of customers and devices, checked row by row.

Every value a caller sends is checked here before it reaches the database: ids against the
topic-segment rule, free text for length and control characters, channels as apprise URLs,
time zones, quiet hours, bounded numbers, times with a zone (a time without one is UTC). A bad
row of a CSV import is reported with its row number (the header is row 1) and its reason; the
good rows are kept.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from core.contract import DEVICE_KINDS, LOCALES, SEGMENT_RE
from core.db import CUSTOMER_FIELDS
from core.lifecycle import STATUSES
from core.localtime import check_zone
from core.risks import RISK_TYPES
from notifiers.channels import check_url, masked
from notifiers.quiet import QuietHours, check_windows

MAX_PAGE = 500
MAX_OFFSET = 1_000_000
MAX_CSV_ROWS = 50_000
MAX_CSV_BYTES = 10 * 1024 * 1024
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _printable(value: str) -> str:
    if any(ord(ch) < 32 and ch not in "\t" for ch in value) or "\x7f" in value:
        raise ValueError("must not contain control characters")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _moment(value: datetime) -> datetime:
    """A time with a zone (UTC when it has none), within 1970…2200."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be a time between 1970 and 2200") from None
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be a time between 1970 and 2200")
    return value


def _zone(value: str) -> str:
    check_zone(value)
    return value


def _channel(value: str) -> str:
    check_url(value)  # ChannelError is a ValueError: the message masks secrets
    return value


def _windows(values: list[str]) -> list[str]:
    return [str(w) for w in check_windows([QuietHours.parse(v) for v in values])]


Id = Annotated[str, StringConstraints(pattern=SEGMENT_RE.pattern)]
"""A tenant, customer or device id: lower-case letters, digits, - and _, at most 64."""
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_printable)
]
Note = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_no_nul)]
Channel = Annotated[
    str, StringConstraints(min_length=1, max_length=2000), AfterValidator(_printable), AfterValidator(_channel)
]
Zone = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_zone)]
Window = Annotated[str, StringConstraints(min_length=1, max_length=20)]
Moment = Annotated[datetime, AfterValidator(_moment)]
Locale = Literal["zh-CN", "en"]
Kind = Literal["vehicle", "home", "equipment", "coldchain"]
Status = Literal["open", "notified", "escalated", "acknowledged", "resolved", "expired"]
Severity = Literal["advisory", "warning", "critical"]
Outcome = Literal["loss_avoided", "loss_occurred", "false_alarm"]
Role = Literal["read_only", "staff", "admin"]
Money = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]

assert set(LOCALES) == set(Locale.__args__)  # type: ignore[attr-defined]
assert set(DEVICE_KINDS) == set(Kind.__args__)  # type: ignore[attr-defined]
assert set(STATUSES) == set(Status.__args__)  # type: ignore[attr-defined]


class Strict(BaseModel):
    """A request body: unknown fields are refused (a typo is not silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """Every error the API answers: a sentence saying what is wrong, and details when useful."""

    error: str
    detail: Any = None


# ------------------------------------------------------------ customers


class CustomerFields(Strict):
    locale: Locale | None = None
    timezone: Zone | None = Field(None, description="IANA zone; none: the deployment's (FOREWARN_TIMEZONE)")
    quiet_hours: Annotated[list[Window], Field(max_length=6), AfterValidator(_windows)] | None = Field(
        None, description="HH:MM-HH:MM windows on the customer's clock; critical warnings still go through"
    )
    daily_budget: int | None = Field(None, ge=0, le=1000, description="non-critical messages per day; then a digest")

    def fields(self, only_set: bool = True) -> dict[str, Any]:
        """The database's customer fields this body sets (``notify`` is ``notify_urls`` there)."""
        given = self.model_dump(exclude_unset=only_set)
        if "notify" in given:
            given["notify_urls"] = given.pop("notify")
        if given.get("quiet_hours") is None and "quiet_hours" in given:
            given["quiet_hours"] = []
        if given.get("locale") is None:
            given.pop("locale", None)
        return {k: v for k, v in given.items() if k in CUSTOMER_FIELDS}


class CustomerIn(CustomerFields):
    id: Id
    name: Name
    notify: list[Channel] = Field(min_length=1, max_length=10, description="apprise URLs, in order of preference")


class CustomerPatch(CustomerFields):
    """Only the fields given change; ``null`` clears the time zone, quiet hours or budget."""

    name: Name | None = None
    notify: list[Channel] | None = Field(None, min_length=1, max_length=10)

    def fields(self, only_set: bool = True) -> dict[str, Any]:
        given = super().fields(only_set)
        for required in ("name", "notify_urls"):
            if required in given and given[required] is None:
                raise ValueError(f"{'notify' if required == 'notify_urls' else required} cannot be cleared")
        return given


class Customer(BaseModel):
    id: str
    name: str
    locale: str
    notify: list[str] = Field(description="the channels, masked")
    timezone: str | None
    quiet_hours: list[str]
    daily_budget: int | None
    devices: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: dict[str, Any]) -> Customer:
        return cls(**{**row, "notify": [masked(u) for u in row["notify_urls"] or []]})


# ------------------------------------------------------------ devices


class DeviceIn(Strict):
    id: Id
    customer: Id
    kind: Kind


class DevicePatch(Strict):
    customer: Id | None = None
    kind: Kind | None = None


class Device(BaseModel):
    id: str
    customer_id: str
    customer_name: str | None
    kind: str
    open_warnings: int = Field(description="warnings open, notified, escalated or acknowledged")
    created_at: datetime


# ------------------------------------------------------------ warnings

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    next_offset: int | None = Field(description="where the next page starts; none: this is the last one")


class WarningItem(BaseModel):
    id: str
    device: str
    customer_id: str | None
    customer_name: str | None
    kind: str | None
    risk: str
    severity: str
    status: str
    score: float
    opened_at: datetime
    predicted_loss_at: datetime | None = Field(description="when the loss is predicted, if the detector says")
    notified_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    updated_at: datetime
    outcome: str | None


class Transition(BaseModel):
    event: str
    from_status: str | None
    to_status: str
    actor: str
    note: str | None
    at: datetime


class Attempt(BaseModel):
    ok: bool
    error: str | None
    seconds: float | None
    attempted_at: datetime


class Delivery(BaseModel):
    id: int
    action: str
    audience: str
    channel: str = Field(description="masked")
    status: str
    attempts: int
    error: str | None
    due_at: datetime
    sent_at: datetime | None
    held_reason: str | None
    attempt_log: list[Attempt]


class FollowUp(BaseModel):
    action: str
    kind: str
    due_at: datetime
    fired_at: datetime | None
    outcome: str | None


class OutcomeRecord(BaseModel):
    outcome: str
    loss_at: datetime | None = None
    cost_cny: float | None = None
    avoided_cny: float | None = None
    note: str | None = None
    recorded_by: str | None = None
    recorded_at: datetime


class WarningDetail(WarningItem):
    evidence: dict[str, Any]
    transitions: list[Transition]
    deliveries: list[Delivery]
    followups: list[FollowUp]
    outcome_record: OutcomeRecord | None


class ActionIn(Strict):
    note: Note | None = None


class OutcomeIn(Strict):
    outcome: Outcome
    loss_at: Moment | None = Field(None, description="when the loss happened (or would have)")
    cost_cny: Money | None = Field(None, description="the claim paid: loss_occurred only")
    avoided_cny: Money | None = Field(None, description="the loss staff estimate was avoided: loss_avoided only")
    note: Note | None = None


# ------------------------------------------------------------ readings, portfolio, rejects


class Point(BaseModel):
    ts: datetime = Field(description="start of the bucket")
    avg: float
    min: float
    max: float
    n: int


class WarningMark(BaseModel):
    id: str
    risk: str
    severity: str
    status: str
    opened_at: datetime
    predicted_loss_at: datetime | None
    resolved_at: datetime | None


class Readings(BaseModel):
    device: str
    start: datetime
    end: datetime
    resolution: str
    series: dict[str, list[Point]] = Field(description="metric → buckets in time order (empty buckets left out)")
    warnings: list[WarningMark] = Field(description="the device's warnings open at some time in the range")


class RiskRow(BaseModel):
    risk: str
    severity: str
    warnings: int
    acknowledged: int
    acknowledgement_rate: float | None
    false_alarms: int
    losses_avoided: int
    losses_occurred: int
    loss_avoided_cny: float = Field(description="the losses staff estimated avoided (loss_avoided outcomes)")
    avoided_estimates: int = Field(description="loss_avoided outcomes that carry an estimate")
    loss_occurred_cny: float = Field(description="claims paid on losses that occurred despite a warning")


class Quantiles(BaseModel):
    n: int
    p10_h: float | None
    median_h: float | None
    p90_h: float | None


class Totals(BaseModel):
    warnings: int
    notified: int
    acknowledged: int
    acknowledgement_rate: float | None = Field(description="acknowledged ÷ warnings opened in the period")
    median_time_to_acknowledge_s: float | None = Field(description="from the first message (or the opening)")
    false_alarms: int
    losses_avoided: int
    losses_occurred: int
    no_outcome: int = Field(description="warnings without an outcome recorded")
    loss_avoided_cny: float
    avoided_estimates: int
    loss_occurred_cny: float
    median_lead_time_s: float | None = Field(description="opening → loss, where an outcome records the loss time")
    devices: int
    device_days: float = Field(description="each device from its registration (or the period's start) on")
    false_alarms_per_device_day: float | None


class LeadBucket(BaseModel):
    label: str
    from_h: float | None
    to_h: float | None
    count: int


class MonthlyAvoided(BaseModel):
    month: str = Field(description="YYYY-MM (UTC) of the warnings' opening")
    risk: str
    losses_avoided: int
    loss_avoided_cny: float


class Portfolio(BaseModel):
    since: datetime
    until: datetime
    totals: Totals
    by_risk: list[RiskRow]
    lead_time: Quantiles = Field(description="opening → loss, where an outcome records when it happened")
    promised_lead_time: Quantiles = Field(description="opening → the predicted time of loss")
    lead_time_histogram: list[LeadBucket]
    loss_avoided_by_month: list[MonthlyAvoided]


class RejectSample(BaseModel):
    reason: str
    detail: str
    topic: str
    payload: str | None
    received_at: datetime


class DeviceRejects(BaseModel):
    device: str = Field(description="'' when the topic named a tenant but no readable device")
    counts: dict[str, int]
    last_at: datetime
    latest: list[RejectSample]


class Rejects(BaseModel):
    since: datetime
    until: datetime
    counts: dict[str, int] = Field(description="rejects per reason (counted by the hour)")
    devices: list[DeviceRejects]


class ApiKeyOut(BaseModel):
    id: int
    role: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class AuditRow(BaseModel):
    id: int
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]
    at: datetime


class RowError(BaseModel):
    row: int = Field(description="the row of the file (the header is row 1)")
    id: str | None
    error: str


class ImportResult(BaseModel):
    created: int
    updated: int
    errors: list[RowError]


# ------------------------------------------------------------ CSV imports


class CsvError(ValueError):
    """A file that cannot be imported at all (not UTF-8, no header, a required column missing)."""


@dataclass
class CsvRows(Generic[T]):
    """The rows of a CSV that passed their checks (row number, value) and the ones that did not."""

    rows: list[tuple[int, T]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def explain(exc: ValidationError) -> str:
    """A pydantic error in one line: ``locale: Input should be 'zh-CN' or 'en'; …``."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"] if p != "body")
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


CUSTOMER_CSV = ("id", "name", "notify", "locale", "timezone", "quiet_hours", "daily_budget")
"""Columns of a customers CSV; id, name and notify are required. ``notify`` and
``quiet_hours`` hold several values separated by spaces; an empty cell leaves the stored value."""
DEVICE_CSV = ("id", "customer", "kind")


def _table(body: bytes, columns: Sequence[str], required: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    if len(body) > MAX_CSV_BYTES:
        raise CsvError(f"the file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MiB: split it")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvError(f"the file is not UTF-8 (byte {exc.start})") from None
    if "\x00" in text:
        raise CsvError("the file contains NUL characters: is it a spreadsheet saved as CSV (UTF-8)?")
    try:
        table = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise CsvError(f"the file is not readable as CSV: {exc}") from None
    if not table or not any(cell.strip() for cell in table[0]):
        raise CsvError(f"the file has no header row; the columns are {', '.join(columns)}")
    header = [cell.strip().lower() for cell in table[0]]
    unknown = [h for h in header if h not in columns]
    missing = [c for c in required if c not in header]
    problems = [f"unknown: {', '.join(unknown)}"] if unknown else []
    problems += [f"missing: {', '.join(missing)}"] if missing else []
    problems += ["a column is named twice"] if len(set(header)) != len(header) else []
    if problems:
        raise CsvError(
            f"the header must name the columns {', '.join(columns)} (required: {', '.join(required)}): "
            + "; ".join(problems)
        )
    if len(table) - 1 > MAX_CSV_ROWS:
        raise CsvError(f"at most {MAX_CSV_ROWS:,} rows per import, the file has {len(table) - 1:,}")
    return header, table[1:]


def _rows(
    body: bytes,
    columns: Sequence[str],
    required: Sequence[str],
    build: Callable[[dict[str, str]], T],
) -> CsvRows[T]:
    header, table = _table(body, columns, required)
    out: CsvRows[T] = CsvRows()
    seen: dict[str, int] = {}
    for number, cells in enumerate(table, start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        row_id = cells[header.index("id")].strip() if len(cells) > header.index("id") else None
        if len(cells) != len(header):
            out.errors.append(
                RowError(row=number, id=row_id, error=f"{len(cells)} cells, the header has {len(header)}")
            )
            continue
        record = {name: cell.strip() for name, cell in zip(header, cells, strict=True) if cell.strip()}
        if row_id and row_id in seen:
            out.errors.append(RowError(row=number, id=row_id, error=f"the same id as row {seen[row_id]}"))
            continue
        try:
            value = build(record)
        except ValidationError as exc:
            out.errors.append(RowError(row=number, id=row_id, error=explain(exc)))
            continue
        except ValueError as exc:
            out.errors.append(RowError(row=number, id=row_id, error=str(exc)))
            continue
        if row_id:
            seen[row_id] = number
        out.rows.append((number, value))
    return out


def _customer(record: dict[str, str]) -> tuple[str, dict[str, Any]]:
    doc: dict[str, Any] = dict(record)
    if "notify" in doc:
        doc["notify"] = doc["notify"].split()
    if "quiet_hours" in doc:
        doc["quiet_hours"] = doc["quiet_hours"].split()
    customer = CustomerIn.model_validate(doc)
    return customer.id, customer.fields()


def customers_csv(body: bytes) -> CsvRows[tuple[str, dict[str, Any]]]:
    """A customers CSV (:data:`CUSTOMER_CSV`) → (row, (id, database fields)) and the rows refused."""
    return _rows(body, CUSTOMER_CSV, ("id", "name", "notify"), _customer)


def _device(record: dict[str, str]) -> DeviceIn:
    return DeviceIn.model_validate(record)


def devices_csv(body: bytes) -> CsvRows[DeviceIn]:
    """A devices CSV (:data:`DEVICE_CSV`, all required) → (row, device) and the rows refused."""
    return _rows(body, DEVICE_CSV, DEVICE_CSV, _device)


def known_risk(value: str) -> str:
    if value not in RISK_TYPES:
        raise ValueError(f"unknown risk {value!r}; known: {', '.join(RISK_TYPES)}")
    return value


Risk = Annotated[str, StringConstraints(max_length=64), AfterValidator(known_risk)]
