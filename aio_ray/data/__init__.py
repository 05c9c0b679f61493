"""Tick and bar-file sources, validation and the tick dataset (stage ``data``)."""

__all__: list[str] = []
