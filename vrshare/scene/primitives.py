"""Generated meshes: boxes (flat-shaded), planes and ellipsoids (icosphere LODs)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import require
from .model import Geometry, Mesh, make_geometry, make_mesh
from .spec import PrimitiveSpec, SceneError

SPHERE_SUBDIVISIONS = (3, 2, 1)  # icosphere levels of detail: 1280, 320, 80 triangles


def _flat(mesh: Any) -> Geometry:
    """Flat-shaded geometry: every face gets its own vertices and the face normal."""
    positions = mesh.vertices[mesh.faces].reshape(-1, 3)
    normals = np.repeat(mesh.face_normals, 3, axis=0)
    faces = np.arange(len(positions)).reshape(-1, 3)
    return make_geometry(positions, normals, faces)


def primitive_mesh(spec: PrimitiveSpec, lod_distances: tuple[float, ...], where: str) -> Mesh:
    """The primitive's mesh, white: its colour goes to the objects (see load_scene)."""
    trimesh = require("trimesh", "scene", f"{where}: making a {spec.shape}")

    size = np.asarray(spec.size, np.float64)
    if np.any(size < 0) or (spec.shape != "plane" and np.any(size == 0)):
        raise SceneError(f"{where} 'size': extents must be positive (m), got {spec.size}")
    if spec.shape == "box":
        lods = [_flat(trimesh.creation.box(extents=size))]
    elif spec.shape == "plane":  # XZ square facing +Y
        w, d = size[0] / 2, size[2] / 2
        p = np.array([[-w, 0, d], [w, 0, d], [w, 0, -d], [-w, 0, -d]])
        uv = np.array([[0.0, 0], [1, 0], [1, 1], [0, 1]])
        lods = [make_geometry(p, np.tile([0.0, 1, 0], (4, 1)), np.array([[0, 1, 2], [0, 2, 3]]),
                          uv=uv)]
    else:
        lods = []
        for sub in SPHERE_SUBDIVISIONS:
            s = trimesh.creation.icosphere(subdivisions=sub, radius=1.0)
            normals = s.vertices / size * 2  # ellipsoid normal ~ p / r^2 on the unit sphere
            normals /= np.linalg.norm(normals, axis=1, keepdims=True)
            lods.append(make_geometry(s.vertices * size / 2, normals, s.faces))
    distances = tuple(lod_distances[: len(lods)])
    if len(distances) < len(lods):
        raise SceneError(f"{where}: [scene] lod_distances gives {len(lod_distances)} distances, "
                         f"the {spec.shape} has {len(lods)} levels of detail")
    return make_mesh(spec.name, lods, distances)
