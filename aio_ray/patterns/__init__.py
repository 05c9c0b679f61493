"""Candle and chart patterns: the fixed vocabulary, rule detectors, known-pattern windows,
recall of a detector on them, and mining of forward-return statistics over stored bars.

Import the modules themselves (``aio_ray.patterns.detectors``, ``.vocabulary``, ``.mining``,
``.stats``, ``.recall``, ``.synthetic_windows``); the package exports nothing, so importing
one never loads the others (the detectors compile numba kernels).
"""

__all__: list[str] = []
