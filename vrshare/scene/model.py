"""What a loaded scene holds: geometry ready to upload, the mesh and object tables,
light and sounds (host NumPy arrays, metres, linear colour)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import layout

VERTEX_FLOATS = 13  # position (3, m), normal (3), uv (2), linear RGBA (4), texture layer (1)


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
        return layout.lod_tables([m.lod_distance for m in self.meshes])


def make_geometry(positions: np.ndarray, normals: np.ndarray, faces: np.ndarray,
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


def make_mesh(name: str, lods: list[Geometry], distances: tuple[float, ...]) -> Mesh:
    p = lods[0].vertices[:, :3].astype(np.float64)
    center = (p.min(axis=0) + p.max(axis=0)) / 2
    radius = float(np.linalg.norm(p - center, axis=1).max())
    return Mesh(name, tuple(lods), distances, center, radius)


def geometry_key(mesh: Mesh) -> bytes:
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
