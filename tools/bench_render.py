"""Stereo rendering throughput: the vrshare pipeline + renderer against a minimal
hand-written ModernGL instanced renderer and (when installed) pyrender.

The same scene for all: N instances of a torus of 2,016 triangles, seeded random
positions and orientations in front of a fixed head, one directional light, drawn for
two eyes side by side (2 x W x H) on a headless EGL context, with and without reading
the colour image back. Measured in one process:

* (a) vrshare: ``scene_motion`` + ``passthrough`` + a fixed-camera stage through the
  real frame loop, the renderer (one instanced draw per eye, GPU timer queries on) and
  the headless target, whose submit step ends each frame with ``ctx.finish()`` (or the
  readback); the frames of a measurement run through one ``loop.run(frames)`` call, as
  a vrshare run does;
* (b) minimal ModernGL: one program, the torus VBO, a per-instance attribute buffer
  (model matrix + colour) rewritten every frame, one instanced draw per eye, and the
  same output as vrshare: linear-light shading encoded to sRGB exactly (IEC 61966-2-1,
  the textbook ``pow`` formula) in the fragment shader, as vrshare does for the
  headless target's plain RGBA8 framebuffer;
* (b') the same minimal renderer writing linear values (no sRGB encode): a different,
  wrong-looking image, kept as a column to show what the encode costs;
* (c) pyrender's ``OffscreenRenderer`` (its defaults, one render per eye), which always
  reads colour and depth back, so it appears only in the readback rows.

pyrender is optional and not a vrshare extra: 0.1.45 pins PyOpenGL 3.1.0 (vrshare needs
>= 3.1.7, so pip falls back to the old 0.1.18) and its dependencies' old pins break on
Python 3.11. It runs with ``pip install --no-deps pyrender==0.1.45 'pyglet>=1.5,<2'
'networkx>=3' freetype-py six scipy`` beside PyOpenGL 3.1.10 (a separate venv with
vrshare installed keeps the project's environment untouched).

Each configuration is measured in alternating rounds (a, b, c, a, b, c, ...) and the
median per renderer is reported, so that load from other processes hits all alike.
Prints frames/s per configuration and the ratios a/b, a/b' and a/c, and the ratio a/b
by CPU time: the process's CPU seconds per frame of (b) over those of (a), every thread
counted. On a software rasterizer (llvmpipe) that is all the work of a frame, and other
processes' load disturbs it far less than it does frames/s.

    python tools/bench_render.py [--sizes 512 1024] [--instances 50 500 5000]
                                 [--seconds 1.5] [--rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from benchkit import Column, Table, Timer, write_json

from vrshare.testing import FixedEyes, FixedEyesSettings

CAMERA = FixedEyesSettings()  # the head every renderer draws from
HALF_FOV = math.radians(CAMERA.half_fov_deg)  # rad, symmetric per eye
IPD = CAMERA.ipd  # m
NEAR, FAR = CAMERA.near, CAMERA.far  # m
TORUS = {"major_radius": 0.3, "minor_radius": 0.1, "major_sections": 36, "minor_sections": 28}


def camera() -> tuple[np.ndarray, np.ndarray]:
    """(2, 4, 4) view and projection matrices, float32: vrshare.testing.FixedEyes's
    default head (at the origin looking down -Z, 45 degrees each way)."""
    view, proj = FixedEyes().matrices()
    return view.astype(np.float32), proj.astype(np.float32)


def placements(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positions (n, 3) in the view frustum 2.5-8 m away and Euler angles (n, 3) deg."""
    rng = np.random.default_rng(seed)
    z = -rng.uniform(2.5, 8.0, n)
    x = rng.uniform(-0.8, 0.8, n) * -z * math.tan(HALF_FOV)
    y = rng.uniform(-0.8, 0.8, n) * -z * math.tan(HALF_FOV)
    return np.stack([x, y, z], axis=1), rng.uniform(0, 360, (n, 3))


def torus() -> Any:
    import trimesh

    mesh = trimesh.creation.torus(**TORUS)
    assert len(mesh.faces) == 2016, len(mesh.faces)
    return mesh


def run_file(folder: Path, n: int) -> Path:
    """A run file drawing ``n`` tori through the vrshare pipeline."""
    (folder / "torus.glb").write_bytes(torus().export(file_type="glb"))
    positions, angles = placements(n)
    lines = ['[pipeline]', 'frame_hz = 90.0', 'clock = "unthrottled"',
             '[[stage]]', 'type = "vrshare.testing:FixedEyes"',
             '[[stage]]', 'type = "scene_motion"', '[[stage]]', 'type = "passthrough"',
             '[scene]', '[[scene.light]]', 'type = "directional"',
             'direction = [-0.3, -1.0, -0.5]',
             '[[scene.model]]', 'name = "torus"', 'file = "torus.glb"']
    for p, a in zip(positions, angles, strict=True):
        lines += ['[[scene.object]]', 'mesh = "torus"', f"position = {p.tolist()}",
                  f"rotation = {a.tolist()}", "color = [0.8, 0.6, 0.3]"]
    path = folder / f"bench_{n}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


Frames = Callable[[bool, int], None]  # frames(readback, count): draw count frames


def measure(cases: dict[str, Frames], seconds: float,
            rounds: int) -> dict[tuple[str, bool], tuple[float, float]]:
    """Median frames/s and process CPU seconds per frame of each case with and without
    readback over ``rounds`` rounds that alternate the cases, so that load on a shared
    machine hits all alike."""
    runs: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    for r in range(rounds):
        for readback in (False, True):
            for name, frames in cases.items():
                if name == "c" and not readback:
                    continue
                runs.setdefault((name, readback), []).append(
                    timed(lambda count, f=frames, rb=readback: f(rb, count), seconds / rounds,
                          warmup=WARMUP if r == 0 else 0))
    return {key: (statistics.median(fps for fps, _ in values),
                  statistics.median(cpu for _, cpu in values)) for key, values in runs.items()}


WARMUP = 3  # frames before timing (llvmpipe compiles shader variants on first use)


def timed(frames: Callable[[int], None], seconds: float, max_frames: int = 500,
          warmup: int = WARMUP) -> tuple[float, float]:
    """Frames/s and process CPU seconds per frame of ``frames(count)`` after ``warmup``
    frames, for about ``seconds`` (at least one frame): one frame, then batches sized
    from the time per frame so far."""
    if warmup:
        frames(warmup)
    with Timer() as t:
        frames(1)
        count = 1
        while count < max_frames and (left := seconds - t.elapsed()) > 0:
            batch = max(1, min(max_frames - count, int(left * count / t.elapsed())))
            frames(batch)
            count += batch
    return count / t.wall_s, t.process_s / count


# -- (a) vrshare ------------------------------------------------------------------------------


@contextmanager
def vrshare_frames(path: Path, size: int) -> Iterator[Frames]:
    """``frames(readback, count)`` of the vrshare pipeline + renderer + headless target."""
    from vrshare import display

    run = display.open_display(path, target="headless", width=size, height=size)
    target = run.target
    finish = target.submit  # waits for the frame: ctx.finish()

    def read_back(frame: Any) -> None:  # the submit step with the colour image read
        target.capture()

    def frames(readback: bool, count: int) -> None:
        target.submit = read_back if readback else finish
        with target.ctx:  # current on this thread (the cases take turns)
            run.loop.run(count)

    try:
        yield frames
    finally:
        target.ctx.__enter__()  # released objects must belong to the current context
        run.close()


# -- (b) minimal ModernGL ------------------------------------------------------------------------

MINIMAL_VERTEX = """#version 430
in vec3 in_position; in vec3 in_normal; in mat4 in_model; in vec4 in_color;
uniform mat4 u_view_proj;
out vec3 v_normal; out vec4 v_color;
void main() {
    gl_Position = u_view_proj * (in_model * vec4(in_position, 1.0));
    v_normal = mat3(in_model) * in_normal;
    v_color = in_color;
}
"""
MINIMAL_FRAGMENT = """#version 430
in vec3 v_normal; in vec4 v_color; out vec4 f_color;
uniform vec3 u_light;
void main() {
    float lambert = max(dot(normalize(v_normal), -u_light), 0.0);
    vec3 c = v_color.rgb * (0.3 + 0.7 * lambert);
#ifdef SRGB
    c = clamp(c, 0.0, 1.0);
    c = mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(0.0031308, c));
#endif
    f_color = vec4(c, 1.0);
}
"""


@dataclass
class Minimal:
    """The practical limit: the least code that draws the same instanced scene."""

    ctx: Any
    size: int
    n: int
    srgb: bool  # encode the output to sRGB in the fragment shader

    def __post_init__(self) -> None:
        import moderngl

        ctx = self.ctx
        mesh = torus()
        vertices = np.hstack([mesh.vertices, mesh.vertex_normals]).astype(np.float32)
        fragment = MINIMAL_FRAGMENT.replace("\n", "\n#define SRGB\n", 1) if self.srgb \
            else MINIMAL_FRAGMENT
        self.prog = ctx.program(vertex_shader=MINIMAL_VERTEX, fragment_shader=fragment)
        self.prog["u_light"].value = tuple(np.array([-0.3, -1.0, -0.5]) / np.linalg.norm(
            [-0.3, -1.0, -0.5]))
        self.vbo = ctx.buffer(vertices.tobytes())
        self.ibo = ctx.buffer(mesh.faces.astype(np.uint32).tobytes())
        positions, angles = placements(self.n)
        self.instances = np.zeros((self.n, 20), np.float32)
        from vrshare.geometry.rotation import euler_xyz

        for i, (p, a) in enumerate(zip(positions, angles, strict=True)):
            m = np.eye(4)
            m[:3, :3], m[:3, 3] = euler_xyz(tuple(a)), p
            self.instances[i, :16] = m.T.ravel()
        self.instances[:, 16:] = (0.6, 0.3, 0.07, 1.0)
        self.inst = ctx.buffer(reserve=self.instances.nbytes)
        self.vao = ctx.vertex_array(self.prog, [(self.vbo, "3f 3f", "in_position", "in_normal"),
                                                (self.inst, "16f 4f/i", "in_model", "in_color")],
                                    index_buffer=self.ibo, index_element_size=4)
        w, h = 2 * self.size, self.size
        self.color = ctx.texture((w, h), 4)
        self.depth = ctx.depth_renderbuffer((w, h))
        self.fbo = ctx.framebuffer([self.color], self.depth)
        view, proj = camera()
        self.view_proj = [(proj[e] @ view[e]).T.astype(np.float32).tobytes() for e in (0, 1)]
        self.pixels = np.empty((h, w, 4), np.uint8)
        self.flags = moderngl.DEPTH_TEST | moderngl.CULL_FACE

    def frames(self, readback: bool, count: int) -> None:
        with self.ctx:  # current on this thread (the cases take turns)
            for _ in range(count):
                self._frame(readback)

    def _frame(self, readback: bool) -> None:
        ctx = self.ctx
        self.inst.write(self.instances)  # as if the objects had moved
        self.fbo.use()
        ctx.enable_only(self.flags)
        self.fbo.clear(0.1, 0.1, 0.1, 1.0, depth=1.0)
        for eye in (0, 1):
            self.fbo.viewport = (eye * self.size, 0, self.size, self.size)
            self.prog["u_view_proj"].write(self.view_proj[eye])
            self.vao.render(instances=self.n)
        if readback:
            self.fbo.read_into(self.pixels, components=4)
        else:
            ctx.finish()

    def release(self) -> None:
        for obj in (self.vao, self.vbo, self.ibo, self.inst, self.prog, self.fbo, self.color,
                    self.depth):
            obj.release()


@contextmanager
def minimal_frames(size: int, n: int, srgb: bool) -> Iterator[Frames]:
    """``frame(readback)`` of the minimal renderer in a context of its own (pyrender's
    EGL clean-up terminates the display, which ends every context made before it)."""
    from vrshare.targets.headless import standalone_context

    ctx = standalone_context()
    minimal = Minimal(ctx, size, n, srgb)
    try:
        yield minimal.frames
    finally:
        with ctx:
            minimal.release()
        ctx.release()


# -- (c) pyrender --------------------------------------------------------------------------------


def pyrender_unavailable() -> str | None:
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    try:
        import pyrender  # noqa: F401
    except Exception as exc:  # pyrender's import chain raises several types on numpy 2
        return f"{type(exc).__name__}: {exc}"
    return None


@contextmanager
def pyrender_frames(size: int, n: int) -> Iterator[Frames]:
    """One render per eye; pyrender always reads colour and depth back."""
    import pyrender

    positions, angles = placements(n)
    from vrshare.geometry.rotation import euler_xyz

    poses = np.zeros((n, 4, 4))
    for i, (p, a) in enumerate(zip(positions, angles, strict=True)):
        poses[i] = np.eye(4)
        poses[i, :3, :3], poses[i, :3, 3] = euler_xyz(tuple(a)), p
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=(0.6, 0.3, 0.07, 1.0))
    scene = pyrender.Scene(ambient_light=(0.3, 0.3, 0.3))
    scene.add(pyrender.Mesh.from_trimesh(torus(), material=material, poses=poses))
    scene.add(pyrender.DirectionalLight(intensity=3.0), pose=np.eye(4))
    camera = pyrender.PerspectiveCamera(yfov=2 * HALF_FOV, aspectRatio=1.0, znear=NEAR, zfar=FAR)
    eye_poses = []
    for dx in (-IPD / 2, IPD / 2):
        pose = np.eye(4)
        pose[0, 3] = dx
        eye_poses.append(pose)
    node = scene.add(camera, pose=eye_poses[0])
    renderer = pyrender.OffscreenRenderer(size, size)
    try:
        def frames(readback: bool, count: int) -> None:  # render() makes its context current
            for _ in range(count):
                for pose in eye_poses:
                    scene.set_pose(node, pose)
                    renderer.render(scene)

        yield frames
    finally:
        renderer.delete()


# -- the table -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="px per eye")
    p.add_argument("--instances", type=int, nargs="+", default=[50, 500, 5000])
    p.add_argument("--seconds", type=float, default=1.5, help="per measurement (s)")
    p.add_argument("--rounds", type=int, default=3,
                   help="alternating rounds per configuration; the median is reported")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    from vrshare.targets.headless import standalone_context

    missing = pyrender_unavailable()
    if missing:
        print(f"pyrender: not measured ({missing})")
    ctx = standalone_context()
    gl = f"{ctx.info['GL_RENDERER']}, {ctx.info['GL_VERSION']}"
    ctx.release()
    print(f"GL: {gl}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Table(COLUMNS, title="frames/s") as table:
        for n in args.instances:
            path = run_file(Path(tmp), n)
            for size in args.sizes:
                with ExitStack() as stack:
                    cases = {"a": stack.enter_context(vrshare_frames(path, size)),
                             "b": stack.enter_context(minimal_frames(size, n, srgb=True)),
                             "b'": stack.enter_context(minimal_frames(size, n, srgb=False))}
                    if not missing:
                        cases["c"] = stack.enter_context(pyrender_frames(size, n))
                    fps = measure(cases, args.seconds, args.rounds)
                for readback in (False, True):
                    (a, a_cpu), (b, b_cpu), (b_lin, _) = (fps[k, readback]
                                                          for k in ("a", "b", "b'"))
                    c = fps[("c", readback)][0] if readback and ("c", readback) in fps \
                        else None  # it always reads back
                    rows.append({"instances": n, "size": size, "readback": readback,
                                 "vrshare_fps": a, "minimal_fps": b, "minimal_linear_fps": b_lin,
                                 "pyrender_fps": c, "a_over_b": a / b,
                                 "a_over_b_linear": a / b_lin, "a_over_c": a / c if c else None,
                                 "vrshare_cpu_ms": a_cpu * 1e3, "minimal_cpu_ms": b_cpu * 1e3,
                                 "a_over_b_cpu": b_cpu / a_cpu})
                    table.add_row(*row_cells(rows[-1]))
    if args.json:
        write_json(args.json, {"gl": gl, "rows": rows, "pyrender": missing or "measured"})
    return 0


COLUMNS = [Column("instances", 9), Column("per eye", 9), Column("readback", 8),
           Column("(a) vrshare", 12), Column("(b) minimal", 12), Column("(b') linear", 12),
           Column("(c) pyrender", 13), Column("a/b", 6), Column("a/b'", 6), Column("a/c", 6),
           Column("a/b cpu", 7)]
VALUES = ("vrshare_fps", "minimal_fps", "minimal_linear_fps", "pyrender_fps", "a_over_b",
          "a_over_b_linear", "a_over_c", "a_over_b_cpu")  # the columns after the configuration


def row_cells(r: dict) -> list[str | None]:
    return [str(r["instances"]), f"{r['size']}x{r['size']}", "yes" if r["readback"] else "no",
            *(None if r[k] is None else f"{r[k]:.2f}" for k in VALUES)]


if __name__ == "__main__":
    sys.exit(main())
