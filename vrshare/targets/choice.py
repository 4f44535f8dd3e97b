"""Which target a run opens, and why: explicit, then environment, then automatic.

The order: an explicit request (command line or argument), then ``$VRSHARE_TARGET``,
then the run file's ``[display] target``, then automatic: OpenXR when a runtime
answers, else a window when a display exists, else headless. The reason is returned
with the choice, for the run's log.
"""

from __future__ import annotations

import importlib.util
import os

from ..config import ConfigError
from .base import TARGET_NAMES

ENV_VAR = "VRSHARE_TARGET"


def window_unavailable() -> str | None:
    """Why no desktop window can open here (None: one can)."""
    if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display ($DISPLAY and $WAYLAND_DISPLAY are unset)"
    try:
        import glfw
    except ImportError as exc:
        return f"glfw is not importable: {exc}"
    if not glfw.init():
        return "GLFW could not initialise the display"
    return None


def openxr_unavailable() -> str | None:
    """Why no OpenXR runtime can be used here (None: one answers)."""
    if importlib.util.find_spec(f"{__package__}.openxr") is None:
        return "this build has no OpenXR target"
    try:
        from .openxr import probe
    except ImportError as exc:
        return f"OpenXR support is not importable: {exc}"
    info = probe()
    return None if info.get("available") else str(info.get("error", "no runtime answered"))


def choose_target(requested: str = "auto", configured: str = "auto") -> tuple[str, str]:
    """The target to open and why (see the module docstring for the order)."""
    env = os.environ.get(ENV_VAR, "").strip()
    for value, why in ((requested, "requested"), (env, f"${ENV_VAR}"),
                       (configured, "the run file's [display] target")):
        if value and value != "auto":
            if value not in TARGET_NAMES:
                raise ConfigError(f"{why}: unknown target {value!r} "
                                  f"(expected auto or one of {', '.join(TARGET_NAMES)})")
            return value, why
    reason = openxr_unavailable()
    if reason is None:
        return "openxr", "automatic: an OpenXR runtime answered"
    window = window_unavailable()
    if window is None:
        return "window", f"automatic: {reason}; a display exists"
    return "headless", f"automatic: {reason}; {window}"
