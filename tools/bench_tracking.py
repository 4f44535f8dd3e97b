"""Tracking stage: milliseconds per frame of ``process()``, per configuration.

Each configuration builds a ``tracking`` stage on its own bank and runs it frame
after frame on a virtual 90 Hz clock (display time one frame ahead), timing only
``process()``; the first ``--warmup`` frames are not counted. Configurations:

* ``demo``: the demo's settings (synthetic source, constant velocity);
* ``synthetic/<predictor>``: the synthetic source with each other predictor;
* ``synthetic/filter+cv``: the 1€ filter on, constant velocity, noisy sensor;
* ``trace/learned``: the bundled EyeNavGS head trace (72 Hz samples, so some frames
  get no new sample), with the learned predictor, as ``scenes/traces/replay.toml``;
* ``trace/learned, solve_every 4``: the same, its weights solved for every 4th frame
  (a revision without that setting runs it as its own, every-frame, default).

Prints median, 95th percentile and mean ms/frame of wall time, and the median of the
thread's CPU time (less disturbed by other processes on a shared machine), and writes
them with ``--json``. With ``--baseline REV`` the tracking package as of git revision
``REV`` (with that revision's geometry package) runs in the same process, frame by
frame alternating with the current one on its own bank, and the table adds its
medians, the ratio baseline / current and the largest difference between the two
stages' ``device_poses`` (m or quaternion units).

    python tools/bench_tracking.py [--frames 2000] [--warmup 100] [--only demo ...]
        [--baseline REV] [--json PATH]
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import ModuleType

import numpy as np
from benchkit import Column, Samples, Table, import_revision, write_json

import vrshare.stages.tracking as current
from vrshare import Frame, StageConfig, WeightBank
from vrshare.layout import DEVICE_POSES

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "scenes" / "traces"
FRAME_HZ = 90.0

CONFIGS: dict[str, dict] = {
    "demo": {"source": "synthetic", "predictor": "constant_velocity"},
    "synthetic/none": {"predictor": "none"},
    "synthetic/constant_acceleration": {"predictor": "constant_acceleration"},
    "synthetic/learned": {"predictor": "learned"},
    "synthetic/filter+cv": {"filter": True, "noise_mm": 0.5, "noise_deg": 0.1},
    "trace/learned": {"source": "trace", "trace": "eyenavgs_user101_room.csv",
                      "predictor": "learned"},
    "trace/learned, solve_every 4": {"source": "trace", "trace": "eyenavgs_user101_room.csv",
                                     "predictor": "learned", "solve_every": 4},
}


@dataclass
class Timing:
    ms_median: float
    ms_p95: float
    ms_mean: float
    cpu_ms_median: float


@dataclass
class Row:
    config: str
    frames: int
    current: Timing
    baseline: Timing | None = None
    ratio: float | None = None  # baseline / current, wall-time medians
    max_pose_diff: float | None = None  # largest |baseline - current| in device_poses


BASELINE = "tracking_baseline"  # the package the older revision is imported as


def load_baseline(rev: str) -> ModuleType:
    """The tracking package as of git revision ``rev``, imported as its own package.

    The geometry package of that revision comes with it (as its subpackage
    ``geometry``, the tracking files' ``vrshare.geometry`` imports pointed there), so
    the baseline is that revision's maths too; both still share the rest of vrshare.
    """
    return import_revision(
        rev, BASELINE, {"vrshare/stages/tracking": "", "vrshare/geometry": "geometry"},
        rewrites=[("from vrshare.geometry", f"from {BASELINE}.geometry"),
                  ("from ..", "from vrshare.")])  # geometry's own imports of vrshare


class Runner:
    """One tracking stage of one package on its own bank, timing each ``process()``."""

    def __init__(self, package: ModuleType, config: dict) -> None:
        known = {f.name for f in fields(package.TrackingSettings)}
        settings = package.TrackingSettings(**{k: v for k, v in config.items() if k in known})
        self.stage = package.TrackingStage(settings)
        self.bank = WeightBank()
        self.stage.setup(self.bank, StageConfig(settings, frame_hz=FRAME_HZ, base_dir=TRACES))
        self.samples = Samples()

    def frame(self, frame: Frame) -> None:
        self.samples.call(self.stage.process, frame, self.bank)

    def timing(self, warmup: int) -> Timing:
        self.stage.close()
        wall = self.samples.wall_ms(skip=warmup)
        return Timing(wall["median"], wall["p95"], wall["mean"],
                      self.samples.cpu_ms(skip=warmup)["median"])


def run_config(name: str, frames: int, warmup: int, baseline: ModuleType | None) -> Row:
    runners = [Runner(current, CONFIGS[name])]
    if baseline is not None:
        runners.append(Runner(baseline, CONFIGS[name]))
    diff = 0.0
    for k in range(frames + warmup):
        t = k / FRAME_HZ
        frame = Frame(k, t, t + 1 / FRAME_HZ, 1 / FRAME_HZ)
        for r in runners[k % 2:] + runners[:k % 2]:  # alternate who goes first
            r.frame(frame)
        if baseline is not None:
            a, b = (np.asarray(r.bank[DEVICE_POSES]) for r in runners)
            diff = max(diff, float(np.abs(a - b).max()))
    row = Row(name, frames, runners[0].timing(warmup))
    if baseline is not None:
        row.baseline = runners[1].timing(warmup)
        row.ratio = row.baseline.ms_median / row.current.ms_median
        row.max_pose_diff = diff
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--only", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--baseline", metavar="REV",
                        help="also time the tracking package of this git revision")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    baseline = load_baseline(args.baseline) if args.baseline else None
    rows = [run_config(name, args.frames, args.warmup, baseline) for name in args.only]
    columns = [Column("configuration", 32, "<"), Column("median", 7), Column("p95", 7),
               Column("mean", 7), Column("cpu", 7)]
    if baseline is not None:
        columns += [Column("base med", 8), Column("base cpu", 8), Column("ratio", 6),
                    Column("pose diff", 9)]
    title = f"tracking process(), ms per frame ({args.frames} frames at {FRAME_HZ:g} Hz)"
    with Table(columns, title=title) as table:
        for r in rows:
            c = r.current
            cells = [r.config, f"{c.ms_median:.3f}", f"{c.ms_p95:.3f}", f"{c.ms_mean:.3f}",
                     f"{c.cpu_ms_median:.3f}"]
            if r.baseline is not None:
                cells += [f"{r.baseline.ms_median:.3f}", f"{r.baseline.cpu_ms_median:.3f}",
                          f"{r.ratio:.2f}", f"{r.max_pose_diff:.1e}"]
            table.add_row(*cells)
    if args.json:
        write_json(args.json, {"frame_hz": FRAME_HZ, "baseline": args.baseline,
                               "rows": [asdict(r) for r in rows]}, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
