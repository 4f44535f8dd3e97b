"""The stereo renderer: one instanced draw per mesh, face group and eye, from bank
buffers; blended face groups after the opaque ones, instance by instance from the
farthest to the nearest.

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

What it draws is checked. At :meth:`Renderer.bind`, each buffer's dtype and shape
against :mod:`vrshare.layout` (the error names the stage that declared it). Each
frame, on the host copies it uploads anyway:

* draw ranges reaching outside the instance buffer (``first < 0``, ``count < 0``,
  ``first + count > capacity``) are clamped to it (skipped when nothing is left);
* instance rows with a non-finite model matrix or colour are left out of their draw,
  and rows whose model matrix mirrors (negative determinant) are drawn by a draw of
  their own with clockwise front faces (:mod:`.regroup`): the good rows of a draw
  range holding either are packed into a spare region after the instance rows
  (allocated with the first such row) and the draws point there, so no row is ever
  moved in the bank; one ``isfinite`` and one determinant sign over the rows in use
  tell whether there is any at all;
* non-finite eye matrices: the frame is drawn with the last good ones (the uniform
  buffer keeps them), or only cleared while there never were any.

Each event is counted in :attr:`Renderer.counts` (the run's ``stats.counters["render"]``)
and warned about once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import backend, layout
from ..scene import linear_to_srgb
from .contract import RenderError, check_contract, declared_by_note
from .meshes import GpuMesh, scene_program, upload
from .regroup import InstanceDraw, mirrored_rows, plain_draws, regroup
from .surfaces import clear_modes
from .timer import PassTimer

if TYPE_CHECKING:
    import moderngl

    from ..pipeline import Frame, FrameStats
    from ..scene import Scene
    from ..scene.model import FaceGroup
    from ..targets.base import EyeSurface
    from ..weights import WeightBank

log = logging.getLogger(__name__)

EYE_NAMES = ("left", "right")
# the renderer's event counters (stats.counters["render"])
RANGES_CLAMPED = "draw ranges clamped"  # draw slots x frames with a range outside the buffer
ROWS_SKIPPED = "instance rows skipped"  # rows x frames not drawn: non-finite matrix or colour
EYES_HELD = "eye matrices held"  # frames drawn with the last good eye matrices
EYES_MISSING = "frames not drawn"  # frames cleared only: non-finite eyes, never a good one
GL_FRAMEBUFFER_SRGB = 0x8DB9  # GL encodes linear -> sRGB when storing into sRGB buffers
MODEL_LOCATION = 5  # in_model: locations 5-8 (one vec4 column each), then the colour
INSTANCE_BYTES = layout.INSTANCE_FLOATS * 4


class Renderer:
    """Draws a scene's meshes for each eye surface from the bank's buffers.

    ``ctx`` must be current on the calling thread. Call :meth:`bind` once the
    pipeline's buffers exist, then :meth:`render` every frame.
    """

    def __init__(self, ctx: moderngl.Context, scene: Scene, *, gpu_timing: bool = True) -> None:
        import moderngl

        self.ctx = ctx
        self.scene = scene
        kinds = {(g.textures is not None, g.material) for g in scene.draws}
        self.programs = {k: scene_program(ctx, scene.light, *k) for k in sorted(kinds)}
        # clear colours: linear for sRGB framebuffers, encoded where the shader encodes
        self.clear_linear = (*map(float, scene.background), 1.0)
        self.clear_encoded = (*map(float, linear_to_srgb(scene.background)), 1.0)
        self._textures: dict[int, Any] = {}  # id(Geometry.textures) -> GL texture array
        self.meshes = [upload(ctx, self.programs, self._textures, g, m.center)
                       for m in scene.meshes for g in m.lods]
        # proj @ view per eye, row-major mat4, each eye at an offset a uniform-block range
        # may start at (bound per eye pass instead of writing an eye-index uniform)
        align = int(ctx.info.get("GL_UNIFORM_BUFFER_OFFSET_ALIGNMENT", 256))
        self.eye_stride = -(-64 // align) * align  # bytes
        self.eyes_ubo = ctx.buffer(reserve=2 * self.eye_stride)
        self.eyes_in = np.zeros((2, 2, 4, 4), np.float32)  # view, proj: checked in one call
        self.view_host, self.proj_host = self.eyes_in
        self.eyes_host = np.zeros((2, self.eye_stride // 4), np.float32)
        self.view_proj = self.eyes_host[:, :16].reshape(2, 4, 4)  # a view: written in place
        self.encode_uniforms = {t: [p["u_encode_srgb"], None] for t, p in self.programs.items()}
        self.instance_buffer: Any = None
        self.timer = PassTimer(ctx, EYE_NAMES) if gpu_timing else None
        self.stats: FrameStats | None = None
        self.flags = moderngl.DEPTH_TEST | moderngl.CULL_FACE
        self.ranges_host = np.zeros((len(self.meshes), 2), np.int32)
        self.slot_names = [f"{m.name!r} LOD {lod}" for m in scene.meshes
                           for lod in range(len(m.lods))]
        self._eyes_good = False  # whether the uniform buffer holds good eye matrices
        self._spare: np.ndarray | None = None  # host rows packed past the bank's rows
        self._rows: np.ndarray | None = None  # this frame's instance rows in use, host
        self._texture: Any = None  # within a pass: the texture bound to unit 0
        self._front = False  # within a pass: front faces clockwise
        self._cull = True  # within a pass: back faces culled
        self.counts: dict[str, int] = dict.fromkeys(
            (RANGES_CLAMPED, ROWS_SKIPPED, EYES_HELD, EYES_MISSING), 0)
        self._warned: set[str] = set()
        self.declared_by: Mapping[str, str] | None = None
        self._bound = False

    def bind(self, bank: WeightBank, stats: FrameStats | None = None,
             declared_by: Mapping[str, str] | None = None) -> None:
        """Look up the buffers to draw from, check them against :mod:`vrshare.layout`,
        and (optionally) report GPU pass times and events into ``stats``.

        ``declared_by`` maps a buffer to the stage whose setup declared it
        (``Pipeline.declared_by``), so that a mismatch names the stage to fix.
        """
        missing = [n for n in (layout.INSTANCES, layout.DRAW_RANGES, layout.EYE_VIEW,
                               layout.EYE_PROJ) if n not in bank]
        if missing:
            hint = {layout.INSTANCES: "a 'passthrough' or 'scene_filter' stage",
                    layout.DRAW_RANGES: "a 'passthrough' or 'scene_filter' stage",
                    layout.EYE_VIEW: "a 'tracking' stage", layout.EYE_PROJ: "a 'tracking' stage"}
            raise RenderError("the renderer draws from bank buffers the pipeline does not have: "
                              + ", ".join(f"{n!r} (add {hint[n]})" for n in missing))
        self.declared_by = None if declared_by is None else dict(declared_by)
        self.instances = bank[layout.INSTANCES]
        self.ranges = bank[layout.DRAW_RANGES]
        self.eye_view = bank[layout.EYE_VIEW]
        self.eye_proj = bank[layout.EYE_PROJ]
        check_contract({layout.INSTANCES: self.instances, layout.DRAW_RANGES: self.ranges,
                        layout.EYE_VIEW: self.eye_view, layout.EYE_PROJ: self.eye_proj},
                       len(self.meshes), self.declared_by)
        self.capacity = int(self.instances.shape[0])
        if self.instance_buffer is not None:
            self.instance_buffer.release()
        self.instance_buffer = self.ctx.buffer(reserve=max(self.instances.nbytes, 16))
        self._spare = None
        for mesh in self.meshes:
            mesh.first = -1
        self.gpu = backend.array_module(self.instances) is not np
        self.counts = dict.fromkeys(self.counts, 0)
        self._warned = set()
        self._eyes_good = False
        if stats is not None:
            stats.counters["render"] = self.counts  # the same dict: updated in place
            if self.timer is not None:
                self.timer.attach(stats)
                self.stats = stats
        self._bound = True

    def _owner(self, name: str) -> str:
        return declared_by_note(self.declared_by, name)

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message + "; further ones are counted in the run's stats "
                        "(render: %s)", *args, key)

    def _upload_frame(self) -> list[InstanceDraw]:
        """Copy this frame's draw ranges, instance rows and eye matrices to GL; returns
        this frame's draws (none while there are no eye matrices to draw with). Ranges
        outside the buffer are clamped, mirrored rows drawn apart, rows that are not
        finite left out of their draw, non-finite eye matrices replaced by the last
        good ones."""
        ranges = self.ranges_host
        if self.gpu:
            backend.to_host(self.ranges, out=ranges, label="draw_ranges")
        else:
            np.copyto(ranges, self.ranges)
        # seen unsigned, a negative value is huge: one reduction finds values below 0 or
        # above the capacity; only then can first + count overflow or pass the end
        if ranges.view(np.uint32).max(initial=0) > self.capacity:
            used = self._clamp_ranges(ranges)
        else:
            used = int((ranges[:, 0] + ranges[:, 1]).max(initial=0))
            if used > self.capacity:
                used = self._clamp_ranges(ranges)
        draws = None
        if used:
            rows = self.instances[:used]
            data = backend.to_host(rows, label="instances") if self.gpu else rows
            self._rows = data
            self.instance_buffer.write(data)
            finite = np.isfinite(data).all()
            mirrored = mirrored_rows(data)
            if not finite or mirrored.any():
                bad = np.zeros(used, bool) if finite else ~np.isfinite(data).all(axis=1)
                draws = self._regroup(data, ranges, bad, mirrored)
        for host, m in ((self.view_host, self.eye_view), (self.proj_host, self.eye_proj)):
            host[...] = backend.to_host(m, label="eye") if self.gpu else m
        if np.isfinite(self.eyes_in).all():
            np.matmul(self.proj_host, self.view_host, out=self.view_proj)
            self.eyes_ubo.write(self.eyes_host)
            self._eyes_good = True
        else:  # the uniform buffer keeps the last good matrices
            key = EYES_HELD if self._eyes_good else EYES_MISSING
            self.counts[key] += 1
            self._warn_once(key, "%r%s or %r%s hold NaN or inf; %s", layout.EYE_VIEW,
                            self._owner(layout.EYE_VIEW), layout.EYE_PROJ,
                            self._owner(layout.EYE_PROJ),
                            "frames are drawn with the last good eye matrices" if
                            self._eyes_good else "frames are not drawn (only cleared) until "
                            "there are finite ones")
        if not self._eyes_good:
            return []
        return plain_draws(ranges) if draws is None else draws

    def _clamp_ranges(self, ranges: np.ndarray) -> int:
        """Clamp draw ranges (host copy) to the instance buffer; returns the rows in use."""
        first, count = ranges[:, 0], ranges[:, 1]
        ends = ranges.sum(axis=1, dtype=np.int64)
        bad = (first < 0) | (count < 0) | (ends > self.capacity)
        slot = int(np.flatnonzero(bad)[0])
        self._warn_once(RANGES_CLAMPED, "%r%s: draw slot %d (%s) has [first, count] = "
                        "[%d, %d], outside the instance buffer's %d rows; ranges are clamped "
                        "to the buffer", layout.DRAW_RANGES, self._owner(layout.DRAW_RANGES),
                        slot, self.slot_names[slot], first[slot], count[slot], self.capacity)
        self.counts[RANGES_CLAMPED] += int(np.count_nonzero(bad))
        empty = (first < 0) | (count <= 0) | (first >= self.capacity)
        first[empty] = 0
        count[empty] = 0
        np.minimum(count, self.capacity - first, out=count)
        return int(ranges.sum(axis=1).max(initial=0))

    def _regroup(self, data: np.ndarray, ranges: np.ndarray, bad: np.ndarray,
                 mirrored: np.ndarray) -> list[InstanceDraw]:
        """Draws for ranges holding mirrored or non-finite rows (see :mod:`.regroup`):
        their good rows are packed into the spare region after the instance rows."""
        if self._spare is None:
            self._spare = np.zeros((self.capacity, layout.INSTANCE_FLOATS), np.float32)
            self.instance_buffer.release()  # room for the spare region after the rows
            self.instance_buffer = self.ctx.buffer(reserve=max(2 * self.instances.nbytes, 16))
            for mesh in self.meshes:
                mesh.first = -1
            self.instance_buffer.write(data)  # the new buffer: the rows again
        draws, packed, skipped = regroup(data, ranges, bad, mirrored, self._spare)
        if skipped:
            self.counts[ROWS_SKIPPED] += skipped
            in_use = np.zeros(len(data), bool)
            for first, count in ranges:
                in_use[first:first + count] = True
            row = int(np.flatnonzero(bad & in_use)[0])
            slot = int(np.flatnonzero((ranges[:, 0] <= row)
                                      & (row < ranges[:, 0] + ranges[:, 1]))[0])
            self._warn_once(ROWS_SKIPPED, "%r%s: %d instance row(s) in use hold NaN or inf "
                            "(first: row %d, draw slot %d, %s); they are not drawn",
                            layout.INSTANCES, self._owner(layout.INSTANCES), skipped, row,
                            slot, self.slot_names[slot])
        if packed:
            self.instance_buffer.write(self._spare[:packed],
                                       offset=self.capacity * INSTANCE_BYTES)
        return draws

    def render(self, frame: Frame, surfaces: Sequence[EyeSurface]) -> None:
        """Draw every non-empty draw slot into each eye surface."""
        if not self._bound:
            raise RenderError("Renderer.render called before bind(bank)")
        if not surfaces:
            return
        draws = self._upload_frame()
        ctx = self.ctx
        ctx.enable_only(self.flags)
        ctx.cull_face = "back"
        timer = self.timer if self.stats is not None else None
        if timer is not None:
            timer.begin_frame(frame.index)
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
                    self._draw(draws, fbo, surface.eye)
            else:
                self._draw(draws, fbo, surface.eye)

    def _draw(self, draws: list[InstanceDraw], fbo: Any, eye: int) -> None:
        """One eye pass: every draw's opaque face groups in order, then the blended
        ones of every instance from the farthest to the nearest (bounding-sphere
        centre), with blending on and depth writes off."""
        import moderngl

        ctx = self.ctx
        self._texture = None  # texture unit 0 is bound anew each pass: others may use it
        self._front = False  # whether front faces are clockwise (mirrored rows)
        self._cull = True
        blended = []
        for draw in draws:
            mesh = self.meshes[draw.slot]
            if mesh.blended:
                blended.append(draw)
            if mesh.opaque:
                self._use(mesh, draw.first, draw.mirrored)
                self._render(mesh, mesh.opaque, draw.count)
        if blended:
            ctx.enable(moderngl.BLEND)
            ctx.blend_func = (moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA,
                              moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA)
            fbo.depth_mask = False
            for _, slot, row, mirrored in self._back_to_front(blended, eye):
                mesh = self.meshes[slot]
                self._use(mesh, row, mirrored)
                self._render(mesh, mesh.blended, 1)
            fbo.depth_mask = True
            ctx.disable(moderngl.BLEND)
        if self._front:
            ctx.front_face = "ccw"
        if not self._cull:
            ctx.enable(moderngl.CULL_FACE)

    def _use(self, mesh: GpuMesh, first: int, mirrored: bool) -> None:
        """Point ``mesh``'s instance attributes at row ``first``, bind its texture and
        set the front-face winding, each only when it changes."""
        if mesh.first != first:
            self._point_instances(mesh, first)
        if mesh.texture is not None and mesh.texture is not self._texture:
            mesh.texture.use(0)
            self._texture = mesh.texture
        if mirrored != self._front:
            self.ctx.front_face = "cw" if mirrored else "ccw"
            self._front = mirrored

    def _render(self, mesh: GpuMesh, groups: tuple[FaceGroup, ...], instances: int) -> None:
        """Draw ``groups`` of ``mesh``, culling back faces except for double-sided ones."""
        import moderngl

        for group in groups:
            if group.double_sided == self._cull:
                self._cull = not group.double_sided
                (self.ctx.enable if self._cull else self.ctx.disable)(moderngl.CULL_FACE)
            mesh.vao.render(vertices=3 * group.count, first=3 * group.first,
                            instances=instances)

    def _back_to_front(self, draws: list[InstanceDraw],
                       eye: int) -> list[tuple[float, int, int, bool]]:
        """(view-space z, slot, instance row, mirrored) of every instance of ``draws``,
        farthest first (z is negative in front of the eye: -Z is forward)."""
        forward = self.view_host[eye][2]  # row 2 of world -> eye: z of a world point
        items = []
        for draw in draws:
            first, count = draw.first, draw.count
            rows = (self._spare[first - self.capacity:first - self.capacity + count]
                    if first >= self.capacity else self._rows[first:first + count])
            columns = rows[:, :16].reshape(-1, 4, 4)  # GL column-major: [row, column, :]
            centers = np.einsum("ncr,c->nr", columns, self.meshes[draw.slot].center)
            depth = centers @ forward
            items += [(float(z), draw.slot, first + k, draw.mirrored)
                      for k, z in enumerate(depth)]
        items.sort(key=lambda item: item[0])
        return items

    def _point_instances(self, mesh: GpuMesh, first: int) -> None:
        """Make ``mesh``'s instance attributes start at instance row ``first``."""
        base = first * INSTANCE_BYTES
        for i in range(5):  # four model-matrix columns, then the colour
            mesh.vao.bind(MODEL_LOCATION + i, "f", self.instance_buffer, "4f",
                          offset=base + 16 * i, stride=INSTANCE_BYTES, divisor=1)
        mesh.first = first

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
