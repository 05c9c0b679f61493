"""Compiled kernels of the eight indicators (numba, ``cache=True``): float64 arrays in, arrays out.

No argument checking happens here; :mod:`aio_ray.indicators` is the public, validated surface.
Each kernel transcribes TradingView Pine v6's definition from the Pine primitives below as
one streaming loop (per-bar ``*_step`` functions with scalar state) writing into output arrays
the caller allocates with numpy: at a million bars, fresh intermediate arrays cost more in
page faults than the arithmetic, and numpy's allocations get transparent huge pages.
``highest``/``lowest`` use the van Herk / Gil-Werman block algorithm instead of a step.

*NaN rule.* A primitive that averages or ranks (``sma``, ``ema``, ``rma``, ``stdev``,
``highest``, ``lowest``) skips NaN inputs: its window or recursion runs over the last ``n``
non-NaN values (Pine: "na values in the source series are ignored; the function calculates on
the length quantity of non-na values"), and on a bar whose own input is NaN it returns NaN.
Pointwise arithmetic propagates NaN (``x - x[1]`` is NaN when either side is). Division by
zero is ``na`` in Pine, and NaN here.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NAN = np.nan

# --------------------------------------------------------------------------- per-bar steps


@njit(cache=True)
def ewm_step(x: float, n: int, alpha: float, cnt: int, acc: float) -> tuple[int, float, float]:
    """One bar of an exponential average seeded with the SMA of its first ``n`` non-NaN inputs.

    State: ``cnt`` non-NaN inputs seen (stops at ``n``), ``acc`` their sum while seeding, then
    the average. ``alpha = 2 / (n + 1)`` is Pine's ``ta.ema``, ``1 / n`` is ``ta.rma``.
    Returns ``(cnt, acc, value)``; value is NaN while seeding and on a NaN input.
    """
    if np.isnan(x):
        return cnt, acc, NAN
    if cnt < n:
        acc += x
        cnt += 1
        if cnt == n:
            acc = acc / n
            return cnt, acc, acc
        return cnt, acc, NAN
    acc = alpha * x + (1.0 - alpha) * acc
    return cnt, acc, acc


@njit(cache=True, inline="always")
def sma_step(
    x: float, n: int, buf: np.ndarray, cnt: int, pos: int, s: float
) -> tuple[int, int, float, float]:
    """One bar of the mean of the last ``n`` non-NaN inputs (``buf``: a ring of ``n`` floats).

    The running sum ``s`` is recomputed from the ring every ``n`` inputs so rounding error
    cannot accumulate. Returns ``(cnt, pos, s, value)``.
    """
    if np.isnan(x):
        return cnt, pos, s, NAN
    if cnt < n:
        buf[cnt] = x
        s += x
        cnt += 1
        return cnt, pos, s, (s / n if cnt == n else NAN)
    s += x - buf[pos]
    buf[pos] = x
    pos += 1
    if pos == n:
        pos = 0
        s = 0.0
        for j in range(n):
            s += buf[j]
    return cnt, pos, s, s / n


@njit(cache=True)
def tr_value(h: float, lo: float, pc: float, handle_na: bool) -> float:
    """Pine ``ta.tr(handle_na)`` of one bar given the previous close ``pc``."""
    hl = h - lo
    if np.isnan(pc):
        return hl if handle_na else NAN
    a = abs(h - pc)
    b = abs(lo - pc)
    if np.isnan(hl):
        return NAN
    t = hl
    t = max(t, a)
    t = max(t, b)
    return t


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def sma_nb(x: np.ndarray, n: int, out: np.ndarray) -> None:
    """Pine ``ta.sma``: mean of the last ``n`` non-NaN values."""
    m = x.shape[0]
    buf = np.empty(n)
    cnt, pos, s = 0, 0, 0.0
    for i in range(m):
        cnt, pos, s, out[i] = sma_step(x[i], n, buf, cnt, pos, s)


@njit(cache=True)
def ewm_nb(x: np.ndarray, n: int, alpha: float, out: np.ndarray) -> None:
    """Pine ``ta.ema`` (``alpha = 2 / (n + 1)``) or ``ta.rma`` (``alpha = 1 / n``)."""
    m = x.shape[0]
    cnt, acc = 0, 0.0
    for i in range(m):
        cnt, acc, out[i] = ewm_step(x[i], n, alpha, cnt, acc)


@njit(cache=True)
def bb_nb(
    x: np.ndarray, n: int, mult: float, upper: np.ndarray, mid: np.ndarray, lower: np.ndarray
) -> None:
    """Pine ``ta.bb``: ``sma +/- mult * stdev`` with the population (biased) stdev.

    The variance is ``mean((x - mean)**2)`` kept as sums of deviations from an anchor ``k``,
    re-anchored at the exact window mean every ``n`` inputs: no ``E[x^2] - E[x]^2``
    cancellation on prices whose variance is tiny.
    """
    m = x.shape[0]
    buf = np.empty(n)
    cnt, pos = 0, 0
    s = k = q1 = q2 = 0.0
    for i in range(m):
        v = x[i]
        if np.isnan(v) or (cnt < n - 1):
            if not np.isnan(v):
                buf[cnt] = v
                s += v
                cnt += 1
            upper[i] = mid[i] = lower[i] = NAN
            continue
        if cnt < n:
            buf[cnt] = v
            s += v
            cnt += 1
            rebase = True
        else:
            old = buf[pos]
            s += v - old
            buf[pos] = v
            dn = v - k
            do = old - k
            q1 += dn - do
            q2 += dn * dn - do * do
            pos += 1
            rebase = pos == n
            if rebase:
                pos = 0
                s = 0.0
                for j in range(n):
                    s += buf[j]
        if rebase:
            k = s / n
            q1 = q2 = 0.0
            for j in range(n):
                d = buf[j] - k
                q1 += d
                q2 += d * d
        mu = s / n
        a = q1 / n
        var = q2 / n - a * a
        dev = mult * np.sqrt(var) if var > 0.0 else 0.0
        mid[i] = mu
        upper[i] = mu + dev
        lower[i] = mu - dev


@njit(cache=True)
def _window_max(x: np.ndarray, n: int, sign: float, out: np.ndarray) -> None:
    """``sign * max(sign * x[i-n+1 .. i])`` for NaN-free ``x``; NaN for ``i < n - 1``.

    Van Herk / Gil-Werman: cut the series into blocks of ``n``; the window ending at ``i``
    is the tail of the previous block (its suffix maximum) plus the head of the current block
    (a running prefix maximum). About three comparisons per bar, no branches on the data.
    """
    m = x.shape[0]
    suf = np.empty(n)
    for i in range(min(n - 1, m)):
        out[i] = NAN
    b0 = 0
    while b0 < m:
        b1 = min(b0 + n, m)
        if b0 >= n:
            acc = sign * x[b0 - 1]
            suf[n - 1] = acc
            for j in range(n - 2, -1, -1):
                v = sign * x[b0 - n + j]
                acc = max(acc, v)
                suf[j] = acc
        pre = -np.inf
        for i in range(b0, b1):
            v = sign * x[i]
            pre = max(pre, v)
            if i >= n - 1:
                j = i - b0 + 1
                if j == n:
                    out[i] = sign * pre
                else:
                    t = suf[j]
                    out[i] = sign * max(pre, t)
        b0 = b1


@njit(cache=True)
def rolling_max_nb(x: np.ndarray, n: int, sign: float, out: np.ndarray) -> None:
    """Pine ``ta.highest`` (``sign=+1``) or ``ta.lowest`` (``sign=-1``) over the last ``n``
    non-NaN values; NaN on NaN inputs and until ``n`` values were seen."""
    m = x.shape[0]
    has_nan = False
    for i in range(m):
        has_nan |= np.isnan(x[i])
    if not has_nan:
        _window_max(x, n, sign, out)
        return
    idx = np.flatnonzero(~np.isnan(x))
    vals = x[idx]
    tmp = np.empty(vals.shape[0])
    _window_max(vals, n, sign, tmp)
    out[:] = NAN
    out[idx] = tmp


@njit(cache=True)
def rsi_nb(x: np.ndarray, n: int, out: np.ndarray) -> None:
    """Pine ``ta.rsi``: ``rma`` of up- and down-moves; 100 when down is 0, 0 when up is 0."""
    m = x.shape[0]
    a = 1.0 / n
    cu, su, cd, sd = 0, 0.0, 0, 0.0
    prev = NAN
    for i in range(m):
        xi = x[i]
        ch = xi - prev
        prev = xi
        up = max(0.0, ch)
        dn = -ch if ch < 0.0 else 0.0
        if np.isnan(ch):
            up = dn = NAN
        cu, su, u = ewm_step(up, n, a, cu, su)
        cd, sd, d = ewm_step(dn, n, a, cd, sd)
        if np.isnan(u) or np.isnan(d):
            out[i] = NAN
        elif d == 0.0:
            out[i] = 100.0
        elif u == 0.0:
            out[i] = 0.0
        else:
            out[i] = 100.0 - 100.0 / (1.0 + u / d)


@njit(cache=True)
def macd_nb(
    x: np.ndarray,
    fast: int,
    slow: int,
    signal: int,
    line: np.ndarray,
    sig: np.ndarray,
    hist: np.ndarray,
) -> None:
    """Pine ``ta.macd``: ``ema(fast) - ema(slow)``, its ``ema(signal)``, and their difference."""
    m = x.shape[0]
    af, asl, ag = 2.0 / (fast + 1), 2.0 / (slow + 1), 2.0 / (signal + 1)
    cf, sf, cs, ss, cg, sg = 0, 0.0, 0, 0.0, 0, 0.0
    for i in range(m):
        cf, sf, f = ewm_step(x[i], fast, af, cf, sf)
        cs, ss, s = ewm_step(x[i], slow, asl, cs, ss)
        ln = f - s
        cg, sg, g = ewm_step(ln, signal, ag, cg, sg)
        line[i] = ln
        sig[i] = g
        hist[i] = ln - g


@njit(cache=True)
def stoch_nb(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    k: int,
    smooth_k: int,
    d: int,
    pk: np.ndarray,
    pd: np.ndarray,
) -> None:
    """``sma(ta.stoch(close, high, low, k), smooth_k)`` and its ``sma(., d)``.

    ``pk`` and ``pd`` first hold ``highest(high, k)`` and ``lowest(low, k)``; each bar's
    extremes are read before its %K and %D overwrite them.
    """
    m = close.shape[0]
    rolling_max_nb(high, k, 1.0, pk)
    rolling_max_nb(low, k, -1.0, pd)
    kb = np.empty(smooth_k)
    db = np.empty(d)
    kc, kp, ks = 0, 0, 0.0
    dc, dp, ds = 0, 0, 0.0
    for i in range(m):
        hh = pk[i]
        ll = pd[i]
        rng = hh - ll
        raw = 100.0 * (close[i] - ll) / rng if rng != 0.0 else NAN
        kc, kp, ks, kv = sma_step(raw, smooth_k, kb, kc, kp, ks)
        dc, dp, ds, dv = sma_step(kv, d, db, dc, dp, ds)
        pk[i] = kv
        pd[i] = dv


@njit(cache=True)
def true_range_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, handle_na: bool, out: np.ndarray
) -> None:
    """Pine ``ta.tr(handle_na)``: ``max(h - l, |h - c[1]|, |l - c[1]|)``.

    Where the previous close is NaN (always on the first bar) the result is ``h - l`` when
    ``handle_na`` and NaN otherwise.
    """
    m = close.shape[0]
    pc = NAN
    for i in range(m):
        out[i] = tr_value(high[i], low[i], pc, handle_na)
        pc = close[i]


@njit(cache=True)
def atr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int, out: np.ndarray) -> None:
    """Pine ``ta.atr``: ``rma(ta.tr(true), n)``."""
    m = close.shape[0]
    a = 1.0 / n
    cnt, acc = 0, 0.0
    pc = NAN
    for i in range(m):
        cnt, acc, out[i] = ewm_step(tr_value(high[i], low[i], pc, True), n, a, cnt, acc)
        pc = close[i]


@njit(cache=True)
def dmi_nb(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    di_len: int,
    adx_len: int,
    plus: np.ndarray,
    minus: np.ndarray,
    adx: np.ndarray,
) -> None:
    """Pine ``ta.dmi``: ``(+DI, -DI, ADX)``.

    ``up = change(high)``, ``down = -change(low)``; ``+DM = up > down and up > 0 ? up : 0``
    (NaN where ``up`` is NaN), likewise ``-DM``; ``+DI = fixnan(100 * rma(+DM) / rma(ta.tr))``
    with ``ta.tr`` = ``ta.tr(false)``; ``ADX = 100 * rma(|+DI - -DI| / (sum == 0 ? 1 : sum))``.
    """
    m = close.shape[0]
    a = 1.0 / di_len
    b = 1.0 / adx_len
    ct, st, cp, sp, cm, sm, cx, sx = 0, 0.0, 0, 0.0, 0, 0.0, 0, 0.0
    ph = pl = pc = NAN
    p_last = m_last = NAN
    for i in range(m):
        h = high[i]
        lo = low[i]
        up = h - ph
        down = pl - lo
        pdm = (up if (up > down and up > 0.0) else 0.0) if not np.isnan(up) else NAN
        mdm = (down if (down > up and down > 0.0) else 0.0) if not np.isnan(down) else NAN
        ct, st, tr = ewm_step(tr_value(h, lo, pc, False), di_len, a, ct, st)
        cp, sp, rp = ewm_step(pdm, di_len, a, cp, sp)
        cm, sm, rm = ewm_step(mdm, di_len, a, cm, sm)
        ph, pl, pc = h, lo, close[i]
        # Pine's x / 0 is na (flat bars: a true range of 0), never an exception.
        p = 100.0 * rp / tr if tr != 0.0 else NAN
        q = 100.0 * rm / tr if tr != 0.0 else NAN
        # fixnan: a NaN (missing input, 0 / 0) repeats the last valid value.
        if np.isfinite(p):
            p_last = p
        if np.isfinite(q):
            m_last = q
        tot = p_last + m_last
        dx = abs(p_last - m_last) / (1.0 if tot == 0.0 else tot)
        cx, sx, ax = ewm_step(dx, adx_len, b, cx, sx)
        plus[i] = p_last
        minus[i] = m_last
        adx[i] = 100.0 * ax
