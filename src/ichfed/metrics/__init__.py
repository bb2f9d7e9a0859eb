"""Agreement between a predicted and a true mask: overlap, volumes, boundaries."""

from ichfed.metrics.overlap import dice

__all__ = ["dice"]
