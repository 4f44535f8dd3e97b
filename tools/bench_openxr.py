"""What the OpenXR target costs per frame, next to the headless target, in one process.

Draws the same scene (default: the OpenXR tests' box, or --scene demo.toml) through the
OpenXR target against xrsim in virtual time (xrWaitFrame never sleeps, so both runs are
unthrottled) and through the headless target with the unthrottled clock, at the same
per-eye size, with the same scripted head (tracking source "synthetic") so that only
the target differs, alternating rounds so machine noise hits both alike. Wall time per frame
covers everything (for OpenXR: xrWaitFrame/xrBeginFrame, locating head, hands and views,
acquire/release, xrEndFrame); the frame loop's own 'frame' track leaves out the clock.

    python tools/bench_openxr.py [--frames 400] [--rounds 3] [--size 256] [--scene FILE]
                                 [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
from pathlib import Path

from benchkit import Column, Table, Timer, write_json

ROOT = Path(__file__).resolve().parents[1]
BOX = ROOT / "tests" / "data" / "openxr_box.toml"


def xrsim_manifest() -> Path:
    spec = importlib.util.spec_from_file_location("xrsim_build", ROOT / "tools/xrsim/build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


def one_run(scene: Path, target: str, frames: int, size: int) -> dict[str, float]:
    """Wall ms per frame and the render/submit medians of ``frames`` frames."""
    from vrshare.config import load_run_file
    from vrshare.display import open_display

    run_file = load_run_file(scene)
    for spec in run_file.stages:  # the same scripted head for both: only the target differs
        if spec.type == "tracking":
            spec.settings = {**spec.settings, "source": "synthetic", "fov_from_target": False}
    opts = {"clock": "unthrottled"} if target == "headless" else {}
    with open_display(run_file, target=target, width=size, height=size, **opts) as run:
        run.loop.run(10)  # warm up: shader compile, first uploads
        with Timer() as timer:
            stats = run.loop.run(frames)
        wall = timer.wall_s / frames
    rows = {r.name: r for r in stats.summary()}
    return {"wall_ms": wall * 1e3, "render_ms": rows["render"].median_ms,
            "submit_ms": rows["submit"].median_ms}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=400)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--size", type=int, default=256, help="per-eye width and height (px)")
    p.add_argument("--scene", type=Path, default=BOX)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if not args.scene.exists():
        from vrshare import resources

        args.scene = resources.path("scenes", str(args.scene))

    os.environ["XR_RUNTIME_JSON"] = str(xrsim_manifest())
    os.environ.update(XRSIM_TIMING="virtual", XRSIM_RESOLUTION=f"{args.size}x{args.size}")
    os.environ.pop("XR_ENABLE_API_LAYERS", None)  # no validation layer in the timing
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

    results: dict[str, list[dict[str, float]]] = {"openxr": [], "headless": []}
    for _ in range(args.rounds):
        for target in results:
            results[target].append(one_run(args.scene, target, args.frames, args.size))

    table = {t: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
             for t, runs in results.items()}
    title = (f"{args.scene.name}, 2 x {args.size}^2 px, {args.frames} frames x {args.rounds} "
             "rounds (medians of rounds)")
    columns = [Column("target", 10, "<"), Column("wall ms/frame", 14), Column("render ms", 10),
               Column("submit ms", 10)]
    with Table(columns, title=title) as out:
        for target, row in table.items():
            out.add_row(target, f"{row['wall_ms']:.3f}", f"{row['render_ms']:.3f}",
                        f"{row['submit_ms']:.3f}")
    ratio = table["openxr"]["wall_ms"] / table["headless"]["wall_ms"]
    extra = table["openxr"]["wall_ms"] - table["headless"]["wall_ms"]
    print(f"openxr / headless wall time: {ratio:.2f}x ({extra:+.3f} ms per frame)")
    if args.json:
        write_json(args.json, {"scene": str(args.scene), "size": args.size,
                               "frames": args.frames, "rounds": args.rounds, "runs": results,
                               "median": table, "ratio_wall": ratio})
    return 0


if __name__ == "__main__":
    sys.exit(main())
