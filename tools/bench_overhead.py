"""Framework overhead per stage per frame.

Runs a pipeline of N trivial stages (each adds one to its own 4-float bank buffer)
through the real frame loop, unthrottled, and a bare Python loop calling the same N
functions on the same arrays, in one process, alternating rounds so that machine
noise hits both alike. Prints microseconds per frame for each, their ratio, and the
overhead per stage per frame (aim: <= 2 us).

    python tools/bench_overhead.py [--stages 8] [--frames 20000] [--rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from benchkit import Column, Table, Timer, write_json

from vrshare import FrameLoop, Pipeline, Stage, StageConfig, UnthrottledClock, WeightBank


def touch(buf: np.ndarray) -> None:
    buf[0] += 1.0


def make_stage(i: int) -> Stage:
    class Touch(Stage):
        name = f"touch{i}"
        writes = (f"buf{i}",)

        def setup(self, bank, config):
            self.buf = bank.state(self.writes[0], 4)

        def process(self, frame, bank):
            touch(self.buf)

    return Touch()


def framework(n_stages: int, frames: int) -> float:
    """Seconds for ``frames`` frames through Pipeline + FrameLoop."""
    bank = WeightBank()
    pipe = Pipeline([make_stage(i) for i in range(n_stages)])
    pipe.setup(bank, StageConfig(None))
    loop = FrameLoop(pipe, bank, UnthrottledClock(90))
    with Timer() as t:
        stats = loop.run(frames)
    assert stats.frames == frames and bank["buf0"][0] == frames
    return t.wall_s


def bare(n_stages: int, frames: int) -> float:
    """Seconds for the same work as a plain loop of function calls."""
    bufs = [np.zeros(4, np.float32) for _ in range(n_stages)]
    fns = [touch] * n_stages
    with Timer() as t:
        for _ in range(frames):
            for fn, buf in zip(fns, bufs, strict=True):
                fn(buf)
    assert bufs[0][0] == frames
    return t.wall_s


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stages", type=int, default=8)
    p.add_argument("--frames", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians reported")
    p.add_argument("--json", type=str, default=None, help="save the figures here")
    args = p.parse_args(argv)

    framework(args.stages, 500)  # warm-up
    bare(args.stages, 500)
    fw, bl = [], []
    for _ in range(args.rounds):
        fw.append(framework(args.stages, args.frames) / args.frames * 1e6)
        bl.append(bare(args.stages, args.frames) / args.frames * 1e6)
    fw_us, bare_us = statistics.median(fw), statistics.median(bl)
    per_stage = (fw_us - bare_us) / args.stages
    result = {
        "stages": args.stages, "frames": args.frames, "rounds": args.rounds,
        "framework_us_per_frame": fw_us, "bare_us_per_frame": bare_us,
        "ratio": fw_us / bare_us, "overhead_us_per_stage_per_frame": per_stage,
        "aim_us_per_stage": 2.0,
    }
    with Table([Column("loop", 26, "<"), Column("us/frame", 10)]) as table:
        table.add_row("vrshare Pipeline+FrameLoop", f"{fw_us:.2f}")
        table.add_row("bare Python loop", f"{bare_us:.2f}")
    print(f"ratio {fw_us / bare_us:.2f}x; overhead {per_stage:.2f} us per stage per frame "
          f"(aim <= 2.00) with {args.stages} stages, {args.frames} frames, median of "
          f"{args.rounds} rounds")
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
