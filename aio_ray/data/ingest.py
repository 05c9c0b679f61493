"""Ingest: what every tick source shares on its way to a validated, day-partitioned dataset.

The sources themselves (synthetic, dukascopy, files) are in :mod:`aio_ray.data.sources`, one
module each. Each source yields canonical ticks in the order it delivered them; validation runs on that
order (so out-of-order ticks are caught), kept and quarantined ticks are split by UTC day and
each day is written atomically (:mod:`aio_ray.data.tick_store`). A rerun skips the complete days,
so an interrupted ingest resumes without duplicates or holes. A file or hour that cannot be
read is reported by name in the result and in ``_ingest_report.json``; the rest completes.

The per-day work is a plain function; with ``use_ray=True`` it runs as Ray tasks.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from aio_ray.data import tick_store
from aio_ray.data.config import ValidationConfig
from aio_ray.data.validate import REASONS, ValidationResult, count_reasons, validate_ticks
from aio_ray.errors import SourceError
from aio_ray.schema import QUARANTINE_SCHEMA, TICK_SCHEMA

__all__ = [
    "IngestReport",
    "Progress",
    "days_to_do",
    "finish",
    "merged_result",
    "run_days",
    "validate_and_split",
    "write_day",
]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""progress(message, done, total)"""


@dataclass
class IngestReport:
    """What an ingest did: per-day outcomes, totals per reason, and every problem by name."""

    source: str
    symbol: str
    out: str
    days: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def totals(self) -> dict[str, int]:
        keys = ("input", "kept", *REASONS)
        tot = {k: 0 for k in keys}
        for d in self.days.values():
            if d["status"] != "written":
                continue
            tot["input"] += d["input"]
            tot["kept"] += d["kept"]
            for r in REASONS:
                tot[r] += d["quarantined"].get(r, 0)
        return tot

    @property
    def ok(self) -> bool:
        return not self.errors and all(d.get("complete", True) for d in self.days.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "symbol": self.symbol,
            "out": self.out,
            "seconds": round(self.seconds, 3),
            "totals": self.totals,
            "days_written": sum(d["status"] == "written" for d in self.days.values()),
            "days_skipped": sum(d["status"] == "skipped" for d in self.days.values()),
            "days_incomplete": sorted(
                k for k, d in self.days.items() if not d.get("complete", True)
            ),
            "errors": self.errors,
            "days": self.days,
        }


def _split_by_day(table: pa.Table) -> dict[dt.date, pa.Table]:
    if table.num_rows == 0:
        return {}
    day_ms = 86_400_000
    days = table.column("ts").cast(pa.int64()).to_numpy() // day_ms
    out: dict[dt.date, pa.Table] = {}
    for d in np.unique(days):
        idx = np.flatnonzero(days == d)
        out[dt.date(1970, 1, 1) + dt.timedelta(days=int(d))] = table.take(pa.array(idx))
    return out


def write_day(
    out: Path,
    symbol: str,
    day: dt.date,
    result: ValidationResult,
    *,
    complete: bool = True,
    notes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write one validated day and return its report entry (counts per reason)."""
    q = {r: result.counts.get(r, 0) for r in REASONS}
    meta = {
        "complete": complete,
        "input": result.n_input,
        "kept": result.kept.num_rows,
        "quarantined": q,
        **(notes or {}),
    }
    tick_store.write_partition(out, symbol, day, result.kept, result.quarantined, meta)
    return {"status": "written", **meta}


def merged_result(kept: list[pa.Table], quarantined: list[pa.Table]) -> ValidationResult:
    """One day's result from the kept and quarantined parts of it (none: an empty day)."""
    k = pa.concat_tables(kept) if kept else TICK_SCHEMA.empty_table()
    qt = pa.concat_tables(quarantined) if quarantined else QUARANTINE_SCHEMA.empty_table()
    counts = count_reasons(qt)
    counts["kept"] = k.num_rows
    return ValidationResult(kept=k, quarantined=qt, counts=counts)


def validate_and_split(table: pa.Table, vcfg: ValidationConfig) -> dict[dt.date, ValidationResult]:
    """Validate in delivery order, then split kept and quarantined ticks by UTC day."""
    res = validate_ticks(table, vcfg)
    kept = _split_by_day(res.kept)
    quar = _split_by_day(res.quarantined)
    return {
        d: merged_result([kept[d]] if d in kept else [], [quar[d]] if d in quar else [])
        for d in sorted(set(kept) | set(quar))
    }


def run_days(
    fn: Callable[..., dict[str, Any]],
    days: list[dt.date],
    args: tuple[Any, ...],
    use_ray: bool,
    report: IngestReport,
    progress: Progress | None,
) -> None:
    """Run ``fn(args[0], day, *args[1:])`` for each day (as Ray tasks with ``use_ray``) into
    ``report``; a day that fails is reported by name and marked incomplete, the rest go on."""
    if use_ray:
        import ray  # optional heavy dependency: Ray only with use_ray (--local runs without it)

        remote = ray.remote(num_cpus=1, max_retries=2)(fn)
        pending = {remote.remote(args[0], d, *args[1:]): d for d in days}
        done = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            d = pending.pop(ready[0])
            try:
                report.days[d.isoformat()] = ray.get(ready[0])
            except Exception as exc:  # noqa: BLE001 - a failed day is reported, the rest goes on
                report.errors.append({"source": d.isoformat(), "problem": str(exc)})
                report.days[d.isoformat()] = {"status": "failed", "complete": False}
            done += 1
            if progress:
                progress(f"day {d}", done, len(days))
        return
    for i, d in enumerate(days, 1):
        try:
            report.days[d.isoformat()] = fn(args[0], d, *args[1:])
        except Exception as exc:  # noqa: BLE001
            report.errors.append({"source": d.isoformat(), "problem": str(exc)})
            report.days[d.isoformat()] = {"status": "failed", "complete": False}
        if progress:
            progress(f"day {d}", i, len(days))


def days_to_do(
    out: Path,
    symbol: str,
    start: dt.date,
    end: dt.date,
    report: IngestReport,
    source: str | None = None,
) -> list[dt.date]:
    """The days of [start, end) not yet complete in ``out`` (from ``source``, when given);
    the complete ones are entered in ``report`` as skipped."""
    if end <= start:
        raise SourceError("ingest", f"empty date range: start {start} is not before end {end}")
    todo = []
    for d in tick_store.iter_days(start, end):
        if tick_store.is_complete(out, symbol, d, source):
            report.days[d.isoformat()] = {"status": "skipped", "complete": True}
        else:
            todo.append(d)
    return todo


def finish(report: IngestReport, out: Path, t0: float) -> IngestReport:
    """Stamp the elapsed time and write ``_ingest_report.json`` beside the dataset."""
    report.seconds = time.perf_counter() - t0
    tick_store.write_report(out, report.to_dict())
    return report
