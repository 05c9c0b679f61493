"""``aio ingest``: ticks (synthetic, Dukascopy, Parquet/CSV files) or bar files into the datasets.

::

    aio ingest synthetic --out DIR [--start 2025-07-01 --end 2025-08-01] [--edge mean_reversion]
    aio ingest dukascopy --out DIR [--start D --end D] [--mirror DIR | --base-url URL] [--local]
    aio ingest files FILE... --out DIR [--map ts=time] [--ts-unit ms] [--local]
    aio ingest bars FILE... --timeframe 1m --out BARS_DIR [--map ...] [--tz ...] [--spread ...]

Days are UTC, ``--end`` exclusive. A bad row is quarantined, not fatal; the exit code is 1 when
the report is not ok, 2 on bad arguments or input.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer
from pydantic import ValidationError

from aio_ray.cli.context import JsonOpt, LocalOpt, OutOpt, app_config, fail, use_ray
from aio_ray.data.bar_ingest import ingest_bar_files
from aio_ray.data.config import SyntheticConfig
from aio_ray.data.files import ColumnMapping
from aio_ray.data.sources.dukascopy import ingest_dukascopy
from aio_ray.data.sources.files import ingest_files
from aio_ray.data.sources.synthetic import ingest_synthetic
from aio_ray.errors import AioError
from aio_ray.progress import stage_progress

__all__ = [
    "ingest_app",
    "ingest_bars_cmd",
    "ingest_dukascopy_cmd",
    "ingest_files_cmd",
    "ingest_synthetic_cmd",
]

ingest_app = typer.Typer(
    help="Read ticks (or bar files) from a source, quarantine bad rows, write the dataset.",
    no_args_is_help=True,
)


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date like 2019-02-04", param_hint=name
        ) from None


def _print_ingest(report: Any, as_json: bool) -> None:
    d = report.to_dict()
    if as_json:
        typer.echo(json.dumps({k: v for k, v in d.items() if k != "days"}, default=str))
    else:
        t = d["totals"]
        typer.echo(
            f"ingest {d['source']}: {d['days_written']} day(s) written, {d['days_skipped']} skipped; "
            f"{t['input']:,} ticks in, {t['kept']:,} kept, "
            + ", ".join(f"{k} {t[k]:,}" for k in t if k not in ("input", "kept"))
            + " quarantined"
        )
        shown = d["errors"][:10]
        for e in shown:
            typer.secho(
                f"  problem: {e['source']}: {e['problem']}", fg=typer.colors.YELLOW, err=True
            )
        if len(d["errors"]) > len(shown):
            typer.secho(
                f"  ... and {len(d['errors']) - len(shown)} more problem(s), all named in the report",
                fg=typer.colors.YELLOW,
                err=True,
            )
        if d["days_incomplete"]:
            typer.secho(
                f"  incomplete day(s), rerun to retry: {', '.join(d['days_incomplete'])}",
                fg=typer.colors.YELLOW,
                err=True,
            )
        typer.echo(f"report: {Path(d['out']) / '_ingest_report.json'}")
    if not report.ok:
        raise typer.Exit(1)


@ingest_app.command("synthetic")
def ingest_synthetic_cmd(
    ctx: typer.Context,
    out: OutOpt,
    symbol: Annotated[str, typer.Option(help="Six-letter symbol.")] = "EURUSD",
    start: Annotated[str, typer.Option(help="First UTC day (YYYY-MM-DD).")] = "2025-07-01",
    end: Annotated[str, typer.Option(help="Day after the last (exclusive).")] = "2025-08-01",
    seed: Annotated[int | None, typer.Option(help="Generator seed (default from config).")] = None,
    edge: Annotated[
        Literal["none", "mean_reversion", "momentum"] | None,
        typer.Option(
            help="Plant a tradeable edge in the mid: none (a martingale: no strategy should pass), "
            "mean_reversion (an OU deviation of the log mid) or momentum (an integrated OU "
            "trend). Default from config (synthetic.edge)."
        ),
    ] = None,
    edge_strength: Annotated[
        float | None,
        typer.Option(
            help="Std of the planted log-mid deviation, in units of the mid's martingale std over one "
            "half-life (annual_vol * sqrt(half-life / 374,400 min)); 0 < x <= 5 with an edge, 0 "
            "without. Default from config (synthetic.edge_strength); --edge none alone sets "
            "0."
        ),
    ] = None,
    edge_half_life_min: Annotated[
        float | None,
        typer.Option(
            help="Half-life of the edge, minutes (0 < x <= 1440): of the deviation (mean_reversion) "
            "or of the trend's velocity (momentum). Default from config "
            "(synthetic.edge_half_life_min)."
        ),
    ] = None,
    local: LocalOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Seeded, realistic synthetic ticks (the embedded default data), optionally with a
    planted edge of known strength (--edge) to test that the search finds it."""
    cfg = app_config(ctx)
    update: dict[str, Any] = {
        k: v
        for k, v in (
            ("seed", seed),
            ("edge", edge),
            ("edge_strength", edge_strength),
            ("edge_half_life_min", edge_half_life_min),
        )
        if v is not None
    }
    if edge == "none" and edge_strength is None:
        update["edge_strength"] = 0.0  # switching the config's edge off needs no second option
    try:  # validated (model_copy would not), so a bad combination fails here, naming the field
        scfg = SyntheticConfig.model_validate({**cfg.synthetic.model_dump(), **update})
    except ValidationError as exc:
        fail(exc)
    try:
        with stage_progress("ingest") as prog:
            rep = ingest_synthetic(
                symbol.upper(),
                _date(start, "--start"),
                _date(end, "--end"),
                out,
                scfg,
                cfg.validation,
                use_ray=use_ray(ctx, local),
                progress=prog,
            )
    except AioError as exc:
        fail(exc)
    _print_ingest(rep, as_json)


@ingest_app.command("dukascopy")
def ingest_dukascopy_cmd(
    ctx: typer.Context,
    out: OutOpt,
    symbol: Annotated[str, typer.Option(help="Six-letter symbol.")] = "EURUSD",
    start: Annotated[str, typer.Option(help="First UTC day (YYYY-MM-DD).")] = "2019-02-04",
    end: Annotated[str, typer.Option(help="Day after the last (exclusive).")] = "2019-02-06",
    mirror: Annotated[
        Path | None, typer.Option(help="Read Dukascopy's folder layout from disk; no HTTP.")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Datafeed base URL (default from config).")
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Download cache (default OUT/_cache/dukascopy).")
    ] = None,
    local: LocalOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Dukascopy hour files (.bi5), downloaded in parallel as Ray tasks or read from a mirror."""
    cfg = app_config(ctx)
    if mirror is not None and base_url is not None:
        raise typer.BadParameter(
            "give either --mirror or --base-url, not both", param_hint="--mirror"
        )
    if mirror is not None and not mirror.is_dir():
        raise typer.BadParameter(f"{mirror} is not a folder", param_hint="--mirror")
    upd: dict[str, Any] = {}
    if base_url:
        upd["base_url"] = base_url.rstrip("/")
    if cache_dir:
        upd["cache_dir"] = cache_dir
    dcfg = cfg.dukascopy.model_copy(update=upd)
    try:
        with stage_progress("ingest") as prog:
            rep = ingest_dukascopy(
                symbol.upper(),
                _date(start, "--start"),
                _date(end, "--end"),
                out,
                mirror=mirror,
                dcfg=dcfg,
                vcfg=cfg.validation,
                use_ray=use_ray(ctx, local),
                progress=prog,
            )
    except AioError as exc:
        fail(exc)
    _print_ingest(rep, as_json)


@ingest_app.command("files")
def ingest_files_cmd(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Parquet or CSV tick files.")],
    out: OutOpt,
    symbol: Annotated[str, typer.Option(help="Six-letter symbol the files hold.")] = "EURUSD",
    fmt: Annotated[str, typer.Option("--format", help="auto, parquet or csv.")] = "auto",
    map_: Annotated[
        list[str],
        typer.Option(
            "--map", help="Column mapping canonical=file_column, e.g. ts=time (repeatable)."
        ),
    ] = [],  # noqa: B006
    ts_unit: Annotated[
        str, typer.Option(help="Unit of integer timestamps: s, ms, us or ns.")
    ] = "ms",
    local: LocalOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Parquet/CSV tick files with a column mapping."""
    if fmt not in ("auto", "parquet", "csv"):
        raise typer.BadParameter(f"{fmt!r}: accepted are auto, parquet, csv", param_hint="--format")
    if ts_unit not in ("s", "ms", "us", "ns"):
        raise typer.BadParameter(f"{ts_unit!r}: accepted are s, ms, us, ns", param_hint="--ts-unit")
    fields: dict[str, str] = {}
    for item in map_:
        if "=" not in item:
            raise typer.BadParameter(f"{item!r} must look like ts=time", param_hint="--map")
        k, v = item.split("=", 1)
        fields[k.strip()] = v.strip()
    try:
        mapping = ColumnMapping(**fields, ts_unit=cast(Literal["s", "ms", "us", "ns"], ts_unit))
    except TypeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--map") from None
    try:
        with stage_progress("ingest") as prog:
            rep = ingest_files(
                list(paths),
                symbol.upper(),
                out,
                mapping=mapping,
                fmt=cast(Literal["auto", "parquet", "csv"], fmt),
                vcfg=app_config(ctx).validation,
                use_ray=use_ray(ctx, local),
                progress=prog,
            )
    except AioError as exc:
        fail(exc)
    _print_ingest(rep, as_json)


@ingest_app.command("bars")
def ingest_bars_cmd(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="CSV or Parquet bar files of one symbol and timeframe (concatenated in this order)."
        ),
    ],
    timeframe: Annotated[
        str, typer.Option("--timeframe", help="The files' bar length: 1m, 5m, 15m, 1h, 4h, 1d ...")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Bars folder: OUT/timeframe=TF/symbol=SYM/part-0.parquet (what `aio optimize --bars` reads).",
        ),
    ],
    symbol: Annotated[str, typer.Option(help="Symbol the files hold.")] = "EURUSD",
    map_: Annotated[
        list[str],
        typer.Option(
            "--map",
            help="Column map field=file_column (repeatable): ts (or date + time), open, high, low, close, or bid_open..ask_close, spread, volume, ticks. Unmapped fields are found by name; without a map TradingView, MetaTrader and HistData files are recognized.",
        ),
    ] = [],  # noqa: B006
    fmt: Annotated[str, typer.Option("--format", help="auto, parquet or csv.")] = "auto",
    tz: Annotated[
        str | None,
        typer.Option(
            help="Zone of naive times: IANA name (Europe/Berlin) or offset (+02:00). Default UTC; HistData: EST without DST (UTC-05:00). Times with an offset are converted to UTC."
        ),
    ] = None,
    ts_unit: Annotated[
        str, typer.Option(help="Unit of epoch-number times: auto (by magnitude), s, ms, us, ns.")
    ] = "auto",
    ts_format: Annotated[
        str | None,
        typer.Option(
            help="strftime layout of text times not recognized, e.g. '%d.%m.%Y %H:%M:%S'."
        ),
    ] = None,
    price: Annotated[
        str | None,
        typer.Option(
            help="What a single price series quotes: bid, ask or mid. Default: bid for MetaTrader and HistData, mid otherwise."
        ),
    ] = None,
    spread: Annotated[
        float | None,
        typer.Option(
            help="Fixed spread in price units (0.0001 = 1 pip on EURUSD) for single-price bars; wins over a spread column. A bid series gets ask = bid + spread, a mid series bid/ask = mid -/+ spread/2. Single-price bars need it or a spread column (0 = fills at the one price)."
        ),
    ] = None,
    point: Annotated[
        float | None,
        typer.Option(
            help="Price of one point for MetaTrader's <SPREAD> (default 0.00001, JPY pairs 0.001)."
        ),
    ] = None,
    timeframes: Annotated[
        str | None,
        typer.Option(
            help="Comma list of timeframes to write: the input one plus roll-ups to longer ones (default: config bars.timeframes that roll up from it)."
        ),
    ] = None,
    daily_close: Annotated[
        str | None,
        typer.Option(
            help="Daily bars cut at utc (midnight) or new_york_close (17:00 New York); default from config."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Bar files (TradingView, MetaTrader, HistData exports, your own CSV/Parquet) as the project's bars, with higher timeframes rolled up.

    Every row is checked (high >= max(open, close), low <= min(open, close), positive finite prices, bid <= ask, on the timeframe's grid, duplicates); bad rows go to OUT/_quarantine/timeframe=TF/symbol=SYM/part-0.parquet with a reason, and OUT/_ingest_report_SYM.json counts them, the rows out of order (the bars are sorted) and the gaps.

    Times are UTC, a bar labelled by its open time; prices and --spread in quote currency. A single price series gets bid/ask from the spread (bid series: ask = bid + spread; mid: mid -/+ spread/2); ticks = the file's tick count, or 0 when unknown. A file that cannot be read fails the command (exit 2) and nothing is written.
    """
    if fmt not in ("auto", "parquet", "csv"):
        raise typer.BadParameter(f"{fmt!r}: accepted are auto, parquet, csv", param_hint="--format")
    if price is not None and price not in ("bid", "ask", "mid"):
        raise typer.BadParameter(f"{price!r}: accepted are bid, ask, mid", param_hint="--price")
    if ts_unit not in ("auto", "s", "ms", "us", "ns"):
        raise typer.BadParameter(
            f"{ts_unit!r}: accepted are auto, s, ms, us, ns", param_hint="--ts-unit"
        )
    columns: dict[str, str] = {}
    for item in map_:
        if "=" not in item:
            raise typer.BadParameter(f"{item!r} must look like ts=Date", param_hint="--map")
        key, val = item.split("=", 1)
        columns[key.strip()] = val.strip()
    cfg = app_config(ctx).bars
    tfs = (
        [t.strip() for t in timeframes.split(",") if t.strip()]
        if timeframes
        else list(cfg.timeframes)
    )
    try:
        rep = ingest_bar_files(
            list(paths),
            timeframe,
            symbol,
            out,
            columns=columns or None,
            fmt=fmt,  # type: ignore[arg-type]
            tz=tz,
            ts_unit=ts_unit,
            ts_format=ts_format,
            price=price,  # type: ignore[arg-type]
            spread=spread,
            point=point,
            timeframes=tfs,
            explicit_timeframes=timeframes is not None,
            daily_close=daily_close or cfg.daily_close,
        )
    except AioError as exc:
        fail(exc)
    _print_ingest_bars(rep.to_dict(), as_json)


def _print_ingest_bars(d: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(d, default=str))
        return
    t, g = d["totals"], d["gaps"]
    bad = ", ".join(f"{k} {v:,}" for k, v in t.items() if k not in ("input", "kept") and v)
    typer.echo(
        f"ingest bars {d['symbol']} {d['timeframe']}: {len(d['files'])} file(s), {t['input']:,} rows in, "
        f"{t['kept']:,} kept, {t['input'] - t['kept']:,} quarantined" + (f" ({bad})" if bad else "")
    )
    for f in d["files"]:
        typer.echo(
            f"  {f['path']}: {f['format']}, {f['rows']:,} rows, {f['kept']:,} kept; times {f['tz']}; "
            f"price {f['price']}; spread {f['spread']}"
        )
    typer.echo(
        f"  {d['first']} .. {d['last']}; {d['out_of_order']:,} row(s) out of order (sorted); "
        f"{g['count']:,} gap(s) ({g['weekend']:,} over a weekend), {g['missing_bars']:,} missing bar(s)"
        + (
            f", longest {g['longest']['after']} -> {g['longest']['before']}"
            if g.get("longest")
            else ""
        )
    )
    typer.echo(
        "  wrote "
        + ", ".join(f"{tf} {n:,}" for tf, n in d["rows"].items())
        + f" bars -> {d['out']}"
    )
    typer.echo(f"report: {d['report']}")
    if t["input"] != t["kept"]:
        typer.echo(f"quarantine: {d['quarantine']}")
