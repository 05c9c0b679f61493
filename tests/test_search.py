"""The strategy search on a real local Ray head: Tune + Optuna, failures, seeds, resume, holdout."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from aio_ray.bars.store import write_bars
from aio_ray.bars.timeframes import parse_timeframe
from aio_ray.library import Library
from aio_ray.schema import BAR_SCHEMA
from aio_ray.strategies.evaluate import evaluate_candidate
from aio_ray.strategies.ranking import RankingConfig
from aio_ray.strategies.search import (
    FAILED_SCORE,
    SearchConfig,
    SearchError,
    SearchOutcome,
    run_search,
    search_frames,
    split_holdout,
)
from aio_ray.strategies.space import validate
from aio_ray.strategies.walkforward import make_folds

pytestmark = pytest.mark.ray

T0 = 1_600_041_600_000  # 2020-09-14 00:00 UTC, a Monday
HOUR = 3_600_000
FAMILIES = ("ma_cross", "rsi_reversion")
Frames = dict[str, pl.DataFrame]
Searched = tuple[SearchOutcome, Library, list[tuple[str, int, int]]]


def hourly_bars(n: int, seed: int) -> pl.DataFrame:
    """``n`` 1h bars of a random walk around 1.10 with a 0.2-pip spread (BAR_SCHEMA)."""
    rng = np.random.default_rng(seed)
    close = 1.10 * np.exp(np.cumsum(rng.normal(0.0, 0.0012, n)))
    open_ = np.concatenate(([1.10], close[:-1]))
    high = np.maximum(open_, close) + np.abs(rng.normal(0.0, 0.0004, n))
    low = np.minimum(open_, close) - np.abs(rng.normal(0.0, 0.0004, n))
    half = 0.00001
    cols: dict[str, object] = {"ts": T0 + np.arange(n, dtype=np.int64) * HOUR}
    for side, off in (("bid", -half), ("ask", half), ("mid", 0.0)):
        for name, a in (("open", open_), ("high", high), ("low", low), ("close", close)):
            cols[f"{side}_{name}"] = a + off
    cols.update(
        spread_mean=np.full(n, 2 * half),
        spread_max=np.full(n, 2 * half),
        ticks=np.full(n, 100, dtype=np.int64),
        bid_volume=np.ones(n),
        ask_volume=np.ones(n),
    )
    return pl.DataFrame(cols).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def rollup(h1: pl.DataFrame, every: str) -> pl.DataFrame:
    """Coarser bars from 1h bars (bar labelled by its open time)."""
    aggs = []
    for side in ("bid", "ask", "mid"):
        aggs += [
            pl.col(f"{side}_open").first(),
            pl.col(f"{side}_high").max(),
            pl.col(f"{side}_low").min(),
            pl.col(f"{side}_close").last(),
        ]
    aggs += [
        pl.col("spread_mean").mean(),
        pl.col("spread_max").max(),
        pl.col("ticks").sum(),
        pl.col("bid_volume").sum(),
        pl.col("ask_volume").sum(),
    ]
    return h1.group_by_dynamic("ts", every=every).agg(aggs).select(BAR_SCHEMA.names)


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    h1 = hourly_bars(3000, seed=11)  # 125 days
    return {"1h": h1, "4h": rollup(h1, "4h"), "1d": rollup(h1, "1d")}


@pytest.fixture(scope="module")
def bars_dir(frames: dict[str, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bars")
    for tf, df in frames.items():
        write_bars(root, tf, "EURUSD", df.to_arrow().cast(BAR_SCHEMA))
    return root


def config(**kw: object) -> SearchConfig:
    # warmup 100 bars: the 125 daily bars (100 after the holdout) cannot hold the folds, so
    # every trial that picks "1d" fails for real (NotEnoughBarsError) and must be recorded.
    base: dict[str, object] = {
        "families": FAMILIES,
        "timeframes": ("1h", "4h", "1d"),
        "n_trials": 24,
        "seed": 3,
        "n_folds": 3,
        "warmup_bars": 100,
        "holdout_fraction": 0.2,
        "max_concurrent": 2,
        "ranking": RankingConfig(min_trades=10),
    }
    return SearchConfig(**(base | kw))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def searched(ray_local: Any, bars_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Searched:
    tmp = tmp_path_factory.mktemp("search")
    url = f"sqlite:///{tmp / 'library.db'}"
    calls: list[tuple[str, int, int]] = []
    out = run_search(
        bars_dir,
        config(),
        storage_path=tmp / "tune",
        run_id="run-a",
        db_url=url,
        progress=lambda msg, done, total: calls.append((msg, done, total)),
    )
    return out, Library(url), calls


def test_search_runs_every_trial_and_finds_a_valid_top_list(searched: Searched) -> None:
    out, _, _ = searched
    assert out.complete
    assert [t.trial_number for t in out.trials] == list(range(24))
    assert out.n_ok >= 10
    assert 1 <= len(out.ranking) <= 5
    scores = [r.score for r in out.ranking]
    assert scores == sorted(scores, reverse=True)
    ok = {t.strategy_id: t for t in out.trials if t.status == "ok"}
    for r in out.ranking:
        assert r.strategy_id in ok and r.family in FAMILIES
        assert validate(r.family, r.params) == dict(r.params)
        assert r.criteria["trades"] >= 10  # the gate held
        assert r.strategy_id in out.holdout  # evaluated on the holdout, beside the score
        assert out.holdout[r.strategy_id].window[0] > 0
    assert out.seeds == {"sampler": 3}


def test_trial_reports_match_a_local_evaluation_of_the_same_candidate(
    searched: Searched, frames: Frames
) -> None:
    out, _, _ = searched
    wf, _, _, _ = split_holdout(frames, 0.2)
    cfg = out.config
    for t in [t for t in out.trials if t.status == "ok"][:3]:
        folds, _ = make_folds(
            len(wf[t.timeframe]),
            cfg.n_folds,
            cfg.scheme,
            oos_fraction=cfg.oos_fraction,
            holdout_fraction=0.0,
            warmup_bars=cfg.warmup_bars,
        )
        local = evaluate_candidate(
            wf, t.family, t.params, t.timeframe, folds, cfg.backtest, cfg.objective_config
        )
        assert t.objective == pytest.approx(local.objective, rel=1e-12, abs=1e-12)
        assert t.oos_trades == local.oos_trades
        assert t.moments is not None
        np.testing.assert_allclose(
            dataclasses.astuple(t.moments), dataclasses.astuple(local.moments), rtol=1e-12
        )


def test_failing_trials_are_recorded_with_their_error_and_do_not_stop_the_search(
    searched: Searched,
) -> None:
    out, lib, _ = searched
    failed = [t for t in out.trials if t.status == "failed"]
    assert failed, "the 1d timeframe is too short for the folds: some trials must fail"
    for t in failed:
        assert t.timeframe == "1d"
        assert "NotEnoughBarsError" in (t.error or "") and "fold(s)" in (t.error or "")
        assert t.objective == FAILED_SCORE
    assert all(t.status == "ok" for t in out.trials if t.timeframe != "1d")
    rows = lib.trials("run-a")
    assert len(rows) == 24
    stored_failed = [r for r in rows if r["status"] == "failed"]
    assert len(stored_failed) == len(failed)
    assert all(
        "NotEnoughBarsError" in r["error"] and r["strategy_id"] is None for r in stored_failed
    )


def test_library_holds_run_seeds_folds_holdout_trades_and_ranking(searched: Searched) -> None:
    out, lib, _ = searched
    run = lib.get_run("run-a")
    assert run is not None and run.status == "finished"
    assert run.seeds == {"sampler": 3}
    assert run.trials_done == out.n_ok and run.trials_failed == out.n_failed
    assert run.config["n_trials"] == 24
    top = lib.top("run-a", n=5)
    assert [r.strategy.id for r in top] == [r.strategy_id for r in out.ranking]
    for r in top:
        folds = lib.fold_metrics("run-a", r.strategy.id)
        assert sorted((f["fold"], f["sample"]) for f in folds) == [
            (k, s) for k in range(3) for s in ("is", "oos")
        ]
        h = out.holdout[r.strategy.id]
        assert r.holdout is not None and r.holdout["trades"] == int(h.metrics["trades"])
        trades = lib.trades("run-a", r.strategy.id, "holdout")
        assert len(trades) == h.trades.height
        assert all(t["entry_ts"] >= out.holdout_start_ms for t in trades)


def test_rerunning_a_finished_run_id_is_refused_and_leaves_the_library_alone(
    searched: Searched, bars_dir: Path
) -> None:
    out, lib, _ = searched
    storage = Path(out.experiment_path).parent
    with pytest.raises(SearchError, match="exists; pass resume=True"):
        run_search(
            bars_dir, config(), storage_path=storage, run_id="run-a", db_url=lib.safe_url
        )  # sqlite: = url
    run = lib.get_run("run-a")
    assert run is not None and run.status == "finished" and run.trials_done == out.n_ok


def test_holdout_bars_never_reach_a_trial(searched: Searched, frames: Frames) -> None:
    out, _, _ = searched
    cut = out.holdout_start_ms
    last_open = max(int(df["ts"].dt.epoch("ms").to_numpy().max()) for df in frames.values())
    assert cut is not None and cut < last_open  # there is a holdout to protect
    for t in out.trials:
        assert t.max_ts_ms is not None
        # the latest bar a trial received closes at or before the holdout starts
        assert t.max_ts_ms + parse_timeframe("1h").ms <= cut
    wf, full, cut2, ranges = split_holdout(frames, 0.2)
    assert cut2 == cut
    for tf, b in wf.items():
        assert int(b.ts[-1]) + parse_timeframe(tf).ms <= cut
        h0, h1 = ranges[tf]
        assert int(full[tf].ts[h0]) >= cut and h1 == len(full[tf])


def test_progress_reports_each_trial_and_the_best_score(searched: Searched) -> None:
    _out, _, calls = searched
    dones = [d for _, d, _ in calls]
    assert all(total == 24 for _, _, total in calls)
    assert dones == sorted(dones) and dones[-1] == 24 and len(calls) >= 25
    assert "best=" in calls[0][0] and calls[-1][0].startswith("search done")


@pytest.mark.slow
def test_same_seed_reproduces_the_sequence_of_suggestions(
    ray_local: Any, frames: Frames, tmp_path: Path
) -> None:
    def suggestions(seed: int, run_id: str, n: int) -> list[tuple[Any, ...]]:
        cfg = config(n_trials=n, seed=seed, max_concurrent=1, timeframes=("1h", "4h"))
        out = search_frames(frames, cfg, storage_path=tmp_path, run_id=run_id)
        return [
            (t.trial_number, t.family, t.timeframe, sorted(t.params.items()), t.objective)
            for t in out.trials
        ]

    # 13 trials: TPE's 10 seeded random start-up suggestions, then 3 from its model
    a = suggestions(7, "seed-a", 13)
    b = suggestions(7, "seed-b", 13)
    c = suggestions(8, "seed-c", 5)
    assert len(a) == 13 and a == b
    assert a[:5] != c


@pytest.mark.slow
def test_interrupted_search_resumes_without_repeating_trials(
    ray_local: Any, frames: Frames, tmp_path: Path
) -> None:
    cfg = config(n_trials=16, timeframes=("1h", "4h"), seed=5)
    sent: list[int] = []

    def interrupt_after_5(msg: str, done: int, total: int) -> None:
        # what Ctrl-C does: Tune catches the signal, saves the experiment and returns
        if done >= 5 and not sent:
            sent.append(done)
            os.kill(os.getpid(), signal.SIGUSR1)

    first = search_frames(
        frames, cfg, storage_path=tmp_path, run_id="resume", progress=interrupt_after_5
    )
    assert sent and not first.complete
    k = len(first.trials)
    assert 5 <= k < 16

    with pytest.raises(SearchError, match="resume=True"):
        search_frames(frames, cfg, storage_path=tmp_path, run_id="resume")
    with pytest.raises(SearchError, match=r"different configuration \(changed: \['n_folds'\]\)"):
        search_frames(
            frames,
            config(n_trials=16, timeframes=("1h", "4h"), seed=5, n_folds=4),
            storage_path=tmp_path,
            run_id="resume",
            resume=True,
        )

    second = search_frames(frames, cfg, storage_path=tmp_path, run_id="resume", resume=True)
    assert second.complete
    numbers = [t.trial_number for t in second.trials]
    assert numbers == list(range(16))  # all 16, each once
    # finished trials were not run again: identical records, down to their measured duration
    again = {t.trial_number: t for t in second.trials}
    for t in first.trials:
        assert repr(again[t.trial_number]) == repr(t)  # repr: NaN moments compare equal
    trial_dirs = [
        p for p in (tmp_path / "resume").iterdir() if p.is_dir() and p.name.startswith("trial_")
    ]
    assert len(trial_dirs) == 16


def test_multi_objective_search_completes_with_nsga2(
    ray_local: Any, frames: Frames, tmp_path: Path
) -> None:
    cfg = config(n_trials=8, timeframes=("1h",), objective="sharpe_and_drawdown", seed=1)
    out = search_frames(frames, cfg, storage_path=tmp_path, run_id="moo")
    assert out.complete and len(out.trials) == 8 and out.n_ok == 8
    # both objectives were reported: OOS Sharpe (fold values) and the worst OOS drawdown
    assert all(t.oos_max_drawdown >= 0.0 and t.oos_sharpe > FAILED_SCORE for t in out.trials)


def test_unknown_family_and_missing_timeframe_are_rejected_up_front(
    frames: Frames, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="unknown families"):
        SearchConfig(families=("nope",))
    with pytest.raises(SearchError, match="no bars for timeframe"):
        search_frames(
            {"1h": frames["1h"]}, config(timeframes=("1h", "4h")), storage_path=tmp_path, run_id="x"
        )
    with pytest.raises(SearchError, match="no walk-forward bars"):
        split_holdout({"1h": frames["1h"].head(3)}, 0.9)
    assert pa is not None
