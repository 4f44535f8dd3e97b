"""What a heavy stage does to the frame: sync, async, and without it, in one run.

Runs the demo pipeline (tracking, scene motion, scene filter, audio, headless render
at 512 x 512) on the real-time vsync clock, alone and with a heavy stage at 10 Hz:
NumPy array work (``numpy``: sorts and element-wise passes over a few million
floats, which release the GIL) or a pure-Python loop (``python``: holds the GIL),
each run on the frame loop (``sync``), on its own worker thread (``async``) and
in a worker process (``process``). Each
heavy run is calibrated to ``--work-ms`` of work on this machine. Prints frame-time
median/p99 (ms), deadline misses and the heavy stage's achieved rate and latency,
with each p99 as a ratio to the pipeline without the heavy stage (aim off the
loop: <= 1.2).

    python tools/bench_async.py [--frames 450] [--work-ms 50] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from benchkit import Column, Table, summary_ms, write_json

from vrshare import Stage, layout, resources
from vrshare.config import StageSpec, load_run_file
from vrshare.display import open_display

HEAVY_RATE_HZ = 10.0


@dataclass
class HeavySettings:
    work_ms: float = 50.0  # calibrated duration of one run (ms)
    kind: str = "numpy"  # "numpy" (releases the GIL) or "python" (holds it)


class Heavy(Stage):
    """A stand-in for a camera-rate tracker or a network: ``work_ms`` of real work
    per run on the head pose, written to its own output."""

    name = "heavy"
    reads = (layout.HEAD_POSE,)
    writes = ("heavy_out",)
    Settings = HeavySettings

    def setup(self, bank, config):
        self.pose = bank[layout.HEAD_POSE]
        self.out = bank.state("heavy_out", 4)
        rng = np.random.default_rng(0)
        self.data = rng.random(1 << 20, dtype=np.float32)
        self.scratch = np.empty_like(self.data)
        self.reps = 1
        t = self._timed()  # calibrate: repetitions of one unit of work for work_ms
        self.reps = max(1, round(self.settings.work_ms / 1e3 / t))

    def _timed(self) -> float:
        t0 = time.perf_counter()
        self._work()
        return time.perf_counter() - t0

    def _work(self) -> float:
        total = 0.0
        for _ in range(self.reps):
            if self.settings.kind == "numpy":
                np.multiply(self.data, 1.0001, out=self.scratch)
                self.scratch.sort()
                total += float(self.scratch[-1])
            else:
                acc = 0
                for i in range(20_000):
                    acc += i * i % 7
                total += acc
        return total

    def process(self, frame, bank):
        self.out[0] = self._work()
        self.out[1:] = self.pose[:3]


def run_case(heavy: str | None, mode: str, frames: int, work_ms: float) -> dict:
    run_file = load_run_file(resources.path("scenes", "demo.toml"))
    if heavy is not None:
        run_file.stages.append(StageSpec(
            type="bench_async:Heavy", mode=mode, rate_hz=HEAVY_RATE_HZ,
            settings={"work_ms": work_ms, "kind": heavy}))
    run = open_display(run_file, target="headless", clock="vsync")
    with run:
        run.loop.run(30)  # warm-up: shader compiles, first uploads
        stats = run.loop.run(frames)
    start = 30  # the rows of the measured run
    total = stats.total[start:stats.count]
    budget = stats.budget_s
    ms = summary_ms(total)
    out = {"heavy": heavy or "none", "mode": mode if heavy else "-",
           "frames": int(total.size), "median_ms": ms["median"], "p99_ms": ms["p99"],
           "deadline_misses": int(np.count_nonzero(total > budget)),
           "budget_ms": budget * 1e3, "faults": [f.describe() for f in stats.faults]}
    if heavy is not None:
        c = stats.cadence["heavy"].as_dict()
        out.update(achieved_hz=c["achieved_hz"], runs=c["runs"], skipped=c["skipped"],
                   latency_ms=c["latency_ms"]["median"])
    return out


def figure(value: float | None) -> str:
    """One decimal, or "-" where there is none (no heavy stage; latency of a sync run)."""
    return "-" if value is None or value != value else f"{value:.1f}"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=450, help="measured frames per case")
    p.add_argument("--work-ms", type=float, default=50.0, help="heavy run length (ms)")
    p.add_argument("--json", type=str, default=None, help="save the figures here")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # "bench_async:Heavy"

    cases = [(None, "-"), ("numpy", "sync"), ("numpy", "async"), ("numpy", "process"),
             ("python", "sync"), ("python", "async"), ("python", "process")]
    cols = [Column("heavy", 7, "<"), Column("mode", 6, "<"), Column("median ms", 10),
            Column("p99 ms", 9), Column("p99 ratio", 9), Column("misses", 7),
            Column("heavy Hz", 9), Column("latency ms", 10)]
    results = []
    with Table(cols) as table:
        for heavy, mode in cases:
            r = run_case(heavy, mode, args.frames, args.work_ms)
            r["p99_ratio"] = r["p99_ms"] / results[0]["p99_ms"] if results else 1.0
            results.append(r)
            table.add_row(r["heavy"], r["mode"], f"{r['median_ms']:.2f}", f"{r['p99_ms']:.2f}",
                          f"{r['p99_ratio']:.2f}", str(r["deadline_misses"]),
                          figure(r.get("achieved_hz")), figure(r.get("latency_ms")))
    print(f"{args.frames} frames per case at 90 Hz (budget {results[0]['budget_ms']:.2f} ms), "
          f"heavy stage {args.work_ms:g} ms per run at {HEAVY_RATE_HZ:g} Hz; aim off the "
          "loop: p99 ratio <= 1.20")
    figures = {"frames": args.frames, "work_ms": args.work_ms, "rate_hz": HEAVY_RATE_HZ,
               "results": results}
    if args.json:
        write_json(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
