"""The ``interaction`` stage: point with a hand, squeeze to grab and carry an object.

Each hand points along its grip pose's -Z axis. Pressing the squeeze grabs the nearest
of the stage's grabbable objects whose bounding sphere that ray meets within ``reach``
(metres), with a short haptic pulse on that hand; the object then keeps its pose
relative to the hand until the squeeze is released, where it stays. A trigger press
gives a shorter, lighter pulse (a click to feel).

Grabbable objects are static scene objects named in ``objects`` (a named grid is all
its rows). Their poses go to :data:`~vrshare.layout.OBJECT_PLACED`, which the
``scene_motion`` stage writes into the object table after its own rows; haptic requests
go to :data:`~vrshare.layout.HAPTICS` for the display target.

The decisions (a few hand rows and edge flags) are made on the host: the stage copies
the (3, 7) device poses and the (2, 2, C) edge flags there each frame (about 300 bytes)
and writes back (K, 17) placements and the (2, 4) haptic rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend, layout
from ..config import check_ranges, setting
from ..geometry import quat
from ..pipeline import Frame, Stage, StageConfig
from ..weights import WeightBank

SQUEEZE = layout.CONTROLLER_COMPONENTS.index("squeeze")
TRIGGER = layout.CONTROLLER_COMPONENTS.index("trigger")
PRESSED, RELEASED = 0, 1  # CONTROLLER_EDGES' second axis


@dataclass
class InteractionSettings:
    """``[stage.settings]`` of the interaction stage."""

    objects: tuple[str, ...] = ()  # names of the grabbable scene objects (static ones)
    reach: float = setting(4.0, gt=0, le=100, unit="m")  # how far a hand's ray grabs
    grab_amplitude: float = setting(0.7, ge=0, le=1)  # haptic pulse on a grab, 0..1
    grab_pulse_s: float = setting(0.05, ge=0, le=2, unit="s")  # 0: the runtime's shortest
    trigger_amplitude: float = setting(0.3, ge=0, le=1)  # haptic click on a trigger press
    trigger_pulse_s: float = setting(0.02, ge=0, le=2, unit="s")

    def __post_init__(self) -> None:
        check_ranges(self)


class InteractionStage(Stage):
    """Grabs and carries scene objects with the hands; asks for haptic pulses."""

    name = "interaction"
    Settings = InteractionSettings
    reads = (layout.DEVICE_POSES, layout.DEVICE_VALID)
    # a target without controllers (headless without an input track) writes no edges:
    # the objects then stay where they are
    optional_reads = (layout.CONTROLLER_EDGES,)
    writes = (layout.OBJECT_PLACED, layout.HAPTICS)

    def setup(self, bank: WeightBank, config: StageConfig) -> None:
        s: InteractionSettings = config.settings
        scene = config.scene
        if scene is None:
            raise ValueError("interaction needs the run file's [scene] (none was loaded)")
        if not s.objects:
            raise ValueError("'objects': name at least one scene object to grab")
        index = [i for i, o in enumerate(scene.objects) if o.name in s.objects]
        names = {scene.objects[i].name for i in index}
        missing = [n for n in s.objects if n not in names]
        if missing:
            raise ValueError(f"'objects': no scene object named {', '.join(map(repr, missing))}")
        moving = sorted({scene.objects[i].name for i in index if i >= scene.moving_from})
        if moving:
            raise ValueError(f"'objects': {', '.join(map(repr, moving))} move by themselves "
                             "(scene motion places them each frame); only static objects "
                             "can be grabbed")
        self.settings = s
        self.index = np.array(index)
        self.model = np.array([scene.objects[i].model for i in index], np.float64)  # (K, 4, 4)
        mesh = [scene.meshes[scene.objects[i].mesh] for i in index]
        self.local_center = np.array([m.center for m in mesh], np.float64).reshape(-1, 3)
        scale = np.linalg.norm(self.model[:, :3, :3], axis=1).max(axis=1)
        self.radius = np.array([m.radius for m in mesh]) * scale
        self.held = [-1, -1]  # per hand: row of self.model held, -1 none
        self.offset = np.zeros((2, 4, 4))  # per hand: hand -> held object
        self.rows = np.zeros((len(index), 17), np.float32)
        self.rows[:, 0] = self.index
        self.haptics = np.zeros((2, 4), np.float32)
        self._asked = [False, False]  # per hand: a pulse asked for this frame
        self.placed = bank.state(layout.OBJECT_PLACED, (len(index), 17), "float32")
        self.haptic_out = bank.state(layout.HAPTICS, (2, 4), "float32")
        self._publish()

    def _publish(self) -> None:
        self.rows[:, 1:] = self.model.reshape(-1, 16)
        backend.to_device(self.rows, out=self.placed, label="interaction")
        backend.to_device(self.haptics, out=self.haptic_out, label="interaction")

    def pointed(self, pose: np.ndarray) -> int:
        """The row of the nearest grabbable object the pose's -Z ray meets within reach,
        or -1."""
        origin = pose[:3]
        direction = quat.rotate(pose[3:7], np.array([0.0, 0.0, -1.0]))
        centers = np.einsum("kij,kj->ki", self.model[:, :3, :3], self.local_center) \
            + self.model[:, :3, 3]
        to_center = centers - origin
        along = to_center @ direction  # m along the ray to the closest approach
        miss2 = np.einsum("ki,ki->k", to_center, to_center) - along ** 2
        half = np.sqrt(np.maximum(self.radius ** 2 - miss2, 0.0))
        entry = np.where(along - half > 0.0, along - half, along + half)  # inside: the exit
        ok = (miss2 <= self.radius ** 2) & (entry >= 0.0) & (entry <= self.settings.reach)
        return int(np.argmin(np.where(ok, entry, np.inf))) if ok.any() else -1

    def _pulse(self, hand: int, amplitude: float, duration: float) -> None:
        """Ask for a pulse; a hand sends one request per frame, so within a frame the
        strongest wins (a grab and a click together: the grab)."""
        if self._asked[hand] and self.haptics[hand, 0] >= amplitude:
            return
        self.haptics[hand, :3] = (amplitude, duration, 0.0)
        if not self._asked[hand]:
            self.haptics[hand, 3] += 1.0  # a new request
        self._asked[hand] = True

    def process(self, frame: Frame, bank: WeightBank) -> None:
        if layout.CONTROLLER_EDGES not in bank:
            return
        poses = backend.to_host(bank[layout.DEVICE_POSES], label="interaction").astype(np.float64)
        valid = backend.to_host(bank[layout.DEVICE_VALID], label="interaction")
        edges = backend.to_host(bank[layout.CONTROLLER_EDGES], label="interaction")
        s = self.settings
        self._asked = [False, False]
        for hand in (0, 1):
            pose = poses[hand + 1]
            tracked = valid[hand + 1] > 0.5 and np.isfinite(pose).all()
            hand_m = quat.pose_matrix(pose) if tracked else None
            if edges[hand, RELEASED, SQUEEZE] or not tracked:
                self.held[hand] = -1
            if tracked and edges[hand, PRESSED, SQUEEZE] and self.held[hand] < 0:
                k = self.pointed(pose)
                if k >= 0 and k not in self.held:
                    self.held[hand] = k
                    self.offset[hand] = quat.rigid_inverse(hand_m) @ self.model[k]
                    self._pulse(hand, s.grab_amplitude, s.grab_pulse_s)
            if tracked and edges[hand, PRESSED, TRIGGER]:
                self._pulse(hand, s.trigger_amplitude, s.trigger_pulse_s)
            if self.held[hand] >= 0:
                self.model[self.held[hand]] = hand_m @ self.offset[hand]
        self._publish()

    def holding(self) -> list[int]:
        """Per hand, the scene object index held, or -1 (for tests and tools)."""
        return [int(self.index[k]) if k >= 0 else -1 for k in self.held]


__all__ = ["InteractionSettings", "InteractionStage"]
