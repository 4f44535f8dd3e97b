"""The ``scene_motion`` stage: the object table, and moving objects placed each frame.

At setup it declares the object table from the run's scene (see
:mod:`vrshare.layout`): per-object constants as parameters (mesh, colour,
importance, the mesh LOD tables) and the model matrices and world bounding spheres
as state. Each frame it rewrites the rows of the moving objects (a contiguous tail
of the table) for ``frame.t_display``; static rows are written once, except the
rows another stage places (``object_placed``, e.g. objects the hands carry), which it
writes after its own each frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend, layout
from ..geometry.rotation import cross_matrix
from ..pipeline import Frame, Stage, StageConfig
from ..weights import WeightBank


class _Rotations:
    """Rodrigues rotations R = I + sin(a) K + (1 - cos(a)) K^2 for n fixed axes, with
    angle a = rate * t + phase, evaluated in place into preallocated arrays."""

    def __init__(self, axes: np.ndarray, rate: np.ndarray, phase: np.ndarray, dev: Any) -> None:
        k = cross_matrix(axes)
        self.k, self.k2 = dev(k), dev(k @ k)
        self.rate, self.phase = dev(rate), dev(phase)
        xp = backend.array_module(self.k)
        n = len(axes)
        self.eye = dev(np.broadcast_to(np.eye(3), (n, 3, 3)).copy())
        self.angle = xp.empty(n)
        self.s = xp.empty((n, 1, 1))
        self.term = xp.empty((n, 3, 3))
        self.out = xp.empty((n, 3, 3))

    def at(self, t: float) -> Any:
        xp = backend.array_module(self.k)
        xp.multiply(self.rate, t, out=self.angle)
        self.angle += self.phase
        xp.sin(self.angle, out=self.s[:, 0, 0])
        xp.multiply(self.k, self.s, out=self.term)
        xp.add(self.eye, self.term, out=self.out)
        xp.cos(self.angle, out=self.s[:, 0, 0])
        xp.subtract(1.0, self.s, out=self.s)
        xp.multiply(self.k2, self.s, out=self.term)
        self.out += self.term
        return self.out


class SceneMotionStage(Stage):
    """Declares the object table and moves the scene's moving objects each frame."""

    name = "scene_motion"
    # the per-object and per-mesh constants are parameters written once, at setup;
    # listing them lets readers (scene filter, audio) be scheduled after this stage
    writes = (layout.OBJECT_MODEL, layout.OBJECT_BOUNDS, layout.OBJECT_MESH, layout.OBJECT_COLOR,
              layout.OBJECT_IMPORTANCE, layout.MESH_LOD_DRAW, layout.MESH_LOD_DISTANCE)
    optional_reads = (layout.OBJECT_PLACED,)

    def setup(self, bank: WeightBank, config: StageConfig) -> None:
        scene = config.scene
        if scene is None:
            raise ValueError("scene_motion needs the run file's [scene] (none was loaded)")
        objects = scene.objects
        n = len(objects)
        mesh = np.array([o.mesh for o in objects], np.int32)
        bank.param(layout.OBJECT_MESH, mesh)
        bank.param(layout.OBJECT_COLOR, np.array([o.color for o in objects], np.float32)
                   .reshape(n, 4))
        bank.param(layout.OBJECT_IMPORTANCE, np.array([o.importance for o in objects],
                                                      np.float32))
        lod_draw, lod_distance = scene.lod_tables()
        bank.param(layout.MESH_LOD_DRAW, lod_draw)
        bank.param(layout.MESH_LOD_DISTANCE, lod_distance)

        rest = np.array([o.model for o in objects], np.float64).reshape(n, 4, 4)
        centers = np.array([m.center for m in scene.meshes]).reshape(-1, 3)[mesh]
        radii = np.array([m.radius for m in scene.meshes])[mesh]
        scale = np.linalg.norm(rest[:, :3, :3], axis=1).max(axis=1, initial=0.0)
        bounds = np.empty((n, 4))
        bounds[:, :3] = np.einsum("nij,nj->ni", rest[:, :3, :3], centers) + rest[:, :3, 3]
        bounds[:, 3] = radii * scale

        self.model = bank.state(layout.OBJECT_MODEL, (n, 4, 4), "float32")
        self.bounds = bank.state(layout.OBJECT_BOUNDS, (n, 4), "float32")
        self.model[...] = backend.to_device(rest.astype(np.float32), label="object_model")
        self.bounds[...] = backend.to_device(bounds.astype(np.float32), label="object_bounds")

        self.centers = backend.to_device(np.ascontiguousarray(centers), label="scene_motion")
        k = scene.moving_from
        self.first = k
        moving = objects[k:]
        if not moving:
            return

        def dev(a: np.ndarray) -> Any:
            return backend.to_device(np.ascontiguousarray(a, np.float64), label="scene_motion")

        mo = [o.motion for o in moving]
        phase = np.array([m.phase for m in mo])
        self.spin = _Rotations(np.array([m.spin_axis for m in mo]),
                               np.array([m.spin_rate for m in mo]), phase, dev)
        self.orbit = _Rotations(np.array([m.orbit_axis for m in mo]),
                                np.array([m.orbit_rate for m in mo]), phase, dev)
        orbit_center = np.array([m.orbit_center for m in mo])
        self.rest3 = dev(rest[k:, :3, :3])
        self.center = dev(orbit_center[:, :, None])
        self.arm = dev((rest[k:, :3, 3] - orbit_center)[:, :, None])  # rest position - centre
        self.bob = dev(np.array([m.bob_axis * m.bob_amplitude for m in mo])[:, :, None])
        self.bob_rate = dev(np.array([m.bob_rate for m in mo]))
        self.phase = dev(phase)
        self.local_center = dev(centers[k:, :, None])
        xp = backend.array_module(self.rest3)
        m = len(moving)
        self.rot = xp.empty((m, 3, 3))
        self.tmp = xp.empty((m, 3, 3))
        self.pos = xp.empty((m, 3, 1))
        self.vec = xp.empty((m, 3, 1))
        self.wave = xp.empty((m, 1, 1))

    def process(self, frame: Frame, bank: WeightBank) -> None:
        if self.first < len(self.model):
            self._move(frame.t_display)
        if layout.OBJECT_PLACED in bank:
            self._place(bank[layout.OBJECT_PLACED])

    def _place(self, rows: Any) -> None:
        """Rows [object index, model (16)]: set those objects' models and bounds centres."""
        xp = backend.array_module(rows)
        index = rows[:, 0].astype(xp.int64)
        model = rows[:, 1:].reshape(-1, 4, 4)
        self.model[index] = model
        self.bounds[index, :3] = xp.einsum("kij,kj->ki", model[:, :3, :3], self.centers[index]) \
            + model[:, :3, 3]

    def _move(self, t: float) -> None:
        xp = backend.array_module(self.rest3)
        orbit = self.orbit.at(t)
        # orientation: orbit o spin o rest
        xp.matmul(self.spin.at(t), self.rest3, out=self.tmp)
        xp.matmul(orbit, self.tmp, out=self.rot)
        # position: centre + orbit (rest - centre) + bob sin(rate t + phase)
        xp.matmul(orbit, self.arm, out=self.pos)
        self.pos += self.center
        xp.multiply(self.bob_rate, t, out=self.wave[:, 0, 0])
        self.wave[:, 0, 0] += self.phase
        xp.sin(self.wave, out=self.wave)
        xp.multiply(self.bob, self.wave, out=self.vec)
        self.pos += self.vec
        k = self.first
        self.model[k:, :3, :3] = self.rot
        self.model[k:, :3, 3] = self.pos[:, :, 0]
        # bounds: the radius is unchanged by rotations; the centre moves with the object
        xp.matmul(self.rot, self.local_center, out=self.vec)
        self.vec += self.pos
        self.bounds[k:, :3] = self.vec[:, :, 0]
