"""A population evaluated in one kernel call equals evaluate_candidate, candidate by candidate,
for every family, with costs, stops, targets and the pattern filter; bad candidates fail alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aio_ray.strategies.engine import BacktestConfig
from aio_ray.strategies.evaluate import evaluate_candidate, split_holdout
from aio_ray.strategies.population import METRIC_INDEX, evaluate_population
from aio_ray.strategies.sampling import make_sampler
from aio_ray.strategies.space import SPACES, grid
from aio_ray.strategies.walkforward import make_folds
from tests.support.barsynth import hourly_bars


@pytest.fixture(scope="module")
def wf():  # type: ignore[no-untyped-def]
    out, *_ = split_holdout({"1h": hourly_bars(2000, seed=11)}, 0.2)
    return out


COSTS = BacktestConfig(commission=3.5, slippage_points=1.0)


@pytest.mark.parametrize("family", sorted(SPACES))
def test_population_equals_evaluate_candidate_for_every_set(wf, family: str) -> None:  # type: ignore[no-untyped-def]
    folds, _ = make_folds(len(wf["1h"]), 3, "anchored", holdout_fraction=0.0, warmup_bars=80)
    params = grid(family, 12)
    params += [
        dict(params[0], stop_atr=1.5, take_atr=3.0),
        dict(params[1], stop_atr=2.0),
        dict(params[1], pattern_filter="hammer", pattern_lookback=2),
    ]
    params += make_sampler("random", family, 1, budget=10).ask(10)
    res = evaluate_population(wf["1h"], family, params, folds, COSTS)
    assert all(e is None for e in res.error), res.error
    for i, p in enumerate(params):
        loc = evaluate_candidate(wf, family, p, "1h", folds, COSTS)
        assert res.objective[i] == pytest.approx(loc.objective, rel=1e-12, abs=1e-12)
        assert res.oos_trades[i] == loc.oos_trades
        np.testing.assert_allclose(
            [res.sharpe[i], res.skew[i], res.kurtosis[i], res.n_obs[i]],
            dataclasses.astuple(loc.moments),
            rtol=1e-9,
            equal_nan=True,
        )
        np.testing.assert_allclose(
            res.returns[i, res.layout.oos_columns], loc.period_returns, rtol=1e-12, atol=1e-15
        )
        for f in loc.folds:
            for w, m in ((2 * f.fold, f.is_metrics), (2 * f.fold + 1, f.oos_metrics)):
                got = res.window_metrics(i, w)
                for k, v in m.items():
                    assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-9, nan_ok=True), (k, p)


def test_an_invalid_set_fails_alone_with_its_reason(wf) -> None:  # type: ignore[no-untyped-def]
    folds, _ = make_folds(len(wf["1h"]), 2, holdout_fraction=0.0, warmup_bars=80)
    good = grid("ma_cross", 16)
    bad = dict(good[0], fast=50, slow=20)
    res = evaluate_population(wf["1h"], "ma_cross", [good[0], bad, good[1]], folds)
    assert res.error[0] is None and res.error[2] is None
    assert res.error[1] is not None and "fast < slow" in res.error[1]
    assert np.isnan(res.objective[1]) and np.isfinite(res.objective[[0, 2]]).all()
    assert np.isnan(res.returns[1]).all() and res.oos_trades[1] == 0


def test_forced_end_of_window_exits_are_counted(wf) -> None:  # type: ignore[no-untyped-def]
    folds, _ = make_folds(len(wf["1h"]), 2, holdout_fraction=0.0, warmup_bars=80)
    # ma_cross is always in the market: every window ends with one forced exit
    res = evaluate_population(wf["1h"], "ma_cross", grid("ma_cross", 4), folds)
    traded = res.metrics[:, :, METRIC_INDEX["trades"]] > 0
    assert (res.end_exits[traded] == 1).all()
