"""Tick sources, validation and the tick dataset."""
