"""sRGB <-> linear colour (IEC 61966-2-1): scene files write sRGB, shading is linear."""

from __future__ import annotations

import numpy as np

from .spec import Color


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """The sRGB transfer function inverted (IEC 61966-2-1), values in 0..1."""
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (IEC 61966-2-1), linear 0..1 in, encoded 0..1 out."""
    c = np.clip(np.asarray(c, np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def linear_rgba(color: Color) -> np.ndarray:
    rgba = np.ones(4)
    rgba[:3] = srgb_to_linear(np.asarray(color[:3]))
    if len(color) == 4:
        rgba[3] = color[3]
    return rgba
