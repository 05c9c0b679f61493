"""The stages wired together, each resumable: outputs that exist and are complete are reused.

Stage functions take the whole :class:`AppConfig` and return a small JSON-able summary; the
``aio pipeline`` command and ``jobs/pipeline.py`` call them in order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aio_ray.bars.arrays import BarArrays
from aio_ray.bars.build import build_bars
from aio_ray.bars.store import read_bars
from aio_ray.config import AppConfig, config_id
from aio_ray.data.ingest import IngestReport
from aio_ray.data.sources.base import get_source
from aio_ray.data.tick_store import list_partitions
from aio_ray.indicators import compute_all
from aio_ray.library.config import ensure_sqlite_dir
from aio_ray.library.patterns import save_mining
from aio_ray.library.repo import Library, open_library
from aio_ray.library.report import ranked_verdict, rejected_lines, run_verdict
from aio_ray.library.report import ranking_rows as report_ranking_rows
from aio_ray.patterns.mining import mine_bars_dir
from aio_ray.patterns.stats import validate_patterns
from aio_ray.pine.library import pine_for_strategy, record_verification
from aio_ray.pine.runner import runner_status
from aio_ray.pine.verify import verify_scripts
from aio_ray.progress import stage_progress
from aio_ray.raycluster import ensure_ray
from aio_ray.replay import format_replay, replay_strategies
from aio_ray.strategies.config import SearchConfig
from aio_ray.strategies.search import SearchOutcome, run_search
from aio_ray.vision.agreement import agreement_on_bars
from aio_ray.vision.analyze import analyze_windows, window_requests

__all__ = [
    "default_run_id",
    "format_summary",
    "ranking_rows",
    "run_bars",
    "run_indicators",
    "run_ingest",
    "run_optimize",
    "run_patterns",
    "run_pine",
    "run_pipeline",
    "run_vision",
]

log = logging.getLogger(__name__)


def run_ingest(cfg: AppConfig, use_ray: bool = True) -> IngestReport:
    """Ingest the configured source into ``<workdir>/ticks`` (complete days are skipped)."""
    source = get_source(cfg.data.source)
    settings = getattr(cfg, source.section) if source.section else None
    with stage_progress("ingest") as prog:
        return source.ingest(cfg.data, settings, cfg.validation, use_ray=use_ray, progress=prog)


def _bars_fingerprint(cfg: AppConfig) -> dict[str, Any]:
    parts = list_partitions(cfg.data.ticks_dir, cfg.data.symbol)
    return {
        "timeframes": list(cfg.bars.timeframes),
        "daily_close": cfg.bars.daily_close,
        "partitions": [[p.day.isoformat(), p.meta.get("rows"), p.meta.get("kept")] for p in parts],
    }


def run_bars(cfg: AppConfig) -> dict[str, Any]:
    """Build ``<workdir>/bars`` from the tick dataset; skipped when the same ticks and
    timeframes were already resampled (a fingerprint of the partitions is kept beside)."""
    fp = _bars_fingerprint(cfg)
    stamp = cfg.data.bars_dir / "_fingerprint.json"
    if stamp.exists() and json.loads(stamp.read_text()) == fp:
        log.info("bars: up to date, skipped")
        return {"status": "skipped", "bars_dir": str(cfg.data.bars_dir)}
    summary = build_bars(
        cfg.data.ticks_dir,
        cfg.data.bars_dir,
        list(cfg.bars.timeframes),
        daily_close=cfg.bars.daily_close,
    )
    stamp.write_text(json.dumps(fp))
    return summary


def default_run_id(bars_dir: Path, search: SearchConfig) -> str:
    """A deterministic run id for a search of ``bars_dir`` with ``search`` settings, so that
    rerunning the same command with ``--resume`` continues the same run."""
    return f"run-{config_id(search)}-{_dir_id(bars_dir)}"


def _dir_id(path: Path) -> str:
    return hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:6]


def run_optimize(
    bars_dir: Path,
    cfg: AppConfig,
    *,
    run_id: str | None = None,
    resume: bool = False,
    db_url: str | None = None,
    storage: Path | None = None,
) -> SearchOutcome:
    """Search strategies on ``bars_dir`` (Ray Tune + Optuna), rank them and store everything
    in the library. Returns the :class:`~aio_ray.strategies.search.SearchOutcome`."""
    run_id = run_id or default_run_id(bars_dir, cfg.search)
    storage = Path(storage or cfg.data.workdir / "tune").resolve()
    url = db_url or cfg.library.url
    _ensure_sqlite_dir(url)

    open_library(url)  # an unreachable library fails now, not after the search
    with stage_progress("search") as prog:
        return run_search(
            bars_dir,
            cfg.search,
            storage_path=storage,
            run_id=run_id,
            resume=resume,
            db_url=url,
            progress=prog,
        )


def _ensure_sqlite_dir(url: str) -> None:
    """A SQLite file's folder is created on first use (as the library does on open)."""
    ensure_sqlite_dir(url)


def ranking_rows(lib: Library, run_id: str | None = None, top: int = 5) -> list[dict[str, Any]]:
    """The top ``top`` of a run (default: the newest ranked run) as JSON-able rows
    (:func:`aio_ray.library.report.ranking_rows`)."""
    return report_ranking_rows(lib, run_id=run_id, top=top)


def run_indicators(cfg: AppConfig) -> dict[str, Any]:
    """Write the eight indicators of every searched timeframe to ``<workdir>/indicators``."""
    out_dir = cfg.data.workdir / "indicators"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {}
    for tf in cfg.search.timeframes:
        frame = compute_all(read_bars(cfg.data.bars_dir, tf, cfg.data.symbol))
        frame.write_parquet(out_dir / f"{tf}.parquet", compression="zstd")
        rows[tf] = frame.height
    return {"dir": str(out_dir), "bars": rows}


def run_patterns(cfg: AppConfig, *, use_ray: bool = True) -> dict[str, Any]:
    """Mine every vocabulary pattern on the configured timeframes (default: the searched ones)
    and store occurrences and forward-return statistics in the library; returns the counts
    and the patterns the validator keeps (enough occurrences and |t|)."""
    if not cfg.patterns.enabled:
        return {"status": "skipped", "reason": "patterns.enabled is false"}

    pc = cfg.patterns
    tfs = pc.timeframes or cfg.search.timeframes
    with stage_progress("patterns") as prog:
        prog(f"mining {', '.join(tfs)}", 0, 1)
        result = mine_bars_dir(
            cfg.data.bars_dir,
            tfs,
            symbol=cfg.data.symbol,
            horizons=pc.horizons,
            window=pc.window,
            use_ray=use_ray,
        )
        _ensure_sqlite_dir(cfg.library.url)
        save_mining(
            open_library(cfg.library.url), result, min_count=pc.min_count, min_abs_t=pc.min_abs_t
        )
        prog(f"mining {', '.join(tfs)}", 1, 1)
    kept = validate_patterns(result.stats, min_count=pc.min_count, min_abs_t=pc.min_abs_t)
    return {
        "timeframes": list(tfs),
        "occurrences": result.occurrences.height,
        "validated": sorted({f"{s.pattern}@{s.timeframe}/h{s.horizon}" for s in kept}),
    }


def run_vision(cfg: AppConfig, *, use_ray: bool = True) -> dict[str, Any]:
    """Chart the latest windows of ``vision.timeframe`` and analyse them with the configured
    backend (a Ray actor pool by default); every analysis goes to the Parquet log. Skipped,
    with the reason, when the configuration has no ``vision:`` section. Returns counts, the
    trend tally and the agreement with the rules and the realized forward move."""
    if cfg.vision is None:
        return {
            "status": "skipped",
            "reason": "no vision backend configured (add e.g. `vision: {model: {backend: cpu}}`)",
        }

    vc = cfg.vision
    out_dir = cfg.data.workdir / "vision"
    stamp = out_dir / "_done.json"
    bars = read_bars(cfg.data.bars_dir, vc.timeframe, cfg.data.symbol)
    key = {
        "vision": config_id(vc),
        "bars": [bars.height, str(bars["ts"][-1]) if bars.height else None],
    }
    if stamp.exists():
        done = json.loads(stamp.read_text())
        if done.get("key") == key:
            return {**done["summary"], "status": "skipped (up to date)"}
    with stage_progress("vision") as prog:
        prog("charting windows", 0, 2)
        reqs = window_requests(
            bars,
            instrument=cfg.data.symbol,
            timeframe=vc.timeframe,
            window=vc.window,
            stride=vc.stride,
            windows=vc.windows,
            overlays=vc.overlays,
            size=vc.size,
        )
        prog(f"analysing {len(reqs)} windows ({vc.model.backend})", 1, 2)
        records = analyze_windows(
            reqs, vc.model, use_ray=use_ray and vc.use_ray, log_dir=vc.log_dir or out_dir / "log"
        )
        prog(f"analysed {len(reqs)} windows", 2, 2)
    ok = [r.analysis for r in records if r.status == "ok" and r.analysis is not None]
    summary = {
        "backend": vc.model.backend,
        "model": records[0].model if records else None,
        "windows": len(records),
        "failed": len(records) - len(ok),
        "trends": dict(Counter(a.trend for a in ok)),
        "patterns": dict(Counter(p for a in ok for p in a.patterns).most_common(5)),
        "agreement": agreement_on_bars(records, bars),
        "log_dir": str(vc.log_dir or out_dir / "log"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"key": key, "summary": summary}, default=str))
    return summary


def run_pine(cfg: AppConfig, run_id: str) -> dict[str, Any]:
    """Export the ranked strategies of ``run_id`` (those that passed every gate of the run's
    verdict; none when nothing passed) as Pine v6 (strategy + indicator overlay) to
    ``<workdir>/pine`` with a manifest (which also carries the verdict and its message), and
    verify each strategy script (pynescript syntax, PineTS run, parity with the engine on the
    same bars) when the verification tools are installed. Results are stored with the
    strategy; a strategy already verified is not checked again. Scripts that an earlier
    manifest in that folder listed and this one does not are removed, so the folder never
    holds a script the latest verdict did not pass."""
    lib = open_library(cfg.library.url)
    out_dir = cfg.data.workdir / "pine"
    out_dir.mkdir(parents=True, exist_ok=True)
    can_verify, why = runner_status()
    try:
        # optional dependency probe: pynescript comes with the test extra
        import pynescript  # noqa: F401
    except ImportError:
        can_verify, why = False, "pynescript is not installed (pip install -e '.[test]')"
    rows = []
    for r in lib.top(run_id=run_id, n=cfg.search.top):
        s = r.strategy
        slug = re.sub(r"[^a-z0-9]+", "_", f"{r.rank:02d}_{s.family}_{s.timeframe}_{s.id}".lower())
        code, verification = pine_for_strategy(lib, s.id, "strategy")
        overlay, _ = pine_for_strategy(lib, s.id, "indicator")
        (out_dir / f"{slug}.pine").write_text(code, encoding="utf-8")
        (out_dir / f"{slug}_indicator.pine").write_text(overlay, encoding="utf-8")
        rows.append((r, slug, code, verification))
    pending = [i for i, row in enumerate(rows) if row[3] is None and can_verify]
    if pending:
        # one parser and one PineTS process for all the scripts (aio_ray.pine.verify)
        frames: dict[tuple[str, str], BarArrays] = {}
        for i in pending:
            s = rows[i][0].strategy
            if (s.timeframe, s.symbol) not in frames:
                frame = read_bars(cfg.data.bars_dir, s.timeframe, s.symbol)
                frames[(s.timeframe, s.symbol)] = BarArrays.from_frame(frame, "mid")
        strategies = [rows[i][0].strategy for i in pending]
        reports = verify_scripts(
            [rows[i][2] for i in pending],
            [frames[(s.timeframe, s.symbol)] for s in strategies],
            timeframe=[s.timeframe for s in strategies],
        )
        for i, s, report in zip(pending, strategies, reports, strict=True):
            record_verification(lib, s.id, report)
            r, slug, code, _ = rows[i]
            rows[i] = (r, slug, code, lib.pine_verification(s.id, "strategy"))
    entries = []
    for r, slug, _code, verification in rows:
        s = r.strategy
        status = (
            "not verified: " + why
            if verification is None
            else (
                "verified"
                if verification["parsed"] and verification["parity_passed"]
                else f"parity FAILED at bar {verification['first_diff_bar']}"
            )
        )
        entries.append(
            {
                "rank": r.rank,
                "strategy_id": s.id,
                "file": f"{slug}.pine",
                "indicator_file": f"{slug}_indicator.pine",
                "verification": status,
            }
        )

    v = run_verdict(lib, run_id)
    _drop_stale_scripts(out_dir, entries)
    manifest = {
        "run_id": run_id,
        "verdict": v["verdict"],
        "passed": v["passed"],
        "message": v["message"],
        "strategies": entries,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return {"dir": str(out_dir), "scripts": entries, "message": v["message"]}


def _drop_stale_scripts(out_dir: Path, entries: list[dict[str, Any]]) -> None:
    """Remove the scripts the previous manifest of ``out_dir`` listed that ``entries`` do not
    (only plain file names this stage wrote; nothing else in the folder is touched)."""
    old = out_dir / "manifest.json"
    try:
        listed = json.loads(old.read_text()).get("strategies") or []
    except (OSError, ValueError, AttributeError):
        return
    keep = {e[k] for e in entries for k in ("file", "indicator_file")}
    for e in listed:
        for k in ("file", "indicator_file"):
            name = e.get(k) if isinstance(e, dict) else None
            if (
                isinstance(name, str)
                and name not in keep
                and name.endswith(".pine")
                and Path(name).name == name
            ):
                (out_dir / name).unlink(missing_ok=True)


def run_pipeline(cfg: AppConfig, *, use_ray: bool = True) -> dict[str, Any]:
    """ingest -> bars -> indicators -> search -> ranking -> library, each stage resumable.

    Returns a summary: ticks, bars, trials, the verdict (``verdict``: verdict, passed,
    candidates, effective_trials, pbo, message, best_rejected, gates) and the top strategies
    (only those that passed every gate) with key metrics. With
    ``cfg.mode == "backtest"`` the search is replaced by a replay of ranked strategies from a
    library on this data (:func:`aio_ray.replay.replay_strategies`).
    """
    t0 = time.perf_counter()
    if use_ray:
        ensure_ray(cfg.ray)
    ingest = run_ingest(cfg, use_ray=use_ray)
    if not ingest.ok:
        log.warning("ingest finished with problems: %s", ingest.errors[:5])
    bars = run_bars(cfg)
    indicators = run_indicators(cfg)
    if cfg.mode == "backtest":
        with stage_progress("backtest") as prog:
            prog("replay ranked strategies", 0, 1)
            replay = replay_strategies(cfg)
            prog("replay ranked strategies", 1, 1)
        return {
            "mode": "backtest",
            "ticks": _ticks_summary(cfg, ingest),
            "bars": _bars_summary(cfg, bars),
            "indicators": indicators,
            "backtest": replay,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    patterns = run_patterns(cfg, use_ray=use_ray)
    vision = run_vision(cfg, use_ray=use_ray)
    if vision.get("status") == "skipped":
        log.info("vision: skipped: %s", vision["reason"])
    run_id = default_run_id(cfg.data.bars_dir, cfg.search)
    storage = (cfg.data.workdir / "tune").resolve()
    outcome = run_optimize(
        cfg.data.bars_dir, cfg, run_id=run_id, resume=(storage / run_id).exists(), storage=storage
    )
    with stage_progress("pine") as prog:
        prog("export + verify", 0, 1)
        pine = run_pine(cfg, outcome.run_id)
        prog("export + verify", 1, 1)

    lib = open_library(cfg.library.url)
    report = ranked_verdict(lib, run_id=outcome.run_id, top=cfg.search.top)
    top = report["strategies"]  # only the strategies that passed every gate
    status = {e["strategy_id"]: e for e in pine["scripts"]}
    for row in top:
        row["pine"] = status.get(row["strategy_id"])
    verdict = {
        k: report.get(k)
        for k in (
            "verdict",
            "passed",
            "candidates",
            "effective_trials",
            "pbo",
            "message",
            "best_rejected",
            "gates",
        )
    }
    return {
        "mode": "search",
        "ticks": _ticks_summary(cfg, ingest),
        "bars": _bars_summary(cfg, bars),
        "indicators": indicators,
        "patterns": patterns,
        "vision": vision,
        "search": {
            "run_id": outcome.run_id,
            "trials_ok": outcome.n_ok,
            "trials_failed": outcome.n_failed,
            "seconds": round(outcome.wall_s, 1),
            "candidates_per_s": round(outcome.n_done / max(outcome.wall_s, 1e-9), 1),
            "complete": outcome.complete,
            "seeds": outcome.seeds,
        },
        "verdict": verdict,
        "top": top,
        "pine_dir": pine["dir"],
        "library": cfg.library.url,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _ticks_summary(cfg: AppConfig, ingest: IngestReport) -> dict[str, Any]:
    kept = sum(
        int(p.meta.get("kept", 0)) for p in list_partitions(cfg.data.ticks_dir, cfg.data.symbol)
    )
    return {"kept": kept, "this_run": ingest.totals, "problems": ingest.errors}


def _bars_summary(cfg: AppConfig, bars: dict[str, Any]) -> dict[str, Any]:
    if bars.get("status") == "skipped":
        return bars
    return {
        "bars_dir": str(cfg.data.bars_dir),
        "rows": dict(bars.get("symbols", {}).get(cfg.data.symbol, {}).get("rows", {})),
        "nodes": bars.get("nodes"),
    }


def _patterns_line(p: dict[str, Any]) -> str:
    if "occurrences" not in p:
        return f"patterns: {p.get('status', 'n/a')}"
    kept = p["validated"]
    return (
        f"patterns: {p['occurrences']:,} occurrences on {', '.join(p['timeframes'])}; "
        f"{len(kept)} pass the validator{': ' + ', '.join(kept[:6]) if kept else ''}"
    )


def _vision_line(v: dict[str, Any]) -> str:
    if "windows" not in v:
        return f"vision: skipped: {v.get('reason', '')}"
    a = v["agreement"]

    def pct(x: Any) -> str:
        return "n/a" if x is None or math.isnan(x) else f"{x:.0%}"

    return (
        f"vision ({v['backend']}, {v['model']}): {v['windows']} windows, {v['failed']} failed; "
        f"trends {v['trends']}; agrees with rule trend {pct(a['trend_vs_rules'])}, "
        f"direction hit rate {pct(a['direction_hit_rate'])} (rules {pct(a['rules_direction_hit_rate'])}); "
        f"log {v['log_dir']}"
    )


def format_summary(summary: dict[str, Any]) -> str:
    """A terminal-friendly rendering of :func:`run_pipeline`'s summary: the verdict's message
    before the top strategies (those that passed every gate); when none passed, the best
    rejected with the gates they failed."""
    if summary.get("mode") == "backtest":
        return "\n".join(
            [
                f"ticks kept: {summary['ticks']['kept']:,}",
                f"bars: {summary['bars']}",
                format_replay(summary["backtest"]),
                f"done in {summary['seconds']} s",
            ]
        )
    lines = [
        f"ticks kept: {summary['ticks']['kept']:,}",
        f"bars: {summary['bars']}",
        (
            f"search {summary['search']['run_id']}: {summary['search']['trials_ok']:,} candidates ok, "
            f"{summary['search']['trials_failed']:,} failed in {summary['search']['seconds']} s (seeds {summary['search']['seeds']})"
        ),
        _patterns_line(summary.get("patterns") or {}),
        _vision_line(summary.get("vision") or {}),
    ]
    verdict = summary.get("verdict") or {}
    if verdict.get("message"):
        lines.append(f"verdict: {verdict['message']}")
    none_passed = not summary["top"] and verdict.get("verdict") != "passed"
    lines.append(
        f"top {len(summary['top'])} (library {summary['library']}):"
        + (" no strategy passed every gate; no Pine exported" if none_passed else "")
    )
    for r in summary["top"]:
        c, h = r["criteria"], r["holdout"] or {}
        hs = h.get("sharpe")
        lines.append(
            f"  #{r['rank']} {r['family']:<14} {r['timeframe']:>4}  score {r['score']:.3f}  "
            f"OOS sharpe {c.get('sharpe', float('nan')):6.2f}  maxDD {c.get('max_drawdown', float('nan')):6.1%}  "
            f"PF {c.get('profit_factor', float('nan')):5.2f}  DSR {c.get('dsr', float('nan')):4.2f}  "
            f"trades {int(c.get('trades', 0)):4d}  "
            f"holdout sharpe {'n/a' if hs is None else f'{hs:.2f}'}  id {r['strategy_id']}"
        )
        if r.get("pine"):
            lines.append(
                f"      pine: {summary['pine_dir']}/{r['pine']['file']} ({r['pine']['verification']})"
            )
    rejected = rejected_lines(verdict) if none_passed else []
    if rejected:
        lines.append("best rejected (not significant, not exported):")
        lines.extend(rejected)
    lines.append(f"done in {summary['seconds']} s")
    return "\n".join(lines)
