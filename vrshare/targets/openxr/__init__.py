"""The OpenXR target: a headset through any conformant OpenXR runtime (pyopenxr).

* :mod:`.errors`: pyopenxr imported on first use, and :func:`call`, which turns every
  native failure into one hierarchy rooted at :class:`OpenXRError`; qualified
  *success* codes (frame discarded, session loss pending, not focused) are states, not
  errors, and are handled as such.
* :mod:`.session`: :class:`XrSession`, one run's OpenXR objects and its state machine;
  :meth:`XrSession.frames` yields one :class:`XrFrame` per ``xrWaitFrame`` +
  ``xrBeginFrame``. It uses :mod:`.controllers` (hand grip poses) and
  :mod:`.swapchains` (per-eye images as ModernGL framebuffers, the projection layer).
* :mod:`.gl`: the GL context's graphics binding (EGL or GLX) and keeping it current.
* :mod:`.target`: :class:`OpenXRTarget`, the session behind the display-target
  contract (:mod:`vrshare.targets.base`).
* :mod:`.runtime`: :func:`probe` asks, in a child process with a time limit, whether a
  runtime answers.
"""

from __future__ import annotations

from .errors import (
    HeadsetUnavailable,
    LossPending,
    OpenXRError,
    RuntimeUnavailable,
    SessionLost,
    call,
)
from .runtime import probe, probe_here, runtime_extensions
from .session import XrFrame, XrSession
from .target import OpenXRTarget

__all__ = ["HeadsetUnavailable", "LossPending", "OpenXRError", "OpenXRTarget",
           "RuntimeUnavailable", "SessionLost", "XrFrame", "XrSession", "call", "probe",
           "probe_here", "runtime_extensions"]
