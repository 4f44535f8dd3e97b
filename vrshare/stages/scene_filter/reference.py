"""Brute-force, per-object reference of the scene filter, in float64 Python.

It states each rule object by object, in the most direct form, and derives the
frustum differently from the stage (planes through the unprojected corners of the
NDC cube rather than sums of rows of ``proj @ view``), so agreement between the two
checks both. It is slow on purpose: tests and the benchmark compare against it.

Alongside each decision it returns how close the decision was (a margin in metres),
so a comparison with the float32 stage can leave out the objects that sit within
rounding of a plane or a switch distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import layout


@dataclass
class Reference:
    """The reference's decisions for one frame, and the outputs they imply."""

    visible: np.ndarray  # (N,) bool, before the budget
    kept: np.ndarray  # (N,) bool, after the budget
    lod: np.ndarray  # (N,) int, LOD state after this frame (updated for kept objects only)
    slot: np.ndarray  # (N,) int, draw slot of the LOD each object would be drawn at
    score: np.ndarray  # (N,) float, importance x r / max(d, r)
    cull_margin: np.ndarray  # (N,) float (m): distance of the visibility decision from its flip
    lod_margin: np.ndarray  # (N,) float (m): distance from the nearest switch distance
    instances: np.ndarray  # (count, 20) float32, kept objects by slot, then by index
    draw_ranges: np.ndarray  # (D, 2) int32


def frustum_planes(view: np.ndarray, proj: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Six inward planes ``(nx, ny, nz, d)``, unit normals, of one eye's frustum (world, m).

    Built from the eight world-space corners of the NDC cube: each face's plane goes
    through three of its corners and is turned to face the frustum's centre.
    """
    inv = np.linalg.inv(np.asarray(proj, float) @ np.asarray(view, float))
    corners = {}
    for x in (-1, 1):
        for y in (-1, 1):
            for z in (-1, 1):
                p = inv @ np.array([x, y, z, 1.0])
                corners[x, y, z] = p[:3] / p[3]
    centre = sum(corners.values()) / 8
    faces = []
    for axis in range(3):
        for side in (-1, 1):
            pts = [c for k, c in corners.items() if k[axis] == side]
            n = np.cross(pts[1] - pts[0], pts[2] - pts[0])
            n /= np.linalg.norm(n)
            d = -float(n @ pts[0])
            if n @ centre + d < 0:
                n, d = -n, -d
            faces.append((float(n[0]), float(n[1]), float(n[2]), d))
    return faces


def eye_position(view: np.ndarray) -> np.ndarray:
    """World position (m) of the eye whose world -> eye matrix is ``view``."""
    return (np.linalg.inv(np.asarray(view, float)) @ np.array([0.0, 0.0, 0.0, 1.0]))[:3]


def reference_filter(model, bounds, mesh, color, importance, lod_draw, lod_distance,
                     eye_view, eye_proj, prev_lod, *, hysteresis: float, budget: int,
                     lod_pixels: tuple[float, ...] = (), eye_height_px: int = 0) -> Reference:
    """One frame of culling, LOD with hysteresis, budget and compaction, object by object.

    ``prev_lod`` (N,) is every object's LOD after the previous frame (0 before the
    first); only the objects drawn this frame update theirs. Arrays are host arrays
    with the layout's shapes. With ``lod_pixels`` an object's switch distances are
    where its bounding sphere's projected diameter ``2 r f / d`` (px, ``f`` the larger
    eye's ``proj[1, 1] * eye_height_px / 2``) equals each size, instead of the table's.
    """
    n = len(bounds)
    planes = [frustum_planes(eye_view[e], eye_proj[e]) for e in range(2)]
    head = (eye_position(eye_view[0]) + eye_position(eye_view[1])) / 2
    hx, hy, hz = (float(v) for v in head)
    levels = [[int(s) for s in row] for row in lod_draw]
    switch = [[float(v) for v in row] for row in lod_distance]
    focal = max(float(p[1][1]) for p in eye_proj) * eye_height_px / 2  # px
    visible = np.zeros(n, bool)
    lod = np.zeros(n, int)
    slot = np.zeros(n, int)
    score = np.zeros(n)
    cull_margin = np.zeros(n)
    lod_margin = np.full(n, np.inf)
    for i in range(n):
        cx, cy, cz, r = (float(v) for v in bounds[i])
        # visible to an eye when the sphere is on the inner side of (or cuts) all six planes
        best = -math.inf
        for eye in planes:
            worst = min(nx * cx + ny * cy + nz * cz + d + r for nx, ny, nz, d in eye)
            best = max(best, worst)
        visible[i] = best >= 0
        cull_margin[i] = abs(best)
        # LOD: step coarser while past the next switch distance by the band, finer while
        # nearer than the current one by the band
        dist = math.sqrt((cx - hx) ** 2 + (cy - hy) ** 2 + (cz - hz) ** 2)
        m = int(mesh[i])
        count = sum(1 for s in levels[m] if s >= 0)
        at = switch[m]  # m: where each LOD starts
        if lod_pixels:
            at = ([0.0] + [2 * r * focal / p for p in lod_pixels]
                  + [math.inf] * len(at))[:len(at)]
        level = int(prev_lod[i])
        while level + 1 < count and dist >= at[level + 1] * (1 + hysteresis):
            level += 1
        while level > 0 and dist < at[level] * (1 - hysteresis):
            level -= 1
        lod[i] = level
        slot[i] = levels[m][level]
        for k in range(1, count):
            for edge in (at[k] * (1 + hysteresis), at[k] * (1 - hysteresis)):
                lod_margin[i] = min(lod_margin[i], abs(dist - edge))
        score[i] = float(importance[i]) * r / max(dist, r, 1e-6)

    ranked = sorted((i for i in range(n) if visible[i]), key=lambda i: (-score[i], i))
    if budget > 0:
        ranked = ranked[:budget]
    kept = np.zeros(n, bool)
    kept[ranked] = True
    lod = np.where(kept, lod, np.asarray(prev_lod, int))

    slots = int(lod_draw.max()) + 1 if lod_draw.size else 0
    draw_ranges = np.zeros((slots, 2), np.int32)
    buckets: list[list[int]] = [[] for _ in range(slots)]
    for i in range(n):
        if kept[i]:
            buckets[slot[i]].append(i)
    rows = []
    for s, members in enumerate(buckets):
        draw_ranges[s] = len(rows), len(members)
        rows += [np.concatenate([np.asarray(model[i]).T.ravel(), color[i]]) for i in members]
    instances = np.array(rows, np.float32).reshape(-1, layout.INSTANCE_FLOATS)
    return Reference(visible, kept, lod, slot, score, cull_margin, lod_margin, instances,
                     draw_ranges)
