"""Whole-scan prediction: masks in the scan's own geometry and hematoma volumes in mL."""

from ichfed.infer.predict import lesion_stats, predict_inputs, segment

__all__ = ["lesion_stats", "predict_inputs", "segment"]
