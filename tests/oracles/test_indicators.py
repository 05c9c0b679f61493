"""The eight indicators: TradingView semantics, checked against TA-Lib and a Pine transcription.

TA-Lib is the oracle where its definition equals Pine's (SMA, EMA, RSI, BBANDS matype 0,
STOCH with SMA smoothing; MACD and ATR once their different seeds have decayed). Where TA-Lib
seeds differently (MACD, ATR, ADX/DI) the size of the gap is pinned, and ADX/DI are matched
to a plain-Python transcription of Pine's ``ta.dmi`` instead.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from aio_ray import indicators as ind
from tests.support.real_bars import real_mid_bars

TOL = 1e-9


def random_walk(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EUR/USD-like 1-minute mid bars (high, low, close) with consistent high >= close >= low."""
    rng = np.random.default_rng(seed)
    close = 1.10 + np.cumsum(rng.normal(0.0, 2e-4, n))
    prev = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(close, prev) + np.abs(rng.normal(0.0, 1e-4, n))
    low = np.minimum(close, prev) - np.abs(rng.normal(0.0, 1e-4, n))
    return high, low, close


@pytest.fixture(scope="module")
def real_bars(dukascopy_dir: Path) -> pl.DataFrame:
    return real_mid_bars(dukascopy_dir)


@pytest.fixture(scope="module", params=["random_walk", "real_1m"])
def hlc(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two data sets: a seeded random walk and real EUR/USD 1-minute mid bars."""
    if request.param == "random_walk":
        return random_walk(3000, 11)
    bars = request.getfixturevalue("real_bars")
    assert bars.height == 2880
    return (bars["mid_high"].to_numpy(), bars["mid_low"].to_numpy(), bars["mid_close"].to_numpy())


def first_valid(a: np.ndarray) -> int:
    idx = np.flatnonzero(~np.isnan(a))
    return int(idx[0]) if idx.size else -1


def assert_close_where_defined(
    ours: np.ndarray, ref: np.ndarray, start: int, tol: float = TOL
) -> None:
    """Both defined from ``start`` on, NaN before in ours, and equal within ``tol`` there."""
    assert first_valid(ours) <= start
    assert not np.isnan(ours[start:]).any()
    assert not np.isnan(ref[start:]).any()
    np.testing.assert_allclose(ours[start:], ref[start:], rtol=0, atol=tol)


# --------------------------------------------------------------------------- TA-Lib parity


@pytest.mark.parametrize("length", [2, 9, 20, 50])
def test_sma_and_ema_equal_talib_from_the_first_bar(hlc, length):
    _, _, c = hlc
    s, e = ind.sma(c, length), ind.ema(c, length)
    assert first_valid(s) == first_valid(e) == length - 1
    assert_close_where_defined(s, talib.SMA(c, length), length - 1)
    assert_close_where_defined(e, talib.EMA(c, length), length - 1)


@pytest.mark.parametrize("length", [2, 7, 14, 30])
def test_rsi_equals_talib_from_bar_length(hlc, length):
    _, _, c = hlc
    r = ind.rsi(c, length)
    assert first_valid(r) == length
    assert_close_where_defined(r, talib.RSI(c, length), length)


@pytest.mark.parametrize(("length", "mult"), [(20, 2.0), (10, 1.5), (50, 3.0)])
def test_bbands_equal_talib_with_population_stdev(hlc, length, mult):
    _, _, c = hlc
    ours = ind.bbands(c, length, mult)
    ref = talib.BBANDS(c, length, mult, mult, 0)
    for a, b in zip(ours, ref, strict=True):
        assert first_valid(a) == length - 1
        assert_close_where_defined(a, b, length - 1)
    # Population (biased) deviation: the band half-width over sqrt(mean sq dev) is exactly mult.
    win = c[100 - length + 1 : 101]
    assert ours[0][100] - ours[1][100] == pytest.approx(mult * np.std(win, ddof=0), abs=1e-12)


@pytest.mark.parametrize(("k", "smooth_k", "d"), [(14, 3, 3), (5, 1, 3), (21, 5, 4)])
def test_stoch_equals_talib_where_both_are_defined(hlc, k, smooth_k, d):
    h, lo, c = hlc
    pk, pd_ = ind.stoch(h, lo, c, k, smooth_k, d)
    tk, td = talib.STOCH(h, lo, c, k, smooth_k, 0, d, 0)
    # Pine's %K appears as soon as it is defined; TA-Lib holds it back to line up with %D.
    assert first_valid(pk) == k + smooth_k - 2
    assert first_valid(pd_) == first_valid(tk) == first_valid(td) == k + smooth_k + d - 3
    start = k + smooth_k + d - 3
    assert_close_where_defined(pk, tk, start)
    assert_close_where_defined(pd_, td, start)


def test_macd_is_ema_difference_and_differs_from_talib_macd_only_in_the_seed():
    _, _, c = random_walk(3000, 11)
    line, sig, hist = ind.macd(c, 12, 26, 9)
    assert (first_valid(line), first_valid(sig), first_valid(hist)) == (25, 33, 33)
    # Pine: ema(12) - ema(26), each seeded on its own; TA-Lib's EMA is seeded the same way.
    ref_line = talib.EMA(c, 12) - talib.EMA(c, 26)
    ref_sig = np.full_like(c, np.nan)
    ref_sig[25:] = talib.EMA(ref_line[25:], 9)
    assert_close_where_defined(line, ref_line, 25)
    assert_close_where_defined(sig, ref_sig, 33)
    assert_close_where_defined(hist, ref_line - ref_sig, 33)
    # TA-Lib's MACD (and MACDEXT) seed the fast EMA at bar 25 instead of bar 11: measured gap
    # on this series 3.7e-5 (line), 7.9e-5 (signal) over the first 100 bars, gone by bar 600.
    t_line, t_sig, t_hist = talib.MACD(c, 12, 26, 9)
    gap_line = np.max(np.abs(line - t_line)[33:133])
    gap_sig = np.max(np.abs(sig - t_sig)[33:133])
    assert 1.2e-5 < gap_line < 1.1e-4
    assert 2.6e-5 < gap_sig < 2.4e-4
    for a, b in ((line, t_line), (sig, t_sig), (hist, t_hist)):
        np.testing.assert_allclose(a[600:], b[600:], rtol=0, atol=TOL)
    e_line, _, _ = talib.MACDEXT(c, 12, 1, 26, 1, 9, 1)
    assert np.max(np.abs(line - e_line)[33:133]) > 1e-6


def test_atr_seeds_with_first_bar_range_and_converges_to_talib():
    h, lo, c = random_walk(3000, 11)
    a = ind.atr(h, lo, c, 14)
    assert first_valid(a) == 13
    # Pine: ta.tr(true) is high - low on bar 0, so ATR[13] is the mean of 14 true ranges.
    tr0 = np.concatenate([[h[0] - lo[0]], talib.TRANGE(h, lo, c)[1:]])
    assert a[13] == pytest.approx(tr0[:14].mean(), abs=1e-15)
    np.testing.assert_allclose(
        a, pine_atr_reference(h, lo, c, 14), rtol=0, atol=TOL, equal_nan=True
    )
    t = talib.ATR(h, lo, c, 14)
    assert first_valid(t) == 14
    # TA-Lib seeds one bar later with bars 1..14: measured gap 6.5e-6 at bar 14 (ATR ~ 3e-4),
    # decaying as (13/14)**t; below 1e-11 by bar 200.
    assert 2e-6 < abs(a[14] - t[14]) < 2e-5
    np.testing.assert_allclose(a[200:], t[200:], rtol=0, atol=1e-11)


@pytest.mark.parametrize(("di_len", "adx_len"), [(14, 14), (7, 10), (20, 5)])
def test_dmi_matches_plain_python_transcription_of_pine(hlc, di_len, adx_len):
    h, lo, c = hlc
    plus, minus, adx = ind.dmi(h, lo, c, di_len, adx_len)
    rp, rm, ra = pine_dmi_reference(h, lo, c, di_len, adx_len)
    assert first_valid(plus) == first_valid(minus) == di_len
    assert first_valid(adx) == di_len + adx_len - 1
    for ours, ref in ((plus, rp), (minus, rm), (adx, ra)):
        np.testing.assert_allclose(ours, ref, rtol=0, atol=TOL, equal_nan=True)


def test_dmi_differs_from_talib_in_its_seed_and_converges():
    h, lo, c = random_walk(3000, 11)
    plus, minus, adx = ind.dmi(h, lo, c, 14, 14)
    tp, tm, ta = talib.PLUS_DI(h, lo, c, 14), talib.MINUS_DI(h, lo, c, 14), talib.ADX(h, lo, c, 14)
    assert first_valid(tp) == 14 and first_valid(ta) == 27  # same first bars as Pine
    # TA-Lib seeds Wilder's sums with 13 movements (Pine: the SMA of 14). Measured on this
    # series from bar 200 on: ADX 1.6e-5, +DI 2.5e-7 (DI points); below 1e-9 from bar 500.
    gap_adx = np.max(np.abs(adx - ta)[200:])
    gap_pdi = np.max(np.abs(plus - tp)[200:])
    assert 5e-6 < gap_adx < 5e-5
    assert 8e-8 < gap_pdi < 8e-7
    assert np.max(np.abs(adx - ta)[27:60]) > 1e-2  # early on, the seeds matter a lot
    for a, b in ((plus, tp), (minus, tm), (adx, ta)):
        np.testing.assert_allclose(a[500:], b[500:], rtol=0, atol=TOL)


# --------------------------------------------------------------------------- references


def pine_rma_reference(x: list[float | None], length: int) -> list[float | None]:
    """Pine ``ta.rma``: na ignored, seeded with the SMA of the first ``length`` values."""
    out: list[float | None] = [None] * len(x)
    seed: list[float] = []
    prev: float | None = None
    for i, v in enumerate(x):
        if v is None:
            continue
        if prev is None:
            seed.append(v)
            if len(seed) == length:
                prev = math.fsum(seed) / length
                out[i] = prev
        else:
            prev = (1 / length) * v + (1 - 1 / length) * prev
            out[i] = prev
    return out


def _nan(x: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in x])


def pine_atr_reference(h: np.ndarray, lo: np.ndarray, c: np.ndarray, length: int) -> np.ndarray:
    """``ta.atr`` = ``ta.rma(ta.tr(true), length)``, written out bar by bar."""
    tr: list[float | None] = []
    for i in range(len(c)):
        if i == 0:
            tr.append(float(h[0] - lo[0]))
        else:
            tr.append(max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])))
    return _nan(pine_rma_reference(tr, length))


def pine_dmi_reference(
    h: np.ndarray, lo: np.ndarray, c: np.ndarray, di_len: int, adx_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TradingView's DMI written out line by line (clean input; na is None)::

    up = ta.change(high); down = -ta.change(low)
    plusDM = na(up) ? na : (up > down and up > 0 ? up : 0)
    minusDM = na(down) ? na : (down > up and down > 0 ? down : 0)
    trur = ta.rma(ta.tr, len)
    plus = fixnan(100 * ta.rma(plusDM, len) / trur)
    minus = fixnan(100 * ta.rma(minusDM, len) / trur)
    sum = plus + minus
    adx = 100 * ta.rma(math.abs(plus - minus) / (sum == 0 ? 1 : sum), lensig)
    """
    n = len(c)
    plus_dm: list[float | None] = [None]
    minus_dm: list[float | None] = [None]
    tr: list[float | None] = [None]  # ta.tr is ta.tr(false): na on the first bar
    for i in range(1, n):
        up = float(h[i] - h[i - 1])
        down = float(-(lo[i] - lo[i - 1]))
        plus_dm.append(up if (up > down and up > 0) else 0.0)
        minus_dm.append(down if (down > up and down > 0) else 0.0)
        tr.append(max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])))
    trur = pine_rma_reference(tr, di_len)
    sp = pine_rma_reference(plus_dm, di_len)
    sm = pine_rma_reference(minus_dm, di_len)
    plus: list[float | None] = []
    minus: list[float | None] = []
    last_p: float | None = None
    last_m: float | None = None
    for i in range(n):
        t, p, m = trur[i], sp[i], sm[i]
        if t is not None and p is not None and t != 0:
            last_p = 100 * p / t
        if t is not None and m is not None and t != 0:
            last_m = 100 * m / t
        plus.append(last_p)
        minus.append(last_m)
    dx: list[float | None] = []
    for p, m in zip(plus, minus, strict=True):
        if p is None or m is None:
            dx.append(None)
        else:
            s = p + m
            dx.append(abs(p - m) / (1 if s == 0 else s))
    adx = [None if v is None else 100 * v for v in pine_rma_reference(dx, adx_len)]
    return _nan(plus), _nan(minus), _nan(adx)


# --------------------------------------------------------------------------- warm-up, NaN, edges


def all_outputs(
    h: np.ndarray, lo: np.ndarray, c: np.ndarray, p: dict[str, int]
) -> dict[str, np.ndarray]:
    line, sig, hist = ind.macd(c, p["fast"], p["slow"], p["signal"])
    up, mid, dn = ind.bbands(c, p["length"], 2.0)
    pk, pd_ = ind.stoch(h, lo, c, p["k"], p["smooth_k"], p["d"])
    plus, minus, adx = ind.dmi(h, lo, c, p["di"], p["adx"])
    return {
        "sma": ind.sma(c, p["length"]),
        "ema": ind.ema(c, p["length"]),
        "rma": ind.rma(c, p["length"]),
        "rsi": ind.rsi(c, p["length"]),
        "macd": line,
        "macd_signal": sig,
        "macd_hist": hist,
        "bb_upper": up,
        "bb_middle": mid,
        "bb_lower": dn,
        "stoch_k": pk,
        "stoch_d": pd_,
        "atr": ind.atr(h, lo, c, p["length"]),
        "plus_di": plus,
        "minus_di": minus,
        "adx": adx,
    }


def expected_warmup(p: dict[str, int]) -> dict[str, int]:
    m = ind.warmup("macd", fast=p["fast"], slow=p["slow"], signal=p["signal"])
    s = ind.warmup("stoch", k=p["k"], smooth_k=p["smooth_k"], d=p["d"])
    dm = ind.warmup("dmi", di_length=p["di"], adx_smoothing=p["adx"])
    assert isinstance(m, dict) and isinstance(s, dict) and isinstance(dm, dict)
    n = p["length"]
    return {
        "sma": n - 1,
        "ema": n - 1,
        "rma": n - 1,
        "rsi": n,
        "macd": m["macd"],
        "macd_signal": m["signal"],
        "macd_hist": m["hist"],
        "bb_upper": n - 1,
        "bb_middle": n - 1,
        "bb_lower": n - 1,
        "stoch_k": s["k"],
        "stoch_d": s["d"],
        "atr": n - 1,
        "plus_di": dm["plus_di"],
        "minus_di": dm["minus_di"],
        "adx": dm["adx"],
    }


params_st = st.fixed_dictionaries(
    {
        "length": st.integers(1, 40),
        "fast": st.integers(1, 30),
        "slow": st.integers(1, 40),
        "signal": st.integers(1, 15),
        "k": st.integers(1, 25),
        "smooth_k": st.integers(1, 6),
        "d": st.integers(1, 6),
        "di": st.integers(1, 25),
        "adx": st.integers(1, 25),
    }
)


def test_warmup_formulas_give_the_customary_first_bars():
    assert ind.warmup("sma", length=20) == 19
    assert ind.warmup("rsi") == 14
    assert ind.warmup("macd") == {"macd": 25, "signal": 33, "hist": 33}
    assert ind.warmup("stoch") == {"k": 15, "d": 17}
    assert ind.warmup("dmi") == {"plus_di": 14, "minus_di": 14, "adx": 27}
    with pytest.raises(ind.IndicatorError, match="unknown indicator 'vwap'"):
        ind.warmup("vwap")


@settings(max_examples=60, deadline=None)
@given(p=params_st, seed=st.integers(0, 2**32 - 1))
def test_nan_warmup_ends_exactly_where_pine_first_plots(p, seed):
    h, lo, c = random_walk(160, seed)
    out = all_outputs(h, lo, c, p)
    want = expected_warmup(p)
    for name, arr in out.items():
        assert first_valid(arr) == want[name], name
        assert np.isfinite(arr[want[name] :]).all(), name


@settings(max_examples=60, deadline=None)
@given(
    p=params_st,
    seed=st.integers(0, 2**32 - 1),
    cut=st.integers(0, 149),
    tail_seed=st.integers(0, 2**32 - 1),
)
def test_no_look_ahead_values_up_to_t_ignore_later_bars(p, seed, cut, tail_seed):
    h, lo, c = random_walk(150, seed)
    h2, lo2, c2 = h.copy(), lo.copy(), c.copy()
    th, tl, tc = random_walk(150, tail_seed)
    shift = c[cut] - tc[cut]
    h2[cut + 1 :], lo2[cut + 1 :], c2[cut + 1 :] = (
        th[cut + 1 :] + shift,
        tl[cut + 1 :] + shift,
        tc[cut + 1 :] + shift,
    )
    before, after = all_outputs(h, lo, c, p), all_outputs(h2, lo2, c2, p)
    for name in before:
        np.testing.assert_array_equal(before[name][: cut + 1], after[name][: cut + 1], err_msg=name)
    truncated = all_outputs(h[: cut + 1], lo[: cut + 1], c[: cut + 1], p)
    for name in before:
        np.testing.assert_array_equal(before[name][: cut + 1], truncated[name], err_msg=name)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
    holes=st.lists(st.integers(0, 199), min_size=1, max_size=20),
)
def test_nan_inputs_are_skipped_by_the_averages(n, seed, holes):
    _, _, c = random_walk(200, seed)
    x = c.copy()
    x[holes] = np.nan
    keep = ~np.isnan(x)
    for fn in (ind.sma, ind.ema, ind.rma):
        full = fn(x, n)
        assert np.isnan(full[~keep]).all()
        np.testing.assert_array_equal(full[keep], fn(x[keep], n))
    up, mid, lo_ = ind.bbands(x, n, 2.0)
    cu, cm, cl = ind.bbands(x[keep], n, 2.0)
    np.testing.assert_array_equal(mid[keep], cm)
    np.testing.assert_allclose(up[keep], cu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lo_[keep], cl, rtol=0, atol=1e-12)


def test_nan_bar_in_hlc_is_skipped_by_stoch_and_breaks_one_change_in_rsi():
    h, lo, c = random_walk(300, 5)
    h2, lo2, c2 = h.copy(), lo.copy(), c.copy()
    h2[100] = lo2[100] = c2[100] = np.nan
    keep = np.ones(300, bool)
    keep[100] = False
    pk, pd_ = ind.stoch(h2, lo2, c2)
    ck, cd = ind.stoch(h2[keep], lo2[keep], c2[keep])
    assert np.isnan(pk[100]) and np.isnan(pd_[100])
    np.testing.assert_allclose(pk[keep], ck, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pd_[keep], cd, rtol=0, atol=1e-12)
    r = ind.rsi(c2)
    # close[100] is missing, so the changes at bars 100 and 101 are na and rma skips both.
    assert np.isnan(r[100]) and np.isnan(r[101]) and np.isfinite(r[102])
    changes = np.diff(c2)  # changes[i - 1] is the change into bar i
    assert np.isnan(changes[99]) and np.isnan(changes[100])
    a = ind.atr(h2, lo2, c2)
    assert np.isnan(a[100]) and np.isfinite(a[101])  # bar 101 has no previous close: tr = h - l
    plus, _, adx = ind.dmi(h2, lo2, c2)
    # fixnan: +DI/-DI repeat their last value across the hole, so ADX keeps going.
    assert plus[100] == plus[99] and plus[101] == plus[99] and np.isfinite(adx[100:]).all()


def test_flat_prices_follow_tradingview_not_talib():
    c = np.full(60, 1.1)
    assert (ind.rsi(c)[14:] == 100.0).all()  # down == 0 -> 100; TA-Lib says 0
    assert (talib.RSI(c, 14)[14:] == 0.0).all()
    pk, _ = ind.stoch(c, c, c)
    assert np.isnan(pk).all()  # zero range: Pine divides by zero (na); TA-Lib says 0
    up, mid, lo = ind.bbands(c)
    assert (up[19:] == mid[19:]).all() and (lo[19:] == mid[19:]).all()
    assert (ind.atr(c, c, c)[13:] == 0.0).all()


def test_long_series_stay_exact_after_a_million_bars():
    h, lo, c = random_walk(1_000_000, 3)
    np.testing.assert_allclose(ind.sma(c, 20)[-1000:], talib.SMA(c, 20)[-1000:], rtol=0, atol=TOL)
    up, _, _ = ind.bbands(c, 20, 2.0)
    np.testing.assert_allclose(
        up[-1000:], talib.BBANDS(c, 20, 2.0, 2.0, 0)[0][-1000:], rtol=0, atol=TOL
    )
    tail = slice(-60, None)
    win = c[-20:]
    assert up[-1] == pytest.approx(win.mean() + 2 * np.std(win), abs=1e-13)
    pk, _ = ind.stoch(h, lo, c)
    np.testing.assert_allclose(
        pk[tail], talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)[0][tail], rtol=0, atol=TOL
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ind.sma([1.0, 2.0], 0), r"sma: length must be >= 1 \(bars\), got 0"),
        (lambda: ind.ema([1.0, 2.0], 2.5), r"ema: length must be an int >= 1 \(bars\), got 2.5"),
        (lambda: ind.rsi([1.0, 2.0], True), r"rsi: length must be an int"),
        (lambda: ind.macd([1.0], slow=-3), r"macd: slow must be >= 1"),
        (lambda: ind.bbands([1.0], 20, float("nan")), r"bbands: mult must be a finite number"),
        (
            lambda: ind.atr([1.0, 2.0], [1.0], [1.0, 2.0]),
            r"atr: high, low, close must have the same length, got 2, 1, 2",
        ),
        (lambda: ind.sma(np.ones((3, 2)), 2), r"sma: x must be 1-D, got shape \(3, 2\)"),
        (lambda: ind.rsi(["a", "b"]), r"rsi: close cannot be read as float64"),
    ],
)
def test_bad_arguments_raise_indicator_error_naming_them(call, message):
    with pytest.raises(ind.IndicatorError, match=message):
        call()


def test_empty_and_short_inputs_give_all_nan_of_the_same_length():
    assert ind.sma([], 5).shape == (0,)
    assert np.isnan(ind.rsi([1.0, 2.0, 3.0], 14)).all()
    k, d = ind.stoch([1.0] * 3, [0.5] * 3, [0.7] * 3)
    assert k.shape == d.shape == (3,) and np.isnan(k).all()
    plus, _, adx = ind.dmi([1.0], [0.5], [0.7])
    assert np.isnan(plus).all() and np.isnan(adx).all()


# --------------------------------------------------------------------------- compute_all


def test_compute_all_on_real_bars_matches_the_single_functions(real_bars):
    out = ind.compute_all(real_bars)
    assert tuple(out.columns) == ind.COMPUTE_ALL_COLUMNS
    assert out.height == real_bars.height
    assert out["ts"].dtype == pl.Datetime("ms", "UTC")
    assert out["ts"].equals(real_bars["ts"])
    h, lo, c = (real_bars[f"mid_{p}"].to_numpy() for p in ("high", "low", "close"))
    np.testing.assert_array_equal(out["rsi"].to_numpy(), ind.rsi(c, 14))
    np.testing.assert_array_equal(out["macd_signal"].to_numpy(), ind.macd(c)[1])
    np.testing.assert_array_equal(out["bb_lower"].to_numpy(), ind.bbands(c, 20, 2.0)[2])
    np.testing.assert_array_equal(out["stoch_d"].to_numpy(), ind.stoch(h, lo, c, 14, 3, 3)[1])
    np.testing.assert_array_equal(out["adx"].to_numpy(), ind.dmi(h, lo, c, 14, 14)[2])
    np.testing.assert_allclose(
        out["atr"].to_numpy()[200:], talib.ATR(h, lo, c, 14)[200:], rtol=0, atol=TOL
    )
    np.testing.assert_allclose(out["ema"].to_numpy()[19:], talib.EMA(c, 20)[19:], rtol=0, atol=TOL)
    first = {name: first_valid(out[name].to_numpy()) for name in ind.COMPUTE_ALL_COLUMNS[1:]}
    assert first == {
        "rsi": 14, "macd": 25, "macd_signal": 33, "macd_hist": 33, "bb_upper": 19, "bb_middle": 19,
        "bb_lower": 19, "sma": 19, "ema": 19, "stoch_k": 15, "stoch_d": 17, "atr": 13, "adx": 27,
        "plus_di": 14, "minus_di": 14,
    }  # fmt: skip


def test_compute_all_names_missing_columns():
    bars = pl.DataFrame({"ts": [1, 2], "mid_close": [1.0, 1.1]})
    with pytest.raises(ind.IndicatorError, match=r"lack column\(s\) \['mid_high', 'mid_low'\]"):
        ind.compute_all(bars)
