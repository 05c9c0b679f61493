"""Pine verification records in the library: every check of a strategy's generated Pine
script (syntax, parity with the Python backtest) is kept; the latest is read back.
Used through :class:`aio_ray.library.repo.Library`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from aio_ray.library.engine import PINE, LibraryBase, _finite_json, _new_id
from aio_ray.library.models import canonical_json, check_text, now_ms

__all__ = ["PineMixin"]


class PineMixin(LibraryBase):
    """Pine checks: :meth:`record_pine_verification`, :meth:`pine_verification`."""

    def record_pine_verification(
        self,
        strategy_id: str,
        kind: str,
        *,
        parsed: bool,
        parity_passed: bool | None,
        first_diff_bar: int | None,
        report: Mapping[str, Any],
    ) -> int:
        """Store one check of a strategy's generated Pine script; returns the row id.

        ``kind`` is "strategy" or "indicator"; ``parity_passed`` None means parity was not
        run (syntax error or runtime failure); ``report`` is the full JSON-able report
        (non-finite floats are stored as null). Every check is kept; the latest is read by
        :meth:`pine_verification`.
        """
        check_text("strategy_id", strategy_id)
        if kind not in ("strategy", "indicator"):
            raise ValueError(f"kind must be 'strategy' or 'indicator', got {kind!r}")
        row = {
            "strategy_id": strategy_id,
            "kind": kind,
            "parsed": bool(parsed),
            "parity_passed": None if parity_passed is None else bool(parity_passed),
            "first_diff_bar": None if first_diff_bar is None else int(first_diff_bar),
            "report_json": canonical_json(_finite_json(report)),
            "checked_ms": now_ms(),
        }
        return int(
            self._tx(
                lambda c: _new_id(c.execute(PINE.insert().values(**row))),
                f"record Pine verification of {strategy_id}",
            )
        )

    def pine_verification(self, strategy_id: str, kind: str | None = None) -> dict[str, Any] | None:
        """The latest Pine check of a strategy (optionally of one ``kind``), or None.

        Keys: ``id, strategy_id, kind, parsed, parity_passed, first_diff_bar, checked_ms``
        and ``report`` (decoded).
        """
        q = select(PINE).where(PINE.c.strategy_id == strategy_id)
        if kind is not None:
            q = q.where(PINE.c.kind == kind)
        q = q.order_by(PINE.c.checked_ms.desc(), PINE.c.id.desc()).limit(1)
        row = self._tx(lambda c: c.execute(q).first(), "read Pine verification")
        if row is None:
            return None
        out = dict(row._mapping)
        out["report"] = json.loads(out.pop("report_json"))
        return out
