"""Display targets behind one contract (:mod:`vrshare.targets.base`).

One module per target: ``headless`` (EGL, captures), ``window`` (GLFW desktop
mirror with mouse/keyboard head control) and ``openxr`` (a headset through an
OpenXR runtime). Each module defines one :class:`~vrshare.targets.base.Target`
subclass whose ``name`` is the module's name; :func:`load` finds it, importing
the module (and its GL/windowing libraries) only when asked.
"""

from __future__ import annotations

import importlib

from .base import (
    TARGET_NAMES,
    Capabilities,
    DisplaySettings,
    EyeSurface,
    Target,
    TargetClosed,
    TargetError,
)

__all__ = ["TARGET_NAMES", "Capabilities", "DisplaySettings", "EyeSurface", "Target",
           "TargetClosed", "TargetError", "load"]


def load(name: str) -> type[Target]:
    """The Target subclass of module ``vrshare.targets.<name>``.

    Raises TargetError when the name is unknown or the module cannot be imported
    (a missing optional library: the message says what to install).
    """
    if name not in TARGET_NAMES:
        raise TargetError(f"unknown target {name!r}: expected one of {', '.join(TARGET_NAMES)}")
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ImportError as exc:
        raise TargetError(f"target {name!r} is not available: {exc}") from exc
    found = [obj for obj in vars(module).values()
             if isinstance(obj, type) and issubclass(obj, Target) and obj.name == name]
    if len(found) != 1:
        raise TargetError(f"module {module.__name__} must define exactly one Target subclass "
                          f"named {name!r}, found {len(found)}")
    return found[0]
