"""Benchmark: the eight indicators on N bars, ours (numba) beside TA-Lib in the same run.

Prints one JSON line on stdout (logs go to stderr)::

    python bench/indicators.py            # 1,000,000 bars, best of 7
    python bench/indicators.py --quick    # 20,000 bars, best of 3 (smoke run)

``ours_seconds`` covers sma(20), ema(20), rsi(14), macd(12,26,9), bbands(20,2), stoch(14,3,3),
atr(14) and dmi(14,14) through the public API. ``talib_seconds`` runs TA-Lib's SMA, EMA, RSI,
MACD, BBANDS, STOCH, ATR, ADX, PLUS_DI and MINUS_DI, i.e. the same outputs (TA-Lib needs three
calls for our one ``dmi``); ``talib_adx_only_seconds`` is the same without PLUS_DI/MINUS_DI.
Each is the best of ``--repeats`` interleaved runs, after one untimed call of each.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aio_ray import indicators as ind


def random_walk_bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EUR/USD-like 1-minute mid bars: (high, low, close), quote currency."""
    rng = np.random.default_rng(seed)
    close = 1.10 + np.cumsum(rng.normal(0.0, 1e-4, n))
    high = close + np.abs(rng.normal(0.0, 6e-5, n))
    low = close - np.abs(rng.normal(0.0, 6e-5, n))
    return high, low, close


def best_of(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each function; the repeats are interleaved so that load from other
    processes hits all of them alike."""
    for fn in fns.values():
        fn()  # warm-up (numba cache load / compile, page faults)
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="20,000 bars, 3 repeats")
    args = ap.parse_args()
    if args.quick:
        args.bars, args.repeats = 20_000, 3

    import talib

    h, lo, c = random_walk_bars(args.bars, args.seed)

    def ours() -> None:
        ind.sma(c, 20)
        ind.ema(c, 20)
        ind.rsi(c, 14)
        ind.macd(c, 12, 26, 9)
        ind.bbands(c, 20, 2.0)
        ind.stoch(h, lo, c, 14, 3, 3)
        ind.atr(h, lo, c, 14)
        ind.dmi(h, lo, c, 14, 14)

    def ta_common() -> None:
        talib.SMA(c, 20)
        talib.EMA(c, 20)
        talib.RSI(c, 14)
        talib.MACD(c, 12, 26, 9)
        talib.BBANDS(c, 20, 2.0, 2.0, 0)
        talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
        talib.ATR(h, lo, c, 14)
        talib.ADX(h, lo, c, 14)

    def ta_full() -> None:
        ta_common()
        talib.PLUS_DI(h, lo, c, 14)
        talib.MINUS_DI(h, lo, c, 14)

    t_compile = time.perf_counter()
    ours()
    print(
        f"first call (numba cache load/compile): {time.perf_counter() - t_compile:.2f}s",
        file=sys.stderr,
    )
    best = best_of({"ours": ours, "talib": ta_full, "talib_adx_only": ta_common}, args.repeats)
    ours_s, talib_s, talib_adx_only_s = best["ours"], best["talib"], best["talib_adx_only"]
    print(
        f"ours {ours_s * 1e3:.1f} ms, TA-Lib {talib_s * 1e3:.1f} ms "
        f"({talib_adx_only_s * 1e3:.1f} ms without PLUS_DI/MINUS_DI)",
        file=sys.stderr,
    )
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "bench": "indicators",
                "bars": args.bars,
                "repeats": args.repeats,
                "ours_seconds": round(ours_s, 6),
                "talib_seconds": round(talib_s, 6),
                "talib_adx_only_seconds": round(talib_adx_only_s, 6),
                "ratio": round(ours_s / talib_s, 3),
                "ratio_vs_adx_only": round(ours_s / talib_adx_only_s, 3),
                "peak_rss_mb": round(peak_kb / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
