"""The strategy search at population scale: Ray Tune runs islands, Optuna proposes, numba scores.

How Ray Tune and Optuna fit together in :func:`run_search`:

1. Bars of every timeframe are read once. The final holdout (the last ``holdout_fraction`` of
   the calendar span, cut at a boundary shared by every timeframe) is split off in the driver:
   nothing of it reaches a trial. The walk-forward bars go into the object store once
   (``tune.with_parameters``); every worker on a node reads the same copy.
2. The budget (``n_trials`` candidates) is cut into *islands*
   (:func:`aio_ray.strategies.islands.plan_islands`): timeframe x family streams, each split
   into islands of at most ``island_size`` candidates. **One Tune trial is one island**: Tune
   gives it a CPU, retries it from its last checkpoint when its worker dies
   (``max_failures``), and restores the experiment on ``resume`` (``Tuner.restore``).
3. Inside a trial, an in-process population sampler (:mod:`aio_ray.strategies.sampling`:
   Optuna TPE / CMA-ES / NSGA-II proposing neighbourhood centres with batched ``ask``, or a
   random, Sobol or grid sweep) proposes ``population_size`` parameter sets per generation;
   :func:`aio_ray.strategies.population.evaluate_population` scores them all on every
   walk-forward window in one numba call; the :class:`~aio_ray.strategies.recorder.CandidateRecorder`
   actor writes every candidate (ok or failed, with its metrics and per-period returns) to the
   library in one bulk upsert; the sampler is told the scores; the trial reports once per
   generation (``tune.report`` with a checkpoint of the island's state). A generation is
   hundreds of milliseconds to seconds of work, so Tune's own cost per report is a small
   fraction of it.
4. After the search, each island's best ``finalists`` (bounded, whatever ``n_trials`` is)
   are ranked (``ranking.rank``; the DSR counts every ok candidate of the run, and the
   variance of their Sharpe ratios is merged from the islands' running statistics); the picks
   are evaluated on the holdout (reported beside the score, never part of it); strategies,
   fold metrics, holdout trades and the ranking are stored.

The plan depends on the configuration alone and an island's generations run in order, so the
same seed gives the same candidates and the same results whatever the number of workers.
Memory is bounded by the population, not by ``n_trials``: the driver holds island summaries
and finalists only.

This module runs the steps in order; each lives in its own module:
:mod:`~aio_ray.strategies.tune_driver` (the Tune experiment and the island summaries),
:mod:`~aio_ray.strategies.island_trial` (one trial), :mod:`~aio_ray.strategies.search_progress`
(progress lines), :mod:`~aio_ray.strategies.judging` (selection, verdict and holdout),
:mod:`~aio_ray.strategies.persist` (storing the outcome) and
:mod:`~aio_ray.strategies.search_outcome` (what is returned).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import polars as pl
import ray

from aio_ray.bars.store import read_bars
from aio_ray.frozen import config_id
from aio_ray.library import Library, strategy_id
from aio_ray.raycluster import ensure_ray
from aio_ray.strategies.config import SearchConfig
from aio_ray.strategies.evaluate import split_holdout
from aio_ray.strategies.islands import plan_islands
from aio_ray.strategies.judging import holdout_results, judge_run, window_layouts, with_holdout
from aio_ray.strategies.persist import record_layouts, store_outcome
from aio_ray.strategies.search_outcome import IslandSummary, SearchOutcome
from aio_ray.strategies.search_progress import (
    Progress,
    SearchProgress,
    emit_progress,
    progress_sink,
)
from aio_ray.strategies.tune_driver import (
    CONFIG_FILE,
    island_summaries,
    prepare_experiment,
    run_tune,
    start_recorder,
)
from aio_ray.strategies.walkforward import SearchError

log = logging.getLogger(__name__)

__all__ = [
    "CONFIG_FILE",
    "IslandSummary",
    "Progress",
    "SearchConfig",
    "SearchError",
    "SearchOutcome",
    "SearchProgress",
    "run_search",
    "search_frames",
    "split_holdout",
]


def search_frames(
    frames: Mapping[str, pl.DataFrame],
    config: SearchConfig,
    *,
    storage_path: str | Path,
    run_id: str,
    resume: bool = False,
    db_url: str | None = None,
    progress: Progress | None = None,
) -> SearchOutcome:
    """Run the search on in-memory bar frames (timeframe -> BAR_SCHEMA frame); see :func:`run_search`."""
    missing = [tf for tf in config.timeframes if tf not in frames]
    if missing:
        raise SearchError(f"no bars for timeframe(s) {missing}; have {sorted(frames)}")
    storage = Path(storage_path).resolve()
    restore = prepare_experiment(storage, run_id, config, resume)
    ensure_ray()
    t0 = time.perf_counter()
    seeds = {"sampler": config.seed}
    islands = plan_islands(
        config.n_trials, config.timeframes, config.family_names(), config.seed, config.island_size
    )
    log.info(
        "search %s: seeds %s, %d candidates in %d islands (%s sampler, populations of %d)",
        run_id,
        seeds,
        config.n_trials,
        len(islands),
        config.sampler_name(),
        config.population_size,
    )
    lib = None
    if db_url is not None:
        lib = Library(db_url)
        lib.start_run(run_id, config, seeds, config_id=config_id(config))
    recorder = None
    try:
        wf, full, cut, hold_ranges = split_holdout(
            {tf: frames[tf] for tf in config.timeframes}, config.holdout_fraction
        )
        log.info(
            "search %s: holdout from %s ms; walk-forward bars %s",
            run_id,
            cut,
            {tf: len(b) for tf, b in wf.items()},
        )
        layouts = window_layouts(wf, config)
        if lib is not None:
            record_layouts(lib, run_id, layouts)
        recorder = start_recorder(run_id, db_url, storage / run_id / "spool")
        with progress_sink(run_id, progress):
            t_fit = time.perf_counter()
            results, exp_path = run_tune(wf, config, islands, recorder, storage, run_id, restore)
            log.info("search %s: Tune finished in %.1f s", run_id, time.perf_counter() - t_fit)
        summaries, finalists, _stats = island_summaries(results, islands)
        for f in finalists:
            f["strategy_id"] = strategy_id(f["family"], f["params"], f["timeframe"], config.symbol)
        judgement = judge_run(lib, run_id, layouts, storage / run_id / "spool", config)
        ranking = list(judgement.ranking)
        holdout = holdout_results(ranking, judgement.candidates, full, hold_ranges, config)
        verdict = with_holdout(judgement.verdict, holdout, run_id, config, cut)
        complete = all(s.status in ("finished", "exhausted") for s in summaries)
        outcome = SearchOutcome(
            run_id,
            exp_path,
            seeds,
            config.n_trials,
            tuple(summaries),
            tuple(finalists),
            tuple(ranking),
            holdout,
            cut,
            config,
            complete,
            time.perf_counter() - t0,
            verdict,
        )
        for e in outcome.errors:
            log.error("search %s: %s", run_id, e)
        if not complete:
            log.warning(
                "search %s: %d of %d candidates done; resume=True continues it",
                run_id,
                outcome.n_done,
                config.n_trials,
            )
        log.info("search %s: %s", run_id, verdict["message"])
        if lib is not None:
            store_outcome(lib, outcome, judgement)
            lib.finish_run(run_id, "finished" if complete else "cancelled")
        if progress is not None:
            best = outcome.best
            emit_progress(
                progress,
                f"search done: {outcome.n_ok:,} candidates ok, {outcome.n_failed:,} failed in "
                f"{outcome.wall_s:.1f} s; best objective "
                f"{'-' if best is None else round(best['objective'], 3)} (in-sample); "
                f"{outcome.verdict['message'] if outcome.verdict else ''}",
                outcome.n_done,
                config.n_trials,
                {"candidates_per_s": round(outcome.n_done / max(outcome.wall_s, 1e-9), 1)},
            )
        return outcome
    except BaseException:
        if lib is not None:
            try:
                lib.finish_run(run_id, "failed")
            except Exception:
                log.exception("search %s: could not mark the run failed", run_id)
        raise
    finally:
        if recorder is not None:
            with contextlib.suppress(Exception):
                ray.kill(recorder)


def run_search(
    bars_dir: str | Path,
    config: SearchConfig,
    *,
    storage_path: str | Path,
    run_id: str,
    resume: bool = False,
    db_url: str | None = None,
    progress: Progress | None = None,
) -> SearchOutcome:
    """Search strategies on the bars in ``bars_dir`` (written by ``aio_ray.bars``).

    Parameters
    ----------
    bars_dir
        Bars directory; ``config.timeframes`` of ``config.symbol`` are read once.
    config
        Families, timeframes, candidate budget (``n_trials``), sampler, population size,
        seed, folds, objective, costs and ranking.
    storage_path
        Directory of Tune experiments; this run lives in ``storage_path/run_id``.
    run_id
        Stable id of the run (Tune experiment name and library run id).
    resume
        Continue an interrupted run with the same id (no finished population is repeated).
    db_url
        Library URL (``sqlite:///...`` or ``postgresql+psycopg://...``); None: candidates are
        kept as Parquet under ``storage_path/run_id/spool``.
    progress
        ``progress(message, done, total)`` every ``config.progress_interval_s`` seconds and at
        the end (``done``/``total`` in candidates).

    Raises
    ------
    SearchError
        Missing timeframes, a holdout that leaves no bars, or an existing run without ``resume``.
    """
    frames = {tf: read_bars(bars_dir, tf, config.symbol) for tf in config.timeframes}
    return search_frames(
        frames,
        config,
        storage_path=storage_path,
        run_id=run_id,
        resume=resume,
        db_url=db_url,
        progress=progress,
    )
