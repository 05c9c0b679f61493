"""``aio bars`` (ticks to multi-timeframe bars on Ray Data) and ``aio indicators``.

Bars are labelled by their open time (UTC); prices are bid/ask/mid OHLC in quote currency.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer

from aio_ray.bars.store import read_bars
from aio_ray.cli.context import JsonOpt, app_config, fail
from aio_ray.errors import AioError
from aio_ray.indicators import compute_all
from aio_ray.raycluster import ensure_ray

__all__ = ["bars_cmd", "indicators_cmd"]


def bars_cmd(
    ctx: typer.Context,
    ticks: Annotated[
        Path, typer.Option("--ticks", help="Tick dataset folder written by `aio ingest`.")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", help="Bars folder: OUT/timeframe=1m/symbol=EURUSD/part-0.parquet."),
    ],
    timeframes: Annotated[
        str | None, typer.Option(help="Comma list, e.g. 1m,5m,15m,1h,4h,1d (default from config).")
    ] = None,
    daily_close: Annotated[
        str | None, typer.Option(help="utc (midnight) or new_york_close (17:00 New York).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Resample the tick dataset to multi-timeframe bid/ask/mid OHLC bars on Ray Data."""
    from aio_ray.bars.build import (
        build_bars,
    )  # lazy: Ray; keeps aio --help at 1.8 s CPU instead of 3.4 s

    cfg = app_config(ctx).bars
    tfs = (
        [t.strip() for t in timeframes.split(",") if t.strip()]
        if timeframes
        else list(cfg.timeframes)
    )
    mode = daily_close or cfg.daily_close
    if mode not in ("utc", "new_york_close"):
        raise typer.BadParameter(
            f"{mode!r}: accepted are utc, new_york_close", param_hint="--daily-close"
        )
    if not ticks.is_dir():
        raise typer.BadParameter(f"{ticks} is not a folder", param_hint="--ticks")
    try:
        ensure_ray(app_config(ctx).ray)
        summary = build_bars(
            ticks, out, tfs, daily_close=cast(Literal["utc", "new_york_close"], mode)
        )
    except AioError as exc:
        fail(exc)
    typer.echo(json.dumps(summary, default=str) if as_json else _bars_text(summary))


def indicators_cmd(
    ctx: typer.Context,
    bars: Annotated[Path, typer.Option("--bars", help="Bars folder written by `aio bars`.")],
    timeframe: Annotated[str, typer.Option(help="Timeframe to read, e.g. 1h.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    symbol: Annotated[
        str | None, typer.Option(help="Symbol (default: the only one present).")
    ] = None,
    price: Annotated[str, typer.Option(help="mid, bid or ask OHLC as the input series.")] = "mid",
) -> None:
    """The eight indicators (TradingView semantics) at their customary defaults.

    Writes ts, rsi, macd, macd_signal, macd_hist, bb_upper, bb_middle, bb_lower, sma, ema,
    stoch_k, stoch_d, atr, adx, plus_di, minus_di (14; 12/26/9; 20/2; 20; 20; 14/3/3; 14; 14),
    NaN during each warm-up.
    """
    try:
        frame = read_bars(bars, timeframe, symbol)
        result = compute_all(frame, price=price)
    except (AioError, ValueError) as exc:
        fail(exc)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.write_parquet(out, compression="zstd")
    typer.echo(f"indicators: {result.height:,} bars x {result.width - 1} columns -> {out}")


def _bars_text(summary: dict[str, Any]) -> str:
    lines = [f"bars -> {summary.get('bars_dir', '')}"]
    for key, val in summary.items():
        if key != "bars_dir":
            lines.append(f"  {key}: {val}")
    return "\n".join(lines)
