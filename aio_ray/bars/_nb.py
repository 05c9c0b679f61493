"""Compiled bar kernels (numba; pure arrays in, arrays out, no Python objects, GIL released).

Bars travel between kernels as two column-major blocks of equal length ``n``:

``ints``  int64 ``(N_INT, n)`` rows :data:`I_LABEL` (open time, epoch ms), :data:`I_FIRST` /
          :data:`I_LAST` (first / last tick time, epoch ms), :data:`I_TICKS`, then the three
          fixed-point sums (spread, bid volume, ask volume), each as a ``hi``/``lo`` pair.
``flts``  float64 ``(N_FLT, n)``: bid, ask and mid open/high/low/close, then spread max.

Fixed-point sums make partial bars merge *exactly*: every tick's spread and volumes are
truncated once (toward zero) to a multiple of ``2**-40`` (9.1e-13 in price or million units) and added as
integers, each split into a high part (``q >> 32``) and a low part (``q & 0xFFFFFFFF``) so that
nothing overflows below 2**31 ticks per bar. Integer addition is associative, so a bar built
from any split of its ticks carries the same sum as a single pass, to the last bit. A float32
volume of at least 2**-16 million units is represented exactly. One tick's spread and volumes
must be finite and below 2**22 in size (a larger value is rejected as bad data).
"""

from __future__ import annotations

import numba as nb
import numpy as np

I_LABEL, I_FIRST, I_LAST, I_TICKS = 0, 1, 2, 3
I_SPREAD_HI, I_SPREAD_LO = 4, 5
I_BIDV_HI, I_BIDV_LO = 6, 7
I_ASKV_HI, I_ASKV_LO = 8, 9
N_INT = 10
SUM_PAIRS = ((I_SPREAD_HI, I_SPREAD_LO), (I_BIDV_HI, I_BIDV_LO), (I_ASKV_HI, I_ASKV_LO))

F_BID_O, F_BID_H, F_BID_L, F_BID_C = 0, 1, 2, 3
F_ASK_O, F_ASK_H, F_ASK_L, F_ASK_C = 4, 5, 6, 7
F_MID_O, F_MID_H, F_MID_L, F_MID_C = 8, 9, 10, 11
F_SPREAD_MAX = 12
N_FLT = 13

FIXED_SCALE = 1099511627776.0  # 2**40: fixed-point units per price or volume unit
FIXED_BITS = 32  # a sum is hi * 2**32 + lo fixed-point units
FIXED_MASK = 0xFFFFFFFF
VALUE_LIMIT = 4194304.0  # 2**22: |spread| and |volume| of one tick must stay below this

OK = 0
ERR_UNSORTED = 1  # a tick's ts is earlier than the previous tick's
ERR_BAD_PRICE = 2  # bid/ask not finite (NaN, inf)
ERR_BAD_VALUE = 3  # spread or volume not finite or beyond VALUE_LIMIT
ERR_KEYS = 4  # combine_runs keys decrease

_MINUTE = 60_000
_MAX_FINITE = 1.7976931348623157e308


@nb.njit(cache=True, nogil=True)
def minute_bars(
    ts: np.ndarray, bid: np.ndarray, ask: np.ndarray, bid_volume: np.ndarray, ask_volume: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """One pass over ticks sorted by ``ts`` (epoch ms, non-decreasing) -> 1-minute bars.

    Only minutes with ticks get a bar. Returns ``(ints, flts, status, index)``; on failure
    ``status`` is one of the ``ERR_*`` codes and ``index`` the offending tick (the arrays
    are then empty).
    """
    n = ts.size
    cap = 0
    if n > 0:
        span = ts[n - 1] // _MINUTE - ts[0] // _MINUTE + 1  # minutes touched if sorted
        cap = n if span <= 0 or span > n else span
    ints = np.empty((N_INT, cap), dtype=np.int64)
    flts = np.empty((N_FLT, cap), dtype=np.float64)
    if n == 0:
        return ints, flts, OK, -1

    j = -1
    bar_end = ts[0]  # first tick always opens a bar
    prev = ts[0]
    label = first = last = cnt = 0
    s_hi = s_lo = bv_hi = bv_lo = av_hi = av_lo = np.int64(0)
    bo = bh = bl = bc = ao = ah = al = ac = mo = mh = ml = mc = smax = 0.0
    for i in range(n):
        t = ts[i]
        b = bid[i]
        a = ask[i]
        if t < prev:
            return ints[:, :0], flts[:, :0], ERR_UNSORTED, i
        prev = t
        m = 0.5 * (b + a)
        s = a - b
        if not (abs(b) <= _MAX_FINITE and abs(a) <= _MAX_FINITE and abs(m) <= _MAX_FINITE):
            return ints[:, :0], flts[:, :0], ERR_BAD_PRICE, i
        bv = np.float64(bid_volume[i])
        av = np.float64(ask_volume[i])
        if not (abs(s) < VALUE_LIMIT and abs(bv) < VALUE_LIMIT and abs(av) < VALUE_LIMIT):
            return ints[:, :0], flts[:, :0], ERR_BAD_VALUE, i
        qs = np.int64(s * FIXED_SCALE)
        qb = np.int64(bv * FIXED_SCALE)
        qa = np.int64(av * FIXED_SCALE)
        if t >= bar_end:
            if j >= 0:
                ints[I_LABEL, j] = label
                ints[I_FIRST, j] = first
                ints[I_LAST, j] = last
                ints[I_TICKS, j] = cnt
                ints[I_SPREAD_HI, j] = s_hi
                ints[I_SPREAD_LO, j] = s_lo
                ints[I_BIDV_HI, j] = bv_hi
                ints[I_BIDV_LO, j] = bv_lo
                ints[I_ASKV_HI, j] = av_hi
                ints[I_ASKV_LO, j] = av_lo
                flts[F_BID_O, j] = bo
                flts[F_BID_H, j] = bh
                flts[F_BID_L, j] = bl
                flts[F_BID_C, j] = bc
                flts[F_ASK_O, j] = ao
                flts[F_ASK_H, j] = ah
                flts[F_ASK_L, j] = al
                flts[F_ASK_C, j] = ac
                flts[F_MID_O, j] = mo
                flts[F_MID_H, j] = mh
                flts[F_MID_L, j] = ml
                flts[F_MID_C, j] = mc
                flts[F_SPREAD_MAX, j] = smax
            j += 1
            if j >= cap:  # more minutes than the span allows: the input is not sorted
                return ints[:, :0], flts[:, :0], ERR_UNSORTED, i
            label = t - t % _MINUTE
            bar_end = label + _MINUTE
            first = t
            cnt = 0
            s_hi = s_lo = bv_hi = bv_lo = av_hi = av_lo = np.int64(0)
            bo = bh = bl = b
            ao = ah = al = a
            mo = mh = ml = m
            smax = s
        bh = max(bh, b)
        bl = min(bl, b)
        ah = max(ah, a)
        al = min(al, a)
        mh = max(mh, m)
        ml = min(ml, m)
        smax = max(smax, s)
        bc = b
        ac = a
        mc = m
        last = t
        cnt += 1
        s_hi += qs >> FIXED_BITS
        s_lo += qs & FIXED_MASK
        bv_hi += qb >> FIXED_BITS
        bv_lo += qb & FIXED_MASK
        av_hi += qa >> FIXED_BITS
        av_lo += qa & FIXED_MASK
    ints[I_LABEL, j] = label
    ints[I_FIRST, j] = first
    ints[I_LAST, j] = last
    ints[I_TICKS, j] = cnt
    ints[I_SPREAD_HI, j] = s_hi
    ints[I_SPREAD_LO, j] = s_lo
    ints[I_BIDV_HI, j] = bv_hi
    ints[I_BIDV_LO, j] = bv_lo
    ints[I_ASKV_HI, j] = av_hi
    ints[I_ASKV_LO, j] = av_lo
    flts[F_BID_O, j] = bo
    flts[F_BID_H, j] = bh
    flts[F_BID_L, j] = bl
    flts[F_BID_C, j] = bc
    flts[F_ASK_O, j] = ao
    flts[F_ASK_H, j] = ah
    flts[F_ASK_L, j] = al
    flts[F_ASK_C, j] = ac
    flts[F_MID_O, j] = mo
    flts[F_MID_H, j] = mh
    flts[F_MID_L, j] = ml
    flts[F_MID_C, j] = mc
    flts[F_SPREAD_MAX, j] = smax
    return ints[:, : j + 1], flts[:, : j + 1], OK, -1


@nb.njit(cache=True, nogil=True)
def combine_runs(
    keys: np.ndarray, ints: np.ndarray, flts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Combine consecutive bars with equal ``keys`` (int64, non-decreasing) into one bar each.

    Within a run, rows must be ordered by first tick time (ties in stream order): the open
    and first tick time come from the run's first row; the close and last tick time from the
    row with the latest last tick time (ties: the later row); highs/lows are max/min, counts
    and fixed-point sums add. The result is labelled by the key. Used to roll 1m bars up to
    longer timeframes (rows in stream order) and to merge partial bars sharing a label.
    Returns ``(ints, flts, status, index)`` like :func:`minute_bars`.
    """
    n = keys.size
    runs = 0
    for i in range(n):
        if i == 0 or keys[i] != keys[i - 1]:
            if i > 0 and keys[i] < keys[i - 1]:
                return ints[:, :0].copy(), flts[:, :0].copy(), ERR_KEYS, i
            runs += 1
    out_i = np.empty((N_INT, runs), dtype=np.int64)
    out_f = np.empty((N_FLT, runs), dtype=np.float64)
    j = -1
    for i in range(n):
        if i == 0 or keys[i] != keys[i - 1]:
            j += 1
            for k in range(N_INT):
                out_i[k, j] = ints[k, i]
            for k in range(N_FLT):
                out_f[k, j] = flts[k, i]
            out_i[I_LABEL, j] = keys[i]
            continue
        if ints[I_LAST, i] >= out_i[I_LAST, j]:
            out_i[I_LAST, j] = ints[I_LAST, i]
            out_f[F_BID_C, j] = flts[F_BID_C, i]
            out_f[F_ASK_C, j] = flts[F_ASK_C, i]
            out_f[F_MID_C, j] = flts[F_MID_C, i]
        out_i[I_TICKS, j] += ints[I_TICKS, i]
        for k in range(I_SPREAD_HI, N_INT):
            out_i[k, j] += ints[k, i]
        for k in (F_BID_H, F_ASK_H, F_MID_H, F_SPREAD_MAX):
            out_f[k, j] = max(out_f[k, j], flts[k, i])
        for k in (F_BID_L, F_ASK_L, F_MID_L):
            out_f[k, j] = min(out_f[k, j], flts[k, i])
    # Keep each low part below 2**33 so that no sum overflows however often bars are merged.
    for j in range(runs):
        for k in range(I_SPREAD_HI, N_INT, 2):
            lo = out_i[k + 1, j]
            out_i[k, j] += lo >> FIXED_BITS
            out_i[k + 1, j] = lo & FIXED_MASK
    return out_i, out_f, OK, -1


def fixed_to_float(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Value of fixed-point sums ``(hi * 2**32 + lo) * 2**-40`` as float64, correctly rounded.

    The pair is first made canonical (``0 <= lo < 2**32``) so that every split of the same
    ticks converts to the same float.
    """
    hi = np.asarray(hi, dtype=np.int64)
    lo = np.asarray(lo, dtype=np.int64)
    hi = hi + (lo >> FIXED_BITS)
    lo = lo & FIXED_MASK
    # Both terms are exact in float64 (|hi| < 2**53, lo < 2**32); the addition rounds once.
    return (
        hi.astype(np.float64) * (2.0**FIXED_BITS / FIXED_SCALE)
        + lo.astype(np.float64) / FIXED_SCALE
    )
