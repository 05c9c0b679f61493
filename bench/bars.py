"""Throughput of ticks -> 1m, 5m, 15m and 1h bars: our kernel against polars and pandas, and
the Ray Data path with one and with two CPU workers.

All in one run on the same synthetic ticks (a random walk on the point grid with realistic
spreads and volumes, about one tick per second, so 10M ticks span ~116 days):

- ``ours``: :func:`aio_ray.bars.bars_from_ticks`, all four timeframes from one pass over the
  ticks (1m bars; the others rolled up from them), Arrow tables out.
- ``polars``: ``group_by_dynamic`` per timeframe with the same outputs (OHLC of bid, ask and
  mid, spread mean and max, tick count, volume sums).
- ``pandas``: ``resample().ohlc()`` per timeframe with the same outputs (empty bins dropped).
- ``ray_N``: :func:`aio_ray.bars.build_bars` over the ticks written as a day-partitioned tick
  dataset (the tick store's Parquet encoding, one file per UTC day) on a fresh ``ray.init(num_cpus=N)``, N = 1
  and 2 in alternating rounds (so both see the same background load); the best time counts.
  Ray start-up and the workers' numba warm-up (first builds on a few days) are not timed;
  listing, reading, the kernel, merging and writing the bars are. ``machine_parallelism_2_procs``
  reports how many cores two busy processes really got around that time (2.0 when idle).

Before reporting, ours is checked against polars on every timeframe and all three against
each other on the 1h bars. Prints one JSON line on stdout; logs go to stderr.

Usage::

    .venv/bin/python bench/bars.py                 # 10M ticks
    .venv/bin/python bench/bars.py --quick         # 1M ticks, fewer repeats
    .venv/bin/python bench/bars.py --ticks 20000000 --no-ray
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import itertools

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from aio_ray.bars import bars_from_ticks
from aio_ray.data.tick_store import write_tick_file
from aio_ray.schema import TICK_SCHEMA, TS_TYPE

log = logging.getLogger("bench.bars")
TIMEFRAMES = ("1m", "5m", "15m", "1h")
PANDAS_RULE = {"1m": "1min", "5m": "5min", "15m": "15min", "1h": "1h"}
START_MS = 1_546_819_200_000  # 2019-01-07 00:00 UTC, a Monday
DAY_MS = 86_400_000


def synthetic_ticks(n: int, seed: int = 7) -> pa.Table:
    """``n`` EUR/USD-like ticks: exponential gaps (mean 1 s, some same-millisecond ticks), a
    random walk of the bid in whole points, spreads of 0-20 points (mostly 1-4), float32
    volumes in millions."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1000.0, n).astype(np.int64)
    ts = START_MS + np.cumsum(gaps)
    bid_pts = 112_000 + np.cumsum(rng.choice([-2, -1, 0, 1, 2], n, p=[0.05, 0.25, 0.4, 0.25, 0.05]))
    spread_pts = np.minimum(rng.geometric(0.4, n), 20)
    bid = bid_pts / 1e5
    ask = (bid_pts + spread_pts) / 1e5
    vol = np.round(rng.lognormal(0.0, 0.8, (2, n)), 2).astype(np.float32)
    return pa.Table.from_arrays(
        [
            pa.array(ts).cast(TS_TYPE),
            pa.array(bid),
            pa.array(ask),
            pa.array(vol[0]),
            pa.array(vol[1]),
        ],
        schema=TICK_SCHEMA,
    )


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Fastest of ``repeat`` runs (seconds) and the last result."""
    best = math.inf
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# --- the peers ------------------------------------------------------------------------------


def polars_bars(df: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The same bars with polars ``group_by_dynamic``, one pass per timeframe."""
    df = df.with_columns(
        mid=(pl.col("bid") + pl.col("ask")) / 2, spread=pl.col("ask") - pl.col("bid")
    )
    aggs = []
    for side in ("bid", "ask", "mid"):
        aggs += [
            pl.col(side).first().alias(f"{side}_open"),
            pl.col(side).max().alias(f"{side}_high"),
            pl.col(side).min().alias(f"{side}_low"),
            pl.col(side).last().alias(f"{side}_close"),
        ]
    aggs += [
        pl.col("spread").mean().alias("spread_mean"),
        pl.col("spread").max().alias("spread_max"),
        pl.len().cast(pl.Int64).alias("ticks"),
        pl.col("bid_volume").cast(pl.Float64).sum().alias("bid_volume"),
        pl.col("ask_volume").cast(pl.Float64).sum().alias("ask_volume"),
    ]
    return {tf: df.group_by_dynamic("ts", every=tf).agg(aggs) for tf in TIMEFRAMES}


def pandas_bars(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The same bars with pandas ``resample().ohlc()``; bins without ticks are dropped."""
    prices = pd.DataFrame({"bid": df["bid"], "ask": df["ask"], "mid": (df["bid"] + df["ask"]) / 2})
    spread = df["ask"] - df["bid"]
    vols = df[["bid_volume", "ask_volume"]].astype("float64")
    out = {}
    for tf in TIMEFRAMES:
        rule = PANDAS_RULE[tf]
        ohlc = prices.resample(rule).ohlc()
        ohlc.columns = [f"{side}_{f}" for side, f in ohlc.columns]
        sp = spread.resample(rule).agg(["mean", "max", "count"])
        vs = vols.resample(rule).sum()
        bars = pd.concat(
            [
                ohlc,
                sp.rename(columns={"mean": "spread_mean", "max": "spread_max", "count": "ticks"}),
                vs,
            ],
            axis=1,
        )
        out[tf] = bars[bars["ticks"] > 0]
    return out


# --- agreement checks (not timed) -----------------------------------------------------------

EXACT = [f"{s}_{f}" for s in ("bid", "ask", "mid") for f in ("open", "high", "low", "close")] + [
    "spread_max",
    "ticks",
]
CLOSE = ["spread_mean", "bid_volume", "ask_volume"]


def assert_same(ours: pl.DataFrame, other: pl.DataFrame, what: str) -> None:
    assert ours.height == other.height, f"{what}: {ours.height} bars vs {other.height}"
    assert ours["ts"].cast(pl.Int64).equals(other["ts"].cast(pl.Int64)), f"{what}: bar times differ"
    for c in EXACT:
        a, b = ours[c].to_numpy(), other[c].to_numpy()
        assert np.array_equal(a, b), f"{what}: {c} differs at {np.flatnonzero(a != b)[:5]}"
    for c in CLOSE:
        np.testing.assert_allclose(
            ours[c].to_numpy(), other[c].to_numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{what}: {c}"
        )


def pandas_as_polars(bars: pd.DataFrame) -> pl.DataFrame:
    ts = pl.Series("ts", bars.index.as_unit("ms").asi8).cast(pl.Datetime("ms", "UTC"))
    cols = {c: pl.Series(c, bars[c].to_numpy()) for c in EXACT + CLOSE}
    cols["ticks"] = cols["ticks"].cast(pl.Int64)
    return pl.DataFrame([ts, *cols.values()])


# --- the Ray Data path ----------------------------------------------------------------------


def write_tick_dataset(ticks: pa.Table, root: Path) -> int:
    """Write ``ticks`` as ``symbol=EURUSD/date=YYYY-MM-DD/part-0.parquet`` in the tick store's
    encoding (:data:`aio_ray.data.tick_store.TICK_PARQUET_OPTIONS`); returns the number of files."""
    ts = ticks.column("ts").cast(pa.int64()).to_numpy()
    day = ts // DAY_MS
    cuts = np.flatnonzero(np.diff(day)) + 1
    edges = [0, *cuts.tolist(), len(ts)]
    for a, b in itertools.pairwise(edges):
        date = np.datetime64(int(day[a]), "D").astype(str)
        path = root / "symbol=EURUSD" / f"date={date}" / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tick_file(ticks.slice(a, b - a), path)
    return len(edges) - 1


def subset_dataset(root: Path, dest: Path, n_files: int) -> None:
    """The first ``n_files`` day files of ``root`` under ``dest`` (for the warm-up build)."""
    files = sorted((root / "symbol=EURUSD").glob("date=*/part-0.parquet"))[:n_files]
    for f in files:
        target = dest / "symbol=EURUSD" / f.parent.name / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)


def _warm_up(ticks_dir: Path, work: Path, workers: int, files_per_shard: int | None) -> None:
    """Start the workers, import the package and load the compiled kernel in each."""
    from aio_ray.bars import build_bars

    warm = work / f"warm-{workers}"
    if not warm.exists():
        subset_dataset(ticks_dir, warm, 4 * workers)
    for _ in range(2):
        build_bars(warm, work / f"warm-bars-{workers}", TIMEFRAMES, files_per_shard=files_per_shard)


def ray_paths(
    ticks_dir: Path,
    work: Path,
    n_ticks: int,
    files_per_shard: int | None,
    repeat: int,
    rounds: int,
) -> dict[int, dict[str, Any]]:
    """Best build_bars time with 1 and with 2 CPU workers.

    Each round starts a fresh ``ray.init(num_cpus=1)``, warms it up, times ``repeat`` builds
    and shuts it down, then does the same with ``num_cpus=2``; alternating rounds let both
    see the same background load on a shared machine. Capping concurrency inside one Ray
    instance instead (``concurrency=`` or 2 CPUs per task) is not equivalent: Ray Data then
    stops fusing the read into the map task, so reading would still run two at a time.
    """
    import ray

    from aio_ray.bars import build_bars, read_bars

    init = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    best: dict[int, float] = {1: math.inf, 2: math.inf}
    shards: dict[int, int] = {}
    for _ in range(rounds):
        for workers in (1, 2):
            ray.init(address="local", num_cpus=workers, **init)
            try:
                _warm_up(ticks_dir, work, workers, files_per_shard)
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    summary = build_bars(
                        ticks_dir,
                        work / f"bars-{workers}",
                        TIMEFRAMES,
                        files_per_shard=files_per_shard,
                    )
                    best[workers] = min(best[workers], time.perf_counter() - t0)
                    assert summary["ticks_total"] == n_ticks
                    shards[workers] = summary["symbols"]["EURUSD"]["shards"]
            finally:
                ray.shutdown()
    return {
        w: {
            "seconds": best[w],
            "ticks_per_s": n_ticks / best[w],
            "shards": shards[w],
            "hourly": read_bars(work / f"bars-{w}", "1h"),
        }
        for w in (1, 2)
    }


def _spin(n: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - t0


def parallelism_probe(n: int = 5_000_000, rounds: int = 3) -> float:
    """How many CPUs this process can really use at the moment: the time of one busy loop
    times 2 over the time of two run side by side in two processes (2.0 on an idle 2-core
    machine; less when other tenants use the cores). Best of ``rounds``."""
    import multiprocessing as mp

    best = 0.0
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(_spin, [1000, 1000])
        for _ in range(rounds):
            one = _spin(n)
            t0 = time.perf_counter()
            pool.map(_spin, [n, n])
            best = max(best, 2 * one / (time.perf_counter() - t0))
    return best


# --- main -----------------------------------------------------------------------------------


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[int]:
    """Send everything written to fd 1 (Ray, libraries) to stderr; yield a dup of real stdout."""
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    try:
        yield real
    finally:
        sys.stdout.flush()
        os.dup2(real, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ticks", type=int, default=10_000_000, help="number of synthetic ticks")
    ap.add_argument("--quick", action="store_true", help="1M ticks, fewer repeats")
    ap.add_argument("--repeat", type=int, default=3, help="runs per method; the fastest counts")
    ap.add_argument("--ray-repeat", type=int, default=3, help="timed builds per Ray instance")
    ap.add_argument(
        "--ray-rounds",
        type=int,
        default=2,
        help="fresh Ray instances per worker count (alternating)",
    )
    ap.add_argument(
        "--files-per-shard",
        type=int,
        default=None,
        help="day files per Ray map task (default: auto)",
    )
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray Data path")
    ap.add_argument("--no-pandas", action="store_true", help="skip pandas (slow on big inputs)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    n = 1_000_000 if args.quick else args.ticks
    repeat = 2 if args.quick else args.repeat

    with stdout_to_stderr():
        result = run(n, repeat, args)
    print(json.dumps(result), flush=True)


def run(n: int, repeat: int, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    ticks = synthetic_ticks(n)
    log.info("generated %d ticks in %.1f s", n, time.perf_counter() - t0)
    days = int((ticks.column("ts")[-1].value - ticks.column("ts")[0].value) // DAY_MS) + 1

    bars_from_ticks(ticks.slice(0, 10_000), TIMEFRAMES)  # loads the compiled kernel
    ours_s, ours = best_time(lambda: bars_from_ticks(ticks, TIMEFRAMES), repeat)
    log.info("ours: %.3f s, %.1f M ticks/s", ours_s, n / ours_s / 1e6)

    df_pl = pl.from_arrow(ticks)
    polars_s, pol = best_time(lambda: polars_bars(df_pl), repeat)
    log.info("polars: %.3f s, %.1f M ticks/s", polars_s, n / polars_s / 1e6)

    ours_pl = {tf: pl.from_arrow(t) for tf, t in ours.items()}
    for tf in TIMEFRAMES:
        assert_same(ours_pl[tf], pol[tf].select(ours_pl[tf].columns), f"ours vs polars {tf}")
    log.info("ours == polars on all %d timeframes", len(TIMEFRAMES))

    result: dict[str, Any] = {
        "bench": "bars",
        "ticks": n,
        "days": days,
        "timeframes": list(TIMEFRAMES),
        "ours_ticks_per_s": round(n / ours_s),
        "polars_ticks_per_s": round(n / polars_s),
        "ours_vs_polars": round(polars_s / ours_s, 2),
    }
    seconds: dict[str, float] = {"ours": round(ours_s, 4), "polars": round(polars_s, 4)}

    if not args.no_pandas:
        df_pd = ticks.to_pandas().set_index("ts")
        pandas_s, pan = best_time(lambda: pandas_bars(df_pd), max(1, repeat - 1))
        log.info("pandas: %.3f s, %.1f M ticks/s", pandas_s, n / pandas_s / 1e6)
        assert_same(ours_pl["1h"], pandas_as_polars(pan["1h"]), "ours vs pandas 1h")
        assert_same(
            pol["1h"].select(ours_pl["1h"].columns),
            pandas_as_polars(pan["1h"]),
            "polars vs pandas 1h",
        )
        log.info("ours == polars == pandas on the 1h bars")
        result["pandas_ticks_per_s"] = round(n / pandas_s)
        seconds["pandas"] = round(pandas_s, 4)
        del df_pd, pan

    if not args.no_ray:
        work = Path(tempfile.mkdtemp(prefix="bench-bars-"))
        try:
            t1 = time.perf_counter()
            n_files = write_tick_dataset(ticks, work / "ticks")
            log.info("wrote %d day files in %.1f s", n_files, time.perf_counter() - t1)
            probe_before = parallelism_probe()
            ray_repeat = 2 if args.quick else args.ray_repeat
            rounds = 1 if args.quick else args.ray_rounds
            runs = ray_paths(work / "ticks", work, n, args.files_per_shard, ray_repeat, rounds)
            probe_after = parallelism_probe()
            result["machine_parallelism_2_procs"] = round(min(probe_before, probe_after), 2)
            log.info("2-process parallelism available: %.2f / %.2f", probe_before, probe_after)
            for workers, r in runs.items():
                assert_same(ours_pl["1h"], r["hourly"], f"ours vs ray {workers} 1h")
                log.info(
                    "ray %d worker(s): %.3f s, %.1f M ticks/s, %d shards",
                    workers,
                    r["seconds"],
                    r["ticks_per_s"] / 1e6,
                    r["shards"],
                )
                key = "ray_1_worker" if workers == 1 else f"ray_{workers}_workers"
                result[f"{key}_ticks_per_s"] = round(r["ticks_per_s"])
                seconds[key] = round(r["seconds"], 4)
                result[f"{key}_shards"] = r["shards"]
            result["ray_rounds"] = rounds
            result["ray_repeat"] = ray_repeat
            result["ray_files"] = n_files
            result["ray_scaling_2_vs_1"] = round(
                result["ray_2_workers_ticks_per_s"] / result["ray_1_worker_ticks_per_s"], 2
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    result["seconds"] = seconds
    result["repeat"] = repeat
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["cpus"] = os.cpu_count()
    result["python"] = platform.python_version()
    result["versions"] = {
        "polars": pl.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
    }
    return result


if __name__ == "__main__":
    main()
