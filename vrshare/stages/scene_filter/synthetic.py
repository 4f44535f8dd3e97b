"""Synthetic object tables and eye matrices, for tests and benchmarks of the filter.

These stand in for the scene stage: :class:`ObjectsStage` declares the object buffers
of :mod:`vrshare.layout` from a :class:`SceneArrays` (and moves some of them in place
each frame); :class:`vrshare.testing.FixedEyes` stands in for tracking. The camera
helper follows the layout's conventions (OpenXR axes, GL clip space).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import layout
from ...backend import to_device
from ...geometry import eyes, quat
from ...pipeline import Frame, Stage, StageConfig
from ...weights import WeightBank


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


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniformly random rotation matrices (n, 3, 3) float64."""
    q = rng.normal(size=(n, 4))
    return quat.to_matrix(quat.normalize(q))


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
    draw, distance = layout.lod_tables([[lod_step * k for k in range(1 + m % levels)]
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
    return np.array(eyes.projection(fov, near, far))


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
