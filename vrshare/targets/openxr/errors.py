"""pyopenxr, imported on first use, and its failures as one exception hierarchy.

Every native failure goes through :func:`call`, which turns pyopenxr's exceptions into
subclasses of :class:`OpenXRError`; qualified *success* codes (frame discarded, session
loss pending, not focused) are states, not errors, and are handled as such.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any

from ..base import TargetError

log = logging.getLogger(__name__)


class OpenXRError(TargetError):
    """An OpenXR call failed. ``result`` is the XrResult name (``"XR_ERROR_..."``) or None."""

    def __init__(self, message: str, result: str | None = None) -> None:
        super().__init__(message)
        self.result = result


class RuntimeUnavailable(OpenXRError):
    """No OpenXR runtime answers (none installed, a broken manifest or library, or pyopenxr
    missing)."""


class HeadsetUnavailable(OpenXRError):
    """The runtime answers but has no head-mounted display to offer now."""


class SessionLost(OpenXRError):
    """The runtime lost the session or the instance (``XR_ERROR_SESSION_LOST`` /
    ``XR_ERROR_INSTANCE_LOST``)."""


class LossPending(OpenXRError):
    """``XR_SESSION_LOSS_PENDING``: a success code saying the session is about to be lost;
    :class:`~vrshare.targets.openxr.session.XrSession` turns it into the LOSS_PENDING
    state."""


@functools.cache
def _xr() -> Any:
    """pyopenxr, imported on first use (it sets process-wide loader and PyOpenGL state).

    Without an X display PyOpenGL must use EGL, and pyopenxr imports PyOpenGL at once,
    so the platform is chosen first (an explicit PYOPENGL_PLATFORM wins).
    """
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    try:
        import xr
    except (ImportError, OSError) as exc:
        raise RuntimeUnavailable(f"pyopenxr is not importable: {exc} (pip install pyopenxr; its "
                                 "loader needs glibc >= 2.32)") from exc
    return xr


_QUALIFIED_OK = ("FrameDiscarded", "SessionNotFocused", "SpaceBoundsUnavailable",
                 "EventUnavailable", "TimeoutExpired")
_CLASS_OF = {
    "RuntimeUnavailableError": RuntimeUnavailable, "InitializationFailedError": RuntimeUnavailable,
    "FormFactorUnavailableError": HeadsetUnavailable, "SessionLostError": SessionLost,
    "InstanceLostError": SessionLost, "SessionLossPending": LossPending,
}


def call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, a pyopenxr function, with its failures as :class:`OpenXRError`.

    Returns None for the qualified success codes that need no handling beyond knowing
    the call completed (frame discarded, not focused, no event, no bounds, timeout);
    raises :class:`LossPending` for ``XR_SESSION_LOSS_PENDING``.
    """
    xr = _xr()
    try:
        return fn(*args, **kwargs)
    except xr.XrException as exc:
        kind = type(exc).__name__
        if kind in _QUALIFIED_OK:
            log.debug("%s: %s", what, kind)
            return None
        enum = exc.get_result_enum() if isinstance(exc, xr.ResultException) else None
        result = f"XR_{enum.name}" if enum is not None else None
        cls = _CLASS_OF.get(kind, OpenXRError)
        raise cls(f"{what} failed: {result or kind}: {exc}", result) from exc
