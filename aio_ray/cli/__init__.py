"""The ``aio`` command line (console script ``aio = "aio_ray.cli:app"``).

One module per verb group; :mod:`aio_ray.cli.app` composes them into :data:`app`.
"""

from __future__ import annotations

from aio_ray.cli.app import app

__all__ = ["app"]
