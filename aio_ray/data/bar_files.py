"""Bar files (CSV or Parquet OHLC exports) read row by row into canonical bar fields.

:func:`read_bar_file` maps a file's columns onto the canonical bar fields (``ts`` or
``date`` + ``time``; ``open/high/low/close`` for a single price series, or ``bid_open`` ..
``ask_close``; optional ``spread``, ``volume``, ``ticks``), converts times to UTC epoch ms and
cells to numbers. A cell that cannot be read does not fail the file: the row gets a reason and
a detail naming the column and value, for :mod:`aio_ray.data.bar_ingest` to quarantine. What
fails a file (a specific :class:`~aio_ray.errors.AioError` naming it): it cannot be opened or
decoded (not CSV or Parquet, binary, ragged rows), a mapped column is missing, or its times mix
offset and naive values (:class:`~aio_ray.errors.TimezoneError`).

Formats recognized without a column map (:func:`detect_format`):

``tradingview``  header ``time,open,high,low,close[,Volume,...]``; time as unix seconds or
                 ISO-8601 (with offset: converted to UTC; naive: ``--tz``, default UTC).
``metatrader``   MetaTrader 5 export, header ``<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE>
                 [<TICKVOL> <VOL> <SPREAD>]`` (tab or comma), or MetaTrader 4 history without a
                 header ``2024.01.02,00:00,o,h,l,c,vol``. Bid prices; times in the broker's
                 server time (pass ``--tz``; default UTC); ``<SPREAD>`` in points (see
                 ``point``); ``<TICKVOL>`` is the tick count.
``histdata``     HistData.com ASCII 1-minute bars ``20240102 000000;o;h;l;c;vol`` (no header,
                 semicolons). Bid prices; times in EST *without* daylight saving (UTC-05:00
                 all year, HistData's documented convention), so the default zone is
                 ``Etc/GMT+5``.
``canonical``    headers naming the canonical fields (case-insensitive), with one time column
                 among ts, time, timestamp, datetime, date, gmt time (or ``date`` + ``time``).

Units: times are UTC epoch milliseconds, a bar labelled by its open time; prices, spread in
quote currency (price units); volume in the file's unit.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from aio_ray.data.bar_times import parse_times, parse_tz
from aio_ray.data.files import _detect_format, _header, _ragged, _short, _show
from aio_ray.errors import ConfigError, CorruptFileError, SchemaError, SourceError

__all__ = [
    "BAR_FIELDS",
    "BarColumnMap",
    "BarFormat",
    "RawBars",
    "detect_format",
    "parse_tz",
    "read_bar_file",
]

PRICE_FIELDS = ("open", "high", "low", "close")
BIDASK_FIELDS = tuple(f"{s}_{p}" for s in ("bid", "ask") for p in PRICE_FIELDS)
EXTRA_FIELDS = ("spread", "volume", "ticks")
NUMBER_FIELDS = PRICE_FIELDS + BIDASK_FIELDS + EXTRA_FIELDS
BAR_FIELDS = ("ts", "date", "time") + NUMBER_FIELDS
"""Canonical fields a column map may name (``--map FIELD=COLUMN``)."""

TsUnit = Literal["auto", "s", "ms", "us", "ns"]
PriceSide = Literal["mid", "bid", "ask"]
_TIME_NAMES = ("ts", "time", "timestamp", "datetime", "date_time", "gmt time", "local time")
_INT_RE = r"^[+-]?\d+$"


@dataclass(frozen=True)
class BarColumnMap:
    """Which file column holds each canonical bar field (None: the file has no such column).

    ``ts`` or ``date`` (+ optional ``time``, joined with a space) give the bar's open time;
    either ``open..close`` (one price series) or ``bid_open..ask_close``; ``spread`` (price
    units, or points when ``spread_in_points``), ``volume``, ``ticks`` are optional.
    """

    columns: dict[str, str] = field(default_factory=dict)
    ts_unit: TsUnit = "auto"
    ts_format: str | None = None
    spread_in_points: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns) - set(BAR_FIELDS))
        if unknown:
            raise ConfigError(
                f"unknown bar field(s) {unknown} in the column map; accepted: {', '.join(BAR_FIELDS)}"
            )
        if self.ts_unit not in ("auto", "s", "ms", "us", "ns"):
            raise ConfigError(f"ts_unit must be auto, s, ms, us or ns, got {_show(self.ts_unit)}")

    @property
    def has_bidask(self) -> bool:
        return any(f in self.columns for f in BIDASK_FIELDS)

    def check(self, src: str) -> None:
        """SchemaError unless the map names a time and one complete set of prices."""
        c = self.columns
        if "ts" not in c and "date" not in c:
            raise SchemaError(src, "no time column: map ts=COLUMN (or date=COLUMN [time=COLUMN])")
        if self.has_bidask:
            missing = [f for f in BIDASK_FIELDS if f not in c]
            if missing:
                raise SchemaError(
                    src, f"bid/ask bars need all of {list(BIDASK_FIELDS)}; missing {missing}"
                )
            if any(f in c for f in PRICE_FIELDS):
                raise SchemaError(
                    src,
                    "map either open..close (one price series) or bid_*/ask_* columns, not both",
                )
        else:
            missing = [f for f in PRICE_FIELDS if f not in c]
            if missing:
                raise SchemaError(
                    src, f"missing column(s) for {missing} (map them, e.g. --map close=Close)"
                )


@dataclass(frozen=True)
class BarFormat:
    """A recognized layout: its name, column map, whether it has a header, default zone and
    the side (bid, ask or mid) its single price series quotes."""

    name: str
    mapping: BarColumnMap
    header: bool = True
    tz: str = "UTC"
    price: PriceSide = "mid"


@dataclass
class RawBars:
    """One file's rows as canonical fields, before the bar rules.

    ``ts`` is UTC epoch ms (0 where ``reason`` says the time is bad); ``values`` holds float64
    arrays per mapped number field (NaN where unreadable); ``reason``/``detail`` are "" for a
    readable row; ``row`` is the CSV line (header = line 1) or 1-based Parquet row; ``raw`` the
    row's mapped cells as text, for the quarantine.
    """

    source: str
    fmt: BarFormat
    ts: np.ndarray
    values: dict[str, np.ndarray]
    reason: np.ndarray
    detail: np.ndarray
    row: np.ndarray
    cells: pl.DataFrame
    tz: str

    def __len__(self) -> int:
        return int(self.ts.size)

    def raw(self, rows: np.ndarray) -> list[str]:
        """The mapped cells of ``rows`` (indices) as ``column=text | ...``."""
        if not self.cells.width:
            return [""] * len(rows)
        sel = self.cells[rows.tolist()]
        text: list[str] = (
            sel.select(
                pl.concat_str(
                    [pl.lit(f"{c}=") + pl.col(c).fill_null("") for c in sel.columns],
                    separator=" | ",
                )
            )
            .to_series()
            .to_list()
        )
        return text


# ------------------------------------------------------------------------------ detection


def _lower(names: list[str]) -> dict[str, str]:
    return {n.strip().lower(): n for n in names}


def detect_format(
    names: list[str], first_row: list[str] | None = None, delimiter: str = ","
) -> BarFormat | None:
    """The known layout of a header (or, without a header, of the first data row), or None."""
    low = _lower(names)
    if all(f"<{p}>" in low for p in ("date", "open", "high", "low", "close")):
        cols = {"date": low["<date>"]}
        if "<time>" in low:
            cols["time"] = low["<time>"]
        cols.update({p: low[f"<{p}>"] for p in PRICE_FIELDS})
        if "<tickvol>" in low:
            cols["ticks"] = low["<tickvol>"]
        if "<vol>" in low:
            cols["volume"] = low["<vol>"]
        if "<spread>" in low:
            cols["spread"] = low["<spread>"]
        return BarFormat("metatrader", BarColumnMap(cols, spread_in_points=True), price="bid")
    if (
        "time" in low
        and all(p in low for p in PRICE_FIELDS)
        and not any(f in low for f in BIDASK_FIELDS)
        and names[0].strip().lower() == "time"
    ):
        cols = {"ts": low["time"], **{p: low[p] for p in PRICE_FIELDS}}
        if "volume" in low:
            cols["volume"] = low["volume"]
        return BarFormat("tradingview", BarColumnMap(cols, ts_unit="s"))
    row = first_row if first_row is not None else names
    cells = [c.strip() for c in row]
    if len(cells) in (6, 7) and re.fullmatch(r"\d{8} \d{6}", cells[0]) and delimiter == ";":
        cols = {"ts": "0", **{p: str(i + 1) for i, p in enumerate(PRICE_FIELDS)}}
        if len(cells) > 5:
            cols["volume"] = "5"
        return BarFormat(
            "histdata",
            BarColumnMap(cols, ts_format="%Y%m%d %H%M%S"),
            header=False,
            tz="Etc/GMT+5",
            price="bid",
        )
    if (
        len(cells) >= 6
        and re.fullmatch(r"\d{4}\.\d{2}\.\d{2}", cells[0])
        and re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", cells[1])
    ):
        cols = {"date": "0", "time": "1", **{p: str(i + 2) for i, p in enumerate(PRICE_FIELDS)}}
        if len(cells) > 6:
            cols["ticks"] = "6"
        return BarFormat("metatrader", BarColumnMap(cols), header=False, price="bid")
    cols = {f: low[f] for f in NUMBER_FIELDS if f in low}
    times = [n for n in _TIME_NAMES if n in low]
    if "date" in low and "time" in low:
        cols.update(date=low["date"], time=low["time"])
    elif len(times) == 1:
        cols["ts"] = low[times[0]]
    elif "date" in low and not times:
        cols["ts"] = low["date"]
    else:
        return None
    m = BarColumnMap(cols)
    if all(f in cols for f in PRICE_FIELDS) or all(f in cols for f in BIDASK_FIELDS):
        return BarFormat("canonical", m)
    return None


def resolve_format(
    names: list[str],
    first_row: list[str] | None,
    delimiter: str,
    user: dict[str, str],
    src: str,
    **opts: object,
) -> BarFormat:
    """The format of a file: the user's column map over what was recognized (unmapped fields
    found by their canonical names, case-insensitive), or a SchemaError naming what is missing."""
    found = detect_format(names, first_row, delimiter)
    if user:
        low = _lower(names)
        cols = dict(user)
        if found is not None and found.header:
            base = {k: v for k, v in found.mapping.columns.items() if k not in cols}
            if "ts" in cols or "date" in cols:
                base = {k: v for k, v in base.items() if k not in ("ts", "date", "time")}
            if any(f in cols for f in BIDASK_FIELDS):
                base = {k: v for k, v in base.items() if k not in PRICE_FIELDS}
            cols = {**base, **cols}
        else:
            for f in NUMBER_FIELDS:
                if (
                    f not in cols
                    and f in low
                    and not (f in PRICE_FIELDS and any(b in cols for b in BIDASK_FIELDS))
                ):
                    cols[f] = low[f]
        fmt = BarFormat("map", BarColumnMap(cols))
        if found is not None and found.header:
            fmt = replace(
                found,
                name=f"{found.name}+map",
                mapping=BarColumnMap(
                    cols, spread_in_points=found.mapping.spread_in_points and "spread" not in user
                ),
            )
    elif found is None:
        have = ", ".join(_show(n, 40) for n in names[:20])
        raise SchemaError(
            src,
            f"columns not recognized as a bar format (TradingView, MetaTrader, HistData or canonical names); "
            f"map them, e.g. --map ts=Date --map open=Open --map high=High --map low=Low --map close=Close; the file has: {have}",
        )
    else:
        fmt = found
    mapping = replace(fmt.mapping, **{k: v for k, v in opts.items() if v is not None})  # type: ignore[arg-type]
    fmt = replace(fmt, mapping=mapping)
    fmt.mapping.check(src)
    if fmt.header:
        missing = [
            f"{_show(c)} (for {f})" for f, c in fmt.mapping.columns.items() if c not in names
        ]
        if missing:
            have = ", ".join(_show(n, 40) for n in names[:20])
            raise SchemaError(src, f"missing column {', '.join(missing)}; the file has: {have}")
    return fmt


# ---------------------------------------------------------------------------------- reading


def _decoded(path: Path) -> bytes:
    """The (decompressed) bytes of a CSV, UTF-16 (MetaTrader 5) turned into UTF-8."""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            data = bytes(stream.read())
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFileError(
            str(path), f"cannot be read or decompressed ({_short(exc)})"
        ) from exc
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptFileError(
                str(path), f"not UTF-16 text after its byte-order mark ({exc})"
            ) from exc
    return data.removeprefix(b"\xef\xbb\xbf")


def _read_csv(
    path: Path, user: dict[str, str], opts: dict[str, object]
) -> tuple[pl.DataFrame, BarFormat, int]:
    src = str(path)
    data = _decoded(path)
    names, delimiter = _header(path, data[: 1 << 16])
    probe = detect_format(names, None, delimiter)
    header = not (probe is not None and not probe.header)
    fmt = resolve_format(names, None if header else names, delimiter, user, src, **opts)
    try:
        df = pl.read_csv(
            io.BytesIO(data),
            separator=delimiter,
            has_header=header,
            infer_schema=False,
            new_columns=None if header else [str(i) for i in range(len(names))],
        )
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise CorruptFileError(
            src, _ragged(path, delimiter, len(names)) or f"CSV cannot be decoded ({_short(exc)})"
        ) from exc
    return df, fmt, 2 if header else 1


def _read_parquet(
    path: Path, user: dict[str, str], opts: dict[str, object]
) -> tuple[pl.DataFrame, BarFormat, int]:
    src = str(path)
    try:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFileError(src, f"not a readable Parquet file ({_short(exc)})") from exc
    fmt = resolve_format(names, None, ",", user, src, **opts)
    try:
        table = pf.read(columns=list(dict.fromkeys(fmt.mapping.columns.values())))
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFileError(src, f"Parquet data cannot be decoded ({_short(exc)})") from exc
    return pl.from_arrow(table), fmt, 1  # type: ignore[return-value]


def read_bar_file(
    path: str | Path,
    columns: dict[str, str] | None = None,
    *,
    fmt: Literal["auto", "parquet", "csv"] = "auto",
    tz: str | None = None,
    ts_unit: TsUnit | None = None,
    ts_format: str | None = None,
) -> RawBars:
    """Read a whole CSV or Parquet bar file into :class:`RawBars` (row reasons, no rows dropped).

    Parameters
    ----------
    columns : canonical field -> file column (``--map``); None: recognize the format.
    fmt : ``parquet``, ``csv`` or ``auto`` (by suffix, else by the Parquet magic bytes).
    tz : zone of naive times (IANA name or ``+HH:MM``); default the format's (UTC, HistData EST).
    ts_unit : unit of integer epoch times; ``auto`` infers it from the magnitude.
    ts_format : a strftime layout for text times the recognized layouts do not cover.

    Raises
    ------
    SourceError, CorruptFileError, SchemaError, TimezoneError, ConfigError.
    """
    path = Path(path)
    src = str(path)
    if not path.exists():
        raise SourceError(src, "no such file")
    if not path.is_file():
        raise SourceError(src, "not a regular file")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise SourceError(src, f"cannot be opened ({exc.strerror or exc})") from exc
    kind = _detect_format(path, magic) if fmt == "auto" else fmt
    opts: dict[str, object] = {"ts_unit": ts_unit, "ts_format": ts_format}
    if kind == "parquet":
        df, bf, offset = _read_parquet(path, columns or {}, opts)
    else:
        df, bf, offset = _read_csv(path, columns or {}, opts)
    zone = tz or bf.tz
    return _to_raw(df, bf, src, offset, zone)


# ------------------------------------------------------------------------------ conversion


def _to_raw(df: pl.DataFrame, bf: BarFormat, src: str, offset: int, tz: str) -> RawBars:
    n = df.height
    m = bf.mapping.columns
    reason = np.full(n, "", dtype=object)
    detail = np.full(n, "", dtype=object)

    def flag(mask: np.ndarray, why: str, text: np.ndarray | str) -> None:
        sel = mask & (reason == "")
        reason[sel] = why
        detail[sel] = text[sel] if isinstance(text, np.ndarray) else text

    used = list(dict.fromkeys(m.values()))
    cells = df.select([pl.col(c).cast(pl.String) for c in used])
    empty_row = (
        np.asarray(
            cells.select(pl.all_horizontal(pl.all().is_null())).to_series().to_numpy(), dtype=bool
        )
        if used
        else np.zeros(n, bool)
    )
    flag(empty_row, "empty_row", "no value in any mapped column")
    ts, bad_ts, why_ts = parse_times(
        df, m, bf.mapping.ts_unit, bf.mapping.ts_format, src, offset, tz
    )
    flag(bad_ts, "bad_time", why_ts)
    values: dict[str, np.ndarray] = {}
    for f in NUMBER_FIELDS:
        if f not in m:
            continue
        col = df.get_column(m[f])
        num, bad, missing = _numbers(col)
        flag(missing, "missing_value", f"column {_show(m[f])} ({f}) is empty")
        if bad.any():
            idx = np.flatnonzero(bad)
            shown = np.full(n, "", dtype=object)
            text = col.cast(pl.String)[idx.tolist()].to_list()
            shown[idx] = [f"column {_show(m[f])} ({f}): {_show(v)} is not a number" for v in text]
            flag(bad, "not_a_number", shown)
        if f == "spread" and bf.mapping.spread_in_points:
            values["spread_points"] = num
        else:
            values[f] = num
    row = np.arange(n, dtype=np.int64) + offset
    return RawBars(src, bf, ts, values, reason, detail, row, cells, tz)


def _numbers(col: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 values, 'not a number' mask, 'empty' mask of a column of any type."""
    if col.dtype.is_numeric():
        num = col.cast(pl.Float64)
        missing = num.is_null().to_numpy()
        return num.fill_null(np.nan).to_numpy(), np.zeros(col.len(), bool), missing
    text = col.cast(pl.String).str.strip_chars()
    missing = (text.is_null() | (text == "")).to_numpy()
    num = text.cast(pl.Float64, strict=False)
    bad = num.is_null().to_numpy() & ~missing
    return num.fill_null(np.nan).to_numpy(), bad, missing
