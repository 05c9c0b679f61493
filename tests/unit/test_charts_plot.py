"""mplfinance charts for people: a valid PNG with the trades marked."""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pytest
from PIL import Image

from aio_ray.charts.plot import plot_trades, trades_frame
from aio_ray.charts.render import RenderError
from aio_ray.library.models import TradeRow
from tests.integration.test_charts_render import make_bars

BARS = pl.from_arrow(make_bars(80, seed=9))
TS = BARS["ts"].dt.epoch("ms").to_list()
CLOSE = BARS["mid_close"].to_list()
TRADES = [
    {
        "side": "long",
        "entry_ts": TS[10],
        "exit_ts": TS[25],
        "entry_price": CLOSE[10],
        "exit_price": CLOSE[25],
    },
    {
        "side": "short",
        "entry_ts": TS[40] + 60_000,
        "exit_ts": TS[60],
        "entry_price": CLOSE[40],
        "exit_price": CLOSE[60],
    },
]


def decode(png: bytes) -> np.ndarray:
    im = Image.open(io.BytesIO(png))
    im.load()
    return np.asarray(im.convert("RGB")).astype(int)


def near(rgb: np.ndarray, colour: tuple[int, int, int], tol: int = 12) -> int:
    return int((np.abs(rgb - np.array(colour)).max(axis=2) <= tol).sum())


@pytest.fixture(scope="module")
def bare_png() -> bytes:
    return plot_trades(BARS, title="EURUSD 1h", size=(8, 4))


def test_plot_is_a_png_of_the_requested_size(bare_png: bytes) -> None:
    assert bare_png.startswith(b"\x89PNG")
    rgb = decode(bare_png)
    assert rgb.shape == (400, 800, 3)
    assert near(rgb, (8, 153, 129)) > 100 and near(rgb, (242, 54, 69)) > 100  # up and down candles


def test_trades_are_marked_and_long_differs_from_short(bare_png: bytes, tmp_path) -> None:
    path = tmp_path / "out" / "trades.png"
    png = plot_trades(BARS, TRADES, title="EURUSD 1h", size=(8, 4), path=path)
    assert path.read_bytes() == png
    with_trades, bare = decode(png), decode(bare_png)
    assert with_trades.shape == bare.shape and (with_trades != bare).any(axis=2).sum() > 200
    # the exit crosses are near-black (#212121); the bare chart has almost none of that colour
    assert near(with_trades, (33, 33, 33), tol=6) > near(bare, (33, 33, 33), tol=6) + 50
    flipped = [dict(t, side="short" if t["side"] == "long" else "long") for t in TRADES]
    assert (
        decode(plot_trades(BARS, flipped, title="EURUSD 1h", size=(8, 4))).tolist()
        != with_trades.tolist()
    )


def test_trades_in_every_accepted_shape_plot_the_same(tmp_path) -> None:
    want = plot_trades(BARS, TRADES, title="t", size=(6, 3))
    rows = [
        TradeRow(
            run_id="r",
            strategy_id="s",
            segment="full",
            seq=i,
            size=1.0,
            pnl=0.0,
            pnl_pips=0.0,
            exit_reason="signal",
            **t,
        )
        for i, t in enumerate(TRADES)
    ]
    assert plot_trades(BARS, rows, title="t", size=(6, 3)) == want
    assert plot_trades(BARS, pl.DataFrame(TRADES), title="t", size=(6, 3)) == want
    assert plot_trades(BARS, pl.DataFrame(TRADES).to_arrow(), title="t", size=(6, 3)) == want


def test_trades_outside_the_bars_are_left_out(bare_png: bytes) -> None:
    far = [dict(TRADES[0], entry_ts=TS[0] - 10 * 86_400_000, exit_ts=TS[0] - 9 * 86_400_000)]
    assert plot_trades(BARS, far, title="EURUSD 1h", size=(8, 4)) == bare_png


def test_overlays_by_spec_or_by_values() -> None:
    from aio_ray.indicators import sma

    by_spec = plot_trades(BARS, None, title="t", overlays=("sma_20",), size=(6, 3))
    by_values = plot_trades(
        BARS,
        None,
        title="t",
        overlays={"sma_20": sma(BARS["mid_close"].to_numpy(), 20)},
        size=(6, 3),
    )
    assert by_spec == by_values
    assert near(decode(by_spec), (41, 98, 255), tol=30) > 50  # the blue line
    with pytest.raises(RenderError, match="overlay 'x' has shape"):
        plot_trades(BARS, None, title="t", overlays={"x": np.ones(3)})


def test_bad_trades_and_bars_raise() -> None:
    with pytest.raises(RenderError, match="side must be 'long' or 'short'"):
        trades_frame([dict(TRADES[0], side="buy")])
    with pytest.raises(RenderError, match="trade 0: missing 'exit_price'"):
        trades_frame([{k: v for k, v in TRADES[0].items() if k != "exit_price"}])
    with pytest.raises(RenderError, match="lack column"):
        plot_trades(BARS.drop("mid_open"), None, title="t")
    with pytest.raises(RenderError, match="no bars"):
        plot_trades(BARS.head(0), None, title="t")
    tf = trades_frame(TRADES)
    assert tf.columns == ["side", "entry_ts", "exit_ts", "entry_price", "exit_price"]
    assert tf["entry_ts"].to_list() == [TS[10], TS[40] + 60_000]
