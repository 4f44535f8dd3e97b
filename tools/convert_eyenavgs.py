"""Convert an EyeNavGS head-motion CSV into a vrshare pose trace (head only).

EyeNavGS (Ding et al., 2025, Apache-2.0) logs each eye separately, alternating
left (``ViewIndex`` 0) and right (1) rows at about 72 Hz (36 Hz in some scenes), with
eye positions in *scene units* (metres times the scene's scale, listed in the
dataset's ``scene_setting.csv``), the head orientation (xyzw), and times in ms.

Each left row and the right row after it become one head sample:

* position: the midpoint of the two eye positions divided by the scene scale (m);
* orientation: the rows' quaternion, renormalised (the data is rounded to 3 decimals);
* time: the mean of the two timestamps, in seconds.

The eye separation divided by the scale comes out at the users' IPD (about 62 mm),
and the right eye lies along the head's +X axis, so the data follows OpenXR's axes,
but in the scene's frame, which ``scene_setting.csv`` tilts (``Quaternion``): applying
that rotation to positions and orientations puts the recorded head upright again
(mean head-up vector within ~5° of +Y, vertical range ~0.1 m instead of ~0.7 m), so
the converter does it. ``--origin`` then translates the trace so that its first head
position is at a given point (e.g. ``0,1.6,0`` to stand a user in a vrshare scene).

    python tools/convert_eyenavgs.py user101_room.csv -o scenes/traces/x.csv \\
        --start 10 --duration 20 --origin 0,1.6,0
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from vrshare.geometry import quat
from vrshare.layout import DEVICES
from vrshare.stages.tracking.trace import Trace, write_trace

IPD_TYPICAL = 0.063  # m, only for the sanity report


def scene_setting(path: Path) -> tuple[float, np.ndarray, str]:
    """Scale and rotation (xyzw) of the scene named in the file name, from the dataset's
    scene_setting.csv beside it; (1, identity) when there is none."""
    settings = path.parent / "scene_setting.csv"
    if settings.is_file():
        with settings.open(encoding="utf-8-sig", newline="") as f:
            for row in csv.DictReader(f):
                if path.stem.endswith("_" + row["Scene_Name"]):
                    rot = np.array([float(v) for v in row["Quaternion"].split(",")])
                    return (float(row["Scale"]), rot / np.linalg.norm(rot),
                            f"scene {row['Scene_Name']!r} in {settings.name}")
    return 1.0, np.array([0.0, 0.0, 0.0, 1.0]), "default (no scene_setting.csv entry found)"


def convert(path: Path, scale: float, rotation: np.ndarray, start: float,
            duration: float | None,
            origin: tuple[float, float, float] | None) -> tuple[Trace, dict]:
    """The head trace of an EyeNavGS file, and facts about it for the report."""
    data = np.genfromtxt(path, delimiter=",", names=True)
    needed = ("ViewIndex", "PositionX", "PositionY", "PositionZ", "QuaternionX", "QuaternionY",
              "QuaternionZ", "QuaternionW", "Timestamp")
    missing = [c for c in needed if c not in (data.dtype.names or ())]
    if missing:
        raise ValueError(f"{path}: not an EyeNavGS trace, missing columns {', '.join(missing)}")
    view = data["ViewIndex"]
    # a left row directly followed by a right row is one head sample
    left = np.flatnonzero((view[:-1] == 0) & (view[1:] == 1))
    right = left + 1
    pos = np.stack([data[c] for c in ("PositionX", "PositionY", "PositionZ")], axis=1)
    q = np.stack([data[c] for c in ("QuaternionX", "QuaternionY", "QuaternionZ",
                                    "QuaternionW")], axis=1)
    head = quat.rotate(rotation, 0.5 * (pos[left] + pos[right]) / scale)
    ipd = np.linalg.norm(pos[right] - pos[left], axis=1) / scale
    orient = quat.normalize(quat.multiply(rotation, quat.normalize(q[left])))
    t = 0.5 * (data["Timestamp"][left] + data["Timestamp"][right]) / 1000.0
    keep = t >= t[0] + start
    if duration is not None:
        keep &= t < t[0] + start + duration
    if not keep.any():
        raise ValueError(f"{path}: no samples in the requested window")
    t, head, orient = t[keep], head[keep], orient[keep]
    if origin is not None:
        head = head - head[0] + np.asarray(origin)
    pose = np.concatenate([head, orient], axis=1)
    trace = Trace(t - t[0], np.full(len(t), DEVICES.index("head")), pose, str(path))
    facts = {"rows": len(data), "samples": len(t), "duration_s": float(t[-1] - t[0]),
             "median_step_ms": float(np.median(np.diff(t)) * 1e3),
             "ipd_mm": float(np.median(ipd) * 1e3)}
    return trace, facts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", type=Path, help="an EyeNavGS userNNN_scene.csv")
    ap.add_argument("-o", "--output", type=Path, required=True, help="trace CSV to write")
    ap.add_argument("--scale", type=float, default=None,
                    help="scene units per metre (default: from scene_setting.csv beside input)")
    ap.add_argument("--start", type=float, default=0.0, help="seconds to skip at the start")
    ap.add_argument("--duration", type=float, default=None, help="seconds to keep")
    ap.add_argument("--origin", default=None,
                    help="x,y,z (m): translate so that the first head position is here")
    args = ap.parse_args(argv)
    scale, rotation, why = scene_setting(args.input)
    if args.scale is not None:
        scale, why = args.scale, f"--scale; rotation from {why}"
    origin = tuple(float(v) for v in args.origin.split(",")) if args.origin else None
    if origin is not None and len(origin) != 3:
        ap.error("--origin needs three comma-separated numbers")
    try:
        trace, facts = convert(args.input, scale, rotation, args.start, args.duration, origin)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    comments = (
        f"head trace converted from EyeNavGS {args.input.name} by tools/convert_eyenavgs.py",
        "EyeNavGS: Ding et al. 2025, 'EyeNavGS: A 6-DoF Navigation Dataset and Record-n-Replay "
        "Software for Real-World 3DGS Scenes in VR', Apache License 2.0",
        f"scale {scale} scene units per metre, levelled by scene rotation "
        f"{np.round(rotation, 4).tolist()} ({why}); start {args.start} s; origin {origin}; "
        "source values rounded to 3 decimals",
    )
    write_trace(args.output, trace, comments)
    print(f"{args.output}: {facts['samples']} head samples over {facts['duration_s']:.1f} s "
          f"(median step {facts['median_step_ms']:.1f} ms, IPD {facts['ipd_mm']:.1f} mm "
          f"at scale {scale}; typical {IPD_TYPICAL * 1e3:.0f} mm)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
