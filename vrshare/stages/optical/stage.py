"""The optical tracking stage: camera frames -> marker detections -> device poses.

Each run (by default at most 30 per second, on a worker thread of its own: the frame
never waits for it; see docs/scheduling.md):

1. the frame source hands the newest camera frame and its mid-exposure time
   (:mod:`.frames`); without one, nothing changes but the poses' age;
2. markers are detected, corners refined to sub-pixel accuracy (:mod:`.solve`);
3. the markers seen are grouped by rig (the room, or a device) through the marker
   layout, a ``param`` buffer shared by every stage and device using the same markers
   (:mod:`.markers`); each rig with enough markers is solved in one go, with ambiguous
   and flipped solutions refused;
4. poses go to the world: the camera is either on the head (``camera.mount = "head"``,
   inside-out: its world pose is the room rig's solve, and gives the head's) or fixed
   in the room (``"world"``, outside-in: device rigs' solves are placed from it);
5. ``optical_poses``, ``optical_valid``, ``optical_time`` (the exposure time: the
   measurement time, to which a predictor compensates the latency) and
   ``optical_error`` are written in place (:mod:`vrshare.layout`).

A device not seen in a frame keeps its last pose and time with ``optical_valid`` 0,
and the miss is counted (``counters()``), so a reader can age it by its time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from vrshare.backend import to_host
from vrshare.config import check_ranges, setting
from vrshare.geometry import quat, rotation
from vrshare.geometry.pinhole import CV_FROM_XR, CameraSpec
from vrshare.layout import (
    CAMERA_EXPOSURE,
    CAMERA_IMAGE,
    CAMERA_MATRIX,
    DEVICES,
    OPTICAL_ERROR,
    OPTICAL_MARKERS,
    OPTICAL_POSES,
    OPTICAL_TIME,
    OPTICAL_VALID,
    POSE_SIZE,
)
from vrshare.pipeline import Frame, Stage, StageConfig

from .calibration import Calibration, load_calibration
from .frames import BankFrames, FolderFrames, FrameSource, VideoFrames
from .markers import BoardSpec, MarkerError, MarkerLayout
from .solve import Detector, SolveCounts, solve_rig

log = logging.getLogger(__name__)

ROOM = -1  # rig row of markers fixed in the room


@dataclass
class OpticalSettings:
    """The ``[stage.settings]`` of an ``optical_tracking`` stage.

    ``source``: ``"virtual"`` (the bank's camera buffers, drawn by the virtual camera of
    ``camera``), ``"video"`` (``path``, a file relative to the run file), ``"camera"``
    (live, OpenCV device ``device``) or ``"folder"`` (``path``, images in name order at
    ``camera.rate_hz``). Intrinsics: a ``calibration`` file, else ``camera``'s, else (for
    ``"virtual"``) the bank's ``camera_matrix``.
    """

    source: Literal["virtual", "video", "camera", "folder"] = "virtual"
    path: str = ""
    device: int = setting(0, ge=0)
    calibration: str = ""
    camera: CameraSpec = field(default_factory=CameraSpec)
    dictionary: str = "4X4_50"
    board: list[BoardSpec] = field(default_factory=lambda: [BoardSpec()])
    subpixel: bool = True  # refine corners with cornerSubPix
    subpixel_win: int = setting(3, ge=1, le=15, unit="px")
    min_markers: int = setting(1, ge=1)  # markers a rig needs in view to be solved
    ambiguity: float = setting(0.2, ge=0, le=10)  # IPPE pair within this error ratio: ambiguous
    max_error_px: float = setting(3.0, gt=0, unit="px")  # RMS reprojection error accepted

    def __post_init__(self) -> None:
        check_ranges(self)


class OpticalTrackingStage(Stage):
    """Device poses from camera frames of fiducial markers (see the module docstring)."""

    name = "optical_tracking"
    writes = (OPTICAL_POSES, OPTICAL_VALID, OPTICAL_TIME, OPTICAL_ERROR)
    Settings = OpticalSettings
    mode = "async"
    rate_hz = 30.0
    # OpenCV works on host arrays: on CuPy the stage's copies of what it reads and writes
    # live on the host and cross through the counted transfers
    device = "host"

    def __init__(self, settings: OpticalSettings | None = None, *,
                 name: str | None = None) -> None:
        super().__init__(settings, name=name)
        s: OpticalSettings = self.settings
        self.reads = (CAMERA_IMAGE, CAMERA_EXPOSURE, CAMERA_MATRIX) if s.source == "virtual" else ()
        self.source: FrameSource | None = None
        self.counts = SolveCounts()
        self.frames = 0
        self.missed = np.zeros(len(DEVICES), np.int64)  # runs with a frame, device not solved
        self.rejected_error = 0

    def setup(self, bank: Any, config: StageConfig) -> None:
        s: OpticalSettings = self.settings
        if not s.board:
            raise MarkerError(f"stage {self.name!r}: settings.board lists no markers")
        table = MarkerLayout.from_boards(s.board, s.dictionary).table()
        self.markers = bank.param(f"{self.name}/{OPTICAL_MARKERS}", table)  # shared by content
        self.layout = MarkerLayout.from_table(to_host(self.markers, label=OPTICAL_MARKERS))
        self.by_id = {int(i): n for n, i in enumerate(self.layout.ids)}
        self.detector = Detector(s.dictionary, s.subpixel, s.subpixel_win)
        self.calibration = self._calibration(bank, config)
        mount = np.eye(4)
        mount[:3, :3] = rotation.euler_xyz(s.camera.rotation_deg)
        mount[:3, 3] = s.camera.position
        self.mount = mount @ CV_FROM_XR  # OpenCV camera -> head (or world)
        self.poses = bank.state(OPTICAL_POSES, shape=(len(DEVICES), POSE_SIZE), dtype="float32")
        self.poses[:, 6] = 1.0  # identity orientations until seen
        self.valid = bank.state(OPTICAL_VALID, shape=(len(DEVICES),), dtype="float32")
        self.time = bank.state(OPTICAL_TIME, shape=(len(DEVICES),), dtype="float64")
        self.error = bank.state(OPTICAL_ERROR, shape=(len(DEVICES),), dtype="float32")
        self.previous: dict[int, np.ndarray] = {}  # rig -> last T_cam_rig, for ambiguity
        self.rigs = sorted(set(self.layout.rig.tolist()))
        if s.camera.mount == "head" and any(r != ROOM for r in self.rigs) and ROOM not in self.rigs:
            raise MarkerError(f"stage {self.name!r}: a head-mounted camera places device "
                              "markers from the room's; add a board with device = 'room'")
        if s.camera.mount == "world" and ROOM in self.rigs:
            log.info("optical stage %r: room markers seen from a fixed camera are not used",
                     self.name)
        self.source = self._source(bank, config)

    def _calibration(self, bank: Any, config: StageConfig) -> Calibration | None:
        s: OpticalSettings = self.settings
        if s.calibration:
            return load_calibration(config.base_dir / s.calibration)
        if s.source == "virtual":
            return None  # the bank's camera_matrix, read each run (distortion-free)
        return Calibration(s.camera.matrix(), s.camera.dist_coeffs())

    def _source(self, bank: Any, config: StageConfig) -> FrameSource:
        s: OpticalSettings = self.settings
        if s.source == "virtual":
            return BankFrames(bank)
        if s.source == "video":
            return VideoFrames(s.path, config.base_dir)
        if s.source == "camera":
            return VideoFrames(s.device, config.base_dir)
        return FolderFrames(s.path, config.base_dir, s.camera.rate_hz)

    def process(self, frame: Frame, bank: Any) -> None:
        got = self.source.next(frame.t_now)
        if got is None:
            return
        image, t_exposure = got
        self.frames += 1
        calib = self.calibration
        k, dist = (calib.k, calib.dist) if calib is not None else (bank[CAMERA_MATRIX], None)
        solved = self.solve_image(image, k, dist)
        seen = np.zeros(len(DEVICES), bool)
        world_cam = self._world_from_camera(solved)
        for rig, (t_cam_rig, rms) in solved.items():
            if rig == ROOM:
                if self.settings.camera.mount == "head" and world_cam is not None:
                    head = world_cam @ np.linalg.inv(self.mount)
                    self._write(0, head, t_exposure, rms)
                    seen[0] = True
            elif world_cam is not None:
                self._write(rig, world_cam @ t_cam_rig, t_exposure, rms)
                seen[rig] = True
        self.valid[...] = seen
        self.missed += ~seen & self._tracked()

    def solve_image(self, image: np.ndarray, k: np.ndarray,
                    dist: np.ndarray | None) -> dict[int, tuple[np.ndarray, float]]:
        """T_cam_rig (4x4, OpenCV camera) and RMS error (px) of every rig solved in ``image``."""
        s: OpticalSettings = self.settings
        found = self.detector.detect(image)
        rows = [self.by_id[i] for i in found.ids.tolist() if i in self.by_id]
        img = found.corners[[n for n, i in enumerate(found.ids.tolist()) if i in self.by_id]]
        rows_a = np.asarray(rows, np.int64)
        dist = np.zeros(5) if dist is None else dist
        out: dict[int, tuple[np.ndarray, float]] = {}
        for rig in self.rigs:
            mine = self.layout.rig[rows_a] == rig if len(rows_a) else np.zeros(0, bool)
            if int(mine.sum()) < s.min_markers:
                continue
            solve = solve_rig(self.layout.corners[rows_a[mine]], img[mine], np.asarray(k), dist,
                              self.previous.get(rig), s.ambiguity, self.counts)
            if solve is None:
                continue
            if solve.rms_px > s.max_error_px:
                self.rejected_error += 1
                continue
            self.previous[rig] = solve.t_cam_rig
            out[rig] = (solve.t_cam_rig, solve.rms_px)
        return out

    def _world_from_camera(self, solved: dict[int, tuple[np.ndarray, float]]) -> np.ndarray | None:
        """4x4 OpenCV camera -> world of this frame, or None when it is not known."""
        if self.settings.camera.mount == "world":
            return self.mount
        if ROOM not in solved:
            return None
        return np.linalg.inv(solved[ROOM][0])

    def _tracked(self) -> np.ndarray:
        """Device rows this stage produces poses for."""
        rows = np.zeros(len(DEVICES), bool)
        for rig in self.rigs:
            if rig == ROOM:
                rows[0] = self.settings.camera.mount == "head"
            else:
                rows[rig] = True
        return rows

    def _write(self, row: int, m: np.ndarray, t: float, rms: float) -> None:
        q = quat.from_matrix(m[:3, :3])
        self.poses[row, :3] = m[:3, 3]
        self.poses[row, 3:] = q if q[3] >= 0 else -q
        self.time[row] = t
        self.error[row] = rms

    def counters(self) -> dict[str, int]:
        """Frames seen, misses per tracked device, refused solves by reason."""
        out = {"frames": self.frames, "ambiguous": self.counts.ambiguous,
               "flipped": self.counts.flipped, "failed": self.counts.failed,
               "over max_error_px": self.rejected_error}
        for row in np.flatnonzero(self._tracked()):
            out[f"missed {DEVICES[row]}"] = int(self.missed[row])
        return out

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None

