"""Multi-timeframe OHLC bars from ticks: compiled kernel, exact merge of partial bars, Ray edge.

Public surface::

    parse_timeframe, parse_timeframes, Timeframe        # "1m" ... "1d"
    bars_from_ticks(table, timeframes, daily_close)     # in process, pure
    partial_bars / merge_partials / partials_to_bars    # the shard -> merge -> bars steps
    build_bars(ticks_dir, bars_dir, timeframes, ...)    # Ray tasks over a tick dataset
    read_bars(bars_dir, timeframe, symbol=None)         # polars DataFrame for later stages
    BarArrays.from_frame(df, price="mid")               # numpy arrays: the one bar type

Minutes without ticks produce no bar (nothing is forward-filled).
"""

from __future__ import annotations

import importlib
from typing import Any

# Exports resolve lazily (PEP 562) so that importing a light submodule such as
# ``aio_ray.bars.timeframes`` never drags in Ray Data or creates an import cycle with
# ``aio_ray.config``.
_EXPORTS = {
    "BarArrays": "arrays",
    "build_bars": "build",
    "build_bars_from_config": "build",
    "discover_tick_files": "build",
    "PARTIAL_SCHEMA": "resample",
    "bars_from_partials": "resample",
    "bars_from_ticks": "resample",
    "check_conservation": "resample",
    "merge_partials": "resample",
    "partial_bars": "resample",
    "partials_to_bars": "resample",
    "bars_path": "store",
    "read_bars": "store",
    "read_manifest": "store",
    "write_bars": "store",
    "SUPPORTED_TIMEFRAMES": "timeframes",
    "infer_bar_ms": "timeframes",
    "Timeframe": "timeframes",
    "bar_labels": "timeframes",
    "parse_timeframe": "timeframes",
    "parse_timeframes": "timeframes",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 - the lazy exports' names, one list


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aio_ray.bars' has no attribute {name!r}")
    return getattr(importlib.import_module(f"aio_ray.bars.{module}"), name)
