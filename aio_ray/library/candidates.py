"""Every candidate of a population search, in bulk: write, count, read back (library side).

Candidates are written a population at a time (one multi-row upsert in one transaction, on
SQLite and PostgreSQL alike), keyed by ``(run_id, number)``: a population written twice (a
retried Tune trial) replaces itself instead of duplicating. Reading back streams in batches
so a million-candidate run never sits in memory at once.

Units and conventions are those of :class:`aio_ray.library.models.CandidateRow`; returns and
window metrics are float32 little-endian blobs (:func:`pack` / :func:`unpack`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select

from aio_ray.library.models import CandidateRow, ReturnLayout, canonical_json, now_ms, table_of
from aio_ray.library.repo import Library
from aio_ray.schema import SUMMARY_METRICS

__all__ = [
    "CANDIDATES",
    "LAYOUTS",
    "WINDOW_METRICS",
    "candidate_counts",
    "iter_candidates",
    "pack",
    "record_candidates",
    "record_layout",
    "return_layout",
    "unpack",
]

CANDIDATES = table_of(CandidateRow)
LAYOUTS = table_of(ReturnLayout)
WINDOW_METRICS: tuple[str, ...] = (*SUMMARY_METRICS, "end_exits")
"""Columns of a candidate's ``window_metrics`` matrix, in order (``end_exits``: trades closed
only because the window ended)."""

_BATCH = 2_000


def pack(a: np.ndarray) -> bytes:
    """float32 little-endian bytes of ``a`` (any shape, flattened in C order)."""
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def unpack(blob: bytes | None, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The float32 array of :func:`pack` (empty for None), reshaped when ``shape`` is given."""
    if blob is None:
        return np.empty(0 if shape is None else (0, *shape[1:]), dtype=np.float32)
    a = np.frombuffer(blob, dtype="<f4")
    return a.reshape(shape) if shape is not None else a


def record_candidates(
    lib: Library, run_id: str, rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]
) -> int:
    """Upsert candidates of ``run_id`` in one transaction; returns how many.

    ``rows`` is either a sequence of row mappings (keys of :class:`CandidateRow`; ``params``
    may stand for ``params_json``) or the same as columns (name -> equal-length sequences),
    which is what a search sends: one driver-level ``executemany`` per population, no ORM
    objects. Raises LibraryError / LibraryUnavailableError when the database refuses the
    write (then nothing of this batch is written).
    """
    cols = _columns(rows)
    n = len(cols["number"]) if cols else 0
    if n == 0:
        return 0
    cols["run_id"] = [run_id] * n
    cols.setdefault("recorded_ms", [now_ms()] * n)
    names = [c.name for c in CANDIDATES.c if c.name in cols]
    data = list(zip(*(cols[c] for c in names), strict=True))
    ph = "?" if lib.dialect == "sqlite" else "%s"
    sets = ", ".join(f"{c} = excluded.{c}" for c in names if c not in ("run_id", "number"))
    sql = (
        f"INSERT INTO {CANDIDATES.name} ({', '.join(names)}) VALUES ({', '.join([ph] * len(names))}) "
        f"ON CONFLICT (run_id, number) DO UPDATE SET {sets}"
    )

    def run(conn: Connection) -> int:
        for i in range(0, n, _BATCH):
            conn.exec_driver_sql(sql, data[i : i + _BATCH])
        return n

    return lib._tx(run, f"record {n} candidates of run {run_id!r}")


def _columns(
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
) -> dict[str, list[Any]]:
    if isinstance(rows, Mapping):
        cols = {k: list(v) for k, v in rows.items()}
    else:
        if not rows:
            return {}
        keys = sorted({k for r in rows for k in r})
        cols = {k: [r.get(k) for r in rows] for k in keys}
    if "params" in cols:
        cols["params_json"] = [canonical_json(p) for p in cols.pop("params")]
    unknown = set(cols) - {c.name for c in CANDIDATES.c}
    if unknown:
        raise ValueError(f"candidates: unknown column(s) {sorted(unknown)}")
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise ValueError(f"candidates: columns of different lengths {sorted(lengths)}")
    return cols


def record_layout(lib: Library, run_id: str, timeframe: str, layout: Mapping[str, Any]) -> None:
    """Store the window / return-column layout of ``run_id``'s candidates on ``timeframe``."""
    row = {"run_id": run_id, "timeframe": timeframe, "layout_json": canonical_json(dict(layout))}
    lib._tx(
        lambda c: lib._upsert(c, LAYOUTS, [row], ["run_id", "timeframe"]),
        f"record the return layout of run {run_id!r} ({timeframe})",
    )


def return_layout(lib: Library, run_id: str, timeframe: str) -> dict[str, Any] | None:
    """The layout stored by :func:`record_layout` (None when absent)."""
    got: str | None = lib._tx(
        lambda c: c.execute(
            select(LAYOUTS.c.layout_json).where(
                LAYOUTS.c.run_id == run_id, LAYOUTS.c.timeframe == timeframe
            )
        ).scalar_one_or_none(),
        "read a return layout",
    )
    return None if got is None else dict(json.loads(got))


def candidate_counts(lib: Library, run_id: str) -> dict[str, int]:
    """``{"ok": n, "failed": m}`` for ``run_id`` (zeros when it has no candidates)."""
    got: dict[str, int] = lib._tx(
        lambda c: dict(
            c.execute(
                select(CANDIDATES.c.status, func.count())
                .where(CANDIDATES.c.run_id == run_id)
                .group_by(CANDIDATES.c.status)
            ).all()
        ),
        "count candidates",
    )
    return {"ok": int(got.get("ok", 0)), "failed": int(got.get("failed", 0))}


def iter_candidates(
    lib: Library,
    run_id: str,
    *,
    columns: Sequence[str] | None = None,
    status: str | None = None,
    batch: int = 10_000,
) -> Iterator[list[dict[str, Any]]]:
    """Batches of candidate rows of ``run_id`` in candidate order (``params`` decoded).

    ``columns`` limits what is read (``number`` is always included); ``status`` filters
    ("ok" / "failed"). Memory is bounded by ``batch`` rows.
    """
    cols = [CANDIDATES.c[c] for c in (columns or [c.name for c in CANDIDATES.c])]
    if "number" not in [c.name for c in cols]:
        cols.insert(0, CANDIDATES.c.number)
    last = -1
    while True:
        q = select(*cols).where(CANDIDATES.c.run_id == run_id, CANDIDATES.c.number > last)
        if status is not None:
            q = q.where(CANDIDATES.c.status == status)
        q = q.order_by(CANDIDATES.c.number).limit(batch)

        def read(c: Any, q: Any = q) -> list[dict[str, Any]]:
            return [dict(r._mapping) for r in c.execute(q)]

        rows: list[dict[str, Any]] = lib._tx(read, "read candidates")
        if not rows:
            return
        for r in rows:
            if "params_json" in r:
                r["params"] = json.loads(r.pop("params_json"))
        yield rows
        last = int(rows[-1]["number"])
