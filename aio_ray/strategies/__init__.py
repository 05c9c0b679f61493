"""Strategy families, the compiled backtest engine, search and ranking.

Import the modules themselves (``aio_ray.strategies.engine``, ``.search``, ``.selection``, ...);
the package exports nothing, so a light module such as ``.config`` loads no numba or Ray.
"""

__all__: list[str] = []
