"""Tick validation: every bad tick is quarantined with the first rule it breaks, never dropped.

Rules, checked in this order (a tick gets the first reason that applies):

``bad_price``
    bid or ask is NaN, infinite, zero or negative.
``bad_volume``
    bid or ask volume is NaN, infinite or negative.
``crossed``
    bid > ask (a locked quote, bid == ask, is kept).
``duplicate``
    an exact copy (all five fields) of an earlier tick; the first one is kept.
``out_of_order``
    the timestamp runs backwards. The kept ticks are the longest non-decreasing run of
    timestamps (a longest non-decreasing subsequence), so one tick stamped far in the future
    costs one tick, not the rest of the day.
``spike``
    see :class:`aio_ray.config.SpikeRule`: the mid lies more than ``k`` robust sigmas *and*
    more than ``min_bps`` basis points away from the median of a centred window of its
    neighbours (neighbours taken among ticks that passed the earlier rules).

Conservation holds by construction and is checked: ``len(input) == len(kept) + len(quarantined)``
and the quarantine counts per reason add up to the quarantined rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from aio_ray.data.config import SpikeRule, ValidationConfig
from aio_ray.schema import QUARANTINE_SCHEMA, TICK_SCHEMA

__all__ = ["REASONS", "ValidationResult", "count_reasons", "validate_ticks"]

REASONS: tuple[str, ...] = (
    "bad_price",
    "bad_volume",
    "crossed",
    "duplicate",
    "out_of_order",
    "spike",
)
"""Quarantine reasons, in the order the rules are applied."""


@dataclass
class ValidationResult:
    """Kept ticks (canonical schema, input order), quarantined ticks (with ``reason``) and counts."""

    kept: pa.Table
    quarantined: pa.Table
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def n_input(self) -> int:
        return int(self.kept.num_rows + self.quarantined.num_rows)


@nb.njit(cache=True)
def _longest_nondecreasing(ts: np.ndarray) -> np.ndarray:
    """Mask of one longest non-decreasing subsequence of ``ts`` (O(n log n) patience sort).

    Ties in length prefer the subsequence that ends at the smallest value, so for a sorted
    input every element is kept.
    """
    n = ts.shape[0]
    keep = np.zeros(n, dtype=np.bool_)
    if n == 0:
        return keep
    tails_val = np.empty(n, dtype=ts.dtype)
    tails_idx = np.empty(n, dtype=np.int64)
    prev = np.full(n, -1, dtype=np.int64)
    length = 0
    for i in range(n):
        v = ts[i]
        # first tail strictly greater than v (upper bound): non-decreasing allows equal values
        lo, hi = 0, length
        while lo < hi:
            mid = (lo + hi) // 2
            if tails_val[mid] <= v:
                lo = mid + 1
            else:
                hi = mid
        if lo > 0:
            prev[i] = tails_idx[lo - 1]
        tails_val[lo] = v
        tails_idx[lo] = i
        if lo == length:
            length += 1
    j = tails_idx[length - 1]
    while j >= 0:
        keep[j] = True
        j = prev[j]
    return keep


def _spikes(mid: np.ndarray, rule: SpikeRule) -> np.ndarray:
    n = mid.shape[0]
    if n < 3:
        return np.zeros(n, dtype=bool)
    med = (
        pl.Series(mid)
        .rolling_median(window_size=rule.window, center=True, min_samples=1)
        .to_numpy()
    )
    dev = np.abs(mid - med)
    steps = np.abs(np.diff(mid))
    sigma = 1.4826 * float(np.median(steps))
    if sigma == 0.0:  # mostly unchanged mids: fall back to the mean step
        sigma = float(steps.mean())
    return np.asarray((dev > rule.k * sigma) & (dev > rule.min_bps * 1e-4 * mid))


def validate_ticks(table: pa.Table, cfg: ValidationConfig | None = None) -> ValidationResult:
    """Split canonical ticks into kept and quarantined, in input order.

    Parameters
    ----------
    table
        Ticks with :data:`aio_ray.schema.TICK_SCHEMA`, in the order the source delivered them.
    cfg
        Validation rules; defaults to :class:`ValidationConfig()`.
    """
    cfg = cfg or ValidationConfig()
    table = table.select(list(TICK_SCHEMA.names)).cast(TICK_SCHEMA)
    n = table.num_rows
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    bid = table.column("bid").to_numpy()
    ask = table.column("ask").to_numpy()
    bv = table.column("bid_volume").to_numpy().astype(np.float64)
    av = table.column("ask_volume").to_numpy().astype(np.float64)

    reason = np.full(n, -1, dtype=np.int8)

    def flag(mask: np.ndarray, code: int) -> None:
        reason[(reason < 0) & mask] = code

    with np.errstate(invalid="ignore"):
        flag(~(np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0)), 0)
        flag(~(np.isfinite(bv) & np.isfinite(av) & (bv >= 0) & (av >= 0)), 1)
        flag(bid > ask, 2)

    alive = np.flatnonzero(reason < 0)
    if alive.size:
        df = pl.DataFrame(
            {
                "ts": ts[alive],
                "bid": bid[alive],
                "ask": ask[alive],
                "bv": bv[alive],
                "av": av[alive],
            }
        )
        dup = ~df.select(pl.struct(pl.all()).is_first_distinct()).to_series().to_numpy()
        reason[alive[dup]] = 3

    alive = np.flatnonzero(reason < 0)
    if alive.size:
        in_order = _longest_nondecreasing(ts[alive])
        reason[alive[~in_order]] = 4

    alive = np.flatnonzero(reason < 0)
    if cfg.check_spikes and alive.size:
        mid = (bid[alive] + ask[alive]) * 0.5
        reason[alive[_spikes(mid, cfg.spike)]] = 5

    keep_mask = reason < 0
    kept = table.filter(pa.array(keep_mask))
    q_idx = np.flatnonzero(~keep_mask)
    labels = (
        np.array(REASONS, dtype=object)[reason[q_idx]] if q_idx.size else np.array([], dtype=object)
    )
    quarantined = table.take(pa.array(q_idx, type=pa.int64())).append_column(
        "reason", pa.array(labels.tolist(), type=pa.string())
    )
    quarantined = quarantined.cast(QUARANTINE_SCHEMA)
    counts = {r: int(np.count_nonzero(reason == i)) for i, r in enumerate(REASONS)}
    counts["kept"] = kept.num_rows
    if (
        kept.num_rows + quarantined.num_rows != n
        or sum(counts[r] for r in REASONS) != quarantined.num_rows
    ):
        raise AssertionError("tick conservation violated in validate_ticks")  # pragma: no cover
    return ValidationResult(kept=kept, quarantined=quarantined, counts=counts)


def count_reasons(quarantined: pa.Table) -> dict[str, int]:
    """Count quarantined rows per reason (every reason present, zeros included)."""
    vc = pc.value_counts(quarantined.column("reason")).to_pylist() if quarantined.num_rows else []
    got = {d["values"]: d["counts"] for d in vc}
    return {r: int(got.get(r, 0)) for r in REASONS}
