"""PBO by CSCV, the effective number of trials and the minimum track record length."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy.stats import norm, rankdata

from aio_ray.strategies.dsr import min_track_record_length
from aio_ray.strategies.overfitting import column_sharpe, effective_trials, pbo_cscv


def _noise(seed: int, t: int = 1000, n: int = 200) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.01, (t, n))


def _grouped(seed: int, n_groups: int = 5, copies: int = 40, t: int = 500) -> np.ndarray:
    """``n_groups`` independent base series, each copied ``copies`` times with small noise."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 0.01, (t, n_groups))
    return np.repeat(base, copies, axis=1) + rng.normal(0.0, 0.002, (t, n_groups * copies))


def _reference_logits(r: np.ndarray, n_blocks: int) -> np.ndarray:
    """CSCV logits the slow, obvious way: every split, Sharpe by np.std, ranks by rankdata."""
    blocks = np.array_split(np.arange(r.shape[0]), n_blocks)

    def sharpe(x: np.ndarray) -> np.ndarray:
        sd = x.std(axis=0, ddof=1)
        out = np.zeros(x.shape[1])
        ok = sd > 0
        out[ok] = x.mean(axis=0)[ok] / sd[ok]
        return out

    logits = []
    for ins in itertools.combinations(range(n_blocks), n_blocks // 2):
        is_rows = np.concatenate([blocks[b] for b in ins])
        oos_rows = np.concatenate([blocks[b] for b in range(n_blocks) if b not in ins])
        best = int(np.argmax(sharpe(r[is_rows])))
        omega = rankdata(sharpe(r[oos_rows]))[best] / (r.shape[1] + 1)
        logits.append(math.log(omega / (1 - omega)))
    return np.array(logits)


# --------------------------------------------------------------------------- PBO


def test_pbo_of_pure_noise_is_near_one_half() -> None:
    results = [pbo_cscv(_noise(seed), n_blocks=16) for seed in range(4)]
    mean_pbo = float(np.mean([res.pbo for res in results]))
    assert 0.35 <= mean_pbo <= 0.65
    assert all(0.0 < res.pbo < 1.0 for res in results)
    # Selecting on noise: what is good in-sample is, if anything, worse out-of-sample.
    assert float(np.mean([res.degradation_slope for res in results])) < 0.05
    assert 0.2 < float(np.mean([res.prob_oos_loss for res in results])) < 0.8


def test_pbo_of_a_planted_edge_is_near_zero() -> None:
    r = _noise(9)
    r[:, 7] += 0.003  # daily mean of 0.3 standard deviations
    res = pbo_cscv(r, n_blocks=16)
    assert res.pbo < 0.1
    assert res.prob_oos_loss == 0.0
    assert float(np.median(res.logits)) > 3.0  # the winner is (near) the best out of sample


def test_pbo_matches_a_brute_force_reference() -> None:
    rng = np.random.default_rng(3)
    r = rng.normal(0.0, 0.01, (63, 9))  # 63 rows: blocks of 11 and 10 rows
    r[:, 2] = 0.0  # never traded: Sharpe 0
    r[:, 5] = r[:, 4]  # an exact tie
    r[:30, 6] = 0.0  # traded only late
    res = pbo_cscv(r, n_blocks=6)
    expected = _reference_logits(r, 6)
    assert res.n_combinations == math.comb(6, 3) == 20
    assert not res.sampled
    np.testing.assert_allclose(np.sort(res.logits), np.sort(expected), rtol=1e-12)
    assert res.pbo == pytest.approx(float(np.mean(expected <= 0)))


def test_mirror_image_candidates_are_always_overfit() -> None:
    half = np.array([0.02, 0.01, 0.03, 0.02])
    col = np.concatenate((half, -half))
    r = np.column_stack((col, -col))  # each wins in one half and loses in the other
    res = pbo_cscv(r, n_blocks=2)
    assert res.n_combinations == 2
    np.testing.assert_allclose(res.logits, [math.log(0.5), math.log(0.5)])
    assert res.pbo == 1.0
    assert res.prob_oos_loss == 1.0
    assert math.isnan(res.degradation_slope)  # the in-sample Sharpe never varies


def test_pbo_samples_a_deterministic_subset_of_splits() -> None:
    r = _noise(1, t=400, n=30)
    first = pbo_cscv(r, n_blocks=16, max_combinations=2000, seed=5)
    again = pbo_cscv(r, n_blocks=16, max_combinations=2000, seed=5)
    other = pbo_cscv(r, n_blocks=16, max_combinations=2000, seed=6)
    assert first.sampled and first.n_combinations == 2000 < math.comb(16, 8)
    np.testing.assert_array_equal(first.logits, again.logits)
    assert not np.array_equal(first.logits, other.logits)
    full = pbo_cscv(r, n_blocks=8, max_combinations=2000)
    assert not full.sampled and full.n_combinations == math.comb(8, 4) == 70


def test_pbo_result_serializes_to_json_with_nan_as_null() -> None:
    res = pbo_cscv(_noise(2, t=200, n=20), n_blocks=4)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["n_combinations"] == 6 and d["n_candidates"] == 20 and d["n_periods"] == 200
    assert d["pbo"] == pytest.approx(res.pbo)
    assert "logits" not in d
    bad = pbo_cscv(np.zeros((10, 1)), n_blocks=2).to_dict()
    assert bad["pbo"] is None and bad["degradation_slope"] is None
    assert "N=1" in bad["reason"]


def test_pbo_not_computable_gives_nan_and_a_reason() -> None:
    one = pbo_cscv(_noise(0, t=100, n=1))
    assert math.isnan(one.pbo) and "at least 2 candidates" in (one.reason or "")
    short = pbo_cscv(_noise(0, t=31, n=10), n_blocks=16)
    assert math.isnan(short.pbo) and "T >= 2 * n_blocks = 32" in (short.reason or "")
    assert short.logits.size == 0 and short.n_combinations == 0


@pytest.mark.parametrize("n_blocks", [3, 0, -2, 1])
def test_pbo_rejects_bad_block_counts(n_blocks: int) -> None:
    with pytest.raises(ValueError, match="n_blocks must be an even integer >= 2"):
        pbo_cscv(_noise(0, t=100, n=5), n_blocks=n_blocks)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_returns_are_rejected_with_their_location(bad: float) -> None:
    r = _noise(0, t=100, n=5)
    r[17, 3] = bad
    with pytest.raises(ValueError, match=r"non-finite.*row\) 17, candidate \(column\) 3"):
        pbo_cscv(r)
    with pytest.raises(ValueError, match="non-finite"):
        effective_trials(r)


def test_one_dimensional_returns_are_rejected() -> None:
    with pytest.raises(ValueError, match="2-D array"):
        pbo_cscv(np.zeros(100))
    with pytest.raises(ValueError, match="T >= 2"):
        effective_trials(np.zeros((1, 4)))


def test_zero_variance_columns_have_sharpe_zero() -> None:
    r = np.column_stack((np.zeros(50), np.full(50, 0.001), _noise(0, t=50, n=1)[:, 0]))
    sr = column_sharpe(r)
    assert sr[0] == 0.0 and sr[1] == 0.0
    assert sr[2] == pytest.approx(r[:, 2].mean() / r[:, 2].std(ddof=1))


# --------------------------------------------------------------------------- effective trials


def test_copies_of_five_series_are_five_trials() -> None:
    r = _grouped(0)
    res = effective_trials(r)
    assert res.n_raw == 200 and res.n_effective == 5 and res.method == "silhouette"
    groups = np.arange(200) // 40
    for g in range(5):  # each group is exactly one cluster
        assert np.unique(res.labels[groups == g]).size == 1
    np.testing.assert_array_equal(res.labels, groups)  # ids in order of first column
    rep = r.reshape(500, 5, 40).mean(axis=2)
    np.testing.assert_allclose(res.representative_sharpes, column_sharpe(rep), rtol=1e-12)
    assert res.sharpe_variance == pytest.approx(float(np.var(column_sharpe(rep), ddof=1)))


def test_independent_columns_are_each_a_trial() -> None:
    res = effective_trials(_noise(4, t=500, n=20))
    assert 18 <= res.n_effective <= 20
    assert abs(res.mean_correlation) < 0.05


def test_identical_columns_are_one_trial() -> None:
    rng = np.random.default_rng(2)
    r = rng.normal(0.0, 0.01, (300, 1)) + rng.normal(0.0, 1e-4, (300, 30))
    res = effective_trials(r)
    assert res.n_effective == 1 and res.sharpe_variance == 0.0


def test_zero_variance_columns_form_one_cluster() -> None:
    r = np.hstack((_grouped(1), np.zeros((500, 3)), np.full((500, 2), 0.001)))
    res = effective_trials(r)
    assert res.n_effective == 6 and res.n_zero_variance == 5
    assert np.unique(res.labels[200:]).size == 1
    assert res.representative_sharpes[res.labels[200]] == 0.0
    only_zeros = effective_trials(np.zeros((100, 7)))
    assert only_zeros.n_effective == 1 and only_zeros.method == "trivial"
    assert only_zeros.sharpe_variance == 0.0


def test_subsampled_clustering_finds_the_same_trials() -> None:
    r = _grouped(5)
    full = effective_trials(r)
    part = effective_trials(r, max_candidates=50, seed=3, chunk_columns=16)
    assert part.sampled and part.n_clustered == 50 and not full.sampled
    assert part.n_effective == full.n_effective == 5
    np.testing.assert_array_equal(part.labels, full.labels)
    d = json.loads(json.dumps(part.to_dict()))
    assert d["n_effective"] == 5 and d["sampled"] is True and d["largest_cluster"] == 40


# --------------------------------------------------------------------------- MinTRL


def test_min_track_record_length_matches_the_formula() -> None:
    z = 1.6448536269514722  # standard normal 95% quantile
    expected = 1.0 + (1.0 + 0.5 * 0.1 + (5.0 - 1.0) / 4.0 * 0.01) * (z / 0.1) ** 2
    got = min_track_record_length(0.1, skew=-0.5, kurtosis=5.0)
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx(287.7877, abs=1e-3)
    normal = min_track_record_length(0.2, 0.0, 3.0, target_sharpe=0.05, confidence=0.99)
    z99 = float(norm.ppf(0.99))
    assert normal == pytest.approx(1.0 + (1.0 + 0.5 * 0.04) * (z99 / 0.15) ** 2, rel=1e-12)


def test_min_track_record_length_is_infinite_without_an_edge() -> None:
    assert min_track_record_length(0.1, 0.0, 3.0, target_sharpe=0.1) == math.inf
    assert min_track_record_length(-0.05, 0.0, 3.0) == math.inf
    with pytest.raises(ValueError, match="confidence"):
        min_track_record_length(0.1, 0.0, 3.0, confidence=1.0)
