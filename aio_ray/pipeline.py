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
