"""How much a coarser level of detail changes a model's picture at the size it is
drawn: both levels drawn in software (NumPy, no GL: models load before any display
opens) from eight directions at that size, and compared pixel by pixel.

Each picture is a shaded silhouette: orthographic along a direction to a corner of
the cube around the model, the bounding sphere's diameter ``size`` pixels across,
each pixel the nearest triangle's flat shade (a fixed light from the viewer's upper
left, on the face normal turned toward the viewer), 0 where nothing is drawn. The
difference of two pictures is the mean absolute difference of shades over the pixels
either one covers, 0 (the same) to 1 (nothing alike); a level's difference is that of
its worst direction, so a part lost on one side (a truck's wheel) counts in full.
"""

from __future__ import annotations

import itertools

import numpy as np

# directions the model is looked at from: the eight corners of a cube around it
DIRECTIONS = np.array(list(itertools.product((-1.0, 1.0), repeat=3))) / np.sqrt(3.0)
LIGHT = np.array([-0.4, 0.5, 0.77])  # toward the light, in view axes (right, up, back)
LIGHT /= np.linalg.norm(LIGHT)
AMBIENT = 0.25  # shade of a face turned away from the light


def view_axes(direction: np.ndarray) -> np.ndarray:
    """(3, 3) rows right, up, back (toward the viewer) for a view from ``direction``."""
    back = direction / np.linalg.norm(direction)
    right = np.cross([0.0, 1.0, 0.0], back)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(back, right), back])


def picture(positions: np.ndarray, faces: np.ndarray, axes: np.ndarray, center: np.ndarray,
            radius: float, size: int) -> np.ndarray:
    """(size, size) shades in [AMBIENT, 1] (0: empty) of triangles ``faces`` (T, 3)
    over ``positions`` (V, 3, m) seen along ``axes`` (see :func:`view_axes`), the
    sphere (``center``, ``radius``) filling the picture; pixel centres are sampled."""
    image = np.zeros(size * size)
    p = (positions - center) @ axes.T  # x right, y up, z toward the viewer (m)
    scale = size / (2 * radius)
    xy = np.c_[p[:, 0] * scale + size / 2, size / 2 - p[:, 1] * scale]  # px, rows down
    tri, z = xy[faces], p[faces, 2]
    normal = np.cross(p[faces[:, 1]] - p[faces[:, 0]], p[faces[:, 2]] - p[faces[:, 0]])
    length = np.linalg.norm(normal, axis=1)
    normal = normal / np.maximum(length, 1e-30)[:, None] * np.where(normal[:, 2] < 0, -1, 1)[
        :, None]
    shade = AMBIENT + (1 - AMBIENT) * np.maximum(normal @ LIGHT, 0.0)
    lo = np.clip(np.ceil(tri.min(axis=1) - 0.5), 0, size).astype(np.int64)  # (T, 2)
    hi = np.clip(np.floor(tri.max(axis=1) - 0.5), -1, size - 1).astype(np.int64)
    extent = np.maximum(hi - lo + 1, 0)
    count = extent[:, 0] * extent[:, 1]
    ids = np.repeat(np.arange(len(faces)), count)  # a candidate pixel per row
    if not ids.size:
        return image.reshape(size, size)
    local = np.arange(ids.size) - np.repeat(np.cumsum(count) - count, count)
    px = lo[ids, 0] + local % extent[ids, 0]
    py = lo[ids, 1] + local // extent[ids, 0]
    a, b, c = tri[ids, 0], tri[ids, 1], tri[ids, 2]
    q = np.c_[px + 0.5, py + 0.5]

    def edge(u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        return (v[:, 0] - u[:, 0]) * (w[:, 1] - u[:, 1]) - (v[:, 1] - u[:, 1]) * (w[:, 0] - u[:, 0])

    area = edge(a, b, c)
    w0, w1, w2 = edge(b, c, q), edge(c, a, q), edge(a, b, q)
    sign = np.where(area < 0, -1.0, 1.0)
    inside = (area != 0) & (w0 * sign >= 0) & (w1 * sign >= 0) & (w2 * sign >= 0)
    ids, px, py = ids[inside], px[inside], py[inside]
    bary = np.c_[w0[inside], w1[inside], w2[inside]] / area[inside][:, None]
    depth = np.einsum("ij,ij->i", bary, z[ids])
    pixel = py * size + px
    order = np.lexsort((-depth, pixel))  # per pixel, the nearest first
    pixel, ids = pixel[order], ids[order]
    first = np.r_[True, pixel[1:] != pixel[:-1]]
    image[pixel[first]] = shade[ids[first]]
    return image.reshape(size, size)


def picture_difference(fine: tuple[np.ndarray, np.ndarray],
                       coarse: tuple[np.ndarray, np.ndarray], size: int) -> float:
    """The worst direction's mean absolute shade difference (0..1) over the covered
    pixels of two levels, each ``(positions (V, 3), faces (T, 3))``, drawn ``size``
    pixels across the fine level's bounding sphere."""
    positions = fine[0]
    center = (positions.min(axis=0) + positions.max(axis=0)) / 2
    radius = float(np.linalg.norm(positions - center, axis=1).max()) or 1.0
    worst = 0.0
    for direction in DIRECTIONS:
        axes = view_axes(direction)
        a, b = (picture(p, f, axes, center, radius, size) for p, f in (fine, coarse))
        covered = (a > 0) | (b > 0)
        if covered.any():
            worst = max(worst, float(np.abs(a - b)[covered].mean()))
    return worst
