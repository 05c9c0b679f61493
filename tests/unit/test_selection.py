"""Nested walk-forward selection: choices read in-sample windows only, the record is the
concatenation of the chosen candidates' out-of-sample windows, guides restrict eligibility."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aio_ray.library.candidates import WINDOW_METRICS, pack
from aio_ray.strategies.evaluate import ObjectiveConfig
from aio_ray.strategies.selection import Selector, aligned, gross_from

K = 2  # folds: windows IS0, OOS0, IS1, OOS1, FINAL
SAMPLES = ("is", "oos", "is", "oos", "final")
FOLDS = (0, 0, 1, 1, 2)
# columns: OOS0 owns 0..2, OOS1 owns 3..5 (the OOS record), then IS0 6..8, IS1 9..11, final 12..14
LAYOUT = {
    "period_ms": 86_400_000,
    "windows": [
        {"fold": f, "sample": s, "start_bar": 0, "end_bar": 1}
        for f, s in zip(FOLDS, SAMPLES, strict=True)
    ],
    "period_start_ms": [86_400_000 * i for i in range(15)],
    "period_window": [1, 1, 1, 3, 3, 3, 0, 0, 0, 2, 2, 2, 4, 4, 4],
    "oos_columns": [0, 1, 2, 3, 4, 5],
}
IX = {m: j for j, m in enumerate(WINDOW_METRICS)}


def _row(
    number: int,
    sharpes: list[float],
    guide: int = -1,
    trades: float = 10.0,
    oos_returns: float = 0.0,
    status: str = "ok",
) -> dict:
    wm = np.zeros((len(SAMPLES), len(WINDOW_METRICS)), dtype="<f4")
    wm[:, IX["sharpe"]] = sharpes
    wm[:, IX["trades"]] = trades
    wm[:, IX["net_profit"]] = [10.0 * s for s in sharpes]
    wm[:, IX["profit_factor"]] = [2.0 if s > 0 else 0.5 for s in sharpes]
    wm[:, IX["end_exits"]] = 1
    rets = np.full(15, oos_returns, dtype="<f4")
    rets[:6] += np.float32(number) * np.float32(1e-4)  # tell the candidates' OOS days apart
    return {
        "number": number,
        "family": "ma_cross",
        "timeframe": "1h",
        "guide": guide,
        "status": status,
        "error": None if status == "ok" else "ValueError: bad",
        "params": {"fast": number},
        "returns": pack(rets),
        "window_metrics": pack(wm) if status == "ok" else None,
    }


def test_each_fold_is_chosen_on_its_in_sample_window_only():
    # candidate 1: best on IS0, awful OOS0; candidate 2: best on IS1; candidate 3: best OOS
    # everywhere but worst in-sample: never chosen (its OOS figures must not matter)
    rows = [
        _row(1, [5.0, -3.0, 0.0, 1.0, 0.0]),
        _row(2, [0.0, 1.0, 6.0, -2.0, 7.0]),
        _row(3, [-1.0, 9.0, -1.0, 9.0, -1.0]),
    ]
    sel = Selector({"1h": LAYOUT}, ObjectiveConfig(min_is_trades=3))
    sel.add(rows)
    (rec,) = sel.records()
    assert [f.number for f in rec.folds] == [1, 2]
    assert rec.folds[0].oos["sharpe"] == pytest.approx(-3.0)
    assert rec.folds[1].oos["sharpe"] == pytest.approx(-2.0)
    assert rec.final is not None and rec.final.number == 2 and rec.final.params == {"fast": 2}
    # the record: candidate 1's OOS0 days then candidate 2's OOS1 days
    np.testing.assert_allclose(rec.returns, [1e-4] * 3 + [2e-4] * 3, rtol=1e-5)
    assert rec.trades == 20 and rec.end_exits == 2
    assert rec.n_ok == 3 and rec.n_failed == 0


def test_guides_keep_later_samplers_out_of_earlier_folds():
    # candidate 5 was proposed by the sampler of selection window 1 (it saw IS1): it may be
    # chosen for fold 1 and the export, never for fold 0, however good its IS0 figure
    rows = [
        _row(4, [1.0, 0.5, 1.0, 0.5, 1.0], guide=0),
        _row(5, [9.0, 0.5, 9.0, 0.5, 9.0], guide=1),
    ]
    sel = Selector({"1h": LAYOUT}, ObjectiveConfig(min_is_trades=3))
    sel.add(rows)
    (rec,) = sel.records()
    assert [f.number for f in rec.folds] == [4, 5]
    assert rec.final.number == 5
    # a data-blind candidate (guide -1) is eligible everywhere
    sel = Selector({"1h": LAYOUT}, ObjectiveConfig(min_is_trades=3))
    sel.add([_row(4, [1.0] * 5, guide=0), _row(6, [9.0] * 5, guide=-1)])
    assert [f.number for f in sel.records()[0].folds] == [6, 6]


def test_ties_go_to_the_lower_number_and_failed_rows_are_counted():
    sel = Selector({"1h": LAYOUT}, ObjectiveConfig(min_is_trades=3))
    sel.add([_row(8, [2.0] * 5), _row(7, [2.0] * 5), _row(9, [0.0] * 5, status="failed")])
    (rec,) = sel.records()
    assert [f.number for f in rec.folds] == [7, 7] and rec.final.number == 7
    assert rec.n_failed == 1 and sel.errors == {"ValueError: bad": 1}


def test_few_trades_are_penalized_as_in_the_objective():
    cfg = ObjectiveConfig(min_is_trades=5, few_trades_penalty=1.0)
    sel = Selector({"1h": LAYOUT}, cfg)
    sel.add([_row(1, [3.0] * 5, trades=2), _row(2, [0.5] * 5, trades=9)])
    assert sel.records()[0].final.number == 2


def test_a_fold_without_any_eligible_candidate_leaves_a_hole():
    sel = Selector({"1h": LAYOUT}, ObjectiveConfig(min_is_trades=3))
    sel.add([_row(3, [1.0] * 5, guide=1)])
    (rec,) = sel.records()
    assert [f.number for f in rec.folds] == [-1, 3]
    assert not rec.complete


def test_matrix_sample_is_bounded_and_deterministic():
    rows = [_row(i, [float(i % 7)] * 5) for i in range(50)]
    a = Selector({"1h": LAYOUT}, ObjectiveConfig(min_is_trades=3), matrix_candidates=10, seed=3)
    a.add(rows)
    b = Selector({"1h": LAYOUT}, ObjectiveConfig(min_is_trades=3), matrix_candidates=10, seed=3)
    b.add(rows[:20])
    b.add(rows[20:])
    ((_pa, ma),) = a.samples().values()
    ((_, mb),) = b.samples().values()
    assert ma.shape == (6, 10)
    np.testing.assert_array_equal(ma, mb)
    per, mat, owner = aligned(a.samples())
    assert per.shape == (6,) and mat.shape == (6, 10) and owner == [("ma_cross", "1h")] * 10


def test_gross_profit_and_loss_from_net_and_profit_factor():
    assert gross_from(100.0, 2.0) == pytest.approx((200.0, 100.0))
    assert gross_from(-50.0, 0.5) == pytest.approx((50.0, 100.0))
    assert gross_from(30.0, math.inf) == (30.0, 0.0)
    assert gross_from(0.0, math.nan) == (0.0, 0.0)
