"""State shared by the ``aio`` command and the command modules it registers.

The ``aio`` callback (:func:`aio_ray.cli.main`) stores the configuration loaded from
``--config``/``--set`` in :data:`state`; the verbs in :mod:`aio_ray.cli`,
:mod:`aio_ray.pine.commands` and :mod:`aio_ray.vision.commands` read it from here, so the
command modules need not import :mod:`aio_ray.cli` (which registers them).
"""

from __future__ import annotations

from aio_ray.config import AppConfig

__all__ = ["State", "state"]


class State:
    """The configuration of the running ``aio`` command (defaults until the callback ran)."""

    config: AppConfig = AppConfig()


state = State()
