"""The tracking stage: raw poses -> gate -> 1€ filter -> prediction -> bank outputs.

Each frame, for the head and both controllers:

1. the source reports its newest sample per device (see :mod:`.sources`);
2. the input gate rejects non-finite, non-unit-quaternion and backwards-in-time
   samples and notes lost devices (:mod:`.gate`); counts are in :attr:`rejections`
   and logged about once a second while they grow;
3. accepted samples go through the 1€ filter (:mod:`.one_euro`);
4. the predictor extrapolates every device from its newest good sample to
   ``frame.t_display``, at most ``max_extrapolation_ms`` ahead (a device with no new
   sample is held and extrapolated no further);
5. ``device_poses``, ``head_pose``, ``device_valid``, ``eye_view`` and ``eye_proj``
   are written in place (shapes, dtypes and units in :mod:`vrshare.layout`).

A device never seen yet sits at a rest pose (head at eye height, controllers in
front of the hips) with ``device_valid`` 0; one without a good sample for
``lost_after_ms`` keeps its last pose with ``device_valid`` 0. No NaN or infinity
reaches the outputs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vrshare.backend import array_module, asarray_like, to_device, to_host
from vrshare.config import check_ranges, setting
from vrshare.geometry import eyes
from vrshare.layout import (
    DEVICE_POSES,
    DEVICE_VALID,
    DEVICES,
    EYE_PROJ,
    EYE_VIEW,
    HEAD_POSE,
    PREDICTOR_WEIGHTS,
    TARGET_FOV,
    TARGET_POSES,
)
from vrshare.pipeline import DEFAULT_FRAME_HZ, Frame, Stage, StageConfig

from . import learned
from .gate import KINDS, InputGate
from .one_euro import OneEuroFilter, OneEuroParams
from .predict import METHODS, Predictor
from .sources import (
    ROW,
    OpticalSource,
    PoseSource,
    SyntheticSource,
    TargetSource,
    TraceSource,
)
from .trace import read_trace

log = logging.getLogger(__name__)

REST_POSES = np.array([  # m, identity orientation: where unseen devices sit
    [0.0, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0],
    [-0.2, 1.15, -0.3, 0.0, 0.0, 0.0, 1.0],
    [0.2, 1.15, -0.3, 0.0, 0.0, 0.0, 1.0],
])
LEARN_QUEUE = 16  # predictions awaiting their true pose per device (> frames per horizon)
SYMMETRIC_FOV = (-0.8727, 0.8727, 0.8727, -0.8727)  # rad (50° each way): left, right, up, down
HALF_PI = math.pi / 2  # a field-of-view angle lies strictly between -HALF_PI and HALF_PI

Fov = tuple[float, float, float, float]


@dataclass
class TrackingSettings:
    """The ``[stage.settings]`` of a ``tracking`` stage (units and ranges declared).

    Cross-field checks (a trace file for ``source = "trace"``, ``near < far``, the order
    of the field-of-view angles) are made by :class:`TrackingStage`.
    """

    # optical: an optical_tracking stage's poses (raise max_extrapolation_ms past its
    # latency, e.g. 100 ms: exposure to the bank takes about 45 ms at 30 Hz)
    source: Literal["synthetic", "trace", "desktop", "openxr", "optical"] = "synthetic"
    # synthetic: seed of the scripted motion, sensor rate, sensor noise (std)
    seed: int = setting(0, ge=0)
    sample_hz: float = setting(DEFAULT_FRAME_HZ, gt=0, le=100_000, unit="Hz")
    noise_mm: float = setting(0.0, ge=0, le=1000, unit="mm")
    noise_deg: float = setting(0.0, ge=0, le=180, unit="deg")
    # trace: CSV file (relative to the pipeline file), replay speed, loop at the end
    trace: str = ""
    speed: float = setting(1.0, gt=0, le=1000)
    loop: bool = True
    # 1€ filter: position (Hz, 1/(m/s), Hz) and orientation (Hz, 1/(rad/s), Hz). Off by
    # default: on clean runtime/recorded poses its lag costs more prediction accuracy than
    # its smoothing gains (README, "Tracking"); these values are its low-lag corner
    filter: bool = False
    min_cutoff: float = setting(4.0, gt=0, unit="Hz")
    beta: float = setting(30.0, ge=0, unit="s/m")
    d_cutoff: float = setting(1.0, gt=0, unit="Hz")
    rot_min_cutoff: float = setting(4.0, gt=0, unit="Hz")
    rot_beta: float = setting(3.0, ge=0, unit="s/rad")
    rot_d_cutoff: float = setting(1.0, gt=0, unit="Hz")
    # prediction to the display time
    predictor: Literal["none", "constant_velocity", "constant_acceleration", "learned"] = \
        "constant_velocity"
    history_k: int = setting(8, ge=1, le=64)  # learned: past deltas per axis
    # learned: RLS forgetting per frame with matured predictions
    forgetting: float = setting(0.999, gt=0, le=1)
    # learned: prior variance of the weights (weight units^2)
    prior: float = setting(1.0, gt=0)
    # learned: frames between solves for the weights; the statistics they are solved
    # from take every frame's matured predictions, so 1 is the exact every-frame fit and
    # N > 1 predicts with weights up to N - 1 frames old, for 1/N of the solves
    solve_every: int = setting(1, ge=1, le=1000)
    weights: str = ""  # learned: .npz to start from (relative to the pipeline file)
    save_weights: str = ""  # learned: .npz written when the stage closes
    # bad input: furthest a pose is predicted past its sample; no good sample for this
    # long: device_valid = 0; accepted | |q| - 1 |; farther positions are rejected
    max_extrapolation_ms: float = setting(50.0, ge=0, le=1000, unit="ms")
    lost_after_ms: float = setting(500.0, gt=0, unit="ms")
    quat_tolerance: float = setting(0.01, gt=0, le=1)
    max_distance_m: float = setting(1000.0, gt=0, unit="m")
    # eyes
    ipd: float = setting(0.063, ge=0, le=1, unit="m")
    near: float = setting(0.05, gt=0, unit="m")
    far: float = setting(100.0, gt=0, unit="m")  # > near
    # left, right, up, down (left and down negative)
    fov_left: Fov = setting(SYMMETRIC_FOV, gt=-HALF_PI, lt=HALF_PI, unit="rad")
    fov_right: Fov = setting(SYMMETRIC_FOV, gt=-HALF_PI, lt=HALF_PI, unit="rad")
    fov_from_target: bool = False  # openxr: per-eye fov from target_fov each frame
    # follow the display target's poses when it senses them (the window's desktop head, a
    # headset; per-eye fov too when it reports one); `source` drives headless runs
    prefer_target: bool = False

    def __post_init__(self) -> None:
        check_ranges(self)


class TrackingStage(Stage):
    """Head and controller poses, predicted to the display time, and the eye matrices."""

    name = "tracking"
    writes = (HEAD_POSE, DEVICE_POSES, DEVICE_VALID, EYE_VIEW, EYE_PROJ)
    Settings = TrackingSettings
    # a few poses through hundreds of small array operations: on a GPU each would be a
    # kernel launch costing more than its work, so it runs on host copies and publishes
    # its outputs (a few hundred bytes a frame) through the counted transfers
    device = "host"

    def __init__(self, settings: TrackingSettings | None = None, *, name: str | None = None):
        super().__init__(settings, name=name)
        s: TrackingSettings = self.settings
        if s.source == "trace" and not s.trace:
            raise ValueError("source = 'trace' needs a trace file: set trace = 'path.csv'")
        if s.fov_from_target and s.source != "openxr":
            raise ValueError("fov_from_target needs source = 'openxr'")
        for eye, fov in (("fov_left", s.fov_left), ("fov_right", s.fov_right)):
            try:  # ranges are the settings' own; this checks near < far and the angles' order
                eyes.projection(fov, s.near, s.far)
            except ValueError as exc:
                raise ValueError(f"{eye}: {exc}") from None
        if s.source in ("desktop", "openxr"):
            self.reads = (TARGET_POSES, TARGET_FOV) if s.fov_from_target else (TARGET_POSES,)
        elif s.source == "optical":
            self.reads = OpticalSource.reads
        elif s.prefer_target:
            self.optional_reads = (TARGET_POSES, TARGET_FOV)
        self.predictor: Predictor | None = None

    # -- life cycle --------------------------------------------------------------------

    def setup(self, bank: Any, config: StageConfig) -> None:
        s: TrackingSettings = self.settings
        self.base_dir = Path(config.base_dir)
        n = len(DEVICES)
        self.device_poses = bank.state(DEVICE_POSES, (n, 7), "float32")
        self.head_pose = bank.state(HEAD_POSE, (7,), "float32")
        self.device_valid = bank.state(DEVICE_VALID, (n,), "float32")
        self.eye_view = bank.state(EYE_VIEW, (2, 4, 4), "float32")
        self.eye_proj = bank.state(EYE_PROJ, (2, 4, 4), "float32")
        xp = array_module(self.device_poses)  # NumPy when placed on the host
        self.xp = xp
        self.follows_target = s.source in ("desktop", "openxr") or (
            s.prefer_target and TARGET_POSES in bank)
        self.fov_from_target = s.fov_from_target or (s.prefer_target and TARGET_FOV in bank)
        if self.follows_target and s.source not in ("desktop", "openxr"):
            log.info("tracking stage %r follows the display target's poses (instead of its "
                     "%s source)%s", self.name, s.source,
                     ", with its per-eye fields of view" if self.fov_from_target else "")
        self.source = self._make_source(s)
        self.raw = xp.zeros((n, ROW))
        self.gate = InputGate(xp, n, s.quat_tolerance, s.max_distance_m)
        self.filter = OneEuroFilter(
            xp, n, OneEuroParams(s.min_cutoff, s.beta, s.d_cutoff),
            OneEuroParams(s.rot_min_cutoff, s.rot_beta, s.rot_d_cutoff)) if s.filter else None
        self.predictor = self._make_predictor(s, bank, xp, n)
        self.predicted = xp.zeros((n, 7))  # position (m), quaternion
        self._predicted_pos, self._predicted_quat = self.predicted[:, :3], self.predicted[:, 3:]
        self._t = self.raw[:, 7]
        self.bad_predictions = xp.zeros(n, dtype=xp.int64)  # replaced by the held sample
        self.rest = asarray_like(REST_POSES, self.device_poses, label="tracking_rest")
        # a device never seen is held at rest: its newest "sample" is the rest pose (with
        # no velocity, so every predictor predicts it there, and it is never learned from)
        self.predictor.history.newest[...] = self.rest
        self.device_poses[...] = self.rest
        self.head_pose[...] = self.device_poses[0]
        self.device_valid[...] = 0.0
        eyes.eye_views(self.head_pose, s.ipd, self.eye_view)
        proj = np.array([eyes.projection(s.fov_left, s.near, s.far),
                         eyes.projection(s.fov_right, s.near, s.far)], dtype=np.float32)
        to_device(proj, out=self.eye_proj, label=EYE_PROJ)
        self.log_every = max(1, round(config.frame_hz))  # frames between rejection reports
        self.lost_after = s.lost_after_ms / 1e3  # s
        self.max_h = s.max_extrapolation_ms / 1e3  # s
        self.reach2 = (2 * s.max_distance_m) ** 2  # m^2: a prediction beyond is not sane
        self._logged = np.zeros((len(KINDS), n), dtype=np.int64)

    def _make_source(self, s: TrackingSettings) -> PoseSource:
        if self.follows_target:
            return TargetSource()
        if s.source == "optical":
            return OpticalSource()
        if s.source == "synthetic":
            return SyntheticSource(s.seed, s.sample_hz, s.noise_mm / 1e3, np.radians(s.noise_deg))
        return TraceSource(read_trace(self.base_dir / s.trace), s.speed, s.loop)

    def _make_predictor(self, s: TrackingSettings, bank: Any, xp: Any, n: int) -> Predictor:
        if s.predictor != "learned":
            return METHODS[s.predictor](xp, n)
        info = None
        if s.weights:
            init, info = learned.load_weights(self.base_dir / s.weights, s.history_k)
        else:
            init = learned.initial_weights(s.history_k)
        weights = bank.param(PREDICTOR_WEIGHTS, init)  # shared by all devices, adapted in place
        return learned.LearnedPredictor(xp, n, weights, k=s.history_k, forgetting=s.forgetting,
                                        prior=s.prior, info=info, queue=LEARN_QUEUE,
                                        solve_every=s.solve_every)

    def close(self) -> None:
        if self.predictor is None:
            return
        self._log_rejections()
        s: TrackingSettings = self.settings
        if s.save_weights and isinstance(self.predictor, learned.LearnedPredictor):
            path = self.predictor.save(self.base_dir / s.save_weights)
            log.info("tracking: saved the learned predictor's weights to %s", path)

    # -- the frame -----------------------------------------------------------------------

    def process(self, frame: Frame, bank: Any) -> None:
        xp = self.xp
        pred = self.predictor
        gate = self.gate
        restarted = self.source.read(frame.t_now, bank, self.raw)
        # a first sample after a loss (or after a replay wrapped) starts from scratch
        late = self._t - gate.t_good > self.lost_after  # before the gate moves t_good on
        accept = gate.check(self.raw)
        fresh = accept if restarted else accept & late
        if self.filter is not None:
            self.filter.reset(fresh)
            self.filter.update(accept, self._t, gate.pose[:, :3], gate.pose[:, 3:])
            pos, q = self.filter.pos, self.filter.quat
        else:
            pos, q = gate.pose[:, :3], gate.pose[:, 3:]
        pred.reset(fresh)
        pred.observe(accept, self._t, pos, q)
        out = self.predicted
        pred.predict(frame.t_display, self.max_h, self._predicted_pos, self._predicted_quat)
        # a prediction is only as sane as its inputs: fall back to the held sample if not.
        # |p|^2 + |q|^2 with a unit q: NaN or infinite in any component fails too
        sane = (out * out).sum(axis=1) <= self.reach2 + 1.0
        self.bad_predictions += ~sane
        poses = xp.where(sane[:, None], out, pred.history.newest)
        self.device_poses[...] = poses
        self.head_pose[...] = poses[0]
        # never seen: t_good is -inf, so not valid
        xp.less_equal(frame.t_now - gate.t_good, self.lost_after, out=self.device_valid)
        eyes.eye_views(poses[0], self.settings.ipd, self.eye_view)
        if self.fov_from_target:
            eyes.projection_batch(bank[TARGET_FOV], self.settings.near, self.settings.far,
                                  self.eye_proj)
        if frame.index % self.log_every == 0:
            self._log_rejections()

    # -- reporting -----------------------------------------------------------------------

    def _counts(self) -> np.ndarray:
        counts = to_host(self.gate.counts, label="tracking_rejections")
        return counts

    @property
    def rejections(self) -> dict[str, int]:
        """Rejected samples by reason, summed over devices (``lost``: losses of tracking)."""
        if self.predictor is None:
            return dict.fromkeys(KINDS, 0)
        return {k: int(c) for k, c in zip(KINDS, self._counts().sum(axis=1), strict=True)}

    @property
    def rejections_by_device(self) -> dict[str, dict[str, int]]:
        """Rejected samples by reason and device (head, left, right)."""
        counts = self._counts()
        return {k: dict(zip(DEVICES, map(int, row), strict=True))
                for k, row in zip(KINDS, counts, strict=True)}

    def counters(self) -> dict[str, int]:
        """Rejected samples by reason, for the run's stats."""
        return {f"rejected {k}": v for k, v in self.rejections.items()}

    def _log_rejections(self) -> None:
        counts = self._counts()
        new = counts - self._logged
        if new.any():
            parts = [f"{k} {DEVICES[d]} x{new[i, d]}" for i, k in enumerate(KINDS)
                     for d in range(len(DEVICES)) if new[i, d]]
            log.warning("tracking stage %r rejected input: %s (totals: %s)", self.name,
                        ", ".join(parts), self.rejections)
            self._logged = counts
