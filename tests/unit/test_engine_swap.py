"""Costs by default: commission per lot, slippage, and swap at the 17:00 New York rollover.

Swap rule (aio_ray/strategies/fills.py, "Swap"): a position held at the close of bar ``i - 1``
pays ``rollovers(ts[i-1], ts[i]] x rate x lots`` at the start of bar ``i``; Wednesday's close
counts 3 times. Flat prices isolate the swap: the trade's gross P&L is 0.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from aio_ray.bars.arrays import BarArrays
from aio_ray.strategies.engine import (
    METRIC_NAMES,
    BacktestConfig,
    BacktestConfigError,
    cross_signals,
    run_backtest,
    run_batch,
    run_crossover_batch,
)
from aio_ray.strategies.evaluate import evaluate_candidate, split_holdout
from aio_ray.strategies.kernel_inputs import swap_units_of
from aio_ray.strategies.population import evaluate_population
from aio_ray.strategies.sessions import rollover_weights, swap_units
from aio_ray.strategies.space import grid
from aio_ray.strategies.walkforward import make_folds
from tests.support.barsynth import hourly_bars
from tests.support.engine_common import NO_COSTS, bars, costless, signals

HOUR = 3_600_000
FLAT = (1.1, 1.1, 1.1, 1.1)
# swap only: the default rates, every other cost off
SWAP_ONLY = BacktestConfig(price_model="single", commission=0.0, slippage_points=0.0)


def utc_ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


def hourly(start: str, n: int) -> BarArrays:
    return bars([FLAT] * n, t0=utc_ms(start), step=HOUR)


def at(times: list[str]) -> BarArrays:
    ts = np.array([utc_ms(t) for t in times], dtype=np.int64)
    p = np.full(ts.shape[0], 1.1)
    return BarArrays(ts, p, p.copy(), p.copy(), p.copy())


def one_trade(b: BarArrays, cfg: BacktestConfig, side: str = "long", exit_signal: int = 4):  # type: ignore[no-untyped-def]
    entry, leave = ("long_entry", "long_exit") if side == "long" else ("short_entry", "short_exit")
    res = run_backtest(b, signals(len(b), **{entry: [1], leave: [exit_signal]}), cfg)
    (t,) = res.trades.to_dicts()
    return res, t


def test_defaults_are_ecn_costs_with_units() -> None:
    cfg = BacktestConfig()
    assert (cfg.commission_type, cfg.commission, cfg.slippage_points) == ("per_lot", 3.5, 1.0)
    assert (cfg.swap_long, cfg.swap_short) == (-7.0, 2.0)
    fields = BacktestConfig.model_fields
    for name in ("commission", "slippage_points", "swap_long", "swap_short"):
        assert fields[name].description, name
    assert "per lot" in (fields["swap_long"].description or "")
    assert "17:00 New York" in (fields["swap_short"].description or "")
    # 3.5 is a per-lot figure: another commission type without a rate gets 0, not 3.5 %
    assert BacktestConfig(commission_type="percent").commission == 0.0
    assert BacktestConfig.model_validate({"commission_type": "cash_per_order"}).commission == 0.0
    assert BacktestConfig(commission_type="percent", commission=0.01).commission == 0.01
    with pytest.raises(BacktestConfigError, match="swap_long"):
        BacktestConfig(swap_long=float("nan"))


def test_a_default_round_trip_of_one_lot_costs_two_commissions_and_slippage() -> None:
    # six 1-minute bars on a Friday morning (no rollover); long from bar 2's open to bar 4's
    rows = [
        (1.1000, 1.1010, 1.0990, 1.1005),
        (1.1005, 1.1015, 1.0995, 1.1010),
        (1.1012, 1.1020, 1.1005, 1.1015),
        (1.1015, 1.1030, 1.1010, 1.1025),
        (1.1027, 1.1035, 1.1020, 1.1030),
        (1.1030, 1.1040, 1.1025, 1.1035),
    ]
    cfg = BacktestConfig(price_model="single")  # every default cost
    res, t = one_trade(bars(rows), cfg, exit_signal=3)
    assert t["entry_price"] == pytest.approx(1.1012 + 1e-5, abs=1e-12)  # 1 point against
    assert t["exit_price"] == pytest.approx(1.1027 - 1e-5, abs=1e-12)
    assert t["commission"] == pytest.approx(2 * 3.5, abs=1e-12) and t["swap"] == 0.0
    gross = 1e5 * (1.1027 - 1.1012)
    assert gross - t["pnl"] == pytest.approx(2 * 3.5 + 2 * 1e5 * 1e-5, abs=1e-6)  # 7 + 2 USD
    assert res.metrics["net_profit"] == pytest.approx(t["pnl"], abs=1e-9)


@pytest.mark.parametrize(
    "start",
    [
        "2019-02-06 18:00",  # winter: the Wednesday close is 22:00 UTC (bar 4)
        "2019-07-10 17:00",  # summer (EDT): 21:00 UTC (bar 4)
    ],
)
def test_a_long_held_over_the_wednesday_close_pays_three_times_the_long_rate(start: str) -> None:
    b = hourly(start, 8)
    res, t = one_trade(b, SWAP_ONLY)  # held from bar 2's open to bar 5's
    assert t["swap"] == pytest.approx(3 * SWAP_ONLY.swap_long, abs=1e-12)  # -21 USD per lot
    assert t["pnl"] == pytest.approx(t["swap"], abs=1e-9)  # flat prices: the swap is the P&L
    # charged into equity at the first bar after the close
    np.testing.assert_allclose(res.equity[:4], 10_000.0, atol=1e-9)
    np.testing.assert_allclose(res.equity[4:], 10_000.0 - 21.0, atol=1e-9)
    assert res.metrics["net_profit"] == pytest.approx(-21.0, abs=1e-9)
    assert res.metrics["total_return"] == pytest.approx(-21.0 / 10_000, rel=1e-12)
    # a position still held at the close before the rollover bar pays it even if it exits at
    # that bar's open (it was open at 17:00 New York)
    _, t = one_trade(b, SWAP_ONLY, exit_signal=3)
    assert (t["exit_bar"], t["swap"]) == (4, pytest.approx(-21.0, abs=1e-12))
    # out before the close: nothing
    _, t = one_trade(b, SWAP_ONLY, exit_signal=2)
    assert (t["exit_bar"], t["swap"]) == (3, 0.0)


def test_a_short_over_a_friday_close_earns_the_short_rate_once() -> None:
    # Friday 2019-02-08, the close at 22:00 UTC, then Saturday bars (no close)
    b = hourly("2019-02-08 18:00", 12)
    _, t = one_trade(b, SWAP_ONLY, side="short", exit_signal=10)
    assert t["side"] == "short"
    assert t["swap"] == pytest.approx(1 * SWAP_ONLY.swap_short, abs=1e-12)  # +2 USD per lot
    assert t["pnl"] == pytest.approx(2.0, abs=1e-9)


def test_a_position_opened_and_closed_inside_one_trading_day_pays_none() -> None:
    # Tuesday 00:00..20:00 UTC: all of it before Tuesday's 17:00 New York close (22:00 UTC)
    b = hourly("2019-02-05 00:00", 21)
    res, t = one_trade(b, SWAP_ONLY, exit_signal=18)
    free, t0 = one_trade(b, costless(price_model="single"), exit_signal=18)
    assert t["swap"] == 0.0 and t["pnl"] == t0["pnl"]
    np.testing.assert_array_equal(res.equity, free.equity)


@pytest.mark.parametrize(("side", "rate"), [("long", -7.0), ("short", 2.0)])
def test_a_weekend_gap_pays_the_friday_close_once(side: str, rate: float) -> None:
    b = at(
        [
            "2019-02-08 18:00", "2019-02-08 19:00", "2019-02-08 20:00", "2019-02-08 21:00",
            "2019-02-10 22:00", "2019-02-10 23:00", "2019-02-11 00:00", "2019-02-11 01:00",
        ]
    )  # fmt: skip
    res, t = one_trade(b, SWAP_ONLY, side=side, exit_signal=6)
    assert t["swap"] == pytest.approx(rate, abs=1e-12)  # Friday's close, not Sat/Sun
    assert res.equity[4] - res.equity[3] == pytest.approx(rate, abs=1e-9)


def test_risk_sized_lots_scale_the_swap() -> None:
    b = hourly("2019-02-06 18:00", 8)
    cfg = SWAP_ONLY.model_copy(update={"sizing": "risk", "risk_fraction": 0.01})
    sig = signals(8, long_entry=[1], long_exit=[4], stop={1: 0.0004})
    (t,) = run_backtest(b, sig, cfg).trades.to_dicts()
    assert t["size"] == 250_000.0  # 10,000 x 1 % / 0.0004
    assert t["swap"] == pytest.approx(2.5 * 3 * -7.0, abs=1e-9)  # 2.5 lots x 3 rollovers
    # and a fractional lot
    sig = signals(8, long_entry=[1], long_exit=[4], stop={1: 0.0027})
    (t,) = run_backtest(b, sig, cfg).trades.to_dicts()
    assert t["size"] == 37_000.0
    assert t["swap"] == pytest.approx(0.37 * 3 * -7.0, abs=1e-9)


def test_zero_rates_charge_no_swap() -> None:
    b = hourly("2019-02-06 18:00", 8)
    _, t = one_trade(b, SWAP_ONLY.model_copy(update={"swap_long": 0.0, "swap_short": 0.0}))
    assert t["swap"] == 0.0 and t["pnl"] == 0.0


def _two_weeks(seed: int) -> BarArrays:
    rng = np.random.default_rng(seed)
    n = 24 * 14
    c = 1.1 * np.exp(np.cumsum(rng.standard_normal(n) * 6e-4))
    o = np.concatenate(([1.1], c[:-1]))
    h = np.maximum(o, c) + 2e-4
    lo = np.minimum(o, c) - 2e-4
    ts = utc_ms("2019-02-04 00:00") + np.arange(n, dtype=np.int64) * HOUR
    return BarArrays(ts, o, h, lo, c)


def test_swap_reaches_equity_metrics_and_trades_alike_on_every_path() -> None:
    b = _two_weeks(5)
    cfg = BacktestConfig(price_model="single", swap_long=-40.0, swap_short=25.0)
    lines = np.vstack([np.convolve(b.close, np.ones(k) / k)[: len(b)] for k in (3, 5, 8, 13)])
    lines[:, :13] = np.nan
    fast, slow = np.array([0, 0, 1, 2]), np.array([2, 3, 3, 3])
    rows = []
    for f, s in zip(fast, slow, strict=True):
        res = run_backtest(b, cross_signals(lines[f], lines[s]), cfg)
        t = res.trades
        assert (t["swap"] != 0.0).any()
        # pnl includes the swap: the trades add up to the net profit, as with commission
        assert res.metrics["net_profit"] == pytest.approx(t["pnl"].sum(), abs=1e-7)
        assert res.equity[-1] == pytest.approx(10_000.0 + t["pnl"].sum(), abs=1e-7)
        gross = (t["exit_price"] - t["entry_price"]) * t["size"]
        gross = gross * np.where(t["side"].to_numpy() == "long", 1.0, -1.0)
        np.testing.assert_allclose(
            t["pnl"].to_numpy(),
            gross - t["commission"].to_numpy() + t["swap"].to_numpy(),
            atol=1e-7,
        )
        rows.append([res.metrics[k] for k in METRIC_NAMES])
        cost = costless(price_model="single")
        assert run_backtest(b, cross_signals(lines[f], lines[s]), cost).metrics != res.metrics
    want = np.array(rows)
    np.testing.assert_allclose(
        run_crossover_batch(b, lines, fast, slow, cfg), want, rtol=1e-12, atol=1e-9
    )
    sigs = [cross_signals(lines[f], lines[s]) for f, s in zip(fast, slow, strict=True)]
    np.testing.assert_allclose(run_batch(b, sigs, cfg), want, rtol=1e-12, atol=1e-9)


def test_bars_carry_the_rollovers() -> None:
    b = hourly("2019-02-06 18:00", 8)
    assert swap_units_of(b).dtype == np.float64
    assert swap_units_of(b).tolist() == [0, 0, 0, 0, 3, 0, 0, 0]
    assert swap_units_of(b) is swap_units_of(b)  # computed once, cached on the bars


def test_population_charges_swap_as_evaluate_candidate_does() -> None:
    wf, *_ = split_holdout({"1h": hourly_bars(1200, seed=3)}, 0.2)
    folds, _ = make_folds(len(wf["1h"]), 2, "rolling", holdout_fraction=0.0, warmup_bars=60)
    heavy = BacktestConfig(swap_long=-60.0, swap_short=45.0)  # swap dominates the result
    params = grid("ma_cross", 4)
    res = evaluate_population(wf["1h"], "ma_cross", params, folds, heavy)
    plain = evaluate_population(
        wf["1h"], "ma_cross", params, folds, heavy.model_copy(update=NO_COSTS)
    )
    assert not np.allclose(res.objective, plain.objective)
    for i, p in enumerate(params):
        loc = evaluate_candidate(wf, "ma_cross", p, "1h", folds, heavy)
        assert res.objective[i] == pytest.approx(loc.objective, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(
            res.returns[i, res.layout.oos_columns], loc.period_returns, rtol=1e-12, atol=1e-15
        )
        for f in loc.folds:
            got = res.window_metrics(i, 2 * f.fold + 1)
            for k, v in f.oos_metrics.items():
                assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-9, nan_ok=True), k


@pytest.mark.parametrize("start", ["2019-03-07 00:00", "2019-10-31 00:00"])  # DST changes
@pytest.mark.parametrize("step", [60_000, 15 * 60_000, 4 * HOUR])
def test_rollovers_per_hour_equal_the_session_calendar(start: str, step: int) -> None:
    ts = utc_ms(start) + np.arange(10 * 86_400_000 // step, dtype=np.int64) * step
    ts = np.delete(ts, np.arange(7, ts.shape[0], 11))  # irregular gaps too
    np.testing.assert_array_equal(swap_units(ts), rollover_weights(ts).astype(np.float64))
