"""A fast numpy candlestick rasterizer: bar windows to uint8 palette images (the model's input).

Stable public API::

    PALETTE                                   # (K, 3) uint8 RGB; index 0 is the background
    BACKGROUND, GRID, BULL, BEAR, VOLUME_BULL, VOLUME_BEAR, OVERLAY_FIRST, MAX_OVERLAYS
    rasterize(open, high, low, close, *, size=(448, 448), volume=None, overlays=None, grid=True)
    rasterize_batch(ohlc, *, size=(448, 448), volume=None, overlays=None, grid=True)
    to_rgb(img)                               # palette indices -> RGB uint8
    encode_png(img)                           # indexed-colour ("P" mode) PNG bytes

Layout of one chart of ``N`` bars at ``size = (H, W)`` pixels:

- bar ``i`` owns pixel columns ``[i * W // N, (i + 1) * W // N)`` (``N > W`` is an error); with
  ``slot = W // N`` its body (open..close) is ``slot - max(1, slot // 4)`` columns wide and its
  wick (high..low) ``1`` column (``2`` when ``slot >= 6``), centred in the body; bull bars
  (close >= open) use :data:`BULL`, bear bars :data:`BEAR`, wick and body alike;
- the price axis spans the window's lowest low to highest high, overlays included, with a 5%
  margin at top and bottom; a flat window (highest == lowest) is drawn as a centred line;
- ``volume`` adds a pane at the bottom (20% of the height, separated by a grid-coloured row)
  with one bar per candle scaled to the window's largest volume;
- each overlay (``{"sma_20": ..., "bb_upper": ...}``) is a line joining consecutive bar
  centres in its own colour (:data:`OVERLAY_FIRST` + its position in the dict), NaN = gap;
- ``grid`` adds four faint horizontal lines across the price pane.

Drawing is vectorized over the whole batch, with no Python loop over bars or pixels: each pixel
column of each chart holds one contiguous candle interval (the wick's, or the body's), so the
candles are two broadcast comparisons of a row index against per-column bounds; volume bars the
same on their pane; overlay lines, a few pixels per column, are scattered by flat index. About
8,000 charts/s at 64 bars and 448x448 on one core, and ~2,500/s with the PNG encode.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BACKGROUND",
    "BEAR",
    "BULL",
    "GRID",
    "MAX_OVERLAYS",
    "OVERLAY_FIRST",
    "PALETTE",
    "VOLUME_BEAR",
    "VOLUME_BULL",
    "encode_png",
    "rasterize",
    "rasterize_batch",
    "to_rgb",
]

BACKGROUND = 0
GRID = 1
BULL = 2
BEAR = 3
VOLUME_BULL = 4
VOLUME_BEAR = 5
OVERLAY_FIRST = 6
"""Palette index of the first overlay's colour; overlay ``k`` (dict order) uses ``OVERLAY_FIRST + k``."""

PALETTE: np.ndarray = np.array(
    [
        (255, 255, 255),  # 0 background
        (226, 230, 236),  # 1 grid and pane separator
        (8, 153, 129),  # 2 bull candle (body and wick)
        (242, 54, 69),  # 3 bear candle
        (140, 206, 194),  # 4 volume of a bull bar
        (247, 163, 170),  # 5 volume of a bear bar
        (41, 98, 255),  # 6 overlay 0: blue
        (255, 152, 0),  # 7 overlay 1: orange
        (156, 39, 176),  # 8 overlay 2: purple
        (33, 33, 33),  # 9 overlay 3: near black
        (0, 172, 193),  # 10 overlay 4: cyan
        (205, 220, 57),  # 11 overlay 5: lime
        (121, 85, 72),  # 12 overlay 6: brown
        (233, 30, 99),  # 13 overlay 7: pink
    ],
    dtype=np.uint8,
)
PALETTE.setflags(write=False)
MAX_OVERLAYS = len(PALETTE) - OVERLAY_FIRST

_MARGIN = 0.05  # fraction of the price pane left empty above the highest and below the lowest
_VOLUME_FRACTION = 0.2  # share of the height given to the volume pane
_GRID_LINES = 4


def _line_width(size: tuple[int, int]) -> int:
    """Overlay line thickness in pixels: 2 from 448 px up, else 1."""
    return 2 if min(size) >= 448 else 1


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        h, w = (int(size[0]), int(size[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"size must be (height, width) in pixels, got {size!r}") from exc
    if h < 16 or w < 1 or h > 8192 or w > 8192:
        raise ValueError(
            f"size must be (height, width) with 16 <= height and 1 <= width <= 8192, got {size!r}"
        )
    return h, w


def _where(batch: int, chart: int, bar: int) -> str:
    return f"bar {bar}" if batch == 1 else f"bar {bar} of chart {chart}"


def _validate_ohlc(ohlc: np.ndarray, w: int) -> None:
    b, n = ohlc.shape[:2]
    if n == 0:
        raise ValueError("empty window: a chart needs at least one bar")
    if n > w:
        raise ValueError(
            f"a window of {n} bars does not fit in {w} pixel columns; widen size or shorten the window"
        )
    bad = ~np.isfinite(ohlc)
    if bad.any():
        c, i, f = (int(x[0]) for x in np.nonzero(bad))
        name = ("open", "high", "low", "close")[f]
        raise ValueError(
            f"{_where(b, c, i)}: {name} is {float(ohlc[c, i, f])!r}; prices must be finite"
        )
    inverted = ohlc[:, :, 1] < ohlc[:, :, 2]
    if inverted.any():
        c, i = (int(x[0]) for x in np.nonzero(inverted))
        raise ValueError(
            f"{_where(b, c, i)}: high {float(ohlc[c, i, 1])!r} < low {float(ohlc[c, i, 2])!r}"
        )


def _as_batch_array(name: str, values: object, shape: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (charts, bars), got {arr.shape}")
    return arr


_CHUNK = 4  # charts per mask pass: keeps the temporaries in cache


def _fill_columns(out: np.ndarray, top: np.ndarray, bot: np.ndarray, colour: np.ndarray) -> None:
    """Paint rows ``top..bot`` (inclusive) of every (chart, column) of ``out`` (B, R, W) in place.

    ``top``/``bot`` are (B, W) int rows, a column with ``top > bot`` is left as it is;
    ``colour`` is (B, W) uint8. Pixels are combined with ``max``, so a colour only paints over
    smaller palette indices (background and grid): the palette is ordered for that.
    """
    nb, rows, _ = out.shape
    top = np.clip(top, 0, rows)
    span = bot - top
    empty = span < 0
    # C order matters: fancy-indexed (B, W) inputs come out column-major and would make every
    # broadcast below stride across memory (5x slower)
    span16 = np.ascontiguousarray(np.where(empty, 0, span), dtype=np.uint16)
    top16 = np.ascontiguousarray(np.where(empty, rows + 1, top), dtype=np.int16)
    colour = np.ascontiguousarray(colour, dtype=np.uint8)
    r = np.arange(rows, dtype=np.int16)[None, :, None]
    k = min(_CHUNK, nb)
    diff = np.empty((k, rows, out.shape[2]), dtype=np.int16)  # reused: stays in cache
    mask = np.empty(diff.shape, dtype=bool)
    paint = np.empty(diff.shape, dtype=np.uint8)
    for a in range(0, nb, k):
        m = min(k, nb - a)
        z = slice(a, a + m)
        # one unsigned comparison tests top <= r <= bot: r - top wraps to a huge value if r < top
        np.subtract(r, top16[z, None, :], out=diff[:m])
        np.less_equal(diff[:m].view(np.uint16), span16[z, None, :], out=mask[:m])
        np.multiply(mask[:m].view(np.uint8), colour[z, None, :], out=paint[:m])
        np.maximum(out[z], paint[:m], out=out[z])


def _scatter_columns(out: np.ndarray, top: np.ndarray, bot: np.ndarray, colour: int) -> None:
    """Set rows ``top..bot`` of every (chart, column) of ``out`` (B, R, W) to ``colour``.

    For short intervals (overlay lines): the cost is the number of painted pixels, and the
    colour overwrites whatever is there.
    """
    nb, rows, w = out.shape
    length = np.maximum(bot - top + 1, 0).astype(np.int64).reshape(-1)
    total = int(length.sum())
    if total == 0:
        return
    first = (
        np.arange(nb, dtype=np.int64)[:, None] * (rows * w)
        + top.astype(np.int64) * w
        + np.arange(w)
    ).reshape(-1)
    starts = np.cumsum(length) - length
    # pixel j of the run starting at `first` (k-th painted pixel overall) is first + j * w
    flat = np.repeat(first - starts * w, length)
    flat += np.arange(0, total * w, w, dtype=np.int64)
    out.reshape(-1)[flat] = colour


def rasterize_batch(
    ohlc: np.ndarray,
    *,
    size: tuple[int, int] = (448, 448),
    volume: np.ndarray | None = None,
    overlays: Mapping[str, np.ndarray] | None = None,
    grid: bool = True,
) -> np.ndarray:
    """Draw B candlestick charts at once.

    Parameters
    ----------
    ohlc
        float64 array (B, N, 4): open, high, low, close of each chart's N bars, oldest first,
        in quote currency.
    size
        (height, width) in pixels; every chart has the same size and bar count.
    volume
        Optional (B, N) non-negative volumes (any unit): adds the bottom volume pane.
    overlays
        Optional name -> (B, N) float64 lines in price (NaN = gap), e.g. moving averages or
        Bollinger bands; at most :data:`MAX_OVERLAYS`, coloured in dict order.
    grid
        Draw faint horizontal grid lines in the price pane.

    Returns
    -------
    np.ndarray
        (B, H, W) uint8 palette indices into :data:`PALETTE`.

    Raises
    ------
    ValueError
        Empty window, more bars than pixel columns, a non-finite price (naming the bar and
        chart), high < low, negative or non-finite volume, infinite overlay values, too many
        overlays, or arrays of the wrong shape.
    """
    h, w = _check_size(size)
    ohlc = np.asarray(ohlc, dtype=np.float64)
    if ohlc.ndim != 3 or ohlc.shape[2] != 4:
        raise ValueError(f"ohlc must have shape (charts, bars, 4), got {ohlc.shape}")
    _validate_ohlc(ohlc, w)
    nb, n = ohlc.shape[:2]
    if nb == 0:
        return np.zeros((0, h, w), dtype=np.uint8)
    o, hi, lo, c = np.ascontiguousarray(np.moveaxis(ohlc, 2, 0))

    lines: list[np.ndarray] = []
    for k, (name, values) in enumerate((overlays or {}).items()):
        if k >= MAX_OVERLAYS:
            raise ValueError(
                f"at most {MAX_OVERLAYS} overlays can be drawn, got {len(overlays or {})}"
            )
        arr = _as_batch_array(f"overlay {name!r}", values, (nb, n))
        if np.isinf(arr).any():
            ci, bi = (int(x[0]) for x in np.nonzero(np.isinf(arr)))
            raise ValueError(
                f"overlay {name!r}, {_where(nb, ci, bi)}: value is infinite (use NaN for a gap)"
            )
        lines.append(arr)

    vol = None
    if volume is not None:
        vol = _as_batch_array("volume", volume, (nb, n))
        badv = ~np.isfinite(vol) | (vol < 0)
        if badv.any():
            ci, bi = (int(x[0]) for x in np.nonzero(badv))
            raise ValueError(
                f"volume, {_where(nb, ci, bi)}: {float(vol[ci, bi])!r} is not a finite non-negative number"
            )

    hv = max(3, round(h * _VOLUME_FRACTION)) if vol is not None else 0
    lay = _Layout.make(n, w)
    scale = _PriceScale.make(o, hi, lo, c, lines, h - hv)

    img = np.zeros((nb, h, w), dtype=np.uint8)
    price = img[:, : scale.rows, :]
    if grid:
        for k in range(1, _GRID_LINES + 1):
            price[:, round(k * (scale.rows - 1) / (_GRID_LINES + 1)), :] = GRID
    _draw_candles(price, lay, scale, o, hi, lo, c)
    lw = _line_width((h, w))
    for k, arr in enumerate(lines):
        _draw_line(img, lay, scale, arr, lw, OVERLAY_FIRST + k)
    if vol is not None:
        _draw_volume(img[:, scale.rows :, :], lay, vol, c >= o)
    return img


@dataclass(frozen=True)
class _Layout:
    """Pixel columns of a chart of ``n`` bars, ``w`` columns wide (the same for every chart).

    Bar ``i`` owns columns ``[i * w // n, (i + 1) * w // n)``: the bars fill the width, and when
    ``w / n`` is not a whole number their slots differ by one column.
    """

    n: int
    centre: np.ndarray  # (n,) float column of each bar's centre
    bar_of: np.ndarray  # (W,) bar drawn in each column
    is_body: np.ndarray  # (W,) bool: the column is inside a candle body
    is_wick: np.ndarray  # (W,) bool: the column is a wick column (a subset of is_body)

    @classmethod
    def make(cls, n: int, w: int) -> _Layout:
        edge = np.arange(n + 1, dtype=np.int64) * w // n
        slot = int(w // n)  # the narrowest slot
        body_w = max(1, slot - max(1, slot // 4))
        wick_w = 2 if slot >= 6 else 1
        if (body_w - wick_w) % 2:  # centre the wick: same parity as the body
            body_w = body_w + 1 if body_w + 1 <= slot else max(body_w - 1, 1)
        x = np.arange(w)
        bar_of = np.searchsorted(edge, x, side="right") - 1
        pos = x - edge[bar_of]
        body_off = ((edge[1:] - edge[:-1]) - body_w) // 2  # per bar: wider slots, wider gap
        wick_off = body_off + (body_w - wick_w) // 2
        is_body = (pos >= body_off[bar_of]) & (pos < body_off[bar_of] + body_w)
        is_wick = (pos >= wick_off[bar_of]) & (pos < wick_off[bar_of] + wick_w)
        centre = edge[:-1] + body_off + (body_w - 1) / 2.0
        return cls(n, centre, bar_of, is_body, is_wick)


@dataclass(frozen=True)
class _PriceScale:
    """Price -> row of the price pane, per chart: the window's range between the margins."""

    rows: int  # rows of the price pane
    mid_price: np.ndarray  # (B, 1)
    px_per_price: np.ndarray  # (B, 1); 0 for a flat window, drawn on the middle row

    @classmethod
    def make(
        cls,
        o: np.ndarray,
        hi: np.ndarray,
        lo: np.ndarray,
        c: np.ndarray,
        lines: list[np.ndarray],
        rows: int,
    ) -> _PriceScale:
        top = np.max(np.maximum(hi, np.maximum(o, c)), axis=1)
        bot = np.min(np.minimum(lo, np.minimum(o, c)), axis=1)
        for arr in lines:
            finite = np.isfinite(arr)
            top = np.maximum(top, np.max(np.where(finite, arr, -np.inf), axis=1))
            bot = np.minimum(bot, np.min(np.where(finite, arr, np.inf), axis=1))
        span = top - bot
        usable = (rows - 1) * (1.0 - 2.0 * _MARGIN)
        scale = np.where(span > 0, usable / np.where(span > 0, span, 1.0), 0.0)
        return cls(rows, ((top + bot) / 2.0)[:, None], scale[:, None])

    def row(self, price: np.ndarray) -> np.ndarray:
        """Row (float, unrounded) of each price (B, ...); NaN stays NaN."""
        mid = self.mid_price.reshape(self.mid_price.shape + (1,) * (price.ndim - 2))
        k = self.px_per_price.reshape(mid.shape)
        out: np.ndarray = (self.rows - 1) / 2.0 - (price - mid) * k
        return out

    def irow(self, price: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.rint(self.row(price)).astype(np.int32)
        return out


def _draw_candles(
    price: np.ndarray,
    lay: _Layout,
    scale: _PriceScale,
    o: np.ndarray,
    hi: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
) -> None:
    """Bodies and wicks: each column holds one interval (the wick's, or the body's)."""
    body_hi = np.maximum(o, c)
    body_lo = np.minimum(o, c)
    y_hi = scale.irow(np.maximum(hi, body_hi))
    y_lo = scale.irow(np.minimum(lo, body_lo))
    y_bt = scale.irow(body_hi)  # body top: the higher price, the smaller row
    y_bb = scale.irow(body_lo)
    bar_of = lay.bar_of
    top = np.where(lay.is_wick, y_hi[:, bar_of], y_bt[:, bar_of])
    bot = np.where(lay.is_wick, y_lo[:, bar_of], y_bb[:, bar_of])
    bot = np.where(lay.is_body, bot, -1)
    colour = np.where(c >= o, BULL, BEAR).astype(np.uint8)[:, bar_of]
    _fill_columns(price, top, bot, colour)


def _draw_line(
    img: np.ndarray, lay: _Layout, scale: _PriceScale, values: np.ndarray, lw: int, colour: int
) -> None:
    """One overlay: column x joins the line's rows at its left and right edges (linear between
    consecutive bar centres, nothing beyond the first and last centre, NaN = gap), ``lw`` thick."""
    n, w = lay.n, img.shape[2]
    if n < 2:
        return
    edges = np.arange(w + 1) - 0.5  # column x spans edges x .. x + 1
    t = np.interp(edges, lay.centre, np.arange(n), left=-1.0, right=float(n))  # in bars
    i0 = np.clip(np.floor(t).astype(np.int64), 0, n - 2)
    frac = t - i0
    ya = values[:, i0]
    yv = ya + (values[:, i0 + 1] - ya) * frac  # (B, W + 1); NaN propagates: gap
    rows = scale.row(yv)
    inside = (t >= -1e-9) & (t <= n - 1 + 1e-9)
    ok = (inside[:-1] & inside[1:])[None, :] & ~np.isnan(rows[:, :-1]) & ~np.isnan(rows[:, 1:])
    rows = np.where(np.isnan(rows), 0.0, rows)
    top = np.rint(np.minimum(rows[:, :-1], rows[:, 1:])).astype(np.int32) - (lw - 1) // 2
    bot = np.rint(np.maximum(rows[:, :-1], rows[:, 1:])).astype(np.int32) + lw // 2
    top = np.where(ok, np.clip(top, 0, scale.rows - 1), 1)
    bot = np.where(ok, np.clip(bot, 0, scale.rows - 1), 0)
    _scatter_columns(img, top, bot, colour)


def _draw_volume(pane: np.ndarray, lay: _Layout, vol: np.ndarray, bull: np.ndarray) -> None:
    """Volume bars under the bodies, scaled to the window's largest volume, below a separator."""
    hv = pane.shape[1]
    pane[:, 0, :] = GRID
    vmax = vol.max(axis=1, keepdims=True)
    frac = np.where(vmax > 0, vol / np.where(vmax > 0, vmax, 1.0), 0.0)
    height = np.rint(frac * (hv - 2)).astype(np.int32)
    height = np.where((vol > 0) & (height == 0), 1, height)
    top = (hv - height)[:, lay.bar_of]
    bot = np.broadcast_to(np.where(lay.is_body, hv - 1, -1), top.shape)
    colour = np.where(bull, VOLUME_BULL, VOLUME_BEAR).astype(np.uint8)[:, lay.bar_of]
    _fill_columns(pane, top, bot, colour)


def _as_window(name: str, values: object) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of one window's bars, got shape {arr.shape}")
    return arr


def rasterize(
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    *,
    size: tuple[int, int] = (448, 448),
    volume: np.ndarray | None = None,
    overlays: Mapping[str, np.ndarray] | None = None,
    grid: bool = True,
) -> np.ndarray:
    """Draw one window of bars as a candlestick chart.

    Parameters
    ----------
    open, high, low, close
        1-D float64 arrays of one window, oldest bar first, in quote currency.
    size
        (height, width) in pixels.
    volume
        Optional 1-D non-negative volumes: adds the bottom volume pane.
    overlays
        Optional name -> 1-D float64 line in price (NaN = gap), e.g. ``{"sma_20": ...}``.
    grid
        Draw faint horizontal grid lines.

    Returns
    -------
    np.ndarray
        (H, W) uint8 palette indices into :data:`PALETTE`.

    Raises
    ------
    ValueError
        As :func:`rasterize_batch` (errors name the bar), or arrays of unequal length.
    """
    cols = [
        _as_window(nm, v)
        for nm, v in zip(("open", "high", "low", "close"), (open, high, low, close))
    ]
    n = len(cols[0])
    for nm, arr in zip(("high", "low", "close"), cols[1:]):
        if len(arr) != n:
            raise ValueError(f"{nm} has {len(arr)} bars, open has {n}")
    ohlc = np.stack(cols, axis=1)[None]
    vol = None if volume is None else _as_window("volume", volume)[None]
    lines = (
        None
        if overlays is None
        else {k: _as_window(f"overlay {k!r}", v)[None] for k, v in overlays.items()}
    )
    if vol is not None and vol.shape[1] != n:
        raise ValueError(f"volume has {vol.shape[1]} bars, open has {n}")
    for k, v in (lines or {}).items():
        if v.shape[1] != n:
            raise ValueError(f"overlay {k!r} has {v.shape[1]} bars, open has {n}")
    img: np.ndarray = rasterize_batch(ohlc, size=size, volume=vol, overlays=lines, grid=grid)[0]
    return img


def to_rgb(img: np.ndarray) -> np.ndarray:
    """Palette indices (..., H, W) uint8 to RGB (..., H, W, 3) uint8."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise ValueError(f"palette image must be uint8, got {arr.dtype}")
    if arr.size and int(arr.max()) >= len(PALETTE):
        raise ValueError(
            f"palette index {int(arr.max())} out of range (palette has {len(PALETTE)} colours)"
        )
    rgb: np.ndarray = PALETTE[arr]
    return rgb


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_BITS = 4 if len(PALETTE) <= 16 else 8
_PNG_PLTE = PALETTE.tobytes()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(img: np.ndarray, *, compress_level: int = 1) -> bytes:
    """Encode one (H, W) uint8 palette image as an indexed-colour ("P" mode) PNG.

    The file is written directly (4-bit indices, PNG "Up" filter on every row, zlib run-length
    strategy at ``compress_level`` 0..9): about twice as fast as PIL's encoder and ~30% smaller
    on charts. Any PNG reader decodes it; ``np.asarray(PIL.Image.open(...))`` gives back the
    same indices and ``.convert("RGB")`` the :data:`PALETTE` colours.

    Raises
    ------
    ValueError
        Not a 2-D uint8 array, or an index outside the palette.
    """
    arr = np.asarray(img)
    if arr.ndim != 2 or arr.dtype != np.uint8 or 0 in arr.shape:
        raise ValueError(
            f"encode_png takes one non-empty (H, W) uint8 palette image, got {arr.dtype} {arr.shape}"
        )
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level must be 0..9, got {compress_level}")
    h, w = arr.shape
    if int(arr.max()) >= len(PALETTE):
        raise ValueError(
            f"palette index {int(arr.max())} out of range (palette has {len(PALETTE)} colours)"
        )
    if _PNG_BITS == 4:
        if w % 2:
            arr = np.concatenate([arr, np.zeros((h, 1), dtype=np.uint8)], axis=1)
        packed = (arr[:, 0::2] << 4) | arr[:, 1::2]
    else:
        packed = arr
    raw = np.empty((h, packed.shape[1] + 1), dtype=np.uint8)
    raw[:, 0] = 2  # filter "Up": each byte minus the byte above (mod 256); charts repeat rows
    raw[0, 1:] = packed[0]
    np.subtract(packed[1:], packed[:-1], out=raw[1:, 1:])
    comp = zlib.compressobj(compress_level, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = comp.compress(raw.tobytes()) + comp.flush()
    header = struct.pack(">IIBBBBB", w, h, _PNG_BITS, 3, 0, 0, 0)  # colour type 3: indexed
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"PLTE", _PNG_PLTE),
            _png_chunk(b"IDAT", data),
            _png_chunk(b"IEND", b""),
        )
    )
