"""glTF 2.0 models (loaded with trimesh): every node baked into one mesh, textures
layered, with coarser levels of detail from :mod:`.decimate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require
from .color import srgb_to_linear
from .decimate import MODEL_LOD_FRACTIONS, MODEL_LOD_MIN_TRIANGLES, model_lods
from .model import Geometry, Mesh, make_geometry, make_mesh
from .spec import LOD_DISTANCES, SceneError

MAX_TEXTURE_SIZE = 1024  # px; larger base-colour textures are scaled down on load
MODEL_SUFFIXES = (".gltf", ".glb")


def _texture_layers(images: list[Any]) -> np.ndarray:
    """PIL images -> (layers, H, W, 4) float16 linear RGBA at one common size."""
    Image = require("PIL.Image", "scene", "decoding glTF textures")  # noqa: N806

    w = min(max(im.width for im in images), MAX_TEXTURE_SIZE)
    h = min(max(im.height for im in images), MAX_TEXTURE_SIZE)
    layers = np.empty((len(images), h, w, 4), np.float16)
    for i, im in enumerate(images):
        rgba = np.asarray(im.convert("RGBA").resize((w, h), Image.Resampling.BILINEAR))
        rgba = rgba[::-1].astype(np.float64) / 255.0  # GL rows run bottom-up
        rgba[..., :3] = srgb_to_linear(rgba[..., :3])
        layers[i] = rgba
    return layers


def load_model(path: Path, name: str,
               lod_distances: tuple[float, ...] = LOD_DISTANCES) -> Mesh:
    """Bake every node of a glTF 2.0 file into one mesh (one draw, textures layered),
    with coarser levels of detail (see :func:`.decimate.decimated`) from
    ``lod_distances`` (m) on, as many as it names.

    Raises SceneError naming ``path`` for a missing, unsupported or broken file.
    """
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise SceneError(f"{path}: unsupported model format {path.suffix!r} "
                         f"(expected glTF 2.0: {' or '.join(MODEL_SUFFIXES)})")
    if not path.is_file():
        raise SceneError(f"{path}: model file not found")
    trimesh = require("trimesh", "scene", f"{path}: loading glTF models")
    try:
        loaded = trimesh.load(path, force="scene", process=False)
        nodes = list(loaded.graph.nodes_geometry)
    except Exception as exc:  # trimesh raises many types for broken files
        raise SceneError(f"{path}: not a readable glTF 2.0 file: {type(exc).__name__}: {exc}") \
            from exc

    images: dict[bytes, Any] = {}  # texture content -> image; its order gives the layer
    parts = []
    for node in nodes:
        transform, geom_name = loaded.graph[node]
        geom = loaded.geometry[geom_name]
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue  # points and lines are not drawn
        parts.append(_model_part(geom, transform, images, path))
    if not parts:
        raise SceneError(f"{path}: the file holds no triangle meshes")
    vertices = np.concatenate([p[0] for p in parts])
    offsets = np.cumsum([0] + [len(p[0]) for p in parts[:-1]])
    faces = np.concatenate([p[1] + o for p, o in zip(parts, offsets, strict=True)])
    if not np.all(np.isfinite(vertices)):
        raise SceneError(f"{path}: vertex data holds NaN or infinite values")
    textures = _texture_layers(list(images.values())) if images else None
    geom = Geometry(vertices.astype(np.float32), faces.astype(np.uint32).reshape(-1), textures)
    lods = [geom]
    wanted = min(len(lod_distances), 1 + len(MODEL_LOD_FRACTIONS))
    if wanted > 1 and geom.triangles >= MODEL_LOD_MIN_TRIANGLES:
        lods = model_lods(geom, wanted, path)
    return make_mesh(name, lods, tuple(lod_distances[: len(lods)]))


def _model_part(geom: Any, transform: np.ndarray, images: dict[bytes, Any],
                path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One glTF primitive in model space: (V, VERTEX_FLOATS) vertices and (T, 3) faces."""
    positions = geom.vertices @ transform[:3, :3].T + transform[:3, 3]
    normal_matrix = np.linalg.inv(transform[:3, :3]).T
    normals = geom.vertex_normals @ normal_matrix.T  # trimesh computes them when missing
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    faces = np.asarray(geom.faces)
    if np.linalg.det(transform[:3, :3]) < 0:  # a mirroring node flips the winding
        faces = faces[:, ::-1]
    v = len(positions)
    color = np.ones((v, 4))
    uv = None
    layer = None
    visual = geom.visual
    if visual.kind == "vertex":
        color = np.asarray(visual.vertex_colors, np.float64) / 255.0  # glTF COLOR_0 is linear
    elif visual.kind == "texture" or getattr(visual, "material", None) is not None:
        material = visual.material
        factor = getattr(material, "baseColorFactor", None)
        if factor is not None:
            color[:] = np.asarray(factor, np.float64) / 255.0  # trimesh keeps them as uint8
        image = getattr(material, "baseColorTexture", None)
        if image is not None and getattr(visual, "uv", None) is not None:
            uv = np.asarray(visual.uv, np.float64)
            if len(uv) != v:
                raise SceneError(f"{path}: texture coordinates do not match the vertices")
            key = image.mode.encode() + bytes(str(image.size), "ascii") + image.tobytes()
            images.setdefault(key, image)  # materials sharing an image share its layer
            layer = np.full(v, float(list(images).index(key)))
    return (make_geometry(positions, normals, faces, uv=uv, color=color, layer=layer).vertices,
            faces)
