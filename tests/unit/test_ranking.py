"""Overfitting-aware ranking: DSR math against hand computation, gates, diversity, determinism."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import random
from statistics import NormalDist

import numpy as np
import pytest
from scipy import stats

from aio_ray.strategies.dsr import (
    ReturnMoments,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    return_moments,
)
from aio_ray.strategies.ranking import (
    Candidate,
    FoldOOS,
    RankingConfig,
    param_distance,
    rank,
    score_candidates,
)

PHI = NormalDist()  # an independent normal distribution (stdlib), not scipy


def _hand_dsr(sr: float, t: int, skew: float, kurt: float, n: int, var: float) -> float:
    """The DSR formula of Bailey & Lopez de Prado (2014), written out with the stdlib."""
    gamma = 0.5772156649015329
    sr0 = math.sqrt(var) * (
        (1 - gamma) * PHI.inv_cdf(1 - 1 / n) + gamma * PHI.inv_cdf(1 - 1 / (n * math.e))
    )
    z = (sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return PHI.cdf(z)


# ----------------------------------------------------------------------------- DSR


def test_dsr_reproduces_the_papers_worked_example():
    # Bailey & Lopez de Prado (2014), numerical example: annualized SR 2.5 over 5 years of
    # daily returns (T = 1250), skew -3, kurtosis 10, N = 100 trials, annualized V[SR] = 0.5.
    sr, t, skew, kurt, n, var = 2.5 / math.sqrt(250), 1250, -3.0, 10.0, 100, 0.5 / 250
    hand = _hand_dsr(sr, t, skew, kurt, n, var)
    assert deflated_sharpe_ratio(sr, t, skew, kurt, n, var) == pytest.approx(hand, abs=1e-9)
    assert hand == pytest.approx(0.9004, abs=1e-4)  # the paper's figure
    assert expected_max_sharpe(n, var) == pytest.approx(0.1132, abs=1e-4)  # paper: SR0 ~ 0.1132


@pytest.mark.parametrize(
    "sr,t,skew,kurt,n,var",
    [
        (0.05, 500, 0.0, 3.0, 10, 0.001),
        (0.12, 2000, 0.4, 5.0, 1000, 0.0005),
        (-0.02, 300, -1.0, 8.0, 50, 0.002),
        (0.30, 60, 1.2, 4.5, 2, 0.01),
    ],
)
def test_dsr_matches_the_formula_written_out(sr, t, skew, kurt, n, var):
    assert deflated_sharpe_ratio(sr, t, skew, kurt, n, var) == pytest.approx(
        _hand_dsr(sr, t, skew, kurt, n, var), abs=1e-9
    )


def test_one_trial_deflates_nothing_so_dsr_is_the_psr_against_zero():
    sr, t = 0.08, 400
    z = sr * math.sqrt(t - 1) / math.sqrt(1 + (3 - 1) / 4 * sr**2)
    assert expected_max_sharpe(1, 0.01) == 0.0
    assert deflated_sharpe_ratio(sr, t, 0.0, 3.0, 1, 0.01) == pytest.approx(PHI.cdf(z), abs=1e-12)
    assert probabilistic_sharpe_ratio(sr, 0.0, t) == pytest.approx(PHI.cdf(z), abs=1e-12)


def test_dsr_falls_as_the_number_of_trials_grows():
    values = [
        deflated_sharpe_ratio(0.1, 1000, -0.5, 6.0, n, 0.002)
        for n in (1, 2, 10, 100, 1_000, 100_000)
    ]
    assert all(a > b for a, b in itertools.pairwise(values)), values
    assert values[0] > 0.99 and values[-1] < 0.5


def test_return_moments_are_the_sample_moments():
    rng = np.random.default_rng(3)
    r = rng.standard_t(5, size=3000) * 0.001 + 0.0002
    m = return_moments(np.concatenate([r, [np.nan]]))
    assert m.n_obs == 3000
    assert m.sharpe == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-12)
    assert m.skew == pytest.approx(stats.skew(r), rel=1e-9)
    assert m.kurtosis == pytest.approx(stats.kurtosis(r) + 3.0, rel=1e-9)
    flat = return_moments(np.zeros(10))
    assert not flat.is_finite()


# ----------------------------------------------------------------------------- fixtures


def _moments(sr: float, n_obs: int = 500) -> ReturnMoments:
    return ReturnMoments(sharpe=sr, skew=0.0, kurtosis=3.0, n_obs=n_obs)


def _loose(**kw: object) -> RankingConfig:
    """The default config with the significance gates off (for tests of the scoring and the
    diversity mechanics; the gates are tested on their own below)."""
    base: dict[str, object] = {
        "min_dsr": 0.0,
        "max_pbo": 1.0,
        "min_trl_confidence": 0.0,
        "min_sharpe": -1e9,
        "min_profit_factor": 0.0,
    }
    return RankingConfig(**(base | kw))  # type: ignore[arg-type]


def _cand(
    sid: str,
    family: str = "ema_cross",
    params: dict | None = None,
    *,
    fold_sr=(1.5, 1.2, 1.8, 1.0),
    dd: float = 0.08,
    pf: float = 1.6,
    trades_per_fold: int = 20,
    sr: float = 0.08,
    timeframe: str = "1h",
) -> Candidate:
    folds = tuple(FoldOOS(i, s, dd, pf, trades_per_fold) for i, s in enumerate(fold_sr))
    return Candidate(
        sid, family, params or {"fast": 10, "slow": 50}, folds, _moments(sr), timeframe
    )


# ----------------------------------------------------------------------------- gates and scores


def test_a_strategy_below_the_minimum_trades_is_never_ranked_however_good():
    star = _cand(
        "star",
        params={"fast": 5, "slow": 20},
        fold_sr=(4.0, 4.0, 4.0, 4.0),
        sr=0.3,
        pf=5.0,
        trades_per_fold=2,
    )  # 8 trades in total
    ok = _cand("ok", params={"fast": 30, "slow": 200})
    ranked = rank([star, ok], n_trials=10, top=5, config=_loose(min_trades=30))
    assert [r.strategy_id for r in ranked] == ["ok"]
    scored = {
        s.candidate.strategy_id: s
        for s in score_candidates([star, ok], 10, config=_loose(min_trades=30))
    }
    assert scored["star"].score > scored["ok"].score  # it would have won on score alone
    assert (
        not scored["star"].eligible
        and "8 OOS trades (forced end exits not counted: 0) < min_trades 30"
        in scored["star"].gate_failures[0]
    )
    # with the gate lowered it is ranked first: the gate, not the score, excluded it
    assert rank([star, ok], n_trials=10, config=_loose(min_trades=5))[0].strategy_id == "star"


def test_non_finite_or_missing_oos_evidence_is_gated():
    nan_fold = _cand("nan", params={"fast": 1, "slow": 2}, fold_sr=(1.0, float("nan"), 1.0, 1.0))
    no_folds = dataclasses.replace(_cand("none", params={"fast": 3, "slow": 4}), folds=())
    flat = dataclasses.replace(
        _cand("flat", params={"fast": 5, "slow": 6}),
        moments=ReturnMoments(math.nan, math.nan, math.nan, 100),
    )
    good = _cand("good", params={"fast": 40, "slow": 90})
    assert [
        r.strategy_id for r in rank([nan_fold, no_folds, flat, good], n_trials=4, config=_loose())
    ] == ["good"]


def test_score_is_the_sum_of_weighted_components_and_each_moves_the_right_way():
    cfg = RankingConfig()
    base = _cand("base")
    [s] = score_candidates([base], 1, config=cfg)
    assert s.score == pytest.approx(sum(s.contributions.values()), abs=1e-12)
    assert 0.0 <= s.score <= 1.0
    w = cfg.weights()
    for k, v in s.contributions.items():
        assert v == pytest.approx(w[k] * s.components[k])
    # criteria by hand: mean, worst drawdown, median profit factor, fold stability
    assert s.criteria["sharpe"] == pytest.approx(np.mean([1.5, 1.2, 1.8, 1.0]))
    assert s.criteria["sharpe_dispersion"] == pytest.approx(np.std([1.5, 1.2, 1.8, 1.0]))
    assert s.criteria["positive_folds"] == 1.0 and s.criteria["trades"] == 80
    # one trial: no deflation, the PSR against a zero benchmark
    psr = PHI.cdf(0.08 * math.sqrt(499) / math.sqrt(1 + 0.5 * 0.08**2))
    assert s.criteria["dsr"] == pytest.approx(psr, abs=1e-9)

    def score(**kw) -> float:
        return score_candidates([_cand("x", **kw)], 1, config=cfg)[0].score

    assert score(dd=0.20) < score(dd=0.05)
    assert score(pf=1.1) < score(pf=1.9)
    assert score(fold_sr=(3.0, -1.0, 2.5, 0.3)) < score(
        fold_sr=(1.2, 1.2, 1.2, 1.2)
    )  # same mean, unstable
    assert score(sr=0.02) < score(sr=0.10)  # lower DSR


def test_more_trials_lower_the_dsr_criterion_and_the_score():
    c = _cand("c", sr=0.06)
    few = score_candidates([c], 5, sharpe_variance=0.001)[0]
    many = score_candidates([c], 5000, sharpe_variance=0.001)[0]
    assert many.criteria["dsr"] < few.criteria["dsr"] and many.score < few.score


def test_n_trials_must_cover_the_candidates_and_ids_must_be_unique():
    a, b = _cand("a"), _cand("b", params={"fast": 1, "slow": 2})
    with pytest.raises(ValueError, match="n_trials"):
        rank([a, b], n_trials=1)
    with pytest.raises(ValueError, match="appears twice"):
        rank([a, a], n_trials=5)


# ----------------------------------------------------------------------------- holdout exclusion


def test_holdout_is_not_an_argument_anywhere_in_the_ranking():
    for fn in (rank, score_candidates):
        assert not any("holdout" in p for p in inspect.signature(fn).parameters)
    assert not any("holdout" in f.name for f in dataclasses.fields(Candidate))
    assert not any("holdout" in f.name for f in dataclasses.fields(FoldOOS))
    with pytest.raises(TypeError):
        rank([_cand("a")], n_trials=1, holdout={"a": 3.0})  # type: ignore[call-arg]


# ----------------------------------------------------------------------------- diversity


def test_a_cluster_of_near_identical_params_yields_one_pick_then_the_next_distinct_ones():
    ranges = {"ema_cross": {"fast": (2.0, 100.0), "slow": (10.0, 400.0)}}
    # five neighbours of (10, 50): the best scores of the pool, a hair apart
    cluster = [
        _cand(f"c{i}", params={"fast": 10 + i, "slow": 50 + i}, fold_sr=(2.0 - 0.01 * i,) * 4)
        for i in range(5)
    ]
    far_a = _cand("far_a", params={"fast": 60, "slow": 300}, fold_sr=(1.2,) * 4)
    far_b = _cand(
        "far_b", family="rsi_revert", params={"length": 14, "lower": 30}, fold_sr=(1.0,) * 4
    )
    far_c = _cand("far_c", family="breakout", params={"lookback": 20}, fold_sr=(0.9,) * 4)
    cfg = _loose(max_per_family=3, min_param_distance=0.15)
    ranked = rank(
        cluster + [far_a, far_b, far_c], n_trials=50, top=4, param_ranges=ranges, config=cfg
    )
    assert [r.strategy_id for r in ranked] == ["c0", "far_a", "far_b", "far_c"]
    assert ranked[0].neighbours_skipped == ("c1", "c2", "c3", "c4")
    assert "4 near-identical" in ranked[0].rationale
    # without the diversity rule the cluster would have filled the top
    loose = _loose(max_per_family=5, min_param_distance=0.0)
    assert [r.strategy_id for r in rank(cluster + [far_a], n_trials=50, top=4, config=loose)] == [
        "c0",
        "c1",
        "c2",
        "c3",
    ]


def test_at_most_k_picks_per_family():
    cands = [
        _cand(
            f"e{i}", params={"fast": 5 + 20 * i, "slow": 100 + 60 * i}, fold_sr=(2.0 - 0.1 * i,) * 4
        )
        for i in range(4)
    ]
    cands.append(_cand("other", family="macd", params={"signal": 9}, fold_sr=(0.5,) * 4))
    ranked = rank(cands, n_trials=10, top=5, config=_loose(max_per_family=2))
    assert [r.strategy_id for r in ranked] == ["e0", "e1", "other"]


def test_param_distance_is_normalized_and_handles_categoricals_and_timeframes():
    rng = {"a": (0.0, 10.0), "b": (0.0, 1.0)}
    assert param_distance({"a": 0, "b": 0.0}, {"a": 0, "b": 0.0}, rng) == 0.0
    # one of three dimensions (a, b, timeframe) differs by half its range
    assert param_distance({"a": 0, "b": 0.0}, {"a": 5, "b": 0.0}, rng) == pytest.approx(
        math.sqrt(0.25 / 3)
    )
    assert param_distance({"a": 0, "ma": "ema"}, {"a": 0, "ma": "sma"}, rng) == pytest.approx(
        math.sqrt(1 / 3)
    )
    assert param_distance({"a": 0}, {"a": 0}, rng, ("1h", "4h")) == pytest.approx(math.sqrt(1 / 2))
    assert param_distance({"a": -50}, {"a": 50}, rng) == pytest.approx(
        math.sqrt(1 / 2)
    )  # clipped at 1


def test_same_params_on_another_timeframe_are_distinct_picks():
    a = _cand("a_1h", timeframe="1h")
    b = _cand("a_4h", timeframe="4h", fold_sr=(1.4, 1.1, 1.7, 0.9))
    assert [r.strategy_id for r in rank([a, b], n_trials=2, config=_loose())] == ["a_1h", "a_4h"]


# ----------------------------------------------------------------------------- determinism


def test_ordering_is_deterministic_and_ties_break_by_strategy_id_whatever_the_input_order():
    twins = [_cand(sid, family=f"fam_{sid}") for sid in ("delta", "alpha", "charlie", "bravo")]
    better = _cand("zulu", family="fam_z", fold_sr=(2.5, 2.4, 2.6, 2.5))
    pool = twins + [better]
    expected = ["zulu", "alpha", "bravo", "charlie", "delta"]
    for seed in range(5):
        shuffled = pool[:]
        random.Random(seed).shuffle(shuffled)
        ranked = rank(shuffled, n_trials=20, top=5, sharpe_variance=0.001, config=_loose())
        assert [r.strategy_id for r in ranked] == expected
        assert [r.rank for r in ranked] == [1, 2, 3, 4, 5]
    scores = [
        r.score for r in rank(pool, n_trials=20, top=5, sharpe_variance=0.001, config=_loose())
    ]
    assert scores[1] == scores[2] == scores[3] == scores[4] < scores[0]


def test_rationale_names_the_evidence():
    [r] = rank([_cand("only")], n_trials=7, top=1, config=_loose())
    for piece in (
        "#1 ema_cross(fast=10, slow=50) on 1h",
        "DSR",
        "after 7 trials",
        "4/4 folds positive",
        "80 trades",
        "out-of-sample",
    ):
        assert piece in r.rationale, (piece, r.rationale)
    assert set(r.criteria) >= {
        "dsr",
        "sharpe",
        "max_drawdown",
        "profit_factor",
        "positive_folds",
        "sharpe_dispersion",
        "trades",
    }


def test_config_is_strict_and_frozen():
    with pytest.raises(ValueError):
        RankingConfig(min_trade=3)  # typo: unknown field
    with pytest.raises(ValueError):
        RankingConfig(w_dsr=0, w_sharpe=0, w_stability=0, w_drawdown=0, w_profit_factor=0)
    cfg = RankingConfig()
    with pytest.raises(ValueError):
        cfg.min_trades = 3  # type: ignore[misc]
    assert sum(cfg.weights().values()) == pytest.approx(1.0)


def test_the_default_gates_reject_noise_and_name_every_failure():
    # a short record with a modest Sharpe: passes nothing of the default significance gates
    c = _cand("weak")
    [s] = score_candidates([c], 500, sharpe_variance=0.02)
    assert not s.eligible
    text = " | ".join(s.gate_failures)
    assert "deflated Sharpe" in text and "< min_dsr 0.95" in text


def test_forced_end_exits_do_not_count_towards_the_trade_gate():
    c = _cand("edge")
    trades = sum(f.trades for f in c.folds)
    cfg = _loose(min_trades=trades)
    assert score_candidates([c], 1, config=cfg)[0].eligible
    c2 = dataclasses.replace(c, end_exits=1)
    [s] = score_candidates([c2], 1, config=cfg)
    assert not s.eligible and "forced end exits not counted: 1" in s.gate_failures[0]


def test_profit_factor_pbo_and_track_record_gates():
    c = _cand("x")
    base = _loose(min_trades=0)
    losing = dataclasses.replace(c, profit_factor=0.9)
    assert any(
        "profit factor 0.90 <= min_profit_factor 1.0" in g
        for g in score_candidates([losing], 1, config=_loose(min_trades=0, min_profit_factor=1.0))[
            0
        ].gate_failures
    )
    overfit = dataclasses.replace(c, pbo=0.7)
    assert any(
        "PBO 0.70 >= max_pbo 0.5" in g
        for g in score_candidates([overfit], 1, config=_loose(min_trades=0, max_pbo=0.5))[
            0
        ].gate_failures
    )
    unknown = dataclasses.replace(c, pbo=None, pbo_reason="T < 2 * n_blocks")
    assert any(
        "PBO not computable (T < 2 * n_blocks)" in g
        for g in score_candidates([unknown], 1, config=_loose(min_trades=0, max_pbo=0.5))[
            0
        ].gate_failures
    )
    short = dataclasses.replace(c, moments=dataclasses.replace(c.moments, n_obs=3))
    fails = score_candidates([short], 1, config=_loose(min_trades=0, min_trl_confidence=0.95))[
        0
    ].gate_failures
    assert any("minimum track record length" in g for g in fails)
    assert score_candidates([c], 1, config=base)[0].eligible
