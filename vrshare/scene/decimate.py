"""Coarser levels of detail of a model by quadric edge-collapse decimation
(fast-simplification); without it a model keeps one level, with a logged warning."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require
from .lod_quality import picture_difference
from .model import Geometry, face_groups, face_states

log = logging.getLogger(__name__)

MODEL_LOD_FRACTIONS = (0.5, 0.2)  # glTF LODs 1, 2 keep about this share of LOD 0's triangles
# models with fewer triangles keep one level: decimating them saves little, and
# collapsing a few large faces destroys the shape (a box has 12)
MODEL_LOD_MIN_TRIANGLES = 256
# a level whose picture differs from LOD 0's by more than this at its switching size
# (mean shade difference over the covered pixels, worst of eight directions; see
# lod_quality) is dropped, with the coarser ones: a sphere's 50 % and 20 % levels
# differ by 0.02-0.03, a truck that lost its wheels by 0.1
MAX_PICTURE_DIFFERENCE = 0.05
MIN_PART_TRIANGLES = 32  # connected parts with fewer triangles are not decimated


def model_lods(geom: Geometry, wanted: int, path: Path,
               sizes: tuple[float, ...] = ()) -> list[Geometry]:
    """``geom`` and up to ``wanted - 1`` decimated copies (each at least 20 % smaller
    than the one before); just ``geom``, logged, without fast-simplification.

    With ``sizes`` (px, where LODs 1, 2, ... are drawn) each copy is drawn in software
    beside LOD 0 at its size (:func:`.lod_quality.picture_difference`); the first that
    differs by more than MAX_PICTURE_DIFFERENCE is dropped with the coarser ones, and
    the log says why."""
    try:
        import fast_simplification
    except ImportError:
        log.warning("%s: one level of detail (%d triangles): decimating glTF models needs "
                    "fast-simplification: pip install 'vrshare[scene]'", path, geom.triangles)
        return [geom]
    lods = [geom]
    fine = _shape(geom)
    for level, fraction in enumerate(MODEL_LOD_FRACTIONS[: wanted - 1], start=1):
        coarse = decimated(fast_simplification, geom, fraction)
        if coarse.triangles > 0.8 * lods[-1].triangles or coarse.triangles == 0:
            break
        if level <= len(sizes):
            size = max(int(round(sizes[level - 1])), 1)
            difference = picture_difference(fine, _shape(coarse), size)
            if difference > MAX_PICTURE_DIFFERENCE:
                log.warning("%s: level of detail %d (%d of %d triangles) and coarser ones "
                            "dropped: at its switching size (%d px) its picture differs from "
                            "LOD 0's by %.3f (limit %.3f)", path, level, coarse.triangles,
                            geom.triangles, size, difference, MAX_PICTURE_DIFFERENCE)
                break
        lods.append(coarse)
    return lods


def _part_collapses(fast_simplification: Any, points: np.ndarray, faces: np.ndarray,
                    fraction: float) -> np.ndarray:
    """(C, 2) edge collapses (survivor, removed) taking each connected part of the
    welded mesh to about ``fraction`` of its triangles, border vertices kept.

    Part by part, not the whole at once: the quadric error of collapsing a small part
    is small in absolute terms, so one global target spends it first and a truck
    loses its wheels; parts under MIN_PART_TRIANGLES are kept whole (a 12-triangle
    box has nothing to give)."""
    csgraph = require("scipy.sparse.csgraph", "scene", "decimating glTF models by part")
    sparse = require("scipy.sparse", "scene", "decimating glTF models by part")
    edges = np.r_[faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]
    graph = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])),
                              shape=(len(points),) * 2)
    _, label = csgraph.connected_components(graph, directed=False)
    part = label[faces[:, 0]]
    found = [np.zeros((0, 2), np.int64)]
    for k in np.flatnonzero(np.bincount(part) >= MIN_PART_TRIANGLES):
        used, local = np.unique(faces[part == k], return_inverse=True)
        _, _, collapses = fast_simplification.simplify(
            points[used], local.reshape(-1, 3), target_reduction=1.0 - fraction,
            return_collapses=True, preserve_border=True)
        found.append(used[np.asarray(collapses, np.int64).reshape(-1, 2)])
    return np.concatenate(found)


def _shape(geom: Geometry) -> tuple[np.ndarray, np.ndarray]:
    return geom.vertices[:, :3].astype(np.float64), geom.indices.reshape(-1, 3)


def decimated(fast_simplification: Any, geom: Geometry, fraction: float) -> Geometry:
    """Quadric edge-collapse decimation to about ``fraction`` of the triangles.

    Each connected part is decimated to the fraction on its own (see
    :func:`_part_collapses`). Vertices are welded by position and texture coordinates
    first, so normal seams
    (a corner with two normals) do not become holes, and the edges of texture seams
    and open borders are kept in place. Edge collapses only merge vertices
    into survivors and move the survivors, so every remaining triangle is an original
    one whose corners now stand on survivors (the collapse replay maps each original
    vertex to its survivor's new position). A corner takes the attributes (normal,
    texture coordinates, colour, layer) of the survivor's vertex nearest to its own,
    which keeps seams apart and lets corners on one survivor share a vertex.
    Remaining triangles keep their order, so each keeps its face group.
    """
    v = geom.vertices
    faces = geom.indices.reshape(-1, 3)
    # weld corners that share position and texture coordinates: a UV seam stays two
    # rows of vertices, i.e. a border, and borders are kept (no edge touching one
    # collapses), so seams do not stretch the texture and open edges do not shrink
    keys, weld = np.unique(v[:, [0, 1, 2, 6, 7]].astype(np.float64), axis=0,
                           return_inverse=True)
    weld = weld.reshape(-1)
    points = keys[:, :3]
    welded = weld[faces]
    collapses = _part_collapses(fast_simplification, points, welded, fraction)
    moved, _, to_new = fast_simplification.replay_simplification(points, welded, collapses)
    corners = to_new[welded]
    keep = ((corners[:, 0] != corners[:, 1]) & (corners[:, 1] != corners[:, 2])
            & (corners[:, 2] != corners[:, 0]))
    original = faces[keep].reshape(-1)  # vertex of each remaining corner

    survivor = np.full(len(moved), -1, np.int64)  # new vertex -> its welded survivor
    alive = np.ones(len(points), bool)
    alive[np.asarray(collapses, np.int64).reshape(-1, 2)[:, 1]] = False
    survivor[to_new[alive]] = np.flatnonzero(alive)
    # the vertices at each welded position, padded: (positions, most per position)
    by_weld = np.argsort(weld, kind="stable")
    count = np.bincount(weld, minlength=len(points))
    start = np.cumsum(count) - count
    table = np.full((len(points), count.max()), -1, np.int64)
    rank = np.arange(len(weld)) - start[weld[by_weld]]
    table[weld[by_weld], rank] = by_weld
    candidates = table[survivor[to_new[weld[original]]]]  # (corners, most per position)
    attributes = v[:, 3:].astype(np.float64)
    distance = np.where(candidates >= 0, 0.0, np.inf)
    for k in range(candidates.shape[1]):
        valid = candidates[:, k] >= 0
        diff = attributes[candidates[valid, k]] - attributes[original[valid]]
        distance[valid, k] = np.einsum("ij,ij->i", diff, diff)
    chosen = candidates[np.arange(len(original)), np.argmin(distance, axis=1)]
    used, new_indices = np.unique(chosen, return_inverse=True)
    vertices = v[used].copy()
    vertices[:, :3] = moved[to_new[weld[used]]]
    return Geometry(vertices, new_indices.reshape(-1).astype(np.uint32), geom.textures,
                    face_groups(face_states(geom)[keep]))
