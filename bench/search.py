"""Benchmark: the population search (candidates/s, 1 and 2 workers, peak memory) beside the old
one-trial-per-candidate Tune search and a plain in-process Optuna loop, in one run.

Prints one JSON line on stdout (logs and Tune's banners go to stderr)::

    python bench/search.py            # 6,000 1h + 1,500 4h bars, all families, 50,000 candidates,
                                      # then a 200,000-candidate random sweep on a month of 15m bars
    python bench/search.py --quick    # 10,000 candidates, no sweep (smoke run)

Each setting starts a fresh local Ray head (``ray.init(num_cpus=N)``, not timed) and runs
``search_frames`` with a SQLite library in a temporary folder; the timed part is the whole
search (Tune start, islands, every candidate written, ranking, holdout). ``peak_rss_mb_*`` is
the peak of the summed RSS of this process and all its children (Ray head, workers, the
candidate writer) sampled every 0.2 s; ``peak_pss_mb_*`` the same with PSS, which counts a
page shared by several processes (the object store, numba and numpy) once in all. The peers, in the same run and on the same bars:
``per_trial_tune_*``: Ray Tune + ``OptunaSearch`` with one trial per candidate (what the search
did before populations), and ``optuna_inprocess_*``: Optuna's TPE calling ``evaluate_candidate``
in this process, no Ray.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

sys.path.append(str(REPO / "bench"))  # after the repo: bench/serve.py must not shadow serve/
from peak_memory import PeakMemory

from aio_ray.strategies.evaluate import evaluate_candidate
from aio_ray.strategies.search import SearchConfig, search_frames, split_holdout
from aio_ray.strategies.walkforward import make_folds

log = logging.getLogger("bench.search")
T0 = 1_600_041_600_000  # 2020-09-14 00:00 UTC


def bar_frame(n: int, seed: int, bar_ms: int) -> pl.DataFrame:
    """``n`` EUR/USD-like bars (random walk, 0.2-pip spread) with the bar schema's prices."""
    rng = np.random.default_rng(seed)
    close = 1.10 * np.exp(np.cumsum(rng.normal(0.0, 0.001 * (bar_ms / 3_600_000) ** 0.5, n)))
    open_ = np.concatenate(([1.10], close[:-1]))
    high = np.maximum(open_, close) + np.abs(rng.normal(0.0, 0.0003, n))
    low = np.minimum(open_, close) - np.abs(rng.normal(0.0, 0.0003, n))
    cols: dict[str, Any] = {"ts": T0 + np.arange(n, dtype=np.int64) * bar_ms}
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


def _ray(workers: int) -> None:
    import ray

    ray.init(
        address="local",
        num_cpus=workers,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )


def population(frames: dict[str, pl.DataFrame], cfg: SearchConfig, workers: int) -> dict[str, Any]:
    import ray

    from aio_ray.library import Library
    from aio_ray.library.candidates import candidate_counts

    _ray(workers)
    try:
        with tempfile.TemporaryDirectory(prefix="aio-bench-search-") as tmp, PeakMemory() as mem:
            url = f"sqlite:///{tmp}/library.db"
            t0 = time.perf_counter()
            out = search_frames(
                frames, cfg, storage_path=tmp, run_id=f"bench-{workers}", db_url=url
            )
            wall = time.perf_counter() - t0
            stored = sum(candidate_counts(Library(url), out.run_id).values())
    finally:
        ray.shutdown()
    log.info("population, %d worker(s): %d candidates in %.1f s", workers, out.n_done, wall)
    return {
        "wall_s": wall,
        "candidates": out.n_done,
        "stored": stored,
        "peak_rss_mb": mem.peak_rss_mb,
        "peak_pss_mb": mem.peak_pss_mb,
        "compute_s": sum(i.compute_s for i in out.islands),
        "sample_s": sum(i.sample_s for i in out.islands),
    }


def per_trial_tune(frames: dict[str, pl.DataFrame], cfg: SearchConfig, n: int) -> float:
    """The old shape: one Tune trial per candidate, OptunaSearch (TPE) suggesting each; 1 worker."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    wf, _, _, _ = split_holdout(frames, cfg.holdout_fraction)
    space = _Space(list(cfg.family_names()), list(cfg.timeframes))

    _ray(1)
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    try:
        with tempfile.TemporaryDirectory(prefix="aio-bench-trial-") as tmp:
            searcher = OptunaSearch(
                space=space,
                metric="objective",
                mode="max",
                sampler=optuna.samplers.TPESampler(seed=cfg.seed),
            )
            tuner = tune.Tuner(
                tune.with_parameters(_per_trial, bars=wf, cfg=cfg),
                tune_config=tune.TuneConfig(
                    search_alg=searcher, num_samples=n, max_concurrent_trials=1
                ),
                run_config=tune.RunConfig(storage_path=tmp, verbose=0),
            )
            t0 = time.perf_counter()
            tuner.fit()
            return n / (time.perf_counter() - t0)
    finally:
        ray.shutdown()


class _Space:
    """The old define-by-run space: family and timeframe, then the family's parameters."""

    def __init__(self, fams: list[str], tfs: list[str]) -> None:
        self.fams, self.tfs = fams, tfs

    def __call__(self, trial: Any) -> dict[str, Any]:
        from aio_ray.strategies.space import sample_optuna

        fam = trial.suggest_categorical("family", self.fams)
        tf = trial.suggest_categorical("timeframe", self.tfs)
        sample_optuna(_Prefixed(trial, fam + "."), fam, None)
        return {"family": fam, "timeframe": tf}


def _per_trial(config: dict[str, Any], bars: Any, cfg: SearchConfig) -> None:
    from ray import tune

    params = {k.split(".", 1)[1]: v for k, v in config.items() if "." in k}
    fam, tf = config["family"], config["timeframe"]
    folds, _ = make_folds(
        len(bars[tf]), cfg.n_folds, holdout_fraction=0.0, warmup_bars=cfg.warmup_bars
    )
    tune.report(
        {"objective": evaluate_candidate(bars, fam, params, tf, folds, cfg.backtest).objective}
    )


class _Prefixed:
    def __init__(self, trial: Any, prefix: str) -> None:
        self._t, self._p = trial, prefix

    def suggest_int(self, name: str, *a: Any, **k: Any) -> int:
        return self._t.suggest_int(self._p + name, *a, **k)

    def suggest_float(self, name: str, *a: Any, **k: Any) -> float:
        return self._t.suggest_float(self._p + name, *a, **k)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._t.suggest_categorical(self._p + name, list(choices))


def optuna_inprocess(frames: dict[str, pl.DataFrame], cfg: SearchConfig, n: int) -> float:
    """Plain Optuna TPE in this process, one evaluate_candidate per trial; candidates/s."""
    import optuna

    from aio_ray.strategies.space import sample_optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    wf, _, _, _ = split_holdout(frames, cfg.holdout_fraction)
    folds = {
        tf: make_folds(len(b), cfg.n_folds, holdout_fraction=0.0, warmup_bars=cfg.warmup_bars)[0]
        for tf, b in wf.items()
    }
    fams = list(cfg.family_names())

    def objective(trial: optuna.Trial) -> float:
        fam = trial.suggest_categorical("family", fams)
        tf = trial.suggest_categorical("timeframe", list(cfg.timeframes))
        p = sample_optuna(_Prefixed(trial, fam + "."), fam, None)
        return float(evaluate_candidate(wf, fam, p, tf, folds[tf], cfg.backtest).objective)

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=cfg.seed)
    )
    study.optimize(objective, n_trials=3)  # numba cache load, not timed
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=50_000)
    ap.add_argument(
        "--sweep", type=int, default=200_000, help="candidates of the 15m sweep (0: none)"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="10,000 candidates, no sweep")
    args = ap.parse_args()
    if args.quick:
        args.candidates, args.sweep = 10_000, 0
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    h1 = bar_frame(6000, args.seed, 3_600_000)
    frames = {"1h": h1, "4h": four_hour(h1)}
    cfg = SearchConfig(
        timeframes=("1h", "4h"),
        n_trials=args.candidates,
        seed=args.seed,
        n_folds=4,
        warmup_bars=60,
        population_size=1024,
        centres=8,
    )
    with contextlib.redirect_stdout(sys.stderr):
        one = population(frames, cfg, 1)
        two = population(frames, cfg, 2)
        old = per_trial_tune(frames, cfg, 40)
        peer = optuna_inprocess(frames, cfg, 60)
        sweep = None
        if args.sweep:
            m15 = {"15m": bar_frame(31 * 96, args.seed + 1, 900_000)}
            scfg = SearchConfig(
                timeframes=("15m",),
                n_trials=args.sweep,
                seed=args.seed,
                n_folds=3,
                warmup_bars=60,
                sampler="random",
                population_size=2048,
                island_size=25_000,
            )
            sweep = population(m15, scfg, 2)
    c1, c2 = one["candidates"] / one["wall_s"], two["candidates"] / two["wall_s"]
    result: dict[str, Any] = {
        "bench": "search",
        "candidates": args.candidates,
        "bars": {tf: df.height for tf, df in frames.items()},
        "families": list(cfg.family_names()),
        "sampler": cfg.sampler_name(),
        "population_size": cfg.population_size,
        "candidates_per_s_1_worker": round(c1, 1),
        "candidates_per_s_2_workers": round(c2, 1),
        "speedup_2_vs_1": round(c2 / c1, 2),
        "per_trial_tune_candidates_per_s": round(old, 2),
        "optuna_inprocess_candidates_per_s": round(peer, 2),
        "x_vs_per_trial_tune": round(c2 / old, 1),
        "peak_rss_mb_1_worker": round(one["peak_rss_mb"]),
        "peak_rss_mb_2_workers": round(two["peak_rss_mb"]),
        "peak_pss_mb_1_worker": round(one["peak_pss_mb"]),
        "peak_pss_mb_2_workers": round(two["peak_pss_mb"]),
        "stored_rows_2_workers": two["stored"],
        "compute_s_2_workers": round(two["compute_s"], 1),
        "sampler_s_2_workers": round(two["sample_s"], 1),
    }
    if sweep is not None:
        result["sweep_15m"] = {
            "candidates": args.sweep,
            "bars": 31 * 96,
            "sampler": "random",
            "workers": 2,
            "wall_s": round(sweep["wall_s"], 1),
            "candidates_per_s": round(sweep["candidates"] / sweep["wall_s"], 1),
            "peak_rss_mb": round(sweep["peak_rss_mb"]),
            "peak_pss_mb": round(sweep["peak_pss_mb"]),
            "stored_rows": sweep["stored"],
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
