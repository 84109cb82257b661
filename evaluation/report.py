"""Terminal tables and files for evaluation reports (rich, JSON, PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evaluation import learned
from evaluation.matching import LOSS_NOTICE_SLACK_S


def _h(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} h"


def print_eval(console: Console, report: Any) -> None:
    table = Table(title="forewarn evaluation: warned before the loss?")
    for col in (
        "scenario",
        "incidents",
        "warned",
        "recall",
        "lead median",
        "lead p10",
        "lead p90",
        "detection delay",
        "loss avoidable (CNY)",
    ):
        table.add_column(col, justify="right" if col != "scenario" else "left")
    for s in [*report.scenarios, report.overall]:
        table.add_row(
            s.scenario,
            str(s.incidents),
            str(s.warned),
            f"{s.recall:.0%}",
            _h(s.lead_time_median_h),
            _h(s.lead_time_p10_h),
            _h(s.lead_time_p90_h),
            _h(s.detection_delay_median_h),
            f"{s.loss_avoidable_cny:,.0f}",
            style="bold" if s.scenario == "overall" else None,
        )
    console.print(table)
    by_risk = ", ".join(f"{k} {v}" for k, v in report.false_warnings_by_risk.items()) or "none"
    causes = getattr(report, "false_warnings_by_cause", None) or {}
    by_cause = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in causes.items())
    lost = getattr(report, "false_loss_under_way", 0)
    console.print(
        f"false warnings (every warning but an incident's first): {report.false_warnings} over "
        f"{report.device_days:.1f} device-days = {report.false_warnings_per_device_day:.3f} per device-day\n"
        f"  by cause: {by_cause or 'none'}; of them reporting a loss under way: {lost}\n"
        f"  by risk: {by_risk}\n"
        f"{report.devices} devices, {report.readings:,} readings, {report.warnings_total} warnings, "
        f"scored in {report.seconds:.1f} s; loss avoidable (warned ≥ {report.min_lead_s / 60:.0f} min ahead): "
        f"¥{report.loss_avoidable_cny:,.0f}"
    )
    errors = getattr(report, "forecast_errors", None)
    if errors:
        print_forecast_errors(console, errors)
    feedback = getattr(report, "feedback", None)
    if feedback is not None:
        told = ", ".join(f"{k} {v}" for k, v in feedback.reported.items()) or "none"
        console.print(
            f"outcomes fed back: false alarms the simulated people recorded ({told}) set on "
            f"{feedback.devices} device(s) and run again: false warnings {feedback.false_before} → "
            f"{feedback.false_after}; their incidents warned {feedback.warned_before} → {feedback.warned_after} "
            f"of {feedback.incidents}, median lead {_h(feedback.lead_median_before_h)} → "
            f"{_h(feedback.lead_median_after_h)}"
        )
    notices = getattr(report, "crash_notices", None)
    if notices is not None and (notices or report.crash_incidents):
        gaps = [abs(n.after_loss_s) for n in notices if n.after_loss_s is not None]
        when = f" (at most {max(gaps):.1f} s from it)" if gaps else ""
        console.print(
            f"crash notices (losses reported, not warnings: outside recall, lead times and false warnings): "
            f"{len(notices)} opened, {report.crash_notices_on_a_crash} within "
            f"{LOSS_NOTICE_SLACK_S / 60:.0f} min of a crash's loss{when}; "
            f"{report.crashes_noticed} of {report.crash_incidents} crashes noticed"
        )
    if getattr(report, "people", None) is not None:
        print_people(console, report.people)
    if getattr(report, "learned", None) is not None:
        faults = Table(title=learned.TITLE, caption=learned.CAPTION)
        for col in learned.headers(report.learned):
            faults.add_column(col, justify="left" if col in ("fault", "severity") else "right")
        for row in learned.table_rows(report.learned):
            faults.add_row(*row, style="bold" if row[0] == "overall" else None)
        console.print(faults)
        for line in learned.summary_lines(report.learned):
            console.print(line)


def print_forecast_errors(console: Console, errors: list[Any]) -> None:
    """The forecast error of the time of loss stated, risk by risk: which forecast misses shows
    at a glance (``overall`` counts the physical forecasts only: freeze, cold chain, bearing,
    battery)."""
    table = Table(title="forecast error of the time of loss stated: |predicted − actual| / time really left")
    for col in ("risk", "messages", "median", "p90"):
        table.add_column(col, justify="left" if col == "risk" else "right")
    for f in errors:
        table.add_row(
            f.risk, str(f.messages), _pct(f.median), _pct(f.p90), style="bold" if f.risk == "overall" else None
        )
    console.print(table)
    console.print("(overall: freeze, cold chain, bearing and battery, the risks whose time is a physical forecast)")


def _minutes(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} min" if value < 120 else f"{value / 60:.1f} h"


def _cny(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def print_people(console: Console, people: Any) -> None:
    """People in the loop (``evaluation.people``): who acknowledged, the follow-ups sent, the
    incidents a person acted on in time, and each warning's outcome."""
    rows = [*people.scenarios, people.overall]
    acts = Table(title="people in the loop: who acted on the warnings, and when?")
    for col in (
        "scenario",
        "warnings",
        "acked (cust/staff)",
        "ack rate",
        "time to ack",
        "held (quiet)",
        "reminders",
        "staff",
        "final",
        f"acted ≥ {people.min_lead_s / 60:.0f} min ahead",
    ):
        acts.add_column(col, justify="right" if col != "scenario" else "left")
    for s in rows:
        acts.add_row(
            s.scenario,
            str(s.warnings),
            f"{s.acknowledged} ({s.acknowledged_by_customer}/{s.acknowledged_by_staff})",
            f"{s.ack_rate:.0%}",
            _minutes(s.time_to_ack_median_min),
            str(s.held_quiet),
            str(s.reminders),
            str(s.staff_escalations),
            str(s.final_steps),
            f"{s.acted_in_time}/{s.incidents}",
            style="bold" if s.scenario == "overall" else None,
        )
    console.print(acts)
    outcomes = Table(title="outcomes with people in the loop")
    for col in (
        "scenario",
        "loss avoided",
        "loss occurred",
        "false alarm",
        "precision",
        "loss avoidable with people (CNY)",
        "per warning (CNY)",
    ):
        outcomes.add_column(col, justify="right" if col != "scenario" else "left")
    for s in rows:
        outcomes.add_row(
            s.scenario,
            str(s.loss_avoided),
            str(s.loss_occurred),
            str(s.false_alarms),
            "—" if s.precision is None else f"{s.precision:.0%}",
            _cny(s.loss_avoidable_with_people_cny),
            _cny(s.loss_avoided_per_warning_cny),
            style="bold" if s.scenario == "overall" else None,
        )
    console.print(outcomes)
    mix = ", ".join(f"{k} {v}" for k, v in people.customers.items())
    o = people.overall
    console.print(
        f"customers: {mix}; {people.customers_with_quiet_hours} with quiet hours\n"
        f"acknowledged {o.acknowledged}/{o.warnings} warnings ({o.ack_rate:.0%}; median "
        f"{_minutes(o.time_to_ack_median_min)} after opening); {o.reminders} reminders, {o.staff_escalations} "
        f"staff escalations, {o.final_steps} final steps; a person acted ≥ {people.min_lead_s / 60:.0f} min "
        f"before the loss on {o.acted_in_time}/{o.incidents} incidents\n"
        f"precision {_pct(o.precision)} ({o.loss_avoided} loss avoided, {o.loss_occurred} loss occurred, "
        f"{o.false_alarms} false alarms); loss avoidable with people: ¥{o.loss_avoidable_with_people_cny:,.0f} "
        f"for the portfolio, ¥{_cny(o.loss_avoided_per_warning_cny)} per warning"
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def write_eval(report: Any, folder: Path) -> list[Path]:
    from evaluation.harness import lead_time_chart

    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "eval.json"
    json_path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    return [json_path, lead_time_chart(report, folder / "lead_times.png")]
