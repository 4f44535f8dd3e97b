"""The ``vrshare`` command: demo, run, bench, info, stages."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import app, resources
from .errors import VrshareError
from .pipeline.clock import CLOCK_NAMES
from .targets.base import TARGET_NAMES

log = logging.getLogger("vrshare")

TARGETS = ("auto", *TARGET_NAMES, "none")  # "none": the stages alone, nothing drawn


def _open(path: Path, target: str, clock: str | None, **display: Any) -> app.Run:
    """A run of ``path`` with its display path; ``none`` runs the stages alone."""
    if target == "none":
        from .config import load_run_file
        from .scene import load_run_scene

        run_file = load_run_file(path)
        return app.open_run(run_file, clock=clock, scene=load_run_scene(run_file))
    from .display import open_display

    return open_display(path, target=target, clock=clock, **display)


def _progress(total: int | None, description: str):
    """A progress callback and a context that closes the bar (tqdm when present)."""
    try:
        from rich.progress import Progress
    except ImportError:
        from contextlib import nullcontext

        return (lambda n: None), nullcontext()
    bar = Progress(transient=True)
    task = bar.add_task(description, total=total)
    return (lambda n: bar.update(task, completed=n)), bar


def _execute(run: app.Run, frames: int | None, seconds: float | None, title: str):
    from .report import print_summary

    update, bar = _progress(frames, title)
    with bar:
        stats = run.loop.run(frames, seconds=seconds, progress=update)
    print_summary(stats, title=f"{title}: frame times (ms)")
    return stats


def cmd_run(args: argparse.Namespace) -> int:
    frames, seconds = args.frames, args.seconds
    if frames is None and seconds is None:
        seconds = float("inf")  # until the window closes or Ctrl-C
    with _open(args.file, args.target, args.clock) as run:
        stats = _execute(run, frames, seconds, str(args.file))
    return 1 if stats.faults else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(target=args.target, seconds=args.seconds, out_dir=args.out)


def cmd_bench(args: argparse.Namespace) -> int:
    from .report import write_results

    with _open(args.file, args.target, "unthrottled") as run:
        stats = _execute(run, args.frames, None, f"bench {args.file}")
        report = run.bank.report().as_dict()
    report["transfers_per_frame"] = (
        (report["transfers_to_device"] + report["transfers_to_host"]) / max(stats.frames, 1))
    paths = write_results(stats, args.out, {"file": str(args.file), "bank": report})
    print(f"transfers per frame (host<->device): {report['transfers_per_frame']:.2f}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 1 if stats.faults else 0


def cmd_info(args: argparse.Namespace) -> int:
    from .info import gather

    data = gather()
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    for section, values in data.items():
        if isinstance(values, dict):
            print(f"{section}:")
            for k, v in values.items():
                print(f"  {k}: {v}")
        else:
            print(f"{section}: {values}")
    return 0


def cmd_stages(args: argparse.Namespace) -> int:
    from .pipeline import available

    for entry in available():
        print(f"{entry.name:<16} {entry.origin:<20} {entry.target}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vrshare", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the bundled demo (headless without display/headset)")
    demo.add_argument("--target", choices=TARGETS[:-1], default="auto")
    demo.add_argument("--seconds", type=float, default=None,
                      help="how long to run (default: until closed; 4 s headless)")
    demo.add_argument("--out", type=Path, default=Path("vrshare-demo"),
                      help="folder for the headless video, contact sheet and summary")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run a pipeline/scene file")
    run.add_argument("file", type=Path)
    run.add_argument("--target", choices=TARGETS, default="auto")
    run.add_argument("--clock", choices=CLOCK_NAMES, default=None,
                     help="override the file's [pipeline] clock")
    run.add_argument("--frames", type=int, default=None)
    run.add_argument("--seconds", type=float, default=None)
    run.set_defaults(func=cmd_run)

    bench = sub.add_parser("bench", help="run unthrottled and report frame times")
    bench.add_argument("file", type=Path)
    bench.add_argument("--frames", type=int, default=1000)
    bench.add_argument("--out", type=Path, default=Path("results.json"),
                       help="JSON path; the trace and plot are written beside it")
    bench.add_argument("--target", choices=("headless", "none"), default="headless")
    bench.set_defaults(func=cmd_bench)

    info = sub.add_parser("info", help="backend, GL, OpenXR runtime and audio devices")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_info)

    stages = sub.add_parser("stages", help="list built-in and plugged-in stages")
    stages.set_defaults(func=cmd_stages)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command in ("run", "bench") and not args.file.exists():
        try:
            args.file = resources.path("scenes", str(args.file))
        except FileNotFoundError:
            print(f"vrshare: {args.file}: file not found", file=sys.stderr)
            return 2
    try:
        return args.func(args)
    except VrshareError as exc:
        print(f"vrshare: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
