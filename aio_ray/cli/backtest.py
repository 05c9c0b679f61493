"""``aio backtest``: one strategy on one timeframe, its metrics and trade list.

Signals are decided on a bar's close and filled at the next bar's open; timestamps are UTC
(ISO-8601 ``Z`` in the output), prices in quote currency.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from aio_ray.bars.arrays import BarArrays
from aio_ray.bars.store import read_bars
from aio_ray.cli.context import JsonOpt, app_config, fail, parse_json_object
from aio_ray.errors import AioError
from aio_ray.strategies.engine import BacktestConfig, run_backtest
from aio_ray.strategies.families import get_family
from aio_ray.strategies.space import defaults, validate

__all__ = ["backtest_cmd"]


def _iso(value: Any) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value is not None else ""


def backtest_cmd(
    ctx: typer.Context,
    bars: Annotated[Path, typer.Option("--bars", help="Bars folder written by `aio bars`.")],
    timeframe: Annotated[str, typer.Option(help="Timeframe, e.g. 1h.")],
    family: Annotated[
        str, typer.Option(help="Strategy family, e.g. ma_cross (see `aio families`).")
    ],
    params: Annotated[
        str, typer.Option(help='Parameters as JSON, e.g. {"fast": 10, "slow": 20, "ma": "sma"}.')
    ],
    price_model: Annotated[
        str, typer.Option(help="bidask (buy at ask, sell at bid) or single (mid, Pine's view).")
    ] = "bidask",
    commission: Annotated[
        float | None,
        typer.Option(help="Commission (bidask: USD per lot per side; single: percent)."),
    ] = None,
    symbol: Annotated[
        str | None, typer.Option(help="Symbol (default: the only one present).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Backtest one strategy on one timeframe: metrics and the trade list.

    Signals are decided on each bar's close and filled at the next bar's open; stops and
    targets fill inside the bar (rules: aio_ray/strategies/fills.py). Timestamps are UTC.
    """
    p = parse_json_object(params)
    if price_model not in ("bidask", "single"):
        raise typer.BadParameter(
            f"{price_model!r}: accepted are bidask, single", param_hint="--price-model"
        )
    try:
        fam = get_family(family)
        # parameters not given take the family's defaults (the ATR stop/target are off by default)
        checked = validate(family, {**defaults(family), **p})
        frame = read_bars(bars, timeframe, symbol)
        mb = BarArrays.from_frame(frame, timeframe=timeframe)
        update: dict[str, Any] = {"price_model": price_model}
        if commission is not None:
            update["commission"] = commission
            update["commission_type"] = "per_lot" if price_model == "bidask" else "percent"
        cfg = app_config(ctx).search.backtest.model_copy(update=update)
        cfg = BacktestConfig.model_validate(cfg.model_dump())
        fam.warmup_bars(mb, checked)  # too few bars for the warm-up: a clear error
        result = run_backtest(mb, fam.signals(mb, checked), cfg)
    except (AioError, ValueError) as exc:
        fail(exc)
    trades = [
        {**row, "entry_ts": _iso(row["entry_ts"]), "exit_ts": _iso(row["exit_ts"])}
        for row in result.trades.to_dicts()
    ]
    metrics = {k: (None if math.isnan(v) else v) for k, v in result.metrics.items()}
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "family": family,
                    "params": checked,
                    "timeframe": timeframe,
                    "price_model": price_model,
                    "metrics": metrics,
                    "trades": trades,
                }
            )
        )
        return
    typer.echo(
        f"{family} {json.dumps(checked)} on {timeframe} ({price_model}): {len(trades)} trades"
    )
    for k, v in metrics.items():
        typer.echo(f"  {k:>18}: {v}")
