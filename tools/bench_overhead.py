"""Framework overhead per stage per frame.

Runs a pipeline of N trivial stages (each adds one to its own 4-float bank buffer)
through the real frame loop, unthrottled; a plain Python loop calling the same N
stages' ``process(frame, bank)``; and a bare Python loop calling the N functions those
stages call on the same arrays: in one process, alternating rounds so that machine
noise hits all alike. Prints microseconds per frame for each (wall, and this thread's
CPU time, which a machine shared with other work disturbs less), and the overhead per
stage per frame of the frame loop over each of the two plain loops (aim: <= 0.5 us over
the bare functions, on CPU time). Over the stages' own calls is what the frame loop
adds (clock, timings, versions, watchdog marks, the stats row); over the bare functions
adds the call of each stage's method too. With ``--baseline REV`` the frame loop of git
revision ``REV`` (its ``vrshare/pipeline`` and ``vrshare/weights.py``) is timed in the
same rounds and its overhead printed beside the current one.

    python tools/bench_overhead.py [--stages 8] [--frames 20000] [--rounds 3]
                                   [--baseline REV] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
from types import ModuleType

import numpy as np
from benchkit import Column, Table, Timer, import_revision, write_json

import vrshare.pipeline
from vrshare import Frame, StageConfig, WeightBank, weights

AIM_US = 0.5  # framework overhead per stage per frame (us)


def touch(buf: np.ndarray) -> None:
    buf[0] += 1.0


BASELINE = "pipeline_baseline"  # the package an older revision's frame loop is imported as
# its files' imports of the rest of vrshare, pointed at the package or the current vrshare
REWRITES = [("from ..weights import", "from .weights import"),
            ("from .. import", "from vrshare import"), ("from ..", "from vrshare."),
            ("from . import backend", "from vrshare import backend"),
            ("from .errors import", "from vrshare.errors import")]


def load_baseline(rev: str) -> ModuleType:
    """The frame loop (pipeline package and bank) of git revision ``rev``."""
    return import_revision(rev, BASELINE, {"vrshare/pipeline": "", "vrshare/weights.py": ""},
                           REWRITES)


def make_stage(i: int, pipeline: ModuleType = vrshare.pipeline) -> object:
    class Touch(pipeline.Stage):
        name = f"touch{i}"
        writes = (f"buf{i}",)

        def setup(self, bank, config):
            self.buf = bank.state(self.writes[0], 4)

        def process(self, frame, bank):
            touch(self.buf)

    return Touch()


def framework(n_stages: int, frames: int, pipeline: ModuleType = vrshare.pipeline,
              bank_module: ModuleType = weights) -> Timer:
    """The time of ``frames`` frames through Pipeline + FrameLoop (of ``pipeline``)."""
    bank = bank_module.WeightBank()
    pipe = pipeline.Pipeline([make_stage(i, pipeline) for i in range(n_stages)])
    pipe.setup(bank, pipeline.StageConfig(None))
    loop = pipeline.FrameLoop(pipe, bank, pipeline.UnthrottledClock(90))
    with Timer() as t:
        stats = loop.run(frames)
    assert stats.frames == frames and bank["buf0"][0] == frames
    return t


def plain(n_stages: int, frames: int) -> Timer:
    """The time of the same stages' ``process`` calls in a plain loop (no books)."""
    bank = WeightBank()
    stages = [make_stage(i) for i in range(n_stages)]
    for st in stages:
        st.setup(bank, StageConfig(None))
    frame = Frame(0, 0.0, 0.0, 1 / 90)
    with Timer() as t:
        for _ in range(frames):
            for st in stages:
                st.process(frame, bank)
    assert bank["buf0"][0] == frames
    return t


def bare(n_stages: int, frames: int) -> Timer:
    """The time of the same work as a plain loop of function calls."""
    bufs = [np.zeros(4, np.float32) for _ in range(n_stages)]
    fns = [touch] * n_stages
    with Timer() as t:
        for _ in range(frames):
            for fn, buf in zip(fns, bufs, strict=True):
                fn(buf)
    assert bufs[0][0] == frames
    return t


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stages", type=int, default=8)
    p.add_argument("--frames", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians reported")
    p.add_argument("--baseline", metavar="REV",
                   help="also time the frame loop of this git revision")
    p.add_argument("--json", type=str, default=None, help="save the figures here")
    args = p.parse_args(argv)

    loops = {"framework": framework, "plain": plain, "bare": bare}
    if args.baseline:
        base = load_baseline(args.baseline)
        loops["baseline"] = lambda n, frames: framework(n, frames, base, base.weights)
    for run in loops.values():  # warm-up
        run(args.stages, 500)
    timers: dict[str, list[Timer]] = {side: [] for side in loops}
    for _ in range(args.rounds):
        for side, run in loops.items():
            timers[side].append(run(args.stages, args.frames))

    def us(side: str, clock: str) -> float:
        return statistics.median(getattr(t, clock) for t in timers[side]) / args.frames * 1e6

    result = {"stages": args.stages, "frames": args.frames, "rounds": args.rounds,
              "aim_us_per_stage": AIM_US, "baseline": args.baseline}
    for clock, key in (("wall_s", "wall"), ("cpu_s", "cpu")):
        fw_us, plain_us, bare_us = (us(side, clock) for side in ("framework", "plain", "bare"))
        result[key] = {"framework_us_per_frame": fw_us, "plain_us_per_frame": plain_us,
                       "bare_us_per_frame": bare_us, "ratio": fw_us / bare_us,
                       "overhead_us_per_stage_per_frame": (fw_us - bare_us) / args.stages,
                       "loop_us_per_stage_per_frame": (fw_us - plain_us) / args.stages}
        if args.baseline:
            base_us = us("baseline", clock)
            result[key].update({
                "baseline_us_per_frame": base_us,
                "baseline_overhead_us_per_stage_per_frame": (base_us - bare_us) / args.stages})
    labels = {"framework": "vrshare Pipeline+FrameLoop",
              "baseline": f"the same as of {args.baseline}",
              "plain": "plain loop of the stages' process", "bare": "bare loop of the functions"}
    with Table([Column("loop", 34, "<"), Column("wall us/frame", 13),
                Column("cpu us/frame", 12)]) as table:
        for side in labels:
            if side in loops:
                table.add_row(labels[side], f"{result['wall'][f'{side}_us_per_frame']:.2f}",
                              f"{result['cpu'][f'{side}_us_per_frame']:.2f}")
    for key in ("wall", "cpu"):
        r = result[key]
        print(f"{key}: ratio {r['ratio']:.2f}x; overhead over the functions "
              f"{r['overhead_us_per_stage_per_frame']:.2f} us per stage per frame "
              f"(aim <= {AIM_US:.2f}); over the stages' calls "
              f"{r['loop_us_per_stage_per_frame']:.2f}"
              + (f"; {args.baseline}: {r['baseline_overhead_us_per_stage_per_frame']:.2f} over "
                 "the functions" if args.baseline else ""))
    print(f"{args.stages} stages, {args.frames} frames, median of {args.rounds} rounds")
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
