"""Benchmark: strategy-search throughput on Ray Tune + Optuna with 1 and 2 CPU workers.

Prints one JSON line on stdout (logs and Tune's banners go to stderr)::

    python bench/search.py             # 1h bars of 250 days (+ 4h), 60 trials per setting
    python bench/search.py --quick     # 1h bars of 60 days (+ 4h), 12 trials (smoke run)

For each worker count a fresh local Ray head starts (``ray.init(num_cpus=N)``, not timed), then
``search_frames`` runs the same trial budget on the same bars with ``max_concurrent=N``; the
timed part is the whole search (Tune start, trials, ranking, holdout evaluation), so
``trials_per_s_*`` is what a user sees per trial. The peer, in the same run, is plain Optuna in
this process with the same sampler, space and trial function and no Ray
(``trials_per_s_optuna_inprocess``): the difference is Tune's per-trial overhead and the
parallel speed-up. ``trial_compute_s_mean`` is the mean time a trial spends evaluating its
candidate. ``peak_rss_mb`` is this driver process's peak RSS (Ray workers are separate
processes and not included).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aio_ray.strategies.search import (
    DefineByRun,
    SearchConfig,
    run_trial,
    search_frames,
    split_holdout,
)

log = logging.getLogger("bench.search")
HOUR = 3_600_000
T0 = 1_600_041_600_000  # 2020-09-14 00:00 UTC


def hourly_frame(n: int, seed: int) -> pl.DataFrame:
    """``n`` EUR/USD-like 1h bars (random walk, 0.2-pip spread) with the bar schema's prices."""
    rng = np.random.default_rng(seed)
    close = 1.10 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    open_ = np.concatenate(([1.10], close[:-1]))
    high = np.maximum(open_, close) + np.abs(rng.normal(0.0, 0.0003, n))
    low = np.minimum(open_, close) - np.abs(rng.normal(0.0, 0.0003, n))
    cols: dict[str, Any] = {"ts": T0 + np.arange(n, dtype=np.int64) * HOUR}
    for side, off in (("bid", -1e-5), ("ask", 1e-5), ("mid", 0.0)):
        for name, a in (("open", open_), ("high", high), ("low", low), ("close", close)):
            cols[f"{side}_{name}"] = a + off
    return pl.DataFrame(cols).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def four_hour(h1: pl.DataFrame) -> pl.DataFrame:
    aggs = []
    for side in ("bid", "ask", "mid"):
        aggs += [
            pl.col(f"{side}_open").first(),
            pl.col(f"{side}_high").max(),
            pl.col(f"{side}_low").min(),
            pl.col(f"{side}_close").last(),
        ]
    return h1.group_by_dynamic("ts", every="4h").agg(aggs)


def ray_search(frames: dict[str, pl.DataFrame], cfg: SearchConfig, workers: int) -> dict[str, float]:
    import ray

    ray.init(
        address="local",  # a fresh head even if another cluster runs on this machine
        num_cpus=workers,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )
    try:
        with tempfile.TemporaryDirectory(prefix="aio-bench-search-") as tmp:
            cfg = cfg.model_copy(update={"max_concurrent": workers})
            t0 = time.perf_counter()
            out = search_frames(frames, cfg, storage_path=tmp, run_id=f"bench-{workers}")
            wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
    compute = [t.duration_s for t in out.trials if t.duration_s is not None]
    log.info("%d worker(s): %d trials in %.2f s (%d ok)", workers, len(out.trials), wall, out.n_ok)
    return {
        "wall_s": wall,
        "trials": float(len(out.trials)),
        "trial_compute_s_mean": float(np.mean(compute)) if compute else float("nan"),
    }


def optuna_inprocess(frames: dict[str, pl.DataFrame], cfg: SearchConfig) -> float:
    """The peer: the same space and trial function under plain Optuna, no Ray; wall seconds."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    wf, _, _, _ = split_holdout(frames, cfg.holdout_fraction)
    space = DefineByRun(cfg.timeframes, cfg.family_names())

    def objective(trial: optuna.Trial) -> float:
        return float(run_trial(space(trial), wf, cfg)["objective"])

    run_trial(space(optuna.create_study().ask()), wf, cfg)  # numba cache load, not timed
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=cfg.seed))
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=cfg.n_trials)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=250, help="days of 1h bars")
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="60 days, 12 trials")
    args = ap.parse_args()
    if args.quick:
        args.days, args.trials = 60, 12
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")

    h1 = hourly_frame(args.days * 24, args.seed)
    frames = {"1h": h1, "4h": four_hour(h1)}
    cfg = SearchConfig(
        families=("ma_cross", "rsi_reversion", "macd_cross", "bb_breakout"),
        timeframes=("1h", "4h"),
        n_trials=args.trials,
        seed=args.seed,
        n_folds=4,
        warmup_bars=60,
    )
    with contextlib.redirect_stdout(sys.stderr):
        one = ray_search(frames, cfg, 1)
        two = ray_search(frames, cfg, 2)
        peer = optuna_inprocess(frames, cfg)
    result = {
        "bench": "search",
        "trials": args.trials,
        "bars": {tf: df.height for tf, df in frames.items()},
        "families": list(cfg.families),
        "trials_per_s_1_worker": one["trials"] / one["wall_s"],
        "trials_per_s_2_workers": two["trials"] / two["wall_s"],
        "trials_per_s_optuna_inprocess": args.trials / peer,
        "speedup_2_vs_1": one["wall_s"] / two["wall_s"],
        "wall_s_1_worker": one["wall_s"],
        "wall_s_2_workers": two["wall_s"],
        "trial_compute_s_mean": (one["trial_compute_s_mean"] + two["trial_compute_s_mean"]) / 2,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
