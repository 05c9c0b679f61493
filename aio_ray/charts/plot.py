"""Charts for people: mplfinance candlesticks with a strategy's entries and exits marked.

Stable public API::

    plot_trades(bars, trades=None, *, title, overlays=None, path=None, size=(12, 6),
                volume=True, price="mid", dpi=100) -> bytes     # PNG

Trades take the library's shape (:class:`aio_ray.library.models.TradeRow`): ``side``
("long" | "short"), ``entry_ts`` and ``exit_ts`` (UTC ms or datetimes), ``entry_price`` and
``exit_price`` (quote currency); a list of dicts or of rows, a polars frame or an Arrow table.
Entries are triangles at the entry bar and price (long: green up, short: red down), exits are
crosses at the exit bar and price, and a thin line joins them (green if the trade made money in
its direction, red if not). A marker goes on the bar whose open time is the last one at or
before the trade's time; trades entirely outside the bars are left out.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from aio_ray.charts.render import RenderError, overlay_lines

__all__ = ["plot_trades", "trades_frame"]

_LONG, _SHORT = "long", "short"
_COLOURS = {
    "up": "#089981",
    "down": "#f23645",
    "entry_long": "#089981",
    "entry_short": "#f23645",
    "exit": "#212121",
    "win": "#089981",
    "loss": "#f23645",
}
_LINE_COLOURS = (
    "#2962ff",
    "#ff9800",
    "#9c27b0",
    "#212121",
    "#00acc1",
    "#cddc39",
    "#795548",
    "#e91e63",
)


def _ms(value: Any, where: str) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp() * 1000)
    if isinstance(value, (int, np.integer)):
        return int(value)
    raise RenderError(f"{where}: expected UTC ms (int) or a datetime, got {value!r}")


def trades_frame(trades: Any) -> pl.DataFrame:
    """Trades as a polars frame: side, entry_ts, exit_ts (int64 UTC ms), entry/exit_price.

    Accepts a list of dicts or of objects with those attributes (e.g. ``TradeRow``), a polars
    DataFrame or an Arrow table. Raises RenderError naming a missing field or a bad side.
    """
    fields = ("side", "entry_ts", "exit_ts", "entry_price", "exit_price")
    if isinstance(trades, pa.Table):
        trades = pl.from_arrow(trades)
    if isinstance(trades, pl.DataFrame):
        missing = [f for f in fields if f not in trades.columns]
        if missing:
            raise RenderError(f"trades lack column(s) {missing}; have {trades.columns}")
        records: list[Any] = trades.select(fields).to_dicts()
    else:
        records = list(trades)
    rows: dict[str, list[Any]] = {f: [] for f in fields}
    for i, tr in enumerate(records):
        get = tr.get if isinstance(tr, Mapping) else lambda k, _t=tr: getattr(_t, k, None)
        for f in fields:
            v = get(f)
            if v is None:
                raise RenderError(f"trade {i}: missing {f!r}")
            if f == "side":
                if v not in (_LONG, _SHORT):
                    raise RenderError(f"trade {i}: side must be 'long' or 'short', got {v!r}")
            elif f.endswith("_ts"):
                v = _ms(v, f"trade {i} {f}")
            else:
                v = float(v)
            rows[f].append(v)
    return pl.DataFrame(
        rows,
        schema={
            "side": pl.String,
            "entry_ts": pl.Int64,
            "exit_ts": pl.Int64,
            "entry_price": pl.Float64,
            "exit_price": pl.Float64,
        },
    )


def _bars_pandas(bars: Any, price: str, volume: bool) -> Any:
    frame = pl.from_arrow(bars) if isinstance(bars, pa.Table) else bars
    if not isinstance(frame, pl.DataFrame):
        raise RenderError(
            f"bars must be a polars DataFrame or an Arrow table, got {type(bars).__name__}"
        )
    if price not in ("mid", "bid", "ask"):
        raise RenderError(f"price must be 'mid', 'bid' or 'ask', got {price!r}")
    cols = ["ts"] + [f"{price}_{k}" for k in ("open", "high", "low", "close")]
    if volume:
        cols += ["bid_volume", "ask_volume"]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise RenderError(f"bars lack column(s) {missing}; have {frame.columns}")
    if frame.height == 0:
        raise RenderError("no bars to plot")
    ts = frame["ts"]
    ts_ms = (
        (ts.dt.epoch("ms") if isinstance(ts.dtype, pl.Datetime) else ts).cast(pl.Int64).to_numpy()
    )
    data = {
        k.capitalize(): frame[f"{price}_{k}"].cast(pl.Float64).to_numpy()
        for k in ("open", "high", "low", "close")
    }
    if volume:
        data["Volume"] = (
            frame["bid_volume"].cast(pl.Float64) + frame["ask_volume"].cast(pl.Float64)
        ).to_numpy()
    index = pd.DatetimeIndex(
        pd.to_datetime(ts_ms, unit="ms", utc=True).tz_convert(None), name="Date"
    )
    return pd.DataFrame(data, index=index), ts_ms


def _marker_series(n: int, idx: np.ndarray, prices: np.ndarray) -> np.ndarray:
    out = np.full(n, np.nan)
    out[idx] = prices
    return out


def plot_trades(
    bars: pl.DataFrame | pa.Table,
    trades: Any = None,
    *,
    title: str,
    overlays: Mapping[str, np.ndarray] | Sequence[str] | None = None,
    path: str | Path | None = None,
    size: tuple[float, float] = (12, 6),
    volume: bool = True,
    price: Literal["mid", "bid", "ask"] = "mid",
    dpi: int = 100,
) -> bytes:
    """A candlestick chart of ``bars`` with ``trades`` marked, as PNG bytes (matplotlib Agg).

    Parameters
    ----------
    bars
        Bars of one timeframe (BAR_SCHEMA columns ``ts``, ``{price}_open..close`` and, with
        ``volume``, ``bid_volume``/``ask_volume``), sorted by ``ts``.
    trades
        None, or trades in the library's shape (see :func:`trades_frame`).
    title
        Chart title.
    overlays
        Name -> line in price (one value per bar, NaN = gap), or specs such as
        ``("sma_20", "bb_20")`` computed on the bars (see :func:`~aio_ray.charts.render.overlay_lines`).
    path
        Also write the PNG there.
    size
        Figure size in inches (width, height); pixels are ``size * dpi``.

    Raises
    ------
    RenderError
        Missing columns, no bars, malformed trades or overlays of the wrong length.
    """
    # optional heavy dependency (vision extra): matplotlib/mplfinance only for rendering
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # vision extra, after the backend is chosen
    import mplfinance as mpf  # vision extra

    df, ts_ms = _bars_pandas(bars, price, volume)
    n = len(df)
    if overlays is None:
        lines: dict[str, np.ndarray] = {}
    elif isinstance(overlays, Mapping):
        lines = {k: np.asarray(v, dtype=np.float64) for k, v in overlays.items()}
    else:
        lines = overlay_lines(df["Close"].to_numpy(), list(overlays))
    addplots = []
    for k, (name, line) in enumerate(lines.items()):
        if line.shape != (n,):
            raise RenderError(f"overlay {name!r} has shape {line.shape}, expected ({n},)")
        if np.isfinite(line).any():
            addplots.append(
                mpf.make_addplot(line, color=_LINE_COLOURS[k % len(_LINE_COLOURS)], width=1.0)
            )

    alines: list[list[tuple[Any, float]]] = []
    aline_colours: list[str] = []
    tf = trades_frame(trades) if trades is not None else None
    if tf is not None and tf.height:
        first, last = int(ts_ms[0]), int(ts_ms[-1])
        keep = tf.filter((pl.col("exit_ts") >= first) & (pl.col("entry_ts") <= last))
        if keep.height:
            e_idx = np.clip(
                np.searchsorted(ts_ms, keep["entry_ts"].to_numpy(), side="right") - 1, 0, n - 1
            )
            x_idx = np.clip(
                np.searchsorted(ts_ms, keep["exit_ts"].to_numpy(), side="right") - 1, 0, n - 1
            )
            side = keep["side"].to_numpy()
            ep, xp = keep["entry_price"].to_numpy(), keep["exit_price"].to_numpy()
            for sd, marker, colour in (
                (_LONG, "^", _COLOURS["entry_long"]),
                (_SHORT, "v", _COLOURS["entry_short"]),
            ):
                sel = side == sd
                if sel.any():
                    addplots.append(
                        mpf.make_addplot(
                            _marker_series(n, e_idx[sel], ep[sel]),
                            type="scatter",
                            marker=marker,
                            markersize=80,
                            color=colour,
                        )
                    )
            addplots.append(
                mpf.make_addplot(
                    _marker_series(n, x_idx, xp),
                    type="scatter",
                    marker="X",
                    markersize=60,
                    color=_COLOURS["exit"],
                )
            )
            dates = df.index
            for i in range(keep.height):
                won = (xp[i] - ep[i]) * (1 if side[i] == _LONG else -1) > 0
                alines.append([(dates[e_idx[i]], float(ep[i])), (dates[x_idx[i]], float(xp[i]))])
                aline_colours.append(_COLOURS["win"] if won else _COLOURS["loss"])

    style = mpf.make_mpf_style(
        base_mpf_style="yahoo",
        marketcolors=mpf.make_marketcolors(up=_COLOURS["up"], down=_COLOURS["down"], inherit=True),
        gridstyle=":",
        rc={"figure.titleweight": "bold", "axes.labelweight": "normal"},  # DejaVu has no semibold
    )
    kwargs: dict[str, Any] = {
        "type": "candle",
        "style": style,
        "volume": volume,
        "title": title,
        "figsize": tuple(size),
        "returnfig": True,
        "warn_too_much_data": n + 1,
    }
    if addplots:
        kwargs["addplot"] = addplots
    if alines:
        kwargs["alines"] = {
            "alines": alines,
            "colors": aline_colours,
            "linewidths": 1.0,
            "alpha": 0.7,
        }
    fig, _axes = mpf.plot(df, **kwargs)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    png = buf.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(png)
    return png
