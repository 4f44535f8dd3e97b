"""Marker planes for scenes: a board's image on a textured glTF quad.

A scene places the quad like any model (``[[scene.model]]`` + ``[[scene.object]]``), so
scene code needs nothing of markers. The quad lies in its XY plane, front facing +Z,
centred on the board's printed area (the frame :class:`~.markers.BoardSpec` places), so
an object at the board's ``position`` / ``rotation_deg`` shows exactly the layout's
corners. Its material is emissive white over a black base colour, so lights do not
change the marker's contrast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vrshare.errors import require

from .markers import BoardSpec, board_image

QUIET_ZONE = 0.5  # white margin around the board, in marker sides (detection needs one)


def write_marker_quad(path: Path, spec: BoardSpec, dict_name: str,
                      px_per_m: float = 2000.0) -> Path:
    """Write ``spec``'s board as a textured glTF binary quad (m) to ``path``; returns it."""
    trimesh = require("trimesh", "optical", "writing marker quads")
    image_mod = require("PIL.Image", "optical", "writing marker quads")
    margin = QUIET_ZONE * spec.marker_m
    grey = board_image(spec, dict_name, px_per_m, margin)
    w, h = spec.extent()
    hw, hh = w / 2 + margin, h / 2 + margin
    vertices = np.array([[-hw, -hh, 0.0], [hw, -hh, 0.0], [hw, hh, 0.0], [-hw, hh, 0.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # glTF flips v on export
    texture = image_mod.fromarray(np.repeat(grey[..., None], 3, axis=2))
    material = trimesh.visual.material.PBRMaterial(
        baseColorFactor=[0, 0, 0, 255], emissiveTexture=texture, emissiveFactor=[1.0, 1.0, 1.0],
        metallicFactor=0.0, roughnessFactor=1.0, doubleSided=False)
    mesh = trimesh.Trimesh(vertices, faces, process=False,
                           visual=trimesh.visual.TextureVisuals(uv=uv, material=material))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path, file_type="glb")
    return path
