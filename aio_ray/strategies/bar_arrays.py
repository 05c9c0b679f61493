"""Bars as plain numpy arrays: what strategy families and the backtest engine compute on.

Stable public API::

    BarArrays(ts, open, high, low, close)        # frozen; ts int64 ms (bar open, UTC), prices float64
    BarArrays.from_frame(df, price="mid")        # from a bar frame (aio_ray.schema.BAR_SCHEMA)
    len(bars), bars[a:b]                         # number of bars; a contiguous slice (views)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from aio_ray.errors import BarsError

__all__ = ["BarArrays"]

_FIELDS = ("open", "high", "low", "close")


@dataclass(frozen=True, eq=False)
class BarArrays:
    """One price side's OHLC bars, oldest first; treat the arrays as read-only.

    Attributes
    ----------
    ts : int64 array, the bar's open time in ms since the epoch (UTC), strictly increasing.
    open, high, low, close : float64 arrays, quote currency (e.g. mid prices).
    """

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.ts)
        if self.ts.dtype != np.int64 or self.ts.ndim != 1:
            raise BarsError(
                f"BarArrays.ts must be a 1-D int64 array (ms), got {self.ts.dtype} {self.ts.shape}"
            )
        for name in _FIELDS:
            a = getattr(self, name)
            if not isinstance(a, np.ndarray) or a.dtype != np.float64 or a.ndim != 1:
                raise BarsError(f"BarArrays.{name} must be a 1-D float64 array")
            if len(a) != n:
                raise BarsError(f"BarArrays.{name} has {len(a)} bars, ts has {n}")
        if n > 1:
            bad = np.flatnonzero(np.diff(self.ts) <= 0)
            if bad.size:
                i = int(bad[0]) + 1
                raise BarsError(
                    f"BarArrays.ts must be strictly increasing: bar {i} at {int(self.ts[i])} ms "
                    f"follows {int(self.ts[i - 1])} ms"
                )

    def __len__(self) -> int:
        return len(self.ts)

    def __getitem__(self, item: slice) -> BarArrays:
        if not isinstance(item, slice) or item.step not in (None, 1):
            raise TypeError("BarArrays supports contiguous slices only, e.g. bars[:1000]")
        return BarArrays(
            self.ts[item], self.open[item], self.high[item], self.low[item], self.close[item]
        )

    @classmethod
    def from_frame(cls, df: Any, price: Literal["mid", "bid", "ask"] = "mid") -> BarArrays:
        """Take ``ts`` and ``{price}_open/high/low/close`` from a polars DataFrame or Arrow table.

        ``ts`` may be a timestamp of any unit (converted to ms) or integer ms. Raises BarsError
        naming missing columns, nulls, or an unknown ``price``.
        """
        import polars as pl

        if price not in ("mid", "bid", "ask"):
            raise BarsError(
                f"BarArrays.from_frame: price must be 'mid', 'bid' or 'ask', got {price!r}"
            )
        frame = df if isinstance(df, pl.DataFrame) else pl.from_arrow(df)
        if not isinstance(frame, pl.DataFrame):
            raise BarsError("BarArrays.from_frame: expected a polars DataFrame or a pyarrow Table")
        cols = ["ts"] + [f"{price}_{f}" for f in _FIELDS]
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise BarsError(
                f"BarArrays.from_frame: missing column(s) {missing}; have {frame.columns}"
            )
        for c in cols:
            if frame[c].null_count():
                raise BarsError(
                    f"BarArrays.from_frame: column {c!r} has {frame[c].null_count()} null(s)"
                )
        ts = frame["ts"]
        if isinstance(ts.dtype, pl.Datetime):
            ts = ts.dt.epoch("ms")
        elif not ts.dtype.is_integer():
            raise BarsError(
                f"BarArrays.from_frame: ts must be a timestamp or integer ms, got {ts.dtype}"
            )
        arrays = [
            np.ascontiguousarray(frame[c].cast(pl.Float64).to_numpy(), dtype=np.float64)
            for c in cols[1:]
        ]
        return cls(np.ascontiguousarray(ts.cast(pl.Int64).to_numpy(), dtype=np.int64), *arrays)
