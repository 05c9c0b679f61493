"""The live-control audit in the library: operator actions (pause, resume, parameter
overrides, config reloads) with who did them and when, and the state they replay to.
Used through :class:`aio_ray.library.repo.Library`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from aio_ray.library.engine import CONTROL, LibraryBase, _finite_json, _new_id
from aio_ray.library.models import canonical_json, check_text, now_ms

__all__ = ["ControlMixin"]


class ControlMixin(LibraryBase):
    """Control events: record them, list them, replay them into per-strategy state."""

    def record_control(
        self, strategy_id: str | None, action: str, payload: Mapping[str, Any], who: str
    ) -> int:
        """Store one operator action (``pause``, ``resume``, ``params``, ``config_reload``, ...)
        on a strategy (None: the whole app) with who did it; the time is now (UTC ms).

        Returns the event id; ids grow, so the newest event has the largest id.
        """
        check_text("action", action)
        check_text("who", who)
        if strategy_id is not None:
            check_text("strategy_id", strategy_id)
        row = {
            "strategy_id": strategy_id,
            "action": action,
            "payload_json": canonical_json(_finite_json(dict(payload))),
            "who": who,
            "at_ms": now_ms(),
        }
        return int(
            self._tx(
                lambda c: _new_id(c.execute(CONTROL.insert().values(**row))),
                f"record control {action!r} of {strategy_id}",
            )
        )

    def control_events(
        self, strategy_id: str | None = None, *, limit: int = 100, after_id: int = 0
    ) -> list[dict[str, Any]]:
        """Control events, newest first (optionally of one strategy, only ids > ``after_id``).

        Keys: ``id, strategy_id, action, payload`` (decoded), ``who, at_ms`` (UTC ms).
        """
        q = select(CONTROL).where(CONTROL.c.id > after_id)
        if strategy_id is not None:
            q = q.where(CONTROL.c.strategy_id == strategy_id)
        q = q.order_by(CONTROL.c.id.desc()).limit(max(1, int(limit)))
        out = []
        for r in self._tx(lambda c: c.execute(q).all(), "read control events"):
            d = dict(r._mapping)
            d["payload"] = json.loads(d.pop("payload_json"))
            out.append(d)
        return out

    def control_state(self) -> dict[str, dict[str, Any]]:
        """The live state of every strategy that has control events, replayed in order.

        Per strategy id: ``paused`` (bool: the latest pause/resume was a pause), ``params``
        (the latest ``params`` event's ``payload["params"]``, None when never overridden),
        ``updated_ms`` (UTC ms) and ``updated_by`` of its latest event.
        """
        q = (
            select(
                CONTROL.c.strategy_id,
                CONTROL.c.action,
                CONTROL.c.payload_json,
                CONTROL.c.who,
                CONTROL.c.at_ms,
            )
            .where(CONTROL.c.strategy_id.is_not(None))
            .where(CONTROL.c.action.in_(("pause", "resume", "params")))
            .order_by(CONTROL.c.id)
        )
        state: dict[str, dict[str, Any]] = {}
        for sid, action, payload, who, at in self._tx(lambda c: c.execute(q).all(), "read state"):
            s = state.setdefault(sid, {"paused": False, "params": None})
            if action == "params":
                s["params"] = json.loads(payload).get("params")
            else:
                s["paused"] = action == "pause"
            s["updated_ms"], s["updated_by"] = at, who
        return state
