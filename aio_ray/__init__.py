"""aio-ray: EUR/USD ticks to ranked, verified TradingView strategies, on Ray."""

__version__ = "0.1.0"
