"""Overfitting statistics for honest strategy selection: PBO by CSCV and the effective trials.

The statistics live in one module each; this module gathers their public names:

- :func:`pbo_cscv` (:mod:`aio_ray.strategies.pbo`): the Probability of Backtest Overfitting by
  combinatorially symmetric cross-validation (Bailey, Borwein, Lopez de Prado & Zhu, 2015).
- :func:`effective_trials` (:mod:`aio_ray.strategies.effective_trials`): how many independent
  trials ``N`` candidates amount to, by clustering their return series; feeds ``n_trials`` and
  ``sharpe_variance`` of :func:`aio_ray.strategies.dsr.deflated_sharpe_ratio`.
- :func:`column_sharpe` (:mod:`aio_ray.strategies.period_sharpe`): per-period Sharpe ratios
  and the input convention they share: ``returns`` is a ``(T, N)`` float array of per-period
  simple returns (fractions), no NaN or inf; Sharpe ratios are per period (``ddof=1``), not
  annualized; a zero-variance series has Sharpe 0.
"""

from __future__ import annotations

from aio_ray.strategies.effective_trials import MIN_SILHOUETTE, EffectiveTrials, effective_trials
from aio_ray.strategies.pbo import PBOResult, pbo_cscv
from aio_ray.strategies.period_sharpe import ZERO_SD_RTOL, column_sharpe

__all__ = [
    "MIN_SILHOUETTE",
    "ZERO_SD_RTOL",
    "EffectiveTrials",
    "PBOResult",
    "column_sharpe",
    "effective_trials",
    "pbo_cscv",
]
