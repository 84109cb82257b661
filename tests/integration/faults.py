"""What the fault tests (chaos, Kafka outage) share: counting stored readings and waiting."""

from __future__ import annotations

import time
from collections.abc import Callable

from core import db


def stored_counts(url: str, tenant: str) -> dict[tuple[str, int], int]:
    """Rows of ``readings`` per (device, seq) of the tenant: a reading of k metrics is k rows."""
    rows = db.query(url, "SELECT device, seq, count(*) AS n FROM readings WHERE tenant = %s GROUP BY 1, 2", (tenant,))
    return {(r["device"], int(r["seq"])): int(r["n"]) for r in rows}


def wait_until(probe: Callable[[], bool], timeout: float, every: float) -> bool:
    """Poll ``probe`` every ``every`` seconds until it is true (True) or ``timeout`` passed (False)."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True
