"""Compiled kernels of the chart-pattern detectors (numba, ``cache=True``): arrays in, arrays out.

No argument checking happens here; :mod:`aio_ray.patterns.detectors` is the public, validated
surface and documents each rule in trading terms. Every kernel is one causal pass over the
bars: what it writes for bar ``t`` depends on bars ``<= t`` only.

Swing points. A *pivot high* at bar ``i`` is a high above the ``k`` highs before it and not
below the ``k`` highs after it (a pivot low mirrors it); it is only known at bar ``i + k``,
so the kernels admit it into their swing list at ``t = i + k``. The swing list alternates
highs and lows: a newly confirmed pivot of the same kind as the last swing replaces it when it
is more extreme and is dropped otherwise, which keeps one swing per leg.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Row of each pattern in the kernel's output (the order of vocabulary.CHART_PATTERNS).
DOUBLE_TOP, DOUBLE_BOTTOM, HEAD_SHOULDERS, INV_HEAD_SHOULDERS = 0, 1, 2, 3
ASC_TRIANGLE, DESC_TRIANGLE, SYM_TRIANGLE, BULL_FLAG, BEAR_FLAG = 4, 5, 6, 7, 8
N_CHART = 9

# Indices into the float parameter vector handed to :func:`chart_patterns_nb`.
P_DT_TOL, P_DT_DEPTH, P_DT_SEP = 0, 1, 2
P_HS_HEAD, P_HS_TOL, P_HS_DEPTH, P_HS_SEP = 3, 4, 5, 6
P_TRI_MIN_HEIGHT, P_TRI_FIT, P_TRI_FLAT, P_TRI_SLOPE, P_TRI_END_WIDTH, P_TRI_BAND = (
    7,
    8,
    9,
    10,
    11,
    12,
)
P_FLAG_MIN, P_FLAG_MAX, P_FLAG_POLE_BARS, P_FLAG_POLE_ATR, P_FLAG_RETRACE = 13, 14, 15, 16, 17
N_PARAMS = 18

NB = 6
"""Swing highs (and lows) searched for tops, shoulders and triangle lines: the last six in the
window; the second top or right shoulder is one of the last three."""


@njit(cache=True)
def pivot_flags(
    high: np.ndarray, low: np.ndarray, k: int, is_ph: np.ndarray, is_pl: np.ndarray
) -> None:
    """Mark pivot highs/lows: strictly beyond the ``k`` bars before, not beaten by the ``k`` after.

    Bars closer than ``k`` to either end are never pivots. NaN prices never are.
    """
    n = high.shape[0]
    for i in range(n):
        is_ph[i] = False
        is_pl[i] = False
    for i in range(k, n - k):
        hi = high[i]
        ok = not np.isnan(hi)
        for j in range(i - k, i):
            if not hi > high[j]:
                ok = False
                break
        if ok:
            for j in range(i + 1, i + k + 1):
                if not hi >= high[j]:
                    ok = False
                    break
        is_ph[i] = ok
        lo = low[i]
        ok = not np.isnan(lo)
        for j in range(i - k, i):
            if not lo < low[j]:
                ok = False
                break
        if ok:
            for j in range(i + 1, i + k + 1):
                if not lo <= low[j]:
                    ok = False
                    break
        is_pl[i] = ok


@njit(cache=True, inline="always")
def _rmax(x: np.ndarray, a: int, b: int) -> float:
    m = -np.inf
    for j in range(a, b + 1):
        m = max(m, x[j])
    return m


@njit(cache=True, inline="always")
def _rmin(x: np.ndarray, a: int, b: int) -> float:
    m = np.inf
    for j in range(a, b + 1):
        m = min(m, x[j])
    return m


@njit(cache=True, inline="always")
def _argmin(x: np.ndarray, a: int, b: int) -> int:
    m = np.inf
    k = a
    for j in range(a, b + 1):
        if x[j] < m:
            m = x[j]
            k = j
    return k


@njit(cache=True, inline="always")
def _argmax(x: np.ndarray, a: int, b: int) -> int:
    m = -np.inf
    k = a
    for j in range(a, b + 1):
        if x[j] > m:
            m = x[j]
            k = j
    return k


@njit(cache=True)
def _line(xs: np.ndarray, ys: np.ndarray, m: int) -> tuple[float, float]:
    """Least-squares line ``y = a + b * x`` through the first ``m`` points; returns (a, b)."""
    mx = 0.0
    my = 0.0
    for j in range(m):
        mx += xs[j]
        my += ys[j]
    mx /= m
    my /= m
    sxx = 0.0
    sxy = 0.0
    for j in range(m):
        dx = xs[j] - mx
        sxx += dx * dx
        sxy += dx * (ys[j] - my)
    b = sxy / sxx if sxx > 0 else 0.0
    return my - b * mx, b


@njit(cache=True)
def _double(
    sign: float,
    hx: np.ndarray,
    lx: np.ndarray,
    c: np.ndarray,
    a: int,
    b: int,
    t: int,
    k: int,
    atr: float,
    tol: float,
    depth: float,
    sep: float,
) -> bool:
    """Double top (``sign = 1``: ``hx`` highs, ``lx`` lows) or bottom (``sign = -1``, prices
    negated by the caller) with its tops at swings ``a < b``, completing at ``t``."""
    if b - a < sep:
        return False
    pa = sign * hx[a]
    pb = sign * hx[b]
    top = max(pa, pb)
    if abs(pa - pb) > tol * atr:
        return False
    # nothing beyond the tops since the first one
    for j in range(a, t + 1):
        if sign * hx[j] > top:
            return False
    neck = np.inf
    for j in range(a, b + 1):
        v = sign * lx[j]
        neck = min(neck, v)
    if min(pa, pb) - neck < depth * atr:
        return False
    if not sign * c[t] < neck:
        return False
    # first close through the neckline since the second top became known
    for j in range(b + k, t):
        if sign * c[j] < neck:
            return False
    return True


@njit(cache=True)
def _head_shoulders(
    sign: float,
    hx: np.ndarray,
    lx: np.ndarray,
    c: np.ndarray,
    a: int,
    b: int,
    d: int,
    t: int,
    k: int,
    atr: float,
    head: float,
    tol: float,
    depth: float,
    sep: float,
) -> bool:
    """Head and shoulders (``sign = 1``) or inverse (``sign = -1``): shoulders at swings ``a``
    and ``d``, head at ``b``, completing at ``t`` on the neckline break."""
    if b - a < sep or d - b < sep:
        return False
    pa = sign * hx[a]
    pb = sign * hx[b]
    pd = sign * hx[d]
    if pb - max(pa, pd) < head * atr or abs(pa - pd) > tol * atr:
        return False
    for j in range(a, t + 1):
        if sign * hx[j] > pb:
            return False
    for j in range(d + 1, t + 1):
        if sign * hx[j] > pd:
            return False
    j1 = a
    n1 = np.inf
    for j in range(a, b + 1):
        v = sign * lx[j]
        if v < n1:
            n1 = v
            j1 = j
    j2 = b
    n2 = np.inf
    for j in range(b, d + 1):
        v = sign * lx[j]
        if v < n2:
            n2 = v
            j2 = j
    if j2 <= j1:
        return False
    if min(pa, pd) - max(n1, n2) < depth * atr:
        return False
    slope = (n2 - n1) / (j2 - j1)
    if not sign * c[t] < n1 + slope * (t - j1):
        return False
    for j in range(d + k, t):
        if sign * c[j] < n1 + slope * (j - j1):
            return False
    return True


@njit(cache=True)
def chart_patterns_nb(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    atr: np.ndarray,
    window: int,
    k: int,
    p: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write ``out[pattern, t]`` = the pattern completes at bar ``t`` (see detectors.py).

    ``atr`` is the causal ATR per bar (bars where it is NaN or 0 detect nothing); ``p`` the
    parameter vector (``P_*`` indices); ``out`` a (N_CHART, n) bool array.
    """
    n = close.shape[0]
    for r in range(N_CHART):
        for t in range(n):
            out[r, t] = False
    is_ph = np.empty(n, dtype=np.bool_)
    is_pl = np.empty(n, dtype=np.bool_)
    pivot_flags(high, low, k, is_ph, is_pl)
    sw_i = np.empty(n + 1, dtype=np.int64)
    sw_t = np.empty(n + 1, dtype=np.int8)
    m = 0
    first = 0
    hi_buf = np.empty(NB, dtype=np.int64)
    lo_buf = np.empty(NB, dtype=np.int64)
    xs = np.empty(3)
    ys = np.empty(3)
    fmin = int(p[P_FLAG_MIN])
    fmax = int(p[P_FLAG_MAX])
    pole = int(p[P_FLAG_POLE_BARS])
    last_bull = -(1 << 40)
    last_bear = -(1 << 40)
    for t in range(n):
        i = t - k
        if i >= 0:
            for typ in (1, -1):
                if (typ == 1 and is_ph[i]) or (typ == -1 and is_pl[i]):
                    price = high[i] if typ == 1 else low[i]
                    if m > 0 and sw_t[m - 1] == typ:
                        prev = high[sw_i[m - 1]] if typ == 1 else low[sw_i[m - 1]]
                        if typ * price > typ * prev:
                            sw_i[m - 1] = i
                    else:
                        sw_i[m] = i
                        sw_t[m] = typ
                        m += 1
        a_t = atr[t]
        if not a_t > 0:
            continue
        lo_idx = t - window + 1
        while first < m and sw_i[first] < lo_idx:
            first += 1
        # ---------------------------------------------------------------- last swings
        # hi_buf[NB - nh:] / lo_buf[NB - nl:] hold the last swing highs / lows, oldest first
        nh = 0
        nl = 0
        for s in range(m - 1, first - 1, -1):
            if sw_t[s] == 1 and nh < NB:
                hi_buf[NB - 1 - nh] = sw_i[s]
                nh += 1
            elif sw_t[s] == -1 and nl < NB:
                lo_buf[NB - 1 - nl] = sw_i[s]
                nl += 1
            if nh == NB and nl == NB:
                break
        for sign in (1.0, -1.0):
            buf = hi_buf if sign > 0 else lo_buf
            cnt = nh if sign > 0 else nl
            ext = high if sign > 0 else low
            opp = low if sign > 0 else high
            # ------------------------------------------------------------ double top/bottom
            found = False
            for bi in range(NB - 1, max(NB - 4, NB - cnt), -1):
                for ai in range(bi - 1, NB - cnt - 1, -1):
                    if _double(
                        sign,
                        ext,
                        opp,
                        close,
                        buf[ai],
                        buf[bi],
                        t,
                        k,
                        a_t,
                        p[P_DT_TOL],
                        p[P_DT_DEPTH],
                        p[P_DT_SEP],
                    ):
                        found = True
                        break
                if found:
                    break
            out[DOUBLE_TOP if sign > 0 else DOUBLE_BOTTOM, t] = found
            # ------------------------------------------------------------ head and shoulders
            found = False
            for di in range(NB - 1, max(NB - 4, NB - cnt + 1), -1):
                for ai in range(di - 2, NB - cnt - 1, -1):
                    bi = ai + 1
                    for q in range(ai + 2, di):
                        if sign * ext[buf[q]] > sign * ext[buf[bi]]:
                            bi = q
                    if _head_shoulders(
                        sign,
                        ext,
                        opp,
                        close,
                        buf[ai],
                        buf[bi],
                        buf[di],
                        t,
                        k,
                        a_t,
                        p[P_HS_HEAD],
                        p[P_HS_TOL],
                        p[P_HS_DEPTH],
                        p[P_HS_SEP],
                    ):
                        found = True
                        break
                if found:
                    break
            out[HEAD_SHOULDERS if sign > 0 else INV_HEAD_SHOULDERS, t] = found
        # ---------------------------------------------------------------- triangles
        if nh >= 2 and nl >= 2:
            band = p[P_TRI_BAND] * a_t
            for uh in range(2, min(nh, 3) + 1):
                for ul in range(2, min(nl, 3) + 1):
                    if uh + ul < 5:
                        continue
                    h0 = hi_buf[NB - uh]
                    l0 = lo_buf[NB - ul]
                    if not (h0 < lo_buf[NB - 1] and l0 < hi_buf[NB - 1]):
                        continue
                    for j in range(uh):
                        xs[j] = hi_buf[NB - uh + j] - t
                        ys[j] = high[hi_buf[NB - uh + j]]
                    ua, ub = _line(xs, ys, uh)
                    fit_ok = True
                    for j in range(uh):
                        if abs(ys[j] - (ua + ub * xs[j])) > p[P_TRI_FIT] * a_t:
                            fit_ok = False
                    for j in range(ul):
                        xs[j] = lo_buf[NB - ul + j] - t
                        ys[j] = low[lo_buf[NB - ul + j]]
                    la, lb = _line(xs, ys, ul)
                    for j in range(ul):
                        if abs(ys[j] - (la + lb * xs[j])) > p[P_TRI_FIT] * a_t:
                            fit_ok = False
                    if not fit_ok:
                        continue
                    t0 = min(h0, l0)
                    x0 = float(t0 - t)
                    w0 = (ua + ub * x0) - (la + lb * x0)
                    wt = ua - la
                    if w0 < p[P_TRI_MIN_HEIGHT] * a_t or wt < p[P_TRI_END_WIDTH] * w0:
                        continue
                    du = -ub * x0  # change of the upper line from t0 to t
                    dl = -lb * x0
                    flat_u = abs(du) <= p[P_TRI_FLAT] * w0
                    flat_l = abs(dl) <= p[P_TRI_FLAT] * w0
                    fall_u = du <= -p[P_TRI_SLOPE] * w0
                    rise_l = dl >= p[P_TRI_SLOPE] * w0
                    if flat_u and rise_l:
                        row = ASC_TRIANGLE
                    elif fall_u and flat_l:
                        row = DESC_TRIANGLE
                    elif fall_u and rise_l:
                        row = SYM_TRIANGLE
                    else:
                        continue
                    if out[row, t]:
                        continue
                    ct = close[t]
                    if not (ct > ua + band or ct < la - band):
                        continue
                    inside = True
                    for j in range(t0, t):
                        x = float(j - t)
                        cj = close[j]
                        if cj > ua + ub * x + band or cj < la + lb * x - band:
                            inside = False
                            break
                    out[row, t] = inside
        # ---------------------------------------------------------------- flags
        for sign in (1.0, -1.0):
            if sign > 0 and t - last_bull < fmin:
                continue
            if sign < 0 and t - last_bear < fmin:
                continue
            ext = high if sign > 0 else low
            opp = low if sign > 0 else high
            fl_ext = -np.inf  # most extreme (signed) price of the flag
            fl_opp = np.inf  # deepest (signed) counter price of the flag
            sx = 0.0
            sy = 0.0
            sxx = 0.0
            sxy = 0.0
            hit = False
            for L in range(1, fmax + 1):
                j = t - L  # the flag is bars t-L .. t-1, the pole top is bar t-1-L
                pt = j - 1
                if pt - pole < max(lo_idx, 0):
                    break
                v = sign * ext[j]
                fl_ext = max(fl_ext, v)
                w = sign * opp[j]
                fl_opp = min(fl_opp, w)
                x = float(-L)
                y = sign * close[j]
                sx += x
                sy += y
                sxx += x * x
                sxy += x * y
                if L < fmin:
                    continue
                top = sign * ext[pt]
                if fl_ext > top:
                    continue
                base = np.inf
                for q in range(pt - pole, pt + 1):
                    w2 = sign * opp[q]
                    base = min(base, w2)
                rise = top - base
                if rise < p[P_FLAG_POLE_ATR] * a_t:
                    continue
                if top - fl_opp > p[P_FLAG_RETRACE] * rise:
                    continue
                den = L * sxx - sx * sx
                slope = (L * sxy - sx * sy) / den if den > 0 else 0.0
                if slope > 0:
                    continue
                if sign * close[t] > fl_ext:
                    hit = True
                    break
            if hit:
                if sign > 0:
                    out[BULL_FLAG, t] = True
                    last_bull = t
                else:
                    out[BEAR_FLAG, t] = True
                    last_bear = t


@njit(cache=True)
def swing_levels_nb(
    high: np.ndarray, low: np.ndarray, k: int, prices: np.ndarray, index: np.ndarray
) -> int:
    """Prices (pivot highs' highs and pivot lows' lows) and bars of every pivot known at the
    last bar (``i + k <= n - 1``); returns how many were written."""
    n = high.shape[0]
    is_ph = np.empty(n, dtype=np.bool_)
    is_pl = np.empty(n, dtype=np.bool_)
    pivot_flags(high, low, k, is_ph, is_pl)
    m = 0
    for i in range(n):
        if is_ph[i]:
            prices[m] = high[i]
            index[m] = i
            m += 1
        if is_pl[i]:
            prices[m] = low[i]
            index[m] = i
            m += 1
    return m


# Rows of the candle kernel's output (the order of vocabulary.CANDLE_PATTERNS).
BULL_ENGULFING, BEAR_ENGULFING, HAMMER, SHOOTING_STAR, DOJI = 0, 1, 2, 3, 4
N_CANDLE = 5


@njit(cache=True)
def candles_nb(
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    eps: float,
    doji_body: float,
    zone: float,
    ratio: float,
    trend: int,
    out: np.ndarray,
) -> None:
    """Write ``out[pattern, t]`` for the five candle patterns (rules in detectors.py).

    One pass; the arithmetic is written in the same order as the Pine expressions of
    :mod:`aio_ray.pine.patterns`, so both round identically. A bar with a NaN price, or whose
    rule needs a NaN or missing earlier bar, is False.
    """
    n = c.shape[0]
    for t in range(n):
        ot, ht, lt, ct = o[t], h[t], lo[t], c[t]
        for r in range(N_CANDLE):
            out[r, t] = False
        if np.isnan(ot) or np.isnan(ht) or np.isnan(lt) or np.isnan(ct):
            continue
        rng = ht - lt
        body = abs(ct - ot)
        body_low = min(ct, ot)
        body_high = max(ct, ot)
        has_range = rng > eps
        out[DOJI, t] = has_range and body <= doji_body * rng + eps
        if t >= 1:
            o1, c1 = o[t - 1], c[t - 1]
            out[BULL_ENGULFING, t] = (
                c1 < o1 - eps
                and ct > ot + eps
                and ot <= c1 + eps
                and ct >= o1 - eps
                and (ct - ot) > (o1 - c1) + eps
            )
            out[BEAR_ENGULFING, t] = (
                c1 > o1 + eps
                and ct < ot - eps
                and ot >= c1 - eps
                and ct <= o1 + eps
                and (ot - ct) > (c1 - o1) + eps
            )
        if t >= 1 + trend:
            c1 = c[t - 1]
            ck = c[t - 1 - trend]
            out[HAMMER, t] = (
                has_range
                and body_low >= ht - zone * rng - eps
                and (body_low - lt) >= ratio * body - eps
                and c1 < ck - eps
            )
            out[SHOOTING_STAR, t] = (
                has_range
                and body_high <= lt + zone * rng + eps
                and (ht - body_high) >= ratio * body - eps
                and c1 > ck + eps
            )
