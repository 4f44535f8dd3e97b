"""Synthetic object tables and eye matrices, for tests and benchmarks of the filter.

These stand in for the scene and tracking stages: :class:`ObjectsStage` declares the
object buffers of :mod:`vrshare.layout` from a :class:`SceneArrays` (and moves some of
them in place each frame), :class:`EyesStage` writes ``eye_view``/``eye_proj`` for a
head pose the caller sets. The camera helpers follow the layout's conventions
(OpenXR axes, row-major matrices acting on column vectors, GL clip space).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import layout
from ...backend import to_device
from ...pipeline import Frame, Stage, StageConfig
from ...weights import WeightBank
from ..tracking.eyes import projection


@dataclass
class SceneArrays:
    """One object table, host arrays with the layout's shapes and dtypes."""

    model: np.ndarray  # (N, 4, 4) float32, object -> world
    bounds: np.ndarray  # (N, 4) float32, world sphere: centre xyz, radius (m)
    mesh: np.ndarray  # (N,) int32
    color: np.ndarray  # (N, 4) float32
    importance: np.ndarray  # (N,) float32, >= 0
    lod_draw: np.ndarray  # (M, L) int32, -1 past a mesh's last level
    lod_distance: np.ndarray  # (M, L) float32 (m), inf past a mesh's last level

    @property
    def count(self) -> int:
        return int(self.model.shape[0])


def lod_tables(levels: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Draw-slot and switch-distance tables for meshes given their LOD start distances (m).

    Slots are numbered mesh by mesh, level by level, as the scene module numbers them.
    """
    width = max((len(d) for d in levels), default=1)
    draw = np.full((len(levels), width), -1, np.int32)
    distance = np.full((len(levels), width), np.inf, np.float32)
    slot = 0
    for m, dists in enumerate(levels):
        draw[m, : len(dists)] = np.arange(slot, slot + len(dists))
        distance[m, : len(dists)] = dists
        slot += len(dists)
    return draw, distance


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniformly random rotation matrices (n, 3, 3) float64."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    x, y, z, w = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], 1)


def random_scene(rng: np.random.Generator, n: int, *, extent: float = 50.0,
                 meshes: int = 4, levels: int = 3, lod_step: float = 8.0) -> SceneArrays:
    """``n`` objects scattered uniformly in a cube of half-size ``extent`` (m).

    Each object gets a random rotation, a scale in [0.2, 2] (its bounding radius, m),
    one of ``meshes`` meshes (mesh ``m`` has ``1 + m % levels`` LODs starting every
    ``lod_step`` m), a colour and an importance in [0, 1].
    """
    scale = rng.uniform(0.2, 2.0, n)
    centre = rng.uniform(-extent, extent, (n, 3))
    model = np.zeros((n, 4, 4), np.float32)
    model[:, :3, :3] = random_rotations(rng, n) * scale[:, None, None]
    model[:, :3, 3] = centre
    model[:, 3, 3] = 1.0
    bounds = np.empty((n, 4), np.float32)
    bounds[:, :3] = centre
    bounds[:, 3] = scale
    draw, distance = lod_tables([[lod_step * k for k in range(1 + m % levels)]
                                 for m in range(meshes)])
    return SceneArrays(
        model=model,
        bounds=bounds,
        mesh=rng.integers(0, meshes, n).astype(np.int32),
        color=rng.uniform(0, 1, (n, 4)).astype(np.float32),
        importance=rng.uniform(0, 1, n).astype(np.float32),
        lod_draw=draw,
        lod_distance=distance,
    )


def perspective(fov: tuple[float, float, float, float], near: float, far: float) -> np.ndarray:
    """GL projection (4, 4) float64 for OpenXR fov angles (left, right, up, down; rad),
    as the tracking stage builds it; ``near`` and ``far`` are distances (m)."""
    return np.array(projection(fov, near, far))


def yaw_pitch(yaw: float, pitch: float = 0.0) -> np.ndarray:
    """Head rotation (3, 3): ``yaw`` about +Y (left turn positive), then ``pitch`` about +X."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return ry @ rx


def eye_views(position: np.ndarray, rotation: np.ndarray, ipd: float = 0.064) -> np.ndarray:
    """World -> eye matrices (2, 4, 4) float64 of a head at ``position`` (m) turned by ``rotation``.

    The eyes sit ``ipd / 2`` (m) left and right of the head along its +X axis.
    """
    views = np.zeros((2, 4, 4))
    for e, side in enumerate((-0.5, 0.5)):
        eye = np.asarray(position, float) + rotation @ np.array([side * ipd, 0.0, 0.0])
        views[e, :3, :3] = rotation.T
        views[e, :3, 3] = -rotation.T @ eye
        views[e, 3, 3] = 1.0
    return views


class ObjectsStage(Stage):
    """Declares the object buffers from a :class:`SceneArrays`; moves some in place.

    The first ``moving`` objects slide along world X by ``amplitude`` (m) sine-wise,
    one period per ``period`` seconds of ``frame.t_display``: their model matrices
    and bounds are updated in place, as the scene-motion stage does. Like it, the stage
    lists the parameter tables it registers among its ``writes``: the schedule wants a
    writer for every buffer a stage reads.
    """

    name = "objects"
    writes = (layout.OBJECT_MODEL, layout.OBJECT_BOUNDS, layout.OBJECT_MESH, layout.OBJECT_COLOR,
              layout.OBJECT_IMPORTANCE, layout.MESH_LOD_DRAW, layout.MESH_LOD_DISTANCE)

    def __init__(self, scene: SceneArrays, *, moving: int = 0, amplitude: float = 1.0,
                 period: float = 2.0, name: str | None = None) -> None:
        super().__init__(name=name)
        self.scene = scene
        self.moving = min(moving, scene.count)
        self.amplitude = amplitude
        self.period = period

    def setup(self, bank: WeightBank, config: StageConfig) -> None:
        s = self.scene
        n = s.count
        self.model = bank.state(layout.OBJECT_MODEL, (n, 4, 4), "float32")
        self.bounds = bank.state(layout.OBJECT_BOUNDS, (n, 4), "float32")
        to_device(s.model, out=self.model, label=layout.OBJECT_MODEL)
        to_device(s.bounds, out=self.bounds, label=layout.OBJECT_BOUNDS)
        bank.param(layout.OBJECT_MESH, s.mesh, "int32")
        bank.param(layout.OBJECT_COLOR, s.color, "float32")
        bank.param(layout.OBJECT_IMPORTANCE, s.importance, "float32")
        bank.param(layout.MESH_LOD_DRAW, s.lod_draw, "int32")
        bank.param(layout.MESH_LOD_DISTANCE, s.lod_distance, "float32")
        self._x0 = self.bounds[: self.moving, 0].copy()  # start positions (m)
        self._shift = self._x0.copy()

    def process(self, frame: Frame, bank: WeightBank) -> None:
        if not self.moving:
            return
        offset = self.amplitude * math.sin(2 * math.pi * frame.t_display / self.period)
        self._shift[...] = self._x0
        self._shift += offset
        self.bounds[: self.moving, 0] = self._shift
        self.model[: self.moving, 0, 3] = self._shift


class EyesStage(Stage):
    """Writes ``eye_view``/``eye_proj`` for the head pose held in its attributes.

    Set :attr:`position` (m), :attr:`rotation` (3, 3) and :attr:`fov` between frames
    to move the head; both eyes share the fov and the near/far distances (m).
    """

    name = "eyes"
    writes = (layout.EYE_VIEW, layout.EYE_PROJ)

    def __init__(self, position=(0.0, 1.6, 0.0), rotation: np.ndarray | None = None, *,
                 fov: tuple[float, float, float, float] = (-0.8, 0.8, 0.8, -0.8),
                 near: float = 0.05, far: float = 100.0, ipd: float = 0.064,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.position = np.asarray(position, float)
        self.rotation = np.eye(3) if rotation is None else np.asarray(rotation, float)
        self.fov, self.near, self.far, self.ipd = fov, near, far, ipd

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """(view, proj), each (2, 4, 4) float64, for the current pose."""
        proj = perspective(self.fov, self.near, self.far)
        return eye_views(self.position, self.rotation, self.ipd), np.stack([proj, proj])

    def setup(self, bank: WeightBank, config: StageConfig) -> None:
        self.view = bank.state(layout.EYE_VIEW, (2, 4, 4), "float32")
        self.proj = bank.state(layout.EYE_PROJ, (2, 4, 4), "float32")
        self.process(Frame(-1, 0.0, 0.0, 0.0), bank)

    def process(self, frame: Frame, bank: WeightBank) -> None:
        view, proj = self.matrices()
        to_device(view.astype(np.float32), out=self.view, label=layout.EYE_VIEW)
        to_device(proj.astype(np.float32), out=self.proj, label=layout.EYE_PROJ)
