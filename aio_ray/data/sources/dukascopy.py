"""Dukascopy's ``.bi5`` hour files as a tick source: over HTTP with a local cache, or from a
local mirror in Dukascopy's folder layout (no HTTP).

Hours are fetched in batches (Ray tasks with ``use_ray``, :mod:`aio_ray.data.fetch`); a day is
validated and written once all its 24 hours are back.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from aio_ray.data import fetch
from aio_ray.data.config import DataConfig, DukascopyConfig, ValidationConfig
from aio_ray.data.dukascopy import hour_path
from aio_ray.data.ingest import (
    IngestReport,
    Progress,
    days_to_do,
    finish,
    merged_result,
    validate_and_split,
    write_day,
)
from aio_ray.data.sources.base import TickSource
from aio_ray.frozen import Frozen
from aio_ray.schema import TICK_SCHEMA

__all__ = ["SOURCE", "ingest_dukascopy"]


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
    days = days_to_do(out, symbol, start, end, report)
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
    return finish(report, out, t0)


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
    by_day = validate_and_split(table, vcfg)
    res = by_day.pop(day, None) or merged_result([], [])
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


def _from_config(
    data: DataConfig,
    settings: Frozen | None,
    validation: ValidationConfig,
    *,
    use_ray: bool,
    progress: Progress | None,
) -> IngestReport:
    assert isinstance(settings, DukascopyConfig)  # TickSource.ingest checked it
    return ingest_dukascopy(
        data.symbol,
        data.start,
        data.end,
        data.ticks_dir,
        mirror=data.mirror,
        dcfg=settings,
        vcfg=validation,
        use_ray=use_ray,
        progress=progress,
    )


SOURCE = TickSource("dukascopy", _from_config, section="dukascopy", settings=DukascopyConfig)
