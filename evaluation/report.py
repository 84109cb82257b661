"""Terminal tables and files for evaluation reports (rich, JSON, PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


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
    console.print(
        f"false warnings: {report.false_warnings} over {report.device_days:.1f} device-days = "
        f"{report.false_warnings_per_device_day:.3f} per device-day ({by_risk})\n"
        f"{report.devices} devices, {report.readings:,} readings, {report.warnings_total} warnings, "
        f"scored in {report.seconds:.1f} s; loss avoidable (warned ≥ {report.min_lead_s / 60:.0f} min ahead): "
        f"¥{report.loss_avoidable_cny:,.0f}"
    )


def write_eval(report: Any, folder: Path) -> list[Path]:
    from evaluation.harness import lead_time_chart

    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "eval.json"
    json_path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    return [json_path, lead_time_chart(report, folder / "lead_times.png")]
