"""Slot layouts shared by the compiled engine kernels (plain integer constants).

- trade records (``trades``, shape (n, N_TRADE_COLS)): columns ``TC_*``;
- the metric vector ``out``: slots ``M_*``, in the order of
  :data:`aio_ray.strategies.metrics.METRIC_NAMES`;
- the configuration vector ``cv`` (shared by every parameter set of a run): slots ``C_*``;
- the state vector of one parameter set (integers and flags stored as float64): slots ``S_*``.

``BLOCK`` and ``TILE`` size the kernels' working sets (bars per equity block, bars per tile
of the batch drivers).
"""

from __future__ import annotations

# Trade record columns.
TC_ENTRY_BAR = 0
TC_EXIT_BAR = 1
TC_SIDE = 2
TC_UNITS = 3
TC_ENTRY_PRICE = 4
TC_EXIT_PRICE = 5
TC_COMMISSION = 6
TC_PNL = 7
TC_PNL_PIPS = 8
TC_REASON = 9
TC_SWAP = 10  # swap of the trade (account currency; included in TC_PNL)
N_TRADE_COLS = 11

# Metric vector slots (same order as metrics.METRIC_NAMES).
M_NET_PROFIT = 0
M_TOTAL_RETURN = 1
M_CAGR = 2
M_SHARPE = 3
M_SORTINO = 4
M_MAX_DD = 5
M_MAX_DD_CASH = 6
M_PROFIT_FACTOR = 7
M_WIN_RATE = 8
M_TRADES = 9
M_EXPOSURE = 10
M_AVG_TRADE = 11
M_FINAL_EQUITY = 12
N_METRICS = 13

BLOCK = 1024  # bars per equity block (8 KiB: stays in L1)
TILE = 4096  # bars per tile in the batch drivers (prices + lines of a tile stay in L2)

# Configuration vector slots (shared by every parameter set of a run).
C_INITIAL = 0  # initial capital, account currency
C_SIZING = 1  # fills.SIZING_*
C_UNITS = 2  # fixed units
C_RISK = 3  # risk fraction of equity
C_LOT_STEP = 4  # units
C_COMM_KIND = 5  # fills.COMM_*
C_COMM_RATE = 6
C_SLIP = 7  # price units
C_PIP = 8  # price units
C_BARS_PER_YEAR = 9
C_YEARS = 10
C_INTRABAR = 11  # fills.INTRABAR_*
C_TICK = 12  # level tick, price units; 0: levels not rounded
C_SWAP_LONG = 13  # account currency per lot per rollover held long (negative: charged)
C_SWAP_SHORT = 14  # the same, held short
N_CONFIG = 15

# State vector slots of one parameter set (integers and flags stored as float64).
S_CASH = 0
S_POS = 1
S_QTY = 2
S_ENTRY_PX = 3
S_ENTRY_BAR = 4
S_ENTRY_COMM = 5
S_STOP = 6
S_TAKE = 7
S_PROTECTED = 8
S_PEND = 9
S_PEND_UNITS = 10
S_PEND_STOP = 11
S_PEND_TAKE = 12
S_HALTED = 13
S_TRADES = 14
S_WINS = 15
S_GROSS_WIN = 16
S_GROSS_LOSS = 17
S_SUM_R = 18
S_SUM_R2 = 19
S_SUM_NEG2 = 20
S_PEAK = 21
S_DD_FRAC = 22
S_DD_CASH = 23
S_EXPOSED = 24
S_PREV_EQ = 25
S_FAST_PREV = 26
S_SLOW_PREV = 27
S_TRADE_SWAP = 28  # swap of the open trade so far, account currency
N_STATE = 29
