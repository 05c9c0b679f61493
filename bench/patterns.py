"""Benchmark: pattern detection over N bars, ours beside TA-Lib's candle functions in one run.

Prints one JSON line on stdout (logs go to stderr)::

    python bench/patterns.py              # 1,000,000 bars, best of 5
    python bench/patterns.py --quick      # 20,000 bars, best of 2 (smoke run)

Bars: a seeded EUR/USD-like random walk of 1-minute mid bars (each opening at the previous
close, :func:`aio_ray.patterns.synthetic_windows.random_walk_ohlc`). Timed, best of ``--repeats``
interleaved runs after one untimed call each:

* ``ours_candles``: :func:`detect_candles` (engulfing both ways, hammer, shooting star, doji);
* ``ours_charts``: :func:`detect_chart_patterns` (the nine chart patterns, window 64);
* ``talib_candles``: TA-Lib's CDLENGULFING, CDLHAMMER, CDLSHOOTINGSTAR and CDLDOJI.

``*_bars_per_s`` is bars scanned per second (all patterns of the group at once),
``*_detections_per_s`` the flags found per second. ``agreement`` compares our candle flags
with TA-Lib's on the same bars (CDLENGULFING > 0 / < 0 for bullish / bearish engulfing):
counts, bars flagged by both, Jaccard index, and each side's share confirmed by the other;
``agreement_real`` does the same on the real Dukascopy 1m bars of 2019-02-04/05 when the files
are present (``--dukascopy``). TA-Lib's rules differ by design (its body/shadow thresholds are
relative to the average of the previous 10 candles, and its hammer must sit near the previous
bar's low), so agreement is partial.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aio_ray.patterns.detectors import detect_candles, detect_chart_patterns
from aio_ray.patterns.synthetic_windows import random_walk_ohlc

DEFAULT_DUKASCOPY = Path(__file__).resolve().parents[2] / "shared" / "data" / "dukascopy"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def best_of(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each function, repeats interleaved (load hits all alike)."""
    for fn in fns.values():
        fn()  # warm-up: numba cache load / compile, page faults
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def talib_flags(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray
) -> dict[str, np.ndarray]:
    import talib

    eng = talib.CDLENGULFING(o, h, lo, c)
    return {
        "bullish_engulfing": eng > 0,
        "bearish_engulfing": eng < 0,
        "hammer": talib.CDLHAMMER(o, h, lo, c) != 0,
        "shooting_star": talib.CDLSHOOTINGSTAR(o, h, lo, c) != 0,
        "doji": talib.CDLDOJI(o, h, lo, c) != 0,
    }


def agreement(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> dict[str, Any]:
    ours = detect_candles(o, h, lo, c)
    ta = talib_flags(o, h, lo, c)
    out: dict[str, Any] = {"bars": len(c)}
    for name, mine in ours.items():
        theirs = ta[name]
        both = int(np.sum(mine & theirs))
        either = int(np.sum(mine | theirs))
        out[name] = {
            "ours": int(mine.sum()),
            "talib": int(theirs.sum()),
            "both": both,
            "jaccard": round(both / either, 4) if either else None,
            "ours_confirmed_by_talib": round(both / int(mine.sum()), 4) if mine.any() else None,
            "talib_confirmed_by_ours": round(both / int(theirs.sum()), 4) if theirs.any() else None,
        }
    return out


def real_bars(root: Path) -> tuple[np.ndarray, ...] | None:
    """Mid OHLC of the real 1m bars of 2019-02-04/05, or None without the files."""
    import pyarrow as pa

    from aio_ray.bars.resample import bars_from_ticks
    from aio_ray.data.dukascopy import decode_ticks, hour_path

    parts = []
    for day in (dt.date(2019, 2, 4), dt.date(2019, 2, 5)):
        for hour in range(24):
            when = dt.datetime(day.year, day.month, day.day, hour)
            path = root / hour_path("EURUSD", when)
            if not path.exists():
                return None
            parts.append(decode_ticks(path.read_bytes(), when, "EURUSD"))
    t = bars_from_ticks(pa.concat_tables(parts), ["1m"])["1m"]
    return tuple(t.column(f"mid_{k}").to_numpy() for k in ("open", "high", "low", "close"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dukascopy", type=Path, default=DEFAULT_DUKASCOPY)
    ap.add_argument("--quick", action="store_true", help="20,000 bars, 2 repeats")
    args = ap.parse_args()
    if args.quick:
        args.bars, args.repeats = 20_000, 2

    o, h, lo, c = random_walk_ohlc(args.bars, seed=args.seed)
    log(f"{args.bars:,} bars; timing best of {args.repeats}")
    results: dict[str, Any] = {}

    def run_candles() -> None:
        results["candles"] = detect_candles(o, h, lo, c)

    def run_charts() -> None:
        results["charts"] = detect_chart_patterns(o, h, lo, c, window=64)

    def run_talib() -> None:
        results["talib"] = talib_flags(o, h, lo, c)

    t = best_of({"candles": run_candles, "charts": run_charts, "talib": run_talib}, args.repeats)
    n_candles = int(sum(int(f.sum()) for f in results["candles"].values()))
    n_charts = int(sum(int(f.sum()) for f in results["charts"].values()))
    n_talib = int(sum(int(f.sum()) for f in results["talib"].values()))
    out: dict[str, Any] = {
        "bench": "patterns",
        "bars": args.bars,
        "repeats": args.repeats,
        "ours_candles_s": round(t["candles"], 4),
        "ours_candles_bars_per_s": round(args.bars / t["candles"]),
        "ours_candles_detections_per_s": round(n_candles / t["candles"]),
        "ours_charts_s": round(t["charts"], 4),
        "ours_charts_bars_per_s": round(args.bars / t["charts"]),
        "ours_charts_detections_per_s": round(n_charts / t["charts"]),
        "talib_candles_s": round(t["talib"], 4),
        "talib_candles_bars_per_s": round(args.bars / t["talib"]),
        "talib_candles_detections_per_s": round(n_talib / t["talib"]),
        "candles_speedup_vs_talib": round(t["talib"] / t["candles"], 2),
        "detections": {
            k: int(v.sum()) for k, v in {**results["candles"], **results["charts"]}.items()
        },
        "agreement": agreement(o, h, lo, c),
    }
    real = real_bars(args.dukascopy) if args.dukascopy.exists() else None
    out["agreement_real"] = agreement(*real) if real is not None else None
    if real is None:
        log(f"real Dukascopy files not found under {args.dukascopy}: agreement_real is null")
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
