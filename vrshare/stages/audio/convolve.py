"""The binaural renderer: every source through its HRTF pair, all at once, block by block.

Per block of ``B`` samples, with ``S`` sources, HRTF grid spectra of ``K = N/2 + 1``
bins (FFT size ``N``, a multiple of ``B`` and ``>= B + taps - 1``):

1. each source's position in the head frame from the head pose (and, for sources
   on scene objects, the object's model matrix); its direction and distance;
2. its filter pair: the bilinear blend of four grid spectra (:mod:`.grid`) times
   its distance gain ``gain * ref / clip(distance, min, max)``; on the CPU, each
   source's four spectra are kept from block to block and gathered again only when
   it moves into another grid cell;
3. one batched overlap-save: the last ``N`` input samples of every source (a ring
   of ``N / B`` blocks) are transformed in one real FFT call, multiplied by both
   the previous block's and this block's filters and summed over sources in the
   frequency domain, and the four sums (old/new x left/right) come back in one
   inverse FFT call;
4. a linear crossfade over the block from the old filters' output to the new
   ones', so a filter that changes between blocks (a head turn) never clicks.

Non-finite input never reaches the output. A head pose with a NaN or infinite
value (or one so large, beyond about 1e19, that its square overflows float32) is
ignored and the last good one kept; a source whose world position is not finite
(its object's model matrix holds a NaN or inf) keeps its last good position, or
stays muted until it has one. Each case is counted per block in :attr:`BinauralRenderer.events`
(on the device; nothing is read back per block). As a last line, non-finite output
samples are zeroed and counted. All checks are a few array operations on the
(S, 3) positions and the (2, B) output block.

When nothing moves, old and new filters are equal and the output is exactly a
linear convolution of each signal with its responses. There is no loop over
sources: the cost per block is a fixed number of array operations, so the NumPy
path here is the code CuPy runs on a GPU. (On the CPU, steps 2-3 run over groups
of :data:`GROUP` sources when there are more than :data:`UNGROUPED`, so each
group's intermediate arrays stay in cache; the sums are the same.) State (input
history, previous filters, sample position) lives in the renderer; one thread at a
time may call :meth:`BinauralRenderer.render`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ... import backend
from . import grid
from .sources import SignalTable, Source

_W_EPS = np.array([0, 0, 0, 1e-9], np.float32)
# Indices into BinauralRenderer.events after the S per-source counts.
HEAD_POSE_EVENTS = -2  # blocks whose head pose was not usable (the last good one was kept)
SAMPLE_EVENTS = -1  # non-finite output samples zeroed
# On the CPU, more than UNGROUPED sources are filtered in groups of GROUP, so that a
# group's blended filters and products (2 x 32 x 2 x 257 complex64: 0.26 MB at 512-point
# FFTs) are still in cache when the next step reads them (measured 1.25x at 256 sources
# when each group also gathered its grid spectra); up to UNGROUPED sources, the extra
# array calls cost more than that saves (0.95x at 64 in groups of 32). Since grid spectra
# are kept between blocks, groups of 16 to 256 measured alike, within the noise of a
# shared machine, at 64 and 256 sources. On a GPU, all sources form one group.
GROUP = 32
UNGROUPED = 64


def _rotation_map() -> np.ndarray:
    """(9, 16) map from ``q q^T`` (q = x, y, z, w) to |q|^2 times the rotation matrix of q.

    Homogeneous in q, so dividing by |q|^2 normalises any non-zero quaternion.
    """
    x, y, z, w = range(4)
    m = np.zeros((3, 3, 4, 4), np.float32)
    for i, a in enumerate((x, y, z)):
        m[i, i, w, w] = m[i, i, a, a] = 1
        for b in {x, y, z} - {a}:
            m[i, i, b, b] = -1
    for (i, j), (a, b), (c, sign) in {((0, 1), (x, y), (z, -1)), ((1, 0), (x, y), (z, 1)),
                                      ((0, 2), (x, z), (y, 1)), ((2, 0), (x, z), (y, -1)),
                                      ((1, 2), (y, z), (x, -1)), ((2, 1), (y, z), (x, 1))}:
        m[i, j, a, b] = m[i, j, b, a] = 1
        m[i, j, c, w] = m[i, j, w, c] = sign
    return m.reshape(9, 16)


def fft_module(xp: ModuleType) -> ModuleType:
    """``scipy.fft`` for NumPy arrays, ``cupy.fft`` for CuPy ones.

    scipy.fft transforms float32 natively and measured about 2x faster than
    numpy.fft on the batched block transforms here; the interface is the same.
    """
    if xp is np:
        import scipy.fft

        return scipy.fft
    return xp.fft


def fft_size(block: int, taps: int) -> int:
    """FFT length for overlap-save: the fewest whole blocks holding a block plus a tail.

    A whole number of blocks lets the input history be a ring of block slots that
    is never shifted (see :meth:`BinauralRenderer._convolve`); 256-sample blocks
    with 256-tap responses give 512.
    """
    return block * -(-(block + taps - 1) // block)


def spectra(hrir: Any, n_fft: int) -> Any:
    """(G, 2, taps) responses -> (G, 2, n_fft/2+1) complex64 spectra, on their device."""
    xp = backend.array_module(hrir)
    return fft_module(xp).rfft(hrir, n=n_fft, axis=-1).astype(np.complex64)


@dataclass(frozen=True)
class Distance:
    """Inverse-distance attenuation, clamped: ``gain * reference / clip(d, min, max)``."""

    reference_m: float = 1.0  # distance at which a source plays at its own gain (m)
    min_m: float = 0.25  # closer sources get no louder (m)
    max_m: float = 100.0  # farther sources get no quieter (m)


class BinauralRenderer:
    """Renders stereo blocks of all ``sources`` for a head pose.

    ``bank_spectra`` is the shared HRTF bank, (grid.SIZE, 2, K) complex64 on the
    device (NumPy or CuPy); every other array is allocated here, once, on the same
    device.
    """

    def __init__(self, bank_spectra: Any, n_fft: int, block: int, sources: list[Source],
                 distance: Distance = Distance()) -> None:
        xp = backend.array_module(bank_spectra)
        self.xp, self.fft = xp, fft_module(xp)
        if xp is not backend.active().xp:
            raise ValueError(f"HRTF spectra are {xp.__name__} arrays but the active backend is "
                             f"{backend.active().name}")
        g, ears, k = bank_spectra.shape
        if ears != 2 or g != grid.SIZE or k != n_fft // 2 + 1:
            raise ValueError(f"HRTF spectra of shape {bank_spectra.shape} do not fit the grid "
                             f"({grid.SIZE}, 2, {n_fft // 2 + 1})")
        if n_fft % block or n_fft < 2 * block:
            raise ValueError(f"FFT size {n_fft} is not a multiple (>= 2) of the block {block}")
        self.table = bank_spectra.reshape(g, 2 * k)
        self.n_fft, self.block, self.bins = n_fft, block, k
        self.distance = distance
        s = self.count = len(sources)
        dev = backend.to_device
        table = SignalTable.pack(sources, pad=block)
        samples = table.samples if s else np.zeros(block, np.float32)
        self.samples = dev(samples, label="audio_signals")
        # every block-long window of the packed signals, as a strided view (no copy)
        self.windows = xp.lib.stride_tricks.as_strided(
            self.samples, shape=(len(samples) - block + 1, block),
            strides=(self.samples.strides[0],) * 2)
        self.offsets = dev(table.offsets, label="audio_signals")
        self.lengths = dev(table.lengths, label="audio_signals")
        # a one-shot signal's period never ends: its start is then min(position, length)
        self.periods = dev(np.where(table.loop, table.lengths, np.iinfo(np.int64).max),
                           label="audio_signals")
        self.rows = xp.zeros(s, np.int64)
        self.positions = dev(np.array([src.position for src in sources], np.float32).reshape(s, 3),
                             label="audio_sources")
        obj = np.array([src.object_index for src in sources], np.int64)
        self.attached = bool(np.any(obj >= 0))
        self.object_index = dev(np.maximum(obj, 0), label="audio_sources")
        self.on_object = dev((obj >= 0)[:, None], label="audio_sources")
        self.gains_ref = dev(np.array([src.gain * distance.reference_m for src in sources],
                                      np.float32), label="audio_sources")
        self.ramp = dev((np.arange(1, block + 1) / block).astype(np.float32), label="audio_ramp")
        self.rot_map = dev(_rotation_map(), label="audio_constants")
        self.w_eps = dev(_W_EPS, label="audio_constants")
        self.pose = dev(np.array([0, 0, 0, 0, 0, 0, 1], np.float32), label="audio_constants")
        # ^ the last finite head pose
        # per source: blocks whose world position was not usable (held or muted), then
        # blocks with an unusable head pose, then non-finite output samples zeroed
        self.events = xp.zeros(s + 2, np.int64)
        self.held = xp.zeros((s, 3), np.float32)  # last usable world position per source
        self.heard = xp.zeros(s, bool)  # whether it ever had one (muted until then)
        self.bad_out = xp.zeros((2, block), bool)
        self.all_heard = False
        # On the CPU the checks read their answer on the host and skip the bookkeeping
        # when all is well; on a GPU they always run as array operations (no sync).
        self.host = xp is np
        # NumPy warns about inf * 0 or overflow in the head-frame maths of bad input
        self._quiet = ((lambda: np.errstate(invalid="ignore", over="ignore")) if xp is np
                       else contextlib.nullcontext)
        self.history = xp.zeros((s, n_fft), np.float32)  # ring of n_fft / block input blocks
        self.filters = xp.zeros((2, s, 2, k), np.complex64)  # [old/new halves] x source x ear
        self.group = GROUP if xp is np and s > UNGROUPED else max(s, 1)
        self.products = xp.empty((2, self.group, 2, k), np.complex64)
        self.sums = xp.empty((2, 2, k), np.complex64)
        self.partial = xp.empty((2, 1, 4 * k), np.float32)  # a later group's sums (float view)
        self.locate = grid.Locator(xp, s)
        self.blend = xp.zeros((s, 1, 4), np.float32)
        self.ones = xp.ones((1, self.group), np.float32)
        # every source's four corner spectra, and the grid cell they are of (-1: none yet)
        self.gathered = xp.empty((max(s, 1) * 4, 2 * k), np.complex64)
        self.cells = xp.full(s, -1, np.int64)
        self.out = xp.zeros((2, block), np.float32)
        # NumPy buffers ``take(out=...)`` unless told indices are in range (they are)
        self._take_kw = {"mode": "clip"} if xp is np else {}
        self.position = 0  # samples rendered so far
        self.new = 0  # which half of ``filters`` holds this block's filters
        self.primed = False

    def render(self, pose: Any, models: Any = None, out: Any = None) -> Any:
        """Render the next block; returns ``out`` (or an internal (2, B) float32 array).

        ``pose`` is the head pose (7,) ``[px, py, pz, qx, qy, qz, qw]`` (m, unit
        quaternion) on this renderer's device; a non-finite pose is ignored (the last
        finite one is kept). ``models`` (N, 4, 4) object->world matrices are needed
        when a source is attached to a scene object; a source whose matrix gives a
        non-finite position keeps its last good one (muted if it never had one).
        Every such event is counted in :attr:`events`; the output is always finite.
        """
        out = self.out if out is None else out
        if self.count == 0:
            out[...] = 0
            self.position += self.block
            return out
        with self._quiet():  # bad input is counted and reported once, by the stage
            unit, dist = self._head_frame(pose, models)
        idx = self._weights(unit, dist)
        self._convolve(idx, out)
        self._guard(out)
        self.position += self.block
        self.new ^= 1
        self.primed = True
        return out

    def event_counts(self) -> dict[str, Any]:
        """The :attr:`events` counts on the host: ``positions`` (S,) int64 per source,
        ``head_pose`` and ``samples`` ints (one small transfer)."""
        events = backend.to_host(self.events, label="audio_events")
        return {"positions": events[:self.count], "head_pose": int(events[HEAD_POSE_EVENTS]),
                "samples": int(events[SAMPLE_EVENTS])}

    # -- steps ---------------------------------------------------------------------

    def _head_frame(self, pose: Any, models: Any) -> tuple[Any, Any]:
        """Source directions (S, 3) and distances (S,) in the head frame."""
        xp = self.xp
        # usable: finite, and its square too (NaN, inf and overflow all end in the sum)
        usable = xp.isfinite(xp.dot(pose, pose))
        if self.host and usable:
            self.pose[...] = pose
        else:
            xp.copyto(self.pose, pose, where=usable)
            self.events[HEAD_POSE_EVENTS] += ~usable
        p = self.pose[:3]
        q = self.pose[3:] + self.w_eps  # a zero quaternion (nothing tracked yet) reads as identity
        rot = (self.rot_map @ (q[:, None] * q[None, :]).reshape(16)).reshape(3, 3)
        rot /= xp.dot(q, q)
        world = self.positions
        if self.attached:
            if models is None:
                raise ValueError("a sound source is attached to a scene object but no object "
                                 "matrices were given")
            m = models[self.object_index]
            moved = xp.matmul(m[:, :3, :3], self.positions[:, :, None])[:, :, 0] + m[:, :3, 3]
            world = xp.where(self.on_object, moved, self.positions)
            usable = xp.isfinite((world * world).sum(axis=1))  # (S,), as for the pose
            if self.host and usable.all():
                self.held[...] = world
                if not self.all_heard:
                    self.heard[...] = self.all_heard = True
            else:
                self.events[:self.count] += ~usable
                xp.copyto(self.held, world, where=usable[:, None])
                self.heard |= usable
            world = self.held
        v = xp.matmul(world - p, rot)  # rows (R^T (x - p))^T = (x - p)^T R: world -> head
        dist = xp.sqrt((v * v).sum(axis=1))
        v /= xp.maximum(dist, 1e-9)[:, None]
        return v, dist

    def _weights(self, unit: Any, dist: Any) -> Any:
        """Grid entries (S, 4) of every source's filter; their weights x distance gain."""
        xp, d = self.xp, self.distance
        idx, weights = self.locate(unit)
        xp.maximum(dist, d.min_m, out=dist)
        xp.minimum(dist, d.max_m, out=dist)
        xp.divide(self.gains_ref, dist, out=dist)  # now the distance gain
        if self.attached and not self.all_heard:
            dist *= self.heard  # a source that never had a usable position is muted
        xp.multiply(weights, dist[:, None], out=self.blend[:, 0, :])
        return idx

    def _convolve(self, idx: Any, out: Any) -> None:
        """Overlap-save of all sources against old and new filters, then the crossfade."""
        xp, b, n = self.xp, self.block, self.n_fft
        # The newest block goes into the oldest slot of the ring. The ring is the true
        # window (oldest first) rotated, so the circular convolution's output is rotated
        # the same way: the valid samples are those under the newest block's slot.
        at = (self.position // b) % (n // b) * b
        self.history[:, at:at + b] = self._input()
        spec = self.fft.rfft(self.history, axis=1)
        self._gather(idx)
        sums = self.sums.view(np.float32).reshape(2, 1, 4 * self.bins)
        for first in range(0, self.count, self.group):
            last = min(first + self.group, self.count)
            self._filter_group(first, last)
            self._spectral_mac(spec, first, last, out=self.partial if first else sums)
            if first:
                sums += self.partial
        y = self.fft.irfft(self.sums.reshape(4, self.bins), n=n, axis=1)[:, at:at + b]
        old, new = y[2 * (self.new ^ 1): 2 * (self.new ^ 1) + 2], y[2 * self.new: 2 * self.new + 2]
        xp.subtract(new, old, out=out)
        out *= self.ramp
        out += old

    def _guard(self, out: Any) -> None:
        """Zero and count non-finite samples of ``out``: the last line before any output."""
        xp, bad = self.xp, self.bad_out
        xp.isfinite(out, out=bad)
        if self.host and bad.all():
            return
        xp.logical_not(bad, out=bad)
        self.events[SAMPLE_EVENTS] += xp.count_nonzero(bad)
        xp.copyto(out, 0, where=bad)

    def _gather(self, idx: Any) -> None:
        """Every source's four corner spectra ``idx`` (S, 4) into :attr:`gathered`.

        On the CPU only the sources whose grid cell changed since the last block are
        gathered again (a head turning at 180 deg/s takes a source across a 5-degree
        cell every ~5 blocks; a still one never), which saves most of the copy out of
        the grid bank (11 MB at 512-point FFTs, larger than the cache). On a GPU
        all are gathered every block, with no read back to the host.
        """
        xp, cell = self.xp, self.locate.cell
        if not self.host:
            xp.take(self.table, idx.reshape(-1), axis=0, out=self.gathered)
            return
        moved = np.flatnonzero(cell != self.cells)
        if len(moved) == self.count:
            xp.take(self.table, idx.reshape(-1), axis=0, out=self.gathered, **self._take_kw)
        elif len(moved):
            self.gathered.reshape(self.count, 4, -1)[moved] = self.table[idx[moved]]
        self.cells[moved] = cell[moved]

    def _filter_group(self, first: int, last: int) -> None:
        """Filters of sources ``first:last`` into the ``new`` half: bilinear HRTF blend x gain."""
        xp, m, width = self.xp, last - first, 4 * self.bins
        gathered = self.gathered[4 * first:4 * last]
        # real weights times complex rows: as float32 (re, im interleaved), half the flops
        new = self.filters[self.new, first:last].reshape(m, 1, 2 * self.bins).view(np.float32)
        xp.matmul(self.blend[first:last], gathered.view(np.float32).reshape(m, 4, width), out=new)
        if not self.primed:  # the first block has no earlier filters to fade from
            self.filters[self.new ^ 1, first:last] = self.filters[self.new, first:last]

    def _spectral_mac(self, spec: Any, first: int, last: int, out: Any) -> None:
        """Sum over sources ``first:last`` of their spectra x (old, new) filters, into ``out``.

        The sum over sources is a matrix product (BLAS) on the float32 view.
        """
        m = last - first
        products = self.products[:, :m]
        self.xp.multiply(self.filters[:, first:last], spec[None, first:last, None, :], out=products)
        self.xp.matmul(self.ones[:, :m], products.view(np.float32).reshape(2, m, 4 * self.bins),
                       out=out)

    def _input(self) -> Any:
        """The next block of every source's signal, (S, B) float32.

        Each signal is stored followed by ``B`` samples of its continuation (its
        start again when looping, zeros otherwise), so every source's block is one
        contiguous window and one row gather reads them all.
        """
        xp, rows = self.xp, self.rows
        xp.remainder(self.position, self.periods, out=rows)
        xp.minimum(rows, self.lengths, out=rows)
        rows += self.offsets
        return self.windows[rows]
