"""``python -m aio_ray.cli``: the ``aio`` command."""

from __future__ import annotations

from aio_ray.cli.app import app

if __name__ == "__main__":  # pragma: no cover
    app()
