"""The search as a statistical test: a planted edge is found, a martingale yields nothing.

Both runs use the default gates (deflated Sharpe >= 0.95 over the effective number of trials,
record Sharpe > 0, profit factor > 1, trades without forced end exits, minimum track record
length, PBO < 0.5) and the default costs. ``bench/validity.py`` repeats this over many seeds
and reports the false-positive rate and the power.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aio_ray.bars.store import write_bars
from aio_ray.library import Library
from aio_ray.schema import BAR_SCHEMA
from aio_ray.strategies.search import SearchConfig, run_search
from tests.support.barsynth import hourly_bars

pytestmark = pytest.mark.usefixtures("ray_local")

N_BARS = 24 * 130  # about four months of hourly bars


def _bars(root: Path, seed: int, revert: float) -> Path:
    df = hourly_bars(N_BARS, seed, revert=revert, half_life=3.0, substeps=12)
    write_bars(root, "1h", "EURUSD", df.to_arrow().cast(BAR_SCHEMA))
    return root


def _search(tmp: Path, seed: int, revert: float) -> tuple[Any, Library]:
    cfg = SearchConfig(
        families=("bb_reversion", "rsi_reversion", "ma_cross"),
        timeframes=("1h",),
        n_trials=1_500,
        seed=seed,
        n_folds=4,
        warmup_bars=60,
        holdout_fraction=0.15,
        population_size=250,
        pattern_filter=False,
        max_concurrent=2,
    )
    url = f"sqlite:///{tmp / 'lib.db'}"
    out = run_search(
        _bars(tmp / "bars", seed, revert),
        cfg,
        storage_path=tmp / "tune",
        run_id=f"run-{seed}",
        db_url=url,
    )
    return out, Library(url)


def test_a_planted_mean_reversion_edge_is_found_by_a_reversion_family(tmp_path: Path) -> None:
    out, lib = _search(tmp_path, seed=11, revert=0.95)
    v = out.verdict
    assert v is not None and v["verdict"] == "passed", v["message"]
    assert v["passed"] == len(out.ranking) >= 1
    assert out.ranking[0].family in ("bb_reversion", "rsi_reversion"), v["message"]
    best = v["strategies"][0]
    assert best["dsr"] >= 0.95 and best["pbo"] < 0.5 and best["profit_factor"] > 1
    assert best["record_periods"] >= best["min_trl"]
    assert best["trades"] - best["end_exits"] >= 30
    # the record is out-of-sample: one pick per fold, each chosen on its in-sample window
    assert len(best["fold_picks"]) == 4
    assert lib.verdict(out.run_id)["verdict"] == "passed"
    assert "passed every gate" in v["message"]


def test_a_martingale_yields_nothing_and_says_so(tmp_path: Path) -> None:
    out, lib = _search(tmp_path, seed=12, revert=0.0)
    v = out.verdict
    assert v is not None and v["verdict"] == "none_passed", v["message"]
    assert v["passed"] == 0 and v["strategies"] == [] and out.ranking == ()
    assert v["candidates"] == out.n_ok == 1_500
    assert 1 <= v["effective_trials"] < v["candidates"]
    assert v["message"].startswith("0 of 1,500 candidates passed")
    assert v["best_rejected"] and all(r["failed"] for r in v["best_rejected"])
    assert lib.top(out.run_id) == []  # nothing ranked, nothing padded
    assert lib.verdict(out.run_id) == v
