"""vrshare: real-time VR frame pipelines whose stages share GPU-resident buffers.

Importing vrshare loads NumPy only; the renderer, targets, CuPy, OpenXR and audio
libraries load in the modules that use them.
"""

from .backend import BackendError, array_module, to_device, to_host
from .config import ConfigError, load_run_file
from .errors import MissingDependency, VrshareError
from .pipeline import (
    Frame,
    FrameLoop,
    FrameStats,
    Pipeline,
    PipelineError,
    Stage,
    StageConfig,
    StageSetupError,
    UnthrottledClock,
    VirtualClock,
    VsyncClock,
)
from .weights import BankError, Snapshot, WeightBank

__version__ = "0.1.0"

__all__ = [
    "BackendError", "BankError", "ConfigError", "Frame", "FrameLoop", "FrameStats",
    "MissingDependency", "Pipeline", "PipelineError", "Snapshot", "Stage", "StageConfig",
    "StageSetupError", "UnthrottledClock", "VirtualClock", "VrshareError", "VsyncClock",
    "WeightBank", "array_module", "load_run_file", "to_device", "to_host",
]
