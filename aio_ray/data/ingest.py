"""Ingest: any tick source -> validated, day-partitioned tick dataset, resumable.

Each source yields canonical ticks in the order it delivered them; validation runs on that
order (so out-of-order ticks are caught), kept and quarantined ticks are split by UTC day and
each day is written atomically (:mod:`aio_ray.data.tick_store`). A rerun skips the complete days,
so an interrupted ingest resumes without duplicates or holes. A file or hour that cannot be
read is reported by name in the result and in ``_ingest_report.json``; the rest completes.

The per-day work is a plain function; with ``use_ray=True`` it runs as Ray tasks.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from aio_ray.data import fetch, tick_store
from aio_ray.data.config import DukascopyConfig, SyntheticConfig, ValidationConfig
from aio_ray.data.dukascopy import hour_path
from aio_ray.data.files import read_tick_file
from aio_ray.data.synthetic_ticks import generate_day
from aio_ray.data.validate import REASONS, ValidationResult, count_reasons, validate_ticks
from aio_ray.errors import SourceError
from aio_ray.schema import QUARANTINE_SCHEMA, TICK_SCHEMA

__all__ = [
    "IngestReport",
    "Progress",
    "ingest_dukascopy",
    "ingest_files",
    "ingest_synthetic",
    "synthetic_day",
    "synthetic_source",
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


def _result_of(kept: list[pa.Table], quarantined: list[pa.Table]) -> ValidationResult:
    k = pa.concat_tables(kept) if kept else TICK_SCHEMA.empty_table()
    qt = pa.concat_tables(quarantined) if quarantined else QUARANTINE_SCHEMA.empty_table()
    counts = count_reasons(qt)
    counts["kept"] = k.num_rows
    return ValidationResult(kept=k, quarantined=qt, counts=counts)


def _validate_and_split(table: pa.Table, vcfg: ValidationConfig) -> dict[dt.date, ValidationResult]:
    """Validate in delivery order, then split kept and quarantined ticks by UTC day."""
    res = validate_ticks(table, vcfg)
    kept = _split_by_day(res.kept)
    quar = _split_by_day(res.quarantined)
    return {
        d: _result_of([kept[d]] if d in kept else [], [quar[d]] if d in quar else [])
        for d in sorted(set(kept) | set(quar))
    }


# --------------------------------------------------------------------------- synthetic


def synthetic_day(
    symbol: str, day: dt.date, out: str, scfg: SyntheticConfig, vcfg: ValidationConfig
) -> dict[str, Any]:
    """Generate, validate and write one synthetic day (a plain function; Ray maps it)."""
    table = generate_day(symbol, day, scfg)
    by_day = _validate_and_split(table, vcfg)
    res = by_day.get(day) or _result_of([], [])
    stray = sorted(d for d in by_day if d != day)
    if stray:  # a generator bug, never silently kept
        raise AssertionError(f"synthetic day {day} produced ticks on {stray}")
    return write_day(Path(out), symbol, day, res, notes={"source": synthetic_source(scfg)})


def synthetic_source(scfg: SyntheticConfig) -> str:
    """The partition note naming the generator and every parameter of it (seed, edge, ...):
    a day written with other parameters is not the same data, so it is generated again."""
    return "synthetic " + json.dumps(scfg.model_dump(mode="json"), sort_keys=True)


def _run_days(
    fn: Callable[..., dict[str, Any]],
    days: list[dt.date],
    args: tuple[Any, ...],
    use_ray: bool,
    report: IngestReport,
    progress: Progress | None,
) -> None:
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


def _todo(
    out: Path,
    symbol: str,
    start: dt.date,
    end: dt.date,
    report: IngestReport,
    source: str | None = None,
) -> list[dt.date]:
    if end <= start:
        raise SourceError("ingest", f"empty date range: start {start} is not before end {end}")
    todo = []
    for d in tick_store.iter_days(start, end):
        if tick_store.is_complete(out, symbol, d, source):
            report.days[d.isoformat()] = {"status": "skipped", "complete": True}
        else:
            todo.append(d)
    return todo


def ingest_synthetic(
    symbol: str,
    start: dt.date,
    end: dt.date,
    out: Path,
    scfg: SyntheticConfig = SyntheticConfig(),
    vcfg: ValidationConfig = ValidationConfig(),
    *,
    use_ray: bool = True,
    progress: Progress | None = None,
) -> IngestReport:
    """Seeded synthetic ticks for days in [start, end) into ``out``; days already complete from
    the same generator parameters are skipped, days written with other ones are replaced."""
    t0 = time.perf_counter()
    out = Path(out)
    report = IngestReport(source="synthetic", symbol=symbol, out=str(out))
    days = _todo(out, symbol, start, end, report, synthetic_source(scfg))
    _run_days(synthetic_day, days, (symbol, str(out), scfg, vcfg), use_ray, report, progress)
    return _finish(report, out, t0)


# --------------------------------------------------------------------------- dukascopy


def ingest_dukascopy(
    symbol: str,
    start: dt.date,
    end: dt.date,
    out: Path,
    *,
    mirror: Path | None = None,
    dcfg: DukascopyConfig = DukascopyConfig(),
    vcfg: ValidationConfig = ValidationConfig(),
    use_ray: bool = True,
    progress: Progress | None = None,
) -> IngestReport:
    """Dukascopy hour files (HTTP with cache, or a local ``mirror``) for [start, end).

    A day is written when all its 24 hours are back; hours that are missing (404 / absent)
    or failed/corrupt are named in the report and leave the day marked incomplete, so a rerun
    fetches it again. Zero-byte hours are simply hours without ticks.
    """
    t0 = time.perf_counter()
    out = Path(out)
    report = IngestReport(
        source=f"dukascopy {'mirror ' + str(mirror) if mirror else dcfg.base_url}",
        symbol=symbol,
        out=str(out),
    )
    days = _todo(out, symbol, start, end, report)
    hours = [h for d in days for h in fetch.hours_between(d, d + dt.timedelta(days=1))]
    cache_dir = dcfg.cache_dir or (out / "_cache" / "dukascopy")
    batches: Iterable[list[fetch.HourResult]] = (
        fetch.fetch_hours_ray(symbol, hours, mirror=mirror, cfg=dcfg, cache_dir=cache_dir)
        if use_ray
        else fetch.fetch_hours_local(symbol, hours, mirror=mirror, cfg=dcfg, cache_dir=cache_dir)
    )
    pending: dict[dt.date, list[fetch.HourResult]] = defaultdict(list)
    done = 0
    for batch in batches:
        for r in batch:
            pending[r.hour.date()].append(r)
        for d in [d for d, rs in pending.items() if len(rs) == 24]:
            results = sorted(pending.pop(d), key=lambda r: r.hour)
            report.days[d.isoformat()] = _dukascopy_day(symbol, d, results, out, vcfg, report)
            done += 1
            if progress:
                progress(f"day {d}", done, len(days))
    for d, results in pending.items():  # cannot happen unless a fetch task lost hours
        report.errors.append(
            {"source": d.isoformat(), "problem": f"only {len(results)} of 24 hours returned"}
        )
    return _finish(report, out, t0)


def _dukascopy_day(
    symbol: str,
    day: dt.date,
    results: list[Any],
    out: Path,
    vcfg: ValidationConfig,
    report: IngestReport,
) -> dict[str, Any]:
    bad = [r for r in results if r.status not in ("ok", "empty")]
    for r in bad:
        report.errors.append(
            {
                "source": hour_path(symbol, r.hour),
                "status": r.status,
                "problem": r.error or r.status,
            }
        )
    tables = [r.table for r in results if r.status == "ok" and r.table is not None]
    table = pa.concat_tables(tables) if tables else TICK_SCHEMA.empty_table()
    by_day = _validate_and_split(table, vcfg)
    res = by_day.pop(day, None) or _result_of([], [])
    for other, extra in by_day.items():  # an hour file holding ticks of another day is bad input
        report.errors.append(
            {"source": f"{symbol} {day}", "problem": f"{extra.n_input} ticks stamped {other}"}
        )
    notes = {
        "source": "dukascopy",
        "hours": {
            s: sum(r.status == s for r in results)
            for s in ("ok", "empty", "missing", "failed", "corrupt")
        },
        "bad_hours": [f"{hour_path(symbol, r.hour)}: {r.status}" for r in bad],
    }
    return write_day(out, symbol, day, res, complete=not bad, notes=notes)


# --------------------------------------------------------------------------- files


def _read_and_validate(
    path: str, mapping: Any, fmt: Literal["auto", "parquet", "csv"], vcfg: ValidationConfig
) -> dict[dt.date, ValidationResult]:
    return _validate_and_split(read_tick_file(Path(path), mapping, fmt), vcfg)


def ingest_files(
    paths: list[Path],
    symbol: str,
    out: Path,
    *,
    mapping: Any = None,
    fmt: Literal["auto", "parquet", "csv"] = "auto",
    vcfg: ValidationConfig = ValidationConfig(),
    use_ray: bool = True,
    progress: Progress | None = None,
) -> IngestReport:
    """Parquet/CSV tick files into ``out``. Each file is read and validated on its own (as a
    Ray task with ``use_ray``); a file that cannot be read is reported and skipped whole; the
    rest are merged per UTC day. Days already complete in ``out`` are left as they are."""
    t0 = time.perf_counter()
    out = Path(out)
    report = IngestReport(source="files", symbol=symbol, out=str(out))
    per_file: list[tuple[str, dict[dt.date, ValidationResult] | Exception]] = []
    if use_ray:
        import ray  # optional heavy dependency: Ray only with use_ray (--local runs without it)

        remote = ray.remote(num_cpus=1, max_retries=0)(_read_and_validate)
        refs = [(str(p), remote.remote(str(p), mapping, fmt, vcfg)) for p in paths]
        for name, ref in refs:
            try:
                per_file.append((name, ray.get(ref)))
            except Exception as exc:  # noqa: BLE001
                per_file.append((name, getattr(exc, "cause", None) or exc))
    else:
        for p in paths:
            try:
                per_file.append((str(p), _read_and_validate(str(p), mapping, fmt, vcfg)))
            except Exception as exc:  # noqa: BLE001
                per_file.append((str(p), exc))
    kept: dict[dt.date, list[pa.Table]] = defaultdict(list)
    quar: dict[dt.date, list[pa.Table]] = defaultdict(list)
    for i, (name, res) in enumerate(per_file, 1):
        if isinstance(res, Exception):
            problem = (
                res.problem if isinstance(res, SourceError) else f"{type(res).__name__}: {res}"
            )
            report.errors.append({"source": name, "problem": problem})
        else:
            for d, r in res.items():
                kept[d].append(r.kept)
                quar[d].append(r.quarantined)
        if progress:
            progress(f"file {Path(name).name}", i, len(per_file))
    for d in sorted(set(kept) | set(quar)):
        if tick_store.is_complete(out, symbol, d):
            report.days[d.isoformat()] = {"status": "skipped", "complete": True}
            continue
        day = _result_of(kept[d], quar[d])
        report.days[d.isoformat()] = write_day(out, symbol, d, day, notes={"source": "files"})
    return _finish(report, out, t0)


def _finish(report: IngestReport, out: Path, t0: float) -> IngestReport:
    report.seconds = time.perf_counter() - t0
    tick_store.write_report(out, report.to_dict())
    return report
