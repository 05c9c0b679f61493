"""Specific exceptions: each names what failed and where (file, hour, row, parameter)."""

from __future__ import annotations

__all__ = [
    "AioError",
    "BacktestError",
    "BarsError",
    "ConfigError",
    "CorruptFileError",
    "FetchError",
    "MissingHourError",
    "SchemaError",
    "SourceError",
    "TimezoneError",
]


class AioError(Exception):
    """Base class of every error aio-ray raises on purpose."""


class ConfigError(AioError):
    """A configuration file or override is invalid."""


class SourceError(AioError):
    """A tick source could not be read. ``source`` names the file, URL or hour."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class CorruptFileError(SourceError):
    """A file exists but its content cannot be decoded (truncated LZMA, bad record length...)."""


class SchemaError(SourceError):
    """A Parquet/CSV file lacks a required column or has one of the wrong type."""


class TimezoneError(SchemaError):
    """A file's times cannot be placed in UTC: offset and naive times mixed, or no such zone."""


class MissingHourError(SourceError):
    """A Dukascopy hour file does not exist at the source (HTTP 404, absent in the mirror)."""


class FetchError(SourceError):
    """An hour could not be fetched after all retries (timeouts, 5xx, connection errors)."""


class BarsError(AioError):
    """Bars could not be built or read (no ticks, unknown timeframe, bad bars directory)."""


class BacktestError(AioError):
    """Invalid backtest input or configuration; the message names the argument and what is
    accepted."""
