"""Charts: the numpy rasterizer that feeds the vision models, mplfinance plots for people, and
chart rendering over bar windows with Ray Data.

- :mod:`aio_ray.charts.raster` — ``rasterize``, ``rasterize_batch``, ``to_rgb``, ``encode_png``,
  ``PALETTE`` (model input, uint8 palette images, no matplotlib);
- :mod:`aio_ray.charts.overlays` — the one overlay grammar (``sma_N``, ``ema_N``, ``bb_N``,
  ``bb_N_MULT``) and its lines, for training, inference and plots alike;
- :mod:`aio_ray.charts.plot` — ``plot_trades`` (mplfinance PNG with entries and exits);
- :mod:`aio_ray.charts.render` — ``window_starts``, ``render_windows``, ``render_windows_ray``.

Only the rasterizer is imported here; the other modules pull in matplotlib or Ray when used.
"""

from aio_ray.charts.raster import PALETTE, encode_png, rasterize, rasterize_batch, to_rgb

__all__ = ["PALETTE", "encode_png", "rasterize", "rasterize_batch", "to_rgb"]
