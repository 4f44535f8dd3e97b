"""The root of vrshare's exceptions, and optional imports that say what to install.

Every error vrshare raises on purpose derives from :class:`VrshareError` (and from
the built-in class it behaves like: a malformed file is also a ``ValueError``, a
missing device also a ``RuntimeError``), so a caller, and the ``vrshare`` command, can
catch one class and print a message that already names the file, key, stage or device.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class VrshareError(Exception):
    """Something vrshare cannot do with what it was given; the message says what and where."""


class MissingDependency(VrshareError, ImportError):
    """An optional library a feature needs is not installed (or cannot be loaded)."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` for ``purpose`` (e.g. "loading glTF models"), or raise
    :class:`MissingDependency` saying which vrshare extra installs it.

    ``OSError`` counts as missing too: libraries such as sounddevice and soundfile
    raise it when their shared C library is absent.
    """
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as exc:
        raise MissingDependency(f"{purpose} needs {module.split('.')[0]}, which is not "
                                f"available ({exc}): pip install 'vrshare[{extra}]'") from exc
