"""Parquet/CSV tick files as a tick source.

Each file is read and validated on its own (a Ray task with ``use_ray``); a file that cannot
be read is reported by name and skipped whole, the rest are merged per UTC day.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from aio_ray.data import tick_store
from aio_ray.data.config import DataConfig, ValidationConfig
from aio_ray.data.files import read_tick_file
from aio_ray.data.ingest import (
    IngestReport,
    Progress,
    finish,
    merged_result,
    validate_and_split,
    write_day,
)
from aio_ray.data.sources.base import TickSource
from aio_ray.data.validate import ValidationResult
from aio_ray.errors import SourceError
from aio_ray.frozen import Frozen

__all__ = ["SOURCE", "ingest_files"]


def _read_and_validate(
    path: str, mapping: Any, fmt: Literal["auto", "parquet", "csv"], vcfg: ValidationConfig
) -> dict[dt.date, ValidationResult]:
    return validate_and_split(read_tick_file(Path(path), mapping, fmt), vcfg)


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
        day = merged_result(kept[d], quar[d])
        report.days[d.isoformat()] = write_day(out, symbol, d, day, notes={"source": "files"})
    return finish(report, out, t0)


def _from_config(
    data: DataConfig,
    settings: Frozen | None,
    validation: ValidationConfig,
    *,
    use_ray: bool,
    progress: Progress | None,
) -> IngestReport:
    return ingest_files(
        list(data.files),
        data.symbol,
        data.ticks_dir,
        vcfg=validation,
        use_ray=use_ray,
        progress=progress,
    )


SOURCE = TickSource("files", _from_config)
