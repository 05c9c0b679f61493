"""Where every evaluated candidate goes: rows for the library, and the Ray actor that writes
them (one writer per run, on the driver's node, so SQLite needs no shared disk).

:func:`population_rows` turns a population into :class:`aio_ray.library.models.CandidateRow`
dicts (failed candidates included, with their error). :class:`CandidateRecorder` writes each
population in one bulk upsert. When the database refuses a write, the population is kept in
a Parquet spool file under the run's experiment folder (nothing evaluated is lost) and the
error is raised to the island, whose Tune trial then fails: a later ``resume`` evaluates that
population again and writes it once the database takes writes. With each written population
the recorder keeps the island's state after it (beside the run's spool): an island restarted
from an older Tune checkpoint (its last report was cut off by an interruption or a dead
worker) continues from that state, so no written population is evaluated twice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aio_ray.library import Library
from aio_ray.library.candidates import WINDOW_METRICS, record_candidates
from aio_ray.library.models import canonical_json
from aio_ray.strategies.population import METRIC_INDEX, PopulationResult

__all__ = [
    "CandidateRecorder",
    "population_rows",
    "read_island_state",
    "write_island_state",
    "write_spool",
]

log = logging.getLogger(__name__)


def _col(a: np.ndarray) -> list[float | None]:
    """Floats with NaN / inf as None (the library stores no NaN)."""
    x = np.asarray(a, dtype=np.float64)
    return [None if not f else v for v, f in zip(x.tolist(), np.isfinite(x).tolist(), strict=True)]


def population_rows(
    res: PopulationResult | None,
    params: list[dict[str, Any]],
    errors: list[str | None],
    *,
    family: str,
    timeframe: str,
    island: int,
    generation: int,
    first: int,
    guide: int = -1,
) -> dict[str, list[Any]]:
    """The population as library columns (name -> one value per candidate), numbered
    ``first, first + 1, ...`` (see :class:`aio_ray.library.models.CandidateRow`); ``guide``:
    the selection window whose sampler proposed it (-1: a data-blind sampler)."""
    n = len(params)
    cols: dict[str, list[Any]] = {
        "number": list(range(first, first + n)),
        "family": [family] * n,
        "timeframe": [timeframe] * n,
        "island": [island] * n,
        "generation": [generation] * n,
        "guide": [guide] * n,
        "params_json": [canonical_json(q) for q in params],
        "status": ["ok" if e is None else "failed" for e in errors],
        "error": list(errors),
    }
    if res is None:
        return cols
    ok = [e is None for e in errors]
    oos = [w for w, s in enumerate(res.layout.sample) if s == "oos"]
    mcols = [METRIC_INDEX[m] for m in WINDOW_METRICS[:-1]]
    rets = np.ascontiguousarray(res.returns, dtype="<f4")
    wins = np.ascontiguousarray(
        np.concatenate([res.metrics[:, :, mcols], res.end_exits[:, :, None]], axis=2), dtype="<f4"
    )

    def only_ok(values: list[Any]) -> list[Any]:
        return [v if k else None for v, k in zip(values, ok, strict=True)]

    cols.update(
        objective=_col(res.objective),
        oos_sharpe=_col(res.oos_sharpe),
        oos_max_drawdown=_col(res.oos_max_drawdown),
        is_objective=only_ok(_col(res.selection[:, -1])),
        sharpe=_col(res.sharpe),
        skew=_col(res.skew),
        kurtosis=_col(res.kurtosis),
        oos_trades=only_ok(res.oos_trades.tolist()),
        oos_end_exits=only_ok(res.end_exits[:, oos].sum(axis=1).tolist()),
        n_obs=only_ok(res.n_obs.tolist()),
        returns=only_ok([rets[p].tobytes() for p in range(n)]),
        window_metrics=only_ok([wins[p].tobytes() for p in range(n)]),
    )
    return cols


def write_spool(folder: Path, run_id: str, cols: dict[str, list[Any]]) -> Path:
    """Keep a population's columns in a Parquet file under ``folder`` (named by its numbers)."""
    folder.mkdir(parents=True, exist_ok=True)
    lo, hi = cols["number"][0], cols["number"][-1]
    path = folder / f"{run_id}-{lo:012d}-{hi:012d}.parquet"
    pl.DataFrame(cols, strict=False).write_parquet(path)
    return path


def write_island_state(folder: Path, island: int, done: int, state: bytes) -> Path:
    """Keep ``island``'s state after ``done`` candidates in ``folder`` (replaced atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"island-{island:05d}.state"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(done.to_bytes(8, "little") + state)
    tmp.replace(path)
    return path


def read_island_state(folder: Path, island: int) -> tuple[int, bytes] | None:
    """``(candidates done, pickled state)`` kept by :func:`write_island_state`, or None."""
    path = folder / f"island-{island:05d}.state"
    if not path.exists():
        return None
    blob = path.read_bytes()
    return int.from_bytes(blob[:8], "little"), blob[8:]


try:  # the actor class needs Ray; the row functions above do not
    import ray

    @ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
    class CandidateRecorder:
        """Writes populations of one run into the library (or, without one, a Parquet spool).

        Parameters
        ----------
        run_id
            The run the candidates belong to.
        db_url
            Library URL; None keeps every population as Parquet under ``spool_dir``.
        spool_dir
            Where populations go when there is no library or it refuses a write.
        """

        def __init__(self, run_id: str, db_url: str | None, spool_dir: str) -> None:
            self.run_id = run_id
            self.spool = Path(spool_dir)
            self.states = self.spool.parent / "island-states"
            self.lib: Library | None = None
            if db_url is not None:
                self.lib = Library(db_url)

        def record(
            self,
            rows: dict[str, list[Any]],
            island: int | None = None,
            state: tuple[int, bytes] | None = None,
        ) -> int:
            """Write one population (columns of :func:`population_rows`); raises
            LibraryError after spooling it when the database refuses. ``state``
            ``(candidates done, pickled island state after it)`` is kept for ``island`` only
            once the rows have landed (see :meth:`island_state`)."""
            n = self._write(rows)
            if island is not None and state is not None:
                write_island_state(self.states, island, *state)
            return n

        def _write(self, rows: dict[str, list[Any]]) -> int:
            if not rows or not rows.get("number"):
                return 0
            if self.lib is None:
                write_spool(self.spool, self.run_id, rows)
                return len(rows)
            try:
                return record_candidates(self.lib, self.run_id, rows)
            except Exception as exc:
                path = write_spool(self.spool, self.run_id, rows)
                log.error("candidates from %s kept in %s: %s", rows["number"][0], path, exc)
                raise

        def island_state(self, island: int) -> tuple[int, bytes] | None:
            """The newest state of ``island`` whose population was written, or None."""
            return read_island_state(self.states, island)

        def ping(self) -> bool:
            return True

except ImportError:  # pragma: no cover - Ray is a dependency
    pass
