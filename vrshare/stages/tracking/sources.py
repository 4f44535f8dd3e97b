"""Where raw poses come from. Every source fills the same ``[3, 9]`` rows each frame.

Row ``d`` (head, left, right) is ``[px, py, pz, qx, qy, qz, qw, t, valid]``: the
newest sample the source has for device ``d`` at the frame's start, its time on the
frame clock's timeline (s), and 1.0 if the device is tracked. A source only reports;
the stage's input gate decides what is usable.

* :class:`SyntheticSource`: :class:`~.synthetic.SyntheticMotion` sampled at
  ``sample_hz`` (samples at multiples of 1/sample_hz, so a sample is up to one
  period old, as from a real sensor), optionally with Gaussian noise.
* :class:`TraceSource`: a recorded trace replayed on the frame clock: with the
  ``virtual`` clock in simulated time, with a real clock in real time, at ``speed``
  times the recorded pace, looping or holding the end.
* :class:`TargetSource`: the ``target_poses`` buffer written each frame by a
  display target (the window's mouse/keyboard head, or OpenXR's located poses).
* :class:`OpticalSource`: an ``optical_tracking`` stage's ``optical_poses``, stamped
  with their exposure times (the measurement time: the predictor carries them to the
  display time) and valid while the newest camera frame saw the device.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from vrshare.backend import to_device
from vrshare.geometry import quat
from vrshare.layout import OPTICAL_POSES, OPTICAL_TIME, OPTICAL_VALID, TARGET_POSES

from .synthetic import SyntheticMotion
from .trace import Trace

ROW = 9  # pose (7), time (s), valid
BLOCK = 256  # synthetic samples computed per call of the scripted motion


class PoseSource(Protocol):
    def read(self, t_now: float, bank: Any, out: Any) -> bool:
        """Fill ``out`` ``[3, 9]`` with the newest samples as of ``t_now`` (s).

        Returns True when the streams restarted (a looping trace wrapped round), so
        the stage forgets velocities across the jump.
        """
        ...


class SyntheticSource:
    """Scripted motion sampled like a sensor: ``sample_hz``, noise in m and rad (std).

    Rows are computed :data:`BLOCK` samples at a time (one vectorised call instead of
    dozens of tiny array operations per frame) and read from that block while the
    frame clock stays inside it; a sample's value does not depend on which block it
    was computed in (its noise is seeded by the seed and the sample's index).
    """

    def __init__(self, seed: int, sample_hz: float, noise_m: float = 0.0,
                 noise_rad: float = 0.0) -> None:
        if sample_hz <= 0:
            raise ValueError(f"sample_hz must be > 0, got {sample_hz}")
        self.motion = SyntheticMotion(seed)
        self.seed = seed
        self.sample_hz = sample_hz
        self.noise = (noise_m, noise_rad)
        self.first = 1  # sample index of block[0]; > last, so the first read computes
        self.block = np.zeros((BLOCK, 3, ROW))

    def _compute(self, first: int) -> None:
        """Rows of samples ``first .. first + BLOCK - 1`` into :attr:`block`."""
        k = np.arange(first, first + BLOCK)
        t = k / self.sample_hz
        pose = self.motion.poses(t)  # BLOCK, 3, 7
        noise_m, noise_rad = self.noise
        if noise_m > 0 or noise_rad > 0:
            dp = np.empty((BLOCK, 3, 3))
            dr = np.empty((BLOCK, 3, 3))
            for i, ki in enumerate(k):
                rng = np.random.default_rng([self.seed, int(ki)])  # same sample, same noise
                dp[i] = rng.normal(0.0, noise_m, (3, 3))
                dr[i] = rng.normal(0.0, noise_rad, (3, 3))
            pose[..., :3] += dp
            pose[..., 3:] = quat.multiply(quat.from_rotvec(dr), pose[..., 3:])
        self.block[..., :7] = pose
        self.block[..., 7] = t[:, None]
        self.block[..., 8] = 1.0
        self.first = first

    def read(self, t_now: float, bank: Any, out: Any) -> bool:
        k = math.floor(t_now * self.sample_hz + 1e-9)
        i = k - self.first
        if not 0 <= i < BLOCK:
            self._compute(k - k % BLOCK)
            i = k - self.first
        to_device(self.block[i], out=out, label="tracking_input")
        return False


class TraceSource:
    """A trace replayed on the frame timeline from the first frame it is read at.

    The rows every device would report are tabulated once, at each time a row of any
    device is delivered, so a frame looks its rows up with one search.
    """

    def __init__(self, trace: Trace, speed: float = 1.0, loop: bool = True) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.trace = trace
        self.speed = speed
        self.loop = loop
        self.t0 = float(trace.t[0])
        steps = np.diff(np.sort(trace.t))
        gap = float(np.median(steps[steps > 0])) if np.any(steps > 0) else 0.01
        self.period = trace.duration + gap  # s of trace time per loop
        streams = [(t, pose, self._due(t, gap)) for t, pose in map(trace.of, range(3))]
        self.events = np.unique(np.concatenate([due for _, _, due in streams]))
        # table[e]: the rows as of events[e - 1] (table[0]: before the first event), with
        # the sample time relative to the trace's first row
        self.table = np.zeros((len(self.events) + 1, 3, ROW))
        for d, (t, pose, due) in enumerate(streams):
            i = np.searchsorted(due, self.events, side="right") - 1
            ok = i >= 0
            rows = self.table[1:, d]
            rows[ok, :7] = pose[i[ok]]
            rows[ok, 7] = t[i[ok]] - self.t0
            rows[:, 8] = ok
        self.start: float | None = None  # frame time of the first read
        self.lap = 0
        self.host = np.zeros((3, ROW))

    @staticmethod
    def _due(t: np.ndarray, gap: float) -> np.ndarray:
        """When each row is delivered (trace time): rows go out in file order, and a row
        whose time goes backwards goes out halfway between its predecessor and the next
        row, so that both are seen and the gate can reject it."""
        due = np.maximum.accumulate(t) if len(t) else t.copy()
        after = np.append(due[1:], due[-1] + gap) if len(t) else due
        back = t < due
        return np.where(back, 0.5 * (due + after), due)

    def read(self, t_now: float, bank: Any, out: Any) -> bool:
        if self.start is None:
            self.start = t_now
        tau = (t_now - self.start) * self.speed  # trace time since its first row
        lap = int(tau // self.period) if self.loop else 0
        tau -= lap * self.period
        wrapped = lap != self.lap
        self.lap = lap
        host = self.host
        host[...] = self.table[int(np.searchsorted(self.events, self.t0 + tau, side="right"))]
        host[:, 7] = self.start + (host[:, 7] + lap * self.period) / self.speed
        to_device(host, out=out, label="tracking_input")
        return wrapped


class TargetSource:
    """Rows written by a display target into the bank's ``target_poses`` (device to device)."""

    def read(self, t_now: float, bank: Any, out: Any) -> bool:
        out[...] = bank[TARGET_POSES]
        return False


class OpticalSource:
    """Rows from an optical tracking stage's outputs (see :mod:`vrshare.layout`)."""

    reads = (OPTICAL_POSES, OPTICAL_VALID, OPTICAL_TIME)

    def read(self, t_now: float, bank: Any, out: Any) -> bool:
        out[:, :7] = bank[OPTICAL_POSES]
        out[:, 7] = bank[OPTICAL_TIME]
        out[:, 8] = bank[OPTICAL_VALID]
        return False
