"""What the Serve app answers, without HTTP: rankings, strategy details, Pine, equity, candles
and live control over the strategy library, with caches that follow the library.

Caches are keyed on :meth:`Library.change_marker` (checked at most every ``refresh_s``), so a
finished run, a new Pine check or a control event written by any replica (or by the pipeline)
is seen by every replica within ``refresh_s`` seconds. A ``config_reload`` event written by one
replica makes every replica re-read its configuration the same way.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from aio_ray.bars.store import read_bars
from aio_ray.errors import AioError, ConfigError
from aio_ray.library import METRIC_COLUMNS, Library
from aio_ray.library.report import run_verdict
from aio_ray.pine.generate import generate
from aio_ray.pine.library import pine_for_strategy, source_for_strategy
from aio_ray.strategies.space import ParameterError, validate
from serve.config import Resolved, ServeSettings, resolve
from serve.curves import equity_from_trades, equity_of

log = logging.getLogger(__name__)

_T = TypeVar("_T")

CONTROL_ACTIONS = ("pause", "resume", "params", "clear_params")
CSV_COLUMNS = (
    "run_id", "rank", "strategy_id", "family", "timeframe", "symbol", "score",
    "oos_sharpe", "oos_dsr", "oos_max_drawdown", "oos_profit_factor", "oos_trades",
    "holdout_net_profit", "holdout_sharpe", "holdout_max_drawdown", "holdout_trades",
    "pine_parsed", "pine_parity_passed", "paused", "params",
)  # fmt: skip


VERDICT_FIELDS = (
    "verdict", "passed", "candidates", "failed_candidates", "procedures", "effective_trials",
    "pbo", "gates", "message", "best_rejected",
)  # fmt: skip
"""The verdict fields ``/rankings`` carries beside its rows."""


class NotFound(AioError, LookupError):
    """The strategy or run asked for is not in the library."""


class Unavailable(AioError):
    """What is asked needs something absent (bars directory, charting assets, Pine module)."""


def finite(value: Any) -> Any:
    """JSON-safe: NaN/inf floats to None, numpy scalars to Python, recursively."""
    if isinstance(value, Mapping):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def finite_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`finite` of a mapping: a JSON-safe dict."""
    return {str(k): finite(v) for k, v in row.items()}


def dumps(value: Any) -> bytes:
    """Compact JSON bytes of ``value`` (non-finite floats as null)."""
    return json.dumps(finite(value), separators=(",", ":"), ensure_ascii=False).encode()


class Core:
    """The app's state over one library; thread-safe (FastAPI runs sync routes in threads).

    Parameters
    ----------
    args
        Builder arguments (see :class:`serve.config.ServeSettings`), kept so that
        :meth:`reload` can resolve them again.
    """

    def __init__(self, args: Mapping[str, Any] | ServeSettings | None = None) -> None:
        self._args = args
        self._lock = threading.RLock()
        self.cfg: Resolved = resolve(args)
        self.lib = Library(self.cfg.library_url)
        self._cache: dict[Any, Any] = {}
        self._marker: tuple[int, ...] | None = None
        self._checked = 0.0
        latest = self.lib.control_events(limit=1)
        self._seen_event = latest[0]["id"] if latest else 0
        self.started_ms = int(time.time() * 1000)

    # ------------------------------------------------------------------ caching

    def refresh(self, force: bool = False) -> None:
        """Drop caches when the library changed; follow config reloads of other replicas."""
        now = time.monotonic()
        if not force and now - self._checked < self.cfg.settings.refresh_s:
            return
        with self._lock:
            if not force and now - self._checked < self.cfg.settings.refresh_s:
                return
            marker = self.lib.change_marker()
            self._checked = time.monotonic()
            if marker == self._marker and not force:
                return
            new = self.lib.control_events(limit=50, after_id=self._seen_event)
            if new:
                self._seen_event = max(e["id"] for e in new)
                if any(e["action"] == "config_reload" for e in new):
                    self._reconfigure()
            self._marker = marker
            self._cache.clear()

    def fresh(self, key: Any) -> bool:
        """True when ``key`` is cached and no library check is due (a read cannot block)."""
        return key in self._cache and time.monotonic() - self._checked < self.cfg.settings.refresh_s

    def cached(self, key: Any, make: Callable[[], _T]) -> _T:
        """``make()`` once per library state (see :meth:`refresh`)."""
        self.refresh()
        try:
            hit: _T = self._cache[key]
            return hit
        except KeyError:
            value = make()
            self._cache[key] = value
            return value

    def _reconfigure(self) -> list[str]:
        new = resolve(self._args)
        old = self.cfg
        changed = [
            k for k in ("library_url", "bars_dir", "symbol", "token_sha256", "settings")
            if getattr(old, k) != getattr(new, k)
        ]  # fmt: skip
        if new.library_url != old.library_url:
            lib = Library(new.library_url)
            self.lib, old_lib = lib, self.lib
            old_lib.close()
        self.cfg = new
        self._cache.clear()
        self._marker = None
        return ["token" if c == "token_sha256" else c for c in changed]

    # ------------------------------------------------------------------ reads

    def health(self, full: bool = False) -> dict[str, Any]:
        """Liveness plus what is served (``full``: with server paths, for a caller with the
        token); raises LibraryError when the library is unreachable."""
        self.refresh()
        run_id = self.cached("latest", self.lib.latest_ranked_run)
        return {
            "status": "ok",
            "run_id": run_id,
            "started_ms": self.started_ms,
            **self.cfg.public(full),
        }

    def live(self, sid: str) -> dict[str, Any]:
        """The parameters in force of ``sid``: ``source`` "override" (with ``params``, ``by``
        and ``at_ms`` of the latest params event) or "ranked" (``params`` None)."""
        state = self.lib.control_state().get(sid) or {}
        if state.get("params"):
            ev = next(
                (e for e in self.lib.control_events(sid, limit=50) if e["action"] == "params"), None
            )
            return {
                "source": "override",
                "params": state["params"],
                "by": ev["who"] if ev else state.get("updated_by"),
                "at_ms": ev["at_ms"] if ev else state.get("updated_ms"),
            }
        return {"source": "ranked", "params": None, "by": None, "at_ms": None}

    def _pine_status(self, sid: str) -> dict[str, Any]:
        out = {}
        for kind in ("strategy", "indicator"):
            v = self.lib.pine_verification(sid, kind)
            out[kind] = (
                None
                if v is None
                else {
                    "parsed": v["parsed"],
                    "parity_passed": v["parity_passed"],
                    "first_diff_bar": v["first_diff_bar"],
                    "checked_ms": v["checked_ms"],
                }
            )
        return out

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first, with status and trial counts."""
        return self.cached(
            "runs",
            lambda: [
                {
                    "run_id": r.id,
                    "status": r.status,
                    "created_ms": r.created_ms,
                    "finished_ms": r.finished_ms,
                    "trials_done": r.trials_done,
                    "trials_failed": r.trials_failed,
                    "config_id": r.config_id,
                }
                for r in self.lib.list_runs()
            ],
        )

    def rankings(self, run_id: str | None = None, timeframe: str | None = None) -> dict[str, Any]:
        """The top strategies of a run (default: the newest ranked one), optionally one timeframe.

        Each row: rank, ids, family, timeframe, params, score, OOS ``criteria``, ``holdout``
        metrics (reported, never ranked on), ``pine`` verification status and ``live`` state.
        Beside the rows, the run's verdict (:data:`VERDICT_FIELDS`: verdict "passed",
        "none_passed" or None when no run was judged, passed, candidates, effective_trials,
        pbo, gates, message in plain words, best_rejected with the gates each failed; see
        :func:`aio_ray.library.report.run_verdict`). ``timeframe`` filters the rows only: the
        verdict is the whole run's.
        """
        return self.cached(
            ("rankings", run_id, timeframe), lambda: self._rankings(run_id, timeframe)
        )

    def _rankings(self, run_id: str | None, timeframe: str | None) -> dict[str, Any]:
        rid = run_id or self.lib.latest_ranked_run()
        if run_id is not None and self.lib.get_run(run_id) is None:
            raise NotFound(f"run {run_id!r} is not in the library")
        rows = [] if rid is None else self.lib.top(rid, n=self.cfg.settings.top)
        state = self.lib.control_state()
        out = []
        for r in rows:
            s = r.strategy
            if timeframe is not None and s.timeframe != timeframe:
                continue
            live = state.get(s.id, {"paused": False, "params": None})
            out.append(
                {
                    "rank": r.rank,
                    "strategy_id": s.id,
                    "name": s.name,
                    "family": s.family,
                    "timeframe": s.timeframe,
                    "symbol": s.symbol,
                    "params": s.params,
                    "score": r.score,
                    "criteria": r.criteria,
                    "holdout": r.holdout,
                    "rationale": r.rationale,
                    "pine": self._pine_status(s.id),
                    "live": live,
                }
            )

        v = run_verdict(self.lib, rid)
        return finite_row(
            {
                "run_id": rid,
                "timeframe": timeframe,
                "runs": [r["run_id"] for r in self.runs()],
                "timeframes": sorted({r["timeframe"] for r in out}),
                "strategies": out,
                "generated_ms": int(time.time() * 1000),
                **{k: v.get(k) for k in VERDICT_FIELDS},
            }
        )

    def rankings_json(self, run_id: str | None = None, timeframe: str | None = None) -> bytes:
        """:meth:`rankings` as cached JSON bytes (what the hot endpoint sends)."""
        return self.cached(
            ("rankings.json", run_id, timeframe), lambda: dumps(self.rankings(run_id, timeframe))
        )

    def rankings_csv(self, run_id: str | None = None, timeframe: str | None = None) -> str:
        """:meth:`rankings` flattened to CSV (one row per strategy; see :data:`CSV_COLUMNS`)."""

        def make() -> str:
            data = self.rankings(run_id, timeframe)
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(CSV_COLUMNS)
            for r in data["strategies"]:
                c, h = r["criteria"] or {}, r["holdout"] or {}
                p = r["pine"]["strategy"] or {}
                w.writerow(
                    [
                        data["run_id"], r["rank"], r["strategy_id"], r["family"], r["timeframe"],
                        r["symbol"], r["score"], c.get("sharpe"), c.get("dsr"),
                        c.get("max_drawdown"), c.get("profit_factor"), c.get("trades"),
                        h.get("net_profit"), h.get("sharpe"), h.get("max_drawdown"),
                        h.get("trades"), p.get("parsed"), p.get("parity_passed"),
                        r["live"]["paused"], json.dumps(r["params"], sort_keys=True),
                    ]
                )  # fmt: skip
            return buf.getvalue()

        return self.cached(("rankings.csv", run_id, timeframe), make)

    def _strategy(self, sid: str) -> Any:
        rec = self.lib.get_strategy(sid)
        if rec is None:
            raise NotFound(f"strategy {sid!r} is not in the library")
        return rec

    def strategy(self, sid: str) -> dict[str, Any]:
        """Parameters, OOS criteria and holdout metrics, fold metrics, a holdout trades
        summary, Pine verification, live state and the latest control events of ``sid``."""
        return self.cached(("strategy", sid), lambda: self._detail(sid))

    def _detail(self, sid: str) -> dict[str, Any]:
        rec = self._strategy(sid)
        ranked = next((r for r in self.lib.top(rec.run_id, n=50) if r.strategy.id == sid), None)
        folds = self.lib.fold_metrics(rec.run_id, sid)
        oos = [f for f in folds if f["sample"] == "oos"]
        trades = self.lib.trades(rec.run_id, sid, "holdout")
        state = self.lib.control_state().get(sid, {"paused": False, "params": None})
        return finite_row(
            {
                "strategy_id": rec.id,
                "name": rec.name,
                "family": rec.family,
                "timeframe": rec.timeframe,
                "symbol": rec.symbol,
                "run_id": rec.run_id,
                "params": rec.params,
                "params_in_force": self.live(sid),
                "created_ms": rec.created_ms,
                "rank": None if ranked is None else ranked.rank,
                "score": None if ranked is None else ranked.score,
                "criteria": None if ranked is None else ranked.criteria,
                "rationale": None if ranked is None else ranked.rationale,
                "holdout": self.lib.holdout(rec.run_id, sid),
                "folds": [{k: f[k] for k in ("fold", "sample", *METRIC_COLUMNS)} for f in folds],
                "oos_folds": len(oos),
                "trades_summary": trades_summary(trades),
                "pine": self._pine_status(sid),
                "live": state,
                "control_events": self.lib.control_events(sid, limit=20),
            }
        )

    def pine(
        self, sid: str, kind: str = "strategy"
    ) -> tuple[str, dict[str, Any] | None, dict[str, Any]]:
        """The Pine v6 script of ``sid`` (``kind`` "strategy" or "indicator") for the
        parameters in force, its latest stored verification (None under an override: the
        stored checks are of the ranked parameters) and :meth:`live`; raises Unavailable when
        the Pine module is missing."""
        return self.cached(("pine", sid, kind), lambda: self._pine(sid, kind))

    def _pine(self, sid: str, kind: str) -> tuple[str, dict[str, Any] | None, dict[str, Any]]:
        self._strategy(sid)
        live = self.live(sid)
        if live["source"] != "override":
            code, ver = pine_for_strategy(self.lib, sid, kind)  # type: ignore[arg-type]
            return code, ver, live
        # the override's script: its parameters; the ranked run's holdout figures do not apply
        src = dataclasses.replace(
            source_for_strategy(self.lib, sid), params=live["params"], metrics=None, period_ms=None
        )
        return generate(src, kind), None, live  # type: ignore[arg-type]

    # ------------------------------------------------------------------ charts

    def _bars(self, timeframe: str) -> Any:
        if self.cfg.bars_dir is None:
            raise Unavailable("no bars directory configured (app_config or bars_dir)")
        try:
            return read_bars(self.cfg.bars_dir, timeframe, self.cfg.symbol)
        except AioError as exc:
            raise Unavailable(f"bars of {timeframe} unavailable: {exc}") from None

    def candles(self, sid: str) -> dict[str, Any]:
        """Mid OHLC bars of the strategy's timeframe (the latest ``max_candles``), times in
        UTC seconds for the chart; raises Unavailable without a bars directory."""
        rec = self._strategy(sid)
        return self.cached(("candles", rec.timeframe), lambda: self._candles(rec.timeframe))

    def _candles(self, timeframe: str) -> dict[str, Any]:
        df = self._bars(timeframe).tail(self.cfg.settings.max_candles)
        ts = df["ts"].cast(int).to_numpy() // 1000
        return {
            "timeframe": timeframe,
            "symbol": self.cfg.symbol,
            "price": "mid",
            "time_s": ts.tolist(),
            "open": df["mid_open"].to_list(),
            "high": df["mid_high"].to_list(),
            "low": df["mid_low"].to_list(),
            "close": df["mid_close"].to_list(),
        }

    def equity(self, sid: str) -> dict[str, Any]:
        """Equity (account currency) and drawdown (fraction below the running peak) series of
        ``sid`` with its trades; see :func:`serve.curves.equity_of`."""
        return self.cached(("equity", sid), lambda: self._equity(sid))

    def _equity(self, sid: str) -> dict[str, Any]:
        rec = self._strategy(sid)
        run = self.lib.get_run(rec.run_id)
        search = run.config if run is not None else {}
        live = self.live(sid)
        try:
            frames = {rec.timeframe: self._bars(rec.timeframe)}
            for tf in search.get("timeframes", []):
                if tf not in frames:
                    frames[tf] = self._bars(tf)
        except Unavailable as exc:
            trades = self.lib.trades(rec.run_id, sid, "holdout")
            note = str(exc)
            if live["source"] == "override":
                note += "; the stored trades are of the ranked parameters, not the override"
            out = equity_from_trades(trades, search, note=note)
            return finite_row({**out, "params": rec.params, "params_in_force": live})
        if live["source"] == "override":
            rec = dataclasses.replace(rec, params=live["params"])
        return finite_row(
            {**equity_of(rec, frames, search), "params": rec.params, "params_in_force": live}
        )

    # ------------------------------------------------------------------ control

    def control(
        self, sid: str, action: str, payload: Mapping[str, Any], who: str
    ) -> dict[str, Any]:
        """Record ``action`` ("pause", "resume", "params" or "clear_params") on ``sid`` and
        return its new live state; ``params`` payloads are validated against the family's
        space first; "clear_params" is stored as a ``params`` event without parameters (the
        ranked ones are in force again)."""
        if action not in CONTROL_ACTIONS:
            raise ValueError(f"action must be one of {CONTROL_ACTIONS}, got {action!r}")
        rec = self._strategy(sid)
        body = dict(payload)
        stored = action
        if action == "params":
            try:
                body["params"] = validate(rec.family, body.get("params") or {})
            except ParameterError:
                raise
            except (OverflowError, ValueError, TypeError) as exc:  # a value no space can take
                raise ParameterError(rec.family, f"params: {str(exc)[:200]}") from None
        elif action == "clear_params":
            stored, body["params"], body["cleared"] = "params", None, True
        with self._lock:
            event = self.lib.record_control(sid, stored, body, who)
            self.refresh(force=True)
        state = self.lib.control_state().get(sid, {"paused": False, "params": None})
        return finite_row({"strategy_id": sid, "event_id": event, "action": action, "live": state})

    def reload(self, who: str, client: str | None) -> dict[str, Any]:
        """Re-read the configuration (files, token); on error keep the old one and raise
        ConfigError. Writes a ``config_reload`` event so other replicas follow."""
        with self._lock:
            old_lib = self.lib
            changed = self._reconfigure()
            payload = {"changed": changed, "source": self.cfg.source, "client": client}
            event = self.lib.record_control(None, "config_reload", payload, who)
            if old_lib is not self.lib:
                old_lib.record_control(None, "config_reload", payload, who)  # readers of the old
                old_lib.close()
            self._seen_event = max(self._seen_event, event)
            self.refresh(force=True)
        return {"event_id": event, "changed": changed, "config": self.cfg.public()}


def trades_summary(trades: list[dict[str, Any]]) -> dict[str, Any]:
    """Count, wins, net P&L (quote currency and pips), best/worst, sides and exit reasons."""
    if not trades:
        return {"segment": "holdout", "trades": 0}
    pnl = np.array([t["pnl"] for t in trades], dtype=float)
    pips = np.array([t["pnl_pips"] for t in trades], dtype=float)
    reasons: dict[str, int] = {}
    for t in trades:
        reasons[t["exit_reason"]] = reasons.get(t["exit_reason"], 0) + 1
    return {
        "segment": "holdout",
        "trades": len(trades),
        "wins": int((pnl > 0).sum()),
        "win_rate": float((pnl > 0).mean()),
        "net_pnl": float(pnl.sum()),
        "net_pips": float(pips.sum()),
        "avg_pnl": float(pnl.mean()),
        "best_pnl": float(pnl.max()),
        "worst_pnl": float(pnl.min()),
        "long": sum(1 for t in trades if t["side"] == "long"),
        "short": sum(1 for t in trades if t["side"] == "short"),
        "exit_reasons": reasons,
        "first_entry_ms": min(t["entry_ts"] for t in trades),
        "last_exit_ms": max(t["exit_ts"] for t in trades),
    }


__all__ = [
    "VERDICT_FIELDS",
    "ConfigError",
    "Core",
    "NotFound",
    "Unavailable",
    "dumps",
    "finite",
    "trades_summary",
]
