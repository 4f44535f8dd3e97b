"""Sweep wall time: the same 8 runs one after another (``--local``) and on a local Ray.

8 headless bench runs of the bundled demo at 2 x 256 x 256 px (``--set
display.width=256 display.height=256``, the repeats of one setting), each in its own
process either way, in one invocation: first sequentially, then as Ray tasks on a
local instance with this machine's cores (``--cpus``). Prints the wall time of each
side (s, the whole sweep: process starts, Ray's start and shutdown included) and the
speedup; the ceiling is the number of cores. Mesa llvmpipe spreads each run's drawing
over the cores by itself; ``--lp-threads N`` sets its ``LP_NUM_THREADS`` for every run
of both sides (the runs' processes inherit it).

    python tools/bench_sweep.py [--runs 8] [--frames 300] [--cpus N] [--lp-threads N]
                                [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchkit import Table, Timer, write_json

from vrshare import resources
from vrshare.sweep import Placement, parse_set, sweep


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8, help="runs on each side")
    p.add_argument("--frames", type=int, default=300, help="frames of each run")
    p.add_argument("--size", type=int, default=256, help="px per eye, square")
    p.add_argument("--cpus", type=int, default=os.cpu_count(), help="local Ray CPUs")
    p.add_argument("--lp-threads", type=int, default=None,
                   help="LP_NUM_THREADS for every run (default: llvmpipe's own choice)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    if args.lp_threads is not None:
        os.environ["LP_NUM_THREADS"] = str(args.lp_threads)

    demo = resources.path("scenes", "demo.toml")
    sets = [parse_set(f"display.width={args.size}"), parse_set(f"display.height={args.size}")]
    sides = {"sequential (--local)": Placement(local=True),
             f"local Ray, {args.cpus} CPUs": Placement(num_cpus=args.cpus)}
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        for name, placement in sides.items():
            with Timer() as t:
                done = sweep(demo, sets, Path(tmp) / name.split()[0], placement,
                             repeat=args.runs, frames=args.frames)
            p50 = sorted(r.frame_ms["median"] for r in done.rows if r.ok)
            figures[name] = {"wall_s": t.wall_s, "runs": len(done.rows),
                             "failed": len(done.failed),
                             "run_duration_s": [r.duration_s for r in done.rows],
                             "frame_p50_ms_median": p50[len(p50) // 2] if p50 else None}
    sequential, ray = (figures[n]["wall_s"] for n in sides)
    speedup = sequential / ray
    threads = "" if args.lp_threads is None else f", LP_NUM_THREADS={args.lp_threads}"
    title = (f"{args.runs} runs of the demo, 2 x {args.size}^2 px, {args.frames} frames each"
             f"{threads}, wall time of the whole sweep")
    with Table(["side", "wall s", "runs", "failed", "median run s", "median frame p50 ms"],
               title=title, caption=f"speedup (sequential / Ray): {speedup:.2f}x") as table:
        for name, f in figures.items():
            durations = sorted(f["run_duration_s"])
            table.add_row(name, f"{f['wall_s']:.1f}", f["runs"], f["failed"],
                          f"{durations[len(durations) // 2]:.1f}",
                          f"{f['frame_p50_ms_median']:.2f}")
    if args.json:
        write_json(args.json, {"runs": args.runs, "frames": args.frames, "size": args.size,
                               "cpus": args.cpus, "lp_threads": args.lp_threads,
                               "sides": figures, "speedup": speedup})


if __name__ == "__main__":
    main()
