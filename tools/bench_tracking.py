"""Tracking stage: milliseconds per frame of ``process()``, per configuration.

Each configuration builds a ``tracking`` stage on its own bank and runs it frame
after frame on a virtual 90 Hz clock (display time one frame ahead), timing only
``process()``; the first ``--warmup`` frames are not counted. Configurations:

* ``demo``: the demo's settings (synthetic source, constant velocity);
* ``synthetic/<predictor>``: the synthetic source with each other predictor;
* ``synthetic/filter+cv``: the 1€ filter on, constant velocity, noisy sensor;
* ``trace/learned``: the bundled EyeNavGS head trace (72 Hz samples, so some frames
  get no new sample), with the learned predictor, as ``scenes/traces/replay.toml``.

Prints median, 95th percentile and mean ms/frame and writes them with ``--json``.

    python tools/bench_tracking.py [--frames 2000] [--warmup 100] [--only demo ...]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vrshare import Frame, StageConfig, WeightBank
from vrshare.stages.tracking import TrackingSettings, TrackingStage

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
}


@dataclass
class Row:
    config: str
    frames: int
    ms_median: float
    ms_p95: float
    ms_mean: float


def run_config(name: str, frames: int, warmup: int) -> Row:
    settings = TrackingSettings(**CONFIGS[name])
    stage = TrackingStage(settings)
    bank = WeightBank()
    stage.setup(bank, StageConfig(settings, frame_hz=FRAME_HZ, base_dir=TRACES))
    times = []
    for k in range(frames + warmup):
        t = k / FRAME_HZ
        frame = Frame(k, t, t + 1 / FRAME_HZ, 1 / FRAME_HZ)
        start = time.perf_counter()
        stage.process(frame, bank)
        times.append(time.perf_counter() - start)
    stage.close()
    ms = np.array(times[warmup:]) * 1e3
    return Row(name, frames, float(np.median(ms)), float(np.percentile(ms, 95)),
               float(ms.mean()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--only", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = [run_config(name, args.frames, args.warmup) for name in args.only]
    print(f"{'configuration':34} {'median ms':>10} {'p95 ms':>8} {'mean ms':>8}")
    for r in rows:
        print(f"{r.config:34} {r.ms_median:10.4f} {r.ms_p95:8.4f} {r.ms_mean:8.4f}")
    if args.json:
        args.json.write_text(json.dumps({"frame_hz": FRAME_HZ,
                                         "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
