"""The audio stage's one exception type."""

from __future__ import annotations

from ...errors import VrshareError


class AudioError(VrshareError, ValueError):
    """Audio input or output cannot be used; the message names the file, source or device."""
