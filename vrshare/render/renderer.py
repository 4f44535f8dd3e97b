"""The stereo renderer: one instanced draw per mesh and eye, from bank buffers.

GL objects (program, meshes, textures, the instance buffer, the eye uniform
buffer, timer queries) are created once; each frame only the instance rows in use,
the draw ranges and the four eye matrices are uploaded (one buffer write each).
A framebuffer that the eyes tile is cleared once, in full (see clear_modes). Per
eye pass the only state set is the framebuffer, its sRGB switch and the eye's range
of the uniform buffer (no uniform writes: ``u_encode_srgb`` is written only
when it changes); per draw, the texture is bound only when it differs from the last.
LODs of one model share one GL texture.
Instance rows are per-instance vertex attributes; since ModernGL's ``render`` has no
base-instance argument, a draw whose range starts elsewhere than last frame has its
instance attributes re-pointed at row ``first`` (a few ``glVertexAttribPointer``
calls, no data moved). Attributes beat a storage buffer indexed by
``gl_InstanceID`` here: llvmpipe fetches them once per instance, not per vertex.

On the NumPy backend the bank arrays are written to GL directly; on CuPy they are
copied to the host through :func:`vrshare.backend.to_host` (counted as transfers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import backend, layout
from ..pipeline import PipelineError
from ..resources import shader_source
from ..scene import linear_to_srgb
from .timer import PassTimer

if TYPE_CHECKING:
    import moderngl

    from ..pipeline import Frame, FrameStats
    from ..scene import Geometry, Scene
    from ..targets.base import EyeSurface
    from ..weights import WeightBank

EYE_NAMES = ("left", "right")
# the vertex layout of vrshare.scene.Geometry, read in full by the textured program and
# without texture coordinates and layer (skipped bytes) by the plain one
VERTEX_FORMATS = {
    True: ("3f 3f 2f 4f 1f", "in_position", "in_normal", "in_uv", "in_color", "in_layer"),
    False: ("3f 3f 8x 4f 4x", "in_position", "in_normal", "in_color"),
}
GL_FRAMEBUFFER_SRGB = 0x8DB9  # GL encodes linear -> sRGB when storing into sRGB buffers
MODEL_LOCATION = 5  # in_model: locations 5-8 (one vec4 column each), then the colour
INSTANCE_BYTES = layout.INSTANCE_FLOATS * 4


class RenderError(PipelineError):
    """The renderer cannot draw this pipeline (a buffer is missing or mismatched)."""


@dataclass
class _GpuMesh:
    """One draw slot: a mesh at one level of detail, uploaded once."""

    vbo: Any
    ibo: Any
    vao: Any
    program: Any
    texture: Any  # texture array, None when the mesh has no texture
    triangles: int
    first: int = -1  # instance row the per-instance attributes point at now

    def release(self) -> None:
        """Release the mesh's buffers (its texture belongs to the renderer: shared)."""
        for obj in (self.vao, self.vbo, self.ibo):
            obj.release()


def clear_modes(surfaces: Sequence[EyeSurface]) -> list[str]:
    """How to clear before drawing each surface: ``"full"`` (the whole framebuffer),
    ``"viewport"`` (its viewport only) or ``"none"`` (already cleared this frame).

    Surfaces that tile their framebuffer exactly (both eyes side by side, or one eye
    per swapchain image), in one sRGB mode, clear it once in full: on llvmpipe one full
    clear is cheaper than a scissored clear per eye, which writes every pixel.
    """
    groups: dict[int, list[int]] = {}
    for i, surface in enumerate(surfaces):
        groups.setdefault(id(surface.framebuffer), []).append(i)
    modes = ["viewport"] * len(surfaces)
    for members in groups.values():
        if _tiles([surfaces[i] for i in members]):
            modes[members[0]] = "full"
            for i in members[1:]:
                modes[i] = "none"
    return modes


def _tiles(surfaces: list[EyeSurface]) -> bool:
    """Whether the viewports cover their framebuffer without overlap, in one sRGB mode."""
    width, height = surfaces[0].framebuffer.size
    rects = [s.viewport for s in surfaces]
    if len({s.encode_srgb for s in surfaces}) != 1:
        return False
    if any(x < 0 or y < 0 or x + w > width or y + h > height for x, y, w, h in rects):
        return False
    if sum(w * h for _, _, w, h in rects) != width * height:
        return False
    return not any(ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah
                   for i, (ax, ay, aw, ah) in enumerate(rects)
                   for bx, by, bw, bh in rects[i + 1:])


class Renderer:
    """Draws a scene's meshes for each eye surface from the bank's buffers.

    ``ctx`` must be current on the calling thread. Call :meth:`bind` once the
    pipeline's buffers exist, then :meth:`render` every frame.
    """

    def __init__(self, ctx: moderngl.Context, scene: Scene, *, gpu_timing: bool = True) -> None:
        import moderngl

        self.ctx = ctx
        self.scene = scene
        textured = {g.textures is not None for g in scene.draws}
        self.programs = {t: self._program(t) for t in sorted(textured)}
        # clear colours: linear for sRGB framebuffers, encoded where the shader encodes
        self.clear_linear = (*map(float, scene.background), 1.0)
        self.clear_encoded = (*map(float, linear_to_srgb(scene.background)), 1.0)
        self._textures: dict[int, Any] = {}  # id(Geometry.textures) -> GL texture array
        self.meshes = [self._upload(g) for g in scene.draws]
        # proj @ view per eye, row-major mat4, each eye at an offset a uniform-block range
        # may start at (bound per eye pass instead of writing an eye-index uniform)
        align = int(ctx.info.get("GL_UNIFORM_BUFFER_OFFSET_ALIGNMENT", 256))
        self.eye_stride = -(-64 // align) * align  # bytes
        self.eyes_ubo = ctx.buffer(reserve=2 * self.eye_stride)
        self.view_host = np.zeros((2, 4, 4), np.float32)
        self.proj_host = np.zeros((2, 4, 4), np.float32)
        self.eyes_host = np.zeros((2, self.eye_stride // 4), np.float32)
        self.view_proj = self.eyes_host[:, :16].reshape(2, 4, 4)  # a view: written in place
        self.encode_uniforms = {t: [p["u_encode_srgb"], None] for t, p in self.programs.items()}
        self.instance_buffer: Any = None
        self.timer = PassTimer(ctx, EYE_NAMES) if gpu_timing else None
        self.stats: FrameStats | None = None
        self.flags = moderngl.DEPTH_TEST | moderngl.CULL_FACE
        self.ranges_host = np.zeros((len(self.meshes), 2), np.int32)
        self._bound = False

    def _program(self, textured: bool) -> Any:
        """The scene program, with or without base-colour textures; lights set once."""
        define = "#define TEXTURED\n" if textured else ""
        vertex, fragment = (shader_source(n).replace("\n", f"\n{define}", 1)
                            for n in ("scene.vert", "scene.frag"))
        program = self.ctx.program(vertex_shader=vertex, fragment_shader=fragment)
        light = self.scene.light
        program["u_light_dir"].value = tuple(map(float, light.direction))
        program["u_light_color"].value = tuple(map(float, light.color))
        program["u_ambient"].value = tuple(map(float, light.ambient))
        if textured:
            program["u_textures"].value = 0
        return program

    def _upload(self, geometry: Geometry) -> _GpuMesh:
        ctx = self.ctx
        layers = geometry.textures
        program = self.programs[layers is not None]
        vbo = ctx.buffer(geometry.vertices.tobytes())
        ibo = ctx.buffer(geometry.indices.tobytes())
        vao = ctx.vertex_array(program, [(vbo, *VERTEX_FORMATS[layers is not None])],
                               index_buffer=ibo, index_element_size=4)
        texture = None
        if layers is not None:
            texture = self._textures.get(id(layers))
            if texture is None:
                n, h, w, _ = layers.shape
                texture = ctx.texture_array((w, h, n), 4, layers.tobytes(), dtype="f2")
                texture.build_mipmaps()
                self._textures[id(layers)] = texture
        return _GpuMesh(vbo, ibo, vao, program, texture, geometry.triangles)

    def bind(self, bank: WeightBank, stats: FrameStats | None = None) -> None:
        """Look up the buffers to draw from and (optionally) report GPU pass times."""
        missing = [n for n in (layout.INSTANCES, layout.DRAW_RANGES, layout.EYE_VIEW,
                               layout.EYE_PROJ) if n not in bank]
        if missing:
            hint = {layout.INSTANCES: "a 'passthrough' or 'scene_filter' stage",
                    layout.DRAW_RANGES: "a 'passthrough' or 'scene_filter' stage",
                    layout.EYE_VIEW: "a 'tracking' stage", layout.EYE_PROJ: "a 'tracking' stage"}
            raise RenderError("the renderer draws from bank buffers the pipeline does not have: "
                              + ", ".join(f"{n!r} (add {hint[n]})" for n in missing))
        self.instances = bank[layout.INSTANCES]
        self.ranges = bank[layout.DRAW_RANGES]
        self.eye_view = bank[layout.EYE_VIEW]
        self.eye_proj = bank[layout.EYE_PROJ]
        if tuple(self.ranges.shape) != (len(self.meshes), 2):
            raise RenderError(f"{layout.DRAW_RANGES!r} has shape {tuple(self.ranges.shape)}, "
                              f"the scene has {len(self.meshes)} draw slots")
        if self.instances.ndim != 2 or self.instances.shape[1] != layout.INSTANCE_FLOATS:
            raise RenderError(f"{layout.INSTANCES!r} must be (capacity, "
                              f"{layout.INSTANCE_FLOATS}), got {tuple(self.instances.shape)}")
        if self.instance_buffer is not None:
            self.instance_buffer.release()
        self.instance_buffer = self.ctx.buffer(reserve=max(self.instances.nbytes, 16))
        for mesh in self.meshes:
            mesh.first = -1
        self.gpu = backend.array_module(self.instances) is not np
        if stats is not None and self.timer is not None:
            self.timer.attach(stats)
            self.stats = stats
        self._bound = True

    def _upload_frame(self) -> int:
        """Copy this frame's draw ranges, instance rows and eye matrices to GL; returns
        the number of instance rows in use."""
        if self.gpu:
            ranges = backend.to_host(self.ranges, out=self.ranges_host, label="draw_ranges")
        else:
            ranges = self.ranges
        used = int((ranges[:, 0] + ranges[:, 1]).max(initial=0))
        if used:
            rows = self.instances[:used]
            data = backend.to_host(rows, label="instances") if self.gpu else rows
            self.instance_buffer.write(data)
        for host, m in ((self.view_host, self.eye_view), (self.proj_host, self.eye_proj)):
            host[...] = backend.to_host(m, label="eye") if self.gpu else m
        np.matmul(self.proj_host, self.view_host, out=self.view_proj)
        self.eyes_ubo.write(self.eyes_host)
        self.ranges_host[...] = ranges
        return used

    def render(self, frame: Frame, surfaces: Sequence[EyeSurface]) -> None:
        """Draw every non-empty draw slot into each eye surface."""
        if not self._bound:
            raise RenderError("Renderer.render called before bind(bank)")
        if not surfaces:
            return
        self._upload_frame()
        ctx = self.ctx
        ctx.enable_only(self.flags)
        ctx.cull_face = "back"
        timer = self.timer if self.stats is not None else None
        if timer is not None:
            timer.begin_frame(frame.index)
        draws = [(mesh, int(first), int(count))
                 for mesh, (first, count) in zip(self.meshes, self.ranges_host, strict=True)
                 if count > 0]
        for surface, clear_mode in zip(surfaces, clear_modes(surfaces), strict=True):
            fbo = surface.framebuffer
            fbo.use()
            fbo.viewport = surface.viewport
            if surface.encode_srgb:
                ctx.disable_direct(GL_FRAMEBUFFER_SRGB)
                clear = self.clear_encoded
            else:
                ctx.enable_direct(GL_FRAMEBUFFER_SRGB)
                clear = self.clear_linear
            if clear_mode == "full":
                fbo.clear(*clear, depth=1.0)
            elif clear_mode == "viewport":
                fbo.clear(*clear, depth=1.0, viewport=surface.viewport)
            self.eyes_ubo.bind_to_uniform_block(0, offset=surface.eye * self.eye_stride,
                                                size=64)
            for written in self.encode_uniforms.values():
                if written[1] != surface.encode_srgb:
                    written[0].value = written[1] = surface.encode_srgb
            if timer is not None:
                with timer.measure(surface.eye):
                    self._draw(draws)
            else:
                self._draw(draws)

    def _draw(self, draws: list[tuple[_GpuMesh, int, int]]) -> None:
        bound = None  # texture unit 0 is bound anew each pass: others may use it between
        for mesh, first, count in draws:
            if mesh.first != first:
                self._point_instances(mesh, first)
            if mesh.texture is not None and mesh.texture is not bound:
                mesh.texture.use(0)
                bound = mesh.texture
            mesh.vao.render(instances=count)

    def _point_instances(self, mesh: _GpuMesh, first: int) -> None:
        """Make ``mesh``'s instance attributes start at instance row ``first``."""
        base = first * INSTANCE_BYTES
        for i in range(5):  # four model-matrix columns, then the colour
            mesh.vao.bind(MODEL_LOCATION + i, "f", self.instance_buffer, "4f",
                          offset=base + 16 * i, stride=INSTANCE_BYTES, divisor=1)
        mesh.first = first

    def triangles_per_eye(self) -> int:
        """Triangles the current draw ranges submit for one eye."""
        return sum(m.triangles * int(c) for m, (_, c) in zip(self.meshes, self.ranges_host,
                                                                 strict=True))

    def close(self) -> None:
        """Read outstanding GPU times and release every GL object."""
        if self.timer is not None:
            self.timer.flush()
        for mesh in self.meshes:
            mesh.release()
        self.meshes = []
        for texture in self._textures.values():
            texture.release()
        self._textures = {}
        for obj in (self.instance_buffer, self.eyes_ubo, *self.programs.values()):
            if obj is not None:
                obj.release()
        self.programs = {}
        self.instance_buffer = None
