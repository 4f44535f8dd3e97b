"""Scripted, deterministic, human-like motion of a head and two controllers.

The motion is a closed-form function of time (no integration, so any time can be
asked for, in any order, with the same answer), built from a seeded random draw:

* **walking**: the head walks a circle of radius 1.5 m, speed swelling from standing
  to ~1 m/s and back every 12 s, with a 1.5 cm vertical bob and 1 cm sway locked
  to the steps;
* **looking around**: yaw, pitch and roll are sums of three slow sinusoids each
  (0.08-0.5 Hz; about ±35°, ±12°, ±3°);
* **fast head turns**: every 3-7 s a yaw turn of 45-120° taking 0.2-0.45 s, with a
  minimum-jerk profile (peak speeds of 300-900 °/s, as people turn to look), each
  turn followed by one back the other way;
* **controllers**: held at the hips/chest in front of the body, following the body's
  yaw, with their own slow gestures (5-12 cm, 0.2-1.2 Hz) and wrist rotation.

Heights follow a standing user (eyes at 1.6 m). Coordinates are OpenXR's.
"""

from __future__ import annotations

import math

import numpy as np

from vrshare.geometry import quat

EYE_HEIGHT = 1.6  # m
WALK_RADIUS = 1.5  # m
WALK_PERIOD = 12.0  # s, standing -> walking -> standing
WALK_SPEED = 1.0  # m/s at the peak
STEP_LENGTH = 0.7  # m
HAND_OFFSETS = np.array([[-0.2, -0.45, -0.3], [0.2, -0.45, -0.3]])  # m, in the body frame
TURN_HORIZON = 3600.0  # s of scripted turns; later the head only looks around


def _min_jerk(u: np.ndarray) -> np.ndarray:
    """The minimum-jerk step from 0 to 1 over u in [0, 1] (clamped outside)."""
    u = np.clip(u, 0.0, 1.0)
    return u ** 3 * (10 - 15 * u + 6 * u * u)


def _axis_angle(axis: int, angle: np.ndarray) -> np.ndarray:
    r = np.zeros((*angle.shape, 3))
    r[..., axis] = angle
    return quat.from_rotvec(r)


class SyntheticMotion:
    """Poses of head, left and right controller at any times; same seed, same motion."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        # look-around: (3 axes: yaw, pitch, roll) x 3 sinusoids
        self.look_freq = rng.uniform(0.08, 0.5, (3, 3))  # Hz
        self.look_amp = rng.uniform(0.5, 1.0, (3, 3)) * np.radians([[20.0], [7.0], [2.0]])
        self.look_phase = rng.uniform(0, 2 * math.pi, (3, 3))
        # fast turns: start time, duration, signed amplitude (each followed by its return)
        gaps = rng.uniform(3.0, 7.0, int(TURN_HORIZON / 3.0))
        starts = np.cumsum(gaps)
        starts = starts[starts < TURN_HORIZON]
        self.turn_start = starts
        self.turn_dur = rng.uniform(0.2, 0.45, len(starts))
        amp = np.radians(rng.uniform(45.0, 120.0, len(starts)))
        sign = np.where(np.arange(len(starts)) % 2 == 0, 1.0, -1.0)
        sign *= rng.choice([-1.0, 1.0]) if len(starts) else 1.0
        self.turn_amp = np.empty_like(amp)
        self.turn_amp[0::2] = amp[0::2]
        self.turn_amp[1::2] = amp[0:len(amp) - 1:2][: len(amp[1::2])]  # come back as far
        self.turn_amp *= sign
        # controllers: per hand, per axis gesture sinusoids and wrist wobble
        self.hand_freq = rng.uniform(0.2, 1.2, (2, 3))  # Hz
        self.hand_amp = rng.uniform(0.05, 0.12, (2, 3))  # m
        self.hand_phase = rng.uniform(0, 2 * math.pi, (2, 3))
        self.wrist_freq = rng.uniform(0.3, 1.5, (2, 3))  # Hz
        self.wrist_amp = np.radians(rng.uniform(10.0, 30.0, (2, 3)))
        self.wrist_phase = rng.uniform(0, 2 * math.pi, (2, 3))

    def _look(self, t: np.ndarray) -> np.ndarray:
        """Yaw, pitch, roll (rad) of the slow looking around, ``[len(t), 3]``."""
        arg = 2 * math.pi * self.look_freq[None] * t[:, None, None] + self.look_phase[None]
        return (self.look_amp[None] * np.sin(arg)).sum(axis=-1)

    def _turns(self, t: np.ndarray) -> np.ndarray:
        """Yaw (rad) added by the fast turns so far.

        Turns never overlap (gaps of 3 s or more, turns under 0.5 s), so it is the sum
        of the finished turns plus the part done of the latest one.
        """
        started = np.searchsorted(self.turn_start, t, side="right")  # turns begun by t
        last = np.maximum(started - 1, 0)
        done_before = np.concatenate([[0.0], np.cumsum(self.turn_amp)])[last]
        u = (t - self.turn_start[last]) / self.turn_dur[last]
        current = self.turn_amp[last] * _min_jerk(u)
        return np.where(started > 0, done_before + current, 0.0)

    def _walk(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance walked (m) and speed (m/s) at ``t``: closed-form integral of the speed."""
        w = 2 * math.pi / WALK_PERIOD
        speed = WALK_SPEED * 0.5 * (1 - np.cos(w * t))
        dist = WALK_SPEED * 0.5 * (t - np.sin(w * t) / w)
        return dist, speed

    def poses(self, t: np.ndarray | float) -> np.ndarray:
        """Poses ``[len(t), 3, 7]`` (head, left, right) at times ``t`` (s)."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        out = np.empty((len(t), 3, 7))
        dist, speed = self._walk(t)
        ang = dist / WALK_RADIUS
        stride = 2 * math.pi * dist / STEP_LENGTH
        gait = speed / WALK_SPEED
        centre = np.array([0.0, EYE_HEIGHT, -WALK_RADIUS])
        body = np.stack([WALK_RADIUS * np.sin(ang), np.zeros_like(t),
                         WALK_RADIUS * np.cos(ang)], axis=-1) + centre
        head = body.copy()
        head[:, 1] += 0.015 * gait * np.sin(2 * stride)  # two bobs per stride
        head[:, 0] += 0.01 * gait * np.sin(stride)  # sway from foot to foot
        look = self._look(t)
        body_yaw = look[:, 0] * 0.5
        yaw = look[:, 0] + self._turns(t)
        q_head = quat.multiply(quat.multiply(_axis_angle(1, yaw), _axis_angle(0, look[:, 1])),
                               _axis_angle(2, look[:, 2]))
        out[:, 0, :3] = head
        out[:, 0, 3:] = q_head
        q_body = _axis_angle(1, body_yaw)
        for i in range(2):
            gest = self.hand_amp[i] * np.sin(2 * math.pi * self.hand_freq[i] * t[:, None]
                                             + self.hand_phase[i])
            offset = HAND_OFFSETS[i] + gest
            out[:, i + 1, :3] = body + quat.rotate(q_body, offset)
            wrist = self.wrist_amp[i] * np.sin(2 * math.pi * self.wrist_freq[i] * t[:, None]
                                               + self.wrist_phase[i])
            wrist[:, 0] -= math.radians(30.0)  # pointing a little down
            out[:, i + 1, 3:] = quat.multiply(q_body, quat.from_rotvec(wrist))
        return out


def synthetic_trace(seed: int = 0, duration_s: float = 3.0, rate_hz: float = 60.0):
    """A :class:`~.trace.Trace` of all three devices sampled from the scripted motion."""
    from .trace import Trace

    t = np.arange(round(duration_s * rate_hz)) / rate_hz
    poses = SyntheticMotion(seed).poses(t)  # T, 3, 7
    return Trace(np.repeat(t, 3), np.tile(np.arange(3), len(t)), poses.reshape(-1, 7),
                 f"synthetic seed {seed}")
