"""Sample-rate conversion of sounds and impulse responses (setup time only).

Conversion is polyphase (``scipy.signal.resample_poly``) by the exact rational
ratio of the two rates. A ratio whose reduced terms exceed :data:`MAX_RATIO_TERM`
(e.g. 44101 Hz -> 48000 Hz, 48000/44101) would need an enormous polyphase filter:
it is refused with an :class:`AudioError` rather than approximated silently.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import require
from .errors import AudioError

MAX_RATIO_TERM = 1024  # largest up/down factor of a conversion (44.1 -> 48 kHz is 160/147)


def check_rate(rate: float, what: str) -> int:
    """``rate`` (Hz) as a positive integer; AudioError naming ``what`` otherwise."""
    if not (math.isfinite(rate) and rate > 0 and float(rate).is_integer()):
        raise AudioError(f"{what}: sample rate {rate!r} Hz is not a positive whole number")
    return int(rate)


def ratio(from_rate: int, to_rate: int, what: str) -> tuple[int, int]:
    """Reduced (up, down) factors from ``from_rate`` to ``to_rate``; AudioError if too fine."""
    g = math.gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g
    if max(up, down) > MAX_RATIO_TERM:
        raise AudioError(
            f"{what}: cannot resample {from_rate} Hz to {to_rate} Hz (ratio {up}/{down}; "
            f"terms above {MAX_RATIO_TERM} are refused): convert the file or change sample_rate"
        )
    return up, down


def resample(x: np.ndarray, from_rate: float, to_rate: int, what: str,
             axis: int = -1) -> np.ndarray:
    """``x`` sampled at ``from_rate`` Hz, converted to ``to_rate`` Hz along ``axis`` (float32)."""
    from_rate = check_rate(from_rate, what)
    if from_rate == to_rate:
        return np.asarray(x, np.float32)
    up, down = ratio(from_rate, to_rate, what)
    resample_poly = require("scipy.signal", "audio", f"{what}: resampling").resample_poly
    return resample_poly(np.asarray(x, np.float64), up, down, axis=axis).astype(np.float32)
