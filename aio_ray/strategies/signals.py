"""The contract between strategy families and the backtest engine.

A family turns bars and parameters into :class:`Signals`: per-bar boolean arrays evaluated on
the bar's close (bar ``i`` may use data up to and including bar ``i``, never later), plus
optional stop-loss / take-profit distances. The engine acts on them at the next bar's open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Signals",
]


@dataclass(frozen=True)
class Signals:
    """Per-bar orders decided at bar close; all arrays have the bars' length.

    Attributes
    ----------
    long_entry, short_entry
        Enter (or reverse into) a long / short position at the next bar's open.
    long_exit, short_exit
        Close an open long / short position at the next bar's open.
    stop_dist, take_dist
        Price distance (quote currency, > 0) of the protective stop and of the profit target
        for a position entered on this bar's signal; NaN means none. Anchored at the
        signal bar's close (so the Pine script can place ``strategy.exit`` on that bar).
    """

    long_entry: np.ndarray
    short_entry: np.ndarray
    long_exit: np.ndarray
    short_exit: np.ndarray
    stop_dist: np.ndarray
    take_dist: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.long_entry)
        for name in ("short_entry", "long_exit", "short_exit", "stop_dist", "take_dist"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Signals.{name} has length {len(getattr(self, name))}, expected {n}"
                )
