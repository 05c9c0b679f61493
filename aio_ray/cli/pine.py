"""The ``aio pine`` and ``aio verify-pine`` commands.

::

    aio pine --db URL --strategy ID [--kind indicator] [--out FILE]
    aio pine --family ma_cross --params '{"fast": 10, "slow": 20, "ma": "sma"}' --timeframe 1h [--out FILE]
    aio pine --db URL --top 5 --out DIR [--run RUN_ID] [--include-rejected]
    aio verify-pine FILE.pine [FILE.pine ...] --bars BARS_DIR --timeframe 15m [--json] [--db URL]

``--top`` exports only the strategies that passed every gate of the run's verdict; when none
passed it prints the verdict's message and writes nothing (exit 0). ``--include-rejected``
also exports the verdict's best rejected strategies, each script's header carrying a
``// NOT SIGNIFICANT: <failed gates and verdict>`` line; a library strategy exported with
``--strategy`` that its run's verdict did not pass carries the same line.

``verify-pine`` exits 0 when the script parses and reproduces the engine's trades, 1 when
it does not (syntax error, PineTS failure, parity difference), 2 on bad arguments. With
``--db`` the result is stored with the strategy named in the script's header. Several files
are verified in one call (one parser, one PineTS process): one line per file (``PASS``/``FAIL``,
file, summary) and a summary line; ``--json`` prints a JSON list of the reports, each with its
``file`` (one file: the report object alone, as before); exit 0 only when all pass.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from aio_ray.bars.arrays import BarArrays
from aio_ray.bars.store import read_bars
from aio_ray.bars.timeframes import parse_timeframe
from aio_ray.cli.context import app_config, fail, parse_json_object
from aio_ray.errors import AioError
from aio_ray.library.report import ranked_verdict, significance_warning
from aio_ray.pine.generate import ScriptSource, generate, read_meta
from aio_ray.pine.library import pine_for_strategy, record_verification, source_for_strategy
from aio_ray.pine.verify import verify_scripts
from aio_ray.strategies.engine import BacktestConfig
from aio_ray.strategies.space import defaults, validate

__all__ = ["pine_cmd", "verify_pine_cmd"]

_KINDS = ("strategy", "indicator")


def _backtest_settings(ctx: typer.Context) -> BacktestConfig:
    """The app's backtest settings (``--config``/``--set search.backtest.*``), seen as Pine
    does (single price)."""
    return app_config(ctx).search.backtest.model_copy(update={"price_model": "single"})


def _write(code: str, out: Path | None) -> None:
    if out is None:
        typer.echo(code, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(code, encoding="utf-8")
    typer.echo(f"pine: {out}", err=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:60]


def pine_cmd(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Library URL (sqlite:///file.db or postgresql+psycopg://...)."),
    ] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="Library strategy id.")] = None,
    top: Annotated[
        int | None,
        typer.Option(
            "--top", help="Export the best N of a run's ranking (needs --db and --out DIR)."
        ),
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Run id for --top (default: the newest ranked run).")
    ] = None,
    family: Annotated[
        str | None, typer.Option("--family", help="Strategy family, without a library.")
    ] = None,
    params: Annotated[
        str | None,
        typer.Option(
            "--params",
            help='Parameters as JSON, e.g. {"fast": 10, "slow": 20, "ma": "sma"}; missing ones take the defaults.',
        ),
    ] = None,
    timeframe: Annotated[
        str | None,
        typer.Option(
            "--timeframe", help="Timeframe the strategy is meant for, e.g. 1h (with --family)."
        ),
    ] = None,
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol (with --family).")] = "EURUSD",
    name: Annotated[
        str | None, typer.Option("--name", help="Display name (with --family).")
    ] = None,
    kind: Annotated[
        str, typer.Option("--kind", help="strategy (orders) or indicator (chart overlay).")
    ] = "strategy",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output file (a folder with --top); default: stdout."),
    ] = None,
    include_rejected: Annotated[
        bool,
        typer.Option(
            "--include-rejected",
            help="With --top: also export the verdict's best rejected strategies (not "
            "significant); their scripts start with a '// NOT SIGNIFICANT: <failed gates>' "
            "line. Without it only strategies that passed every gate are exported.",
        ),
    ] = False,
) -> None:
    """Pine Script v6 of a strategy: from the library (--strategy, --top) or given (--family).

    --top exports only the strategies that passed every gate of the run's verdict; when none
    passed it prints the verdict and writes nothing. --include-rejected also exports the best
    rejected, each header saying NOT SIGNIFICANT and which gates failed.
    """
    if kind not in _KINDS:
        raise typer.BadParameter(f"{kind!r}: accepted are strategy, indicator", param_hint="--kind")
    chosen = [
        o
        for o, v in (("--strategy", strategy), ("--top", top), ("--family", family))
        if v is not None
    ]
    if len(chosen) != 1:
        raise typer.BadParameter(
            "give exactly one of --strategy, --top, --family", param_hint="--strategy"
        )
    try:
        if family is not None:
            if timeframe is None:
                raise typer.BadParameter(
                    "--family needs --timeframe (e.g. 1h)", param_hint="--timeframe"
                )
            tf = parse_timeframe(timeframe).name
            given = parse_json_object(params) if params else {}
            checked = validate(family, {**defaults(family), **given})
            src = ScriptSource(
                family,
                checked,
                tf,
                symbol=symbol.upper(),
                name=name,
                backtest=_backtest_settings(ctx),
            )
            _write(generate(src, kind), out)  # type: ignore[arg-type]
            return
        if db is None:
            raise typer.BadParameter(f"{chosen[0]} needs --db URL", param_hint="--db")
        from aio_ray.library import (
            Library,
        )  # lazy: sqlmodel; keeps aio --help at 1.8 s CPU instead of 3.1 s

        lib = Library(db)
        if strategy is not None:
            warning = _warning_of(lib, strategy)
            if warning is None:
                code, _ = pine_for_strategy(lib, strategy, kind)  # type: ignore[arg-type]
            else:
                code = _rejected_code(lib, strategy, kind, warning)
            _write(code, out)
            return
        assert top is not None
        if top < 1:
            raise typer.BadParameter("must be >= 1", param_hint="--top")
        if out is None:
            raise typer.BadParameter("--top needs --out DIR", param_hint="--out")
        _export_top(lib, top, run, kind, out, include_rejected)
    except (AioError, ValueError) as exc:
        fail(exc)


def _warning_of(lib: Any, strategy_id: str) -> str | None:
    """Why a library strategy is not significant according to its run's verdict (None when
    it passed, or the run has no verdict or is unknown)."""
    rec = lib.get_strategy(strategy_id)
    v = None if rec is None else lib.verdict(rec.run_id)
    return None if v is None else significance_warning(v, strategy_id)


def _rejected_code(lib: Any, strategy_id: str, kind: str, warning: str) -> str:
    """The script of a strategy that did not pass, with its NOT SIGNIFICANT header line."""
    src = dataclasses.replace(source_for_strategy(lib, strategy_id), warning=warning)
    return generate(src, kind)  # type: ignore[arg-type]


def _entry(
    rank: int | None,
    fname: str,
    kind: str,
    s: Any,
    score: Any,
    holdout: Any,
    verification: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "rank": rank, "file": fname, "kind": kind, "strategy_id": s.id, "name": s.name,
        "family": s.family, "params": s.params, "timeframe": s.timeframe, "symbol": s.symbol,
        "score": score, "holdout": holdout,
        "verification": None if verification is None else {
            k: verification[k] for k in ("parsed", "parity_passed", "first_diff_bar", "checked_ms")
        },
    }  # fmt: skip


def _export_top(
    lib: Any, n: int, run_id: str | None, kind: str, out: Path, include_rejected: bool = False
) -> None:
    if run_id is not None and lib.get_run(run_id) is None:
        fail(f"run {run_id!r} is not in the library {lib.safe_url}")
    v = ranked_verdict(lib, run_id, n)
    ranked = lib.top(v["run_id"], n) if v["run_id"] is not None else []
    if v["verdict"] is None:
        fail(
            f"no saved ranking in {lib.safe_url}"
            + (f" for run {run_id!r}" if run_id else "")
            + f": {v['message']}"
        )
    rejected = []
    if include_rejected:
        for r in v.get("best_rejected") or []:
            sid = r.get("strategy_id")
            rec = lib.get_strategy(sid) if sid else None
            if rec is not None:
                rejected.append((r, rec))
    typer.echo(f"verdict: {v['message']}")
    if not ranked and not rejected:
        hint = "" if include_rejected else " (--include-rejected exports the best rejected)"
        typer.echo(f"pine: nothing passed every gate; no script written{hint}")
        return
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for r in ranked:
        s = r.strategy
        code, verification = pine_for_strategy(lib, s.id, kind)  # type: ignore[arg-type]
        fname = f"{r.rank:02d}_{_slug(s.family)}_{_slug(s.timeframe)}_{s.id}.pine"
        (out / fname).write_text(code, encoding="utf-8")
        entries.append(_entry(r.rank, fname, kind, s, r.score, r.holdout, verification))
    rejected_entries = []
    for i, (r, s) in enumerate(rejected, start=1):
        warning = significance_warning(v, s.id) or "did not pass every gate"
        code = _rejected_code(lib, s.id, kind, warning)
        fname = f"rejected_{i:02d}_{_slug(s.family)}_{_slug(s.timeframe)}_{s.id}.pine"
        (out / fname).write_text(code, encoding="utf-8")
        e = _entry(
            None,
            fname,
            kind,
            s,
            r.get("score"),
            r.get("holdout"),
            lib.pine_verification(s.id, kind),
        )
        e.update(significant=False, failed=list(r.get("failed") or []), warning=warning)
        rejected_entries.append(e)
    manifest = {"run_id": v["run_id"], "kind": kind, "verdict": v["verdict"],
                "passed": v["passed"], "message": v["message"], "strategies": entries,
                "rejected": rejected_entries}  # fmt: skip
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, default=str), encoding="utf-8"
    )
    extra = f" and {len(rejected_entries)} rejected (NOT SIGNIFICANT)" if rejected_entries else ""
    typer.echo(f"pine: {len(entries)} script(s){extra} and manifest.json -> {out}")


def verify_pine_cmd(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(help="One or more .pine files written by `aio pine`.")
    ],
    bars: Annotated[Path, typer.Option("--bars", help="Bars folder written by `aio bars`.")],
    timeframe: Annotated[
        str, typer.Option("--timeframe", help="Timeframe of the bars to run on, e.g. 15m.")
    ],
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Symbol (default: the only one present).")
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Store the result with the strategy in this library.")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the full report as one JSON line (a JSON list with several files).",
        ),
    ] = False,
) -> None:
    """Syntax (pynescript) + PineTS run + parity with the engine (single price model, mid bars).

    Several files are checked in one call with one parser and one PineTS process: one line
    per file and a summary (--json: a list of reports, each with its "file"); exit 0 only
    when every script passes, 1 when any fails, 2 on bad arguments.
    """
    for file in files:
        if not file.is_file():
            raise typer.BadParameter(f"{file} is not a file", param_hint="FILE")
    codes = [file.read_text(encoding="utf-8") for file in files]
    try:
        metas = []
        for file, code in zip(files, codes, strict=True):
            try:
                metas.append(read_meta(code))
            except (AioError, ValueError) as exc:
                fail(f"{file}: {exc}" if len(files) > 1 else exc)
        if db is not None:
            for file, meta in zip(files, metas, strict=True):
                if not meta.get("strategy_id"):
                    where = f"{file}: " if len(files) > 1 else ""
                    fail(
                        f"--db: {where}the script names no library strategy "
                        "(generated with --family)"
                    )
        frame = read_bars(bars, timeframe, symbol)
        arrays = BarArrays.from_frame(frame, "mid")
        reports = verify_scripts(codes, arrays, metas=metas, timeframe=timeframe)
        if db is not None:
            from aio_ray.library import Library  # lazy: sqlmodel, as in pine_cmd

            lib = Library(db)
            for meta, report in zip(metas, reports, strict=True):
                record_verification(lib, str(meta["strategy_id"]), report)
    except (AioError, ValueError, ImportError) as exc:
        fail(exc)
    passed = [bool(r.parsed and r.ran and r.parity_passed) for r in reports]
    if len(files) == 1:
        report = reports[0]
        typer.echo(json.dumps(report.to_dict(), default=str) if as_json else report.summary())
    elif as_json:
        rows = [{"file": str(f), **r.to_dict()} for f, r in zip(files, reports, strict=True)]
        typer.echo(json.dumps(rows, default=str))
    else:
        for f, r, ok in zip(files, reports, passed, strict=True):
            typer.echo(f"{'PASS' if ok else 'FAIL'} {f}: {r.summary()}")
        typer.echo(f"verify-pine: {sum(passed)} of {len(files)} script(s) passed")
    if not all(passed):
        raise typer.Exit(1)
