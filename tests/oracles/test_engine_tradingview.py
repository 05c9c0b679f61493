"""The engine's TradingView options: ``intrabar="tradingview"`` and ``level_tick`` (fills.py)."""

from __future__ import annotations

import pytest

from aio_ray.strategies.engine import BacktestConfig, BacktestConfigError, run_backtest
from tests.support.engine_common import bars, costless, signals

# The levels and fill prices are pinned without costs (no slippage moves a stop fill).
SINGLE = costless(price_model="single")
TV = SINGLE.model_copy(update={"intrabar": "tradingview"})

# Binary-exact prices: bar 1 closes at 1.25 (the anchor); levels 1.125 / 1.375.
FLAT = (1.25, 1.25, 1.25, 1.25)


def _exit(rows, cfg, side="long", stop=0.125, take=0.125):  # type: ignore[no-untyped-def]
    key = "long_entry" if side == "long" else "short_entry"
    sig = signals(len(rows), **{key: [1]}, stop={1: stop}, take={1: take})
    (t,) = run_backtest(bars(rows), sig, cfg).trades.to_dicts()
    return t["exit_bar"], t["exit_reason"], t["exit_price"]


@pytest.mark.parametrize(
    ("bar3", "side", "want"),
    [
        # open nearer the high: path open -> high -> low -> close
        ((1.3125, 1.5, 1.0, 1.25), "long", (3, "take", 1.375)),
        ((1.3125, 1.5, 1.0, 1.25), "short", (3, "stop", 1.375)),
        # open nearer the low: path open -> low -> high -> close
        ((1.1875, 1.5, 1.0, 1.25), "long", (3, "stop", 1.125)),
        ((1.1875, 1.5, 1.0, 1.25), "short", (3, "take", 1.125)),
        # equal distances: treated as nearer the high (PineTS: high - open <= open - low)
        ((1.25, 1.5, 1.0, 1.25), "long", (3, "take", 1.375)),
        ((1.25, 1.5, 1.0, 1.25), "short", (3, "stop", 1.375)),
    ],
)
def test_tradingview_picks_the_level_on_the_assumed_intrabar_path(bar3, side, want) -> None:  # type: ignore[no-untyped-def]
    rows = [FLAT, FLAT, FLAT, bar3, FLAT]
    assert _exit(rows, TV, side) == want
    # the default stays conservative: the stop
    stop_px = 1.125 if side == "long" else 1.375
    assert _exit(rows, SINGLE, side) == (3, "stop", stop_px)


def test_tradingview_gap_of_a_held_position_fills_at_the_open() -> None:
    # bar 3 opens below the long stop and reaches the target: the open fills, as a stop
    rows = [FLAT, FLAT, FLAT, (1.0625, 1.5, 1.0, 1.25), FLAT]
    assert _exit(rows, TV) == (3, "stop", 1.0625)
    rows = [FLAT, FLAT, FLAT, (1.4375, 1.5, 1.0, 1.25), FLAT]
    assert _exit(rows, TV, "short") == (3, "stop", 1.4375)


def test_tradingview_spares_a_short_entered_at_an_open_beyond_its_stop() -> None:
    # short signal at bar 1 (stop 1.375); bar 2 opens at 1.4375, beyond the stop
    rows = [FLAT, FLAT, (1.4375, 1.5, 1.40625, 1.4375), (1.4375, 1.5, 1.40625, 1.4375), FLAT]
    # stop_first: stopped at the entry bar's open (a zero-profit trade)
    assert _exit(rows, SINGLE, "short", take=float("nan")) == (2, "stop", 1.4375)
    # TradingView: the buy stop does not catch the fresh entry; the next bar's gap does
    assert _exit(rows, TV, "short", take=float("nan")) == (3, "stop", 1.4375)
    # a long entered below its stop is caught at once (sell stops always catch)
    rows = [FLAT, FLAT, (1.0625, 1.09375, 1.0, 1.0625), FLAT, FLAT]
    assert _exit(rows, TV, "long", take=float("nan")) == (2, "stop", 1.0625)


BASE = [
    (1.1000, 1.1010, 1.0990, 1.1005),
    (1.1005, 1.1015, 1.0995, 1.1010),
    (1.1012, 1.1020, 1.1005, 1.1015),
    (1.1015, 1.1030, 1.1010, 1.1025),
    (1.1027, 1.1035, 1.1020, 1.1030),
]


def test_level_tick_rounds_levels_away_from_the_signal_close() -> None:
    cfg = SINGLE.model_copy(update={"level_tick": 1e-5})
    down = [*BASE[:3], (1.1000, 1.1005, 1.0990, 1.0995), BASE[4]]
    up = [*BASE[:3], (1.1020, 1.1040, 1.1015, 1.1035), BASE[4]]
    # raw 1.1010 -/+ 0.001234 = 1.099766 / 1.102234: the tick below / above
    assert _exit(down, cfg, stop=0.001234) == (3, "stop", 109976 * 1e-5)
    assert _exit(up, cfg, take=0.001234) == (3, "take", 110224 * 1e-5)
    assert _exit(up, cfg, "short", stop=0.001234) == (3, "stop", 110224 * 1e-5)
    assert _exit(down, cfg, "short", take=0.001234) == (3, "take", 109976 * 1e-5)
    # a raw level a hair off a tick (float noise of 1.1010 + 0.0015) is that tick
    assert _exit(up, cfg, take=0.0015) == (3, "take", 110250 * 1e-5)
    # without level_tick the raw level fills
    assert _exit(down, SINGLE, stop=0.001234) == (3, "stop", 1.1010 - 0.001234)


def test_new_options_are_validated() -> None:
    with pytest.raises(BacktestConfigError, match="intrabar"):
        BacktestConfig(intrabar="random")  # type: ignore[arg-type]
    with pytest.raises(BacktestConfigError, match="level_tick"):
        BacktestConfig(level_tick=0.0)
    assert BacktestConfig().intrabar == "stop_first" and BacktestConfig().level_tick is None
