"""The Ray edge of the bars stage: a tick dataset in, a bars directory out.

Tick dataset (written by ``aio ingest``)::

    TICKS_DIR/symbol=EURUSD/date=2019-02-04/part-0.parquet   (TICK_SCHEMA, sorted by ts)

Names starting with ``_`` or ``.`` (``_quarantine``, temporary files) are not data. For each
symbol the day files are listed in stream order (date, then part) and cut into contiguous
groups of about equal ticks (:func:`file_groups`, about 4 per CPU). Each group is one plain
Ray task (:func:`file_group_partials`): it decodes its files with pyarrow (only the tick
columns, on its own CPU), runs the compiled kernel on each file as decoded (no concatenation,
no copy), joins the files' minute bars and rolls them up once, and returns its *partial* bars
as numpy blocks (about 2,000 rows a day; the ticks never enter the object store). Day files
are disjoint in time, so the partials of consecutive groups meet only at group boundaries:
the driver concatenates them in stream order and merges the boundary bars exactly, without a
sort or shuffle (:func:`aio_ray.bars.resample.bars_from_partial_blocks`), checks that every
timeframe's ``ticks`` add up to the rows in the files' Parquet metadata, and writes the bars
(:mod:`aio_ray.bars.store`).

Why plain tasks and not ``ray.data.read_parquet`` + ``map_batches`` (kept as
``packing="ray"``): the work per day file is a few milliseconds of kernel after the Parquet
decode, so Ray Data's fixed cost per dataset (sampling files to estimate sizes, starting the
streaming executor, bundling blocks) and its per-block overhead were larger than the kernel
itself; in ``python bench/bars.py`` that path ran at 5-16M ticks/s, where the tasks run at
the speed of decoding the Parquet files.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import resource
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import ray
import ray.data
from ray.data import DataContext

from aio_ray.bars.config import BarsConfig
from aio_ray.bars.resample import (
    bars_from_partial_blocks,
    bars_from_partials,
    block_partial_bars,
    check_conservation,
    partial_blocks,
)
from aio_ray.bars.store import (
    remove_other_timeframes,
    updated_manifest,
    write_bars,
    write_manifest,
)
from aio_ray.bars.timeframes import DailyClose, Timeframe, check_daily_close, parse_timeframes
from aio_ray.errors import BarsError
from aio_ray.raycluster import cluster_resources
from aio_ray.schema import BAR_SCHEMA, TICK_COLUMNS, TICK_SCHEMA

log = logging.getLogger(__name__)

__all__ = [
    "TARGET_SHARD_TICKS",
    "TickFile",
    "build_bars",
    "build_bars_from_config",
    "discover_tick_files",
    "file_group_partials",
    "file_groups",
    "plan_shards",
    "read_tick_file",
    "shard_partials_ray",
    "shard_partials_tasks",
]

_DEFAULTS = BarsConfig()


@dataclass(frozen=True)
class TickFile:
    """One Parquet file of the tick dataset: ``rows`` from its metadata."""

    symbol: str
    date: str
    path: Path
    rows: int


def _is_data_name(name: str) -> bool:
    return not name.startswith(("_", "."))


def _part_key(path: Path) -> tuple[int, str]:
    stem = path.stem  # part-12 -> 12, so part-10 sorts after part-9
    tail = stem.rsplit("-", 1)[-1]
    return (int(tail) if tail.isdigit() else -1, path.name)


def _check_tick_file(path: Path) -> int:
    try:
        meta = pq.ParquetFile(path)
        schema = meta.schema_arrow
        rows = meta.metadata.num_rows
    except (OSError, pa.ArrowInvalid) as exc:
        raise BarsError(f"{path}: cannot read tick file: {exc}") from exc
    for field in TICK_SCHEMA:
        if field.name not in schema.names:
            raise BarsError(f"{path}: tick file lacks column {field.name!r}; has {schema.names}")
        have = schema.field(field.name).type
        if have != field.type:
            raise BarsError(f"{path}: tick column {field.name!r} is {have}, expected {field.type}")
    return int(rows)


def discover_tick_files(
    ticks_dir: str | Path, symbols: Iterable[str] | None = None
) -> dict[str, list[TickFile]]:
    """The tick dataset's files per symbol, in stream order (date, then part number).

    Checks every file's schema against :data:`~aio_ray.schema.TICK_SCHEMA` from its Parquet
    footer (no data read). Raises BarsError for a missing directory, a missing requested
    symbol, a file with the wrong schema, or no tick files at all.
    """
    root = Path(ticks_dir)
    if not root.is_dir():
        raise BarsError(f"{root}: tick dataset directory does not exist")
    found: dict[str, list[TickFile]] = {}
    for sym_dir in sorted(root.iterdir()):
        if not (
            sym_dir.is_dir() and _is_data_name(sym_dir.name) and sym_dir.name.startswith("symbol=")
        ):
            continue
        symbol = sym_dir.name.split("=", 1)[1].upper()
        files: list[TickFile] = []
        for date_dir in sorted(sym_dir.iterdir()):
            if not (
                date_dir.is_dir()
                and _is_data_name(date_dir.name)
                and date_dir.name.startswith("date=")
            ):
                continue
            date = date_dir.name.split("=", 1)[1]
            for path in sorted(date_dir.glob("*.parquet"), key=_part_key):
                if _is_data_name(path.name):
                    files.append(TickFile(symbol, date, path, _check_tick_file(path)))
        if files:
            found[symbol] = files
    if symbols is not None:
        wanted = [s.upper() for s in symbols]
        missing = [s for s in wanted if s not in found]
        if missing:
            raise BarsError(
                f"{root}: no tick files for symbol(s) {missing}; present: {sorted(found)}"
            )
        found = {s: found[s] for s in wanted}
    if not found:
        raise BarsError(
            f"{root}: no tick files (expected symbol=XXX/date=YYYY-MM-DD/part-0.parquet)"
        )
    return found


def _shard_partials(
    batch: pa.Table, timeframes: tuple[str, ...], daily_close: DailyClose, strict_order: bool
) -> pa.Table:
    """Ray ``map_batches`` function: one block of ticks -> its partial bars + node id."""
    source = "tick block"
    if batch.num_rows:
        first = batch.column("ts")[0].as_py()
        source = f"tick block starting {first.isoformat()}"
    part = block_partial_bars(
        batch.select(list(TICK_COLUMNS)), timeframes, daily_close, source, strict_order=strict_order
    )
    node = ray.get_runtime_context().get_node_id()
    return part.append_column("node_id", pa.repeat(node, part.num_rows))


def read_tick_file(path: str | Path) -> pa.Table:
    """The tick columns of one tick file, decoded on this thread (a map task owns one CPU).

    No pre-buffering: for a local file it is one more copy (15% of the read on day files)."""
    try:
        return pq.ParquetFile(path, pre_buffer=False).read(
            columns=list(TICK_COLUMNS), use_threads=False
        )
    except (OSError, pa.ArrowInvalid) as exc:
        raise BarsError(f"{path}: cannot read tick file: {exc}") from exc


def _source(path: str, table: pa.Table) -> str:
    if not table.num_rows:
        return f"tick file {path}"
    first = table.column("ts")[0].as_py()
    return f"tick block starting {first.isoformat()} in {path}"


def file_group_partials(
    paths: list[str], timeframes: tuple[str, ...], daily_close: DailyClose
) -> tuple[str, dict[int, Any], float]:
    """One map task: read a contiguous run of tick files (stream order) with pyarrow and run
    the kernel on each as decoded; returns ``(node_id, partial blocks by tf_minutes, peak RSS
    of the worker process in MB)``.

    The ticks never leave the task: only the partial bars (about 2,000 rows a day, numpy
    arrays that Ray ships without pickling their data) go back to the driver.
    """
    tables = [read_tick_file(p) for p in paths]
    sources = [_source(p, t) for p, t in zip(paths, tables)]
    blocks = partial_blocks(tables, timeframes, daily_close, sources)
    del tables
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return ray.get_runtime_context().get_node_id(), blocks, peak_mb


def _ensure_ray() -> None:
    if not ray.is_initialized():
        ray.init()  # joins RAY_ADDRESS when set, else starts a local head


def _bars_error_in(exc: BaseException) -> str | None:
    """The message of a BarsError raised inside a Ray task, if ``exc`` carries one.

    Ray Data wraps a task's exception (``RayTaskError(UserCodeException)``) and keeps the
    original only as text in the remote traceback, so the message is recovered from there.
    """
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        cause = getattr(e, "cause", None)
        if isinstance(cause, BaseException) and cause is not e:  # RayTaskError: the original
            stack.append(cause)
            continue
        if isinstance(e, BarsError):
            return str(e)
        stack += [e.__cause__, e.__context__, getattr(e, "cause", None)]
    found = _REMOTE_BARS_ERROR.search(str(exc))
    return found.group(1).strip() if found else None


_REMOTE_BARS_ERROR = re.compile(r"(?:aio_ray\.errors\.)?BarsError: (.+)")


Packing = Literal["files", "ray"]


def plan_shards(files: list[TickFile], cpus: float, files_per_shard: int | None = None) -> int:
    """Number of map tasks for ``files``: ``ceil(len(files) / files_per_shard)`` when given, else
    enough for 4 tasks per CPU and at most :data:`TARGET_SHARD_TICKS` ticks per task (never
    more tasks than files). Big shards keep Ray's per-task cost small next to the work."""
    n = len(files)
    if files_per_shard is not None:
        if files_per_shard < 1:
            raise BarsError(f"files_per_shard must be >= 1, got {files_per_shard}")
        return max(1, math.ceil(n / files_per_shard))
    rows = sum(f.rows for f in files)
    return max(1, min(n, max(4 * max(1, int(cpus)), math.ceil(rows / TARGET_SHARD_TICKS))))


TARGET_SHARD_TICKS = 8_000_000


def _read_ticks(paths: list[str], packing: Packing, shards: int) -> Any:
    """``ray.data.read_parquet`` of ``paths`` (in stream order).

    ``"files"``: the file-fragment reader (``use_datasource_v2=False``), which cuts the ordered
    file list into ``shards`` contiguous read tasks and never splits a file, so every block is
    a contiguous, sorted piece of the stream. ``"ray"``: Ray's default reader, which bin-packs
    row groups of several files per task by size (blocks may hold pieces out of order;
    :func:`~aio_ray.bars.resample.block_partial_bars` copes).
    """
    if packing == "ray":
        return ray.data.read_parquet(paths, partitioning=None).select_columns(list(TICK_COLUMNS))
    ctx = DataContext.get_current()
    saved = ctx.use_datasource_v2
    ctx.use_datasource_v2 = False
    try:  # the dataset keeps its own copy of the context
        return ray.data.read_parquet(
            paths, columns=list(TICK_COLUMNS), partitioning=None, override_num_blocks=shards
        )
    finally:
        ctx.use_datasource_v2 = saved


def file_groups(files: list[TickFile], shards: int) -> list[list[TickFile]]:
    """Cut ``files`` (stream order) into ``shards`` contiguous groups of about equal ticks."""
    shards = max(1, min(shards, len(files)))
    rows = [max(1, f.rows) for f in files]
    total = sum(rows)
    groups: list[list[TickFile]] = [[] for _ in range(shards)]
    seen = 0
    for i, (f, r) in enumerate(zip(files, rows)):
        # group of the file's middle tick, but never fewer files left than groups to fill
        g = min(shards - 1, int((seen + r / 2) * shards / total))
        g = max(g, shards - (len(files) - i))
        g = max(g, next((j for j in range(shards - 1, -1, -1) if groups[j]), 0))
        groups[g].append(f)
        seen += r
    return [g for g in groups if g]


def shard_partials_tasks(
    files: list[TickFile],
    timeframes: tuple[Timeframe, ...],
    daily_close: DailyClose,
    *,
    shards: int = 1,
    cpus_per_task: float = 1.0,
    max_concurrent_tasks: int | None = None,
    ray_remote_args: dict[str, Any] | None = None,
) -> tuple[list[dict[int, Any]], set[str], int, float]:
    """Partial kernel blocks of contiguous groups of ``files`` (one symbol, stream order), one
    Ray task per group; returned in stream order with the ids of the nodes that ran them, the
    number of tasks and the largest peak RSS (MB) of the worker processes that ran them."""
    groups = file_groups(files, shards)
    task = ray.remote(file_group_partials).options(
        num_cpus=cpus_per_task, max_retries=0, **(ray_remote_args or {})
    )
    names = tuple(tf.name for tf in timeframes)
    refs: list[Any] = []
    pending: list[Any] = []
    for group in groups:
        if max_concurrent_tasks is not None and len(pending) >= max_concurrent_tasks:
            _, pending = ray.wait(pending, num_returns=1)
        ref = task.remote([str(f.path) for f in group], names, daily_close)
        refs.append(ref)
        pending.append(ref)
    try:
        out = ray.get(refs)
    except Exception as exc:
        inner = _bars_error_in(exc)
        if inner is not None:
            raise BarsError(f"{files[0].symbol}: {inner}") from exc
        raise
    return (
        [b for _, b, _ in out],
        {n for n, _, _ in out},
        len(groups),
        max(m for _, _, m in out),
    )


def shard_partials_ray(
    files: list[TickFile],
    timeframes: tuple[Timeframe, ...],
    daily_close: DailyClose,
    *,
    packing: Packing = "files",
    shards: int = 1,
    cpus_per_task: float = 1.0,
    max_concurrent_tasks: int | None = None,
    ray_remote_args: dict[str, Any] | None = None,
    progress: bool = False,
) -> list[pa.Table]:
    """Partial bars of every block of ``files`` (one symbol, stream order), computed by Ray
    Data map tasks; returned in block order, each with a ``node_id`` column naming the node."""
    if packing not in ("files", "ray"):
        raise BarsError(f"packing must be 'files' or 'ray', got {packing!r}")
    ds = _read_ticks([str(f.path) for f in files], packing, shards)
    ds = ds.map_batches(
        _shard_partials,
        batch_format="pyarrow",
        batch_size=None,
        zero_copy_batch=True,
        fn_kwargs={
            "timeframes": tuple(tf.name for tf in timeframes),
            "daily_close": daily_close,
            "strict_order": packing == "files",
        },
        num_cpus=cpus_per_task,
        concurrency=max_concurrent_tasks,
        **(ray_remote_args or {}),
    )
    # Blocks come back in read order: with ordered shards, partials that meet inside a
    # millisecond keep stream order in the merge.
    ds.context.execution_options.preserve_order = True
    ds.context.enable_progress_bars = progress
    # One fused read+map operator with tiny outputs: Ray Data's per-operator reservation
    # would cap it at half the cluster's CPUs (one of two on a 2-CPU node) for no benefit.
    ds.context.op_resource_reservation_enabled = False
    try:
        refs = ds.to_arrow_refs()
        return [t for t in ray.get(refs) if t.num_rows]
    except Exception as exc:
        inner = _bars_error_in(exc)
        if inner is not None:
            raise BarsError(f"{files[0].symbol}: {inner}") from exc
        raise


def build_bars(
    ticks_dir: str | Path,
    bars_dir: str | Path,
    timeframes: Iterable[str] = _DEFAULTS.timeframes,
    daily_close: DailyClose = _DEFAULTS.daily_close,
    symbols: Iterable[str] | None = None,
    *,
    packing: Packing = "files",
    files_per_shard: int | None = None,
    cpus_per_task: float = 1.0,
    max_concurrent_tasks: int | None = None,
    ray_remote_args: dict[str, Any] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Build bars of every timeframe from a tick dataset with Ray tasks and write them.

    Parameters
    ----------
    ticks_dir
        Tick dataset root (``symbol=XXX/date=YYYY-MM-DD/*.parquet``); ``_``/``.`` names skipped.
    bars_dir
        Output root (``timeframe=TF/symbol=XXX/part-0.parquet`` and ``_manifest.json``). A
        built symbol's bars are replaced as a whole (files of timeframes not built this time
        are removed); other symbols' files and manifest entries are kept.
    timeframes
        Names such as ``"1m"``, ``"15m"``, ``"4h"``, ``"1d"`` (default: ``BarsConfig``).
    daily_close
        ``"utc"`` (day cut at 00:00 UTC) or ``"new_york_close"`` (17:00 America/New_York,
        DST aware; the 1d bar is labelled by its open time in UTC).
    symbols
        Symbols to build; None: every symbol in the dataset.
    packing
        ``"files"`` (default): each Ray task reads a contiguous run of day files with pyarrow
        and runs the kernel on them, so shards are ordered pieces of the stream and the result
        is exact even where two shards meet inside a millisecond; an unsorted tick file is an
        error. ``"ray"``: ``ray.data.read_parquet`` + ``map_batches`` with Ray Data's default
        reader, which sizes the blocks and may pack row groups of several files out of order;
        blocks are cut into sorted runs, and the result is still exact unless a row-group
        boundary falls inside a run of same-millisecond ticks (slower: Ray Data's fixed and
        per-block costs exceed the kernel's work).
    files_per_shard
        With ``packing="files"``: day files per task; None: about 4 tasks per cluster CPU
        and at most 8M ticks per task (:func:`plan_shards`), groups of about equal ticks.
    cpus_per_task
        CPUs declared by each map task (the task decodes Parquet on one thread).
    max_concurrent_tasks
        At most this many map tasks at a time (None: as many as the CPUs allow).
    ray_remote_args
        Extra Ray options for the map tasks (e.g. ``{"scheduling_strategy": "SPREAD"}``).
    progress
        Show Ray Data progress bars.

    Uses the running Ray (local or a cluster); calls ``ray.init()`` if none is (which joins
    ``RAY_ADDRESS`` when set).

    Returns
    -------
    dict
        ``ticks_total``, per-symbol ``ticks``/``files``/``shards``/``rows`` (per timeframe),
        ``seconds`` (``map``: the Ray tasks, ``merge``, ``write``) and ``worker_peak_rss_mb``
        (largest peak RSS of a worker that ran a task), ``nodes`` (ids of the nodes that ran
        map tasks), total ``seconds`` and the arguments used.

    Raises
    ------
    BarsError
        Unknown timeframe or daily_close, missing/empty tick dataset, a tick file with the
        wrong schema, unsorted or non-finite ticks (naming the block), a conservation failure.
    """
    started = time.perf_counter()
    tfs = parse_timeframes(timeframes)
    check_daily_close(daily_close)
    if packing not in ("files", "ray"):
        raise BarsError(f"packing must be 'files' or 'ray', got {packing!r}")
    if files_per_shard is not None and files_per_shard < 1:
        raise BarsError(f"files_per_shard must be >= 1 or None, got {files_per_shard}")
    found = discover_tick_files(ticks_dir, symbols)
    empty = [s for s, files in found.items() if sum(f.rows for f in files) == 0]
    if empty:
        raise BarsError(f"{ticks_dir}: the tick files of {empty} hold no ticks")
    _ensure_ray()
    cpus = float(cluster_resources().get("CPU", 1.0))
    summary_syms: dict[str, dict[str, Any]] = {}
    nodes: set[str] = set()
    for symbol, files in found.items():
        n_ticks = sum(f.rows for f in files)
        t0 = time.perf_counter()
        shards = plan_shards(files, cpus, files_per_shard)
        if packing == "files":
            blocks, used, shards, worker_mb = shard_partials_tasks(
                files,
                tfs,
                daily_close,
                shards=shards,
                cpus_per_task=cpus_per_task,
                max_concurrent_tasks=max_concurrent_tasks,
                ray_remote_args=ray_remote_args,
            )
            t1 = time.perf_counter()
            nodes.update(used)
            partial_rows = sum(b[0].shape[1] for p in blocks for b in p.values())
            bars = bars_from_partial_blocks(blocks, tfs)
        else:
            parts = shard_partials_ray(
                files,
                tfs,
                daily_close,
                packing=packing,
                shards=shards,
                cpus_per_task=cpus_per_task,
                max_concurrent_tasks=max_concurrent_tasks,
                ray_remote_args=ray_remote_args,
                progress=progress,
            )
            t1 = time.perf_counter()
            for p in parts:
                nodes.update(p.column("node_id").unique().to_pylist())
            partial_rows = sum(p.num_rows for p in parts)
            shards = len(parts)
            worker_mb = None
            bars = bars_from_partials(parts)
        bars = {tf.name: bars.get(tf.name, BAR_SCHEMA.empty_table()) for tf in tfs}
        check_conservation(bars, n_ticks, f"{ticks_dir} {symbol}")
        t2 = time.perf_counter()
        # Parquet encoding releases the GIL: write the timeframes side by side.
        with ThreadPoolExecutor(max_workers=min(4, len(bars))) as pool:
            list(pool.map(write_bars, repeat(bars_dir), bars, repeat(symbol), bars.values()))
        removed = remove_other_timeframes(bars_dir, symbol, keep=list(bars))
        if removed:
            log.info("bars %s: removed stale timeframes %s", symbol, removed)
        t3 = time.perf_counter()
        summary_syms[symbol] = {
            "ticks": n_ticks,
            "files": len(files),
            "shards": shards,
            "first_date": files[0].date,
            "last_date": files[-1].date,
            "rows": {tf: t.num_rows for tf, t in bars.items()},
            "partial_rows": partial_rows,
            "worker_peak_rss_mb": None if worker_mb is None else round(worker_mb, 1),
            "seconds": {
                "map": round(t1 - t0, 3),
                "merge": round(t2 - t1, 3),
                "write": round(t3 - t2, 3),
            },
        }
        log.info(
            "bars %s: %d ticks from %d files -> %s",
            symbol,
            n_ticks,
            len(files),
            summary_syms[symbol]["rows"],
        )
    manifest = updated_manifest(
        bars_dir,
        symbols={s: {"ticks": v["ticks"], "rows": v["rows"]} for s, v in summary_syms.items()},
        daily_close=daily_close,
        source_ticks_dir=str(Path(ticks_dir).resolve()),
    )
    write_manifest(bars_dir, manifest)
    return {
        "ticks_dir": str(ticks_dir),
        "bars_dir": str(bars_dir),
        "timeframes": [tf.name for tf in tfs],
        "daily_close": daily_close,
        "ticks_total": sum(v["ticks"] for v in summary_syms.values()),
        "symbols": summary_syms,
        "nodes": sorted(nodes),
        "seconds": round(time.perf_counter() - started, 3),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def build_bars_from_config(
    ticks_dir: str | Path,
    bars_dir: str | Path,
    config: BarsConfig,
    symbols: Iterable[str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`build_bars` with ``timeframes`` and ``daily_close`` from a :class:`BarsConfig`."""
    return build_bars(ticks_dir, bars_dir, config.timeframes, config.daily_close, symbols, **kwargs)
