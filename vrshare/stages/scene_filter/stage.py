"""The scene-filter stage: which object instances to draw, at which level of detail.

Every frame, over all N objects at once (no per-object Python work):

1. **Culling.** Each eye's six frustum planes come from the rows of ``proj @ view``
   (Gribb–Hartmann), normalised so plane values are metres. An object's bounding
   sphere is kept when, for either eye, it is on the inner side of (or cuts) all six
   planes: one ``(12, 4) @ (4, N)`` product gives all twelve plane values.
2. **Budget** (optional). Of the visible objects, keep the ``instance_budget``
   ranked highest by ``importance * r / max(d, r)`` (the sine of the sphere's angular
   radius, 1 from inside it; ``d`` is the distance below); ties go to the lower index.
3. **Level of detail with hysteresis**, for the kept objects. The distance ``d`` is
   from the midpoint between the eyes to the sphere centre. With switch distances
   ``s_l`` and band ``h``, an object goes coarser once it is at least ``s_l (1 + h)``
   away and finer once it is nearer than ``s_l (1 - h)``, otherwise keeps the LOD it
   had: ``lod = clip(prev, lo, hi)`` where ``lo``/``hi`` count the switch distances
   passed by the outer/inner band edge. Objects not drawn keep their last LOD until
   they are drawn again (then the same rule corrects it). The switch distances are
   the mesh table's (m), or, with ``lod_pixels``, where the sphere's projected
   diameter ``2 r f / d`` (px; ``f`` = ``proj[1, 1] * eye_height_px / 2``, the larger
   of the two eyes) falls to ``P_l``: ``s_l = 2 r f / P_l``, so every object switches
   at the same apparent size; ``d^2 / (r f)^2`` is then compared with ``(2 / P_l)^2``
   (times the band), one division per object.
4. **Compaction.** Kept objects are listed in index order by a running count and a
   scatter (no hidden index array, unlike ``compress``), then ordered by (draw slot,
   index) with one in-place sort of the integer key ``slot * N + index``;
   ``draw_ranges`` counts per slot (a bincount and a cumulative sum) and ``instances``
   receives each kept object's model matrix in GL column-major order (transposed by
   one product with a 16 x 16 permutation matrix, far faster in NumPy than a strided
   copy; exact for finite values, on CuPy as long as TF32 is not switched on with
   ``CUPY_TF32``) and its colour. The listing runs right after culling, so the later
   steps touch only the kept objects.

Rows of ``instances`` past the last range keep stale data; the renderer draws ranges.
On the NumPy backend the same steps can run as compiled loops instead (:mod:`.kernel`,
setting ``kernel``); the budget step is this module's on both paths.
All scratch arrays are allocated in :meth:`SceneFilterStage.setup` (the array code's
own only when it is the path taken); the few small temporaries NumPy/CuPy force are
marked where they occur.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ... import layout
from ...backend import array_module, to_host
from ...config import ConfigError, check_ranges, setting
from ...pipeline import BufferMismatch, Frame, Stage, StageConfig
from ...weights import WeightBank
from .gathers import as_16_bytes, stream_compact, take
from .tables import PLANE_ROWS, check_lod_tables, transpose_matrix

log = logging.getLogger(__name__)

_TINY = 1e-30  # floor of a plane normal's length: an infinite far plane has none
_MIN_SCORE_DISTANCE = 1e-6  # m, floor of the budget score's distance


@dataclass
class SceneFilterSettings:
    """The ``[stage.settings]`` of ``scene_filter``."""

    # Half-width of the band around each LOD switch distance, as a fraction of it:
    # coarser from s (1 + h), finer below s (1 - h). 0 switches exactly at s.
    lod_hysteresis: float = setting(0.1, ge=0, lt=1)
    # Most instances drawn per frame; 0 draws every visible object.
    instance_budget: int = setting(0, ge=0)
    # Threads NumPy's BLAS may use during this stage (0: leave the library's setting).
    # Its products here are tiny (inner size 4 and 16): extra threads only add
    # synchronisation, and on a loaded machine wait for a free core (measured 10-50x
    # slower with 2 threads on 2 busy cores).
    blas_threads: int = setting(1, ge=0, le=1024)
    # Switch by projected size instead of distance: the bounding sphere's diameter on
    # screen (px) below which LOD 1, 2, ... is used, decreasing. Empty: the scene's
    # [scene] lod_pixels if it gives them, else the distances (m) of mesh_lod_distance.
    lod_pixels: tuple[float, ...] = setting((), gt=0, unit="px")
    # Vertical resolution of one eye (px) the sizes are measured at: the display's.
    eye_height_px: int = setting(0, ge=0, le=65536, unit="px")
    # Which code filters: the compiled loops of kernel.py (Numba, the `fast` extra, NumPy
    # backend only), the array code that runs on every backend, or "auto": the compiled
    # loops where they can run, else the array code (the reason is logged).
    kernel: Literal["auto", "numba", "numpy"] = "auto"

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.lod_pixels and not self.eye_height_px:
            raise ConfigError("scene_filter settings: 'lod_pixels' needs 'eye_height_px' "
                              "(the eye's vertical resolution, px: the display's height)")
        if list(self.lod_pixels) != sorted(self.lod_pixels, reverse=True):
            raise ConfigError("scene_filter settings 'lod_pixels': sizes must decrease "
                              f"(LOD 1 first), got {list(self.lod_pixels)}")


class SceneFilterStage(Stage):
    """Frustum culling against both eyes, LOD with hysteresis, budget, compaction.

    Reads the object table and eye matrices of :mod:`vrshare.layout`; writes
    ``instances`` (N, 20) float32 and ``draw_ranges`` (D, 2) int32, D being the
    number of draw slots in ``mesh_lod_draw``, exactly as the passthrough stage
    does, so the renderer draws either.
    """

    name = "scene_filter"
    reads = (layout.OBJECT_MODEL, layout.OBJECT_BOUNDS, layout.OBJECT_MESH, layout.OBJECT_COLOR,
             layout.OBJECT_IMPORTANCE, layout.MESH_LOD_DRAW, layout.MESH_LOD_DISTANCE,
             layout.EYE_VIEW, layout.EYE_PROJ)
    writes = (layout.INSTANCES, layout.DRAW_RANGES)
    Settings = SceneFilterSettings

    def __init__(self, settings: SceneFilterSettings | None = None, *,
                 name: str | None = None) -> None:
        super().__init__(settings, name=name)
        self.drawn = 0  # instances written by the last frame

    # -- setup ----------------------------------------------------------------------

    def _input(self, bank: WeightBank, name: str, shape: tuple[int, ...], dtype: str) -> Any:
        if name not in bank:
            raise BufferMismatch(name, "is not in the bank; the stage that writes it must "
                                       "declare it in its setup")
        array = bank[name]
        if tuple(array.shape) != shape or np.dtype(array.dtype) != np.dtype(dtype):
            raise BufferMismatch(name, f"is {tuple(array.shape)} {np.dtype(array.dtype)}, "
                                       f"expected {shape} {np.dtype(dtype)}")
        return array

    def setup(self, bank: WeightBank, config: StageConfig) -> None:
        self._pixels = tuple(self.settings.lod_pixels
                             or getattr(config.scene, "lod_pixels", None) or ())
        if self._pixels and not self.settings.eye_height_px:
            raise ConfigError(f"{self.name}: switching by the scene's lod_pixels needs the "
                              "setting 'eye_height_px' (the eye's vertical resolution, px)")
        mesh, lod_draw, distance = self._bind(bank)
        xp = self._xp = array_module(self._model)
        self._blas = None
        if xp is np and self.settings.blas_threads:
            from threadpoolctl import ThreadpoolController

            self._blas = ThreadpoolController().select(user_api="blas")
        self._lod_constants(xp, mesh, lod_draw, distance)
        n = self._n
        self.instances = bank.state(layout.INSTANCES, (n, layout.INSTANCE_FLOATS), "float32")
        self.draw_ranges = bank.state(layout.DRAW_RANGES, (self._slots, 2), "int32")
        self._allocate(xp, n)
        self._compiled = self._choose_kernel(xp)
        if self._compiled is None:
            self._allocate_array_code(xp, n)

    def _choose_kernel(self, xp: Any) -> Any:
        """The compiled loops (:mod:`.kernel`), compiled now, or None for the array code."""
        wanted = self.settings.kernel
        if wanted == "numpy":
            return None
        if xp is not np:
            reason = f"the array backend is {xp.__name__}, the compiled loops are NumPy's"
        else:
            try:
                from . import kernel
            except ImportError as exc:
                reason = f"Numba is not importable ({exc}; pip install 'vrshare[fast]')"
            else:
                self._eye_planes = np.zeros((12, 4), np.float32)
                self._columns = np.zeros((4, self._n), np.float32)
                self._visible = np.zeros(self._n, bool)
                self._run_compiled(kernel, 0)  # compiles (or loads Numba's cache) now
                log.info("%s: compiled loops (Numba) for %d objects", self.name, self._n)
                return kernel
        if wanted == "numba":
            raise ConfigError(f"{self.name} settings 'kernel' = 'numba': {reason}")
        log.info("%s: array code for %d objects: %s", self.name, self._n, reason)
        return None

    def _bind(self, bank: WeightBank) -> tuple[Any, Any, Any]:
        """Check and keep the input buffers; returns the mesh ids and the LOD tables."""
        model = bank[layout.OBJECT_MODEL] if layout.OBJECT_MODEL in bank else None
        n = int(model.shape[0]) if model is not None and model.ndim == 3 else 0
        lod_draw = bank[layout.MESH_LOD_DRAW] if layout.MESH_LOD_DRAW in bank else None
        m, levels = tuple(lod_draw.shape) if lod_draw is not None and lod_draw.ndim == 2 else (0, 1)
        self._n, self._levels = n, levels
        self._model = self._input(bank, layout.OBJECT_MODEL, (n, 4, 4), "float32")
        self._bounds = self._input(bank, layout.OBJECT_BOUNDS, (n, 4), "float32")
        self._color = self._input(bank, layout.OBJECT_COLOR, (n, 4), "float32")
        self._importance = self._input(bank, layout.OBJECT_IMPORTANCE, (n,), "float32")
        self._view = self._input(bank, layout.EYE_VIEW, (2, 4, 4), "float32")
        self._proj = self._input(bank, layout.EYE_PROJ, (2, 4, 4), "float32")
        mesh = self._input(bank, layout.OBJECT_MESH, (n,), "int32")
        lod_draw = self._input(bank, layout.MESH_LOD_DRAW, (m, levels), "int32")
        distance = self._input(bank, layout.MESH_LOD_DISTANCE, (m, levels), "float32")
        return mesh, lod_draw, distance

    def _lod_constants(self, xp: Any, mesh: Any, lod_draw: Any, distance: Any) -> None:
        """Per-mesh constants, from host copies of the parameter tables (setup only)."""
        draw_h, dist_h, mesh_h = (to_host(a, label=f"{self.name} setup")
                                  for a in (lod_draw, distance, mesh))
        counts = check_lod_tables(draw_h, dist_h, mesh_h)
        self._slots = int(draw_h.max()) + 1 if draw_h.size else 0
        levels, h = self._levels, self.settings.lod_hysteresis
        pixels = self._pixels
        if pixels:  # in units of r * f (see _choose_lod): the distance of a size of P px
            size = np.full(max(levels - 1, 0), np.inf)
            size[:len(pixels)] = 2.0 / np.asarray(pixels[:levels - 1], np.float64)
            switch = np.repeat(size[:, None], len(counts), axis=1)
        else:
            switch = dist_h[:, 1:].astype(np.float64).T  # (L-1, M), m
        switch[np.arange(1, levels)[:, None] >= counts[None, :]] = np.inf  # past the last LOD
        self._up2 = xp.asarray(np.square(switch * (1 + h)), np.float32)  # squared, m^2
        self._down2 = xp.asarray(np.square(switch * (1 - h)), np.float32)
        self._table = xp.asarray(draw_h.ravel().astype(np.intp))  # mesh * L + lod -> slot
        self._mesh = xp.asarray(mesh_h.astype(np.intp))

    def _allocate(self, xp: Any, n: int) -> None:
        """Scratch both paths use, sized once (per-object arrays hold N entries; per-frame
        work uses their first ``count``). Index arrays are intp, so NumPy's take and
        scatter use them as they are."""
        f32, i32, ip = np.float32, np.int32, np.intp
        self._a = xp.zeros((12, 4), f32)  # planes [nx, ny, nz, 1] (times [cx, cy, cz, r])
        self._a[:, 3] = 1.0
        self._offset = xp.zeros((12, 1), f32)  # plane offsets (m)
        self._viewer = xp.zeros(3, f32)  # midpoint between the eyes (m)
        self._rows = xp.asarray(PLANE_ROWS)
        self._pv = xp.zeros((2, 4, 4), f32)
        self._planes = xp.zeros((2, 6, 4), f32)
        self._sq = xp.zeros((2, 6, 3), f32)
        self._norm = xp.zeros((2, 6), f32)
        self._flag = xp.zeros(n, ip)  # 0/1
        self._pos = xp.zeros(n, ip)
        self._order = xp.zeros(n + 1, ip)  # kept object indices; the last entry takes the rest
        self._lod = xp.zeros(n, i32)  # every object's LOD, kept across frames
        self._kept_d2 = xp.zeros(n, f32)  # squared distance to the viewer, m^2
        self._focal = xp.zeros((), f32)  # px per unit of tangent, the eyes' largest
        self._sphere = xp.zeros((n, 4), f32)
        self._rel = xp.zeros(n, f32)
        self._slot = xp.zeros(n, ip)
        if 0 < self.settings.instance_budget < n:
            self._score = xp.zeros(n, f32)
            self._sorted = xp.zeros(n, f32)
            self._weight = xp.zeros(n, f32)
            self._tie = xp.zeros(n, ip)
            self._rank = xp.zeros(n, ip)
            self._above = xp.zeros((), ip)
            self._survivors = xp.zeros(n + 1, ip)

    def _allocate_array_code(self, xp: Any, n: int) -> None:
        """Scratch only the array code uses (about 190 bytes per object): left out when
        the compiled loops filter."""
        f32, i32, ip = np.float32, np.int32, np.intp
        # the sort key slot * N + index (see _compact) is int32 where it fits
        key = np.int32 if self._slots * n < 2**31 else np.int64
        self._s = xp.zeros((12, n), f32)
        self._m = xp.zeros((2, n), f32)
        self._arange = xp.arange(n, dtype=ip)
        self._kept_lod = xp.zeros(n, i32)
        self._kept_mesh = xp.zeros(n, ip)
        self._size2 = xp.zeros(n, f32)  # lod_pixels: (d / (r f))^2, per px^2 of size
        self._threshold = xp.zeros(n, f32)
        self._passed = xp.zeros(n, bool)
        self._lo = xp.zeros(n, i32)
        self._hi = xp.zeros(n, i32)
        self._row = xp.zeros(n, ip)
        self._key = xp.zeros(n, key)
        self._gathered = xp.zeros((n, 16), f32)
        self._colors = xp.zeros(n, np.complex128)  # RGBA as one 16-byte element
        self._transpose = xp.asarray(transpose_matrix())

    # -- per frame --------------------------------------------------------------------

    @property
    def lod(self) -> Any:
        """Every object's LOD after the last frame (N,) int32, on the device."""
        return self._lod

    def process(self, frame: Frame, bank: WeightBank) -> None:
        if self._blas is None:
            self._filter()
        else:
            with self._blas.limit(limits=self.settings.blas_threads):
                self._filter()

    def _filter(self) -> None:
        self._frustum()
        if self._compiled is not None:
            self._run_compiled(self._compiled)
            return
        self._cull()
        count = stream_compact(self._xp, self._flag, self._arange, self._pos, self._order)
        self._measure(count)
        if 0 < self.settings.instance_budget < count:
            count = self._apply_budget(count)
            self._measure(count)
        self._choose_lod(count)
        self._compact(count)

    def _run_compiled(self, kernel: Any, n: int | None = None) -> None:
        """Cull, budget and compact through the compiled loops (``n``: objects to read)."""
        planes = self._eye_planes
        planes[:, :3] = self._a[:, :3]
        planes[:, 3] = self._offset[:, 0]
        n = self._n if n is None else n
        np.copyto(self._columns[:, :n], self._bounds[:n].T)
        count = kernel.cull_and_list(planes, self._columns[:, :n], self._visible, self._order)
        if 0 < self.settings.instance_budget < count:
            self._measure(count)
            count = self._apply_budget(count)
        focal = self._focal if self._pixels else np.float32(0.0)
        kernel.lod_and_compact(count, self._order, self._bounds, self._viewer,
                               np.float32(focal), self._mesh, self._up2, self._down2,
                               self._table, self._lod, self._slot, self._model,
                               self._color, self.instances, self.draw_ranges)
        self.drawn = count

    def _frustum(self) -> None:
        """Planes of both eyes into ``_a`` / ``_offset``; the viewer position."""
        xp = self._xp
        xp.matmul(self._proj, self._view, out=self._pv)
        xp.matmul(self._rows, self._pv, out=self._planes)
        normal = self._planes[..., :3]
        xp.multiply(normal, normal, out=self._sq)
        xp.sum(self._sq, axis=2, out=self._norm)
        xp.sqrt(self._norm, out=self._norm)
        xp.maximum(self._norm, _TINY, out=self._norm)
        xp.divide(self._planes, self._norm[..., None], out=self._planes)
        planes = self._planes.reshape(12, 4)
        self._a[:, :3] = planes[:, :3]
        self._offset[:, 0] = planes[:, 3]
        inverse = xp.linalg.inv(self._view)  # temporary (2, 4, 4): inv has no out=
        xp.mean(inverse[:, :3, 3], axis=0, out=self._viewer)
        if self._pixels:  # proj[1, 1] = 2 / (tan up - tan down)
            xp.max(self._proj[:, 1, 1], out=self._focal)
            xp.multiply(self._focal, self.settings.eye_height_px / 2, out=self._focal)

    def _cull(self) -> None:
        """``_flag`` = 1 where the object is visible to either eye, else 0."""
        xp, s, m = self._xp, self._s, self._m
        xp.matmul(self._a, self._bounds.T, out=s)  # n.c + r per plane
        xp.add(s, self._offset, out=s)
        xp.min(s.reshape(2, 6, self._n), axis=1, out=m)  # worst plane per eye
        xp.maximum(m[0], m[1], out=m[0])  # best eye
        xp.greater_equal(m[0], 0.0, out=self._flag)

    def _measure(self, count: int) -> None:
        """Bounding spheres and squared viewer distances (m^2) of the kept objects.

        Axis by axis on 1-D columns: NumPy's loops over an inner axis of 3 (a
        broadcast subtract, a sum over axis 1) are several times slower here.
        """
        xp = self._xp
        sphere, rel, d2 = self._sphere[:count], self._rel[:count], self._kept_d2[:count]
        take(xp, as_16_bytes(self._bounds), self._order[:count], as_16_bytes(sphere))
        d2.fill(0)
        for axis in range(3):  # over x, y, z, not objects
            xp.subtract(sphere[:, axis], self._viewer[axis:axis + 1], out=rel)
            xp.multiply(rel, rel, out=rel)
            xp.add(d2, rel, out=d2)

    def _choose_lod(self, count: int) -> None:
        """Update the drawn objects' LOD (``clip(lod, lo, hi)``); their slots into ``_slot``."""
        xp = self._xp
        index = self._order[:count]
        mesh, d2, lod = self._kept_mesh[:count], self._kept_d2[:count], self._kept_lod[:count]
        threshold, passed = self._threshold[:count], self._passed[:count]
        lo, hi, row = self._lo[:count], self._hi[:count], self._row[:count]
        take(xp, self._mesh, index, mesh)
        take(xp, self._lod, index, lod)
        if self._pixels:  # compare (d / (r f))^2 with (2 / P)^2
            measure = self._size2[:count]
            xp.multiply(self._sphere[:count, 3], self._focal, out=measure)
            xp.multiply(measure, measure, out=measure)
            xp.maximum(measure, _TINY, out=measure)
            xp.divide(d2, measure, out=measure)
        else:
            measure = d2
        lo.fill(0)
        hi.fill(0)
        for level in range(self._levels - 1):  # over LOD levels, not objects
            for bound, counter in ((self._up2, lo), (self._down2, hi)):
                take(xp, bound[level], mesh, threshold)
                xp.greater_equal(measure, threshold, out=passed)
                xp.add(counter, passed, out=counter)
        xp.maximum(lod, lo, out=lod)
        xp.minimum(lod, hi, out=lod)
        self._lod[index] = lod
        xp.multiply(mesh, self._levels, out=row)
        xp.add(row, lod, out=row)
        take(xp, self._table, row, self._slot[:count])

    def _apply_budget(self, count: int) -> int:
        """Keep the ``instance_budget`` of the ``count`` visible objects that score highest.

        Works on the compacted list: score, partition a copy to find the budget-th
        highest score, keep everything above it and the lowest-index ties that fit.
        """
        xp, budget = self._xp, self.settings.instance_budget
        index = self._order[:count]
        score, weight = self._score[:count], self._weight[:count]
        take(xp, self._importance, index, weight)
        radius = self._sphere[:count, 3]
        xp.sqrt(self._kept_d2[:count], out=score)
        xp.maximum(score, radius, out=score)
        xp.maximum(score, _MIN_SCORE_DISTANCE, out=score)
        xp.divide(radius, score, out=score)
        xp.multiply(score, weight, out=score)
        ranked = self._sorted[:count]
        ranked[...] = score
        ranked.partition(count - budget)  # in place: the budget-th highest lands there
        threshold = ranked[count - budget:count - budget + 1]
        above, tie, rank = self._flag[:count], self._tie[:count], self._rank[:count]
        xp.greater(score, threshold, out=above)
        xp.sum(above, out=self._above)
        xp.equal(score, threshold, out=tie)
        xp.cumsum(tie, out=rank)
        xp.subtract(budget, self._above, out=self._above)  # ties that still fit
        xp.less_equal(rank, self._above, out=rank)
        xp.multiply(tie, rank, out=tie)
        xp.add(above, tie, out=above)  # above and tie are disjoint: a 0/1 keep flag
        kept = stream_compact(xp, above, index, self._pos[:count], self._survivors[:count + 1])
        index[:kept] = self._survivors[:kept]
        return kept

    def _compact(self, count: int) -> None:
        """Order the kept objects by (slot, index); write ``draw_ranges`` and ``instances``."""
        xp, n = self._xp, self._n
        index, key, slot = self._order[:count], self._key[:count], self._slot[:count]
        ranges = self.draw_ranges
        ranges[:, 1] = xp.bincount(slot, minlength=self._slots)  # temporary of D counts
        xp.cumsum(ranges[:, 1], out=ranges[:, 0])
        xp.subtract(ranges[:, 0], ranges[:, 1], out=ranges[:, 0])
        xp.multiply(slot, n, out=key, casting="same_kind")
        xp.add(key, index, out=key, casting="same_kind")
        key.sort()
        if count:
            xp.remainder(key, n, out=index)
        rows, colors = self._gathered[:count], self._colors[:count]
        take(xp, self._model.reshape(n, 16), index, rows)
        xp.matmul(rows, self._transpose, out=self.instances[:count, :16])
        # Colours are gathered contiguously (NumPy's take would copy a strided out),
        # then copied into their column in one pass of 16-byte elements.
        take(xp, as_16_bytes(self._color), index, colors)
        as_16_bytes(self.instances)[:count, 4] = colors
        self.drawn = count
