"""Per-period Sharpe ratios of return matrices: the input convention of the overfitting statistics.

Input convention (every public function here, in :mod:`aio_ray.strategies.pbo` and in
:mod:`aio_ray.strategies.effective_trials`): ``returns`` is a float array of shape ``(T, N)``,
``T`` periods (e.g. trading days) by ``N`` candidates, each value the candidate's simple return
over that period (a fraction). No NaN or inf. Sharpe ratios are *per period* (mean / sample
standard deviation, ``ddof=1``), not annualized, as in :mod:`aio_ray.strategies.dsr`.

A series whose standard deviation is zero (a candidate that never traded) has Sharpe 0. In
floating point "zero" means ``sd <= 1e-6 * rms`` (``rms`` the root mean square of the values):
a numerically constant series, whose nominal ``|Sharpe|`` would exceed 1e6.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["ZERO_SD_RTOL", "check_returns", "column_sharpe", "json_scalar", "read_only"]

ZERO_SD_RTOL = 1e-6
"""A series with ``sd <= ZERO_SD_RTOL * rms`` counts as zero-variance (Sharpe 0)."""


def check_returns(returns: np.ndarray) -> np.ndarray:
    """``returns`` as a float64 (T, N) array; ValueError naming the problem otherwise."""
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(
            f"returns must be a 2-D array (T periods x N candidates), got shape {r.shape}"
        )
    bad = ~np.isfinite(r)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"returns has {int(bad.sum())} non-finite values (NaN/inf), first at period "
            f"(row) {int(row)}, candidate (column) {int(col)}; drop or fill them first"
        )
    return r


def column_sharpe(returns: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratio (mean / sd with ``ddof=1``) of each column of a (T, N) array.

    Zero-variance columns (never traded) get 0; ``T < 2`` gives all zeros.
    """
    r = check_returns(returns)
    t = r.shape[0]
    if t < 2:
        return np.zeros(r.shape[1])
    mean = r.mean(axis=0)
    sd = r.std(axis=0, ddof=1)
    rms = np.sqrt(np.mean(r * r, axis=0))
    zero = sd <= ZERO_SD_RTOL * rms
    with np.errstate(divide="ignore", invalid="ignore"):
        sr: np.ndarray = mean / sd
    sr[zero] = 0.0
    return sr


def json_scalar(value: Any) -> Any:
    """A JSON-able scalar: numpy scalars to Python, NaN/inf floats to None."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def read_only(a: np.ndarray) -> np.ndarray:
    """``a`` marked read-only, so a frozen result stays frozen."""
    a.setflags(write=False)
    return a
