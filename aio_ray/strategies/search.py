"""The strategy search: Ray Tune + Optuna over families x parameters x timeframes (the Ray edge).

What happens in :func:`run_search`:

1. Bars of every timeframe are read once. The final holdout (the last ``holdout_fraction`` of
   the calendar span, cut at a boundary shared by every timeframe) is split off in the driver:
   a trial only ever receives bars that *close* before the holdout starts.
2. Those walk-forward bars go into the object store once (``tune.with_parameters``); trials
   read them from there, never from disk.
3. Optuna (TPE, seeded; or NSGA-II over OOS Sharpe and drawdown) suggests, define-by-run, a
   timeframe, a family and that family's parameters (``space.sample_optuna``; parameter names
   are prefixed ``family.`` inside the study so families never share a distribution).
4. A trial splits its timeframe's bars into walk-forward folds, evaluates the candidate
   (:func:`aio_ray.strategies.evaluate.evaluate_candidate`, ``bidask`` fills) and reports the
   objective with its fold metrics. A trial that cannot be evaluated (invalid parameters,
   too few bars for the folds, any exception) reports ``status="failed"``, its error text
   and a very bad score (:data:`FAILED_SCORE`); it never stops the search.
5. After the search the ok trials become ranking candidates; ``ranking.rank`` picks the top
   (``n_trials`` = every trial tried, for the Deflated Sharpe Ratio); the picks are evaluated
   on the holdout (reported beside the score, never part of it); everything is stored in
   the library when a database URL is given.

An interrupted search (Ctrl-C / SIGINT, SIGUSR1, a crash) resumes with ``resume=True``:
``Tuner.restore`` continues the experiment under ``storage_path/run_id`` without repeating
finished trials. Suggestions are reproducible for a seed when ``max_concurrent=1`` (with more
concurrent trials the order in which results arrive may change later suggestions).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from ray import tune

from aio_ray.config import SearchConfig
from aio_ray.strategies.dsr import ReturnMoments
from aio_ray.strategies.evaluate import (
    FOLD_METRICS,
    CandidateResult,
    HoldoutResult,
    MarketBars,
    evaluate_candidate,
    evaluate_holdout,
    split_holdout,
)
from aio_ray.strategies.ranking import Candidate, FoldOOS, RankedStrategy, rank
from aio_ray.strategies.walkforward import SearchError, make_folds

log = logging.getLogger(__name__)

__all__ = [
    "CONFIG_FILE",
    "FAILED_SCORE",
    "DefineByRun",
    "SearchConfig",
    "SearchError",
    "SearchOutcome",
    "SearchProgress",
    "TrialRecord",
    "run_search",
    "run_trial",
    "search_frames",
    "split_holdout",
]

FAILED_SCORE = -1.0e6
"""Objective (and OOS Sharpe) reported by a failed trial; its drawdown is ``-FAILED_SCORE``."""

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial as the search saw it.

    ``status`` is "ok" or "failed" (then ``error`` holds the reason and ``objective`` is
    :data:`FAILED_SCORE`). ``folds`` lists ``{"fold", "sample", **metrics}`` rows;
    ``max_ts_ms`` is the open time (UTC ms) of the latest bar the trial received.
    """

    trial_number: int
    status: str
    error: str | None
    family: str
    timeframe: str
    params: dict[str, Any]
    objective: float
    oos_sharpe: float
    oos_max_drawdown: float
    oos_trades: int
    folds: tuple[dict[str, Any], ...]
    moments: ReturnMoments | None
    max_ts_ms: int | None
    duration_s: float | None
    strategy_id: str | None


@dataclass(frozen=True)
class SearchOutcome:
    """The result of :func:`run_search`.

    Attributes
    ----------
    run_id, experiment_path
        The run and its Tune experiment directory (what ``resume=True`` continues).
    seeds
        Every seed used (also stored with the library's run row).
    trials
        Every finished trial, ok and failed, by trial number.
    ranking
        The top strategies (best first) from ``ranking.rank``.
    holdout
        ``strategy_id`` -> holdout result of each ranked strategy (reporting only).
    holdout_start_ms
        UTC ms where the holdout starts; None without a holdout.
    config
        The search configuration.
    complete
        True when all ``config.n_trials`` trials finished; False after an interruption
        (run again with ``resume=True`` to finish).
    """

    run_id: str
    experiment_path: str
    seeds: dict[str, int]
    trials: tuple[TrialRecord, ...]
    ranking: tuple[RankedStrategy, ...]
    holdout: dict[str, HoldoutResult]
    holdout_start_ms: int | None
    config: SearchConfig
    complete: bool = True

    @property
    def n_ok(self) -> int:
        """Trials that evaluated their candidate."""
        return sum(t.status == "ok" for t in self.trials)

    @property
    def n_failed(self) -> int:
        """Trials recorded as failed."""
        return sum(t.status != "ok" for t in self.trials)

    @property
    def best(self) -> TrialRecord | None:
        """The ok trial with the highest objective."""
        ok = [t for t in self.trials if t.status == "ok"]
        return max(ok, key=lambda t: (t.objective, -t.trial_number)) if ok else None


# ----------------------------------------------------------------------------- the study


class _Prefixed:
    """An Optuna trial whose parameter names get ``prefix`` (so families never share one)."""

    def __init__(self, trial: Any, prefix: str) -> None:
        self._trial = trial
        self._prefix = prefix

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> int:
        return self._trial.suggest_int(self._prefix + name, *args, **kwargs)

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> float:
        return self._trial.suggest_float(self._prefix + name, *args, **kwargs)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._trial.suggest_categorical(self._prefix + name, list(choices))


class DefineByRun:
    """The define-by-run space: timeframe and family as categoricals, then the family's
    parameters via ``space.sample_optuna``. Picklable (Tune saves it with the searcher).

    Returns Tune's trial config: ``trial_number`` (Optuna's), ``timeframe``, ``family``,
    ``params`` and, when no valid parameter set could be drawn, ``invalid`` (the reason).
    """

    def __init__(
        self, timeframes: Sequence[str], families: Sequence[str], pins: dict[str, Any] | None = None
    ) -> None:
        self.timeframes = list(timeframes)
        self.families = list(families)
        self.pins = dict(pins or {})

    def __call__(self, trial: Any) -> dict[str, Any]:
        from aio_ray.strategies.space import sample_optuna

        tf = trial.suggest_categorical("timeframe", self.timeframes)
        family = trial.suggest_categorical("family", self.families)
        out: dict[str, Any] = {"trial_number": int(trial.number), "timeframe": tf, "family": family}
        try:
            out["params"] = sample_optuna(_Prefixed(trial, f"{family}."), family, self.pins)
        except Exception as exc:  # noqa: BLE001 - e.g. TrialPruned: recorded as a failed trial
            out["params"] = {}
            out["invalid"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return out


def _metric_names(cfg: SearchConfig) -> tuple[str | list[str], str | list[str]]:
    if cfg.objective == "sharpe_and_drawdown":
        return ["oos_sharpe", "oos_max_drawdown"], ["max", "min"]
    return "objective", "max"


def _finite(x: float) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def run_trial(
    config: Mapping[str, Any], bars: Mapping[str, MarketBars], search: SearchConfig
) -> dict[str, Any]:
    """Evaluate one suggested candidate; never raises (failures come back as ``status="failed"``).

    Returns the metrics a trial reports: ``objective``, ``oos_sharpe``, ``oos_max_drawdown``,
    ``oos_trades``, ``status``, ``error``, ``folds_json`` (JSON rows of fold/sample/metrics),
    ``moments``, ``max_ts_ms`` (latest bar open received, UTC ms), ``last_ts_ms`` (latest bar
    read), ``duration_s``, plus the candidate (``trial_number``, ``family``, ``timeframe``,
    ``params``).
    """
    t0 = time.perf_counter()
    tf, family = config.get("timeframe"), config.get("family")
    params = dict(config.get("params") or {})
    out: dict[str, Any] = {
        "trial_number": int(config.get("trial_number", -1)),
        "family": family,
        "timeframe": tf,
        "params": params,
        "max_ts_ms": max((int(b.ts[-1]) for b in bars.values() if len(b)), default=None),
    }
    try:
        if config.get("invalid"):
            raise SearchError(f"no valid parameters drawn: {config['invalid']}")
        if not isinstance(tf, str) or tf not in bars:
            raise SearchError(f"no bars for timeframe {tf!r}; have {sorted(bars)}")
        mb = bars[tf]
        folds, _ = make_folds(
            len(mb),
            search.n_folds,
            search.scheme,
            oos_fraction=search.oos_fraction,
            holdout_fraction=0.0,
            warmup_bars=search.warmup_bars,
        )
        res = evaluate_candidate(
            bars, family, params, tf, folds, search.backtest, search.objective_config
        )
        out.update(_ok_payload(res))
    except Exception as exc:  # noqa: BLE001 - a failed candidate must not stop the search
        out.update(
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            objective=FAILED_SCORE,
            oos_sharpe=FAILED_SCORE,
            oos_max_drawdown=-FAILED_SCORE,
            oos_trades=0,
            folds_json="[]",
            moments=None,
            last_ts_ms=None,
        )
    out["duration_s"] = time.perf_counter() - t0
    return out


def _ok_payload(res: CandidateResult) -> dict[str, Any]:
    m = res.moments
    return {
        "status": "ok",
        "error": None,
        "objective": float(res.objective),
        "oos_sharpe": float(res.oos_sharpe),
        "oos_max_drawdown": float(res.oos_max_drawdown),
        "oos_trades": int(res.oos_trades),
        "folds_json": json.dumps(
            [
                {"fold": f.fold, "sample": s, **{k: float(mm[k]) for k in FOLD_METRICS}}
                for f in res.folds
                for s, mm in (("is", f.is_metrics), ("oos", f.oos_metrics))
            ]
        ),
        "moments": {"sharpe": m.sharpe, "skew": m.skew, "kurtosis": m.kurtosis, "n_obs": m.n_obs},
        "last_ts_ms": int(res.last_ts),
    }


def _trainable(
    config: dict[str, Any], bars: Mapping[str, MarketBars], search: SearchConfig
) -> None:
    tune.report(run_trial(config, bars, search))


# ----------------------------------------------------------------------------- progress


_SINKS: dict[str, Progress] = {}
"""run_id -> the progress function of the search running it in this process (the callback
itself is pickled with the experiment, so it looks its sink up by run id)."""


class SearchProgress(tune.Callback):
    """Calls ``progress(message, done, total)`` as each trial finishes.

    Pickled with the experiment, so it holds only the run id and finds the progress function
    of the search now running that id in this process in :data:`_SINKS`.
    """

    def __init__(self, run_id: str, total: int) -> None:
        self.run_id, self.total = run_id, total

    def _emit(self, trials: list[Any], trial: Any, what: str) -> None:
        sink = _SINKS.get(self.run_id)
        if sink is None:
            return
        finished = {t.trial_id for t in trials if t.status in ("TERMINATED", "ERROR")} | {
            trial.trial_id
        }
        scores = [
            t.last_result.get("objective")
            for t in trials
            if t.last_result and t.last_result.get("status") == "ok"
        ]
        best = max((s for s in scores if s is not None), default=None)
        r = trial.last_result or {}
        cfg = trial.config or {}
        msg = (
            f"trial {cfg.get('trial_number')} {r.get('status', what)} "
            f"{cfg.get('family')}@{cfg.get('timeframe')} objective={r.get('objective')}; best={best}"
        )
        sink(msg, min(len(finished), self.total), self.total)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._emit(trials, trial, "ok")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._emit(trials, trial, "failed")


# ----------------------------------------------------------------------------- the run


def _searcher(cfg: SearchConfig, max_concurrent: int) -> Any:
    import optuna
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    metric, mode = _metric_names(cfg)
    if cfg.objective == "sharpe_and_drawdown":
        sampler: Any = optuna.samplers.NSGAIISampler(seed=cfg.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=cfg.seed)
    searcher = OptunaSearch(
        space=DefineByRun(cfg.timeframes, cfg.family_names(),
                          None if cfg.pattern_filter else {"pattern_filter": "none"}),
        metric=metric,
        mode=mode,
        sampler=sampler,
    )
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


CONFIG_FILE = "aio_search_config.json"
"""The search configuration, saved beside Tune's state so a resume can check it is unchanged."""


def _check_same_config(path: Path, cfg: SearchConfig) -> None:
    """Raise SearchError when ``cfg`` differs from the configuration the run started with."""
    if not path.is_file():
        return
    before = SearchConfig.model_validate_json(path.read_text())
    if before != cfg:
        old, new = before.model_dump(), cfg.model_dump()
        diff = sorted(k for k in new if old.get(k) != new[k])
        raise SearchError(
            f"{path.parent}: cannot resume with a different configuration (changed: {diff}); "
            "resume with the original one or start a new run id"
        )


def _experiment_dir(storage_path: Path, run_id: str, cfg: SearchConfig, resume: bool) -> bool:
    """Check the run's experiment directory before anything runs; True when Tune can restore it.

    Raises SearchError when the run exists and ``resume`` is False, or when a resume would
    change the configuration the run started with.
    """
    exp_path = storage_path / run_id
    if resume and tune.Tuner.can_restore(str(exp_path)):
        _check_same_config(exp_path / CONFIG_FILE, cfg)
        return True
    if exp_path.exists() and any(p.name != CONFIG_FILE for p in exp_path.iterdir()):
        raise SearchError(
            f"{exp_path}: a search with run id {run_id!r} exists; pass resume=True to continue "
            "it or choose another run id"
        )
    return False


def _run_tune(
    wf: dict[str, MarketBars],
    cfg: SearchConfig,
    storage_path: Path,
    run_id: str,
    restore: bool,
) -> tuple[list[Any], str]:
    import os

    import ray

    # Trials are stored in the library; Tune's per-trial CSV/JSON/TensorBoard files only cost
    # time (about a fifth of a cheap trial). The experiment state that resume needs is kept.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Snapshot the experiment state after every step, so a trial that finished before an
    # interruption is never run again on resume.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
    exp_path = storage_path / run_id
    trainable = tune.with_resources(
        tune.with_parameters(_trainable, bars=wf, search=cfg), {"cpu": 1}
    )
    if restore:
        log.info("search %s: resuming %s", run_id, exp_path)
        tuner = tune.Tuner.restore(
            str(exp_path),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=True,
        )
    else:
        exp_path.mkdir(parents=True, exist_ok=True)
        (exp_path / CONFIG_FILE).write_text(cfg.model_dump_json(indent=2))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=_searcher(cfg, cfg.max_concurrent or max(1, cpus)),
                num_samples=cfg.n_trials,
                reuse_actors=True,
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
            ),
            run_config=tune.RunConfig(
                name=run_id,
                storage_path=str(storage_path),
                callbacks=[SearchProgress(run_id, cfg.n_trials)],
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                verbose=0,
            ),
        )
    # Per-trial result files are off (TUNE_DISABLE_AUTO_CALLBACK_LOGGERS), so the result grid
    # warns once per trial that it cannot load their metric history; results come from the
    # trials themselves, so that warning is noise.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(sys.stderr):  # Tune prints its banners; keep stdout clean
        grid = tuner.fit()
    return [grid[i] for i in range(len(grid))], str(exp_path)


def _record_of(result: Any, symbol: str) -> TrialRecord | None:
    """A TrialRecord from a Tune result; None for a trial that never ran."""
    from aio_ray.library import strategy_id

    cfg = result.config or {}
    if "trial_number" not in cfg:
        return None
    m = result.metrics or {}
    status = m.get("status")
    if status is None:
        if result.error is None:
            return None  # not finished (the search was interrupted before it ran)
        status = "failed"
    error = m.get("error") if status != "ok" else None
    if status != "ok" and not error:
        error = f"trial raised: {result.error!r}"
    params = dict(m.get("params") or cfg.get("params") or {})
    mo = m.get("moments")
    ok = status == "ok"
    return TrialRecord(
        trial_number=int(cfg["trial_number"]),
        status="ok" if ok else "failed",
        error=error,
        family=str(cfg.get("family")),
        timeframe=str(cfg.get("timeframe")),
        params=params,
        objective=float(m.get("objective", FAILED_SCORE)) if ok else FAILED_SCORE,
        oos_sharpe=float(m.get("oos_sharpe", FAILED_SCORE)) if ok else FAILED_SCORE,
        oos_max_drawdown=float(m.get("oos_max_drawdown", -FAILED_SCORE)) if ok else -FAILED_SCORE,
        oos_trades=int(m.get("oos_trades", 0) or 0),
        folds=tuple(json.loads(m.get("folds_json") or "[]")),
        moments=ReturnMoments(
            float(mo["sharpe"]), float(mo["skew"]), float(mo["kurtosis"]), int(mo["n_obs"])
        )
        if ok and mo
        else None,
        max_ts_ms=m.get("max_ts_ms"),
        duration_s=m.get("duration_s"),
        strategy_id=strategy_id(str(cfg["family"]), params, str(cfg["timeframe"]), symbol)
        if ok
        else None,
    )


def _candidates(trials: Sequence[TrialRecord]) -> list[Candidate]:
    """One ranking candidate per distinct strategy (its best trial when suggested twice)."""
    best: dict[str, TrialRecord] = {}
    for t in trials:
        if t.status != "ok" or t.strategy_id is None or t.moments is None:
            continue
        cur = best.get(t.strategy_id)
        if cur is None or (t.objective, -t.trial_number) > (cur.objective, -cur.trial_number):
            best[t.strategy_id] = t
    out = []
    for sid in sorted(best):
        t = best[sid]
        folds = [
            FoldOOS(
                int(r["fold"]),
                float(r["sharpe"]),
                float(r["max_drawdown"]),
                float(r["profit_factor"]),
                int(r["trades"]),
            )
            for r in t.folds
            if r["sample"] == "oos"
        ]
        out.append(Candidate(sid, t.family, dict(t.params), folds, t.moments, t.timeframe))  # type: ignore[arg-type]
    return out


def _param_ranges(families: Sequence[str]) -> dict[str, dict[str, tuple[float, float]]]:
    from aio_ray.strategies.space import describe

    out: dict[str, dict[str, tuple[float, float]]] = {}
    for fam in families:
        out[fam] = {
            p["name"]: (float(p["low"]), float(p["high"]))
            for p in describe(fam)["params"]
            if "low" in p
        }
    return out


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
    from aio_ray.raycluster import ensure_ray

    missing = [tf for tf in config.timeframes if tf not in frames]
    if missing:
        raise SearchError(f"no bars for timeframe(s) {missing}; have {sorted(frames)}")
    storage = Path(storage_path).resolve()
    restore = _experiment_dir(storage, run_id, config, resume)
    ensure_ray()
    seeds = {"sampler": config.seed}
    log.info("search %s: seeds %s, %d trials", run_id, seeds, config.n_trials)
    lib = None
    if db_url is not None:
        from aio_ray.config import config_id
        from aio_ray.library import Library

        lib = Library(db_url)
        lib.start_run(run_id, config, seeds, config_id=config_id(config))
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
        if progress is not None:
            _SINKS[run_id] = progress
        try:
            results, exp_path = _run_tune(wf, config, storage, run_id, restore)
        finally:
            _SINKS.pop(run_id, None)
        trials = sorted(
            (r for r in (_record_of(x, config.symbol) for x in results) if r is not None),
            key=lambda t: t.trial_number,
        )
        candidates = _candidates(trials)
        ranking: list[RankedStrategy] = []
        if candidates:
            ranking = rank(
                candidates,
                max(len(trials), len(candidates)),
                top=config.top,
                param_ranges=_param_ranges(config.family_names()),
                config=config.ranking,
            )
        by_sid = {c.strategy_id: c for c in candidates}
        holdout: dict[str, HoldoutResult] = {}
        for r in ranking:
            c = by_sid[r.strategy_id]
            h0, h1 = hold_ranges[c.timeframe]
            if h1 - h0 >= 2:
                holdout[r.strategy_id] = evaluate_holdout(
                    full[c.timeframe], c.family, c.params, (h0, h1), config.backtest, c.timeframe
                )
        complete = len(trials) >= config.n_trials
        outcome = SearchOutcome(
            run_id, exp_path, seeds, tuple(trials), tuple(ranking), holdout, cut, config, complete
        )
        if not complete:
            log.warning(
                "search %s: interrupted after %d of %d trials; resume=True continues it",
                run_id,
                len(trials),
                config.n_trials,
            )
        if lib is not None:
            _store(lib, outcome)
            lib.finish_run(run_id, "finished" if complete else "cancelled")
        if progress is not None:
            best = outcome.best
            progress(
                f"search done: {outcome.n_ok} ok, {outcome.n_failed} failed; best objective "
                f"{best.objective if best else None}",
                len(trials),
                config.n_trials,
            )
        return outcome
    except BaseException:
        if lib is not None:
            try:
                lib.finish_run(run_id, "failed")
            except Exception:
                log.exception("search %s: could not mark the run failed", run_id)
        raise


def _store(lib: Any, out: SearchOutcome) -> None:
    """Write trials (ok and failed), strategies, fold metrics, holdout metrics and trades, and
    the ranking of ``out`` into the library."""
    from aio_ray.library import METRIC_COLUMNS

    run_id, symbol = out.run_id, out.config.symbol
    best: dict[str, TrialRecord] = {}  # a strategy suggested twice keeps its best trial's folds
    for t in out.trials:
        if t.strategy_id is not None and (
            t.strategy_id not in best or t.objective > best[t.strategy_id].objective
        ):
            best[t.strategy_id] = t
    for t in out.trials:
        sid = None
        if t.status == "ok":
            sid = lib.upsert_strategy(run_id, t.family, t.params, t.timeframe, symbol)
            if best[sid] is t:
                lib.record_fold_metrics(run_id, sid, [dict(r) for r in t.folds])
        lib.record_trial(
            run_id,
            t.trial_number,
            strategy_id=sid,
            status=t.status,
            error=t.error,
            objective=_finite(t.objective) if t.status == "ok" else None,
            duration_s=t.duration_s,
        )
    for sid, h in out.holdout.items():
        lib.record_holdout(run_id, sid, {k: h.metrics[k] for k in METRIC_COLUMNS})
        lib.record_trades(
            run_id,
            sid,
            "holdout",
            h.trades.select(
                "side",
                "entry_ts",
                "exit_ts",
                "entry_price",
                "exit_price",
                "size",
                "pnl",
                "pnl_pips",
                "exit_reason",
            ),
        )
    lib.save_ranking(run_id, list(out.ranking))


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
    """Search strategies on the bars in ``bars_dir`` (written by ``aio_ray.bars``) with Ray Tune.

    Parameters
    ----------
    bars_dir
        Bars directory; ``config.timeframes`` of ``config.symbol`` are read once.
    config
        Families, timeframes, trial budget, seed, folds, objective, costs and ranking.
    storage_path
        Directory of Tune experiments; this run lives in ``storage_path/run_id``.
    run_id
        Stable id of the run (Tune experiment name and library run id).
    resume
        Continue an interrupted run with the same id (finished trials are not repeated).
    db_url
        Library URL (``sqlite:///...`` or ``postgresql+psycopg://...``); None: nothing stored.
    progress
        ``progress(message, done, total)`` after each trial and at the end.

    Raises
    ------
    SearchError
        Missing timeframes, a holdout that leaves no bars, or an existing run without ``resume``.
    """
    from aio_ray.bars.store import read_bars

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
