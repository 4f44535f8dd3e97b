"""Scene filter: milliseconds per frame, array code vs compiled loops vs per-object reference.

For each object count, a random scene (objects uniformly in a 100 m cube around the
viewer, 4 meshes with 1-3 LODs, a tenth of the objects moving every frame) is
filtered frame after frame while the head turns (one degree per frame) by the
``scene_filter`` stage twice, with its array code (``kernel = "numpy"``) and with its
compiled loops (``kernel = "numba"``, when Numba is installed and the backend is
NumPy), each with its own bank, alternating which goes first; and, on the same inputs,
by the brute-force per-object reference. Only the filter itself is timed. The two paths'
outputs are compared every frame (``differ`` counts frames where they are not identical:
an object within rounding of a plane). The reference is slow, so it runs on fewer
frames (``--ref-frames``); its outputs are checked against the array code's on every
frame it runs. Prints median and 95th-percentile ms/frame of each and the ratios (aim:
100k objects in <= 2 ms, 1M in <= 20 ms, on the 2-core development machines).

With ``--demo``, it also runs the demo scene through the renderer on the headless
target, unthrottled (what ``vrshare bench`` does), with ``passthrough`` (every object
at LOD 0) and with ``scene_filter``, for a head standing still near the front wall
facing it (most objects behind) and for the demo's own walk round the table; the
audio stage is left out of all four runs.

    python tools/bench_scene_filter.py [--sizes 10000 100000 1000000] [--frames 50]
        [--ref-frames 3 1 1] [--budget 0] [--hysteresis 0.1]
        [--lod-pixels 160 64 [--eye-height 1024]]
        [--demo scenes/demo.toml] [--demo-frames 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from benchkit import Column, Table, Timer, summary_ms, write_json

from vrshare import Frame, StageConfig, WeightBank, backend, layout
from vrshare.geometry import quat
from vrshare.stages.scene_filter import SceneFilterSettings, SceneFilterStage
from vrshare.stages.scene_filter.reference import reference_filter
from vrshare.stages.scene_filter.synthetic import ObjectsStage, random_scene
from vrshare.testing import FixedEyes, FixedEyesSettings


@dataclass
class Row:
    objects: int
    drawn: float  # mean instances drawn per frame
    stage_frames: int
    array_ms_median: float  # the array code (kernel = "numpy")
    array_ms_p95: float
    compiled_ms_median: float  # the compiled loops (kernel = "numba"); NaN without Numba
    compiled_ms_p95: float
    speedup: float  # array median / compiled median
    differing_frames: int  # frames whose outputs differ between the two (rounding ties)
    reference_frames: int
    reference_ms_median: float
    ratio: float  # reference median / array code median


@dataclass
class _Run:
    """One scene filter with its own bank and input stages."""

    bank: WeightBank
    objects: ObjectsStage
    eyes: FixedEyes
    stage: SceneFilterStage
    seconds: list[float]


def _build(n: int, settings: SceneFilterSettings, seed: int) -> _Run:
    scene = random_scene(np.random.default_rng(seed), n, extent=50.0)
    bank = WeightBank()
    objects = ObjectsStage(scene, moving=n // 10, amplitude=2.0, period=3.0)
    eyes = FixedEyes(FixedEyesSettings(position=(0.0, 1.6, 0.0)))
    stage = SceneFilterStage(settings)
    for st in (objects, eyes, stage):
        st.setup(bank, StageConfig(settings))
    return _Run(bank, objects, eyes, stage, [])


def kernels() -> tuple[str, ...]:
    """The filter paths this machine can time: the array code, and the compiled loops
    when Numba is importable and the backend is NumPy."""
    if backend.active().name != "numpy":
        return ("numpy",)
    try:
        import numba  # noqa: F401
    except ImportError:
        return ("numpy",)
    return ("numpy", "numba")


def run_size(n: int, frames: int, ref_frames: int, settings: SceneFilterSettings,
             seed: int) -> Row:
    """Both paths on the same scene and head motion, alternating which runs first each
    frame; the array code's outputs are checked against the reference's."""
    runs = [_build(n, replace(settings, kernel=k), seed) for k in kernels()]
    to_np = (lambda a: backend.to_host(a)) if backend.active().is_gpu else np.asarray
    sync = (lambda: backend.active().xp.cuda.Device().synchronize()) if backend.active().is_gpu \
        else (lambda: None)
    ref_s, drawn, differing = [], [], 0  # seconds per frame
    ref_every = max(1, frames // max(ref_frames, 1)) if ref_frames else 0
    for k in range(frames + 2):  # two warm-up frames
        frame = Frame(k, k / 90, k / 90, 1 / 90)
        array = runs[0]
        prev = to_np(array.stage.lod).copy() \
            if ref_every and k >= 2 and (k - 2) % ref_every == 0 else None
        for run in runs[::1 - 2 * (k % 2)]:
            run.eyes.orientation = quat.from_yaw_pitch(math.radians(k))
            run.objects.process(frame, run.bank)
            run.eyes.process(frame, run.bank)
            sync()
            with Timer() as t:
                run.stage.process(frame, run.bank)
                sync()
            if k >= 2:
                run.seconds.append(t.wall_s)
        if k < 2:
            continue
        drawn.append(array.stage.drawn)
        differing += any(not _same(array, run, to_np) for run in runs[1:])
        if prev is not None and len(ref_s) < ref_frames:
            host = {name: to_np(array.bank[name]) for name in SceneFilterStage.reads}
            with Timer() as t:
                ref = reference_filter(
                    host[layout.OBJECT_MODEL], host[layout.OBJECT_BOUNDS],
                    host[layout.OBJECT_MESH], host[layout.OBJECT_COLOR],
                    host[layout.OBJECT_IMPORTANCE], host[layout.MESH_LOD_DRAW],
                    host[layout.MESH_LOD_DISTANCE], host[layout.EYE_VIEW],
                    host[layout.EYE_PROJ], prev,
                    hysteresis=settings.lod_hysteresis, budget=settings.instance_budget,
                    lod_pixels=settings.lod_pixels, eye_height_px=settings.eye_height_px)
            ref_s.append(t.wall_s)
            _agree(ref, array.stage, array.bank, to_np)
    st = summary_ms(runs[0].seconds)
    co = summary_ms(runs[-1].seconds if len(runs) > 1 else [])  # NaN without Numba
    rf = summary_ms(ref_s)  # NaN when the reference never ran
    return Row(n, float(np.mean(drawn)), len(runs[0].seconds), st["median"], st["p95"],
               co["median"], co["p95"], st["median"] / co["median"], differing,
               len(ref_s), rf["median"], rf["median"] / st["median"])


def _same(a: _Run, b: _Run, to_np) -> bool:
    """The two paths drew the same instances, ranges and LODs."""
    count = a.stage.drawn
    return (count == b.stage.drawn
            and np.array_equal(to_np(a.bank[layout.DRAW_RANGES]), to_np(b.bank[layout.DRAW_RANGES]))
            and np.array_equal(to_np(a.bank[layout.INSTANCES])[:count],
                               to_np(b.bank[layout.INSTANCES])[:count])
            and np.array_equal(to_np(a.stage.lod), to_np(b.stage.lod)))


def _agree(ref, stage: SceneFilterStage, bank: WeightBank, to_np) -> None:
    """Stop the benchmark if the stage and the reference disagree beyond rounding ties."""
    count = stage.drawn
    sure = (ref.cull_margin > 1e-3) & (ref.lod_margin > 1e-3)
    if sure.all():
        same = (np.array_equal(to_np(bank[layout.INSTANCES])[:count], ref.instances)
                and np.array_equal(to_np(bank[layout.DRAW_RANGES]), ref.draw_ranges))
    else:  # an object within rounding of a plane or switch distance: compare counts only
        same = abs(count - int(ref.kept.sum())) <= int((~sure).sum())
    if not same:
        raise SystemExit(f"stage and reference disagree ({count} vs {int(ref.kept.sum())} drawn)")


# Standing 1.5 m from the front wall (z = +4 m), facing it: a yaw of 180 degrees.
AWAY_POSE = "0.0,1.6,2.5,0.0,1.0,0.0,0.0"  # m, quaternion xyzw


def demo_runs(demo: Path, frames: int) -> list[dict]:
    """Frame times of the demo with passthrough vs scene_filter, facing away and walking."""
    from vrshare.config import StageSpec, load_run_file
    from vrshare.display import open_display

    results = []
    columns = [Column("view", 5), Column("stage", 13), Column("drawn", 11),
               Column("frame ms", 9), Column("p95", 8), Column("stage ms", 9),
               Column("render ms", 10)]
    with tempfile.TemporaryDirectory() as tmp, Table(columns) as table:
        trace = Path(tmp) / "away.csv"
        trace.write_text("t,device,px,py,pz,qx,qy,qz,qw\n"
                         f"0.0,head,{AWAY_POSE}\n1000.0,head,{AWAY_POSE}\n")
        for view in ("away", "walk"):
            for chooser in ("passthrough", "scene_filter"):
                run_file = load_run_file(demo)
                stages = []
                for spec in run_file.stages:
                    if spec.type == "audio":
                        continue
                    if spec.type == "scene_filter" and chooser == "passthrough":
                        spec = StageSpec(type="passthrough")
                    if spec.type == "tracking" and view == "away":
                        spec = replace(spec, settings={**spec.settings, "source": "trace",
                                                       "trace": str(trace), "loop": False})
                    stages.append(spec)
                with open_display(replace(run_file, stages=stages), target="headless",
                                  clock="unthrottled") as run:
                    stats = run.loop.run(frames)
                    drawn = int(backend.to_host(run.bank[layout.DRAW_RANGES])[:, 1].sum())
                    objects = int(run.bank[layout.OBJECT_MODEL].shape[0])
                summary = {t.name: t for t in stats.summary()}
                results.append({
                    "view": view, "stage": chooser, "frames": stats.frames,
                    "objects": objects, "drawn_last_frame": drawn,
                    "frame_ms_median": summary["frame"].median_ms,
                    "frame_ms_p95": summary["frame"].p95_ms,
                    "stage_ms_median": summary[chooser].median_ms,
                    "render_ms_median": summary["render"].median_ms,
                })
                r = results[-1]
                table.add_row(view, chooser, f"{r['drawn_last_frame']}/{objects}",
                              f"{r['frame_ms_median']:.2f}", f"{r['frame_ms_p95']:.2f}",
                              f"{r['stage_ms_median']:.3f}", f"{r['render_ms_median']:.2f}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--frames", type=int, default=50, help="timed frames per size")
    parser.add_argument("--ref-frames", type=int, nargs="+", default=[3, 1, 1],
                        help="reference frames per size (the last value repeats)")
    parser.add_argument("--budget", type=int, default=0, help="instance budget (0: none)")
    parser.add_argument("--hysteresis", type=float, default=0.1)
    parser.add_argument("--lod-pixels", type=float, nargs="*", default=[],
                        help="switch LODs by projected size (px) instead of distance")
    parser.add_argument("--eye-height", type=int, default=1024,
                        help="px: the eye's height the --lod-pixels sizes refer to")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--demo", type=Path, default=None,
                        help="also time this run file with the renderer (headless)")
    parser.add_argument("--demo-frames", type=int, default=200)
    parser.add_argument("--json", type=str, default=None, help="write results here")
    args = parser.parse_args(argv)
    pixels = tuple(args.lod_pixels)
    settings = SceneFilterSettings(args.hysteresis, args.budget, lod_pixels=pixels,
                                   eye_height_px=args.eye_height if pixels else 0)
    b = backend.active()
    lod = (f"lod_pixels {list(pixels)} at {args.eye_height} px" if pixels
           else "lod by distance")
    print(f"backend: {b.name} ({b.device}); budget {args.budget}, hysteresis {args.hysteresis}, "
          f"{lod}; paths: {', '.join(kernels())}")
    columns = [Column("objects", 9), Column("drawn", 8), Column("array ms", 9),
               Column("p95", 7), Column("compiled ms", 11), Column("p95", 7),
               Column("speedup", 7), Column("differ", 6), Column("frames", 6),
               Column("reference ms", 13), Column("frames", 6), Column("ref ratio", 9)]
    rows = []
    with Table(columns) as table:
        for i, n in enumerate(args.sizes):
            ref_frames = args.ref_frames[min(i, len(args.ref_frames) - 1)]
            row = run_size(n, args.frames, ref_frames, settings, args.seed)
            rows.append(row)
            table.add_row(row.objects, f"{row.drawn:.0f}", f"{row.array_ms_median:.3f}",
                          f"{row.array_ms_p95:.3f}", f"{row.compiled_ms_median:.3f}",
                          f"{row.compiled_ms_p95:.3f}", f"{row.speedup:.2f}",
                          row.differing_frames, row.stage_frames,
                          f"{row.reference_ms_median:.1f}", row.reference_frames,
                          f"{row.ratio:.0f}")
    demo = []
    if args.demo is not None:
        print(f"\n{args.demo} with the renderer, headless, unthrottled, {args.demo_frames} frames")
        demo = demo_runs(args.demo, args.demo_frames)
    if args.json:
        write_json(args.json, {"backend": b.name, "device": b.device, "budget": args.budget,
                               "hysteresis": args.hysteresis, "lod_pixels": list(pixels),
                               "eye_height_px": settings.eye_height_px,
                               "kernels": list(kernels()), "rows": [asdict(r) for r in rows],
                               "demo": demo}, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
