"""The seeded synthetic generator as a tick source (the embedded default).

Each day is generated, validated and written by one plain function (:func:`synthetic_day`),
mapped as Ray tasks with ``use_ray``. A day's partition notes every generator parameter, so a
day written with other parameters is generated again rather than skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from aio_ray.data.config import DataConfig, SyntheticConfig, ValidationConfig
from aio_ray.data.ingest import (
    IngestReport,
    Progress,
    days_to_do,
    finish,
    merged_result,
    run_days,
    validate_and_split,
    write_day,
)
from aio_ray.data.sources.base import TickSource
from aio_ray.data.synthetic_ticks import generate_day
from aio_ray.frozen import Frozen

__all__ = ["SOURCE", "ingest_synthetic", "synthetic_day", "synthetic_source"]


def synthetic_day(
    symbol: str, day: dt.date, out: str, scfg: SyntheticConfig, vcfg: ValidationConfig
) -> dict[str, Any]:
    """Generate, validate and write one synthetic day (a plain function; Ray maps it)."""
    table = generate_day(symbol, day, scfg)
    by_day = validate_and_split(table, vcfg)
    res = by_day.get(day) or merged_result([], [])
    stray = sorted(d for d in by_day if d != day)
    if stray:  # a generator bug, never silently kept
        raise AssertionError(f"synthetic day {day} produced ticks on {stray}")
    return write_day(Path(out), symbol, day, res, notes={"source": synthetic_source(scfg)})


def synthetic_source(scfg: SyntheticConfig) -> str:
    """The partition note naming the generator and every parameter of it (seed, edge, ...):
    a day written with other parameters is not the same data, so it is generated again."""
    return "synthetic " + json.dumps(scfg.model_dump(mode="json"), sort_keys=True)


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
    days = days_to_do(out, symbol, start, end, report, synthetic_source(scfg))
    run_days(synthetic_day, days, (symbol, str(out), scfg, vcfg), use_ray, report, progress)
    return finish(report, out, t0)


def _from_config(
    data: DataConfig,
    settings: Frozen | None,
    validation: ValidationConfig,
    *,
    use_ray: bool,
    progress: Progress | None,
) -> IngestReport:
    assert isinstance(settings, SyntheticConfig)  # TickSource.ingest checked it
    return ingest_synthetic(
        data.symbol,
        data.start,
        data.end,
        data.ticks_dir,
        settings,
        validation,
        use_ray=use_ray,
        progress=progress,
    )


SOURCE = TickSource("synthetic", _from_config, section="synthetic", settings=SyntheticConfig)
