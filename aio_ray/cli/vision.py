"""The ``aio analyze`` and ``aio patterns`` commands.

::

    aio analyze --bars BARS_DIR --timeframe 1h [--windows N] [--backend cpu|vllm|http] --json
    aio patterns --bars BARS_DIR --timeframes 1h,4h [--horizons 1,5,20] [--db URL] [--validated] [--json]
    aio patterns --db URL [--timeframe 1h] [--validated] [--json]       # what a run stored

``analyze --json`` prints a JSON list, one object per analysed window: ``trend``,
``patterns``, ``levels``, ``confidence``, ``rationale`` (null for a failed window), ``model``,
``window_start``, ``window_end`` (ISO-8601 UTC, open times of the first and last bar), and
``status``, ``backend``, ``latency_ms`` (``error`` and ``raw_text`` when failed).
Exit codes: 0 done, 1 some windows failed, 2 bad arguments or input.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from aio_ray.bars.store import list_symbols, read_bars
from aio_ray.cli.context import app_config, fail
from aio_ray.errors import AioError
from aio_ray.patterns.mining import mine_bars_dir
from aio_ray.patterns.stats import validate_patterns
from aio_ray.raycluster import ensure_ray
from aio_ray.vision.analyze import VisionConfig, analyze_windows, record_json, window_requests
from aio_ray.vision.registry import BACKENDS

__all__ = ["analyze_cmd", "patterns_cmd"]


def analyze_cmd(
    ctx: typer.Context,
    bars: Annotated[Path, typer.Option("--bars", help="Bars folder written by `aio bars`.")],
    timeframe: Annotated[str, typer.Option(help="Timeframe of the charts, e.g. 1h.")],
    windows: Annotated[
        int | None,
        typer.Option(help="How many of the latest windows (default from config, else 48)."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help="cpu (default: our chart model, runs anywhere), vllm (MiniCPM-V on a GPU) or http (OpenAI-compatible server)."
        ),
    ] = None,
    window: Annotated[int | None, typer.Option(help="Bars per chart (default 64).")] = None,
    stride: Annotated[int | None, typer.Option(help="Bars between windows (default 16).")] = None,
    symbol: Annotated[
        str | None, typer.Option(help="Symbol (default: the only one present).")
    ] = None,
    use_ray: Annotated[
        bool, typer.Option("--ray/--local", help="Ray actor pool, or this process (default).")
    ] = False,
    log_dir: Annotated[
        Path | None, typer.Option("--log", help="Append every analysis to this Parquet log folder.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list, one object per window.")
    ] = False,
) -> None:
    """Chart the latest bar windows and analyse each with a vision backend (ChartAnalysis:
    trend, patterns, levels, confidence, rationale)."""
    if backend is not None and backend not in BACKENDS:
        raise typer.BadParameter(
            f"{backend!r}: accepted are {', '.join(BACKENDS)}", param_hint="--backend"
        )
    if windows is not None and windows < 1:
        raise typer.BadParameter(f"{windows}: must be >= 1", param_hint="--windows")
    vc: VisionConfig = app_config(ctx).vision or VisionConfig()
    settings = vc.model if backend is None else vc.model.model_copy(update={"backend": backend})
    try:
        settings = type(vc.model).model_validate(settings.model_dump())
        frame = read_bars(bars, timeframe, symbol)
        sym = symbol or list_symbols(bars, timeframe)[0]
        if use_ray:
            ensure_ray(app_config(ctx).ray)
        reqs = window_requests(
            frame,
            instrument=sym.upper(),
            timeframe=timeframe,
            window=window or vc.window,
            stride=stride or vc.stride,
            windows=windows or vc.windows,
            overlays=vc.overlays,
            size=vc.size,
        )
        records = analyze_windows(reqs, settings, use_ray=use_ray, log_dir=log_dir)
    except (AioError, ValueError) as exc:
        fail(exc)
    rows = [record_json(r) for r in records]
    if as_json:
        typer.echo(json.dumps(rows))
    else:
        for r in rows:
            if r["status"] == "ok":
                typer.echo(
                    f"{r['window_start']} .. {r['window_end']}  {r['trend']:<8} "
                    f"conf {r['confidence']:.2f}  patterns {', '.join(r['patterns']) or '-'}  "
                    f"levels {', '.join(f'{x:.5f}' for x in r['levels']) or '-'}"
                )
            else:
                typer.echo(f"{r['window_start']} .. {r['window_end']}  FAILED: {r['error']}")
        typer.echo(f"{len(rows)} windows, model {rows[0]['model'] if rows else 'n/a'}", err=True)
    if any(r["status"] != "ok" for r in rows):
        raise typer.Exit(1)


def _num(x: Any, spec: str) -> str:
    """``x`` formatted by ``spec`` (e.g. ``"7.2f"``); ``n/a`` right-aligned to the same width."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return format("n/a", ">" + spec.split(".")[0])
    return format(x, spec)


def patterns_cmd(
    ctx: typer.Context,
    bars: Annotated[
        Path | None,
        typer.Option("--bars", help="Mine this bars folder (else: list what the library holds)."),
    ] = None,
    timeframes: Annotated[
        str | None, typer.Option(help="Comma list to mine, e.g. 1h,4h (default: the config's).")
    ] = None,
    timeframe: Annotated[str | None, typer.Option(help="Only this timeframe (listing).")] = None,
    horizons: Annotated[
        str | None, typer.Option(help="Forward horizons in bars, e.g. 1,5,20.")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Library URL (default from config); mined statistics are stored there with --save.",
        ),
    ] = None,
    save: Annotated[
        bool, typer.Option("--save", help="Store what was mined in the library.")
    ] = False,
    validated: Annotated[
        bool, typer.Option("--validated", help="Only patterns with enough occurrences and |t|.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of statistics rows.")
    ] = False,
) -> None:
    """Pattern statistics: every occurrence of the vocabulary's candle and chart patterns and
    its forward return (count, mean bps signed in the pattern's direction, hit rate, t)."""
    from aio_ray.library.patterns import load_pattern_stats  # lazy: sqlmodel, as the line above
    from aio_ray.library.repo import (
        open_library,
    )  # lazy: sqlmodel; keeps aio --help at 1.8 s CPU instead of 3.1 s

    cfg = app_config(ctx)
    pc = cfg.patterns
    try:
        if bars is not None:
            tfs = (
                [t.strip() for t in timeframes.split(",")]
                if timeframes
                else list(pc.timeframes or cfg.search.timeframes)
            )
            hs = tuple(int(h) for h in horizons.split(",")) if horizons else pc.horizons
            result = mine_bars_dir(bars, tfs, horizons=hs, window=pc.window)
            kept = {
                (s.pattern, s.timeframe, s.horizon)
                for s in validate_patterns(
                    result.stats, min_count=pc.min_count, min_abs_t=pc.min_abs_t
                )
            }
            if save:
                from aio_ray.library.patterns import save_mining  # lazy: sqlmodel, as above

                save_mining(
                    open_library(db or cfg.library.url),
                    result,
                    min_count=pc.min_count,
                    min_abs_t=pc.min_abs_t,
                )
            rows = [
                {**s.to_dict(), "validated": (s.pattern, s.timeframe, s.horizon) in kept}
                for s in result.stats
            ]
            rows = [
                {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                for r in rows
            ]
            if validated:
                rows = [r for r in rows if r["validated"]]
        else:
            rows = load_pattern_stats(
                open_library(db or cfg.library.url), timeframe=timeframe, validated_only=validated
            )
    except (AioError, ValueError) as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    typer.echo(
        f"{'pattern':<28}{'tf':>5}{'h':>4}{'count':>7}{'mean bps':>10}{'hit':>7}{'t':>7}  kept"
    )
    for r in rows:
        if not r.get("count"):
            continue
        typer.echo(
            f"{r['pattern']:<28}{r['timeframe']:>5}{r['horizon']:>4}{r['count']:>7}"
            f"{_num(r.get('mean_bps'), '10.2f')}{_num(r.get('hit_rate'), '7.2f')}"
            f"{_num(r.get('t_stat'), '7.2f')}  {'yes' if r.get('validated') else ''}"
        )
