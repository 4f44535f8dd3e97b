"""Stages, their schedule, frame clocks, the frame loop and its statistics."""

from .clock import CLOCK_NAMES, Clock, UnthrottledClock, VirtualClock, VsyncClock, make_clock
from .loop import FrameLoop, Pipeline, StageSetupError
from .registry import available, resolve
from .schedule import PipelineError, schedule
from .stage import (
    DEFAULT_FRAME_HZ,
    BufferMismatch,
    Frame,
    NoSettings,
    Stage,
    StageConfig,
)
from .stats import FrameStats, StageFault, TrackSummary

__all__ = [
    "CLOCK_NAMES", "DEFAULT_FRAME_HZ", "BufferMismatch", "Clock", "Frame", "FrameLoop",
    "FrameStats", "NoSettings", "Pipeline", "PipelineError", "Stage", "StageConfig", "StageFault",
    "StageSetupError", "TrackSummary", "UnthrottledClock", "VirtualClock", "VsyncClock",
    "available", "make_clock", "resolve", "schedule",
]
