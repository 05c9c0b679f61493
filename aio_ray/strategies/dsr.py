"""The Deflated Sharpe Ratio (Bailey & Lopez de Prado, 2014) and its parts.

All Sharpe ratios here are *per period* (not annualized): mean / standard deviation of the
strategy's per-period returns, estimated from ``n_obs`` observations. Compare trials on the
same period (e.g. daily out-of-sample returns) so their Sharpe ratios share a unit.

- :func:`expected_max_sharpe`: the Sharpe ratio the best of ``N`` unskilled trials reaches by
  luck, ``SR0 = sqrt(V) * ((1 - g) * Z(1 - 1/N) + g * Z(1 - 1/(N e)))`` with ``V`` the variance
  of the trials' Sharpe ratios, ``g`` the Euler-Mascheroni constant and ``Z`` the standard
  normal quantile.
- :func:`probabilistic_sharpe_ratio`: ``PSR(SR*) = Phi((SR - SR*) sqrt(T - 1) /
  sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))``, the probability that the true Sharpe ratio
  exceeds ``SR*`` given the estimate's non-normality (``kurt`` is plain kurtosis, 3 if normal).
- :func:`deflated_sharpe_ratio`: ``PSR(SR0)``: the probability that the strategy's skill is
  real after ``N`` trials.
- :func:`min_track_record_length`: ``MinTRL = 1 + (1 - skew * SR + (kurt - 1) / 4 * SR^2) *
  (Z(c) / (SR - SR*))^2`` periods (Bailey & Lopez de Prado, 2012): how many returns it takes
  for the estimate ``SR`` to beat ``SR*`` with confidence ``c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "EULER_GAMMA",
    "ReturnMoments",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "min_track_record_length",
    "probabilistic_sharpe_ratio",
    "return_moments",
]

EULER_GAMMA = 0.5772156649015329
"""The Euler-Mascheroni constant."""


@dataclass(frozen=True)
class ReturnMoments:
    """What the DSR needs of a return series.

    Attributes
    ----------
    sharpe
        Per-period Sharpe ratio (mean / sample standard deviation), not annualized.
    skew
        Skewness of the returns (0 if normal).
    kurtosis
        Plain (non-excess) kurtosis of the returns (3 if normal).
    n_obs
        Number of returns (periods) the estimate uses.
    """

    sharpe: float
    skew: float
    kurtosis: float
    n_obs: int

    def is_finite(self) -> bool:
        """True when every moment is a finite number and ``n_obs >= 2``."""
        return self.n_obs >= 2 and all(
            math.isfinite(v) for v in (self.sharpe, self.skew, self.kurtosis)
        )


def return_moments(returns: np.ndarray) -> ReturnMoments:
    """Per-period Sharpe ratio, skewness and plain kurtosis of ``returns`` (fractions per period).

    NaNs are dropped. A series with fewer than 2 values or zero variance gives NaN moments
    (a strategy that never moved has no Sharpe ratio).
    """
    r = np.asarray(returns, dtype=np.float64)
    r = r[~np.isnan(r)]
    n = int(r.size)
    if n < 2:
        return ReturnMoments(math.nan, math.nan, math.nan, n)
    sd = float(np.std(r, ddof=1))
    if not sd > 0.0:
        return ReturnMoments(math.nan, math.nan, math.nan, n)
    # optional heavy dependency: scipy.stats costs about 1 s to import, only the moments need it
    from scipy.stats import kurtosis as _kurtosis
    from scipy.stats import skew as _skew

    return ReturnMoments(
        sharpe=float(np.mean(r)) / sd,
        skew=float(_skew(r, bias=True)),
        kurtosis=float(_kurtosis(r, fisher=False, bias=True)),
        n_obs=n,
    )


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum per-period Sharpe ratio of ``n_trials`` unskilled trials.

    Parameters
    ----------
    n_trials
        Number of independent trials tried (N >= 1). With N = 1 nothing was selected and the
        benchmark is 0.
    sharpe_variance
        Variance across the trials of their per-period Sharpe ratios (>= 0).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if not sharpe_variance >= 0.0:
        raise ValueError(f"sharpe_variance must be >= 0, got {sharpe_variance}")
    if n_trials == 1:
        return 0.0
    from scipy.stats import norm  # optional heavy dependency: scipy.stats costs about 1 s

    z1 = float(norm.ppf(1.0 - 1.0 / n_trials))
    z2 = float(norm.ppf(1.0 - 1.0 / (n_trials * math.e)))
    return math.sqrt(sharpe_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """Probability that the true per-period Sharpe ratio exceeds ``benchmark``.

    ``sharpe`` is the estimate from ``n_obs`` returns with the given skewness and plain
    kurtosis. Returns a probability in [0, 1].
    """
    if n_obs < 2:
        raise ValueError(f"n_obs must be >= 2, got {n_obs}")
    # 1 - skew*SR + (kurt-1)/4*SR^2 >= (1 - skew*SR/2)^2 >= 0 for any real distribution
    # (kurt >= 1 + skew^2); the floor only guards inconsistent inputs.
    var_term = max(1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe, 1e-12)
    z = (sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var_term)
    from scipy.stats import norm  # optional heavy dependency: scipy.stats costs about 1 s

    return float(norm.cdf(z))


def deflated_sharpe_ratio(
    sharpe: float, n_obs: int, skew: float, kurtosis: float, n_trials: int, sharpe_variance: float
) -> float:
    """The Deflated Sharpe Ratio: PSR against the expected maximum Sharpe of ``n_trials`` trials.

    Parameters
    ----------
    sharpe
        The selected strategy's per-period (not annualized) Sharpe ratio.
    n_obs
        Number of returns behind it.
    skew, kurtosis
        Skewness and plain kurtosis (3 if normal) of those returns.
    n_trials
        How many trials the search tried (N >= 1); more trials deflate more.
    sharpe_variance
        Variance of the per-period Sharpe ratios across the trials.

    Returns
    -------
    float
        Probability in [0, 1] that the Sharpe ratio reflects skill, not selection luck.
    """
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(sharpe, sr0, n_obs, skew, kurtosis)


def min_track_record_length(
    sharpe: float,
    skew: float,
    kurtosis: float,
    target_sharpe: float = 0.0,
    confidence: float = 0.95,
) -> float:
    """Minimum Track Record Length (Bailey & Lopez de Prado, 2012), in periods.

    The number of returns needed before a per-period Sharpe ratio estimate ``sharpe`` (with
    the returns' skewness and plain kurtosis, 3 if normal) exceeds ``target_sharpe`` at the
    given one-sided ``confidence``: ``1 + (1 - skew * SR + (kurt - 1) / 4 * SR^2) *
    (Z(confidence) / (SR - SR*))^2``. Both Sharpe ratios are per period (not annualized), so
    the result counts periods of that frequency (e.g. days). ``+inf`` when ``sharpe <=
    target_sharpe``: no track record is long enough.
    """
    values = {"sharpe": sharpe, "skew": skew, "kurtosis": kurtosis, "target_sharpe": target_sharpe}
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if sharpe <= target_sharpe:
        return math.inf
    var_term = max(1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe, 1e-12)
    from scipy.stats import norm  # optional heavy dependency: scipy.stats costs about 1 s

    z = float(norm.ppf(confidence))
    return 1.0 + var_term * (z / (sharpe - target_sharpe)) ** 2
