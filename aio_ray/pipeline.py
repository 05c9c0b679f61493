"""The stages wired together, each resumable: outputs that exist and are complete are reused.

Stage functions take the whole :class:`AppConfig` and return a small JSON-able summary; the
``aio pipeline`` command and ``jobs/pipeline.py`` call them in order.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from aio_ray.config import AppConfig
from aio_ray.data.ingest import IngestReport, ingest_dukascopy, ingest_files, ingest_synthetic
from aio_ray.progress import stage_progress

log = logging.getLogger(__name__)


def run_ingest(cfg: AppConfig, use_ray: bool = True) -> IngestReport:
    """Ingest the configured source into ``<workdir>/ticks`` (complete days are skipped)."""
    d = cfg.data
    with stage_progress("ingest") as prog:
        if d.source == "synthetic":
            return ingest_synthetic(d.symbol, d.start, d.end, d.ticks_dir, cfg.synthetic,
                                    cfg.validation, use_ray=use_ray, progress=prog)
        if d.source == "dukascopy":
            return ingest_dukascopy(d.symbol, d.start, d.end, d.ticks_dir, mirror=d.mirror,
                                    dcfg=cfg.dukascopy, vcfg=cfg.validation, use_ray=use_ray,
                                    progress=prog)
        return ingest_files(list(d.files), d.symbol, d.ticks_dir, vcfg=cfg.validation,
                            use_ray=use_ray, progress=prog)


def _bars_fingerprint(cfg: AppConfig) -> dict[str, Any]:
    from aio_ray.data.store import list_partitions

    parts = list_partitions(cfg.data.ticks_dir, cfg.data.symbol)
    return {
        "timeframes": list(cfg.bars.timeframes),
        "daily_close": cfg.bars.daily_close,
        "partitions": [[p.day.isoformat(), p.meta.get("rows"), p.meta.get("kept")] for p in parts],
    }


def run_bars(cfg: AppConfig) -> dict[str, Any]:
    """Build ``<workdir>/bars`` from the tick dataset; skipped when the same ticks and
    timeframes were already resampled (a fingerprint of the partitions is kept beside)."""
    from aio_ray.bars.build import build_bars

    fp = _bars_fingerprint(cfg)
    stamp = cfg.data.bars_dir / "_fingerprint.json"
    if stamp.exists() and json.loads(stamp.read_text()) == fp:
        log.info("bars: up to date, skipped")
        return {"status": "skipped", "bars_dir": str(cfg.data.bars_dir)}
    summary = build_bars(cfg.data.ticks_dir, cfg.data.bars_dir, list(cfg.bars.timeframes),
                         daily_close=cfg.bars.daily_close)
    stamp.write_text(json.dumps(fp))
    return summary


def default_run_id(bars_dir: Path, search: Any) -> str:
    """A deterministic run id for a search of ``bars_dir`` with ``search`` settings, so that
    rerunning the same command with ``--resume`` continues the same run."""
    from aio_ray.config import config_id

    return f"run-{config_id(search)}-{_dir_id(bars_dir)}"


def _dir_id(path: Path) -> str:
    import hashlib

    return hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:6]


def run_optimize(
    bars_dir: Path,
    cfg: AppConfig,
    *,
    run_id: str | None = None,
    resume: bool = False,
    db_url: str | None = None,
    storage: Path | None = None,
) -> Any:
    """Search strategies on ``bars_dir`` (Ray Tune + Optuna), rank them and store everything
    in the library. Returns the :class:`~aio_ray.strategies.search.SearchOutcome`."""
    from aio_ray.strategies.search import run_search

    run_id = run_id or default_run_id(bars_dir, cfg.search)
    storage = Path(storage or cfg.data.workdir / "tune").resolve()
    url = db_url or cfg.library.url
    _ensure_sqlite_dir(url)
    with stage_progress("search") as prog:
        return run_search(bars_dir, cfg.search, storage_path=storage, run_id=run_id,
                          resume=resume, db_url=url, progress=prog)


def _ensure_sqlite_dir(url: str) -> None:
    """A SQLite file's folder is created on first use (the library does not create it)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url[len(prefix):] not in ("", ":memory:"):
        Path(url[len(prefix):]).expanduser().parent.mkdir(parents=True, exist_ok=True)


def ranking_rows(lib: Any, run_id: str | None = None, top: int = 5) -> list[dict[str, Any]]:
    """The top ``top`` of a run (default: the newest ranked run) as JSON-able rows."""
    rows = []
    for r in lib.top(run_id=run_id, n=top):
        s = r.strategy
        rows.append({
            "rank": r.rank, "strategy_id": s.id, "family": s.family, "timeframe": s.timeframe,
            "symbol": s.symbol, "params": s.params, "score": r.score, "criteria": r.criteria,
            "holdout": r.holdout, "run_id": r.run_id, "rationale": r.rationale,
        })
    return rows
