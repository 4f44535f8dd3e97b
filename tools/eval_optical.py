"""Evaluate optical tracking on renders of the virtual camera along a recorded head trace.

    python tools/eval_optical.py [TRACE] [--seconds 10] [--size 640 480] [--json PATH]

A room of marker boards (one 4 x 4 grid of 10 cm ArUco markers, 2 cm apart, on each of
four walls ``--wall`` metres from the trace's origin) is drawn headless by
:class:`vrshare.render.camera.VirtualCamera`, from a camera on the head (``--hfov``,
``--noise`` grey levels, ``--exposure-ms`` of motion blur), at ``--rate`` Hz along the
head trace (default: ``scenes/traces/eyenavgs_user101_room.csv``). On the same frames:

* **raw**: single-frame ArUco (OpenCV's default detector, no corner refinement) and
  ``solvePnP(SOLVEPNP_IPPE_SQUARE)`` of one marker, the largest in the image, giving
  the camera's pose through that marker's known place;
* **stage**: the ``optical_tracking`` stage's own solve (sub-pixel corners, every
  room marker in view in one solve, ambiguous/flipped solutions handled).

Reported: camera position (mm) and orientation (degrees) error against the render's
pose, median and p95, over the frames each one gave a pose for (and how many it gave);
the detection rate of markers in view (all four corners inside the image, facing the
camera) against their distance; per-frame cost (detection and solve, wall ms: the
render is not counted) and its ratio; the latency from exposure to the pose being in
the bank, from the stage's cadence (async at its ``rate_hz`` on a 90 Hz display) plus
its measured cost.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vrshare.geometry import quat
from vrshare.geometry.pinhole import CV_FROM_XR, CameraSpec
from vrshare.render.camera import camera_pose, world_to_camera
from vrshare.stages.optical import OpticalSettings, OpticalTrackingStage
from vrshare.stages.optical.markers import BoardSpec
from vrshare.stages.optical.solve import Detector, single_marker_pose
from vrshare.stages.tracking.trace import interpolate, read_trace
from vrshare.targets.headless import standalone_context

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import Column, Table, summary_ms, write_json  # noqa: E402
from optical_rig import MarkerRig, marker_scene_table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRACE = ROOT / "scenes" / "traces" / "eyenavgs_user101_room.csv"
DICT = "4X4_100"
MARKER_M = 0.1  # m
DISTANCE_BINS = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 8.0)  # m
FRAME_HZ = 90.0  # display rate the stage's cadence is counted against


def room_boards(wall: float, height: float) -> list[BoardSpec]:
    """A 4 x 4 grid on each wall, ``wall`` m from the origin, centred at ``height`` m."""
    faces = [((0.0, height, -wall), (0.0, 0.0, 0.0)), ((0.0, height, wall), (0.0, 180.0, 0.0)),
             ((-wall, height, 0.0), (0.0, 90.0, 0.0)), ((wall, height, 0.0), (0.0, -90.0, 0.0))]
    return [BoardSpec(kind="grid", cols=4, rows=4, marker_m=MARKER_M, gap_m=0.02, first_id=16 * n,
                      position=p, rotation_deg=r) for n, (p, r) in enumerate(faces)]


def marker_world(corners: np.ndarray) -> np.ndarray:
    """4x4 marker -> world of a marker's world corners (4, 3): centred, +Z its front."""
    x = corners[1] - corners[0]
    y = corners[0] - corners[3]
    m = np.eye(4)
    m[:3, 0] = x / np.linalg.norm(x)
    m[:3, 1] = y / np.linalg.norm(y)
    m[:3, 2] = np.cross(m[:3, 0], m[:3, 1])
    m[:3, 3] = corners.mean(axis=0)
    return m


def errors(t_world_cam: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Position (mm) and angle (deg) between an OpenCV camera -> world transform and the
    true camera pose (7,)."""
    true_m = quat.pose_matrix(truth) @ CV_FROM_XR
    pos = float(np.linalg.norm(t_world_cam[:3, 3] - true_m[:3, 3])) * 1e3
    r = t_world_cam[:3, :3].T @ true_m[:3, :3]
    return pos, math.degrees(math.acos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0)))


def in_view(corners: np.ndarray, t_cam_world: np.ndarray, k: np.ndarray,
            size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Which markers (N, 4, 3 world corners) are fully in the image and facing the
    camera, and their distances (m)."""
    p = corners @ t_cam_world[:3, :3].T + t_cam_world[:3, 3]
    normal = np.cross(p[:, 3] - p[:, 0], p[:, 1] - p[:, 0])
    front = np.einsum("ij,ij->i", normal, p.mean(axis=1)) < 0
    ahead = (p[..., 2] > 0.05).all(axis=1)
    uv = p[..., :2] / np.maximum(p[..., 2:], 1e-9) @ k[:2, :2].T + k[:2, 2]
    inside = ((uv >= 0) & (uv <= np.array(size) - 1)).all(axis=(1, 2))
    return front & ahead & inside, np.linalg.norm(p.mean(axis=1), axis=1)


def summary(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, float)
    if not v.size:
        return {"median": math.nan, "p95": math.nan, "n": 0}
    return {"median": float(np.median(v)), "p95": float(np.percentile(v, 95)), "n": int(v.size)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", nargs="?", type=Path, default=TRACE)
    ap.add_argument("--seconds", type=float, default=10.0, help="of the trace, from its start")
    ap.add_argument("--rate", type=float, default=30.0, help="camera frames per second")
    ap.add_argument("--size", nargs=2, type=int, default=(640, 480), metavar=("W", "H"))
    ap.add_argument("--hfov", type=float, default=60.0, help="horizontal field of view (deg)")
    ap.add_argument("--wall", type=float, default=1.0, help="walls' distance from origin (m)")
    ap.add_argument("--noise", type=float, default=2.0, help="sensor noise (grey levels)")
    ap.add_argument("--exposure-ms", type=float, default=0.0, help="motion blur (ms)")
    ap.add_argument("--json", type=Path, help="write all figures here")
    args = ap.parse_args(argv)

    trace = read_trace(args.trace)
    t_head, p_head = trace.of(0)
    times = t_head[0] + np.arange(0.0, min(args.seconds, t_head[-1] - t_head[0]), 1 / args.rate)
    cam = CameraSpec(width=args.size[0], height=args.size[1], hfov_deg=args.hfov,
                     noise=args.noise, exposure_ms=args.exposure_ms, rate_hz=args.rate,
                     position=(0.0, 0.0, -0.05))
    height = float(np.median(p_head[:, 1]))
    boards = room_boards(args.wall, height)
    settings = OpticalSettings(camera=cam, board=boards, dictionary=DICT)
    raw = Detector(DICT, subpixel=False)
    k = cam.matrix()
    dist = np.zeros(5)
    res = {"raw": {"pos": [], "ang": [], "cost": []}, "stage": {"pos": [], "ang": [], "cost": []}}
    seen = np.zeros((2, len(DISTANCE_BINS) - 1))  # in view, detected (stage's detector)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = standalone_context()
        rig = MarkerRig(ctx, marker_scene_table(boards, DICT, Path(tmp)), settings, Path(tmp))
        stage: OpticalTrackingStage = rig.stage
        world = stage.layout.corners
        marker_to_world = {int(i): marker_world(c) for i, c in zip(stage.layout.ids, world,
                                                                  strict=True)}
        start = time.perf_counter()
        for t in times:
            def pose_at(tt: float) -> np.ndarray:
                return camera_pose(interpolate(t_head, p_head, np.array([tt]))[0], cam)
            truth = pose_at(float(t))
            image = rig.expose(pose_at, float(t)).copy()
            t0 = time.perf_counter()
            found = raw.detect(image)
            best = None
            if len(found.ids):
                c = found.corners
                d1, d2 = c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]  # the diagonals
                areas = np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) / 2  # px^2
                j = int(np.argmax(areas))
                t_cam_marker = single_marker_pose(found.corners[j], MARKER_M, k, dist)
                if t_cam_marker is not None and int(found.ids[j]) in marker_to_world:
                    best = marker_to_world[int(found.ids[j])] @ np.linalg.inv(t_cam_marker)
            res["raw"]["cost"].append(time.perf_counter() - t0)
            if best is not None:
                e = errors(best, truth)
                res["raw"]["pos"].append(e[0])
                res["raw"]["ang"].append(e[1])
            t0 = time.perf_counter()
            solved = stage.solve_image(image, k, dist)
            res["stage"]["cost"].append(time.perf_counter() - t0)
            if -1 in solved:
                e = errors(np.linalg.inv(solved[-1][0]), truth)
                res["stage"]["pos"].append(e[0])
                res["stage"]["ang"].append(e[1])
            view, distance = in_view(world, CV_FROM_XR @ world_to_camera(truth), k, args.size)
            detected = np.isin(stage.layout.ids, stage.detector.detect(image).ids)
            bins = np.digitize(distance, DISTANCE_BINS) - 1
            np.add.at(seen[0], bins[view], 1)
            np.add.at(seen[1], bins[view & detected], 1)
        wall_s = time.perf_counter() - start
        rig.close()
        ctx.release()

    n = len(times)
    print(f"{args.trace.name}: {n} frames at {args.rate:g} Hz, {args.size[0]}x{args.size[1]}, "
          f"hfov {args.hfov:g} deg, noise {args.noise:g}, exposure {args.exposure_ms:g} ms, "
          f"walls at {args.wall:g} m ({wall_s:.0f} s with the renders)")
    figures: dict[str, dict] = {}
    with Table([Column("method", 8, "<"), Column("poses", 7), Column("pos median", 11),
                Column("pos p95", 9), Column("ang median", 11), Column("ang p95", 9),
                Column("cost median", 12), Column("cost p95", 9)]) as table:
        for name, r in res.items():
            pos, ang, cost = summary(r["pos"]), summary(r["ang"]), summary_ms(r["cost"])
            figures[name] = {"poses": pos["n"], "frames": n, "pos_mm": pos, "angle_deg": ang,
                             "cost_ms": cost}
            table.add_row(name, f"{pos['n']}/{n}", f"{pos['median']:.2f}mm",
                          f"{pos['p95']:.2f}mm", f"{ang['median']:.3f}°", f"{ang['p95']:.3f}°",
                          f"{cost['median']:.2f}ms", f"{cost['p95']:.2f}ms")
    ratio = {key: figures["stage"][key]["p95"] / figures["raw"][key]["p95"]
             for key in ("pos_mm", "angle_deg")}
    ratio["cost_median"] = (figures["stage"]["cost_ms"]["median"]
                            / figures["raw"]["cost_ms"]["median"])
    print(f"stage / raw: position p95 {ratio['pos_mm']:.3f}, angle p95 "
          f"{ratio['angle_deg']:.3f} (aim <= 0.7); cost median {ratio['cost_median']:.2f}x")
    rate_hz = OpticalTrackingStage.rate_hz
    frames = math.ceil(FRAME_HZ / rate_hz)
    latency_ms = {"camera_to_stage_frames": 1, "cadence_frames": frames,
                  "bank_ms": (1 + frames) / FRAME_HZ * 1e3,
                  "stage_cost_median_ms": figures["stage"]["cost_ms"]["median"]}
    print(f"exposure -> pose in the bank: 1 frame to the stage's next run + {frames} frames "
          f"of its cadence (async, {rate_hz:g} Hz at {FRAME_HZ:g} Hz) = "
          f"{latency_ms['bank_ms']:.1f} ms on the virtual clock; the run itself takes "
          f"{latency_ms['stage_cost_median_ms']:.2f} ms (median), well inside it")
    rates = []
    with Table([Column("distance", 10, "<"), Column("in view", 8), Column("detected", 9),
                Column("rate", 6)]) as table:
        for b in range(len(DISTANCE_BINS) - 1):
            total, hit = int(seen[0, b]), int(seen[1, b])
            if not total:
                continue
            label = f"{DISTANCE_BINS[b]:g}-{DISTANCE_BINS[b + 1]:g} m"
            rates.append({"from_m": DISTANCE_BINS[b], "to_m": DISTANCE_BINS[b + 1],
                          "in_view": total, "detected": hit, "rate": hit / total})
            table.add_row(label, total, hit, f"{hit / total:.2f}")
    if args.json:
        write_json(args.json, {
            "trace": str(args.trace), "frames": n, "rate_hz": args.rate, "size": args.size,
            "hfov_deg": args.hfov, "noise": args.noise, "exposure_ms": args.exposure_ms,
            "wall_m": args.wall, "methods": figures, "stage_over_raw": ratio,
            "latency": latency_ms, "detection_by_distance": rates,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
