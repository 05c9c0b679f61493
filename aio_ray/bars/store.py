"""The bars directory: one Parquet file per timeframe and symbol, plus a manifest.

Layout::

    BARS_DIR/_manifest.json
    BARS_DIR/timeframe=1m/symbol=EURUSD/part-0.parquet    (BAR_SCHEMA, sorted by ts)

Encoding (:data:`BARS_PARQUET_OPTIONS`): ``ts`` delta-packed, no dictionaries (bar prices
rarely repeat), lz4 pages: written 2.7x faster than zstd with default encodings (0.09 against
0.24 s for 167k 1m bars) and read as fast, for 1.4x the disk. Readers take any codec.

Every file is written to a hidden temporary name beside its target and renamed into place,
so a reader never sees half a file. Names starting with ``_`` or ``.`` are not data.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from aio_ray.bars.timeframes import parse_timeframe
from aio_ray.errors import BarsError
from aio_ray.schema import BAR_SCHEMA

__all__ = [
    "BARS_PARQUET_OPTIONS",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "PART_NAME",
    "bars_path",
    "list_symbols",
    "read_bars",
    "read_manifest",
    "remove_other_timeframes",
    "updated_manifest",
    "write_bars",
    "write_manifest",
]

MANIFEST_NAME = "_manifest.json"
PART_NAME = "part-0.parquet"
MANIFEST_FORMAT = 1

#: ``pyarrow.parquet.write_table`` options of every bars file.
BARS_PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "lz4",
    "use_dictionary": False,
    "column_encoding": {"ts": "DELTA_BINARY_PACKED"},
}


def bars_path(bars_dir: str | Path, timeframe: str, symbol: str) -> Path:
    """Path of the bars file of ``timeframe`` (e.g. ``"15m"``) and ``symbol`` (e.g. ``"EURUSD"``)."""
    tf = parse_timeframe(timeframe).name
    return Path(bars_dir) / f"timeframe={tf}" / f"symbol={symbol.upper()}" / PART_NAME


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bars(bars_dir: str | Path, timeframe: str, symbol: str, table: pa.Table) -> Path:
    """Write one timeframe's bars of one symbol atomically (temp file + rename); return the path.

    ``table`` must have :data:`~aio_ray.schema.BAR_SCHEMA`; rows are written sorted by ``ts``.
    """
    if not table.schema.equals(BAR_SCHEMA):
        raise BarsError(f"bars of {symbol} {timeframe} do not have the bar schema: {table.schema}")
    path = bars_path(bars_dir, timeframe, symbol)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    if ts.size > 1 and not bool(np.all(ts[1:] > ts[:-1])):
        table = table.sort_by("ts")
    try:
        pq.write_table(table, tmp, **BARS_PARQUET_OPTIONS)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_manifest(bars_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``_manifest.json`` atomically."""
    path = Path(bars_dir) / MANIFEST_NAME
    _atomic_write_bytes(path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return path


def read_manifest(bars_dir: str | Path) -> dict[str, Any]:
    """The manifest of a bars directory (raises BarsError if absent or unreadable)."""
    path = Path(bars_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise BarsError(f"{path}: no bars manifest (build the bars first)") from exc
    except (OSError, ValueError) as exc:
        raise BarsError(f"{path}: cannot read bars manifest: {exc}") from exc
    if not isinstance(data, dict):
        raise BarsError(f"{path}: bars manifest is not a JSON object")
    return data


def updated_manifest(
    bars_dir: str | Path,
    *,
    symbols: dict[str, dict[str, Any]],
    daily_close: str,
    source_ticks_dir: str | None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest after a build of ``symbols`` (symbol -> ``{"ticks": n, "rows": {tf: n}}``).

    Entries of symbols not rebuilt are kept from the existing manifest (each entry records its
    own ``daily_close``, source and time; ``source`` describes bars not built from a tick
    dataset, e.g. ``aio ingest bars``'s files); top-level ``timeframes``, ``symbols``, ``rows`` and
    ``ticks_total`` describe everything listed.
    """
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    old: dict[str, Any] = {}
    if (Path(bars_dir) / MANIFEST_NAME).exists():
        try:
            old = read_manifest(bars_dir).get("entries", {})
        except BarsError:
            old = {}
    entries = {s: e for s, e in old.items() if s not in symbols}
    for sym, info in symbols.items():
        entries[sym] = {
            "ticks": int(info["ticks"]),
            "rows": {tf: int(n) for tf, n in info["rows"].items()},
            "daily_close": daily_close,
            "source_ticks_dir": source_ticks_dir,
            "created": now,
        }
        if source is not None:
            entries[sym]["source"] = source
    tfs = sorted(
        {tf for e in entries.values() for tf in e["rows"]}, key=lambda t: parse_timeframe(t)
    )
    return {
        "format": MANIFEST_FORMAT,
        "created": now,
        "source_ticks_dir": source_ticks_dir,
        "daily_close": daily_close,
        "timeframes": tfs,
        "symbols": sorted(entries),
        "rows": {
            tf: {s: e["rows"][tf] for s, e in sorted(entries.items()) if tf in e["rows"]}
            for tf in tfs
        },
        "ticks_total": sum(e["ticks"] for e in entries.values()),
        "entries": entries,
    }


def remove_other_timeframes(bars_dir: str | Path, symbol: str, keep: list[str]) -> list[str]:
    """Delete ``symbol``'s bars files of timeframes not in ``keep``; return the removed ones."""
    kept = {parse_timeframe(t).name for t in keep}
    removed = []
    for tf_dir in sorted(Path(bars_dir).glob("timeframe=*")):
        tf = tf_dir.name.split("=", 1)[1]
        path = tf_dir / f"symbol={symbol.upper()}" / PART_NAME
        if tf not in kept and path.is_file():
            path.unlink()
            removed.append(tf)
    return removed


def _is_data_name(name: str) -> bool:
    return not name.startswith(("_", "."))


def list_symbols(bars_dir: str | Path, timeframe: str) -> list[str]:
    """Symbols with a bars file for ``timeframe`` (sorted)."""
    tf_dir = Path(bars_dir) / f"timeframe={parse_timeframe(timeframe).name}"
    if not tf_dir.is_dir():
        return []
    return sorted(
        p.name.split("=", 1)[1]
        for p in tf_dir.iterdir()
        if _is_data_name(p.name) and p.name.startswith("symbol=") and (p / PART_NAME).is_file()
    )


def _missing_bars_error(root: Path, tf: str, symbol: str | None) -> BarsError:
    """Say which level of ``timeframe=TF/symbol=SYM/part-0.parquet`` is missing."""
    tf_dir = root / f"timeframe={tf}"
    want = f"symbol={symbol.upper()}" if symbol else "symbol=SYMBOL"
    if not tf_dir.is_dir():
        have = sorted(p.name for p in root.glob("timeframe=*") if p.is_dir())
        return BarsError(f"{root}: no {tf} bars; present: {have or 'none'}")
    found = sorted(p.name for p in tf_dir.iterdir() if _is_data_name(p.name))
    sym_dirs = [n for n in found if n.startswith("symbol=") and (tf_dir / n).is_dir()]
    if symbol and (tf_dir / want).is_dir():
        inside = sorted(p.name for p in (tf_dir / want).iterdir())
        return BarsError(
            f"{root}: no {PART_NAME} in timeframe={tf}/{want}; found: {inside or 'nothing'}"
        )
    if not sym_dirs:
        return BarsError(
            f"{root}: no {want} folder under timeframe={tf} (the layout is "
            f"timeframe={tf}/{want}/{PART_NAME}); found: {found or 'nothing'}"
        )
    return BarsError(f"{root}: no {want} folder under timeframe={tf}; present: {sym_dirs}")


def _conform_bars(table: pa.Table, path: Path) -> pa.Table:
    """Cast a bars file to :data:`BAR_SCHEMA` when its columns have the right names and types.

    Nullable fields are accepted when they hold no null; extra columns are dropped; ``ts`` may
    be a timestamp of any unit (naive = UTC, other zones converted), prices and volumes any
    float or integer type, ``ticks`` any integer type.
    """
    problems = []
    for field in BAR_SCHEMA:
        if field.name not in table.column_names:
            problems.append(f"missing column {field.name!r}")
            continue
        t = table.schema.field(field.name).type
        if field.name == "ts":
            ok = pa.types.is_timestamp(t)
        elif field.name == "ticks":
            ok = pa.types.is_integer(t)
        else:
            ok = pa.types.is_floating(t) or pa.types.is_integer(t)
        if not ok:
            problems.append(f"column {field.name!r} is {t}, expected {field.type}")
    if problems:
        raise BarsError(f"{path}: not a bars file: {'; '.join(problems)}; expected {BAR_SCHEMA}")
    cols = []
    for field in BAR_SCHEMA:
        col = table.column(field.name)
        if col.null_count:
            first = int(np.flatnonzero(~np.asarray(col.is_valid()))[0])
            raise BarsError(
                f"{path}: column {field.name!r} has {col.null_count} null value(s), first at "
                f"row {first}; every bar needs a value in every column"
            )
        try:
            if field.name == "ts" and col.type.tz is None:
                col = col.cast(pa.timestamp(col.type.unit, tz="UTC"))
            col = col.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise BarsError(
                f"{path}: column {field.name!r} cannot be read as {field.type}: {exc}"
            ) from exc
        cols.append(col)
    out = pa.Table.from_arrays(cols, schema=BAR_SCHEMA)
    ts = out.column("ts").cast(pa.int64()).to_numpy()
    if ts.size > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
        out = out.sort_by("ts")
    return out


def read_bars(bars_dir: str | Path, timeframe: str, symbol: str | None = None) -> pl.DataFrame:
    """Bars of one timeframe and symbol as a polars DataFrame (BAR_SCHEMA columns, sorted by ts).

    Parameters
    ----------
    bars_dir
        A directory written by :func:`aio_ray.bars.build.build_bars` or ``aio ingest bars``
        (any Parquet file at ``timeframe=TF/symbol=SYM/part-0.parquet`` whose columns have the
        bar schema's names and types, nullable or not, is read and cast to it).
    timeframe
        ``"1m"``, ``"15m"``, ``"4h"``, ``"1d"`` ... (``ts`` is each bar's open time, UTC).
    symbol
        ``"EURUSD"``...; None means the only symbol present (an error if there are several).

    Raises
    ------
    BarsError
        Missing directory, timeframe, ``symbol=`` folder or file (the message names the missing
        level), several symbols with ``symbol=None``, a file whose columns are missing or of the
        wrong type, or a null in a column (naming the file, column and first row).
    """
    root = Path(bars_dir)
    if not root.is_dir():
        raise BarsError(f"{root}: bars directory does not exist")
    tf = parse_timeframe(timeframe).name
    present = list_symbols(root, tf)
    if not present:
        raise _missing_bars_error(root, tf, symbol)
    if symbol is None:
        if len(present) > 1:
            raise BarsError(f"{root}: {tf} bars exist for several symbols {present}; pass symbol=")
        symbol = present[0]
    symbol = symbol.upper()
    if symbol not in present:
        if (root / f"timeframe={tf}" / f"symbol={symbol}").is_dir():
            raise _missing_bars_error(root, tf, symbol)
        raise BarsError(f"{root}: no {tf} bars for symbol {symbol}; present: {present}")
    path = bars_path(root, tf, symbol)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise BarsError(f"{path}: cannot read bars file: {exc}") from exc
    return pl.from_arrow(_conform_bars(table, path))  # type: ignore[return-value]
