"""Throughput of the synthetic tick generator, one core, against decoding real Dukascopy files.

Generates ``--days`` consecutive UTC days (default: July 2025, 31 days, ~3M ticks) with
:func:`aio_ray.data.synthetic_ticks.generate` and, as the peer, decodes every real hour file of the
Dukascopy mirror (read from disk + LZMA + records -> canonical table) with
:func:`aio_ray.data.dukascopy.decode_ticks`, repeated until about as many ticks. Prints one
JSON line on stdout; progress goes to stderr.

Usage::

    .venv/bin/python bench/synthetic.py            # a month
    .venv/bin/python bench/synthetic.py --quick    # a week
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aio_ray.config import SyntheticConfig
from aio_ray.data.dukascopy import decode_ticks
from aio_ray.data.synthetic_ticks import generate

SHARED = Path(os.environ.get("AIO_SHARED_DATA", REPO.parent / "shared" / "data")) / "dukascopy"


def bench_synthetic(start: dt.date, days: int, cfg: SyntheticConfig) -> dict[str, float]:
    """Generate ``days`` days from ``start``; ticks, seconds, ticks/s, slowest day (s)."""
    generate("EURUSD", start, start, cfg)  # nothing to do; imports are already paid
    t0 = time.perf_counter()
    n = 0
    slowest = 0.0
    last = t0
    for _, table in generate("EURUSD", start, start + dt.timedelta(days=days), cfg):
        n += table.num_rows
        now = time.perf_counter()
        slowest = max(slowest, now - last)
        last = now
    secs = time.perf_counter() - t0
    return {
        "ticks": n,
        "seconds": round(secs, 3),
        "ticks_per_s": round(n / secs),
        "slowest_day_s": round(slowest, 3),
    }


def bench_decode(root: Path, target_ticks: int) -> dict[str, float] | None:
    """Decode the real hour files (from disk each time) until ``target_ticks`` ticks."""
    files = sorted(root.glob("EURUSD/*/*/*/*h_ticks.bi5"))
    if not files:
        return None
    t0 = time.perf_counter()
    n = 0
    while n < target_ticks:
        for f in files:
            y, m, d = (int(p) for p in f.parts[-4:-1])
            hour = dt.datetime(y, m + 1, d, int(f.name[:2]))
            n += decode_ticks(f.read_bytes(), hour, "EURUSD", str(f)).num_rows
    secs = time.perf_counter() - t0
    return {"ticks": n, "seconds": round(secs, 3), "ticks_per_s": round(n / secs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one week instead of a month")
    ap.add_argument("--days", type=int, default=None, help="number of days (default 31)")
    ap.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2025, 7, 1))
    args = ap.parse_args()
    days = args.days or (7 if args.quick else 31)
    cfg = SyntheticConfig()
    print(f"synthetic: {days} days from {args.start} ...", file=sys.stderr)
    syn = bench_synthetic(args.start, days, cfg)
    print(f"synthetic: {syn}", file=sys.stderr)
    peer = bench_decode(SHARED, syn["ticks"])
    print(f"dukascopy decode: {peer}", file=sys.stderr)
    out = {
        "bench": "synthetic",
        "start": str(args.start),
        "days": days,
        "synthetic": syn,
        "peer_dukascopy_decode": peer,
        "speedup_vs_decode": round(syn["ticks_per_s"] / peer["ticks_per_s"], 2) if peer else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
