"""Dukascopy's binary formats and folder layout (pure functions, no I/O beyond the bytes).

Hour tick files ``{SYMBOL}/{YYYY}/{MM}/{DD}/{HH}h_ticks.bi5`` are LZMA ("alone" format) with
20-byte big-endian records ``>IIIff``: ms since the hour, ask and bid in points, ask and bid
volume (millions). Candle files ``BID_candles_min_1.bi5`` hold 24-byte records ``>IIIIIf``:
seconds since the day, open, close, low, high (points), volume. MM counts months from 00.
"""

from __future__ import annotations

import datetime as dt
import lzma

import numpy as np
import pyarrow as pa

from aio_ray.errors import CorruptFileError
from aio_ray.schema import TICK_SCHEMA, TS_TYPE

__all__ = [
    "CANDLE_RECORD",
    "TICK_RECORD",
    "candle_path",
    "decode_candles",
    "decode_ticks",
    "hour_path",
    "point_size",
]

TICK_RECORD = np.dtype(
    [("ms", ">u4"), ("ask", ">u4"), ("bid", ">u4"), ("ask_volume", ">f4"), ("bid_volume", ">f4")]
)
CANDLE_RECORD = np.dtype(
    [
        ("s", ">u4"),
        ("open", ">u4"),
        ("close", ">u4"),
        ("low", ">u4"),
        ("high", ">u4"),
        ("volume", ">f4"),
    ]
)
assert TICK_RECORD.itemsize == 20 and CANDLE_RECORD.itemsize == 24

_JPY_LIKE = ("JPY", "HUF", "RUB", "XAU")


def point_size(symbol: str) -> float:
    """Price of one Dukascopy point in quote currency: 1e-5 for EURUSD, 1e-3 for JPY pairs."""
    return 1e-3 if symbol.upper()[3:6] in _JPY_LIKE else 1e-5


def hour_path(symbol: str, hour: dt.datetime) -> str:
    """Relative path of an hour file in Dukascopy's layout (months counted from 00)."""
    return f"{symbol.upper()}/{hour.year:04d}/{hour.month - 1:02d}/{hour.day:02d}/{hour.hour:02d}h_ticks.bi5"


def candle_path(symbol: str, day: dt.date, side: str = "BID") -> str:
    """Relative path of a day's 1-minute candle file in Dukascopy's layout."""
    return f"{symbol.upper()}/{day.year:04d}/{day.month - 1:02d}/{day.day:02d}/{side}_candles_min_1.bi5"


def _decompress(raw: bytes, name: str, record: int) -> bytes:
    if not raw:
        return b""
    try:
        data = lzma.decompress(raw)
    except (lzma.LZMAError, EOFError) as exc:
        raise CorruptFileError(name, f"LZMA data is corrupt or truncated ({exc})") from exc
    if len(data) % record:
        raise CorruptFileError(
            name, f"decoded length {len(data)} is not a multiple of the {record}-byte record"
        )
    return data


def decode_ticks(
    raw: bytes, hour_start: dt.datetime, symbol: str, name: str = "<bytes>"
) -> pa.Table:
    """Decode one hour file's bytes into the canonical tick table.

    ``hour_start`` is the start of the hour (naive: taken as UTC); zero bytes mean "no ticks"
    (an empty table with :data:`TICK_SCHEMA`).
    Raises CorruptFileError naming ``name`` when the bytes cannot be decoded.
    """
    data = _decompress(raw, name, TICK_RECORD.itemsize)
    rec = np.frombuffer(data, dtype=TICK_RECORD)
    # A naive hour is taken as UTC; an aware one is converted (not relabelled) to UTC.
    start = hour_start.replace(tzinfo=dt.UTC) if hour_start.tzinfo is None else hour_start
    base_ms = int(start.timestamp() * 1000)
    point = point_size(symbol)
    ts = rec["ms"].astype(np.int64) + base_ms
    arrays = [
        pa.array(ts, type=pa.int64()).cast(TS_TYPE),
        pa.array(np.round(rec["bid"].astype(np.float64) * point, 10)),
        pa.array(np.round(rec["ask"].astype(np.float64) * point, 10)),
        pa.array(rec["bid_volume"].astype(np.float32)),
        pa.array(rec["ask_volume"].astype(np.float32)),
    ]
    return pa.Table.from_arrays(arrays, schema=TICK_SCHEMA)


def decode_candles(raw: bytes, day: dt.date, symbol: str, name: str = "<bytes>") -> pa.Table:
    """Decode a day's 1-minute candle file: ``ts`` (open time, UTC), open/high/low/close in
    quote currency, ``*_points`` the same as integer points, and ``volume``."""
    data = _decompress(raw, name, CANDLE_RECORD.itemsize)
    rec = np.frombuffer(data, dtype=CANDLE_RECORD)
    base_ms = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    point = point_size(symbol)
    cols: dict[str, pa.Array] = {
        "ts": pa.array(rec["s"].astype(np.int64) * 1000 + base_ms, type=pa.int64()).cast(TS_TYPE)
    }
    for f in ("open", "high", "low", "close"):
        cols[f] = pa.array(np.round(rec[f].astype(np.float64) * point, 10))
    for f in ("open", "high", "low", "close"):
        cols[f"{f}_points"] = pa.array(rec[f].astype(np.int64))
    cols["volume"] = pa.array(rec["volume"].astype(np.float64))
    return pa.table(cols)
