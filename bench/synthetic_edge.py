"""Cost and size of the planted edge of the synthetic generator, against the martingale peer.

Generates ``--days`` consecutive UTC days (default 5 from Monday 2025-07-07) with
:func:`aio_ray.data.synthetic_ticks.generate` once with ``edge="none"`` (the peer, today's
generator) and once per planted edge (``mean_reversion`` and ``momentum`` at
``--strength`` and ``--half-life-min``), same seed. For each: ticks/s on one core, the
peak Python heap of one day's generation (tracemalloc, a separate run so timing is not
slowed), and the pooled lag-1 autocorrelation of 15-minute log mid returns (pairs within a
UTC day; what the edge plants). Prints one JSON line on stdout; progress goes to stderr.

Usage::

    .venv/bin/python bench/synthetic_edge.py                 # 5 days, strength 1, 45 min
    .venv/bin/python bench/synthetic_edge.py --days 40 --strength 1 --half-life-min 15
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aio_ray.config import SyntheticConfig
from aio_ray.data.synthetic_ticks import edge_scale, generate, generate_day


def returns_15m(table: pa.Table) -> np.ndarray:
    """Log returns of the last mid in each 15-minute bucket of one UTC day (0 where no tick)."""
    ms = table["ts"].cast(pa.int64()).to_numpy()
    mid = (table["bid"].to_numpy() + table["ask"].to_numpy()) / 2
    bucket = (ms - ms[0] // 86_400_000 * 86_400_000) // 900_000
    last = np.full(96, -1)
    last[bucket] = np.arange(len(ms))
    last = np.maximum.accumulate(last)
    r = np.diff(np.log(mid)[np.maximum(last, 0)])
    return r[last[1:] > last[:-1]]  # buckets that have ticks of their own


def lag1_autocorr(returns: list[np.ndarray]) -> float:
    """Pooled lag-1 autocorrelation; pairs never straddle two days."""
    mu = np.concatenate(returns).mean()
    num = sum(float(((r[:-1] - mu) * (r[1:] - mu)).sum()) for r in returns)
    den = sum(float(((r - mu) ** 2).sum()) for r in returns)
    return num / den


def bench(start: dt.date, days: int, cfg: SyntheticConfig) -> dict[str, float]:
    """Generate ``days`` days: ticks, seconds, ticks/s, peak heap of one day, 15m autocorr."""
    returns: list[np.ndarray] = []
    n = 0
    t0 = time.perf_counter()
    for _, table in generate("EURUSD", start, start + dt.timedelta(days=days), cfg):
        n += table.num_rows
        if table.num_rows:
            returns.append(returns_15m(table))
    secs = time.perf_counter() - t0
    tracemalloc.start()
    generate_day("EURUSD", start, cfg)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "ticks": n,
        "seconds": round(secs, 3),
        "ticks_per_s": round(n / secs),
        "peak_heap_mb_one_day": round(peak / 2**20, 1),
        "returns_15m": int(sum(len(r) for r in returns)),
        "lag1_autocorr_15m": round(lag1_autocorr(returns), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=5, help="number of days (default 5)")
    ap.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2025, 7, 7))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--strength", type=float, default=1.0, help="edge_strength (default 1)")
    ap.add_argument("--half-life-min", type=float, default=45.0, help="edge_half_life_min")
    args = ap.parse_args()
    base = SyntheticConfig(seed=args.seed)
    generate_day("EURUSD", args.start, base)  # the cached daily anchors are paid once, here
    out: dict[str, object] = {
        "bench": "synthetic_edge",
        "start": str(args.start),
        "days": args.days,
        "seed": args.seed,
        "edge_strength": args.strength,
        "edge_half_life_min": args.half_life_min,
        "edge_std_log": round(args.strength * edge_scale(base.annual_vol, args.half_life_min), 7),
    }
    print(f"peer edge=none: {args.days} days from {args.start} ...", file=sys.stderr)
    peer = bench(args.start, args.days, base)
    print(f"none: {peer}", file=sys.stderr)
    out["peer_none"] = peer
    edges: tuple[Literal["mean_reversion", "momentum"], ...] = ("mean_reversion", "momentum")
    for edge in edges:
        cfg = SyntheticConfig(
            seed=args.seed,
            edge=edge,
            edge_strength=args.strength,
            edge_half_life_min=args.half_life_min,
        )
        res = bench(args.start, args.days, cfg)
        print(f"{edge}: {res}", file=sys.stderr)
        res["slowdown_vs_none"] = round(peer["ticks_per_s"] / res["ticks_per_s"], 3)
        out[edge] = res
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
