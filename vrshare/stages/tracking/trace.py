"""Recorded pose traces: the CSV format, reading, writing and interpolation.

A trace file is UTF-8 CSV with this header line (lines starting with ``#`` are
comments, allowed anywhere)::

    t,device,px,py,pz,qx,qy,qz,qw

* ``t``: sample time in seconds (any origin; replay starts at the first row);
* ``device``: ``head``, ``left`` or ``right`` (the left and right controllers);
* ``px, py, pz``: position in metres, ``qx, qy, qz, qw``: orientation as a unit
  quaternion (scalar last), device-to-world, in OpenXR's convention (right-handed,
  +Y up, -Z forward).

Rows are in recording order; devices interleave freely and need not share times.
Rows are kept as written (a time going backwards, a NaN, a bad quaternion stay in
the trace) so replay exercises the tracking stage's rejection of bad input.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vrshare.config import ConfigError
from vrshare.geometry import quat
from vrshare.layout import DEVICES

HEADER = ("t", "device", "px", "py", "pz", "qx", "qy", "qz", "qw")


class TraceError(ConfigError):
    """A trace file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Trace:
    """A pose trace: ``N`` rows of time (s), device index and pose (7)."""

    t: np.ndarray  # (N,) float64, s
    device: np.ndarray  # (N,) int64, index into layout.DEVICES
    pose: np.ndarray  # (N, 7) float64: position (m), quaternion xyzw
    source: str = ""  # where it came from, for messages

    def __len__(self) -> int:
        return len(self.t)

    @property
    def duration(self) -> float:
        return float(self.t.max() - self.t.min()) if len(self) else 0.0

    def devices(self) -> list[int]:
        """Indices of the devices that have at least one row."""
        return sorted(int(d) for d in np.unique(self.device))

    def of(self, device: int) -> tuple[np.ndarray, np.ndarray]:
        """Times and poses of one device, in row order."""
        sel = self.device == device
        return self.t[sel], self.pose[sel]


def read_trace(path: str | Path) -> Trace:
    """Parse a trace CSV; raises :class:`TraceError` naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError(f"{path}: trace file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: cannot read trace: {exc}") from None
    times: list[float] = []
    devices: list[int] = []
    poses: list[list[float]] = []
    header_seen = False
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in row]
        if not header_seen:
            if tuple(cells) != HEADER:
                raise TraceError(f"{path}:{lineno}: expected the header {','.join(HEADER)}, "
                                 f"got {','.join(cells)}")
            header_seen = True
            continue
        if len(cells) != len(HEADER):
            raise TraceError(f"{path}:{lineno}: expected {len(HEADER)} fields, got {len(cells)}")
        if cells[1] not in DEVICES:
            raise TraceError(f"{path}:{lineno}: unknown device {cells[1]!r} "
                             f"(expected one of {', '.join(DEVICES)})")
        try:
            values = [float(c) for c in (cells[0], *cells[2:])]
        except ValueError:
            raise TraceError(f"{path}:{lineno}: fields t, px..qw must be numbers") from None
        if not math.isfinite(values[0]):
            raise TraceError(f"{path}:{lineno}: time {cells[0]!r} is not finite")
        times.append(values[0])
        devices.append(DEVICES.index(cells[1]))
        poses.append(values[1:])
    if not header_seen:
        raise TraceError(f"{path}: empty trace (no header line {','.join(HEADER)})")
    if not times:
        raise TraceError(f"{path}: trace has a header but no samples")
    return Trace(np.array(times), np.array(devices, dtype=np.int64),
                 np.array(poses, dtype=np.float64).reshape(-1, 7), str(path))


def write_trace(path: str | Path, trace: Trace, comments: tuple[str, ...] = (),
                decimals: int = 6) -> Path:
    """Write ``trace`` in the CSV format above, with ``#`` comment lines first."""
    path = Path(path)
    fmt = f"{{:.{decimals}f}}"
    with path.open("w", encoding="utf-8", newline="") as f:
        for c in comments:
            f.write(f"# {c}\n")
        f.write(",".join(HEADER) + "\n")
        for t, d, pose in zip(trace.t, trace.device, trace.pose, strict=True):
            f.write(",".join([fmt.format(t), DEVICES[d], *(fmt.format(v) for v in pose)]) + "\n")
    return path


def interpolate(times: np.ndarray, poses: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Poses ``[len(query), 7]`` at ``query`` times: linear in position, slerp in rotation.

    ``times`` must be increasing; queries outside the trace are clamped to its ends.
    """
    query = np.clip(query, times[0], times[-1])
    j = np.clip(np.searchsorted(times, query, side="right"), 1, len(times) - 1)
    t0, t1 = times[j - 1], times[j]
    u = np.where(t1 > t0, (query - t0) / np.where(t1 > t0, t1 - t0, 1.0), 0.0)[:, None]
    a, b = poses[j - 1], poses[j]
    out = np.empty((len(query), 7))
    out[:, :3] = a[:, :3] + u * (b[:, :3] - a[:, :3])
    out[:, 3:] = quat.slerp(a[:, 3:], b[:, 3:], u)
    return out
