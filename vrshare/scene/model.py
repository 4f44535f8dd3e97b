"""What a loaded scene holds: geometry ready to upload, the mesh and object tables,
light and sounds (host NumPy arrays, metres, linear colour)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import layout

# per vertex: position (3, m), normal (3), uv (2), linear RGBA base colour (4),
# base-colour texture layer (1, -1: none), linear RGB emissive colour (3), emissive
# texture layer (1, -1: none), alpha cutoff (1: 0 opaque, > 0 MASK, -1 BLEND)
VERTEX_FLOATS = 18
OPAQUE_CUTOFF = 0.0  # alpha >= 0 always passes: drawn opaque
BLEND_CUTOFF = -1.0  # alpha kept: blended


@dataclass(frozen=True)
class FaceGroup:
    """A run of triangles drawn with one GL state: culled or not, blended or not."""

    first: int  # first triangle
    count: int  # triangles
    double_sided: bool  # drawn without back-face culling (back faces lit with -normal)
    blend: bool  # alpha-blended after every opaque draw, without depth writes


# (blend, double_sided) of each face group, in draw order
STATES = ((False, False), (False, True), (True, False), (True, True))


def face_groups(states: np.ndarray) -> tuple[FaceGroup, ...]:
    """Face groups of faces whose ``STATES`` indices (T,) are sorted; empty when all
    are opaque and single-sided (the default)."""
    if not np.any(states):
        return ()
    starts = np.flatnonzero(np.diff(states, prepend=-1))
    ends = np.append(starts[1:], len(states))
    return tuple(FaceGroup(int(a), int(b - a), *reversed(STATES[int(states[a])]))
                 for a, b in zip(starts, ends, strict=True))


def face_states(geometry: Geometry) -> np.ndarray:
    """(T,) the ``STATES`` index of each face (the inverse of :func:`face_groups`)."""
    states = np.zeros(geometry.triangles, np.int64)
    for g in geometry.groups:
        states[g.first:g.first + g.count] = STATES.index((g.blend, g.double_sided))
    return states


@dataclass(frozen=True)
class Geometry:
    """One GPU mesh's data, ready to upload (mesh space, metres)."""

    vertices: np.ndarray  # (V, VERTEX_FLOATS) float32, see VERTEX_FLOATS
    indices: np.ndarray  # (3T,) uint32, counter-clockwise front faces
    textures: np.ndarray | None  # (layers, H, W, 4) float16 linear RGBA, rows bottom-up
    # triangles by draw state, in order (opaque first, blended last); empty: all
    # opaque and single-sided
    groups: tuple[FaceGroup, ...] = ()

    @property
    def triangles(self) -> int:
        return len(self.indices) // 3

    @property
    def draw_groups(self) -> tuple[FaceGroup, ...]:
        return self.groups or (FaceGroup(0, self.triangles, False, False),)

    @property
    def material(self) -> bool:
        """Whether any vertex is emissive, masked or blended or any face double-sided
        (the shader then reads the emissive colour and layer and the cutoff, and
        lights back faces from behind)."""
        extra = self.vertices[:, 13:18]
        return bool(np.any(extra[:, :3] != 0) or np.any(extra[:, 4] != OPAQUE_CUTOFF)
                    or np.any(extra[:, 3] >= 0) or any(g.double_sided for g in self.groups))


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
    lod_pixels: tuple[float, ...] = ()  # px: projected sizes from which LODs 1, 2, ... are used

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
        return layout.lod_tables([m.lod_distance for m in self.meshes])


def make_geometry(positions: np.ndarray, normals: np.ndarray, faces: np.ndarray,
                  uv: np.ndarray | None = None, color: np.ndarray | None = None,
                  layer: np.ndarray | None = None, textures: np.ndarray | None = None,
                  emissive: np.ndarray | None = None, emissive_layer: np.ndarray | None = None,
                  cutoff: np.ndarray | float = OPAQUE_CUTOFF) -> Geometry:
    """Interleave per-vertex arrays (see VERTEX_FLOATS); missing ones take the value
    that draws nothing extra (no texture, no emission, opaque)."""
    v = len(positions)
    data = np.empty((v, VERTEX_FLOATS), np.float32)
    data[:, 0:3] = positions
    data[:, 3:6] = normals
    data[:, 6:8] = 0.0 if uv is None else uv
    data[:, 8:12] = 1.0 if color is None else color
    data[:, 12] = -1.0 if layer is None else layer
    data[:, 13:16] = 0.0 if emissive is None else emissive
    data[:, 16] = -1.0 if emissive_layer is None else emissive_layer
    data[:, 17] = cutoff
    return Geometry(data, np.ascontiguousarray(faces, np.uint32).reshape(-1), textures)


def make_mesh(name: str, lods: list[Geometry], distances: tuple[float, ...]) -> Mesh:
    p = lods[0].vertices[:, :3].astype(np.float64)
    center = (p.min(axis=0) + p.max(axis=0)) / 2
    radius = float(np.linalg.norm(p - center, axis=1).max())
    return Mesh(name, tuple(lods), distances, center, radius)


def geometry_key(mesh: Mesh) -> bytes:
    """A digest of everything a mesh table entry uploads or switches on: the bytes of
    each LOD's vertices, indices and textures, its face groups, and the LOD switch
    distances."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(np.asarray(mesh.lod_distance, np.float64).tobytes())
    for g in mesh.lods:
        digest.update(repr(g.groups).encode())
        for part in (g.vertices, g.indices, g.textures):
            digest.update(b"-" if part is None else bytes(str(part.shape), "ascii"))
            if part is not None:
                digest.update(np.ascontiguousarray(part).tobytes())
    return digest.digest()
