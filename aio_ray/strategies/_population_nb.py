"""Compiled kernel of the population evaluator: many signal sets x many windows, one call.

:func:`batch_windows` runs every parameter set ``p`` of a population over every walk-forward
window ``w`` (``windows[w] = (start, end)``, bar indices into the walk-forward series), each
window from a flat account exactly as :func:`aio_ray.strategies._engine_nb.simulate` does for
one run, in parallel over parameter sets (``numba.prange``, one contiguous chunk of sets per
thread). Per (set, window) it writes the metric vector, the number of trades closed by the
forced end-of-window exit, and compounds the window's per-bar returns into period columns
(``period_col[w, i]``: the column of bar ``i``'s return in window ``w``, -1: none), so the
caller gets per-period (e.g. daily) returns of every window without per-bar arrays.

Swap: ``sw`` (n,) holds the rollovers of the walk-forward bars (``kernel_inputs.swap_units_of``);
window ``w`` passes ``sw[a:b]`` to ``simulate``, which is what ``run_backtest`` computes on the
slice alone (a window's first bar is flat, so its own weight never counts).

Stop / target distances are shared rows: set ``p`` reads ``sd_rows[sd_idx[p]]`` and
``td_rows[td_idx[p]]`` (a population has a handful of distinct ATR x multiple rows).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from aio_ray.strategies._engine_layout import N_METRICS, N_TRADE_COLS, TC_REASON
from aio_ray.strategies._engine_nb import simulate
from aio_ray.strategies.fills import EXIT_END


@njit(cache=True, parallel=True)
def batch_windows(
    px: np.ndarray,
    sw: np.ndarray,
    cvs: np.ndarray,
    windows: np.ndarray,
    le: np.ndarray,
    se: np.ndarray,
    lx: np.ndarray,
    sx: np.ndarray,
    sd_rows: np.ndarray,
    sd_idx: np.ndarray,
    td_rows: np.ndarray,
    td_idx: np.ndarray,
    period_col: np.ndarray,
    n_threads: int,
    metrics_out: np.ndarray,
    end_exits_out: np.ndarray,
    growth_out: np.ndarray,
) -> None:
    """Evaluate P signal sets on W windows.

    Shapes: ``px`` (9, n); ``sw`` (n,) float64 rollovers per bar; ``cvs`` (W, N_CONFIG) one configuration vector per window (its
    annualization and span); ``windows`` (W, 2) int64; ``le/se/lx/sx`` (P, n) bool;
    ``sd_rows/td_rows`` (K, n) float64 with ``sd_idx/td_idx`` (P,) int64; ``period_col``
    (W, n) int64; outputs ``metrics_out`` (P, W, N_METRICS), ``end_exits_out`` (P, W) int64,
    ``growth_out`` (P, D) float64: per-period simple returns (0 for a period without bars).
    """
    n_sets = le.shape[0]
    n_win = windows.shape[0]
    n_cols = growth_out.shape[1]
    max_len = 1
    for w in range(n_win):
        max_len = max(max_len, windows[w, 1] - windows[w, 0])
    n_chunks = max(1, min(n_sets, n_threads))
    for c in prange(n_chunks):
        p0 = c * n_sets // n_chunks
        p1 = (c + 1) * n_sets // n_chunks
        trades = np.zeros((max_len, N_TRADE_COLS), dtype=np.float64)
        equity = np.empty(max_len, dtype=np.float64)
        metrics = np.empty(N_METRICS, dtype=np.float64)
        for p in range(p0, p1):
            for j in range(n_cols):
                growth_out[p, j] = 1.0
            for w in range(n_win):
                a = windows[w, 0]
                b = windows[w, 1]
                length = b - a
                k = simulate(
                    px[:, a:b],
                    sw[a:b],
                    cvs[w],
                    le[p, a:b],
                    se[p, a:b],
                    lx[p, a:b],
                    sx[p, a:b],
                    sd_rows[sd_idx[p], a:b],
                    td_rows[td_idx[p], a:b],
                    trades,
                    equity[:length],
                    metrics,
                )
                for m in range(N_METRICS):
                    metrics_out[p, w, m] = metrics[m]
                ends = 0
                for t in range(k):
                    if trades[t, TC_REASON] == EXIT_END:
                        ends += 1
                end_exits_out[p, w] = ends
                for i in range(1, length):
                    col = period_col[w, a + i]
                    if col >= 0:
                        prev = equity[i - 1]
                        r = equity[i] / prev - 1.0 if prev > 0 else 0.0
                        growth_out[p, col] *= 1.0 + r
            for j in range(n_cols):
                growth_out[p, j] -= 1.0
