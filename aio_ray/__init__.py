"""aio-ray: EUR/USD ticks to ranked, verified TradingView strategies, on Ray.

The curated public API, one name per job, in pipeline order (each resolves lazily on first
use, so ``import aio_ray`` stays light and loads neither Ray nor numba)::

    load_config(path, overrides) -> AppConfig           # configs/*.yaml, typed and frozen
    run_pipeline(cfg) -> summary                        # every stage, as `aio run` does
    ingest_synthetic / ingest_dukascopy / ingest_files / ingest_bar_files   # ticks or bars in
    build_bars(ticks_dir, bars_dir, ...) / read_bars(bars_dir, tf) / bars_from_ticks(ticks)
    compute_all(bars) -> DataFrame                      # the eight indicators
    overlay_lines(close, specs)                         # the one chart overlay grammar
    run_search(...)                                     # population search + honest selection
    open_library(url) -> Library                        # runs, trials, rankings (sqlmodel)
    ScriptSource / generate(source) / verify_script(code, bars)   # Pine Script v6

Conventions everywhere: timestamps UTC, prices in quote currency, a bar labelled by its open
time. Errors derive from :class:`AioError` and name the argument, file or row at fault.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "AioError": "aio_ray.errors",
    "AppConfig": "aio_ray.config",
    "load_config": "aio_ray.config",
    "run_pipeline": "aio_ray.pipeline",
    "ingest_synthetic": "aio_ray.data.sources.synthetic",
    "ingest_dukascopy": "aio_ray.data.sources.dukascopy",
    "ingest_files": "aio_ray.data.sources.files",
    "ingest_bar_files": "aio_ray.data.bar_ingest",
    "build_bars": "aio_ray.bars.build",
    "read_bars": "aio_ray.bars.store",
    "bars_from_ticks": "aio_ray.bars.resample",
    "compute_all": "aio_ray.indicators",
    "overlay_lines": "aio_ray.charts.overlays",
    "run_search": "aio_ray.strategies.search",
    "open_library": "aio_ray.library",
    "ScriptSource": "aio_ray.pine.generate",
    "generate": "aio_ray.pine.generate",
    "verify_script": "aio_ray.pine.verify",
}

__all__ = ["__version__", *sorted(_EXPORTS)]  # noqa: PLE0604 - the lazy exports, one list


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aio_ray' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
