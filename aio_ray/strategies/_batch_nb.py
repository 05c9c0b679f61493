"""Parallel drivers of the backtest engine: many parameter sets over the same bars with
``numba.prange``, metrics only (no trade lists).

:func:`batch_signals` reads precomputed signal matrices; :func:`batch_crossover` derives
two-line crossovers in the loop from shared line series (signal source ``mode`` 1 of
:func:`aio_ray.strategies._engine_nb.step`). Both cut the sets into ``n_threads`` contiguous
chunks, one per thread, and walk the bars tile by tile (``TILE`` bars), running every set of a
thread over a tile before the next one, so a tile's prices and lines are read from cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from aio_ray.strategies._engine_layout import (
    BLOCK,
    C_INITIAL,
    N_STATE,
    TILE,
)
from aio_ray.strategies._engine_nb import step
from aio_ray.strategies._metrics_nb import finish, init_state

__all__ = ["batch_crossover", "batch_signals"]


@njit(cache=True, parallel=True)
def batch_signals(
    px: np.ndarray,
    sw: np.ndarray,
    cv: np.ndarray,
    le: np.ndarray,
    se: np.ndarray,
    lx: np.ndarray,
    sx: np.ndarray,
    sd: np.ndarray,
    td: np.ndarray,
    n_threads: int,
    out: np.ndarray,
) -> None:
    """Metrics of P precomputed signal sets (``le`` etc. shape (P, n); ``sd``/``td`` shape
    (P, n) or (1, n) shared; ``sw`` (n,) rollovers per bar) into ``out`` (P, N_METRICS),
    parallel over parameter sets."""
    n = px.shape[1]
    n_sets = le.shape[0]
    n_chunks = max(1, min(n_sets, n_threads))
    states = np.empty((n_sets, N_STATE), dtype=np.float64)
    for p in range(n_sets):
        init_state(states[p], cv[C_INITIAL])
    for c in prange(n_chunks):
        p0 = c * n_sets // n_chunks
        p1 = (c + 1) * n_sets // n_chunks
        ef = np.empty(0, dtype=np.float64)
        et = np.empty((0, 0), dtype=np.float64)
        scratch = np.empty(BLOCK, dtype=np.float64)
        for t0 in range(0, n, TILE):
            t1 = min(t0 + TILE, n)
            for p in range(p0, p1):
                sdr = sd[p] if sd.shape[0] > 1 else sd[0]
                tdr = td[p] if td.shape[0] > 1 else td[0]
                step(
                    states[p],
                    t0,
                    t1,
                    px,
                    sw,
                    cv,
                    0,
                    le[p],
                    se[p],
                    lx[p],
                    sx[p],
                    sdr,
                    tdr,
                    ef,
                    ef,
                    ef,
                    np.nan,
                    np.nan,
                    0,
                    False,
                    et,
                    ef,
                    scratch,
                )
    for p in range(n_sets):
        finish(states[p], out[p], n, cv)


@njit(cache=True, parallel=True)
def batch_crossover(
    px: np.ndarray,
    sw: np.ndarray,
    cv: np.ndarray,
    lines: np.ndarray,
    fast_idx: np.ndarray,
    slow_idx: np.ndarray,
    base_dist: np.ndarray,
    stop_mult: np.ndarray,
    take_mult: np.ndarray,
    direction: int,
    n_threads: int,
    out: np.ndarray,
) -> None:
    """Metrics of P crossovers ``lines[fast_idx[p]]`` x ``lines[slow_idx[p]]`` into ``out``
    (P, N_METRICS), parallel over parameter sets; ``stop_mult``/``take_mult`` (P,), NaN: none.
    The sets are cut into ``n_threads`` contiguous chunks, one per thread."""
    n = px.shape[1]
    n_sets = fast_idx.shape[0]
    n_chunks = max(1, min(n_sets, n_threads))
    states = np.empty((n_sets, N_STATE), dtype=np.float64)
    for p in range(n_sets):
        init_state(states[p], cv[C_INITIAL])
    for c in prange(n_chunks):
        p0 = c * n_sets // n_chunks
        p1 = (c + 1) * n_sets // n_chunks
        eb = np.empty(0, dtype=np.bool_)
        ef = np.empty(0, dtype=np.float64)
        et = np.empty((0, 0), dtype=np.float64)
        scratch = np.empty(BLOCK, dtype=np.float64)
        for t0 in range(0, n, TILE):
            t1 = min(t0 + TILE, n)
            for p in range(p0, p1):
                step(
                    states[p],
                    t0,
                    t1,
                    px,
                    sw,
                    cv,
                    1,
                    eb,
                    eb,
                    eb,
                    eb,
                    ef,
                    ef,
                    lines[fast_idx[p]],
                    lines[slow_idx[p]],
                    base_dist,
                    stop_mult[p],
                    take_mult[p],
                    direction,
                    False,
                    et,
                    ef,
                    scratch,
                )
    for p in range(n_sets):
        finish(states[p], out[p], n, cv)
