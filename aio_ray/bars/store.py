"""The bars directory: one Parquet file per timeframe and symbol, plus a manifest.

Layout::

    BARS_DIR/_manifest.json
    BARS_DIR/timeframe=1m/symbol=EURUSD/part-0.parquet    (zstd, BAR_SCHEMA, sorted by ts)

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

MANIFEST_NAME = "_manifest.json"
PART_NAME = "part-0.parquet"
MANIFEST_FORMAT = 1


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
        pq.write_table(table, tmp, compression="zstd")
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
    source_ticks_dir: str,
) -> dict[str, Any]:
    """The manifest after a build of ``symbols`` (symbol -> ``{"ticks": n, "rows": {tf: n}}``).

    Entries of symbols not rebuilt are kept from the existing manifest (each entry records its
    own ``daily_close``, source and time); top-level ``timeframes``, ``symbols``, ``rows`` and
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


def read_bars(bars_dir: str | Path, timeframe: str, symbol: str | None = None) -> pl.DataFrame:
    """Bars of one timeframe and symbol as a polars DataFrame (BAR_SCHEMA columns, sorted by ts).

    Parameters
    ----------
    bars_dir
        A directory written by :func:`aio_ray.bars.build.build_bars`.
    timeframe
        ``"1m"``, ``"15m"``, ``"4h"``, ``"1d"`` ... (``ts`` is each bar's open time, UTC).
    symbol
        ``"EURUSD"``...; None means the only symbol present (an error if there are several).

    Raises
    ------
    BarsError
        Missing directory, timeframe or symbol, several symbols with ``symbol=None``, or a
        file whose schema is not the bar schema.
    """
    root = Path(bars_dir)
    if not root.is_dir():
        raise BarsError(f"{root}: bars directory does not exist")
    tf = parse_timeframe(timeframe).name
    present = list_symbols(root, tf)
    if not present:
        have = sorted(p.name for p in root.glob("timeframe=*") if (p.is_dir()))
        raise BarsError(f"{root}: no {tf} bars; present: {have or 'none'}")
    if symbol is None:
        if len(present) > 1:
            raise BarsError(f"{root}: {tf} bars exist for several symbols {present}; pass symbol=")
        symbol = present[0]
    symbol = symbol.upper()
    if symbol not in present:
        raise BarsError(f"{root}: no {tf} bars for symbol {symbol}; present: {present}")
    path = bars_path(root, tf, symbol)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise BarsError(f"{path}: cannot read bars file: {exc}") from exc
    if not table.schema.remove_metadata().equals(BAR_SCHEMA):
        raise BarsError(f"{path}: not a bars file; schema is {table.schema}, expected {BAR_SCHEMA}")
    return pl.from_arrow(table)  # type: ignore[return-value]
