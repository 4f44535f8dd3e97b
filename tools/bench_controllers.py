"""What controller input costs per frame on the OpenXR target, next to locating the poses.

Opens a graphics-less OpenXR session (XR_MND_headless) on xrsim in virtual time, as the
Touch profile, and for each frame times, in the same process and loop:

* ``locate``: :meth:`XrSession.locate_devices` (xrSyncActions, then the head and both
  grip poses with xrLocateSpace): what every headset frame already paid;
* ``read``: :meth:`XrSession.read_controllers` (every action's state for both hands:
  14 actions x 2 hands xrGetActionState* calls through pyopenxr, plus the profile
  query when one changed);
* ``publish``: :meth:`ControllerInput.publish` (edges, and the four copies to the bank).

It prints each one's median and 99th percentile (wall and thread CPU) and the ratio of
read + publish to locate.

    python tools/bench_controllers.py [--frames 2000] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
from benchkit import ROOT, Column, Samples, Table, write_json


def xrsim_manifest() -> Path:
    spec = importlib.util.spec_from_file_location("xrsim_build", ROOT / "tools/xrsim/build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


def measure(frames: int) -> dict[str, Samples]:
    from vrshare.targets.controls import ControllerInput
    from vrshare.targets.openxr.session import XrSession
    from vrshare.weights import WeightBank

    bank = WeightBank()
    controls = ControllerInput()
    controls.declare(bank)
    poses = np.zeros((3, 9))
    samples = {name: Samples() for name in ("locate", "read", "publish")}
    with XrSession(None) as session:
        for i, frame in enumerate(session.frames()):
            if i == frames:
                break
            samples["locate"].call(session.locate_devices, frame.display_time, poses)
            samples["read"].call(session.read_controllers, controls.state, controls.bound)
            samples["publish"].call(controls.publish, bank, frame.t_display, frame.index)
            frame.end()
    return samples


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=2000)
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)
    os.environ.update(XR_RUNTIME_JSON=str(xrsim_manifest()), XRSIM_TIMING="virtual",
                      XRSIM_PROFILE="oculus/touch_controller")
    samples = measure(args.frames)
    skip = 20  # the first frames: the session is not yet focused (no actions active)
    figures: dict[str, dict[str, float]] = {}
    columns = [Column("step", 8, "<"), Column("wall median us", 14), Column("wall p99 us", 11),
               Column("cpu median us", 13)]
    with Table(columns, title=f"controllers per frame, {args.frames} frames") as table:
        for name, s in samples.items():
            wall, cpu = s.wall_ms(skip), s.cpu_ms(skip)
            figures[name] = {"wall_median_us": wall["median"] * 1e3,
                             "wall_p99_us": wall["p99"] * 1e3,
                             "cpu_median_us": cpu["median"] * 1e3}
            table.add_row(name, f"{wall['median'] * 1e3:.1f}", f"{wall['p99'] * 1e3:.1f}",
                          f"{cpu['median'] * 1e3:.1f}")
    added = figures["read"]["wall_median_us"] + figures["publish"]["wall_median_us"]
    ratio = added / figures["locate"]["wall_median_us"]
    print(f"read + publish / locate (wall medians): {ratio:.2f}")
    figures["ratio_added_to_locate"] = {"value": ratio}
    if args.json:
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
