"""Stand-ins for tests, tools and examples: a head held still in front of the scene.

:class:`FixedEyes` writes ``eye_view`` / ``eye_proj`` for a head pose given in its
settings (a run file's ``type = "vrshare.testing:FixedEyes"``), or moved between frames
by setting :attr:`FixedEyes.position` and :attr:`FixedEyes.orientation`. It replaces the
tracking stage where a test wants exact, repeatable eye matrices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import layout
from .backend import to_device
from .config import check_ranges, setting
from .geometry import eyes, quat
from .pipeline import Frame, Stage, StageConfig

Fov = tuple[float, float, float, float]


@dataclass
class FixedEyesSettings:
    """Where the fixed head is and what its eyes see (units and ranges declared)."""

    position: tuple[float, float, float] = setting((0.0, 0.0, 0.0), unit="m")  # head position
    yaw_deg: float = setting(0.0, unit="deg")  # about +Y (positive turns left)
    pitch_deg: float = setting(0.0, unit="deg")  # then about the turned +X (positive looks up)
    ipd: float = setting(eyes.DEFAULT_IPD, ge=0, le=1, unit="m")
    # symmetric half angle, horizontal and vertical
    half_fov_deg: float = setting(45.0, gt=0, lt=90, unit="deg")
    # left, right, up, down instead of half_fov_deg
    fov_deg: Fov | None = setting(None, gt=-90, lt=90, unit="deg")
    near: float = setting(0.05, gt=0, unit="m")
    far: float = setting(100.0, gt=0, unit="m")  # > near

    def __post_init__(self) -> None:
        check_ranges(self)
        eyes.projection(self.fov, self.near, self.far)  # near < far, the angles' order

    @property
    def fov(self) -> Fov:
        """Both eyes' field of view, left, right, up, down (rad)."""
        if self.fov_deg is not None:
            return tuple(math.radians(a) for a in self.fov_deg)  # type: ignore[return-value]
        a = math.radians(self.half_fov_deg)
        return (-a, a, a, -a)


class FixedEyes(Stage):
    """Eye matrices of a head that stays where it is put (both eyes share one fov)."""

    name = "fixed_eyes"
    writes = (layout.EYE_VIEW, layout.EYE_PROJ)
    Settings = FixedEyesSettings

    def __init__(self, settings: FixedEyesSettings | None = None, *,
                 name: str | None = None) -> None:
        super().__init__(settings, name=name)
        s: FixedEyesSettings = self.settings
        self.position = np.asarray(s.position, np.float64)  # m, set between frames to move
        self.orientation = quat.from_yaw_pitch(math.radians(s.yaw_deg),
                                               math.radians(s.pitch_deg))  # [x, y, z, w]
        proj = np.asarray(eyes.projection(s.fov, s.near, s.far))
        self.proj_host = np.stack([proj, proj])

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """(view, proj), each (2, 4, 4) float64 (left, right), for the current pose."""
        pose = np.concatenate([self.position, self.orientation])
        return eyes.eye_views(pose, self.settings.ipd), self.proj_host

    def setup(self, bank: Any, config: StageConfig) -> None:
        self.view = bank.state(layout.EYE_VIEW, (2, 4, 4), "float32")
        self.proj = bank.state(layout.EYE_PROJ, (2, 4, 4), "float32")
        to_device(self.proj_host.astype(np.float32), out=self.proj, label=layout.EYE_PROJ)
        self.process(Frame(-1, 0.0, 0.0, 0.0), bank)

    def process(self, frame: Frame, bank: Any) -> None:
        view, _ = self.matrices()
        to_device(view.astype(np.float32), out=self.view, label=layout.EYE_VIEW)
