"""The ``vrshare`` command: demo, run, bench, sweep, render, info, stages.

Exit codes: 0 the run completed without faults; 1 a stage or step faulted (in a
frame or in ``close``); 2 bad input (a run file, a setting, an unwritable ``--out``:
any :class:`~vrshare.errors.VrshareError`); 130 after SIGINT (Ctrl-C); 143 after
SIGTERM. A signal ends a run as Ctrl-C does (the results are still written, the WAV
and video files finalised); further signals while the run finishes are noted and do
not cut the finishing short (``FORCE_AFTER`` more of them give up at once).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import app, resources
from .errors import VrshareError
from .interrupts import defer
from .pipeline.clock import CLOCK_NAMES
from .pipeline.loop import Activity
from .targets.base import TARGET_NAMES

log = logging.getLogger("vrshare")

TARGETS = ("auto", *TARGET_NAMES, "none")  # "none": the stages alone, nothing drawn

EXIT_OK = 0
EXIT_FAULT = 1  # a stage or step faulted
EXIT_INPUT = 2  # bad input or configuration (VrshareError)
EXIT_SIGNAL = 128  # + the signal number: 130 after SIGINT, 143 after SIGTERM
FORCE_AFTER = 3  # signals while finishing after which vrshare gives up and exits at once


def interrupted(signum: int) -> KeyboardInterrupt:
    """What SIGINT or SIGTERM raises in the main thread, so that the run ends as after
    Ctrl-C: a KeyboardInterrupt whose ``ending`` (which the frame loop records) is the
    signal's name."""
    exc = KeyboardInterrupt(signal.Signals(signum).name)
    exc.signum = signum  # type: ignore[attr-defined]
    exc.ending = signal.Signals(signum).name  # type: ignore[attr-defined]
    return exc


def _say(message: str) -> None:
    """Write to stderr from a signal handler (print could re-enter a busy stream)."""
    try:
        os.write(2, (message + "\n").encode(errors="replace"))
    except OSError:
        pass


class Endings:
    """The command's SIGINT and SIGTERM handling, installed for one ``main`` call.

    The first signal raises :func:`interrupted` while the run is being set up or
    is producing frames (the frame loop turns it into the end of the run); once the
    frames are over (closing, writing results) a signal is only noted, so that the
    results are written whole. Every signal counts for the exit code (128 + the
    first signal's number).
    """

    def __init__(self) -> None:
        self.signals: list[int] = []
        self.raised = False
        self._previous: dict[int, Any] = {}
        self._runs_before = 0

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        self._runs_before = Activity.started
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if defer(signum):
            return  # landed inside a write that must stay whole; raised again at its end
        self.signals.append(signum)
        name = signal.Signals(signum).name
        setting_up = Activity.started == self._runs_before
        if not self.raised and (Activity.running is not None or setting_up):
            self.raised = True
            raise interrupted(signum)
        late = len(self.signals) - (1 if self.raised else 0)
        if late >= FORCE_AFTER:
            _say(f"vrshare: {name} again: giving up on finishing; exiting now")
            os._exit(self.exit_code or EXIT_SIGNAL)
        _say(f"vrshare: {name}: finishing first (closing the run, writing its results); "
             f"{FORCE_AFTER - late} more to give up")

    @property
    def exit_code(self) -> int | None:
        """128 + the first signal received, or None."""
        return EXIT_SIGNAL + self.signals[0] if self.signals else None


def cmd_run(args: argparse.Namespace) -> int:
    frames, seconds = args.frames, args.seconds
    if frames is None and seconds is None:
        seconds = float("inf")  # until the window closes or Ctrl-C
    from .bench import open_target_run

    run = open_target_run(args.file, args.target, args.clock)
    stats, _ = app.finish(run, frames, seconds, str(args.file))
    return EXIT_FAULT if stats.faults else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(target=args.target, seconds=args.seconds, out_dir=args.out)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import bench

    result = bench(args.file, args.frames, args.out, target=args.target,
                   title=f"bench {args.file}")
    print("wrote " + ", ".join(str(p) for p in result.written))
    return EXIT_FAULT if result.stats.faults else EXIT_OK


def _placement(args: argparse.Namespace) -> Any:
    from .sweep import Placement, SweepError

    if args.local and args.address:
        raise SweepError("--local runs here without Ray; --address names a Ray cluster: "
                         "give one of them")
    return Placement(local=args.local, address=args.address, cpus_per_run=args.cpus_per_run)


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import parse_set, sweep

    overrides = [parse_set(text) for text in args.set]
    result = sweep(args.file, overrides, args.out, _placement(args), repeat=args.repeat,
                   frames=args.frames, target=args.target, clock=args.clock)
    print("wrote " + ", ".join(str(p) for p in result.written))
    faulted = any(r.faults for r in result.rows)
    return EXIT_FAULT if result.failed or faulted else EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    from .sweep.render import render

    result = render(args.file, args.trace, args.out, _placement(args), chunk=args.chunk,
                    frames=args.frames, video=args.video)
    print("wrote " + ", ".join(str(p) for p in result.written))
    return EXIT_FAULT if result.failed else EXIT_OK


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


def _seconds(text: str) -> float:
    """``--seconds``: a duration > 0 s (finite, or inf: until closed)."""
    value = float(text)
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text}")
    return value


def _count(text: str) -> int:
    """``--frames``: a whole number >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _cpus(text: str) -> float:
    """``--cpus-per-run``: CPUs Ray reserves for each run, > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _placement_args(p: argparse.ArgumentParser) -> None:
    """Where a batch runs (vrshare.sweep.engine.Placement)."""
    p.add_argument("--address", default=None,
                   help="join this Ray cluster (default: start a local Ray on this machine's "
                        "cores)")
    p.add_argument("--cpus-per-run", type=_cpus, default=1.0,
                   help="CPUs reserved for each task (sets how many run at once)")
    p.add_argument("--local", action="store_true",
                   help="no Ray: one task after another here, each in its own process")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vrshare", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the bundled demo (headless without display/headset)")
    demo.add_argument("--target", choices=TARGETS[:-1], default="auto")
    demo.add_argument("--seconds", type=_seconds, default=None,
                      help="how long to run (default: until closed; 4 s headless)")
    demo.add_argument("--out", type=Path, default=Path("vrshare-demo"),
                      help="folder for the headless video, contact sheet and summary")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run a pipeline/scene file")
    run.add_argument("file", type=Path)
    run.add_argument("--target", choices=TARGETS, default="auto")
    run.add_argument("--clock", choices=CLOCK_NAMES, default=None,
                     help="override the file's [pipeline] clock")
    run.add_argument("--frames", type=_count, default=None)
    run.add_argument("--seconds", type=_seconds, default=None)
    run.set_defaults(func=cmd_run)

    bench = sub.add_parser("bench", help="run unthrottled and report frame times")
    bench.add_argument("file", type=Path)
    bench.add_argument("--frames", type=_count, default=1000)
    bench.add_argument("--out", type=Path, default=Path("results.json"),
                       help="JSON path; the trace and plot are written beside it")
    bench.add_argument("--target", choices=("headless", "none"), default="headless")
    bench.set_defaults(func=cmd_bench)

    sweep = sub.add_parser("sweep", help="bench runs over the product of --set values (Ray)")
    sweep.add_argument("file", type=Path)
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="a dotted key of the run file and the values to sweep "
                            "(display.width=256,512); repeat for a product")
    sweep.add_argument("--repeat", type=_count, default=1, help="runs of each setting")
    sweep.add_argument("--frames", type=_count, default=300, help="frames of each run")
    sweep.add_argument("--out", type=Path, required=True,
                       help="results folder: one row per run, sweep.csv, sweep.png")
    sweep.add_argument("--target", choices=("headless", "none"), default="headless")
    sweep.add_argument("--clock", choices=CLOCK_NAMES, default="unthrottled")
    _placement_args(sweep)
    sweep.set_defaults(func=cmd_sweep)

    render = sub.add_parser("render", help="render a pose trace to images with the ground-truth "
                                           "poses and cameras, in chunks across Ray tasks")
    render.add_argument("file", type=Path)
    render.add_argument("--trace", type=Path, required=True, help="trace CSV of head poses")
    render.add_argument("--out", type=Path, required=True,
                        help="folder: frames/*.png, poses.csv, cameras.json, render.mp4")
    render.add_argument("--frames", type=_count, default=None,
                        help="at most this many frames (default: the whole trace)")
    render.add_argument("--chunk", type=_count, default=60, help="frames per task")
    render.add_argument("--video", action="store_true", help="also write render.mp4")
    _placement_args(render)
    render.set_defaults(func=cmd_render)

    info = sub.add_parser("info", help="backend, compiled loops, GL, OpenXR runtime and "
                                       "audio devices")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_info)

    stages = sub.add_parser("stages", help="list built-in and plugged-in stages")
    stages.set_defaults(func=cmd_stages)
    return p


def main(argv: Sequence[str] | None = None, *, exit_on_leak: bool | None = None) -> int:
    """The command; returns its exit code (see the module docstring).

    After the run has closed, a non-daemon thread that a stage or plug-in started and
    left running is named in a warning; the process then exits anyway (``os._exit``,
    after flushing) when ``exit_on_leak`` (default: when called as the program, with
    ``argv`` None), since such a thread would otherwise keep it alive forever.
    """
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if exit_on_leak is None:
        exit_on_leak = argv is None
    if args.command in ("run", "bench", "sweep", "render") and not args.file.exists():
        try:
            args.file = resources.path("scenes", str(args.file))
        except FileNotFoundError:
            print(f"vrshare: {args.file}: file not found", file=sys.stderr)
            return EXIT_INPUT
    before = set(threading.enumerate())
    endings = Endings()
    endings.install()
    try:
        code = args.func(args)
    except VrshareError as exc:
        print(f"vrshare: {exc}", file=sys.stderr)
        code = EXIT_INPUT
    except KeyboardInterrupt:  # before the frames started (setting up)
        print("vrshare: interrupted", file=sys.stderr)
        code = EXIT_SIGNAL + signal.SIGINT
    finally:
        endings.restore()
    code = endings.exit_code or code
    leaked = [t for t in threading.enumerate()
              if t not in before and t.is_alive() and not t.daemon]
    for t in leaked:
        log.warning("thread %r (started during the run, not a daemon) is still running after "
                    "the run closed%s", t.name, "; exiting anyway" if exit_on_leak else "")
    if leaked and exit_on_leak:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        logging.shutdown()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
