"""Walk-forward fold splitting (pure): in-sample / out-of-sample bar ranges and a final holdout.

Layout of ``n_bars`` bars (indices are bar positions, ranges are half-open ``[start, end)``)::

    | warm-up | IS_0 ........ | OOS_0 | OOS_1 | ... | OOS_{k-1} | holdout |
                              |<----- OOS windows tile ------->|

- The last ``holdout_fraction`` of the bars is the final holdout: it belongs to no fold and is
  only ever evaluated for reporting.
- The first ``warmup_bars`` bars are reserved for indicator warm-up: no window starts before
  them (signals are still computed from bar 0, so indicators are warm at a window's start).
- The out-of-sample windows have equal length, do not overlap and tile the bars between the
  first fold's in-sample window and the holdout without gaps.
- Each fold's in-sample window ends ``embargo_bars`` before its out-of-sample window starts
  (0: where it starts). ``rolling``: every
  in-sample window has the same length (it slides forward with the OOS window); ``anchored``:
  every in-sample window starts right after the warm-up (it grows fold by fold).
- ``oos_fraction`` is the out-of-sample share of the first fold's window ``IS_0 + OOS_0`` (and of
  every fold's window in the rolling scheme): 0.25 means a 3:1 in-sample to out-of-sample split.

The parameters that are exported are chosen on :func:`final_window`: the last in-sample
window before the holdout (same length, same embargo).

Evaluating a window (see :func:`window_bounds`): signals are computed on the bars from 0 up to
the window's end (a causal prefix), then only the window's bars are traded. A fold's result
therefore never depends on bars after its window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from aio_ray.errors import AioError

__all__ = [
    "SCHEMES",
    "Fold",
    "NotEnoughBarsError",
    "Scheme",
    "SearchError",
    "final_window",
    "holdout_size",
    "make_folds",
    "window_bounds",
]

Scheme = Literal["rolling", "anchored"]
SCHEMES: tuple[Scheme, ...] = ("rolling", "anchored")


class SearchError(AioError):
    """A walk-forward split, a candidate evaluation or the strategy search cannot proceed."""


class NotEnoughBarsError(SearchError):
    """Too few bars for the requested folds, warm-up and holdout (names the shortfall)."""


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold as half-open bar index ranges.

    Attributes
    ----------
    index
        0-based fold number, in time order.
    is_start, is_end
        In-sample window ``[is_start, is_end)``, bars.
    oos_start, oos_end
        Out-of-sample window ``[oos_start, oos_end)``, bars; ``oos_start == is_end + embargo_bars``.
    """

    index: int
    is_start: int
    is_end: int
    oos_start: int
    oos_end: int

    @property
    def is_range(self) -> tuple[int, int]:
        """The in-sample window ``(start, end)``, bars."""
        return (self.is_start, self.is_end)

    @property
    def oos_range(self) -> tuple[int, int]:
        """The out-of-sample window ``(start, end)``, bars."""
        return (self.oos_start, self.oos_end)

    @property
    def is_len(self) -> int:
        """In-sample length, bars."""
        return self.is_end - self.is_start

    @property
    def oos_len(self) -> int:
        """Out-of-sample length, bars."""
        return self.oos_end - self.oos_start


def holdout_size(n_bars: int, holdout_fraction: float) -> int:
    """Bars in the final holdout: ``ceil(n_bars * holdout_fraction)`` (0 when the fraction is 0)."""
    if not 0.0 <= holdout_fraction < 1.0:
        raise SearchError(f"holdout_fraction must be in [0, 1), got {holdout_fraction!r}")
    return math.ceil(n_bars * holdout_fraction - 1e-9) if holdout_fraction > 0 else 0


def make_folds(
    n_bars: int,
    n_folds: int,
    scheme: Scheme = "rolling",
    oos_fraction: float = 0.25,
    holdout_fraction: float = 0.2,
    warmup_bars: int = 0,
    min_is_bars: int = 2,
    min_oos_bars: int = 2,
    embargo_bars: int = 0,
) -> tuple[tuple[Fold, ...], tuple[int, int]]:
    """Split ``n_bars`` bars into walk-forward folds and a final holdout.

    Parameters
    ----------
    n_bars
        Number of bars of the series.
    n_folds
        Number of folds (>= 1).
    scheme
        ``"rolling"`` (fixed-length in-sample window) or ``"anchored"`` (in-sample window from
        the end of the warm-up).
    oos_fraction
        Out-of-sample share of the first fold's in-sample + out-of-sample window, in (0, 1).
    holdout_fraction
        Share of all bars kept as the final holdout (the last bars), in [0, 1).
    warmup_bars
        Bars at the start reserved for indicator warm-up; no window starts before them.
    min_is_bars, min_oos_bars
        Smallest acceptable in-sample / out-of-sample window, bars.
    embargo_bars
        Bars left out between each in-sample window and its out-of-sample window (purge and
        embargo): an in-sample window ends ``embargo_bars`` before its OOS window starts.

    Returns
    -------
    (folds, holdout)
        The folds in time order and the holdout range ``(start, end)`` with ``end == n_bars``
        (an empty range ``(n_bars, n_bars)`` when ``holdout_fraction`` is 0).

    Raises
    ------
    SearchError
        For an invalid argument (names it and the accepted values).
    NotEnoughBarsError
        When the bars left after warm-up and holdout cannot hold the folds.
    """
    if scheme not in SCHEMES:
        raise SearchError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if not isinstance(n_folds, int) or n_folds < 1:
        raise SearchError(f"n_folds must be an integer >= 1, got {n_folds!r}")
    if not 0.0 < oos_fraction < 1.0:
        raise SearchError(f"oos_fraction must be in (0, 1), got {oos_fraction!r}")
    if n_bars < 0 or warmup_bars < 0:
        raise SearchError(f"n_bars and warmup_bars must be >= 0, got {n_bars}, {warmup_bars}")
    if not isinstance(embargo_bars, int) or embargo_bars < 0:
        raise SearchError(f"embargo_bars must be an integer >= 0, got {embargo_bars!r}")
    if min_is_bars < 1 or min_oos_bars < 1:
        raise SearchError(
            f"min_is_bars and min_oos_bars must be >= 1, got {min_is_bars}, {min_oos_bars}"
        )

    n_hold = holdout_size(n_bars, holdout_fraction)
    end = n_bars - n_hold  # first holdout bar
    span = end - warmup_bars - embargo_bars  # bars available to the folds' windows
    # span = is_len + n_folds * oos_len, with oos_len / (is_len + oos_len) = oos_fraction.
    ratio = (1.0 - oos_fraction) / oos_fraction  # is_len / oos_len
    oos_len = _oos_len(span, n_folds, ratio, min_is_bars)
    is_len = span - n_folds * oos_len  # the remainder of the division goes to the IS window
    if oos_len < min_oos_bars or is_len < min_is_bars:
        need = _min_span(n_folds, ratio, min_is_bars, min_oos_bars)
        raise NotEnoughBarsError(
            f"{n_bars} bars cannot hold {n_folds} fold(s) ({scheme}, oos_fraction={oos_fraction}) "
            f"after {warmup_bars} warm-up bar(s), a {embargo_bars}-bar embargo and a {n_hold}-bar "
            f"holdout: {max(span, 0)} bar(s) "
            f"remain for the folds, at least {need} are needed (windows of >= {min_is_bars} "
            f"in-sample and >= {min_oos_bars} out-of-sample bars); use more bars, fewer folds "
            f"or a shorter warm-up"
        )

    folds = []
    first_oos = warmup_bars + is_len + embargo_bars
    for k in range(n_folds):
        oos_start = first_oos + k * oos_len
        is_end = oos_start - embargo_bars
        is_start = warmup_bars if scheme == "anchored" else is_end - is_len
        folds.append(Fold(k, is_start, is_end, oos_start, oos_start + oos_len))
    return tuple(folds), (end, n_bars)


def final_window(
    folds: tuple[Fold, ...], end: int, scheme: Scheme = "rolling", embargo_bars: int = 0
) -> tuple[int, int]:
    """The in-sample window on which the exported parameters are chosen: the last
    in-sample window before bar ``end`` (the holdout's first bar), ``embargo_bars`` before it,
    as long as the folds' in-sample windows (``anchored``: from the first one's start)."""
    if not folds:
        raise SearchError("no folds: the final in-sample window needs at least one")
    stop = end - embargo_bars
    start = folds[0].is_start if scheme == "anchored" else stop - folds[0].is_len
    if not 0 <= start < stop:
        raise SearchError(f"final in-sample window [{start}, {stop}) is empty or invalid")
    return start, stop


def _oos_len(span: int, n_folds: int, ratio: float, min_is: int) -> int:
    """OOS window length for ``span`` fold bars: ``floor(span / (ratio + n_folds))``, shortened
    when needed so the in-sample window keeps ``min_is`` bars (0 when ``span`` is too small)."""
    if span <= 0:
        return 0
    by_ratio = math.floor(span / (ratio + n_folds) + 1e-9)
    return max(0, min(by_ratio, (span - min_is) // n_folds))


def _min_span(n_folds: int, ratio: float, min_is: int, min_oos: int) -> int:
    """Smallest fold span (bars) whose windows meet the minimum lengths (feasibility grows
    with the span, so the first feasible span is the answer)."""
    span = n_folds * min_oos + min_is
    while _oos_len(span, n_folds, ratio, min_is) < min_oos:
        span += 1
    return span


def window_bounds(start: int, end: int) -> tuple[int, int, int]:
    """How a window ``[start, end)`` is evaluated: ``(prefix_end, trade_start, trade_end)``.

    Signals are computed on bars ``[0, prefix_end)`` (causal: nothing after the window) and
    trades are counted on ``[trade_start, trade_end)``. Kept as a function so every caller
    cuts windows the same way.
    """
    if not 0 <= start < end:
        raise SearchError(f"empty or invalid window [{start}, {end})")
    return end, start, end
