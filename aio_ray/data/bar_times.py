"""Times of bar files as UTC epoch milliseconds: zones, offsets, layouts and epoch numbers.

A naive time is read in the zone given (:func:`parse_tz`: IANA name or fixed offset; in a
DST fold the first, daylight, reading is taken; a time in a DST gap is bad); a time with a
UTC offset is converted; a file mixing the two fails (:class:`~aio_ray.errors.TimezoneError`).
Text without ``ts_format`` is tried against unambiguous layouts; numbers are epoch s/ms/us/ns.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl

from aio_ray.data.files import _show
from aio_ray.errors import ConfigError, TimezoneError

__all__ = ["parse_times", "parse_tz"]

_OFFSET_RE = r"\d:\d{2}(:\d{2}([.,]\d+)?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)$"
_FLOAT_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_KNOWN_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M",
    "%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M", "%Y%m%d %H%M%S", "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y.%m.%d", "%Y%m%d",
)  # fmt: skip
"""Unambiguous naive time layouts tried in turn (day-first layouts need ``ts_format``)."""


def parse_tz(name: str) -> dt.tzinfo:
    """An IANA zone (``Europe/Berlin``), ``UTC`` or a fixed offset ``+02:00`` / ``-0500``."""
    m = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?", name.strip())
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
        sign = 1 if m.group(1) == "+" else -1
        return dt.timezone(dt.timedelta(minutes=sign * minutes))
    if name.strip().upper() in ("UTC", "Z", "GMT"):
        return dt.UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {_show(name)}; use an IANA name such as Europe/Berlin or an offset such as +02:00"
        ) from exc


def parse_times(
    df: pl.DataFrame,
    columns: Mapping[str, str],
    ts_unit: str,
    ts_format: str | None,
    src: str,
    offset: int,
    tz: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(UTC epoch ms, bad mask, detail) of every row's time.

    ``columns`` maps the canonical ``ts`` (or ``date`` [+ ``time``]) to the file's columns;
    naive times are in zone ``tz`` (see :func:`parse_tz`), epoch numbers in ``ts_unit``
    (``auto``: by magnitude); ``offset`` is the line/row number of the first row, for messages.
    """
    n = df.height
    if "ts" in columns:
        col = df.get_column(columns["ts"])
        label = f"column {_show(columns['ts'])} (ts)"
    else:
        col = df.get_column(columns["date"]).cast(pl.String).str.strip_chars()
        label = f"column {_show(columns['date'])} (date)"
        if "time" in columns:
            t = df.get_column(columns["time"]).cast(pl.String).str.strip_chars()
            col = (col + " " + t).alias("ts")
            label += f" + {_show(columns['time'])} (time)"
    zone = parse_tz(tz)
    ms = np.zeros(n, dtype=np.int64)
    detail = np.full(n, "", dtype=object)
    if col.dtype == pl.Datetime:
        bad = col.is_null().to_numpy()
        if col.dtype.time_zone is None:  # type: ignore[attr-defined]
            ms, bad2 = _localize(col.cast(pl.Datetime("ms")).to_numpy(), zone)
            bad = bad | bad2
        else:
            ms = (
                col.dt.convert_time_zone("UTC")
                .cast(pl.Datetime("ms"))
                .dt.epoch("ms")
                .fill_null(0)
                .to_numpy()
            )
        detail[bad] = f"{label}: empty or not a time in {tz}"
        return ms, bad, detail
    if col.dtype == pl.Date:
        col = col.cast(pl.Datetime("ms"))
        ms, bad = _localize(col.to_numpy(), zone)
        detail[bad] = f"{label}: empty"
        return ms, bad, detail
    if col.dtype.is_numeric():
        return _epoch(col.cast(pl.Float64).to_numpy(), ts_unit, label)
    text = col.cast(pl.String).str.strip_chars()
    empty = (text.is_null() | (text == "")).to_numpy()
    vals = text.fill_null("")
    if ts_format is None:
        is_num = vals.str.contains(_FLOAT_RE).to_numpy()
        if (~empty).any() and is_num[~empty].mean() > 0.5:  # epoch numbers (a stray text is bad)
            num = vals.cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
            ms, bad, detail = _epoch(num, ts_unit, label)
            cells = vals.to_numpy()
            for i in np.flatnonzero(~is_num & ~empty):
                detail[i] = (
                    f"{label}: {_show(cells[i])} is not a time (the others are epoch numbers)"
                )
            bad |= empty | ~is_num
            detail[empty] = f"{label} is empty"
            return ms, bad, detail
    has_off = vals.str.contains(_OFFSET_RE).to_numpy() & ~empty
    naive = ~has_off & ~empty
    if has_off.any() and naive.any():
        a, b = int(np.flatnonzero(has_off)[0]), int(np.flatnonzero(naive)[0])
        raise TimezoneError(
            src,
            f"{label} mixes times with a UTC offset (line/row {a + offset}: {_show(vals[a])}) and "
            f"without (line/row {b + offset}: {_show(vals[b])}); give every time an offset, or none and --tz",
        )
    bad = empty.copy()
    detail[empty] = f"{label} is empty"
    if has_off.any():
        import pandas as pd  # optional heavy dependency: pandas only for times with mixed UTC offsets

        parsed = pd.to_datetime(
            vals.to_pandas(), format=ts_format or "ISO8601", utc=True, errors="coerce"
        )
        nat = np.asarray(parsed.isna()) & ~empty
        ms = np.where(
            nat | empty,
            0,
            parsed.to_numpy(dtype="datetime64[ms]", na_value=np.datetime64(0, "ms")).astype(
                np.int64
            ),
        )
    else:
        naive_dt, nat = _parse_naive(vals, ts_format, empty)
        ms, bad_local = _localize(naive_dt, zone)
        nat |= bad_local & ~empty
    cells = vals.to_numpy()
    for i in np.flatnonzero(nat):
        detail[i] = f"{label}: {_show(cells[i])} is not a time" + (
            f" in {tz} (daylight saving gap?)" if tz != "UTC" else ""
        )
    return ms, bad | nat, detail


def _parse_naive(
    vals: pl.Series, ts_format: str | None, empty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """datetime64[ms] of naive text times with the layout that reads the most rows."""
    layouts = (ts_format,) if ts_format else _KNOWN_FORMATS
    best: pl.Series | None = None
    best_ok = -1
    for f in layouts:
        try:
            got = vals.str.strptime(pl.Datetime("ms"), f, strict=False)
        except pl.exceptions.PolarsError:
            continue
        ok = int(got.is_not_null().sum())
        if ok > best_ok:
            best, best_ok = got, ok
        if ok == int((~empty).sum()):
            break
    assert best is not None
    nat = best.is_null().to_numpy() & ~empty
    return best.dt.epoch("ms").fill_null(0).to_numpy().astype("datetime64[ms]"), nat


def _localize(naive: np.ndarray, zone: dt.tzinfo) -> tuple[np.ndarray, np.ndarray]:
    """UTC epoch ms of naive local times in ``zone``: a repeated (DST fold) time is taken
    first as daylight time, then standard time; a time in a DST gap is bad."""
    local = naive.astype("datetime64[ms]").astype(np.int64)
    if zone is dt.UTC:
        return local, np.zeros(local.size, bool)
    if isinstance(zone, dt.timezone):
        off = int(zone.utcoffset(None).total_seconds() * 1000)
        return local - off, np.zeros(local.size, bool)
    import pandas as pd  # optional heavy dependency: pandas only to convert naive times in an IANA zone

    idx = pd.DatetimeIndex(naive.astype("datetime64[ns]"))
    seen = pd.Series(idx).duplicated(keep="first").to_numpy()
    aware = idx.tz_localize(zone, ambiguous=~seen, nonexistent="NaT")
    bad = np.asarray(aware.isna())
    out = (
        aware.tz_convert("UTC")
        .tz_localize(None)
        .to_numpy()
        .astype("datetime64[ms]")
        .astype(np.int64)
    )
    return np.where(bad, 0, out), bad


def _epoch(num: np.ndarray, unit: str, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epoch numbers in ``unit`` (``auto``: by magnitude) -> ms, bad mask, detail."""
    finite = np.isfinite(num)
    if unit == "auto":
        top = float(np.nanmax(np.abs(num[finite]))) if finite.any() else 0.0
        unit = "s" if top < 1e11 else "ms" if top < 1e14 else "us" if top < 1e17 else "ns"
    scale = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}[unit]
    with np.errstate(invalid="ignore", over="ignore"):
        ms_f = np.floor(num * scale + 1e-6)
    bad = ~np.isfinite(ms_f) | (np.abs(ms_f) > 9.2e15)
    detail = np.full(num.size, "", dtype=object)
    detail[bad] = f"{label}: not a usable epoch time ({unit})"
    return np.where(bad, 0, ms_f).astype(np.int64), bad, detail
