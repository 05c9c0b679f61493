"""The planted edge of the synthetic ticks (``SyntheticConfig.edge``): a deviation of the
log mid (natural log of the price) simulated on a 1-minute grid and pinned to 0 at both ends
of a day's open span, so the daily anchors and the day boundaries are untouched.

``mean_reversion`` is an Ornstein-Uhlenbeck deviation; ``momentum`` an integrated OU velocity.
Their std is ``edge_strength`` times :func:`edge_scale`.
"""

from __future__ import annotations

import math

import numpy as np

from aio_ray.data.config import SyntheticConfig
from aio_ray.data.synthetic_calendar import TRADING_MINUTES_PER_YEAR, SyntheticError

__all__ = ["edge_at_ticks", "edge_path", "edge_scale"]


def edge_scale(annual_vol: float, half_life_min: float) -> float:
    """The mid's martingale std over one half-life, log units (natural log of price).

    ``annual_vol * sqrt(half_life_min / TRADING_MINUTES_PER_YEAR)``: the unit of
    ``SyntheticConfig.edge_strength``. 0.07 and 45 minutes give 7.7e-4 (~8.5 pips at 1.10).
    """
    return annual_vol * math.sqrt(half_life_min / TRADING_MINUTES_PER_YEAR)


def _unit_ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """``n`` samples of a stationary AR(1) with coefficient ``phi`` and unit variance."""
    z = (rng.standard_normal(n) * math.sqrt(1.0 - phi * phi)).tolist()
    y = z[0] / math.sqrt(1.0 - phi * phi)  # the first sample from the stationary law
    out = [y]
    for e in z[1:]:
        y = phi * y + e
        out.append(y)
    return np.asarray(out)


def _ou_bridge(x: np.ndarray, phi: float) -> np.ndarray:
    """A stationary unit AR(1) path ``x`` minus its conditional mean given its two end
    values: exactly the OU bridge from 0 to 0 (unit variance far from the ends)."""
    n = len(x) - 1
    k = np.arange(n + 1, dtype=np.float64)
    r = phi**n
    to_start, to_end = phi**k, phi ** (n - k)
    det = 1.0 - r * r
    a = (to_start - r * to_end) / det  # regression weights on x[0] and x[-1]
    b = (to_end - r * to_start) / det
    return np.asarray(x - a * x[0] - b * x[-1])


def _integrated_ar1_bridge(n: int, phi: float) -> tuple[np.ndarray, float]:
    """For the partial sums ``S_k = v_0 + ... + v_{k-1}`` (``k = 0..n``) of a unit AR(1)
    ``v``: the weights ``beta_k`` such that ``S_k - beta_k * S_n`` is ``S`` conditioned on
    ``S_n = 0`` (a bridge, 0 at both ends), and that bridge's RMS over the grid.

    Exact, from the autocovariances ``phi**|i - j|``.
    """
    k = np.arange(n + 1, dtype=np.float64)
    q = 1.0 - phi
    pk = phi**k
    var_s = k * (1.0 + phi) / q - 2.0 * phi * (1.0 - pk) / q**2  # Var(S_k)
    cross = phi * (1.0 - pk) * (1.0 - phi ** (n - k)) / q**2  # Cov(S_k, S_n - S_k)
    cov_n = var_s + cross  # Cov(S_k, S_n)
    var_n = float(var_s[-1])
    var = np.maximum(var_s - cov_n**2 / var_n, 0.0)
    return cov_n / var_n, math.sqrt(float(var.mean()))


def edge_path(
    rng: np.random.Generator, kind: str, n_min: int, half_life_min: float, sd: float
) -> np.ndarray:
    """Planted log-mid deviation on a 1-minute grid of ``n_min + 1`` points, 0 at both ends.

    ``mean_reversion``: an OU (AR(1) per minute) of stationary std ``sd`` and half-life
    ``half_life_min``, bridged to 0 at both ends. ``momentum``: the partial sums of an OU
    velocity of that half-life, bridged to 0 at both ends and scaled so that the path's
    expected RMS over the grid is ``sd``.
    """
    phi = 0.5 ** (1.0 / half_life_min)
    if kind == "mean_reversion":
        return sd * _ou_bridge(_unit_ar1(rng, n_min + 1, phi), phi)
    if kind == "momentum":
        x = np.concatenate(([0.0], np.cumsum(_unit_ar1(rng, n_min, phi))))
        beta, rms = _integrated_ar1_bridge(n_min, phi)
        return np.asarray(sd / rms * (x - beta * x[-1]))
    raise SyntheticError(f"edge must be 'none', 'mean_reversion' or 'momentum', got {kind!r}")


def edge_at_ticks(
    rng: np.random.Generator, cfg: SyntheticConfig, open_h: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """The planted deviation of the log mid at tick times ``t`` (ms since 00:00 UTC).

    Simulated over the day's open span (contiguous: all 24 hours on Monday-Thursday, up to
    the close on Friday, from the open on Sunday) and linearly interpolated to the ticks.
    """
    hours = np.flatnonzero(open_h)
    start_min, end_min = int(hours[0]) * 60, (int(hours[-1]) + 1) * 60
    sd = cfg.edge_strength * edge_scale(cfg.annual_vol, cfg.edge_half_life_min)
    x = edge_path(rng, cfg.edge, end_min - start_min, cfg.edge_half_life_min, sd)
    grid_ms = (start_min + np.arange(len(x), dtype=np.float64)) * 60_000.0
    return np.asarray(np.interp(t.astype(np.float64), grid_ms, x))
