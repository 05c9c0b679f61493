"""Bars as plain numpy arrays: the one bar type from the bars store to the backtest kernel.

Stable public API::

    BarArrays(ts, open, high, low, close, *, bid_open=..., ..., ask_close=..., timeframe="1h")
    BarArrays.from_frame(df, price="mid", timeframe="1h")  # from a bar frame (schema.BAR_SCHEMA)
    len(bars), bars[a:b], bars.copy()                     # bar count; contiguous slice (views)
    bars.has_bid_ask                                      # bid/ask OHLC present (``bidask`` fills)
    bars.bar_ms                                           # bar spacing (ms), cached
    bars.cached(key, build)                               # a derived array, built once per bars

``ts`` is int64 UTC ms (bar open time); prices are float64 in quote currency. The signal series
(``open/high/low/close``, mid prices by default) is what strategy families compute on; the
optional bid/ask OHLC of the same bars are what ``price_model="bidask"`` fills at. Arrays derived
from the bars (the backtest's validated price matrix and rollover counts,
:mod:`aio_ray.strategies.kernel_inputs`) are built once per bars object and cached on it
(:meth:`BarArrays.cached`; treat every array as read-only: the cache does not see later writes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import polars as pl

from aio_ray.bars.timeframes import infer_bar_ms
from aio_ray.errors import BarsError

__all__ = ["BID_ASK_FIELDS", "OHLC_FIELDS", "BarArrays"]

OHLC_FIELDS: tuple[str, ...] = ("open", "high", "low", "close")
"""The signal series' price fields (and the suffixes of the bid/ask fields)."""

BID_ASK_FIELDS: tuple[str, ...] = tuple(f"{s}_{p}" for s in ("bid", "ask") for p in OHLC_FIELDS)
"""The optional bid/ask OHLC fields, named as the bar schema's columns (``bid_open``, ...)."""
T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class BarArrays:
    """One timeframe's bars, oldest first; treat the arrays as read-only.

    Attributes
    ----------
    ts : int64 array, the bar's open time in ms since the epoch (UTC), strictly increasing.
    open, high, low, close : float64 arrays, the signal series (quote currency, e.g. mid).
    bid_open ... ask_close : float64 arrays of the same bars' bid and ask OHLC (quote
        currency), all eight or none (None: only ``price_model="single"`` can fill).
    timeframe : canonical timeframe name (``"15m"``, ``"1h"``, ...); "" when unknown.
    """

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    _: KW_ONLY
    bid_open: np.ndarray | None = None
    bid_high: np.ndarray | None = None
    bid_low: np.ndarray | None = None
    bid_close: np.ndarray | None = None
    ask_open: np.ndarray | None = None
    ask_high: np.ndarray | None = None
    ask_low: np.ndarray | None = None
    ask_close: np.ndarray | None = None
    timeframe: str = ""
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.ts)
        if self.ts.dtype != np.int64 or self.ts.ndim != 1:
            raise BarsError(
                f"BarArrays.ts must be a 1-D int64 array (ms), got {self.ts.dtype} {self.ts.shape}"
            )
        present = [getattr(self, f) is not None for f in BID_ASK_FIELDS]
        if any(present) and not all(present):
            missing = [f for f, p in zip(BID_ASK_FIELDS, present, strict=True) if not p]
            raise BarsError(f"BarArrays: bid/ask OHLC must be given all or none; missing {missing}")
        for name in OHLC_FIELDS + (BID_ASK_FIELDS if all(present) else ()):
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

    def __getstate__(self) -> dict[str, Any]:
        # the derived arrays are rebuilt where they are needed, not shipped (e.g. to Ray workers)
        return {**self.__dict__, "_cache": {}}

    @property
    def has_bid_ask(self) -> bool:
        """Whether the bid/ask OHLC are present (needed by ``price_model="bidask"``)."""
        return self.bid_open is not None

    def _arrays(self) -> dict[str, np.ndarray]:
        names = ("ts",) + OHLC_FIELDS + (BID_ASK_FIELDS if self.has_bid_ask else ())
        return {f: getattr(self, f) for f in names}

    def __getitem__(self, item: slice) -> BarArrays:
        if not isinstance(item, slice) or item.step not in (None, 1):
            raise TypeError("BarArrays supports contiguous slices only, e.g. bars[:1000]")
        return BarArrays(
            **{f: a[item] for f, a in self._arrays().items()}, timeframe=self.timeframe
        )

    def copy(self) -> BarArrays:
        """A deep copy (own arrays: a slice's copy keeps nothing of the bars around it)."""
        return BarArrays(
            **{f: a.copy() for f, a in self._arrays().items()}, timeframe=self.timeframe
        )

    @classmethod
    def from_frame(
        cls, df: Any, price: Literal["mid", "bid", "ask"] = "mid", *, timeframe: str = ""
    ) -> BarArrays:
        """From a polars DataFrame or Arrow table with :data:`aio_ray.schema.BAR_SCHEMA` columns.

        The signal series is ``ts`` and ``{price}_open/high/low/close``; the bid/ask OHLC are
        taken when the frame has all eight columns (a null there becomes NaN, which the engine
        rejects). ``ts`` may be a timestamp of any unit (converted to ms) or integer ms. Raises
        BarsError naming missing columns, nulls in the signal series, or an unknown ``price``.
        """
        if price not in ("mid", "bid", "ask"):
            raise BarsError(
                f"BarArrays.from_frame: price must be 'mid', 'bid' or 'ask', got {price!r}"
            )
        frame = df if isinstance(df, pl.DataFrame) else pl.from_arrow(df)
        if not isinstance(frame, pl.DataFrame):
            raise BarsError("BarArrays.from_frame: expected a polars DataFrame or a pyarrow Table")
        cols = ["ts"] + [f"{price}_{f}" for f in OHLC_FIELDS]
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
        arrays = [_float_column(frame, c) for c in cols[1:]]
        bid_ask: dict[str, np.ndarray] = {}
        if all(c in frame.columns for c in BID_ASK_FIELDS):
            bid_ask = {c: _float_column(frame, c) for c in BID_ASK_FIELDS}
        return cls(
            np.ascontiguousarray(ts.cast(pl.Int64).to_numpy(), dtype=np.int64),
            *arrays,
            **bid_ask,
            timeframe=timeframe,
        )

    @property
    def bar_ms(self) -> int:
        """Bar spacing inferred from ``ts`` (median gap, ms; :func:`~aio_ray.bars.timeframes.infer_bar_ms`); cached."""
        ms: int | None = self._cache.get("bar_ms")
        if ms is None:
            ms = self._cache["bar_ms"] = infer_bar_ms(self.ts)
        return ms

    def cached(self, key: str, build: Callable[[BarArrays], T]) -> T:
        """``build(self)``, computed on the first call for ``key`` and kept on these bars
        (not pickled: a copy shipped to a Ray worker rebuilds it there)."""
        if key in self._cache:
            value: T = self._cache[key]
            return value
        value = self._cache[key] = build(self)
        return value


def _float_column(frame: pl.DataFrame, name: str) -> np.ndarray:
    return np.ascontiguousarray(frame[name].cast(pl.Float64).to_numpy(), dtype=np.float64)
