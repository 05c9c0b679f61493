"""The numpy rasterizer: candles, wicks, overlays and volume land on the right pixels."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from aio_ray.charts.raster import (
    BACKGROUND,
    BEAR,
    BULL,
    GRID,
    MAX_OVERLAYS,
    OVERLAY_FIRST,
    PALETTE,
    VOLUME_BEAR,
    VOLUME_BULL,
    encode_png,
    rasterize,
    rasterize_batch,
    to_rgb,
)

H, W = 400, 400  # 4 bars -> 100 columns per bar, no side padding
# a window priced 0..3: bar 1 is a bull candle (open 1, close 2, high 3, low 0), bar 2 a bear one
O = np.array([1.5, 1.0, 2.0, 1.5])
HI = np.array([1.6, 3.0, 2.5, 1.6])
LO = np.array([1.4, 0.0, 0.5, 1.4])
C = np.array([1.5, 2.0, 1.0, 1.5])


def row_of(price: float, lo: float = 0.0, hi: float = 3.0, rows: int = H) -> float:
    """The documented mapping: the window's range fills the pane between 5% margins."""
    return (rows - 1) * (0.05 + 0.9 * (hi - price) / (hi - lo))


def slot(img: np.ndarray, bar: int, n: int = 4) -> np.ndarray:
    w = img.shape[1] // n
    return img[:, bar * w : (bar + 1) * w]


def test_bull_candle_body_and_wick_are_bull_coloured_and_span_their_prices() -> None:
    img = rasterize(O, HI, LO, C, size=(H, W), grid=False)
    s = slot(img, 1)
    assert set(np.unique(s)) == {BACKGROUND, BULL}
    rows, _ = np.nonzero(s == BULL)
    # wick: from the high (3.0) down to the low (0.0)
    assert abs(rows.min() - row_of(3.0)) <= 1 and abs(rows.max() - row_of(0.0)) <= 1
    # body: the rows where the candle is wide are exactly open (1.0) .. close (2.0)
    width = (s == BULL).sum(axis=1)
    body_rows = np.flatnonzero(width == width.max())
    assert abs(body_rows.min() - row_of(2.0)) <= 1 and abs(body_rows.max() - row_of(1.0)) <= 1
    # the body is most of the slot, the wick a thin centred line
    assert 60 <= width.max() <= 90
    wick = width[int(row_of(2.8))]
    assert 1 <= wick <= 3
    wick_cols = np.flatnonzero(s[int(row_of(2.8))] == BULL)
    assert abs(wick_cols.mean() - 49.5) <= 1.5


def test_bear_candle_is_bear_coloured_from_open_down_to_close() -> None:
    img = rasterize(O, HI, LO, C, size=(H, W), grid=False)
    s = slot(img, 2)
    assert set(np.unique(s)) == {BACKGROUND, BEAR}
    width = (s == BEAR).sum(axis=1)
    body_rows = np.flatnonzero(width == width.max())
    assert abs(body_rows.min() - row_of(2.0)) <= 1 and abs(body_rows.max() - row_of(1.0)) <= 1
    rows = np.flatnonzero(width)
    assert abs(rows.min() - row_of(2.5)) <= 1 and abs(rows.max() - row_of(0.5)) <= 1


def test_doji_draws_a_one_row_body() -> None:
    img = rasterize(O, HI, LO, C, size=(H, W), grid=False)
    width = (slot(img, 0) == BULL).sum(axis=1)  # open == close: bull by convention
    assert (width == width.max()).sum() <= 2
    assert abs(np.argmax(width) - row_of(1.5)) <= 1


def test_overlay_line_is_drawn_in_its_colour_joining_the_bar_centres() -> None:
    flat = np.full(4, 0.75)
    rising = np.array([0.5, 1.0, 1.5, 2.5])
    img = rasterize(
        O, HI, LO, C, size=(H, W), overlays={"flat": flat, "rising": rising}, grid=False
    )
    first, second = OVERLAY_FIRST, OVERLAY_FIRST + 1
    # the flat line: a thin horizontal band at its price, from bar 0's centre to bar 3's
    rows, cols = np.nonzero(img == first)
    assert abs(np.median(rows) - row_of(0.75)) <= 1 and rows.max() - rows.min() <= 2
    assert cols.min() <= 52 and cols.max() >= 347
    # the rising line: present in every column between the first and last centre, connected
    present = [np.flatnonzero(img[:, x] == second) for x in range(50, 350)]
    assert all(p.size for p in present)
    for a, b in itertools.pairwise(present):
        assert b.min() <= a.max() + 1 and a.min() <= b.max() + 1  # consecutive columns touch
    assert abs(present[0].max() - row_of(0.5)) <= 2 and abs(present[-1].min() - row_of(2.5)) <= 2
    # nothing beyond the first and last bar centres
    assert not (img[:, :45] == second).any() and not (img[:, 355:] == second).any()


def test_overlay_nan_is_a_gap_and_overlays_widen_the_price_range() -> None:
    line = np.array([4.0, 4.0, np.nan, 4.0])  # above every high: the axis must make room
    img = rasterize(O, HI, LO, C, size=(H, W), overlays={"x": line}, grid=False)
    cols = np.flatnonzero((img == OVERLAY_FIRST).any(axis=0))
    assert cols.min() <= 52 and cols.max() < 150  # bar 0 -> bar 1, then the gap
    rows = np.flatnonzero((img == OVERLAY_FIRST).any(axis=1))
    assert abs(rows.min() - row_of(4.0, 0.0, 4.0)) <= 1
    bull_rows = np.flatnonzero((img == BULL).any(axis=1))
    assert abs(bull_rows.min() - row_of(3.0, 0.0, 4.0)) <= 1


def test_volume_pane_only_when_asked() -> None:
    bare = rasterize(O, HI, LO, C, size=(H, W))
    assert not np.isin(bare, [VOLUME_BULL, VOLUME_BEAR]).any()
    assert abs(np.flatnonzero((bare == BULL).any(axis=1)).max() - row_of(0.0)) <= 1

    vol = np.array([10.0, 40.0, 20.0, 0.0])
    img = rasterize(O, HI, LO, C, size=(H, W), volume=vol)
    pane_top = H - 80  # 20% of the height
    assert (img[pane_top] == GRID).all()  # separator row
    price_rows = np.flatnonzero(np.isin(img, [BULL, BEAR]).any(axis=1))
    vol_rows = np.flatnonzero(np.isin(img, [VOLUME_BULL, VOLUME_BEAR]).any(axis=1))
    assert price_rows.max() < pane_top < vol_rows.min() and vol_rows.max() == H - 1
    heights = [int((slot(img, i)[pane_top:] >= VOLUME_BULL).any(axis=1).sum()) for i in range(4)]
    assert heights[1] == 80 - 2 and heights[3] == 0
    assert abs(heights[0] - 78 / 4) <= 1 and abs(heights[2] - 78 / 2) <= 1
    assert (slot(img, 1)[pane_top:] == VOLUME_BULL).any() and (
        slot(img, 2)[pane_top:] == VOLUME_BEAR
    ).any()
    # with a volume pane the candles use the rows above it, with the same 5% margins
    assert abs(price_rows.max() - row_of(0.0, rows=pane_top)) <= 1


def test_grid_lines_are_faint_rows_behind_the_candles() -> None:
    img = rasterize(O, HI, LO, C, size=(H, W))
    grid_rows = np.flatnonzero((img == GRID).any(axis=1))
    assert len(grid_rows) == 4
    assert not (rasterize(O, HI, LO, C, size=(H, W), grid=False) == GRID).any()
    # a candle crossing a grid line paints over it
    r = grid_rows[np.argmin(np.abs(grid_rows - row_of(1.5)))]
    assert (slot(img, 1)[r] == BULL).any()


def random_windows(
    b: int, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    c = 1.1 + np.cumsum(rng.normal(0, 1e-4, (b, n)), axis=1)
    o = c + rng.normal(0, 5e-5, (b, n))
    h = np.maximum(o, c) + np.abs(rng.normal(0, 5e-5, (b, n)))
    lo = np.minimum(o, c) - np.abs(rng.normal(0, 5e-5, (b, n)))
    ma = c + rng.normal(0, 3e-5, (b, n))
    ma[:, :5] = np.nan
    return (
        np.stack([o, h, lo, c], axis=2),
        rng.gamma(2.0, 100.0, (b, n)),
        {"ma": ma, "up": ma + 2e-4},
    )


@pytest.mark.parametrize("size", [(448, 448), (112, 112), (200, 333)])
def test_batch_equals_single_charts(size: tuple[int, int]) -> None:
    ohlc, vol, lines = random_windows(5, 64, seed=3)
    batch = rasterize_batch(ohlc, size=size, volume=vol, overlays=lines)
    assert batch.shape == (5, *size) and batch.dtype == np.uint8
    for i in range(5):
        single = rasterize(
            *ohlc[i].T, size=size, volume=vol[i], overlays={k: v[i] for k, v in lines.items()}
        )
        np.testing.assert_array_equal(batch[i], single)
    assert len({batch[i].tobytes() for i in range(5)}) == 5


def test_flat_window_is_a_centred_line() -> None:
    p = np.full(10, 1.2345)
    img = rasterize(p, p, p, p, size=(101, 200), grid=False)
    rows = np.flatnonzero((img == BULL).any(axis=1))
    assert rows.tolist() == [50]
    assert (img == BULL).sum() >= 10


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("nan_close", r"bar 3: close is nan"),
        ("inf_high", r"bar 1: high is inf"),
        ("inverted", r"bar 2: high 1.0 < low 2.0"),
    ],
)
def test_bad_prices_raise_naming_the_bar(bad: str, match: str) -> None:
    o, h, lo, c = (np.ones(5) for _ in range(4))
    h = h + 1.0
    if bad == "nan_close":
        c[3] = np.nan
    elif bad == "inf_high":
        h[1] = np.inf
    else:
        h[2], lo[2] = 1.0, 2.0
    with pytest.raises(ValueError, match=match):
        rasterize(o, h, lo, c)


def test_batch_errors_name_the_chart() -> None:
    ohlc, _, _ = random_windows(3, 8, seed=1)
    ohlc[2, 5, 0] = np.nan
    with pytest.raises(ValueError, match=r"bar 5 of chart 2: open is nan"):
        rasterize_batch(ohlc)


def test_empty_window_and_bad_shapes_raise() -> None:
    e = np.array([], dtype=np.float64)
    with pytest.raises(ValueError, match="empty window"):
        rasterize(e, e, e, e)
    with pytest.raises(ValueError, match="high has 2 bars, open has 3"):
        rasterize(np.ones(3), np.ones(2), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="does not fit in 100 pixel columns"):
        rasterize(*(np.ones(101) for _ in range(4)), size=(100, 100))
    with pytest.raises(ValueError, match=r"volume, bar 1: -1.0"):
        rasterize(*(np.ones(3) for _ in range(4)), volume=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="overlay 'x', bar 0: value is infinite"):
        rasterize(*(np.ones(3) for _ in range(4)), overlays={"x": np.array([np.inf, 1.0, 1.0])})
    too_many = {f"l{k}": np.ones(3) for k in range(MAX_OVERLAYS + 1)}
    with pytest.raises(ValueError, match="at most"):
        rasterize(*(np.ones(3) for _ in range(4)), overlays=too_many)
    with pytest.raises(ValueError, match="shape"):
        rasterize_batch(np.ones((2, 3)))


@pytest.mark.parametrize("size", [(448, 448), (57, 131)])
def test_png_round_trips_through_pil(size: tuple[int, int]) -> None:
    ohlc, vol, lines = random_windows(2, 40, seed=5)
    for img in rasterize_batch(ohlc, size=size, volume=vol, overlays=lines):
        png = encode_png(img)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        decoded = Image.open(io.BytesIO(png))
        decoded.load()
        assert decoded.mode == "P" and decoded.size == (size[1], size[0])
        np.testing.assert_array_equal(np.asarray(decoded), img)
        np.testing.assert_array_equal(np.asarray(decoded.convert("RGB")), to_rgb(img))
        if size == (448, 448):
            assert len(png) < img.size // 16  # charts compress well


def test_encode_png_rejects_what_is_not_a_palette_image() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4), dtype=np.int32))
    with pytest.raises(ValueError, match="out of range"):
        encode_png(np.full((4, 4), len(PALETTE), dtype=np.uint8))


def test_to_rgb_looks_up_the_palette() -> None:
    img = rasterize(O, HI, LO, C, size=(H, W))
    rgb = to_rgb(img)
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == tuple(PALETTE[BACKGROUND]) == (255, 255, 255)
    r, c = np.argwhere(img == BULL)[0]
    np.testing.assert_array_equal(rgb[r, c], PALETTE[BULL])
    assert to_rgb(np.stack([img, img])).shape == (2, H, W, 3)
    assert len({tuple(p) for p in PALETTE}) == len(PALETTE)  # every colour distinct


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 80),
    seed=st.integers(0, 2**31 - 1),
    height=st.integers(16, 160),
    width=st.integers(80, 200),
    volume=st.booleans(),
)
def test_every_bar_is_drawn_in_its_own_colour(
    n: int, seed: int, height: int, width: int, volume: bool
) -> None:
    ohlc, vol, _ = random_windows(1, n, seed)
    img = rasterize_batch(ohlc, size=(height, width), volume=vol if volume else None)[0]
    assert img.shape == (height, width) and int(img.max()) < len(PALETTE)
    bull = ohlc[0, :, 3] >= ohlc[0, :, 0]
    price = img[:, :] if not volume else img[: height - max(3, round(height * 0.2))]
    for i in range(n):
        cols = price[:, i * width // n : (i + 1) * width // n]  # the bars fill the width
        own, other = (BULL, BEAR) if bull[i] else (BEAR, BULL)
        assert (cols == own).any(), f"bar {i} not drawn"
        assert not (cols == other).any(), f"bar {i} has the other colour"
