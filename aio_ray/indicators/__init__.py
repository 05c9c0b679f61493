"""The eight indicators with TradingView Pine v6 semantics, over float64 numpy arrays.

Stable public API (inputs: 1-D float arrays of prices in quote currency, one value per bar,
oldest first, any timeframe; lengths in bars; outputs: float64 arrays of the input's length)::

    sma(x, length=20) -> ndarray                       # ta.sma
    ema(x, length=20) -> ndarray                       # ta.ema
    rma(x, length=14) -> ndarray                       # ta.rma (Wilder)
    rsi(close, length=14) -> ndarray                   # ta.rsi, 0..100
    macd(close, fast=12, slow=26, signal=9) -> (macd, signal, hist)         # ta.macd
    bbands(close, length=20, mult=2.0) -> (upper, middle, lower)           # ta.bb
    stoch(high, low, close, k=14, smooth_k=3, d=3) -> (k, d)               # %K, %D, 0..100
    true_range(high, low, close, handle_na=True) -> ndarray                 # ta.tr(handle_na)
    atr(high, low, close, length=14) -> ndarray        # ta.atr, price units
    dmi(high, low, close, di_length=14, adx_smoothing=14) -> (plus_di, minus_di, adx)  # ta.dmi
    warmup(name, **params) -> int | dict               # index of the first defined value
    compute_all(bars) -> polars.DataFrame              # all of them at the usual defaults

Semantics (our reading of the Pine v6 reference, pinned by tests/oracles/test_indicators.py):

* Warm-up: a value is NaN until Pine's first value appears. With clean input the first
  defined index is: sma, ema, rma, bb, atr: ``length - 1``; rsi: ``length`` (the first change
  needs a previous close); macd line ``max(fast, slow) - 1``, signal and hist
  ``max(fast, slow) + signal - 2``; stoch %K ``k + smooth_k - 2``, %D ``k + smooth_k + d - 3``;
  +DI/-DI ``di_length``; ADX ``di_length + adx_smoothing - 1``.
* ``ta.ema`` is seeded with the SMA of its first ``length`` values and then uses
  ``alpha = 2 / (length + 1)`` (as the built-in behaves: NaN for ``length - 1`` bars; the
  reference manual's ``pine_ema`` snippet, which starts from the first value, differs). ``ta.rma``: the same with
  ``alpha = 1 / length``. RSI, ATR and DMI smooth with ``rma``.
* ``ta.bb`` uses the population standard deviation (divide by ``length``).
* ``ta.atr`` is ``rma(ta.tr(true))``: on the first bar (no previous close) the true range is
  ``high - low``, so ATR is defined from bar ``length - 1``. ``ta.dmi`` uses the variable
  ``ta.tr``, which is ``ta.tr(false)``: NaN on the first bar, so the DI start at ``di_length``.
* RSI is 100 when the average loss is 0 and 0 when the average gain is 0 (as TradingView's
  built-in RSI script); stoch is NaN where the ``k``-bar range is 0 (Pine divides by zero: na).
* NaN inputs: averaging/ranking primitives skip them (Pine: "na values in the source series
  are ignored"), return NaN on the bar whose input is NaN, and carry their state across it;
  pointwise arithmetic (``close - close[1]``) propagates NaN; +DI/-DI apply Pine's ``fixnan``.

Differences from TA-Lib (measured and pinned in tests): SMA, EMA, RSI, BBANDS (matype 0) and
STOCH (SMA smoothing) agree to ~1e-13 where both are defined; TA-Lib holds STOCH's %K back to
start with %D (2 bars later with the defaults), and on flat data gives RSI 0 (Pine: 100) and
%K 0 (here: NaN). ATR: TA-Lib starts one bar later and seeds with the true ranges of bars
``1..length``, Pine with ``high - low`` of bar 0 and bars ``1..length-1``; the gap decays as
``(1 - 1/length)**t``. MACD: TA-Lib's ``MACD`` and ``MACDEXT`` (EMA types) seed the fast EMA at
the slow one's first bar (``slow - 1``) instead of at bar ``fast - 1``, a gap of the order of
1e-5 in price over the first ~100 bars; ``EMA(fast) - EMA(slow)`` with an ``EMA`` of that is
Pine's MACD. ADX/+DI/-DI: TA-Lib seeds Wilder's sums with ``length - 1`` directional movements,
Pine with the SMA of ``length``; large at first, ~2e-5 ADX points 200 bars on, gone by ~500.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from aio_ray.errors import AioError
from aio_ray.indicators import _nb as nb

__all__ = [
    "COMPUTE_ALL_COLUMNS",
    "IndicatorError",
    "atr",
    "bbands",
    "compute_all",
    "dmi",
    "ema",
    "macd",
    "rma",
    "rsi",
    "sma",
    "stoch",
    "true_range",
    "warmup",
]


class IndicatorError(AioError, ValueError):
    """An indicator was called with an invalid argument (names the function and argument)."""


# --------------------------------------------------------------------------- validation


def _length(func: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise IndicatorError(f"{func}: {name} must be an int >= 1 (bars), got {value!r}")
    if value < 1:
        raise IndicatorError(f"{func}: {name} must be >= 1 (bars), got {value}")
    return int(value)


def _series(func: str, name: str, x: Any) -> np.ndarray:
    try:
        a = np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise IndicatorError(f"{func}: {name} cannot be read as float64 ({exc})") from exc
    if a.ndim != 1:
        raise IndicatorError(f"{func}: {name} must be 1-D, got shape {a.shape}")
    return a


def _hlc(func: str, high: Any, low: Any, close: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, lo, c = _series(func, "high", high), _series(func, "low", low), _series(func, "close", close)
    if not (len(h) == len(lo) == len(c)):
        raise IndicatorError(
            f"{func}: high, low, close must have the same length, got {len(h)}, {len(lo)}, {len(c)}"
        )
    return h, lo, c


# --------------------------------------------------------------------------- public API


def sma(x: Any, length: int = 20) -> np.ndarray:
    """Simple moving average (Pine ``ta.sma``): mean of the last ``length`` values.

    Parameters
    ----------
    x : array of float, one value per bar.
    length : window, bars (>= 1).

    Returns
    -------
    ndarray, same units as ``x``; NaN for the first ``length - 1`` bars.
    """
    a = _series("sma", "x", x)
    out = np.empty_like(a)
    nb.sma_nb(a, _length("sma", "length", length), out)
    return out


def ema(x: Any, length: int = 20) -> np.ndarray:
    """Exponential moving average (Pine ``ta.ema``), ``alpha = 2 / (length + 1)``.

    Seeded with the SMA of the first ``length`` values, so NaN for the first ``length - 1`` bars.
    """
    n = _length("ema", "length", length)
    a = _series("ema", "x", x)
    out = np.empty_like(a)
    nb.ewm_nb(a, n, 2.0 / (n + 1), out)
    return out


def rma(x: Any, length: int = 14) -> np.ndarray:
    """Wilder's moving average (Pine ``ta.rma``), ``alpha = 1 / length``, seeded with the SMA.

    NaN for the first ``length - 1`` bars.
    """
    n = _length("rma", "length", length)
    a = _series("rma", "x", x)
    out = np.empty_like(a)
    nb.ewm_nb(a, n, 1.0 / n, out)
    return out


def rsi(close: Any, length: int = 14) -> np.ndarray:
    """Relative strength index (Pine ``ta.rsi``), 0..100.

    ``100 - 100 / (1 + rma(up, length) / rma(down, length))`` over close-to-close moves;
    100 when the average down-move is 0, 0 when the average up-move is 0. NaN for the first
    ``length`` bars (bar 0 has no move).
    """
    c = _series("rsi", "close", close)
    out = np.empty_like(c)
    nb.rsi_nb(c, _length("rsi", "length", length), out)
    return out


def macd(
    close: Any, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD (Pine ``ta.macd``): ``(macd, signal, hist)`` in price units.

    ``macd = ema(close, fast) - ema(close, slow)``, ``signal = ema(macd, signal)``,
    ``hist = macd - signal``. The line starts at bar ``max(fast, slow) - 1``, signal and hist
    ``signal - 1`` bars later.
    """
    c = _series("macd", "close", close)
    f = _length("macd", "fast", fast)
    s = _length("macd", "slow", slow)
    g = _length("macd", "signal", signal)
    line, sig, hist = np.empty_like(c), np.empty_like(c), np.empty_like(c)
    nb.macd_nb(c, f, s, g, line, sig, hist)
    return line, sig, hist


def bbands(
    close: Any, length: int = 20, mult: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger Bands (Pine ``ta.bb``): ``(upper, middle, lower)`` in price units.

    ``middle = sma(close, length)``, ``upper/lower = middle +/- mult * stdev`` with the
    population standard deviation over the same ``length`` bars; NaN for ``length - 1`` bars.
    ``mult`` is in standard deviations (any finite number).
    """
    c = _series("bbands", "close", close)
    n = _length("bbands", "length", length)
    try:
        k = float(mult)
    except (TypeError, ValueError):
        k = math.nan
    if isinstance(mult, bool) or not math.isfinite(k):
        raise IndicatorError(f"bbands: mult must be a finite number of std devs, got {mult!r}")
    upper, middle, lower = np.empty_like(c), np.empty_like(c), np.empty_like(c)
    nb.bb_nb(c, n, k, upper, middle, lower)
    return upper, middle, lower


def stoch(
    high: Any, low: Any, close: Any, k: int = 14, smooth_k: int = 3, d: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic oscillator as TradingView's built-in plots it: ``(%K, %D)``, 0..100.

    ``%K = sma(ta.stoch(close, high, low, k), smooth_k)`` and ``%D = sma(%K, d)``, where
    ``ta.stoch = 100 * (close - lowest(low, k)) / (highest(high, k) - lowest(low, k))`` (NaN
    where the range is 0). %K starts at bar ``k + smooth_k - 2``, %D ``d - 1`` bars later.
    """
    h, lo, c = _hlc("stoch", high, low, close)
    kk = _length("stoch", "k", k)
    sk = _length("stoch", "smooth_k", smooth_k)
    dd = _length("stoch", "d", d)
    pk, pd = np.empty_like(c), np.empty_like(c)
    nb.stoch_nb(h, lo, c, kk, sk, dd, pk, pd)
    return pk, pd


def true_range(high: Any, low: Any, close: Any, handle_na: bool = True) -> np.ndarray:
    """True range (Pine ``ta.tr(handle_na)``), price units.

    ``max(high - low, |high - close[1]|, |low - close[1]|)``; where there is no previous close
    (the first bar) it is ``high - low`` if ``handle_na`` else NaN.
    """
    h, lo, c = _hlc("true_range", high, low, close)
    out = np.empty_like(c)
    nb.true_range_nb(h, lo, c, bool(handle_na), out)
    return out


def atr(high: Any, low: Any, close: Any, length: int = 14) -> np.ndarray:
    """Average true range (Pine ``ta.atr``): ``rma(ta.tr(true), length)``, price units.

    NaN for the first ``length - 1`` bars (bar 0's true range is its ``high - low``).
    """
    h, lo, c = _hlc("atr", high, low, close)
    out = np.empty_like(c)
    nb.atr_nb(h, lo, c, _length("atr", "length", length), out)
    return out


def dmi(
    high: Any, low: Any, close: Any, di_length: int = 14, adx_smoothing: int = 14
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directional movement (Pine ``ta.dmi``): ``(plus_di, minus_di, adx)``, each 0..100.

    +DI/-DI are ``fixnan(100 * rma(+DM or -DM, di_length) / rma(ta.tr, di_length))``, defined
    from bar ``di_length``; ``ADX = 100 * rma(|+DI - -DI| / (+DI + -DI), adx_smoothing)``
    (a zero sum divides by 1), defined from bar ``di_length + adx_smoothing - 1``.
    """
    h, lo, c = _hlc("dmi", high, low, close)
    di = _length("dmi", "di_length", di_length)
    sm = _length("dmi", "adx_smoothing", adx_smoothing)
    plus, minus, adx = np.empty_like(c), np.empty_like(c), np.empty_like(c)
    nb.dmi_nb(h, lo, c, di, sm, plus, minus, adx)
    return plus, minus, adx


def warmup(name: str, **params: int) -> int | dict[str, int]:
    """Index of the first defined value of indicator ``name`` on NaN-free input.

    ``warmup("rsi", length=14) == 14``; multi-output indicators give a dict, e.g.
    ``warmup("macd", fast=12, slow=26, signal=9) == {"macd": 25, "signal": 33, "hist": 33}``.
    Missing parameters take the functions' defaults.
    """
    if name in ("sma", "ema", "rma", "atr", "bbands"):
        return params.get("length", 14 if name in ("rma", "atr") else 20) - 1
    if name == "rsi":
        return params.get("length", 14)
    if name == "macd":
        line = max(params.get("fast", 12), params.get("slow", 26)) - 1
        sig = line + params.get("signal", 9) - 1
        return {"macd": line, "signal": sig, "hist": sig}
    if name == "stoch":
        kk = params.get("k", 14) + params.get("smooth_k", 3) - 2
        return {"k": kk, "d": kk + params.get("d", 3) - 1}
    if name == "dmi":
        di = params.get("di_length", 14)
        return {"plus_di": di, "minus_di": di, "adx": di + params.get("adx_smoothing", 14) - 1}
    raise IndicatorError(
        f"warmup: unknown indicator {name!r}; known: sma, ema, rma, rsi, macd, bbands, stoch, atr, dmi"
    )


COMPUTE_ALL_COLUMNS = (
    "ts",
    "rsi",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "sma",
    "ema",
    "stoch_k",
    "stoch_d",
    "atr",
    "adx",
    "plus_di",
    "minus_di",
)


def compute_all(bars: pl.DataFrame | Any, price: str = "mid") -> pl.DataFrame:
    """All eight indicators at their customary defaults on one bar frame.

    Parameters
    ----------
    bars : polars.DataFrame (or pyarrow.Table) with ``ts`` and ``{price}_high``,
        ``{price}_low``, ``{price}_close`` (aio_ray.schema.BAR_SCHEMA), oldest bar first.
    price : "mid", "bid" or "ask": which side's OHLC feeds the indicators.

    Returns
    -------
    polars.DataFrame with :data:`COMPUTE_ALL_COLUMNS`: ``ts`` as given, rsi(14),
    macd(12, 26, 9), bbands(20, 2), sma(20), ema(20), stoch(14, 3, 3), atr(14), dmi(14, 14);
    NaN during each warm-up.
    """
    df = bars if isinstance(bars, pl.DataFrame) else pl.from_arrow(bars)
    if not isinstance(df, pl.DataFrame):
        raise IndicatorError("compute_all: bars must be a polars DataFrame or a pyarrow Table")
    if price not in ("mid", "bid", "ask"):
        raise IndicatorError(f"compute_all: price must be 'mid', 'bid' or 'ask', got {price!r}")
    need = ["ts", f"{price}_high", f"{price}_low", f"{price}_close"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise IndicatorError(f"compute_all: bars lack column(s) {missing}; have {df.columns}")
    h = df[f"{price}_high"].cast(pl.Float64).fill_null(math.nan).to_numpy()
    lo = df[f"{price}_low"].cast(pl.Float64).fill_null(math.nan).to_numpy()
    c = df[f"{price}_close"].cast(pl.Float64).fill_null(math.nan).to_numpy()
    m_line, m_sig, m_hist = macd(c)
    upper, middle, lower = bbands(c)
    k, d = stoch(h, lo, c)
    plus, minus, adx_ = dmi(h, lo, c)
    cols = {
        "rsi": rsi(c),
        "macd": m_line,
        "macd_signal": m_sig,
        "macd_hist": m_hist,
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "sma": sma(c, 20),
        "ema": ema(c, 20),
        "stoch_k": k,
        "stoch_d": d,
        "atr": atr(h, lo, c),
        "adx": adx_,
        "plus_di": plus,
        "minus_di": minus,
    }
    return pl.DataFrame({"ts": df["ts"], **{name: pl.Series(name, v) for name, v in cols.items()}})
