"""The ``aio`` command: one verb per job; every option has a default from ``configs/*.yaml``.

Global options (before the verb): ``--config FILE`` loads a configuration, ``--set key=value``
overrides one field (repeatable), ``--log-level``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer

from aio_ray.cli_state import state
from aio_ray.config import SyntheticConfig, load_config
from aio_ray.errors import AioError
from aio_ray.pine.commands import register
from aio_ray.raycluster import ensure_ray
from aio_ray.vision.commands import register as register_vision

# Each verb imports its stage inside the function, so that `aio --help` and every verb start
# without loading Ray, sqlmodel, torch or compiled kernels that the verb does not use.

app = typer.Typer(
    name="aio",
    help="aio-ray: EUR/USD ticks -> bars -> indicators -> strategy search -> ranked, verified Pine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ingest_app = typer.Typer(
    help="Read ticks (or bar files) from a source, quarantine bad rows, write the dataset.",
    no_args_is_help=True,
)
app.add_typer(ingest_app, name="ingest")


@app.callback()
def main(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML configuration (configs/*.yaml).")
    ] = None,
    set_: Annotated[
        list[str],
        typer.Option("--set", help="Override a config field: section.key=value (repeatable)."),
    ] = [],  # noqa: B006
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """aio-ray command line."""
    from aio_ray.logsetup import configure_logging

    configure_logging(log_level)
    try:
        state.config = load_config(config, set_)
    except AioError as exc:
        _fail(exc)
    lc = state.config.logging
    # --log-level given on the command line wins over the file's level
    configure_logging(log_level if log_level.upper() != "INFO" else lc.level, lc.format)


def _fail(exc: Exception, code: int = 2) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


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


LocalOpt = Annotated[
    bool, typer.Option("--local", help="Run in this process without Ray (small inputs, debugging).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line.")]
OutOpt = Annotated[
    Path,
    typer.Option("--out", help="Tick dataset folder (Parquet, partitioned by symbol and UTC day)."),
]


def _ray(local: bool) -> bool:
    if local:
        return False
    ensure_ray(state.config.ray)
    return True


@ingest_app.command("synthetic")
def ingest_synthetic_cmd(
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
    from pydantic import ValidationError

    from aio_ray.data.ingest import ingest_synthetic
    from aio_ray.progress import stage_progress

    cfg = state.config
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
        _fail(exc)
    try:
        with stage_progress("ingest") as prog:
            rep = ingest_synthetic(
                symbol.upper(),
                _date(start, "--start"),
                _date(end, "--end"),
                out,
                scfg,
                cfg.validation,
                use_ray=_ray(local),
                progress=prog,
            )
    except AioError as exc:
        _fail(exc)
    _print_ingest(rep, as_json)


@ingest_app.command("dukascopy")
def ingest_dukascopy_cmd(
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
    from aio_ray.data.ingest import ingest_dukascopy
    from aio_ray.progress import stage_progress

    cfg = state.config
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
                use_ray=_ray(local),
                progress=prog,
            )
    except AioError as exc:
        _fail(exc)
    _print_ingest(rep, as_json)


@ingest_app.command("files")
def ingest_files_cmd(
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
    from aio_ray.data.files import ColumnMapping
    from aio_ray.data.ingest import ingest_files
    from aio_ray.progress import stage_progress

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
                vcfg=state.config.validation,
                use_ray=_ray(local),
                progress=prog,
            )
    except AioError as exc:
        _fail(exc)
    _print_ingest(rep, as_json)


@ingest_app.command("bars")
def ingest_bars_cmd(
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
    from aio_ray.data.bar_ingest import ingest_bar_files

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
    cfg = state.config.bars
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
        _fail(exc)
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


@app.command("bars")
def bars_cmd(
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
    from aio_ray.bars.build import build_bars

    cfg = state.config.bars
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
        ensure_ray(state.config.ray)
        summary = build_bars(
            ticks, out, tfs, daily_close=cast(Literal["utc", "new_york_close"], mode)
        )
    except AioError as exc:
        _fail(exc)
    typer.echo(json.dumps(summary, default=str) if as_json else _bars_text(summary))


@app.command("indicators")
def indicators_cmd(
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
    from aio_ray.bars.store import read_bars
    from aio_ray.indicators import compute_all

    try:
        frame = read_bars(bars, timeframe, symbol)
        result = compute_all(frame, price=price)
    except (AioError, ValueError) as exc:
        _fail(exc)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.write_parquet(out, compression="zstd")
    typer.echo(f"indicators: {result.height:,} bars x {result.width - 1} columns -> {out}")


def _parse_params(raw: str) -> dict[str, Any]:
    try:
        params = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint="--params") from None
    if not isinstance(params, dict):
        raise typer.BadParameter(
            'must be a JSON object such as {"fast": 10}', param_hint="--params"
        )
    return params


def _iso(value: Any) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value is not None else ""


@app.command("backtest")
def backtest_cmd(
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
    from aio_ray.bars.store import read_bars
    from aio_ray.strategies.engine import BacktestConfig, run_backtest
    from aio_ray.strategies.evaluate import MarketBars
    from aio_ray.strategies.families import get_family
    from aio_ray.strategies.space import defaults, validate

    p = _parse_params(params)
    if price_model not in ("bidask", "single"):
        raise typer.BadParameter(
            f"{price_model!r}: accepted are bidask, single", param_hint="--price-model"
        )
    try:
        fam = get_family(family)
        # parameters not given take the family's defaults (the ATR stop/target are off by default)
        checked = validate(family, {**defaults(family), **p})
        frame = read_bars(bars, timeframe, symbol)
        mb = MarketBars.from_frame(frame, timeframe)
        update: dict[str, Any] = {"price_model": price_model}
        if commission is not None:
            update["commission"] = commission
            update["commission_type"] = "per_lot" if price_model == "bidask" else "percent"
        cfg = state.config.search.backtest.model_copy(update=update)
        cfg = BacktestConfig.model_validate(cfg.model_dump())
        fam.warmup_bars(mb.signal, checked)  # too few bars for the warm-up: a clear error
        result = run_backtest(mb.signal, fam.signals(mb.signal, checked), cfg, mb.bid_ask)
    except (AioError, ValueError) as exc:
        _fail(exc)
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


@app.command("optimize")
def optimize_cmd(
    bars: Annotated[Path, typer.Option("--bars", help="Bars folder written by `aio bars`.")],
    timeframes: Annotated[
        str | None, typer.Option(help="Comma list, e.g. 15m,1h (default from config).")
    ] = None,
    families: Annotated[str, typer.Option(help="Comma list of families, or all.")] = "all",
    trials: Annotated[
        int | None,
        typer.Option(help="Candidates (parameter sets) to evaluate (default from config)."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Library URL: sqlite:///file.db or postgresql+psycopg://..."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue an interrupted run (same run id); finished trials are kept."
        ),
    ] = False,
    run_id: Annotated[
        str | None,
        typer.Option(help="Run id (default: derived from the settings and bars folder)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Sampler seed (default from config).")] = None,
    storage: Annotated[
        Path | None, typer.Option(help="Tune experiments folder (default WORKDIR/tune).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search families x parameters x timeframes with Ray Tune + Optuna on walk-forward folds,
    rank the out-of-sample results (Deflated Sharpe, stability, drawdown...) and store them."""
    from aio_ray.pipeline import run_optimize

    search = state.config.search
    update: dict[str, Any] = {}
    if timeframes:
        update["timeframes"] = tuple(t.strip() for t in timeframes.split(",") if t.strip())
    if families and families != "all":
        update["families"] = tuple(f.strip() for f in families.split(",") if f.strip())
    if trials is not None:
        update["n_trials"] = trials
    if seed is not None:
        update["seed"] = seed
    try:
        search = type(search).model_validate({**search.model_dump(), **update})
        cfg = state.config.model_copy(update={"search": search})
        ensure_ray(cfg.ray)
        outcome = run_optimize(bars, cfg, run_id=run_id, resume=resume, db_url=db, storage=storage)
    except (AioError, ValueError) as exc:
        _fail(exc)
    tf_of = {f["strategy_id"]: f["timeframe"] for f in outcome.finalists}
    summary = {
        "run_id": outcome.run_id,
        "complete": outcome.complete,
        "trials_ok": outcome.n_ok,
        "trials_failed": outcome.n_failed,
        "seeds": outcome.seeds,
        "candidates_per_s": round(outcome.n_done / max(outcome.wall_s, 1e-9), 1),
        "errors": outcome.errors,
        "top": [
            {
                "rank": i + 1,
                "strategy_id": r.strategy_id,
                "family": r.family,
                "timeframe": tf_of.get(r.strategy_id),
                "params": dict(r.params),
                "score": r.score,
            }
            for i, r in enumerate(outcome.ranking)
        ],
    }
    v = outcome.verdict or {}
    summary["verdict"] = {
        k: v.get(k)
        for k in ("verdict", "passed", "candidates", "effective_trials", "pbo", "message")
    }
    if as_json:
        typer.echo(json.dumps(summary, default=str))
        return
    typer.echo(
        f"run {outcome.run_id}: {outcome.n_ok:,} candidates ok, {outcome.n_failed:,} failed "
        f"in {outcome.wall_s:.1f} s ({summary['candidates_per_s']:,.0f}/s)"
        + ("" if outcome.complete else " (interrupted: rerun with --resume)")
    )
    if v.get("message"):
        typer.echo(f"verdict: {v['message']}")
    for e in outcome.errors:
        typer.echo(f"  error: {e}", err=True)
    for row in summary["top"]:
        typer.echo(
            f"  #{row['rank']} {row['family']:<14} {row['timeframe']:>4} score {row['score']:.3f} "
            f"{json.dumps(row['params'])}"
        )
    if not summary["top"] and v.get("best_rejected"):
        from aio_ray.library.report import rejected_lines

        typer.echo("  best rejected (not significant):")
        for line in rejected_lines(v, indent="    "):
            typer.echo(line)


@app.command("rank")
def rank_cmd(
    db: Annotated[
        str | None, typer.Option("--db", help="Library URL (default from config).")
    ] = None,
    top: Annotated[int, typer.Option(help="How many strategies.")] = 5,
    run_id: Annotated[
        str | None, typer.Option(help="Run (default: the newest ranked run).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The verdict of a search, then the strategies that passed every gate with their
    metrics, holdout figures and parameters; when none passed, the best rejected and the gates
    they failed.

    The score uses out-of-sample walk-forward results only; holdout figures are shown beside
    it and were never used to choose. --json prints one object: the verdict (verdict,
    passed, candidates, effective_trials, pbo, gates, best_rejected, message, run_id) with
    ``strategies`` the top N of the ranking (possibly empty). Without any ranked run,
    ``verdict`` is null, ``strategies`` empty and ``message`` says so (exit 0).
    """
    from aio_ray.library.repo import open_library
    from aio_ray.library.report import dumps_verdict, ranked_verdict, rejected_lines

    if top < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--top")
    try:
        lib = open_library(db or state.config.library.url)
        if run_id is not None and lib.get_run(run_id) is None:
            _fail(LookupError(f"run {run_id!r} is not in the library {lib.safe_url}"))
        v = ranked_verdict(lib, run_id=run_id, top=top)
    except AioError as exc:
        _fail(exc)
    if as_json:
        typer.echo(dumps_verdict(v))
        return
    typer.echo(v["message"])
    if v["run_id"] is None:
        return
    typer.echo(f"run {v['run_id']}")
    for r in v["strategies"]:
        c, h = r["criteria"], r["holdout"] or {}
        typer.echo(
            f"#{r['rank']} {r['family']:<14} {r['timeframe']:>4} score {r['score']:.3f} "
            f"| OOS sharpe {c.get('sharpe', float('nan')):.2f} dd {c.get('max_drawdown', float('nan')):.1%} "
            f"DSR {c.get('dsr', float('nan')):.2f} | holdout sharpe {_num(h.get('sharpe'))} "
            f"| {r['strategy_id']} {json.dumps(r['params'])}"
        )
    rejected = rejected_lines(v) if not v["strategies"] else []
    if rejected:
        typer.echo("best rejected (not significant):")
        for line in rejected:
            typer.echo(line)


@app.command("pipeline")
def pipeline_cmd(as_json: JsonOpt = False) -> None:
    """The whole pipeline in this process, as configured (--config / --set): ingest, bars,
    indicators, search, ranking, library. Complete stages are reused, so a rerun resumes."""
    from aio_ray.pipeline import format_summary, run_pipeline

    try:
        summary = run_pipeline(state.config)
    except AioError as exc:
        _fail(exc)
    typer.echo(json.dumps(summary, default=str) if as_json else format_summary(summary))


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _bars_text(summary: dict[str, Any]) -> str:
    lines = [f"bars -> {summary.get('bars_dir', '')}"]
    for key, val in summary.items():
        if key != "bars_dir":
            lines.append(f"  {key}: {val}")
    return "\n".join(lines)


register(app)
register_vision(app)


if __name__ == "__main__":  # pragma: no cover
    app()
