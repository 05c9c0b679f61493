"""Nested walk-forward selection over every recorded candidate (pure; reads batches of rows).

A *procedure* is what is actually tested: one family on one timeframe over its space, with
the rule "take the candidate with the best in-sample objective". For each fold ``f``:

1. among the procedure's evaluated candidates that may be chosen for fold ``f`` (guide
   ``<= f`` or ``-1``, see :mod:`aio_ray.strategies.islands`), take the best by the in-sample
   objective of fold ``f``'s in-sample window (:func:`~aio_ray.strategies.evaluate.fold_value`
   of its Sharpe and trades, at least ``min_is_trades`` to count in full; ties: the lower
   candidate number);
2. score it on fold ``f``'s out-of-sample window, which ends no choice.

The procedure's out-of-sample record is the concatenation of those windows: per-period
returns (trading days), trades, forced end-of-window exits, gross profit and loss. The
parameters it exports are the best by the final in-sample window before the holdout (every
candidate may be chosen there). Nothing out-of-sample is read before the choices are made,
so the record is out-of-sample in the strict sense.

Beside it, :class:`MatrixSample` keeps an even, seeded sample of each procedure's
out-of-sample return columns (at most ``limit`` candidates), the input of the probability of
backtest overfitting and of the effective number of trials (:mod:`aio_ray.strategies.overfitting`).

Rows are what :func:`aio_ray.library.candidates.iter_candidates` yields (``number``,
``family``, ``timeframe``, ``guide``, ``status``, ``params``, ``returns``, ``window_metrics``)
and layouts what :meth:`aio_ray.strategies.population.WindowLayout.describe` gives.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aio_ray.library.candidates import WINDOW_METRICS, unpack
from aio_ray.strategies.dsr import ReturnMoments, return_moments
from aio_ray.strategies.evaluate import ObjectiveConfig, fold_value, selection_config

__all__ = [
    "FoldPick",
    "LayoutView",
    "MatrixSample",
    "ProcedureRecord",
    "Selector",
    "aligned",
    "gross_from",
    "spool_batches",
]


def gross_from(net_profit: float, profit_factor: float) -> tuple[float, float]:
    """Gross profit and gross loss (both >= 0, account currency) of a window from its net
    profit and profit factor (``pf = gp / gl``, ``net = gp - gl``); (0, 0) without trades."""
    if not math.isfinite(net_profit) or math.isnan(profit_factor):
        return 0.0, 0.0
    if math.isinf(profit_factor):
        return max(net_profit, 0.0), 0.0
    if abs(profit_factor - 1.0) < 1e-12:
        return 0.0, 0.0  # net 0: gross figures cannot be told apart; they cancel in the total
    gl = net_profit / (profit_factor - 1.0)
    return max(gl * profit_factor, 0.0), max(gl, 0.0)


@dataclass(frozen=True)
class LayoutView:
    """What selection needs of a timeframe's window layout (from ``WindowLayout.describe``)."""

    fold: tuple[int, ...]
    sample: tuple[str, ...]
    period_start_ms: np.ndarray
    period_window: np.ndarray
    oos_columns: np.ndarray

    @classmethod
    def of(cls, desc: Mapping[str, Any]) -> LayoutView:
        wins = desc["windows"]
        return cls(
            fold=tuple(int(w["fold"]) for w in wins),
            sample=tuple(str(w["sample"]) for w in wins),
            period_start_ms=np.asarray(desc["period_start_ms"], dtype=np.int64),
            period_window=np.asarray(desc["period_window"], dtype=np.int64),
            oos_columns=np.asarray(desc["oos_columns"], dtype=np.int64),
        )

    @property
    def n_folds(self) -> int:
        return sum(s == "oos" for s in self.sample)

    @property
    def selection_windows(self) -> tuple[int, ...]:
        return tuple(w for w, s in enumerate(self.sample) if s in ("is", "final"))

    @property
    def has_final(self) -> bool:
        return "final" in self.sample

    def columns_of(self, window: int) -> np.ndarray:
        return np.flatnonzero(self.period_window == window)


@dataclass(frozen=True)
class FoldPick:
    """The candidate chosen for one fold (or for export: ``fold`` = number of folds)."""

    fold: int
    number: int
    params: dict[str, Any]
    guide: int
    is_objective: float
    oos: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ProcedureRecord:
    """A procedure's nested walk-forward record.

    Attributes
    ----------
    family, timeframe
        The procedure.
    n_ok, n_failed
        Its candidates evaluated / failed.
    folds
        The pick of each fold with its out-of-sample metrics (``sharpe`` annualized,
        ``trades``, ``end_exits``, ``net_profit``, ``profit_factor``, ``max_drawdown``).
    final
        The exported pick (chosen on the final in-sample window); None without one.
    period_start_ms, returns
        The concatenated out-of-sample per-period returns (trading days) and their periods.
    """

    family: str
    timeframe: str
    n_ok: int
    n_failed: int
    folds: tuple[FoldPick, ...]
    final: FoldPick | None
    period_start_ms: np.ndarray
    returns: np.ndarray

    @property
    def moments(self) -> ReturnMoments:
        return return_moments(self.returns)

    @property
    def trades(self) -> int:
        return int(sum(f.oos.get("trades", 0) for f in self.folds))

    @property
    def end_exits(self) -> int:
        return int(sum(f.oos.get("end_exits", 0) for f in self.folds))

    @property
    def net_profit(self) -> float:
        return float(sum(f.oos.get("net_profit", 0.0) for f in self.folds))

    @property
    def profit_factor(self) -> float:
        """Gross profit / gross loss over the whole record (inf without a loss, NaN without
        trades)."""
        gp = gl = 0.0
        for f in self.folds:
            a, b = gross_from(
                f.oos.get("net_profit", math.nan), f.oos.get("profit_factor", math.nan)
            )
            gp, gl = gp + a, gl + b
        if gp == 0.0 and gl == 0.0:
            return math.nan
        return math.inf if gl == 0.0 else gp / gl

    @property
    def complete(self) -> bool:
        """Every fold has a pick (else the record is shorter than the walk-forward span)."""
        return all(f.number >= 0 for f in self.folds) and bool(self.folds)


class MatrixSample:
    """An even, seeded sample (reservoir) of at most ``limit`` candidates' out-of-sample
    return columns of one procedure; memory bounded by ``limit``."""

    def __init__(self, limit: int, seed: int) -> None:
        self.limit = int(limit)
        self.rng = np.random.default_rng(seed)
        self.seen = 0
        self.rows: list[np.ndarray] = []
        self.numbers: list[int] = []

    def add(self, number: int, oos_returns: np.ndarray) -> None:
        self.seen += 1
        if len(self.rows) < self.limit:
            self.rows.append(oos_returns)
            self.numbers.append(number)
            return
        j = int(self.rng.integers(0, self.seen))
        if j < self.limit:
            self.rows[j] = oos_returns
            self.numbers[j] = number

    def matrix(self) -> np.ndarray:
        """(T, n) float64: periods x sampled candidates (in candidate order)."""
        if not self.rows:
            return np.empty((0, 0))
        order = np.argsort(self.numbers, kind="stable")
        return np.stack([self.rows[i] for i in order], axis=1).astype(np.float64)


@dataclass
class _Best:
    key: tuple[float, int] = (-math.inf, 0)
    row: dict[str, Any] | None = None


class _Stream:
    def __init__(self, lay: LayoutView, limit: int, seed: int) -> None:
        self.lay = lay
        self.best = [_Best() for _ in lay.selection_windows]
        self.ok = 0
        self.failed = 0
        self.sample = MatrixSample(limit, seed)


class Selector:
    """Feeds on batches of candidate rows; :meth:`records` gives every procedure's record.

    Parameters
    ----------
    layouts
        timeframe -> layout description (``WindowLayout.describe()``).
    objective
        How a window's Sharpe and trades become the in-sample objective.
    matrix_candidates
        Most candidates per procedure kept for PBO and effective trials.
    seed
        Seed of the samples.
    """

    def __init__(
        self,
        layouts: Mapping[str, Mapping[str, Any]],
        objective: ObjectiveConfig | None = None,
        *,
        matrix_candidates: int = 20_000,
        seed: int = 0,
    ) -> None:
        self.layouts = {tf: LayoutView.of(d) for tf, d in layouts.items()}
        self.objective = selection_config(objective or ObjectiveConfig())
        self.limit = matrix_candidates
        self.seed = seed
        self.streams: dict[tuple[str, str], _Stream] = {}
        self.metric_names = WINDOW_METRICS
        self._ix = {m: j for j, m in enumerate(WINDOW_METRICS)}
        self.errors: dict[str, int] = {}

    def _stream(self, family: str, tf: str) -> _Stream | None:
        key = (family, tf)
        if key not in self.streams:
            lay = self.layouts.get(tf)
            if lay is None:
                return None
            h = hashlib.sha256(repr((self.seed, family, tf)).encode()).digest()
            self.streams[key] = _Stream(lay, self.limit, int.from_bytes(h[:4], "little"))
        return self.streams[key]

    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Take one batch of candidate rows (any order within a run; numbers unique)."""
        sh, tr = self._ix["sharpe"], self._ix["trades"]
        for r in rows:
            st = self._stream(str(r["family"]), str(r["timeframe"]))
            if r.get("status") != "ok" or r.get("window_metrics") is None:
                if st is not None:
                    st.failed += 1
                err = str(r.get("error") or "failed")[:200]
                self.errors[err] = self.errors.get(err, 0) + 1
                continue
            if st is None:
                continue
            st.ok += 1
            lay = st.lay
            wm = unpack(r["window_metrics"], (len(lay.sample), len(self.metric_names)))
            rets = unpack(r["returns"])
            guide = int(r.get("guide", -1) if r.get("guide") is not None else -1)
            number = int(r["number"])
            for j, w in enumerate(lay.selection_windows):
                is_final = lay.sample[w] == "final"
                if not (is_final or guide < 0 or guide <= j):
                    continue
                v = fold_value(float(wm[w, sh]), float(wm[w, tr]), self.objective)
                key = (v, -number)
                b = st.best[j]
                if b.row is None or key > b.key:
                    b.key = key
                    b.row = {
                        "number": number,
                        "params": r.get("params"),
                        "guide": guide,
                        "value": v,
                        "wm": wm,
                        "returns": rets,
                    }
            st.sample.add(number, np.asarray(rets[lay.oos_columns], dtype=np.float32))

    def records(self) -> list[ProcedureRecord]:
        """One record per procedure seen, in (timeframe, family) order."""
        out = []
        for (family, tf), st in sorted(self.streams.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            out.append(self._record(family, tf, st))
        return out

    def samples(self) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        """(family, timeframe) -> (OOS period starts (T,), sampled returns (T, n))."""
        return {
            k: (st.lay.period_start_ms[st.lay.oos_columns], st.sample.matrix())
            for k, st in self.streams.items()
        }

    def _record(self, family: str, tf: str, st: _Stream) -> ProcedureRecord:
        lay = st.lay
        picks: list[FoldPick] = []
        starts: list[np.ndarray] = []
        rets: list[np.ndarray] = []
        final: FoldPick | None = None
        names = self.metric_names
        for j, w in enumerate(lay.selection_windows):
            b = st.best[j].row
            if lay.sample[w] == "final":
                if b is not None:
                    final = FoldPick(
                        lay.fold[w],
                        b["number"],
                        dict(b["params"] or {}),
                        b["guide"],
                        float(b["value"]),
                    )
                continue
            f = lay.fold[w]
            o = 2 * f + 1
            if b is None:
                picks.append(FoldPick(f, -1, {}, -1, math.nan))
                continue
            m = {k: float(b["wm"][o, i]) for i, k in enumerate(names)}
            picks.append(
                FoldPick(f, b["number"], dict(b["params"] or {}), b["guide"], float(b["value"]), m)
            )
            cols = lay.columns_of(o)
            starts.append(lay.period_start_ms[cols])
            rets.append(np.asarray(b["returns"][cols], dtype=np.float64))
        ps = np.concatenate(starts) if starts else np.empty(0, dtype=np.int64)
        rr = np.concatenate(rets) if rets else np.empty(0)
        return ProcedureRecord(family, tf, st.ok, st.failed, tuple(picks), final, ps, rr)


def spool_batches(folder: Any, batch: int = 10_000) -> Iterable[list[dict[str, Any]]]:
    """Candidate rows from a run's Parquet spool (no library), in file order."""
    for path in sorted(Path(folder).glob("*.parquet")):
        df = pl.read_parquet(path)
        rows = df.to_dicts()
        for r in rows:
            if "params_json" in r:
                r["params"] = json.loads(r.pop("params_json"))
        for i in range(0, len(rows), batch):
            yield rows[i : i + batch]


def aligned(
    samples: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]],
    keys: Sequence[tuple[str, str]] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """The samples of ``keys`` (default: all) on their common periods: (periods (T,),
    returns (T, n) with the procedures side by side, the procedure of each column)."""
    keys = list(samples) if keys is None else list(keys)
    keys = [k for k in keys if samples[k][1].size]
    if not keys:
        return np.empty(0, dtype=np.int64), np.empty((0, 0)), []
    common = samples[keys[0]][0]
    for k in keys[1:]:
        common = np.intersect1d(common, samples[k][0])
    mats, owner = [], []
    for k in keys:
        p, m = samples[k]
        idx = np.searchsorted(p, common)
        mats.append(m[idx])
        owner += [k] * m.shape[1]
    return common, np.concatenate(mats, axis=1), owner
