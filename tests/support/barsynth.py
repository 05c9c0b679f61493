"""Small synthetic bar frames for the search tests (BAR_SCHEMA columns, UTC ms)."""

from __future__ import annotations

import numpy as np
import polars as pl

from aio_ray.schema import BAR_SCHEMA

T0 = 1_600_041_600_000  # 2020-09-14 00:00 UTC, a Monday
HOUR = 3_600_000


def hourly_bars(
    n: int,
    seed: int,
    *,
    drift: float = 0.0,
    revert: float = 0.0,
    half_life: float = 8.0,
    substeps: int = 0,
) -> pl.DataFrame:
    """``n`` 1h bars of a random walk around 1.10 with a 0.2-pip spread (BAR_SCHEMA).

    ``substeps`` 0: the high / low are the body plus independent noise (fast; but such wicks
    are not a price path, and stop and limit orders can harvest them). ``substeps`` k > 0:
    each bar is k steps of the walk (open, the max, the min, the last), a path whose wicks
    hold no edge: the strict null for the gates. ``revert`` in [0, 1) plants a mean-reversion
    edge (with ``substeps`` > 0): that share of the variance comes from a deviation that
    decays with ``half_life`` bars (Ornstein-Uhlenbeck) instead of the random walk."""
    rng = np.random.default_rng(seed)
    if substeps <= 0:
        close = 1.10 * np.exp(np.cumsum(rng.normal(drift, 0.0012, n)))
        open_ = np.concatenate(([1.10], close[:-1]))
        high = np.maximum(open_, close) + np.abs(rng.normal(0.0, 0.0004, n))
        low = np.minimum(open_, close) - np.abs(rng.normal(0.0, 0.0004, n))
    else:
        k = int(substeps)
        m = n * k
        sd = 0.0012 / np.sqrt(k)
        eps = rng.normal(drift / k, sd * np.sqrt(1.0 - revert), m)
        if revert:
            phi = 0.5 ** (1.0 / (half_life * k))
            shock = rng.normal(0.0, sd * np.sqrt(revert), m)
            dev = np.empty(m)
            x = 0.0
            for i in range(m):
                x = phi * x + shock[i]
                dev[i] = x
            eps = eps + np.diff(dev, prepend=0.0)
        path = 1.10 * np.exp(np.cumsum(eps)).reshape(n, k)
        close = path[:, -1]
        open_ = np.concatenate(([1.10], close[:-1]))
        high = np.maximum(path.max(axis=1), open_)
        low = np.minimum(path.min(axis=1), open_)
    half = 0.00001
    cols: dict[str, object] = {"ts": T0 + np.arange(n, dtype=np.int64) * HOUR}
    for side, off in (("bid", -half), ("ask", half), ("mid", 0.0)):
        for name, a in (("open", open_), ("high", high), ("low", low), ("close", close)):
            cols[f"{side}_{name}"] = a + off
    cols.update(
        spread_mean=np.full(n, 2 * half),
        spread_max=np.full(n, 2 * half),
        ticks=np.full(n, 100, dtype=np.int64),
        bid_volume=np.ones(n),
        ask_volume=np.ones(n),
    )
    return pl.DataFrame(cols).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def rollup(h1: pl.DataFrame, every: str) -> pl.DataFrame:
    """Coarser bars from 1h bars (bar labelled by its open time)."""
    aggs = []
    for side in ("bid", "ask", "mid"):
        aggs += [
            pl.col(f"{side}_open").first(),
            pl.col(f"{side}_high").max(),
            pl.col(f"{side}_low").min(),
            pl.col(f"{side}_close").last(),
        ]
    aggs += [
        pl.col("spread_mean").mean(),
        pl.col("spread_max").max(),
        pl.col("ticks").sum(),
        pl.col("bid_volume").sum(),
        pl.col("ask_volume").sum(),
    ]
    return h1.group_by_dynamic("ts", every=every).agg(aggs).select(BAR_SCHEMA.names)
