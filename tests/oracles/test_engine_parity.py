"""Parity with backtesting.py (an independent engine) on the same bars and signals.

Zero costs, fixed size, market orders at the next open, reversal by an opposite entry
(``exclusive_orders=True``): every trade must have the same entry/exit bar and price. Our
final trade, still open on the last bar, is closed with reason "end"; backtesting.py leaves it
open (``finalize_trades=False``), so it is excluded explicitly.
"""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from backtesting import Backtest, Strategy

from aio_ray.bars.arrays import BarArrays
from aio_ray.data.dukascopy import decode_ticks
from aio_ray.strategies.engine import cross_signals, run_backtest
from aio_ray.strategies.signals import Signals
from tests.support.engine_common import costless, random_walk, sma

UNITS = 100_000
# backtesting.py runs here with commission=0 and spread=0 and models no swap at all: every
# cost of ours is set to 0 (the defaults charge commission, slippage and swap).
CFG = costless(price_model="single", initial_capital=1e9, units=float(UNITS))


def backtesting_py_trades(b: BarArrays, sig: Signals) -> pd.DataFrame:
    """Run ``sig`` in backtesting.py: entries reverse, stops/targets anchored at the close."""
    close = b.close

    class Replay(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data) - 1
            go_long = sig.long_entry[i] and not sig.short_entry[i]
            go_short = sig.short_entry[i] and not sig.long_entry[i]
            sd, td = sig.stop_dist[i], sig.take_dist[i]
            has_sd, has_td = not np.isnan(sd), not np.isnan(td)
            if go_long and not self.position.is_long:
                self._cancel_brackets()
                self.buy(
                    size=UNITS,
                    sl=close[i] - sd if has_sd else None,
                    tp=close[i] + td if has_td else None,
                )
            elif go_short and not self.position.is_short:
                self._cancel_brackets()
                self.sell(
                    size=UNITS,
                    sl=close[i] + sd if has_sd else None,
                    tp=close[i] - td if has_td else None,
                )

        def _cancel_brackets(self) -> None:
            # Our rule: the market order at the next open comes first, so the old trade's
            # stop/target must not fill before it in that bar (backtesting.py would process
            # the stop first).
            for t in self.trades:
                t.sl = None
                t.tp = None

    df = pd.DataFrame(
        {"Open": b.open, "High": b.high, "Low": b.low, "Close": b.close},
        index=pd.to_datetime(b.ts, unit="ms"),
    )
    bt = Backtest(
        df,
        Replay,
        cash=1e9,
        commission=0.0,
        spread=0.0,
        trade_on_close=False,
        exclusive_orders=True,
        hedging=False,
        finalize_trades=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.run()
    return stats._trades


def assert_same_trades(b: BarArrays, sig: Signals) -> int:
    ours = run_backtest(b, sig, CFG).trades
    assert ours.height > 0
    if ours["exit_reason"][-1] == "end":
        ours = ours[:-1]
    theirs = backtesting_py_trades(b, sig)
    assert len(theirs) == ours.height
    assert theirs["EntryBar"].tolist() == ours["entry_bar"].to_list()
    assert theirs["ExitBar"].tolist() == ours["exit_bar"].to_list()
    assert theirs["EntryPrice"].tolist() == ours["entry_price"].to_list()
    assert theirs["ExitPrice"].tolist() == ours["exit_price"].to_list()
    assert (np.sign(theirs["Size"]).tolist()) == [1 if s == "long" else -1 for s in ours["side"]]
    return ours.height


@pytest.mark.parametrize("seed", [3, 4])
def test_sma_crossover_trades_equal_backtesting_py_on_a_random_walk(seed: int) -> None:
    b = random_walk(2_000, seed)
    sig = cross_signals(sma(b.close, 10), sma(b.close, 30))
    assert assert_same_trades(b, sig) > 30


def test_stops_and_targets_equal_backtesting_py_on_a_random_walk() -> None:
    b = random_walk(2_000, 5)
    rng_dist = 2.0 * sma(b.high - b.low, 14)
    sig = cross_signals(
        sma(b.close, 8), sma(b.close, 21), stop_dist=rng_dist, take_dist=1.5 * rng_dist
    )
    ours = run_backtest(b, sig, CFG).trades
    assert {"stop", "take", "reverse"} <= set(ours["exit_reason"])  # every rule exercised
    assert assert_same_trades(b, sig) > 30


def _real_minute_bars(root) -> BarArrays:  # type: ignore[no-untyped-def]
    tables = []
    for day in (4, 5):
        for hour in range(24):
            path = root / "EURUSD" / "2019" / "01" / f"{day:02d}" / f"{hour:02d}h_ticks.bi5"
            start = dt.datetime(2019, 2, day, hour, tzinfo=dt.UTC)
            tables.append(decode_ticks(path.read_bytes(), start, "EURUSD", str(path)))
    ticks = pl.from_arrow(pa.concat_tables(tables))
    assert isinstance(ticks, pl.DataFrame)
    bars = (
        ticks.with_columns(((pl.col("bid") + pl.col("ask")) / 2).alias("mid"))
        .sort("ts")
        .group_by_dynamic("ts", every="1m")
        .agg(
            pl.col("mid").first().alias("open"),
            pl.col("mid").max().alias("high"),
            pl.col("mid").min().alias("low"),
            pl.col("mid").last().alias("close"),
        )
    )
    ts = bars["ts"].dt.epoch("ms").to_numpy().astype(np.int64)
    return BarArrays(
        ts, *(bars[c].to_numpy().astype(np.float64) for c in ("open", "high", "low", "close"))
    )


@pytest.mark.shared
def test_sma_crossover_trades_equal_backtesting_py_on_real_minute_bars(dukascopy_dir) -> None:  # type: ignore[no-untyped-def]
    b = _real_minute_bars(dukascopy_dir)
    assert len(b) > 2_500  # two trading days of 1-minute bars
    sig = cross_signals(sma(b.close, 9), sma(b.close, 26))
    assert assert_same_trades(b, sig) > 50
    dist = 1.5 * sma(b.high - b.low, 14)
    with_stops = cross_signals(
        sma(b.close, 9), sma(b.close, 26), stop_dist=dist, take_dist=2 * dist
    )
    assert assert_same_trades(b, with_stops) > 50
