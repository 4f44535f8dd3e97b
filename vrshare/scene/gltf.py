"""glTF 2.0 models (loaded with trimesh): every node baked into one mesh, faces
grouped by draw state, textures layered, with coarser levels of detail from
:mod:`.decimate`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require
from .color import srgb_to_linear
from .decimate import MODEL_LOD_FRACTIONS, MODEL_LOD_MIN_TRIANGLES, model_lods
from .gltf_file import read_document, unreadable_images, unsupported
from .model import BLEND_CUTOFF, STATES, Geometry, Mesh, face_groups, make_geometry, make_mesh
from .spec import LOD_DISTANCES, SceneError

log = logging.getLogger(__name__)

MAX_TEXTURE_SIZE = 1024  # px; larger textures are scaled down on load
DEFAULT_ALPHA_CUTOFF = 0.5  # glTF 2.0: a MASK material's alphaCutoff when not given
MODEL_SUFFIXES = (".gltf", ".glb")


def _texture_layers(images: list[Any]) -> np.ndarray:
    """PIL images -> (layers, H, W, 4) float16 linear RGBA at one common size.

    Base-colour and emissive textures are sRGB-encoded (glTF 2.0 section 3.9.2 and
    3.9.3) and decoded here; their alpha is linear."""
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


def load_model(path: Path, name: str, lod_distances: tuple[float, ...] = LOD_DISTANCES,
               *, strict: bool = False, lod_pixels: tuple[float, ...] = ()) -> Mesh:
    """Bake every node of a glTF 2.0 file into one mesh (one draw per material state,
    textures layered), with coarser levels of detail (see :func:`.decimate.decimated`)
    from ``lod_distances`` (m) on, as many as it names; with ``lod_pixels`` (px) each
    is checked against LOD 0 at the size it will be drawn (see :func:`.decimate.model_lods`).

    What the file uses that vrshare does not draw is named in one warning; a texture
    image that cannot be read is a warning naming it (SceneError when ``strict``).
    Raises SceneError naming ``path`` for a missing, unsupported or broken file.
    """
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise SceneError(f"{path}: unsupported model format {path.suffix!r} "
                         f"(expected glTF 2.0: {' or '.join(MODEL_SUFFIXES)})")
    if not path.is_file():
        raise SceneError(f"{path}: model file not found")
    trimesh = require("trimesh", "scene", f"{path}: loading glTF models")
    doc = read_document(path)
    missing = unsupported(doc)
    if missing:
        log.warning("%s: drawn without what vrshare does not support: %s", path,
                    "; ".join(missing))
    for image, why in unreadable_images(doc).items():
        if strict:
            raise SceneError(f"{path}: texture {image} cannot be read: {why} "
                             "([scene] strict = true)")
        log.warning("%s: texture %s cannot be read (%s); drawn without it", path, image, why)
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
    # opaque single-sided, opaque double-sided, blended ...: one run of faces each
    parts.sort(key=lambda p: p.state)
    vertices = np.concatenate([p.vertices for p in parts])
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    faces = np.concatenate([p.faces + o for p, o in zip(parts, offsets, strict=True)])
    if not np.all(np.isfinite(vertices)):
        raise SceneError(f"{path}: vertex data holds NaN or infinite values")
    textures = _texture_layers(list(images.values())) if images else None
    states = np.concatenate([np.full(len(p.faces), p.state_index) for p in parts])
    geom = Geometry(vertices.astype(np.float32), faces.astype(np.uint32).reshape(-1), textures,
                    face_groups(states))
    lods = [geom]
    wanted = min(len(lod_distances), 1 + len(MODEL_LOD_FRACTIONS))
    if wanted > 1 and geom.triangles >= MODEL_LOD_MIN_TRIANGLES:
        lods = model_lods(geom, wanted, path, lod_pixels)
    return make_mesh(name, lods, tuple(lod_distances[: len(lods)]))


@dataclass(frozen=True)
class _Part:
    """One glTF primitive in model space."""

    vertices: np.ndarray  # (V, VERTEX_FLOATS)
    faces: np.ndarray  # (T, 3), counter-clockwise
    state: tuple[bool, bool]  # (blend, double_sided): the draw state, sorted on

    @property
    def state_index(self) -> int:
        return STATES.index(self.state)


def _layer(image: Any, images: dict[bytes, Any]) -> int:
    """The texture layer of ``image``: materials sharing an image share its layer."""
    key = image.mode.encode() + bytes(str(image.size), "ascii") + image.tobytes()
    images.setdefault(key, image)
    return list(images).index(key)


def _model_part(geom: Any, transform: np.ndarray, images: dict[bytes, Any],
                path: Path) -> _Part:
    """One glTF primitive with its material (glTF 2.0 section 3.9): base colour and
    emissive factors and textures, alpha mode, double-sidedness. Without ``NORMAL``
    it is flat-shaded: every triangle gets its own vertices and its face normal, as
    the specification requires (section 3.7.2.1)."""
    positions = geom.vertices @ transform[:3, :3].T + transform[:3, 3]
    faces = np.asarray(geom.faces)
    if np.linalg.det(transform[:3, :3]) < 0:  # a mirroring node flips the winding
        faces = faces[:, ::-1]
    v = len(positions)
    attributes: dict[str, Any] = {"color": np.ones((v, 4))}
    blend = double_sided = False
    visual = geom.visual
    if visual.kind == "vertex":
        attributes["color"] = np.asarray(visual.vertex_colors, np.float64) / 255.0  # linear
    elif visual.kind == "texture" or getattr(visual, "material", None) is not None:
        material = visual.material
        factor = getattr(material, "baseColorFactor", None)
        if factor is not None:
            attributes["color"][:] = np.asarray(factor, np.float64) / 255.0  # kept as uint8
        emissive = getattr(material, "emissiveFactor", None)
        if emissive is not None:  # linear, default black
            attributes["emissive"] = np.tile(np.asarray(emissive, np.float64), (v, 1))
        uv = getattr(visual, "uv", None)
        if uv is not None and len(uv) != v:
            raise SceneError(f"{path}: texture coordinates do not match the vertices")
        for key, texture in (("layer", "baseColorTexture"), ("emissive_layer",
                                                             "emissiveTexture")):
            image = getattr(material, texture, None)
            if image is not None and uv is not None:
                attributes["uv"] = np.asarray(uv, np.float64)
                attributes[key] = np.full(v, float(_layer(image, images)))
        mode = getattr(material, "alphaMode", None) or "OPAQUE"
        if mode == "MASK":
            cutoff = getattr(material, "alphaCutoff", None)
            attributes["cutoff"] = DEFAULT_ALPHA_CUTOFF if cutoff is None else float(cutoff)
        elif mode == "BLEND":
            attributes["cutoff"] = BLEND_CUTOFF
            blend = True
        double_sided = bool(getattr(material, "doubleSided", False))
    if "vertex_normals" in geom._cache:  # given in the file (trimesh caches them)
        normals = geom.vertex_normals @ np.linalg.inv(transform[:3, :3])  # inverse-transpose
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    else:  # flat: split the vertices per face
        corners = faces.reshape(-1)
        p = positions[faces]
        normals = np.repeat(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), 3, axis=0)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-30)
        positions = positions[corners]
        attributes = {k: a if np.ndim(a) == 0 else a[corners] for k, a in attributes.items()}
        faces = np.arange(len(corners)).reshape(-1, 3)
    vertices = make_geometry(positions, normals, faces, **attributes).vertices
    return _Part(vertices, faces, (blend, double_sided))
