"""Which eye surfaces share a framebuffer, and so how each is cleared before drawing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..targets.base import EyeSurface


def clear_modes(surfaces: Sequence[EyeSurface]) -> list[str]:
    """How to clear before drawing each surface: ``"full"`` (the whole framebuffer),
    ``"viewport"`` (its viewport only) or ``"none"`` (already cleared this frame).

    Surfaces that tile their framebuffer exactly (both eyes side by side, or one eye
    per swapchain image), in one sRGB mode, clear it once in full: on llvmpipe one full
    clear is cheaper than a scissored clear per eye, which writes every pixel.
    """
    groups: dict[int, list[int]] = {}
    for i, surface in enumerate(surfaces):
        groups.setdefault(id(surface.framebuffer), []).append(i)
    modes = ["viewport"] * len(surfaces)
    for members in groups.values():
        if _tiles([surfaces[i] for i in members]):
            modes[members[0]] = "full"
            for i in members[1:]:
                modes[i] = "none"
    return modes


def _tiles(surfaces: list[EyeSurface]) -> bool:
    """Whether the viewports cover their framebuffer without overlap, in one sRGB mode."""
    width, height = surfaces[0].framebuffer.size
    rects = [s.viewport for s in surfaces]
    if len({s.encode_srgb for s in surfaces}) != 1:
        return False
    if any(x < 0 or y < 0 or x + w > width or y + h > height for x, y, w, h in rects):
        return False
    if sum(w * h for _, _, w, h in rects) != width * height:
        return False
    return not any(ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah
                   for i, (ax, ay, aw, ah) in enumerate(rects)
                   for bx, by, bw, bh in rects[i + 1:])
