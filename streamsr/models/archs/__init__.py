"""Architectures. Each import registers its arch; no directory scanning."""

from . import safdn  # noqa: F401  (registers "safdn")
