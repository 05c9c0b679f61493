"""Tick files in Parquet or CSV, mapped onto the canonical tick schema.

A file holds one row per tick with a time, a bid and an ask, and optionally the volumes;
:class:`ColumnMapping` says which of its columns is which and how an integer time is to be
read. :func:`read_tick_file` returns the whole file as canonical ticks, or raises: a file is
never returned in part.

Errors name the file and, where it can be found, the column and the row (Parquet) or line
(CSV): :class:`~aio_ray.errors.SourceError` for a path that cannot be opened,
:class:`~aio_ray.errors.CorruptFileError` for content that cannot be decoded (not Parquet,
binary data in a CSV, ragged rows, an empty file) and :class:`~aio_ray.errors.SchemaError`
for a missing column or a value that is not what its column should hold.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from aio_ray.errors import ConfigError, CorruptFileError, SchemaError, SourceError
from aio_ray.schema import TICK_COLUMNS, conform_ticks

__all__ = ["ColumnMapping", "TsUnit", "read_tick_file"]

TsUnit = Literal["s", "ms", "us", "ns"]
_TS_UNITS: dict[str, tuple[int, int]] = {
    "s": (1000, 1),
    "ms": (1, 1),
    "us": (1, 1000),
    "ns": (1, 1_000_000),
}
"""Integer epoch unit -> (multiply, floor-divide) that turns it into milliseconds."""
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".lz4")
_HEAD_BYTES = 1 << 16
_INT_RE = r"^\s*[+-]?\d+\s*$"
_FLOAT_RE = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"


def _show(text: object, limit: int = 60) -> str:
    """A safe, bounded rendering of a name or value taken from a file."""
    r = repr(text)
    return r if len(r) <= limit else r[: limit - 4] + "...'"


@dataclass(frozen=True)
class ColumnMapping:
    """Which column of a tick file holds each canonical tick column.

    Attributes
    ----------
    ts, bid, ask : file column names (default: the canonical names). Prices in quote
        currency.
    bid_volume, ask_volume : file column names, or None when the file has no volumes: the
        volume is then 0.0 for every tick.
    ts_unit : unit of an integer or decimal epoch time: ``"s"``, ``"ms"`` (default), ``"us"``
        or ``"ns"``. Ignored for ISO-8601 text and timestamp columns; naive times are UTC.
    """

    ts: str = "ts"
    bid: str = "bid"
    ask: str = "ask"
    bid_volume: str | None = "bid_volume"
    ask_volume: str | None = "ask_volume"
    ts_unit: TsUnit = "ms"

    def __post_init__(self) -> None:
        for field in TICK_COLUMNS:
            name = getattr(self, field)
            optional = field.endswith("_volume")
            if name is None and optional:
                continue
            if not isinstance(name, str) or not name:
                need = "a column name or None" if optional else "a non-empty column name"
                raise ConfigError(f"ColumnMapping.{field} must be {need}, got {_show(name)}")
        if self.ts_unit not in _TS_UNITS:
            raise ConfigError(
                f"ColumnMapping.ts_unit must be one of {sorted(_TS_UNITS)}, got {_show(self.ts_unit)}"
            )

    def columns(self) -> dict[str, str]:
        """Canonical name -> file column name, for the columns the file must have."""
        return {f: getattr(self, f) for f in TICK_COLUMNS if getattr(self, f) is not None}


def read_tick_file(
    path: str | Path,
    mapping: ColumnMapping | None = None,
    fmt: Literal["auto", "parquet", "csv"] = "auto",
) -> pa.Table:
    """Read a whole Parquet or CSV tick file as canonical ticks (:data:`TICK_SCHEMA`).

    Parameters
    ----------
    path : the file. CSV may be compressed (``.gz``, ``.bz2``, ``.zst``) and use ``,``,
        ``;``, tab or ``|`` as delimiter (taken from the header line).
    mapping : the file's column names and time unit; default: canonical names, epoch ms.
    fmt : ``"parquet"``, ``"csv"``, or ``"auto"`` (by suffix, else by the Parquet magic bytes).

    Returns
    -------
    The ticks in file order. Times: integer or decimal epoch in ``mapping.ts_unit``, ISO-8601
    text (with or without offset; naive = UTC) or a timestamp column, floored to the ms.
    An empty price or volume becomes NaN, for validation to quarantine.

    Raises
    ------
    SourceError : the path does not exist or cannot be opened.
    CorruptFileError : the content cannot be decoded (not Parquet, binary data, ragged CSV
        rows, an empty file).
    SchemaError : a mapped column is missing or duplicated, or holds a value that is not a
        number (prices, volumes) or a time (ts); names the column and the row or line.
    ConfigError : ``fmt`` is not one of the accepted values.
    """
    mapping = mapping if mapping is not None else ColumnMapping()
    path = Path(path)
    src = str(path)
    if fmt not in ("auto", "parquet", "csv"):
        raise ConfigError(f"fmt must be 'auto', 'parquet' or 'csv', got {_show(fmt)}")
    if not path.exists():
        raise SourceError(src, "no such file")
    if not path.is_file():
        raise SourceError(src, "not a regular file")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise SourceError(src, f"cannot be opened ({exc.strerror or exc})") from exc
    if fmt == "auto":
        fmt = _detect_format(path, magic)
    if fmt == "parquet":
        table, where = _read_parquet(path, mapping), "row"
    else:
        table, where = _read_csv(path, mapping), "line"
    return _to_canonical(table, mapping, src, where)


def _detect_format(path: Path, magic: bytes) -> Literal["parquet", "csv"]:
    name = path.name.lower()
    for comp in _COMPRESSION_SUFFIXES:
        name = name.removesuffix(comp)
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    return "parquet" if magic == b"PAR1" else "csv"


def _check_columns(names: list[str], mapping: ColumnMapping, src: str) -> list[str]:
    """The distinct file columns to read; SchemaError if one is missing or duplicated."""
    wanted = mapping.columns()
    missing = [f"{_show(col)} (for {field})" for field, col in wanted.items() if col not in names]
    if missing:
        have = ", ".join(_show(n, 40) for n in names[:20]) + (", ..." if len(names) > 20 else "")
        raise SchemaError(src, f"missing column {', '.join(missing)}; the file has: {have}")
    for col in set(wanted.values()):
        if names.count(col) > 1:
            raise SchemaError(src, f"column {_show(col)} appears {names.count(col)} times")
    return list(dict.fromkeys(wanted.values()))


# --------------------------------------------------------------------------------- Parquet


def _read_parquet(path: Path, mapping: ColumnMapping) -> pa.Table:
    src = str(path)
    try:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFileError(src, f"not a readable Parquet file ({_short(exc)})") from exc
    cols = _check_columns(names, mapping, src)
    try:
        return pf.read(columns=cols)
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFileError(src, f"Parquet data cannot be decoded ({_short(exc)})") from exc


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------- CSV


def _read_head(path: Path) -> bytes:
    """Up to 64 KiB of the (decompressed) file, for the header and sanity checks."""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            return bytes(stream.read(_HEAD_BYTES))
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFileError(str(path), f"cannot be decompressed ({_short(exc)})") from exc


def _header(path: Path, head: bytes) -> tuple[list[str], str]:
    """The header's column names and the delimiter, or CorruptFileError."""
    src = str(path)
    if not head.strip():
        raise CorruptFileError(src, "file is empty (no header line)")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise CorruptFileError(src, f"binary data, not CSV text (NUL byte at offset {nul})")
    text = head.decode("utf-8", errors="replace")
    if len(head) < _HEAD_BYTES:
        bad = _first_bad_utf8(head)
    else:  # the head may end inside a multi-byte character
        bad = _first_bad_utf8(head[: _HEAD_BYTES - 4])
    if bad is not None:
        line = head[:bad].count(b"\n") + 1
        raise CorruptFileError(src, f"not UTF-8 text (byte offset {bad}, line {line})")
    text = text.removeprefix("\ufeff")
    first = re.sub(r'"[^"]*"', "", text.split("\n", 1)[0])  # quoted names may hold anything
    delimiter = max(",;\t|", key=first.count) if any(c in first for c in ",;\t|") else ","
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    except (csv.Error, StopIteration) as exc:
        raise CorruptFileError(src, f"header line cannot be parsed ({exc})") from exc
    return header, delimiter


def _first_bad_utf8(data: bytes) -> int | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def _read_csv(path: Path, mapping: ColumnMapping) -> pa.Table:
    src = str(path)
    head = _read_head(path)
    header, delimiter = _header(path, head)
    cols = _check_columns(header, mapping, src)
    types: dict[str, pa.DataType] = {c: pa.float64() for c in cols}
    types[mapping.ts] = pa.string()  # times are parsed here, to report the bad line
    parse = pcsv.ParseOptions(delimiter=delimiter)
    convert = pcsv.ConvertOptions(
        column_types=types, include_columns=cols, strings_can_be_null=True
    )
    try:
        return pcsv.read_csv(str(path), parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        m = re.search(r"In CSV column #(\d+): .*conversion error to double", msg)
        if m and int(m.group(1)) < len(header):
            col = header[int(m.group(1))]
            raise _bad_number(path, parse, col, mapping) from exc
        if "CSV parse error" in msg:
            raise CorruptFileError(
                src, _ragged(path, delimiter, len(header)) or _short(exc)
            ) from exc
        raise CorruptFileError(src, f"CSV cannot be decoded ({_short(exc)})") from exc
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFileError(src, f"CSV cannot be read ({_short(exc)})") from exc


def _bad_number(
    path: Path, parse: pcsv.ParseOptions, col: str, mapping: ColumnMapping
) -> SchemaError:
    """SchemaError naming the first line whose ``col`` is not a number."""
    field = next(f for f, c in mapping.columns().items() if c == col)
    try:
        raw = pcsv.read_csv(
            str(path),
            parse_options=parse,
            convert_options=pcsv.ConvertOptions(
                column_types={col: pa.string()}, include_columns=[col]
            ),
        ).column(0)
        row, value = _first_failure(raw.combine_chunks(), pa.float64())
    except pa.ArrowException:  # the error path must not raise anything else
        row, value = None, None
    where = f"line {row + 2}: " if row is not None else ""
    shown = f"{_show(value)} is" if value is not None else "a value is"
    return SchemaError(str(path), f"{where}column {_show(col)} ({field}): {shown} not a number")


def _first_failure(arr: pa.Array, to: pa.DataType) -> tuple[int | None, object]:
    """Index and value of the first element of ``arr`` that cannot be cast to ``to``."""
    lo, hi = 0, len(arr)
    if _casts(arr, to):
        return None, None
    while hi - lo > 1:  # invariant: arr[lo:hi] holds a failure
        mid = (lo + hi) // 2
        if _casts(arr.slice(lo, mid - lo), to):
            lo = mid
        else:
            hi = mid
    return lo, arr[lo].as_py()


def _casts(arr: pa.Array, to: pa.DataType) -> bool:
    try:
        pc.cast(arr, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _ragged(path: Path, delimiter: str, n_fields: int) -> str | None:
    """Where the first record whose field count differs from the header's is, if found."""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
            reader = csv.reader(text, delimiter=delimiter)
            for record in reader:
                if len(record) != n_fields and record:
                    return (
                        f"line {reader.line_num}: expected {n_fields} fields as in the header, "
                        f"got {len(record)}"
                    )
    except (csv.Error, OSError, pa.ArrowException) as exc:
        return f"malformed CSV ({exc})"
    return None


# ------------------------------------------------------------------------- canonical table


def _to_canonical(table: pa.Table, mapping: ColumnMapping, src: str, where: str) -> pa.Table:
    """Map, convert times to epoch ms, check numbers, then :func:`conform_ticks`."""
    at = _Where(src, where, 2 if where == "line" else 1)  # CSV: header is line 1
    arrays: dict[str, pa.Array] = {}
    for field in TICK_COLUMNS:
        col = getattr(mapping, field)
        if col is None:
            arrays[field] = pa.array(np.zeros(table.num_rows, dtype=np.float32))
            continue
        data = _plain(table.column(col).combine_chunks())
        if field == "ts":
            arrays[field] = _ts_ms(data, mapping.ts_unit, at, f"column {_show(col)} (ts)")
        else:
            arrays[field] = _number(data, src, col, field)
    return conform_ticks(pa.table(arrays), src)


@dataclass(frozen=True)
class _Where:
    """How to name a row of the file in an error: ``line`` (CSV) or ``row`` (Parquet)."""

    src: str
    kind: str
    offset: int

    def error(self, index: int, problem: str) -> SchemaError:
        return SchemaError(self.src, f"{self.kind} {index + self.offset}: {problem}")


def _plain(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        return arr.dictionary_decode()
    return arr


def _number(arr: pa.Array, src: str, col: str, field: str) -> pa.Array:
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t):
        return arr
    if pa.types.is_decimal(t):
        return pc.cast(arr, pa.float64())
    raise SchemaError(src, f"column {_show(col)} ({field}) has type {t}; expected numbers")


def _ts_ms(arr: pa.Array, unit: str, at: _Where, label: str) -> pa.Array:
    """Epoch milliseconds (int64) from an integer, decimal, timestamp, date or text column."""
    if len(arr) == 0:
        return pa.array([], type=pa.int64())
    if arr.null_count:
        row = int(np.flatnonzero(~np.asarray(arr.is_valid()))[0])
        raise at.error(row, f"{label} is empty; every tick needs a time")
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _text_ts_ms(arr, unit, at, label)
    if pa.types.is_integer(t):
        return _epoch_int_ms(arr.cast(pa.int64()), unit, at, label)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return _epoch_float_ms(arr.cast(pa.float64()), unit, at, label)
    if pa.types.is_timestamp(t):  # epoch in the type's unit; a naive timestamp counts as UTC
        return _epoch_int_ms(arr.cast(pa.int64()), t.unit, at, label)
    if pa.types.is_date(t):
        days = arr.cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
        return _epoch_int_ms(days, "s", at, label, scale=86_400)
    raise SchemaError(
        at.src, f"{label} has type {t}; expected epoch numbers, ISO-8601 text or timestamps"
    )


def _epoch_int_ms(arr: pa.Array, unit: str, at: _Where, label: str, scale: int = 1) -> pa.Array:
    mul, div = _TS_UNITS[unit]
    raw = arr.to_numpy()
    limit = np.iinfo(np.int64).max // (mul * scale)
    out_of_range = np.abs(raw) > limit
    if out_of_range.any():
        row = int(np.flatnonzero(out_of_range)[0])
        raise at.error(row, f"{label} epoch value {int(raw[row])} ({unit}) is out of range")
    return pa.array(np.floor_divide(raw * (mul * scale), div))


def _epoch_float_ms(arr: pa.Array, unit: str, at: _Where, label: str) -> pa.Array:
    mul, div = _TS_UNITS[unit]
    raw = arr.to_numpy(zero_copy_only=False)
    ms = np.floor(raw * mul / div + 1e-6)  # decimal seconds like 1549238400.064 land on .064
    bad = ~np.isfinite(ms) | (np.abs(ms) > 9.2e15)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise at.error(row, f"{label} value {raw[row]!r} is not a usable epoch time")
    return pa.array(ms.astype(np.int64))


def _text_ts_ms(arr: pa.Array, unit: str, at: _Where, label: str) -> pa.Array:
    blank = np.asarray(pc.equal(pc.utf8_trim_whitespace(arr), ""))
    if blank.any():
        raise at.error(int(np.flatnonzero(blank)[0]), f"{label} is empty; every tick needs a time")
    if pc.all(pc.match_substring_regex(arr, _INT_RE)).as_py():
        ints = pc.utf8_trim_whitespace(arr)
        if _casts(ints, pa.int64()):
            return _epoch_int_ms(pc.cast(ints, pa.int64()), unit, at, label)
        row, value = _first_failure(ints, pa.int64())
        raise at.error(row or 0, f"{label} value {_show(value)} is not a usable integer epoch")
    is_number = np.asarray(pc.match_substring_regex(arr, _FLOAT_RE))
    if is_number.all():
        return _epoch_float_ms(pc.cast(pc.utf8_trim_whitespace(arr), pa.float64()), unit, at, label)
    if is_number[0]:  # epoch numbers, then something else
        row = int(np.flatnonzero(~is_number)[0])
        raise at.error(
            row, f"{label} value {_show(arr[row].as_py())} is not an epoch number like the first"
        )
    for target in (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns")):
        if _casts(arr, target):  # all with offsets, or all naive (UTC)
            return _ts_ms(pc.cast(arr, target), unit, at, label)
    return _mixed_iso_ms(arr, at, label)


def _mixed_iso_ms(arr: pa.Array, at: _Where, label: str) -> pa.Array:
    """ISO-8601 text mixing offsets and naive times (naive = UTC), via pandas."""
    import pandas as pd  # optional heavy dependency: pandas only for times with mixed UTC offsets

    values = arr.to_pandas()
    parsed = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")
    bad = np.asarray(parsed.isna())
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise at.error(
            row,
            f"{label} value {_show(values.iloc[row])} is neither an epoch number nor an ISO-8601 time",
        )
    ns = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return pa.array(np.floor_divide(ns, 1_000_000))
