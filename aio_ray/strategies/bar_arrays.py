"""Bars as plain numpy arrays: the one bar type from the bars store to the backtest kernel.

Stable public API::

    BarArrays(ts, open, high, low, close, *, bid_open=..., ..., ask_close=..., timeframe="1h")
    BarArrays.from_frame(df, price="mid", timeframe="1h")  # from a bar frame (schema.BAR_SCHEMA)
    len(bars), bars[a:b], bars.copy()                     # bar count; contiguous slice (views)
    bars.has_bid_ask                                      # bid/ask OHLC present (``bidask`` fills)
    bars.kernel_prices(price_model), bars.swap_units, bars.bar_ms   # what the engine reads

``ts`` is int64 UTC ms (bar open time); prices are float64 in quote currency. The signal series
(``open/high/low/close``, mid prices by default) is what strategy families compute on; the
optional bid/ask OHLC of the same bars are what ``price_model="bidask"`` fills at. The derived
arrays the engine needs are validated and computed once per bars object and cached on it (treat
every array as read-only: the cache does not see later writes).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from aio_ray.errors import BacktestError, BarsError
from aio_ray.strategies import fills
from aio_ray.strategies.metrics import infer_bar_ms
from aio_ray.strategies.sessions import swap_units

__all__ = ["BID_ASK_FIELDS", "MIN_BARS", "OHLC_FIELDS", "BarArrays"]

OHLC_FIELDS: tuple[str, ...] = ("open", "high", "low", "close")
"""The signal series' price fields (and the suffixes of the bid/ask fields)."""

BID_ASK_FIELDS: tuple[str, ...] = tuple(f"{s}_{p}" for s in ("bid", "ask") for p in OHLC_FIELDS)
"""The optional bid/ask OHLC fields, named as the bar schema's columns (``bid_open``, ...)."""

MIN_BARS = 2
"""The fewest bars the engine backtests."""


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

    # ------------------------------------------------------------------------- kernel inputs

    def kernel_prices(self, price_model: str) -> np.ndarray:
        """The engine's (``fills.N_PRICE_ROWS``, n) float64 price matrix, rows ``fills.ROW_*``
        (quote currency), validated and built once per price model, then cached.

        Raises
        ------
        BacktestError
            Unknown ``price_model``, fewer than :data:`MIN_BARS` bars, non-finite or
            inconsistent OHLC, or no bid/ask OHLC for ``"bidask"``.
        """
        key = f"px_{price_model}"
        px: np.ndarray | None = self._cache.get(key)
        if px is None:
            px = self._build_prices(price_model)
            self._cache[key] = px
        return px

    @property
    def swap_units(self) -> np.ndarray:
        """(n,) float64 rollovers a position held from bar ``i - 1`` to bar ``i`` is charged
        for (:func:`aio_ray.strategies.sessions.swap_units`); cached."""
        w: np.ndarray | None = self._cache.get("swap_units")
        if w is None:
            w = self._cache["swap_units"] = swap_units(self.ts)
        return w

    @property
    def bar_ms(self) -> int:
        """Bar spacing inferred from ``ts`` (median gap, ms; :func:`metrics.infer_bar_ms`); cached."""
        ms: int | None = self._cache.get("bar_ms")
        if ms is None:
            ms = self._cache["bar_ms"] = infer_bar_ms(self.ts)
        return ms

    def _build_prices(self, price_model: str) -> np.ndarray:
        if price_model not in fills.PRICE_MODELS:
            raise BacktestError(f"price_model: {price_model!r} is not one of {fills.PRICE_MODELS}")
        n = len(self)
        if n < MIN_BARS:
            raise BacktestError(f"bars: too few bars ({n}); need at least {MIN_BARS}")
        o, h, lo, c = (_finite(f"bars.{a}", getattr(self, a)) for a in OHLC_FIELDS)
        _check_ohlc("bars", o, h, lo, c)
        px = np.empty((fills.N_PRICE_ROWS, n), dtype=np.float64)
        px[fills.ROW_ANCHOR] = c
        if price_model == "single":
            px[fills.ROW_BUY_OPEN] = o
            px[fills.ROW_SELL_OPEN] = o
            px[fills.ROW_SELL_HIGH] = h
            px[fills.ROW_BUY_HIGH] = h
            px[fills.ROW_SELL_LOW] = lo
            px[fills.ROW_BUY_LOW] = lo
            px[fills.ROW_SELL_CLOSE] = c
            px[fills.ROW_BUY_CLOSE] = c
            return px
        if not self.has_bid_ask:
            raise BacktestError(
                "bid_ask: price_model 'bidask' needs the bars' bid and ask OHLC "
                "(BarArrays.bid_open ... ask_close); load them with the bars or use "
                "price_model='single'"
            )
        arr = {f: _finite(f"bid_ask.{f}", getattr(self, f)) for f in BID_ASK_FIELDS}
        _check_ohlc(
            "bid_ask (bid)", arr["bid_open"], arr["bid_high"], arr["bid_low"], arr["bid_close"]
        )
        _check_ohlc(
            "bid_ask (ask)", arr["ask_open"], arr["ask_high"], arr["ask_low"], arr["ask_close"]
        )
        px[fills.ROW_BUY_OPEN] = arr["ask_open"]
        px[fills.ROW_SELL_OPEN] = arr["bid_open"]
        px[fills.ROW_SELL_HIGH] = arr["bid_high"]
        px[fills.ROW_SELL_LOW] = arr["bid_low"]
        px[fills.ROW_BUY_HIGH] = arr["ask_high"]
        px[fills.ROW_BUY_LOW] = arr["ask_low"]
        px[fills.ROW_SELL_CLOSE] = arr["bid_close"]
        px[fills.ROW_BUY_CLOSE] = arr["ask_close"]
        return px


def _float_column(frame: pl.DataFrame, name: str) -> np.ndarray:
    return np.ascontiguousarray(frame[name].cast(pl.Float64).to_numpy(), dtype=np.float64)


def _finite(name: str, a: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.argmax(bad))
        raise BacktestError(f"{name}: non-finite price {a[i]} at bar {i}; prices must be finite")
    return a


def _check_ohlc(prefix: str, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> None:
    bad = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (lo <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise BacktestError(
            f"{prefix}: bar {i} is not a valid OHLC bar (open {o[i]}, high {h[i]}, low {lo[i]}, "
            f"close {c[i]}); need 0 < low <= open, close <= high"
        )
