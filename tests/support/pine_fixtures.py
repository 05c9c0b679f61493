"""Shared helpers of the Pine tests: tool checks, real and synthetic bars, parameter sets.

The Node tool (PineTS) and pynescript are test dependencies: without them the Pine tests
skip with the reason, except under CI (env ``CI`` set), where a missing tool is a failure.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from aio_ray.bars.arrays import BarArrays
from aio_ray.bars.resample import bars_from_ticks
from aio_ray.data.dukascopy import decode_ticks, hour_path
from aio_ray.strategies.space import defaults

FAMILIES = ("ma_cross", "rsi_reversion", "macd_cross", "bb_breakout", "bb_reversion", "stoch_adx")
DAYS = (dt.date(2019, 2, 4), dt.date(2019, 2, 5))

# Parameters that trade often on two days of bars; stops and targets on.
ACTIVE: dict[str, dict[str, Any]] = {
    "ma_cross": {"fast": 5, "slow": 12, "ma": "sma"},
    "rsi_reversion": {"length": 7, "lower": 35, "upper": 65},
    "macd_cross": {"fast": 6, "slow": 13, "signal": 5},
    "bb_breakout": {"length": 10, "mult": 1.5},
    "bb_reversion": {"length": 10, "mult": 1.5},
    "stoch_adx": {"k": 9, "adx_threshold": 15.0},
}
STOPS = {"atr_length": 10, "stop_atr": 1.5, "take_atr": 2.5}

# Display names that try to break out of the title literal or the header comments.
HOSTILE = [
    'Evil"); strategy.entry("X", strategy.long) //',
    "two\nlines\r\nstrategy.close_all()",
    "tab\tand \u2028 line separator \u2029 and \x85 next line",
    "back\\slash \\n and 'single' quotes and `ticks`",
    "/* block */ // comment ${x} {{y}}",
    "bidi \u202e override and zero\u200bwidth and NUL \x00 bell \x07",
]


def params(family: str, stops: bool = True, **extra: Any) -> dict[str, Any]:
    """The family's defaults updated with :data:`ACTIVE` (and :data:`STOPS`)."""
    p = defaults(family)
    p.update(ACTIVE[family])
    if stops:
        p.update(STOPS)
    p.update(extra)
    return p


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI: {reason}")
    pytest.skip(reason)


def require_pinets() -> None:
    """Skip (fail under CI) unless node and the runner's node_modules are installed."""
    from aio_ray.pine.runner import runner_status

    ok, why = runner_status()
    if not ok:
        _missing(why)


def require_pynescript() -> None:
    """Skip (fail under CI) unless pynescript is importable."""
    try:
        import pynescript.ast  # noqa: F401
    except ImportError:
        _missing("pynescript is not installed (pip install pynescript)")


def warm_parser() -> None:
    """Pay pynescript's parser warm-up once (seconds) on a script using every construct."""
    from aio_ray.pine.generate import ScriptSource, generate
    from aio_ray.pine.verify import check_syntax

    for fam in FAMILIES:
        for kind in ("strategy", "indicator"):
            assert check_syntax(generate(ScriptSource(fam, params(fam), "15m"), kind)).ok  # type: ignore[arg-type]


def real_ticks(root: Path) -> pa.Table:
    """Every real EUR/USD tick of 2019-02-04 and 2019-02-05."""
    parts = []
    for day in DAYS:
        for h in range(24):
            hour = dt.datetime(day.year, day.month, day.day, h)
            parts.append(
                decode_ticks((root / hour_path("EURUSD", hour)).read_bytes(), hour, "EURUSD")
            )
    return pa.concat_tables(parts)


def real_bars(root: Path, timeframes: tuple[str, ...] = ("1m", "15m")) -> dict[str, pa.Table]:
    """Bars of the real ticks (BAR_SCHEMA tables) by timeframe."""
    return bars_from_ticks(real_ticks(root), list(timeframes))


def mid(table: pa.Table) -> BarArrays:
    """The mid OHLC of a bar table."""
    return BarArrays.from_frame(pl.from_arrow(table), "mid")  # type: ignore[arg-type]


def synthetic_bars(min_bars: int) -> BarArrays:
    """At least ``min_bars`` 1-minute mid bars of the seeded synthetic tick generator."""
    from aio_ray.data.synthetic_ticks import generate

    parts: list[pa.Table] = []
    day, rows = dt.date(2025, 1, 6), 0
    while rows < min_bars:
        end = day + dt.timedelta(days=7)
        ticks = pa.concat_tables([t for _, t in generate("EURUSD", day, end)])
        week = bars_from_ticks(ticks, ["1m"])["1m"]
        parts.append(week)
        rows += week.num_rows
        day = end
    return mid(pa.concat_tables(parts).slice(0, min_bars))
