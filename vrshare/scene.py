"""Scenes: the ``[scene]`` table of a run file -> meshes, objects, light, sounds.

A scene names meshes (glTF 2.0 models loaded with trimesh, and primitives), places
objects that use them, and lists one directional light, ambient light and the
audio sources::

    [scene]
    background = [0.05, 0.05, 0.07]          # sRGB clear colour

    lod_distances = [0.0, 4.0, 10.0]         # m: where LODs 1, 2 of spheres and models start

    [[scene.model]]                          # a glTF 2.0 file (.gltf or .glb)
    name = "chair"
    file = "assets/chair.glb"                # relative to the run file

    [[scene.primitive]]                      # box, sphere or plane, sizes in metres
    name = "ball"
    shape = "sphere"
    size = [0.3, 0.3, 0.3]
    color = [0.9, 0.3, 0.2]                  # sRGB 0..1, multiplied into every object

    [[scene.object]]
    mesh = "ball"
    position = [0.0, 1.0, -2.0]              # metres
    rotation = [0.0, 45.0, 0.0]              # degrees about X, then Y, then Z (world axes)
    grid = [10, 1, 10]                       # optional: repeat on a grid ...
    spacing = [0.5, 0.0, 0.5]                # ... this far apart (m)
    motion = { spin_deg_s = 90.0 }           # optional: spin / orbit / bob

    [[scene.light]]
    type = "directional"                     # or "ambient"
    direction = [-0.3, -1.0, -0.4]           # direction the light travels

    [[scene.sound]]
    name = "radio"
    object = "speaker"                       # follow that object (offset: position)
    signal = "tone"                          # "file", "tone", "noise" or "chirp"

Colours written in a scene file are sRGB (as a colour picker shows them) and are
converted to linear once here; glTF base-colour factors are linear, as the glTF
spec defines them. A primitive's colour is multiplied into the colour of each object
that uses it (a per-instance value), not into its vertices, so meshes are compared by
geometry alone: meshes whose levels of detail hold the same bytes (vertices, indices,
textures), whatever their names, share one mesh table entry, are uploaded once and
drawn instanced. Moving objects are placed after the static ones
in the object table so that the motion stage rewrites one contiguous slice.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .config import ConfigError, build

log = logging.getLogger(__name__)

Vec3 = tuple[float, float, float]
Color = tuple[float, float, float] | tuple[float, float, float, float]

VERTEX_FLOATS = 13  # position (3, m), normal (3), uv (2), linear RGBA (4), texture layer (1)
MAX_TEXTURE_SIZE = 1024  # px; larger base-colour textures are scaled down on load
MODEL_SUFFIXES = (".gltf", ".glb")
SPHERE_SUBDIVISIONS = (3, 2, 1)  # icosphere levels of detail: 1280, 320, 80 triangles
LOD_DISTANCES = (0.0, 4.0, 10.0)  # m, default distances from which LODs 0, 1, 2 are used
MODEL_LOD_FRACTIONS = (0.5, 0.2)  # glTF LODs 1, 2 keep about this share of LOD 0's triangles
# models with fewer triangles keep one level: decimating them saves little, and
# collapsing a few large faces destroys the shape (a box has 12)
MODEL_LOD_MIN_TRIANGLES = 256


class SceneError(ConfigError):
    """The scene is malformed or an asset cannot be loaded; the message names both."""


# -- what a scene file says -----------------------------------------------------------


@dataclass
class ModelSpec:
    """``[[scene.model]]``: a glTF 2.0 file, all of its nodes baked into one mesh."""

    name: str
    file: Path  # .gltf or .glb, relative to the run file


@dataclass
class PrimitiveSpec:
    """``[[scene.primitive]]``: a generated mesh."""

    name: str
    shape: Literal["box", "sphere", "plane"]
    size: Vec3 = (1.0, 1.0, 1.0)  # extents along X, Y, Z (m); a plane uses X and Z
    color: Color = (1.0, 1.0, 1.0)  # sRGB base colour (alpha linear)


@dataclass
class MotionSpec:
    """How an object moves; every term is optional and they combine.

    At time t (s): the object spins about its own centre, its position orbits
    ``orbit_center`` and bobs along ``bob_axis``.
    """

    spin_deg_s: float = 0.0  # spin rate about spin_axis (deg/s)
    spin_axis: Vec3 = (0.0, 1.0, 0.0)
    orbit_deg_s: float = 0.0  # orbit rate about orbit_axis through orbit_center (deg/s)
    orbit_center: Vec3 = (0.0, 0.0, 0.0)  # m, world
    orbit_axis: Vec3 = (0.0, 1.0, 0.0)
    bob_m: float = 0.0  # bobbing amplitude (m)
    bob_hz: float = 0.0  # bobbing frequency (Hz)
    bob_axis: Vec3 = (0.0, 1.0, 0.0)
    phase_deg: float = 0.0  # added to every angle (spin, orbit, bob phase)
    phase_step_deg: float = 0.0  # added per grid copy, so copies do not move in lockstep


@dataclass
class ObjectSpec:
    """``[[scene.object]]``: one placement of a mesh (or a grid of them)."""

    mesh: str
    name: str = ""  # lets a sound follow the object (a grid: its first copy)
    position: Vec3 = (0.0, 0.0, 0.0)  # m
    rotation: Vec3 = (0.0, 0.0, 0.0)  # degrees about X, then Y, then Z (world axes)
    scale: float | Vec3 = 1.0
    color: Color = (1.0, 1.0, 1.0)  # sRGB multiplier (alpha linear)
    palette: tuple[Color, ...] = ()  # grid copies cycle through these instead of color
    importance: float = 1.0  # >= 0; the scene filter keeps important objects first
    grid: tuple[int, int, int] = (1, 1, 1)  # copies along X, Y, Z
    spacing: Vec3 = (1.0, 1.0, 1.0)  # distance between grid copies (m)
    motion: MotionSpec | None = None


@dataclass
class LightSpec:
    """``[[scene.light]]``: at most one directional and one ambient light."""

    type: Literal["directional", "ambient"]
    color: Vec3 = (1.0, 1.0, 1.0)  # sRGB
    intensity: float = 1.0
    direction: Vec3 = (-0.3, -1.0, -0.5)  # directional: where the light travels, world


@dataclass
class SoundSpec:
    """``[[scene.sound]]``: a point source of sound."""

    name: str
    position: Vec3 = (0.0, 0.0, 0.0)  # m: world, or offset from the followed object
    object: str = ""  # name of the object to follow; empty: fixed in the world
    file: Path | None = None  # audio file, relative to the run file
    signal: Literal["file", "tone", "noise", "chirp"] | None = None  # default: file if given
    frequency_hz: float = 440.0  # tone frequency; chirp start frequency
    gain: float = 1.0  # linear
    loop: bool = True


@dataclass
class SceneSpec:
    """The ``[scene]`` table."""

    background: Vec3 = (0.05, 0.05, 0.07)  # sRGB clear colour
    lod_distances: tuple[float, ...] = LOD_DISTANCES  # m, where each sphere / model LOD starts
    model: list[ModelSpec] = field(default_factory=list)
    primitive: list[PrimitiveSpec] = field(default_factory=list)
    object: list[ObjectSpec] = field(default_factory=list)
    light: list[LightSpec] = field(default_factory=list)
    sound: list[SoundSpec] = field(default_factory=list)


# -- what a loaded scene holds ---------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """One GPU mesh's data, ready to upload (mesh space, metres)."""

    vertices: np.ndarray  # (V, VERTEX_FLOATS) float32, see VERTEX_FLOATS
    indices: np.ndarray  # (3T,) uint32, counter-clockwise front faces
    textures: np.ndarray | None  # (layers, H, W, 4) float16 linear RGBA, rows bottom-up

    @property
    def triangles(self) -> int:
        return len(self.indices) // 3


@dataclass(frozen=True)
class Mesh:
    """A mesh and its levels of detail (LOD 0 is the finest); ``name`` is the first
    scene name that loaded this geometry (others with the same geometry share it)."""

    name: str
    lods: tuple[Geometry, ...]
    lod_distance: tuple[float, ...]  # m, distance from which each LOD is used
    center: np.ndarray  # (3,) bounding-sphere centre, mesh space (m)
    radius: float  # bounding-sphere radius (m)


@dataclass(frozen=True)
class Motion:
    """Per-object motion terms, in SI units (see MotionSpec)."""

    spin_axis: np.ndarray  # (3,) unit
    spin_rate: float  # rad/s
    orbit_center: np.ndarray  # (3,) m
    orbit_axis: np.ndarray  # (3,) unit
    orbit_rate: float  # rad/s
    bob_axis: np.ndarray  # (3,) unit
    bob_amplitude: float  # m
    bob_rate: float  # rad/s
    phase: float  # rad


@dataclass(frozen=True)
class SceneObject:
    """One row of the object table."""

    name: str
    mesh: int  # index into Scene.meshes
    model: np.ndarray  # (4, 4) float64 object -> world at rest (row-major, column vectors)
    color: np.ndarray  # (4,) linear RGBA multiplier
    importance: float
    motion: Motion | None


@dataclass(frozen=True)
class Light:
    """The scene's lighting, linear RGB premultiplied by intensity."""

    direction: np.ndarray  # (3,) unit, the direction light travels (world)
    color: np.ndarray  # (3,) directional light
    ambient: np.ndarray  # (3,) ambient light


@dataclass(frozen=True)
class Sound:
    """A sound source for the audio stage."""

    name: str
    position: tuple[float, float, float]  # m: world, or offset from the object it follows
    object_index: int  # row of the followed object in the object table; -1: fixed in the world
    file: Path | None  # absolute path of the audio file
    signal: str  # "file", "tone", "noise" or "chirp"
    frequency_hz: float
    gain: float
    loop: bool


@dataclass
class Scene:
    """A loaded scene: the mesh table, the object table, light and sounds."""

    path: Path  # the run file it came from
    meshes: list[Mesh]
    objects: list[SceneObject]  # static objects first, then the moving ones
    light: Light
    sounds: list[Sound]
    background: np.ndarray  # (3,) linear RGB

    @property
    def moving_from(self) -> int:
        """Index of the first moving object (== len(objects) when none move)."""
        for i, obj in enumerate(self.objects):
            if obj.motion is not None:
                return i
        return len(self.objects)

    @property
    def draws(self) -> list[Geometry]:
        """One geometry per draw slot: mesh 0's LODs, then mesh 1's, ..."""
        return [g for m in self.meshes for g in m.lods]

    def lod_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """MESH_LOD_DRAW (M, L) int32 and MESH_LOD_DISTANCE (M, L) float32."""
        levels = max((len(m.lods) for m in self.meshes), default=1)
        draw = np.full((len(self.meshes), levels), -1, np.int32)
        distance = np.full((len(self.meshes), levels), np.inf, np.float32)
        slot = 0
        for i, m in enumerate(self.meshes):
            n = len(m.lods)
            draw[i, :n] = np.arange(slot, slot + n)
            distance[i, :n] = m.lod_distance
            slot += n
        return draw, distance


# -- conversions -------------------------------------------------------------------------


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """The sRGB transfer function inverted (IEC 61966-2-1), values in 0..1."""
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (IEC 61966-2-1), linear 0..1 in, encoded 0..1 out."""
    c = np.clip(np.asarray(c, np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def _linear_rgba(color: Color) -> np.ndarray:
    rgba = np.ones(4)
    rgba[:3] = srgb_to_linear(np.asarray(color[:3]))
    if len(color) == 4:
        rgba[3] = color[3]
    return rgba


def _unit(v: Vec3, where: str) -> np.ndarray:
    a = np.asarray(v, np.float64)
    n = np.linalg.norm(a)
    if not n > 0:
        raise SceneError(f"{where}: must not be the zero vector")
    return a / n


def rotation_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` (rad) about the unit ``axis`` (right-handed)."""
    x, y, z = axis
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def euler_xyz(degrees: Vec3) -> np.ndarray:
    """3x3 rotation: about world X, then Y, then Z (R = Rz Ry Rx), angles in degrees."""
    rx, ry, rz = (math.radians(d) for d in degrees)
    return (rotation_matrix(np.array([0.0, 0, 1]), rz) @ rotation_matrix(np.array([0.0, 1, 0]), ry)
            @ rotation_matrix(np.array([1.0, 0, 0]), rx))


# -- geometry ------------------------------------------------------------------------


def _geometry(positions: np.ndarray, normals: np.ndarray, faces: np.ndarray,
              uv: np.ndarray | None = None, color: np.ndarray | None = None,
              layer: np.ndarray | None = None, textures: np.ndarray | None = None) -> Geometry:
    v = len(positions)
    data = np.empty((v, VERTEX_FLOATS), np.float32)
    data[:, 0:3] = positions
    data[:, 3:6] = normals
    data[:, 6:8] = 0.0 if uv is None else uv
    data[:, 8:12] = 1.0 if color is None else color
    data[:, 12] = -1.0 if layer is None else layer
    return Geometry(data, np.ascontiguousarray(faces, np.uint32).reshape(-1), textures)


def _flat(mesh: Any) -> Geometry:
    """Flat-shaded geometry: every face gets its own vertices and the face normal."""
    positions = mesh.vertices[mesh.faces].reshape(-1, 3)
    normals = np.repeat(mesh.face_normals, 3, axis=0)
    faces = np.arange(len(positions)).reshape(-1, 3)
    return _geometry(positions, normals, faces)


def _primitive(spec: PrimitiveSpec, lod_distances: tuple[float, ...], where: str) -> Mesh:
    """The primitive's mesh, white: its colour goes to the objects (see load_scene)."""
    import trimesh

    size = np.asarray(spec.size, np.float64)
    if np.any(size < 0) or (spec.shape != "plane" and np.any(size == 0)):
        raise SceneError(f"{where} 'size': extents must be positive (m), got {spec.size}")
    if spec.shape == "box":
        lods = [_flat(trimesh.creation.box(extents=size))]
    elif spec.shape == "plane":  # XZ square facing +Y
        w, d = size[0] / 2, size[2] / 2
        p = np.array([[-w, 0, d], [w, 0, d], [w, 0, -d], [-w, 0, -d]])
        uv = np.array([[0.0, 0], [1, 0], [1, 1], [0, 1]])
        lods = [_geometry(p, np.tile([0.0, 1, 0], (4, 1)), np.array([[0, 1, 2], [0, 2, 3]]),
                          uv=uv)]
    else:
        lods = []
        for sub in SPHERE_SUBDIVISIONS:
            s = trimesh.creation.icosphere(subdivisions=sub, radius=1.0)
            normals = s.vertices / size * 2  # ellipsoid normal ~ p / r^2 on the unit sphere
            normals /= np.linalg.norm(normals, axis=1, keepdims=True)
            lods.append(_geometry(s.vertices * size / 2, normals, s.faces))
    distances = tuple(lod_distances[: len(lods)])
    if len(distances) < len(lods):
        raise SceneError(f"{where}: [scene] lod_distances gives {len(lod_distances)} distances, "
                         f"the {spec.shape} has {len(lods)} levels of detail")
    return _mesh(spec.name, lods, distances)


def _mesh(name: str, lods: list[Geometry], distances: tuple[float, ...]) -> Mesh:
    p = lods[0].vertices[:, :3].astype(np.float64)
    center = (p.min(axis=0) + p.max(axis=0)) / 2
    radius = float(np.linalg.norm(p - center, axis=1).max())
    return Mesh(name, tuple(lods), distances, center, radius)


def _geometry_key(mesh: Mesh) -> bytes:
    """A digest of everything a mesh table entry uploads or switches on: the bytes of
    each LOD's vertices, indices and textures, and the LOD switch distances."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(np.asarray(mesh.lod_distance, np.float64).tobytes())
    for g in mesh.lods:
        for part in (g.vertices, g.indices, g.textures):
            digest.update(b"-" if part is None else bytes(str(part.shape), "ascii"))
            if part is not None:
                digest.update(np.ascontiguousarray(part).tobytes())
    return digest.digest()


def _texture_layers(images: list[Any]) -> np.ndarray:
    """PIL images -> (layers, H, W, 4) float16 linear RGBA at one common size."""
    from PIL import Image

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
    with coarser levels of detail (see :func:`_decimated`) from ``lod_distances`` (m)
    on, as many as it names.

    Raises SceneError naming ``path`` for a missing, unsupported or broken file.
    """
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise SceneError(f"{path}: unsupported model format {path.suffix!r} "
                         f"(expected glTF 2.0: {' or '.join(MODEL_SUFFIXES)})")
    if not path.is_file():
        raise SceneError(f"{path}: model file not found")
    try:
        import trimesh
    except ImportError as exc:
        raise SceneError(f"{path}: loading glTF needs trimesh: pip install 'vrshare[scene]'") \
            from exc
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
        lods = _model_lods(geom, wanted, path)
    return _mesh(name, lods, tuple(lod_distances[: len(lods)]))


def _model_lods(geom: Geometry, wanted: int, path: Path) -> list[Geometry]:
    """``geom`` and up to ``wanted - 1`` decimated copies (each at least 20 % smaller
    than the one before); just ``geom``, logged, without fast-simplification."""
    try:
        import fast_simplification
    except ImportError:
        log.warning("%s: one level of detail (%d triangles): decimating glTF models needs "
                    "fast-simplification: pip install 'vrshare[scene]'", path, geom.triangles)
        return [geom]
    lods = [geom]
    for fraction in MODEL_LOD_FRACTIONS[: wanted - 1]:
        coarse = _decimated(fast_simplification, geom, fraction)
        if coarse.triangles > 0.8 * lods[-1].triangles or coarse.triangles == 0:
            break
        lods.append(coarse)
    return lods


def _decimated(fast_simplification: Any, geom: Geometry, fraction: float) -> Geometry:
    """Quadric edge-collapse decimation to about ``fraction`` of the triangles.

    Vertices are welded by position first, so seams (a corner with two texture
    coordinates or normals) do not become holes. Edge collapses only merge vertices
    into survivors and move the survivors, so every remaining triangle is an original
    one whose corners now stand on survivors (the collapse replay maps each original
    vertex to its survivor's new position). A corner takes the attributes (normal,
    texture coordinates, colour, layer) of the survivor's vertex nearest to its own,
    which keeps seams apart and lets corners on one survivor share a vertex.
    """
    v = geom.vertices
    faces = geom.indices.reshape(-1, 3)
    points, weld = np.unique(v[:, :3].astype(np.float64), axis=0, return_inverse=True)
    weld = weld.reshape(-1)
    welded = weld[faces]
    _, _, collapses = fast_simplification.simplify(
        points, welded, target_reduction=1.0 - fraction, return_collapses=True)
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
    return Geometry(vertices, new_indices.reshape(-1).astype(np.uint32), geom.textures)


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
    return (_geometry(positions, normals, faces, uv=uv, color=color, layer=layer).vertices,
            faces)


# -- the loader --------------------------------------------------------------------------


def _motion(spec: MotionSpec, copy: int, where: str) -> Motion | None:
    if spec.spin_deg_s == 0 and spec.orbit_deg_s == 0 and (spec.bob_m == 0 or spec.bob_hz == 0):
        return None
    return Motion(
        spin_axis=_unit(spec.spin_axis, f"{where} 'spin_axis'"),
        spin_rate=math.radians(spec.spin_deg_s),
        orbit_center=np.asarray(spec.orbit_center, np.float64),
        orbit_axis=_unit(spec.orbit_axis, f"{where} 'orbit_axis'"),
        orbit_rate=math.radians(spec.orbit_deg_s),
        bob_axis=_unit(spec.bob_axis, f"{where} 'bob_axis'"),
        bob_amplitude=spec.bob_m,
        bob_rate=2 * math.pi * spec.bob_hz,
        phase=math.radians(spec.phase_deg + copy * spec.phase_step_deg),
    )


def _placements(spec: ObjectSpec, mesh: int, tint: np.ndarray,
                where: str) -> list[SceneObject]:
    """The object's copies; ``tint`` (linear RGBA) is its mesh's primitive colour."""
    if any(n < 1 for n in spec.grid):
        raise SceneError(f"{where} 'grid': counts must be >= 1, got {spec.grid}")
    if spec.importance < 0:
        raise SceneError(f"{where} 'importance': must be >= 0, got {spec.importance}")
    scale = np.broadcast_to(np.asarray(spec.scale, np.float64), (3,))
    if np.any(scale == 0):
        raise SceneError(f"{where} 'scale': must not be zero, got {spec.scale}")
    linear = np.eye(4)
    linear[:3, :3] = euler_xyz(spec.rotation) * scale
    colors = [_linear_rgba(c) * tint for c in spec.palette] or [_linear_rgba(spec.color) * tint]
    out = []
    nx, ny, nz = spec.grid
    for k, cell in enumerate(np.ndindex(nx, ny, nz)):
        model = linear.copy()
        model[:3, 3] = np.asarray(spec.position) + np.asarray(spec.spacing) * cell
        motion = _motion(spec.motion, k, where) if spec.motion is not None else None
        name = spec.name if k == 0 else ""
        out.append(SceneObject(name, mesh, model, colors[k % len(colors)], spec.importance, motion))
    return out


def _light(specs: list[LightSpec], where: str) -> Light:
    found: dict[str, LightSpec] = {}
    for i, spec in enumerate(specs):
        if spec.type in found:
            raise SceneError(f"{where} [[scene.light]] #{i + 1}: a second {spec.type} light "
                             "(a scene has at most one directional and one ambient light)")
        found[spec.type] = spec
    sun = found.get("directional", LightSpec("directional", intensity=0.9))
    sky = found.get("ambient", LightSpec("ambient", color=(0.5, 0.55, 0.65), intensity=0.35))
    return Light(_unit(sun.direction, f"{where} [[scene.light]] 'direction'"),
                 srgb_to_linear(np.asarray(sun.color)) * sun.intensity,
                 srgb_to_linear(np.asarray(sky.color)) * sky.intensity)


def _sounds(specs: list[SoundSpec], names: dict[str, int], base_dir: Path,
            where: str) -> list[Sound]:
    out = []
    for i, spec in enumerate(specs):
        at = f"{where} [[scene.sound]] #{i + 1} ({spec.name})"
        signal = spec.signal or ("file" if spec.file is not None else "tone")
        file = None
        if signal == "file":
            if spec.file is None:
                raise SceneError(f"{at}: signal 'file' needs a 'file'")
            file = (base_dir / spec.file).resolve()
            if not file.is_file():
                raise SceneError(f"{at} 'file': {file}: audio file not found")
        elif spec.file is not None:
            raise SceneError(f"{at}: 'file' is given but signal is {signal!r}")
        index = -1
        if spec.object:
            if spec.object not in names:
                raise SceneError(f"{at} 'object': no object named {spec.object!r} "
                                 f"(named objects: {', '.join(names) or 'none'})")
            index = names[spec.object]
        if spec.frequency_hz <= 0:
            raise SceneError(f"{at} 'frequency_hz': must be > 0, got {spec.frequency_hz}")
        out.append(Sound(spec.name, tuple(spec.position), index, file, signal,
                         spec.frequency_hz, spec.gain, spec.loop))
    return out


def load_scene(table: dict[str, Any], base_dir: Path, path: Path) -> Scene:
    """Validate a ``[scene]`` table and load its assets.

    ``base_dir`` is the folder relative asset paths resolve against; ``path`` (the run
    file) names the file in error messages.
    """
    where = f"{path} [scene]"
    spec = build(SceneSpec, table, where)
    if list(spec.lod_distances) != sorted(spec.lod_distances) or spec.lod_distances[:1] != (0.0,):
        raise SceneError(f"{where} 'lod_distances': must start at 0 and increase, "
                         f"got {spec.lod_distances}")
    meshes: list[Mesh] = []
    index: dict[str, int] = {}  # mesh name -> mesh table entry
    tints: dict[str, np.ndarray] = {}  # mesh name -> linear RGBA for its objects
    by_geometry: dict[bytes, int] = {}  # _geometry_key -> mesh table entry
    entries = [(m.name, f"{where} [[scene.model]] #{i + 1}", m) for i, m in enumerate(spec.model)]
    entries += [(p.name, f"{where} [[scene.primitive]] #{i + 1}", p)
                for i, p in enumerate(spec.primitive)]
    for name, at, entry in entries:
        if name in index:
            raise SceneError(f"{at}: mesh name {name!r} is used twice")
        if isinstance(entry, ModelSpec):
            mesh = load_model((base_dir / entry.file).resolve(), name, spec.lod_distances)
            tints[name] = np.ones(4)
        else:
            mesh = _primitive(entry, spec.lod_distances, at)
            tints[name] = _linear_rgba(entry.color)
        key = _geometry_key(mesh)
        if key not in by_geometry:
            by_geometry[key] = len(meshes)
            meshes.append(mesh)
        index[name] = by_geometry[key]

    objects: list[SceneObject] = []
    for i, obj in enumerate(spec.object):
        at = f"{where} [[scene.object]] #{i + 1}"
        if obj.mesh not in index:
            raise SceneError(f"{at} 'mesh': no mesh named {obj.mesh!r} "
                             f"(meshes: {', '.join(index) or 'none'})")
        objects += _placements(obj, index[obj.mesh], tints[obj.mesh], at)
    objects.sort(key=lambda o: o.motion is not None)  # stable: static first, then moving
    names: dict[str, int] = {}
    for i, obj in enumerate(objects):
        if obj.name:
            if obj.name in names:
                raise SceneError(f"{where}: two objects are named {obj.name!r}")
            names[obj.name] = i
    return Scene(path, meshes, objects, _light(spec.light, where),
                 _sounds(spec.sound, names, base_dir, where),
                 srgb_to_linear(np.asarray(spec.background)))


def load_run_scene(run_file: Any) -> Scene | None:
    """The scene of a loaded run file (:class:`vrshare.config.RunFile`), or None if it
    has no ``[scene]`` table."""
    if not run_file.scene:
        return None
    return load_scene(run_file.scene, run_file.base_dir, run_file.path)
