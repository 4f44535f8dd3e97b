"""The tracking stage: pose sources, 1€ filtering, prediction to the display time,
and the per-eye matrices. See :mod:`.stage` for the per-frame flow."""

from .stage import TrackingSettings, TrackingStage

__all__ = ["TrackingSettings", "TrackingStage"]
