"""Metrics and structured logs: the lowest layer, so every other layer can report into it."""
