"""The fill rules of the compiled engine, one small hand-made bar set per rule.

Each case asserts exact fill bars and prices (see aio_ray/strategies/fills.py for the rules).
"""

from __future__ import annotations

import math
import pickle
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from aio_ray.bars.arrays import BID_ASK_FIELDS, BarArrays
from aio_ray.config import config_id
from aio_ray.errors import AioError, BarsError, ConfigError
from aio_ray.strategies.engine import (
    TRADE_SCHEMA,
    BacktestConfig,
    BacktestConfigError,
    BacktestError,
    run_backtest,
)
from aio_ray.strategies.kernel_inputs import kernel_prices
from aio_ray.strategies.signals import Signals
from tests.support.engine_common import T0, bars, costless, flat_bars, signals, spread_around

SINGLE = costless(price_model="single", initial_capital=10_000.0, units=100_000.0)

# A base path: bar 1 closes at 1.1010 (the signal anchor), bar 2 opens at 1.1012.
BASE = [
    (1.1000, 1.1010, 1.0990, 1.1005),
    (1.1005, 1.1015, 1.0995, 1.1010),
    (1.1012, 1.1020, 1.1005, 1.1015),
    (1.1015, 1.1030, 1.1010, 1.1025),
    (1.1027, 1.1035, 1.1020, 1.1030),
    (1.1030, 1.1040, 1.1025, 1.1035),
]


def with_bar(
    i: int, row: tuple[float, float, float, float]
) -> list[tuple[float, float, float, float]]:
    rows = list(BASE)
    rows[i] = row
    return rows


def trade_rows(res) -> list[dict]:  # type: ignore[no-untyped-def]
    return res.trades.to_dicts()


# ----------------------------------------------------------------------------- market orders


def test_market_entry_and_exit_fill_at_the_next_bars_open() -> None:
    b = bars(BASE)
    res = run_backtest(b, signals(6, long_entry=[1], long_exit=[3]), SINGLE)
    (t,) = trade_rows(res)
    assert (t["entry_bar"], t["exit_bar"]) == (2, 4)
    assert t["entry_price"] == 1.1012 and t["exit_price"] == 1.1027
    assert t["side"] == "long" and t["size"] == 100_000.0 and t["exit_reason"] == "signal"
    assert t["pnl_pips"] == pytest.approx(15.0, abs=1e-9)
    assert t["pnl"] == pytest.approx(150.0, abs=1e-6)
    assert t["entry_ts"].timestamp() * 1000 == T0 + 2 * 60_000
    # Equity at each close: flat, flat, then marked at the close, then realized.
    want = [
        10_000,
        10_000,
        10_000 + 1e5 * (1.1015 - 1.1012),
        10_000 + 1e5 * (1.1025 - 1.1012),
        10_150,
        10_150,
    ]
    np.testing.assert_allclose(res.equity, want, rtol=0, atol=1e-6)


def test_an_opposite_entry_reverses_in_one_order_at_the_same_open() -> None:
    b = bars(BASE)
    res = run_backtest(b, signals(6, long_entry=[1], short_entry=[3]), SINGLE)
    first, second = trade_rows(res)
    assert (first["side"], first["entry_bar"], first["exit_bar"], first["exit_reason"]) == (
        "long",
        2,
        4,
        "reverse",
    )
    assert (second["side"], second["entry_bar"]) == ("short", 4)
    assert first["exit_price"] == second["entry_price"] == 1.1027
    # The short is still open on the last bar: closed at its close, reason "end".
    assert (second["exit_bar"], second["exit_price"], second["exit_reason"]) == (5, 1.1035, "end")
    assert second["pnl"] == pytest.approx(-1e5 * (1.1035 - 1.1027), abs=1e-6)


def test_open_position_is_closed_at_the_last_close_with_reason_end() -> None:
    res = run_backtest(bars(BASE), signals(6, long_entry=[1]), SINGLE)
    (t,) = trade_rows(res)
    assert (t["exit_bar"], t["exit_price"], t["exit_reason"]) == (5, 1.1035, "end")
    assert res.equity[-1] == pytest.approx(10_000 + 1e5 * (1.1035 - 1.1012), abs=1e-6)


# ----------------------------------------------------------------------------- stops and targets


def test_stop_inside_a_bar_fills_at_the_stop() -> None:
    b = bars(with_bar(3, (1.1008, 1.1012, 1.0995, 1.1001)))
    res = run_backtest(b, signals(6, long_entry=[1], stop={1: 0.0010}), SINGLE)
    (t,) = trade_rows(res)
    assert (t["exit_bar"], t["exit_reason"]) == (3, "stop")
    assert t["exit_price"] == b.close[1] - 0.0010  # anchored at the signal bar's close


def test_target_inside_a_bar_fills_at_the_target() -> None:
    b = bars(with_bar(3, (1.1015, 1.1030, 1.1010, 1.1020)))
    res = run_backtest(b, signals(6, long_entry=[1], take={1: 0.0015}), SINGLE)
    (t,) = trade_rows(res)
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (3, "take", b.close[1] + 0.0015)


def test_bar_touching_stop_and_target_takes_the_stop() -> None:
    b = bars(with_bar(3, (1.1012, 1.1030, 1.0990, 1.1020)))
    res = run_backtest(b, signals(6, long_entry=[1], stop={1: 0.0010}, take={1: 0.0015}), SINGLE)
    (t,) = trade_rows(res)
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (3, "stop", b.close[1] - 0.0010)


def test_gap_through_the_stop_fills_at_the_open() -> None:
    b = bars(with_bar(3, (1.0990, 1.0995, 1.0980, 1.0992)))
    res = run_backtest(b, signals(6, long_entry=[1], stop={1: 0.0010}), SINGLE)
    (t,) = trade_rows(res)
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (3, "stop", 1.0990)


def test_gap_through_the_target_fills_at_the_better_open() -> None:
    b = bars(with_bar(3, (1.1040, 1.1045, 1.1035, 1.1042)))
    res = run_backtest(b, signals(6, long_entry=[1], take={1: 0.0015}), SINGLE)
    (t,) = trade_rows(res)
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (3, "take", 1.1040)


def test_stop_can_trigger_on_the_entry_bar_after_the_open_fill() -> None:
    b = bars(with_bar(2, (1.1012, 1.1015, 1.0990, 1.1000)))
    res = run_backtest(b, signals(6, long_entry=[1], stop={1: 0.0010}), SINGLE)
    (t,) = trade_rows(res)
    assert (t["entry_bar"], t["exit_bar"], t["entry_price"]) == (2, 2, 1.1012)
    assert (t["exit_reason"], t["exit_price"]) == ("stop", b.close[1] - 0.0010)
    # Flat after the stop: the equity is realized at that bar's close.
    assert res.equity[2] == pytest.approx(10_000 + t["pnl"], abs=1e-9)


def test_short_stop_and_target_are_mirrored() -> None:
    # Stop 1.1022 (above the entry bar's high 1.1020), target 1.0995.
    up = bars(with_bar(3, (1.1015, 1.1025, 1.1010, 1.1020)))
    res = run_backtest(up, signals(6, short_entry=[1], stop={1: 0.0012}, take={1: 0.0015}), SINGLE)
    (t,) = trade_rows(res)
    assert (t["side"], t["exit_bar"], t["exit_reason"], t["exit_price"]) == (
        "short",
        3,
        "stop",
        up.close[1] + 0.0012,
    )
    down = bars(with_bar(3, (1.1000, 1.1005, 1.0990, 1.0992)))
    res = run_backtest(
        down, signals(6, short_entry=[1], stop={1: 0.0012}, take={1: 0.0015}), SINGLE
    )
    (t,) = trade_rows(res)
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (3, "take", down.close[1] - 0.0015)
    gap = bars(with_bar(3, (1.1030, 1.1035, 1.1028, 1.1032)))
    res = run_backtest(gap, signals(6, short_entry=[1], stop={1: 0.0012}), SINGLE)
    (t,) = trade_rows(res)
    assert (t["exit_reason"], t["exit_price"]) == ("stop", 1.1030)


def test_stop_is_not_moved_by_later_signals_and_dies_with_the_trade() -> None:
    # Long from bar 2 with a stop at 1.1000; a repeated long entry at bar 2 (ignored, no
    # pyramiding) carries a tighter stop that must not replace the first one.
    b = bars(with_bar(3, (1.1012, 1.1016, 1.1008, 1.1010)))
    sig = signals(6, long_entry=[1, 2], stop={1: 0.0010, 2: 0.0005})
    (t,) = trade_rows(run_backtest(b, sig, SINGLE))
    assert (t["entry_bar"], t["exit_reason"]) == (2, "end")


# ----------------------------------------------------------------------------- bid/ask model


def test_bidask_buys_at_the_ask_and_sells_at_the_bid() -> None:
    mid = bars(BASE)
    ba = spread_around(mid, 0.0002)
    cfg = costless(price_model="bidask", units=100_000.0)
    res = run_backtest(ba, signals(6, long_entry=[1], long_exit=[3], short_entry=[4]), cfg)
    long_t, short_t = trade_rows(res)
    assert long_t["entry_price"] == ba.ask_open[2] and long_t["exit_price"] == ba.bid_open[4]
    assert short_t["entry_price"] == ba.bid_open[5]
    # The short is closed at the end at the ask close; a long would close at the bid close.
    assert short_t["exit_price"] == ba.ask_close[5] and short_t["exit_reason"] == "end"
    assert long_t["pnl_pips"] == pytest.approx((1.1027 - 1.1012 - 0.0002) / 1e-4, abs=1e-9)


def test_bidask_long_stop_is_triggered_by_the_bid_low() -> None:
    # The mid low stays 0.5 pip above the stop, the bid low (1 pip below mid) goes through it.
    rows = with_bar(3, (1.1010, 1.1015, 1.10005, 1.1008))
    mid = bars(rows)
    ba = spread_around(mid, 0.0002)
    sig = signals(6, long_entry=[1], stop={1: 0.0010})
    single = run_backtest(mid, sig, SINGLE)
    assert trade_rows(single)[0]["exit_reason"] == "end"
    bidask = run_backtest(ba, sig, costless(price_model="bidask"))
    (t,) = trade_rows(bidask)
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (3, "stop", mid.close[1] - 0.0010)


def test_bidask_short_stop_is_triggered_by_the_ask_high() -> None:
    # Stop 1.1022: the mid high of bar 3 stays 0.5 pip below it, the ask high goes through.
    rows = with_bar(3, (1.1012, 1.10215, 1.1005, 1.1010))
    mid = bars(rows)
    ba = spread_around(mid, 0.0002)
    sig = signals(6, short_entry=[1], stop={1: 0.0012})
    (t,) = trade_rows(run_backtest(mid, sig, SINGLE))  # the mid high only gets there on bar 4
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (4, "stop", 1.1027)
    (t,) = trade_rows(run_backtest(ba, sig, costless(price_model="bidask")))
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (3, "stop", mid.close[1] + 0.0012)


# ----------------------------------------------------------------------------- costs


def test_per_lot_commission_and_slippage_arithmetic() -> None:
    b = bars(BASE)
    cfg = costless(
        price_model="single",
        units=200_000.0,
        commission=3.5,
        commission_type="per_lot",
        slippage_points=2.0,
    )
    (t,) = trade_rows(run_backtest(b, signals(6, long_entry=[1], long_exit=[3]), cfg))
    assert t["entry_price"] == 1.1012 + 2e-5 and t["exit_price"] == 1.1027 - 2e-5
    assert t["commission"] == pytest.approx(2 * 3.5 * 2.0, abs=1e-12)  # 2 lots, both sides
    assert t["pnl"] == pytest.approx(2e5 * (t["exit_price"] - t["entry_price"]) - 14.0, abs=1e-6)
    assert t["pnl_pips"] == pytest.approx(15.0 - 0.4, abs=1e-9)  # gross of commission


def test_percent_and_cash_per_order_commission() -> None:
    b = bars(BASE)
    sig = signals(6, long_entry=[1], long_exit=[3])
    pct = costless(price_model="single", commission=0.01, commission_type="percent")
    (t,) = trade_rows(run_backtest(b, sig, pct))
    assert t["commission"] == pytest.approx(1e-4 * 1e5 * (1.1012 + 1.1027), rel=1e-12)
    cash = costless(price_model="single", commission=2.5, commission_type="cash_per_order")
    res = run_backtest(b, signals(6, long_entry=[1], short_entry=[3]), cash)
    first, second = trade_rows(res)
    assert first["commission"] == 5.0 and second["commission"] == 5.0  # a reversal pays both
    assert res.equity[-1] == pytest.approx(10_000 + first["pnl"] + second["pnl"], abs=1e-9)


def test_slippage_applies_to_stops_and_gapped_stops_but_not_to_targets() -> None:
    cfg = costless(price_model="single", slippage_points=3.0)
    b = bars(with_bar(3, (1.1008, 1.1012, 1.0995, 1.1001)))
    (t,) = trade_rows(run_backtest(b, signals(6, long_entry=[1], stop={1: 0.0010}), cfg))
    assert t["exit_price"] == (b.close[1] - 0.0010) - 3e-5
    g = bars(with_bar(3, (1.0990, 1.0995, 1.0980, 1.0992)))
    (t,) = trade_rows(run_backtest(g, signals(6, long_entry=[1], stop={1: 0.0010}), cfg))
    assert t["exit_price"] == 1.0990 - 3e-5
    tk = bars(with_bar(3, (1.1015, 1.1030, 1.1010, 1.1020)))
    (t,) = trade_rows(run_backtest(tk, signals(6, long_entry=[1], take={1: 0.0015}), cfg))
    assert t["exit_price"] == b.close[1] + 0.0015
    # The "end" close gets no slippage either.
    (t,) = trade_rows(run_backtest(bars(BASE), signals(6, long_entry=[1]), cfg))
    assert t["exit_price"] == 1.1035


# ----------------------------------------------------------------------------- sizing


def test_risk_sizing_rounds_down_to_the_lot_step_and_falls_back_without_a_stop() -> None:
    b = bars(BASE)
    cfg = costless(
        price_model="single",
        sizing="risk",
        risk_fraction=0.01,
        lot_step=1_000.0,
        units=20_000.0,
        initial_capital=10_000.0,
    )
    (t,) = trade_rows(run_backtest(b, signals(6, long_entry=[1], stop={1: 0.0020}), cfg))
    assert t["size"] == 50_000.0  # 10,000 x 1 % / 0.0020
    (t,) = trade_rows(run_backtest(b, signals(6, long_entry=[1], stop={1: 0.0030}), cfg))
    assert t["size"] == 33_000.0  # 33,333 rounded down to 1,000
    (t,) = trade_rows(run_backtest(b, signals(6, long_entry=[1]), cfg))
    assert t["size"] == 20_000.0  # no stop: fixed units


def test_risk_sizing_uses_the_equity_marked_at_the_signal_bar() -> None:
    # A long from bar 2 is marked at bar 3's close (1.1025) when the bar-3 reversal is decided.
    b = bars(BASE)
    cfg = costless(
        price_model="single",
        sizing="risk",
        risk_fraction=0.02,
        lot_step=1.0,
        initial_capital=10_000.0,
    )
    res = run_backtest(
        b, signals(6, long_entry=[1], short_entry=[3], stop={1: 0.0040, 3: 0.0040}), cfg
    )
    first, second = trade_rows(res)
    assert first["size"] == math.floor(10_000 * 0.02 / 0.0040 + 1e-9)
    assert res.equity[3] == pytest.approx(10_000 + first["size"] * (1.1025 - 1.1012), abs=1e-9)
    assert second["size"] == math.floor(res.equity[3] * 0.02 / 0.0040 + 1e-9)
    assert second["size"] != first["size"]


# ----------------------------------------------------------------------------- precedence


def test_same_bar_precedence_rules() -> None:
    b = bars(BASE)
    # Flat, both entries on one bar: they cancel.
    assert run_backtest(b, signals(6, long_entry=[1], short_entry=[1]), SINGLE).trades.height == 0
    # Long, exit and opposite entry on one bar: a reversal.
    first, second = trade_rows(
        run_backtest(b, signals(6, long_entry=[1], long_exit=[3], short_entry=[3]), SINGLE)
    )
    assert first["exit_reason"] == "reverse" and second["side"] == "short"
    # Long, exit and same-side entry on one bar: the exit wins, no new trade.
    (t,) = trade_rows(run_backtest(b, signals(6, long_entry=[1, 3], long_exit=[3]), SINGLE))
    assert (t["exit_bar"], t["exit_reason"]) == (4, "signal")
    # Flat, an entry with an exit of the same side on one bar: the exit cancels it.
    assert run_backtest(b, signals(6, long_entry=[1], long_exit=[1]), SINGLE).trades.height == 0
    # Exits while flat, and an entry on the last bar, do nothing.
    assert (
        run_backtest(
            b, signals(6, long_exit=[1], short_exit=[2], long_entry=[5]), SINGLE
        ).trades.height
        == 0
    )


def test_ruin_closes_the_position_and_stops_trading() -> None:
    rows = [
        (1.10, 1.10, 1.10, 1.10),
        (1.10, 1.10, 1.10, 1.10),
        (1.10, 1.10, 1.097, 1.097),
        (1.097, 1.10, 1.097, 1.10),
        (1.10, 1.10, 1.10, 1.10),
        (1.10, 1.10, 1.10, 1.10),
    ]
    cfg = costless(price_model="single", initial_capital=200.0, units=100_000.0)
    res = run_backtest(bars(rows), signals(6, long_entry=[1, 3]), cfg)
    (t,) = trade_rows(res)  # the bar-3 entry is refused: the account is ruined
    assert (t["exit_bar"], t["exit_reason"], t["exit_price"]) == (2, "end", 1.097)
    assert res.equity[2] == pytest.approx(200.0 - 300.0, abs=1e-6)
    assert np.all(res.equity[2:] == res.equity[2])


# ----------------------------------------------------------------------------- result shape


def test_trade_list_schema_and_equity_invariants() -> None:
    res = run_backtest(bars(BASE), signals(6, long_entry=[1], short_entry=[3]), SINGLE)
    assert res.trades.schema == pl.Schema(TRADE_SCHEMA)
    assert set(res.trades["exit_reason"]) <= {"signal", "reverse", "stop", "take", "end"}
    assert res.equity.shape == (6,) and res.ts.dtype == np.int64
    assert res.metrics["net_profit"] == pytest.approx(res.trades["pnl"].sum(), abs=1e-9)
    assert res.metrics["trades"] == 2
    frame = res.equity_frame()
    assert frame.columns == ["ts", "equity"] and frame["ts"].dtype == pl.Datetime("ms", "UTC")


def test_no_signals_no_trades() -> None:
    res = run_backtest(flat_bars(10), signals(10), SINGLE)
    assert res.trades.height == 0
    assert np.all(res.equity == 10_000.0)
    assert res.metrics["trades"] == 0 and math.isnan(res.metrics["sharpe"])


# ----------------------------------------------------------------------------- validation


def test_config_is_frozen_strict_and_names_accepted_values() -> None:
    with pytest.raises(BacktestConfigError, match=r"price_model.*'bidask' or 'single'.*'mid'"):
        BacktestConfig(price_model="mid")  # type: ignore[arg-type]
    with pytest.raises(BacktestError, match="sizing"):
        BacktestConfig(sizing="kelly")  # type: ignore[arg-type]
    with pytest.raises(BacktestError, match="commision"):
        BacktestConfig(commision=1.0)  # type: ignore[call-arg]
    with pytest.raises(BacktestError, match="initial_capital"):
        BacktestConfig(initial_capital=0.0)
    cfg = BacktestConfig()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.units = 1.0  # type: ignore[misc]
    assert issubclass(BacktestError, AioError) and issubclass(BacktestConfigError, ConfigError)
    assert (
        config_id(cfg) == config_id(BacktestConfig()) != config_id(BacktestConfig(commission=1.0))
    )


def test_invalid_inputs_raise_backtest_error_naming_the_argument() -> None:
    b = bars(BASE)
    with pytest.raises(BacktestError, match=r"signals\.long_entry: expected 6 values"):
        run_backtest(
            b,
            Signals(*(np.zeros(5, bool) for _ in range(4)), np.full(5, np.nan), np.full(5, np.nan)),
            SINGLE,
        )
    bad = bars(BASE)
    bad.close[2] = np.nan
    with pytest.raises(BacktestError, match=r"bars\.close: non-finite price nan at bar 2"):
        run_backtest(bad, signals(6), SINGLE)
    with pytest.raises(BacktestError, match="too few bars"):
        run_backtest(bars(BASE[:1]), signals(1), SINGLE)
    with pytest.raises(BacktestError, match=r"bid_ask: price_model 'bidask' needs"):
        run_backtest(b, signals(6), BacktestConfig(price_model="bidask"))
    with pytest.raises(BacktestError, match=r"signals\.stop_dist: -0\.001 at bar 1"):
        run_backtest(b, signals(6, long_entry=[1], stop={1: -0.001}), SINGLE)
    inconsistent = bars(with_bar(2, (1.1012, 1.1000, 1.1005, 1.1015)))
    with pytest.raises(BacktestError, match="bar 2 is not a valid OHLC bar"):
        run_backtest(inconsistent, signals(6), SINGLE)
    sig = signals(6)
    ints = Signals(
        sig.long_entry.astype(int),
        sig.short_entry,
        sig.long_exit,
        sig.short_exit,
        sig.stop_dist,
        sig.take_dist,
    )
    with pytest.raises(BacktestError, match=r"long_entry: expected a boolean array"):
        run_backtest(b, ints, SINGLE)
    spread = spread_around(b, 2e-4)
    with pytest.raises(BarsError, match=r"BarArrays\.bid_open has 5 bars, ts has 6"):
        BarArrays(*(b.ts, b.open, b.high, b.low, b.close), **{f: getattr(spread, f)[:5] for f in BID_ASK_FIELDS})  # fmt: skip
    with pytest.raises(BarsError, match="all or none"):
        BarArrays(b.ts, b.open, b.high, b.low, b.close, bid_open=b.open)
    bad_ask = spread.copy()
    assert bad_ask.ask_low is not None
    bad_ask.ask_low[2] = 2.0
    with pytest.raises(BacktestError, match=r"bid_ask \(ask\): bar 2 is not a valid OHLC bar"):
        run_backtest(bad_ask, signals(6), BacktestConfig())
    with pytest.raises(BacktestError, match="price_model: 'mid' is not one of"):
        kernel_prices(b, "mid")
    duck = SimpleNamespace(ts=b.ts, open=b.open, high=b.high, low=b.low, close=b.close)
    with pytest.raises(BacktestError, match="bars: expected aio_ray.bars.arrays.BarArrays"):
        run_backtest(duck, signals(6), SINGLE)  # type: ignore[arg-type]


def test_cached_kernel_inputs_give_the_same_result() -> None:
    b = bars(BASE)
    sig = signals(6, long_entry=[1], short_entry=[3], stop={1: 0.001})
    a = run_backtest(b, sig, SINGLE)
    assert kernel_prices(b, "single") is kernel_prices(b, "single")  # built once, then cached
    p = run_backtest(b, sig, SINGLE)
    shipped = pickle.loads(pickle.dumps(b))  # the cache is not pickled; rebuilt on use
    assert shipped._cache == {}
    q = run_backtest(shipped, sig, SINGLE)
    for r in (p, q):
        assert a.trades.equals(r.trades) and np.array_equal(a.equity, r.equity)
        assert a.metrics == r.metrics


def test_bid_ask_from_a_bar_table() -> None:
    cols: dict[str, object] = {"ts": [0, 60_000]}
    cols |= {f"{s}_{p}": [1.1, 1.2] for s in ("mid", "bid", "ask") for p in ("open", "high", "low", "close")}  # fmt: skip
    b = BarArrays.from_frame(pl.DataFrame(cols), timeframe="1m")
    assert b.has_bid_ask and b.timeframe == "1m"
    assert b.ask_high is not None and b.ask_high.tolist() == [1.1, 1.2]
    assert b[1:].ask_high is not None and b[1:].ask_high.tolist() == [1.2]
    mid_only = BarArrays.from_frame(pl.DataFrame(cols).drop("ask_close"))
    assert not mid_only.has_bid_ask
    with pytest.raises(BacktestError, match=r"bid_ask: price_model 'bidask' needs"):
        run_backtest(mid_only, signals(2), BacktestConfig())
