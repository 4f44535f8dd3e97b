"""``vrshare render``: a pose trace rendered headless to images, with the ground-truth
poses and camera parameters beside them, in chunks of frames across tasks.

Frame ``k`` is drawn at ``k / frame_hz`` seconds of the trace (the run file's
``[pipeline] frame_hz``, the trace's head rows from its first one, linear in position
and slerped in rotation) for as long as the trace lasts, or ``frames``. The run
file's ``tracking`` stages give way to :class:`~vrshare.sweep.playback.TracePlayback`
with their eye settings (ipd, fields of view, near, far), so the images are drawn
from exactly the poses written beside them. Each chunk is a run of its own on the
virtual clock, started at its first frame's time (time-driven stages such as
``scene_motion`` agree across chunks; a stage's own history, such as the scene
filter's LOD hysteresis, starts afresh at each chunk).

``DIR`` receives::

    frames/frame_000000.png  both eyes side by side (left eye on the left), RGBA
    poses.csv                the frames' head poses as a trace file (t, device, pose)
    cameras.json             per eye: size, field of view, near/far, intrinsics (px);
                             per frame: time, head pose, view and projection matrices
    render.mp4               with ``video``: the frames at frame_hz
    logs/chunk_000000.log    what each chunk printed
"""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import build, load_toml, parse_run_file
from ..errors import require
from ..interrupts import held
from ..layout import DEVICES
from ..report import ResultsError, check_writable, progress_bar, write_atomic
from .engine import Placement, check, execute, worker_error
from .overrides import SweepError
from .playback import PlaybackSettings, TracePlayback, eye_matrices

log = logging.getLogger(__name__)

PLAYBACK_TYPE = f"{TracePlayback.__module__}:{TracePlayback.__name__}"
EYE_KEYS = ("ipd", "near", "far", "fov_left", "fov_right")  # taken from the tracking stage
DEFAULT_CHUNK = 60  # frames per task


@dataclass(frozen=True)
class Chunk:
    """Frames ``first .. first + len(poses) - 1`` of a render: the run file's table
    with the playback stage in it."""

    path: str
    table: dict[str, Any]
    first: int
    frames: int
    frame_hz: float


@dataclass
class ChunkResult:
    """A chunk's images (PNG bytes, in frame order), or its error, and its output."""

    first: int
    images: list[bytes] = field(default_factory=list)
    error: str | None = None
    log: str = ""


def head_rows(trace: Any, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The trace's head times (s, from its first row) and poses, keeping only rows
    that are finite, unit quaternions and later than the row before; what is left out
    is logged."""
    t, poses = trace.of(DEVICES.index("head"))
    if len(t) == 0:
        raise SweepError(f"{source}: the trace has no head rows")
    good = np.isfinite(t) & np.isfinite(poses).all(axis=1)
    good &= np.abs(np.linalg.norm(np.nan_to_num(poses[:, 3:]), axis=1) - 1.0) < 1e-3
    keep = []
    last = -math.inf
    for i in np.flatnonzero(good):
        if t[i] > last:
            keep.append(i)
            last = t[i]
    if len(keep) < len(t):
        log.warning("%s: %d of %d head rows left out of the render (not finite, not a unit "
                    "quaternion, or not later than the row before)", source,
                    len(t) - len(keep), len(t))
    if not keep:
        raise SweepError(f"{source}: no usable head rows")
    return t[keep] - t[keep[0]], poses[keep]


def _eye_settings(run_file: Any) -> dict[str, Any]:
    """The eye keys of the run file's enabled tracking stage (its defaults without
    one), validated as the stage validates them."""
    from ..pipeline import resolve

    cls = resolve("tracking")
    specs = [(i, s) for i, s in enumerate(run_file.stages) if s.type == "tracking" and s.enabled]
    i, spec = specs[0] if specs else (-1, None)
    where = f"{run_file.path} [[stage]] #{i + 1} (tracking) settings"
    settings = build(cls.Settings, spec.settings, where) if spec else cls.Settings()
    return {k: getattr(settings, k) for k in EYE_KEYS}


def _with_playback(table: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """``table`` with its tracking stages replaced by one playback stage."""
    stages = table.get("stage", [])
    tracking = [i for i, s in enumerate(stages) if s.get("type") == "tracking"]
    at = tracking[0] if tracking else 0
    name = (stages[at].get("name") if tracking else None) or "tracking"
    kept = [s for s in stages if s.get("type") != "tracking"]
    kept.insert(at, {"type": PLAYBACK_TYPE, "name": name, "settings": settings})
    return {**table, "stage": kept}


def plan_chunks(path: Path, trace_path: Path, *, chunk: int = DEFAULT_CHUNK,
                frames: int | None = None) -> tuple[list[Chunk], dict[str, Any]]:
    """The chunks of a render, each validated, and the cameras record (see the module
    docstring) with every frame's pose and matrices."""
    from ..stages.tracking.trace import interpolate, read_trace
    from .plan import validate

    if chunk < 1:
        raise SweepError(f"--chunk must be >= 1, got {chunk}")
    table = load_toml(path)
    run_file = parse_run_file(table, path)
    times, poses = head_rows(read_trace(trace_path), str(trace_path))
    hz = run_file.pipeline.frame_hz
    count = math.floor(times[-1] * hz + 1e-9) + 1
    count = min(count, frames) if frames is not None else count
    t = np.arange(count) / hz
    at = interpolate(times, poses, t)
    eye = _eye_settings(run_file)
    chunks = []
    for first in range(0, count, chunk):
        part = [[float(v) for v in row] for row in at[first:first + chunk]]
        settings = {**{k: list(v) if isinstance(v, tuple) else v for k, v in eye.items()},
                    "poses": part, "first_frame": first}
        chunks.append(Chunk(str(path), _with_playback(table, settings), first, len(part), hz))
    validate(parse_run_file(chunks[0].table, path), "headless", True)  # the playback too
    from ..display import display_settings

    display = display_settings(run_file)
    eyes = PlaybackSettings(**eye, poses=(tuple(at[0]),))
    return chunks, _cameras(at, t, eyes, display.width, display.height, hz, path, trace_path)


def intrinsics(fov: tuple[float, ...], width: int, height: int) -> dict[str, float]:
    """Pinhole intrinsics (px) of an eye's field of view (left, right, up, down, rad):
    ``fx, fy`` focal lengths, ``cx, cy`` principal point from the image's top-left
    corner (x right, y down)."""
    left, right, up, down = (math.tan(a) for a in fov)
    return {"fx": width / (right - left), "fy": height / (up - down),
            "cx": width * -left / (right - left), "cy": height * up / (up - down)}


def _cameras(poses: np.ndarray, t: np.ndarray, s: PlaybackSettings, width: int, height: int,
             hz: float, path: Path, trace: Path) -> dict[str, Any]:
    frames = []
    for k, pose in enumerate(poses):
        view, proj = eye_matrices(pose, s)
        frames.append({"index": k, "t_s": float(t[k]), "image": f"frames/frame_{k:06d}.png",
                       "head_pose": [float(v) for v in pose],
                       "eye_view": view.tolist(), "eye_proj": proj.tolist()})
    eye = {name: {"width": width, "height": height, "fov_rad": list(fov),
                  **intrinsics(fov, width, height)}
           for name, fov in (("left", s.fov_left), ("right", s.fov_right))}
    return {"file": str(path), "trace": str(trace), "frame_hz": hz, "ipd_m": s.ipd,
            "near_m": s.near, "far_m": s.far, "eyes": eye,
            "conventions": "OpenXR axes (right-handed, +Y up, -Z forward, metres); head_pose "
                           "px py pz qx qy qz qw, device to world; eye_view world to eye and "
                           "eye_proj eye to clip, row-major, acting on column vectors; images "
                           "are both eyes side by side, left eye on the left, top row first",
            "frames": frames}


def render_chunk(chunk: Chunk) -> ChunkResult:
    """Render one chunk (in its worker process); an error is recorded, not raised."""
    from ..app import finish
    from ..bench import open_target_run
    from ..pipeline.clock import VirtualClock
    from .runs import captured

    out = io.StringIO()
    result = ChunkResult(chunk.first)
    with captured(out):
        try:
            image = require("PIL.Image", "media", "writing rendered frames")
            clock = VirtualClock(chunk.frame_hz)
            clock.index = chunk.first  # the chunk's frames keep their times in the trace
            run = open_target_run(parse_run_file(chunk.table, chunk.path), "headless", clock,
                                  capture="numpy")
            target = run.target
            stats, _ = finish(run, chunk.frames, None,
                              f"frames {chunk.first}..{chunk.first + chunk.frames - 1}")
            if stats.faults:
                raise RuntimeError(f"{len(stats.faults)} faults: {stats.faults[0].describe()}")
            for _, pixels in target.frames:
                buffer = io.BytesIO()
                image.fromarray(pixels).save(buffer, format="png")
                result.images.append(buffer.getvalue())
        except Exception as exc:  # recorded with the chunk; the other chunks go on
            result.error = worker_error(exc)["error"]
            log.exception("chunk from frame %d failed", chunk.first)
    result.log = out.getvalue()
    return result


@dataclass
class RenderResult:
    """Frames written, chunks that failed (first frame -> error), files written."""

    frames: int
    failed: dict[int, str]
    written: list[Path]


def render(path: Path, trace: Path, out: Path, placement: Placement, *,
           chunk: int = DEFAULT_CHUNK, frames: int | None = None,
           video: bool = False) -> RenderResult:
    """Render ``trace`` through the run file ``path`` into the folder ``out`` (see the
    module docstring); a failed chunk is recorded and the others go on."""
    chunks, cameras = plan_chunks(Path(path), Path(trace), chunk=chunk, frames=frames)
    check(placement)
    check_writable(out, folder=True)
    if video:
        require("imageio.v2", "media", "writing the render's video")
    out = Path(out)
    (out / "frames").mkdir(exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    total = sum(c.frames for c in chunks)
    done, failed = 0, {}
    update, bar = progress_bar(total, f"render of {Path(trace).name}")
    with bar:
        for landed in execute(render_chunk, chunks, placement):
            result = landed.result or ChunkResult(landed.spec.first, error=landed.error)
            name = f"chunk_{result.first:06d}"
            _write(out / "logs" / f"{name}.log", result.log or f"{result.error}\n")
            if result.error is not None:
                failed[result.first] = result.error
                print(f"{name}: failed: {result.error}")
            for i, png in enumerate(result.images):
                _write(out / "frames" / f"frame_{result.first + i:06d}.png", png)
            done += landed.spec.frames
            update(done)
    written = [_write(out / "cameras.json", json.dumps(cameras, indent=1)), _poses(out, cameras)]
    if video:
        written.append(_video(out, cameras))
    print(f"rendered {total - sum(c.frames for c in chunks if c.first in failed)} of {total} "
          f"frames in {len(chunks)} chunks into {out}")
    return RenderResult(total, failed, written)


def _write(path: Path, data: str | bytes) -> Path:
    try:
        if isinstance(data, bytes):
            return write_atomic(path, lambda p: p.write_bytes(data))
        return write_atomic(path, lambda p: p.write_text(data))
    except OSError as exc:
        raise ResultsError(f"cannot write {path}: {exc}") from exc


def _poses(out: Path, cameras: dict[str, Any]) -> Path:
    from ..stages.tracking.trace import Trace, write_trace

    frames = cameras["frames"]
    trace = Trace(np.array([f["t_s"] for f in frames]), np.zeros(len(frames), np.int64),
                  np.array([f["head_pose"] for f in frames]))
    path = out / "poses.csv"
    try:
        write_trace(path, trace, (f"head poses of the frames of {cameras['trace']} rendered "
                                  f"through {cameras['file']} at {cameras['frame_hz']:g} Hz",))
    except OSError as exc:
        raise ResultsError(f"cannot write {path}: {exc}") from exc
    return path


def _video(out: Path, cameras: dict[str, Any]) -> Path:
    imageio = require("imageio.v2", "media", "writing the render's video")
    path = out / "render.mp4"
    writer = imageio.get_writer(path, fps=cameras["frame_hz"], codec="libx264", quality=7,
                                pixelformat="yuv420p", macro_block_size=2)
    missing = 0
    try:
        for f in cameras["frames"]:
            image = out / f["image"]
            if not image.exists():
                missing += 1
                continue
            frame = imageio.imread(image)[..., :3]
            with held:  # Ctrl-C inside the write would leave a video that does not open
                writer.append_data(frame)
    finally:
        writer.close()
    if missing:
        log.warning("%s: %d frames left out (their chunks failed)", path, missing)
    return path


__all__ = ["Chunk", "ChunkResult", "RenderResult", "intrinsics", "plan_chunks", "render",
           "render_chunk"]
