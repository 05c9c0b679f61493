"""Bar-backtests per second of our compiled engine against vectorbt and backtesting.py.

One grid of SMA-crossover parameter sets (fast 5..50 step 5 x slow 20..200 step 20, fast <
slow: 90 sets) on seeded random-walk 1-minute EUR/USD bars with a bid/ask spread. Measured in
the same run:

- ours: ``run_crossover_batch`` (the full engine: bid/ask fills, commission per lot,
  slippage, 2 x ATR stop, 4 x ATR target, 1 % risk sizing), prange over parameter sets, each
  distinct SMA computed once and the bars validated once (``kernel_prices``); that one-time
  cost is reported apart (``ours_prep_s``) and folded into ``ours_incl_prep_*``;
- vectorbt ``Portfolio.from_signals``: the same signals (shifted one bar, filled at the open),
  columns = parameter sets; once with fees, slippage and the same ATR stops/targets as
  fractions of price ("full"), once signals only ("plain");
- backtesting.py: a few parameter sets on fewer bars (it is slow), with the same stops,
  commission and spread, scaled per bar-backtest;
- a plain numba crossover loop (no costs, no stops, no metrics) as a ceiling.

Numba compile time is excluded (everything is warmed up first); each timing is the best of
``--repeat`` runs. Before timing, ours and vectorbt must agree (trade count and net profit) on a
few parameter sets with zero costs, single price series and no stops; the bench fails if not.

Prints one JSON line on stdout; logs go to stderr.

    python bench/backtest.py                 # 200,000 bars x 90 sets
    python bench/backtest.py --quick         # smoke run, seconds
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba
from numba import njit, prange

from aio_ray.bars.arrays import BarArrays
from aio_ray.strategies.engine import (
    BacktestConfig,
    cross_signals,
    run_backtest,
    run_crossover_batch,
)
from aio_ray.strategies.kernel_inputs import kernel_prices, swap_units_of

log = logging.getLogger("bench.backtest")

FAST = tuple(range(5, 55, 5))
SLOW = tuple(range(20, 220, 20))
SPREAD = 0.8e-4  # quote currency
ATR_LEN = 14
STOP_MULT = 2.0
TAKE_MULT = 4.0
UNITS = 100_000.0
CASH = 1e6  # enough for 1 lot at ~1.1 either way; small enough for float cash to stay exact to 1e-4


def make_bars(n: int, seed: int) -> BarArrays:
    """Seeded 1-minute mid random walk (~7 % annual vol) with OHLC and bid/ask a fixed spread apart."""
    rng = np.random.default_rng(seed)
    steps = rng.standard_normal((n, 4)) * 0.6e-4
    path = 1.10 * np.exp(np.cumsum(steps.ravel()))  # four sub-steps per bar
    sub = path.reshape(n, 4)
    o = np.concatenate(([1.10], sub[:-1, -1]))
    c = sub[:, -1]
    h = np.maximum(np.maximum(o, c), sub.max(axis=1))
    lo = np.minimum(np.minimum(o, c), sub.min(axis=1))
    ts = np.int64(1_700_000_000_000) + np.arange(n, dtype=np.int64) * 60_000
    half = SPREAD / 2
    bid = {f"bid_{k}": a - half for k, a in (("open", o), ("high", h), ("low", lo), ("close", c))}
    ask = {f"ask_{k}": a + half for k, a in (("open", o), ("high", h), ("low", lo), ("close", c))}
    return BarArrays(ts, o, h, lo, c, **bid, **ask)


def sma(x: np.ndarray, k: int) -> np.ndarray:
    """Simple moving average over ``k`` bars (NaN for the first ``k - 1``)."""
    out = np.full(x.shape[0], np.nan)
    cs = np.cumsum(x)
    out[k - 1 :] = (cs[k - 1 :] - np.concatenate(([0.0], cs[:-k]))) / k
    return out


def atr(h: np.ndarray, lo: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """SMA of the true range (enough for a stop distance here)."""
    prev = np.concatenate(([c[0]], c[:-1]))
    tr = np.maximum(h, prev) - np.minimum(lo, prev)
    return sma(tr, k)


def grid() -> tuple[list[int], np.ndarray, np.ndarray]:
    """Distinct lengths and the (fast, slow) row indices of every set with fast < slow."""
    lengths = sorted(set(FAST) | set(SLOW))
    row = {k: i for i, k in enumerate(lengths)}
    pairs = [(row[f], row[s]) for f in FAST for s in SLOW if f < s]
    return lengths, np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


@njit(cache=True, parallel=True)
def plain_crossover(
    close: np.ndarray, lines: np.ndarray, fi: np.ndarray, si: np.ndarray, out: np.ndarray
) -> None:
    """Ceiling: a bare always-in-market crossover, P&L in price units, nothing else."""
    for p in prange(fi.shape[0]):
        f = lines[fi[p]]
        s = lines[si[p]]
        pos = 0
        ep = 0.0
        pnl = 0.0
        fp = np.nan
        sp = np.nan
        for i in range(close.shape[0]):
            a = f[i]
            b = s[i]
            if a > b and fp <= sp:
                if pos < 0:
                    pnl += ep - close[i]
                pos = 1
                ep = close[i]
            elif a < b and fp >= sp:
                if pos > 0:
                    pnl += close[i] - ep
                pos = -1
                ep = close[i]
            fp = a
            sp = b
        out[p] = pnl


def timed(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(wall seconds, CPU seconds of this process, all threads) of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def best(times: list[tuple[float, float]]) -> tuple[float, float]:
    """The fastest wall time and the smallest CPU time over repetitions."""
    return min(t[0] for t in times), min(t[1] for t in times)


def vbt_inputs(bars: BarArrays, lines: np.ndarray, fi: np.ndarray, si: np.ndarray):  # type: ignore[no-untyped-def]
    """Signal matrices (n, P) shifted one bar: an order decided at close i fills at open i+1."""
    n, n_sets = bars.close.shape[0], fi.shape[0]
    le = np.zeros((n, n_sets), dtype=bool)
    se = np.zeros((n, n_sets), dtype=bool)
    for p in range(n_sets):
        sig = cross_signals(lines[fi[p]], lines[si[p]])
        le[1:, p] = sig.long_entry[:-1]
        se[1:, p] = sig.short_entry[:-1]
    return le, se


def run_vbt(bars: BarArrays, le: np.ndarray, se: np.ndarray, full: bool, dist: np.ndarray):  # type: ignore[no-untyped-def]
    import vectorbt as vbt

    col = lambda a: np.asarray(a)[:, None]
    kw = {}
    if full:
        # Stops as fractions of the (shifted) signal close, fees ~ 3.5 USD/lot at 1.1, 1 point.
        prev_close = np.concatenate(([bars.close[0]], bars.close[:-1]))
        frac = np.concatenate(([np.nan], dist[:-1])) / prev_close
        kw = {
            "fees": 3.5 / 110_000,
            "slippage": 1e-5 / 1.1,
            "sl_stop": STOP_MULT * frac[:, None],
            "tp_stop": TAKE_MULT * frac[:, None],
            "open": col(bars.open),
            "high": col(bars.high),
            "low": col(bars.low),
        }
    return vbt.Portfolio.from_signals(
        col(bars.close),
        entries=le,
        exits=np.zeros_like(le),
        short_entries=se,
        short_exits=np.zeros_like(se),
        price=col(bars.open),
        size=UNITS,
        size_type="amount",
        init_cash=CASH,
        freq="1min",
        **kw,
    )


def run_backtestingpy(
    bars: BarArrays, lines: np.ndarray, fi: int, si: int, dist: np.ndarray
) -> int:
    """One backtesting.py run of one crossover with the same stops; returns its trade count."""
    import pandas as pd
    from backtesting import Backtest, Strategy

    sig = cross_signals(lines[fi], lines[si])
    close = bars.close

    class Cross(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data) - 1
            d = dist[i]
            if sig.long_entry[i] and not self.position.is_long:
                for t in self.trades:
                    t.sl = None
                    t.tp = None
                ok = not np.isnan(d)
                self.buy(
                    size=int(UNITS),
                    sl=close[i] - STOP_MULT * d if ok else None,
                    tp=close[i] + TAKE_MULT * d if ok else None,
                )
            elif sig.short_entry[i] and not self.position.is_short:
                for t in self.trades:
                    t.sl = None
                    t.tp = None
                ok = not np.isnan(d)
                self.sell(
                    size=int(UNITS),
                    sl=close[i] + STOP_MULT * d if ok else None,
                    tp=close[i] - TAKE_MULT * d if ok else None,
                )

    df = pd.DataFrame(
        {"Open": bars.open, "High": bars.high, "Low": bars.low, "Close": bars.close},
        index=pd.to_datetime(bars.ts, unit="ms"),
    )
    bt = Backtest(
        df,
        Cross,
        cash=1e9,
        commission=3.5 / 110_000,
        spread=SPREAD / 1.1,
        trade_on_close=False,
        exclusive_orders=True,
        hedging=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.run()
    return int(stats["# Trades"])


def check_agreement(
    bars: BarArrays, lines: np.ndarray, fi: np.ndarray, si: np.ndarray
) -> list[dict]:
    """Zero costs, single series, no stops: ours and vectorbt must match per set."""
    # vectorbt runs here without fees or slippage and models no swap: every cost of ours is
    # set to 0 explicitly (the defaults charge commission, slippage and swap)
    cfg = BacktestConfig(
        price_model="single",
        initial_capital=CASH,
        units=UNITS,
        commission=0.0,
        slippage_points=0.0,
        swap_long=0.0,
        swap_short=0.0,
    )
    picks = np.unique(np.linspace(0, fi.shape[0] - 1, 4).astype(int))
    le, se = vbt_inputs(bars, lines, fi[picks], si[picks])
    pf = run_vbt(bars, le, se, full=False, dist=np.empty(0))
    vbt_trades = np.asarray(pf.trades.count(), dtype=int)
    vbt_profit = np.asarray(pf.total_profit(), dtype=float)
    rows = []
    for j, p in enumerate(picks):
        res = run_backtest(bars, cross_signals(lines[fi[p]], lines[si[p]]), cfg)
        ours_tr, ours_profit = int(res.metrics["trades"]), res.metrics["net_profit"]
        rows.append(
            {
                "set": int(p),
                "trades": ours_tr,
                "vbt_trades": int(vbt_trades[j]),
                "net_profit": ours_profit,
                "vbt_net_profit": float(vbt_profit[j]),
            }
        )
        if ours_tr != vbt_trades[j] or not np.isclose(
            ours_profit, vbt_profit[j], rtol=0.0, atol=1e-4
        ):
            raise SystemExit(f"ours and vectorbt disagree on parameter set {p}: {rows[-1]}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bars", type=int, default=200_000, help="1m bars for ours and vectorbt")
    ap.add_argument("--bt-bars", type=int, default=20_000, help="bars for backtesting.py")
    ap.add_argument("--bt-sets", type=int, default=2, help="parameter sets for backtesting.py")
    ap.add_argument(
        "--vbt-full-sets",
        type=int,
        default=10,
        help="parameter sets for vectorbt with stops and fees (slow)",
    )
    ap.add_argument("--repeat", type=int, default=5, help="timed repetitions (best is kept)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smoke run: 20,000 bars, 2 repeats")
    args = ap.parse_args()
    if args.quick:
        args.bars, args.bt_bars, args.bt_sets, args.repeat = 20_000, 3_000, 1, 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

    bars = make_bars(args.bars, args.seed)
    lengths, fi, si = grid()
    n, n_sets = args.bars, fi.shape[0]
    log.info(
        "bars=%d param_sets=%d threads=%d seed=%d", n, n_sets, numba.get_num_threads(), args.seed
    )

    t0 = time.perf_counter()
    lines = np.vstack([sma(bars.close, k) for k in lengths])
    dist = atr(bars.high, bars.low, bars.close, ATR_LEN)
    # validated once and cached on the bars, as a search does per fold
    kernel_prices(bars, "bidask")
    _ = swap_units_of(bars), bars.bar_ms
    prep_s = time.perf_counter() - t0

    cfg = BacktestConfig(
        price_model="bidask",
        commission=3.5,
        commission_type="per_lot",
        slippage_points=1.0,
        sizing="risk",
        risk_fraction=0.01,
        units=UNITS,
    )

    def ours() -> np.ndarray:
        return run_crossover_batch(
            bars, lines, fi, si, cfg, base_dist=dist, stop_mult=STOP_MULT, take_mult=TAKE_MULT
        )

    out = np.empty(n_sets)
    log.info("warming up (numba compile or cache load)")
    ours()
    plain_crossover(bars.close, lines, fi, si, out)
    agreement = check_agreement(bars, lines, fi, si)
    log.info("agreement with vectorbt (zero costs): %s", agreement)

    le, se = vbt_inputs(bars, lines, fi, si)
    head = BarArrays(*(a[:500] for a in (bars.ts, bars.open, bars.high, bars.low, bars.close)))
    run_vbt(head, le[:500, :2], se[:500, :2], full=True, dist=dist[:500])  # warm-up
    n_full = min(args.vbt_full_sets, n_sets)  # vectorbt with stops is slow: a subset of columns

    # Interleaved repetitions, so a busy machine slows every contender alike.
    runs: dict[str, list[tuple[float, float]]] = {
        "ours": [],
        "plain": [],
        "vbt": [],
        "vbt_full": [],
    }
    for r in range(args.repeat):
        runs["ours"].append(timed(ours))
        runs["plain"].append(timed(lambda: plain_crossover(bars.close, lines, fi, si, out)))
        if r < max(1, args.repeat // 2):
            runs["vbt"].append(timed(lambda: run_vbt(bars, le, se, full=False, dist=dist)))
        if r == 0:
            runs["vbt_full"].append(
                timed(lambda: run_vbt(bars, le[:, :n_full], se[:, :n_full], full=True, dist=dist))
            )
    (ours_s, ours_cpu), (plain_s, plain_cpu) = best(runs["ours"]), best(runs["plain"])
    (vbt_plain_s, vbt_cpu), (vbt_full_s, _) = best(runs["vbt"]), best(runs["vbt_full"])
    m = ours()
    log.info(
        "ours %.3fs (cpu %.3fs), plain numba %.3fs; vectorbt plain %.3fs (cpu %.3fs), full "
        "%.3fs (%d sets); mean trades per set %.0f",
        ours_s,
        ours_cpu,
        plain_s,
        vbt_plain_s,
        vbt_cpu,
        vbt_full_s,
        n_full,
        m[:, 9].mean(),
    )

    nb_bars = min(args.bt_bars, n)
    bt_bars = BarArrays(
        *(a[:nb_bars] for a in (bars.ts, bars.open, bars.high, bars.low, bars.close))
    )
    bt_lines = lines[:, :nb_bars]
    picks = np.linspace(0, n_sets - 1, args.bt_sets).astype(int)
    t0 = time.perf_counter()
    for p in picks:
        run_backtestingpy(bt_bars, bt_lines, int(fi[p]), int(si[p]), dist[:nb_bars])
    bt_s = time.perf_counter() - t0
    log.info("backtesting.py %d sets x %d bars: %.3fs", len(picks), nb_bars, bt_s)

    work = float(n) * n_sets
    threads = numba.get_num_threads()
    ours_rate = work / ours_s
    vbt_rate = work / vbt_plain_s
    # CPU-time rates: what each would reach with its threads' cores to itself (ours runs
    # `threads` threads, vectorbt and backtesting.py one); robust to other load on the box.
    ours_cpu_rate = work / (ours_cpu / threads)
    vbt_cpu_rate = work / vbt_cpu
    result = {
        "bars": n,
        "param_sets": n_sets,
        "threads": threads,
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "ours_bar_backtests_per_s": ours_rate,
        "ours_incl_prep_bar_backtests_per_s": work / (ours_s + prep_s),
        "ours_prep_s": prep_s,
        "vectorbt_bar_backtests_per_s": vbt_rate,
        "vectorbt_full_bar_backtests_per_s": float(n) * n_full / vbt_full_s,
        "vectorbt_full_param_sets": n_full,
        "backtestingpy_bar_backtests_per_s": nb_bars * len(picks) / bt_s,
        "backtestingpy_bars": nb_bars,
        "backtestingpy_param_sets": len(picks),
        "plain_numba_bar_backtests_per_s": work / plain_s,
        "ours_cpu_bar_backtests_per_s": ours_cpu_rate,
        "vectorbt_cpu_bar_backtests_per_s": vbt_cpu_rate,
        "plain_numba_cpu_bar_backtests_per_s": work / (plain_cpu / threads),
        "speedup_vs_vectorbt": ours_rate / vbt_rate,
        "speedup_vs_vectorbt_cpu": ours_cpu_rate / vbt_cpu_rate,
        "speedup_vs_vectorbt_full": ours_rate * vbt_full_s / (float(n) * n_full),
        "ours_mean_trades_per_set": float(m[:, 9].mean()),
        "agreement_checked_sets": len(agreement),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
