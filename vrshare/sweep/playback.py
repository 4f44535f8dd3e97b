"""The head of a batch render: a stage that puts each frame's ground-truth pose.

:class:`TracePlayback` takes the place of a run file's ``tracking`` stage in
``vrshare render``: frame ``first_frame + i`` gets head pose ``poses[i]`` exactly (no
source, filter or prediction), and the eye matrices :func:`eye_matrices` makes of it,
so the camera parameters written beside the images are the ones they were drawn
with. It writes what the tracking stage writes, so stages that read the head pose
(audio, the scene filter) still find it; the controllers are written as not tracked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import layout
from ..backend import to_device
from ..config import check_ranges, setting
from ..geometry import eyes
from ..pipeline import Frame, Stage, StageConfig
from ..stages.tracking.stage import SYMMETRIC_FOV

Fov = tuple[float, float, float, float]  # left, right, up, down (rad)
Pose = tuple[float, float, float, float, float, float, float]  # px py pz (m), qx qy qz qw


@dataclass
class PlaybackSettings:
    """The frames' head poses and the eyes' parameters (a render takes these from the run
    file's tracking stage; the defaults are that stage's)."""

    ipd: float = setting(eyes.DEFAULT_IPD, ge=0, le=1, unit="m")
    near: float = setting(0.05, gt=0, unit="m")
    far: float = setting(100.0, gt=0, unit="m")  # > near
    fov_left: Fov = setting(SYMMETRIC_FOV, gt=-np.pi / 2, lt=np.pi / 2, unit="rad")
    fov_right: Fov = setting(SYMMETRIC_FOV, gt=-np.pi / 2, lt=np.pi / 2, unit="rad")
    # frame first_frame + i: poses[i], device to world; the last one holds after them
    poses: tuple[Pose, ...] = setting(((0.0, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0),), unit="m")
    first_frame: int = setting(0, ge=0)

    def __post_init__(self) -> None:
        check_ranges(self)
        if not self.poses:
            raise ValueError("'poses': at least one pose is needed")
        eye_matrices(np.asarray(self.poses[0], np.float64), self)  # near < far, fov order


def eye_matrices(pose: np.ndarray, s: PlaybackSettings) -> tuple[np.ndarray, np.ndarray]:
    """(view, proj), each (2, 4, 4) float32 (left, right; row-major, acting on column
    vectors) of head pose ``pose`` (7: metres, quaternion xyzw)."""
    view = np.asarray(eyes.eye_views(pose, s.ipd), np.float32)
    proj = np.array([eyes.projection(s.fov_left, s.near, s.far),
                     eyes.projection(s.fov_right, s.near, s.far)], np.float32)
    return view, proj


class TracePlayback(Stage):
    """Ground-truth head poses, one per frame, and their eye matrices."""

    name = "trace_playback"
    writes = (layout.HEAD_POSE, layout.DEVICE_POSES, layout.DEVICE_VALID, layout.EYE_VIEW,
              layout.EYE_PROJ)
    Settings = PlaybackSettings

    def setup(self, bank: object, config: StageConfig) -> None:
        s: PlaybackSettings = self.settings
        self.poses = np.asarray(s.poses, np.float64)  # (n, 7) host: eye_matrices is host maths
        self.head_pose = bank.state(layout.HEAD_POSE, (7,), "float32")
        self.device_poses = bank.state(layout.DEVICE_POSES, (len(layout.DEVICES), 7), "float32")
        self.device_valid = bank.state(layout.DEVICE_VALID, (len(layout.DEVICES),), "float32")
        self.eye_view = bank.state(layout.EYE_VIEW, (2, 4, 4), "float32")
        self.eye_proj = bank.state(layout.EYE_PROJ, (2, 4, 4), "float32")
        valid = np.zeros(len(layout.DEVICES), np.float32)
        valid[0] = 1.0
        to_device(valid, out=self.device_valid, label=layout.DEVICE_VALID)
        self.process(Frame(s.first_frame, 0.0, 0.0, 0.0), bank)

    def process(self, frame: Frame, bank: object) -> None:
        i = min(max(frame.index - self.settings.first_frame, 0), len(self.poses) - 1)
        pose = self.poses[i]
        view, proj = eye_matrices(pose, self.settings)
        rows = np.zeros((len(layout.DEVICES), 7), np.float32)
        rows[:, 6] = 1.0  # controllers: identity orientation, not tracked
        rows[0] = pose
        to_device(rows, out=self.device_poses, label=layout.DEVICE_POSES)
        to_device(rows[0], out=self.head_pose, label=layout.HEAD_POSE)
        to_device(view, out=self.eye_view, label=layout.EYE_VIEW)
        to_device(proj, out=self.eye_proj, label=layout.EYE_PROJ)


__all__ = ["PlaybackSettings", "TracePlayback", "eye_matrices"]
