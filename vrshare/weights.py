"""The shared buffer bank: the one owner of every array stages share.

Two kinds of buffer live here:

* **state** buffers are rewritten every frame (poses, eye matrices, the instance
  buffer, the audio block). They are declared once with a name, shape and dtype.
* **param** buffers are loaded once and shared (HRTF spectra, learned predictor
  weights, culling parameters). They are registered with their data, and identical
  data registered twice, under any name, is held once.

Arrays are allocated on the active device (see :mod:`vrshare.backend`) at
declaration and never again; every call for a name returns the same array object,
and writers write into it in place.

Each buffer has a *version*, the index of the frame that last wrote it. The frame
loop stamps versions after a stage returns (the stage does not), and publishes a
host snapshot of every buffer some other thread subscribed to. Readers on other
threads (the audio callback) call :meth:`WeightBank.snapshot`, which never blocks
the frame loop and never returns a half-written buffer: snapshots are kept in a
small ring of host slots, each guarded by a sequence counter (a seqlock). A reader
that raced a write copies again, a bounded number of times; a reader too slow for
that then holds the newest slot's lock while it copies, and the writer, which only
ever *tries* slot locks, writes another slot meanwhile (see :class:`SnapshotRing`).
A publish that fails part-way leaves the previous version the newest.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from . import backend
from .errors import VrshareError

Kind = Literal["state", "param"]


class BankError(VrshareError, ValueError):
    """A buffer was declared inconsistently or asked for before it was declared."""


@dataclass(frozen=True)
class Snapshot:
    """A whole, consistent host copy of a buffer and the frame that wrote it."""

    data: np.ndarray
    version: int  # frame index of the write; -1 if never written


@dataclass(frozen=True)
class Age:
    """How old a buffer's contents are: frames and seconds since the frame that wrote them."""

    frames: int
    seconds: float


@dataclass(frozen=True)
class BankReport:
    """Memory and transfer accounting of a bank."""

    buffers: int
    bytes_held: int  # bytes of distinct arrays the bank allocated
    bytes_saved: int  # bytes not allocated because parameter data was shared
    shared_params: dict[str, str]  # alias name -> name of the buffer it shares
    transfers_to_device: int
    transfers_to_host: int
    bytes_to_device: int
    bytes_to_host: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SnapshotRing:
    """Seqlock-guarded ring of host copies: one writer thread, any number of readers.

    The bank keeps one per subscribed buffer; a part that hands arrays from one
    thread to another (the audio callback to the frame loop) can use one directly.

    **Writer** (:meth:`publish`): copies into a slot that is neither the newest one
    nor one a reader holds, then makes it the newest. It never waits for a reader:
    it only *tries* slot locks (one of the two non-newest slots is always free,
    because readers hold at most one slot at a time). A publish that raises part-way
    marks its slot incomplete, leaves the previous version the newest, and lets
    the error propagate; the next publish works as usual.

    **Reader** (:meth:`read`): gets a whole copy of one complete publish and the
    version that publish carried; never a torn or a failed one, and never an
    older publish than one it already got. It first makes up to
    :attr:`FAST_TRIES` lock-free copies of the newest slot, each checked against
    the slot's sequence counter; a try fails only if the writer came round to that
    very slot during the copy, which takes two completed publishes (one while
    another reader holds a slot), so a reader copying faster than that needs one
    try. A slower reader then takes the slow path: slow readers go one at a time;
    each locks the newest slot and copies it while the writer writes the others.
    It waits there only for a publish the writer may have started into that slot
    meanwhile (one host copy of this buffer), at most :attr:`WAIT_S` seconds per
    look; after such a wait, or if that publish failed, it looks at the newest
    slot again, which a writer stuck mid-copy cannot be holding. So a read costs
    at most ``FAST_TRIES + 1`` copies plus those waits, and never spins: every
    retry copies or sleeps on a lock.
    """

    SLOTS = 3
    FAST_TRIES = 3  # lock-free attempts before the slow path
    WAIT_S = 0.001  # longest single wait (seconds) for a slot the writer is copying into

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.slots = [np.zeros(shape, dtype) for _ in range(self.SLOTS)]
        self.seq = [0] * self.SLOTS  # odd while the slot is being written
        self.versions = [-1] * self.SLOTS
        self.complete = [True] * self.SLOTS  # False after a publish into it failed
        self.latest = 0  # only ever names a complete slot
        self._locks = [threading.Lock() for _ in range(self.SLOTS)]  # held while copying
        self._slow = threading.Lock()  # readers only: one slow reader at a time

    def publish(self, array: Any, version: int, label: str) -> None:
        """Copy ``array`` into a free slot and make it the newest (writer thread only).

        On an exception the slot is left incomplete and even, the newest version is
        unchanged, and the exception propagates.
        """
        i = self._claim()
        try:
            self.seq[i] += 1  # odd: being written
            self.complete[i] = False
            try:
                backend.to_host(array, out=self.slots[i], label=label)
                self.versions[i] = version
                self.complete[i] = True
            finally:
                self.seq[i] += 1  # even again, also when the copy raised
        finally:
            self._locks[i].release()
        self.latest = i  # reached only when the copy succeeded

    def _claim(self) -> int:
        """Lock a slot to write: the next one after the newest that no reader holds."""
        latest = self.latest
        for step in range(1, self.SLOTS):
            i = (latest + step) % self.SLOTS
            if self._locks[i].acquire(blocking=False):
                return i
        raise RuntimeError(
            "SnapshotRing: no free slot to publish into; a ring has one writer thread"
        )

    def read(self, out: np.ndarray | None) -> Snapshot:
        """The newest complete copy (into ``out`` when given); see the class docstring."""
        for _ in range(self.FAST_TRIES):
            i = self.latest
            seq = self.seq[i]
            if seq & 1 or not self.complete[i]:
                continue  # the writer came round to this slot: look at the newest again
            if out is None:
                data = self.slots[i].copy()
            else:
                np.copyto(out, self.slots[i])
                data = out
            version = self.versions[i]
            if self.seq[i] == seq:
                return Snapshot(data, version)
        return self._read_held(out)

    def _read_held(self, out: np.ndarray | None) -> Snapshot:
        """Slow path: copy the newest slot while holding its lock (the writer skips it)."""
        with self._slow:
            while True:
                i = self.latest
                lock = self._locks[i]
                if not lock.acquire(timeout=self.WAIT_S):
                    continue  # the writer holds it, so the newest is another slot now
                try:
                    if self.complete[i]:  # False only if a publish into it failed meanwhile
                        if out is None:
                            data = self.slots[i].copy()
                        else:
                            np.copyto(out, self.slots[i])
                            data = out
                        return Snapshot(data, self.versions[i])
                finally:
                    lock.release()


@dataclass
class Buffer:
    """One bank entry. ``array`` lives on the active device."""

    name: str
    kind: Kind
    array: Any
    version: int = -1
    t_version: float = float("nan")  # clock time (s) of the frame that wrote ``version``
    digest: str = ""  # content hash, params only
    ring: SnapshotRing | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.array.dtype)


def _digest(data: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{data.dtype.str}{data.shape}".encode())
    h.update(np.ascontiguousarray(data).tobytes())
    return h.hexdigest()


class WeightBank:
    """Owner of the buffers stages share. Not thread-safe except :meth:`snapshot`."""

    def __init__(self) -> None:
        self._buffers: dict[str, Buffer] = {}
        self._by_digest: dict[str, Buffer] = {}
        self._aliases: dict[str, str] = {}
        self._bytes_saved = 0
        self._lock = threading.Lock()  # guards subscribe(), never taken per frame
        self.subscribed = 0  # buffers with snapshots: the loop publishes only when some are

    # -- declaration -------------------------------------------------------------

    def state(self, name: str, shape: tuple[int, ...] | int, dtype: Any = "float32") -> Any:
        """Declare (or fetch) a state buffer, zero-filled on first declaration.

        Declaring the same name again with the same shape and dtype returns the same
        array; a different shape or dtype raises :class:`BankError`.
        """
        shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
        dtype = np.dtype(dtype)
        buf = self._buffers.get(name)
        if buf is not None:
            if buf.kind != "state" or buf.shape != shape or buf.dtype != dtype:
                raise BankError(
                    f"buffer {name!r} is already declared as {buf.kind} {buf.shape} "
                    f"{buf.dtype}; cannot redeclare it as state {shape} {dtype}"
                )
            return buf.array
        buf = Buffer(name, "state", backend.active().xp.zeros(shape, dtype))
        self._buffers[name] = buf
        return buf.array

    def param(self, name: str, data: Any, dtype: Any = None) -> Any:
        """Register parameter data under ``name`` and return its device array.

        Data identical (same bytes, shape and dtype) to a parameter already held is
        not copied again: ``name`` becomes an alias of that buffer. Registering a
        name again with the same content returns the same array; with other content
        it raises :class:`BankError`.
        """
        if backend.array_module(data) is np:
            host = np.asarray(data, dtype=dtype)
        else:
            host = backend.to_host(data, label=name).astype(dtype or data.dtype, copy=False)
        digest = _digest(host)
        existing = self._buffers.get(name)
        if existing is not None:
            if existing.kind != "param" or existing.digest != digest:
                raise BankError(
                    f"buffer {name!r} is already declared as {existing.kind} {existing.shape} "
                    f"{existing.dtype} with other content; cannot register it again as a "
                    f"parameter {host.shape} {host.dtype}"
                )
            return existing.array
        shared = self._by_digest.get(digest)
        if shared is not None:
            self._buffers[name] = shared
            self._aliases[name] = shared.name
            self._bytes_saved += host.nbytes
            return shared.array
        buf = Buffer(name, "param", backend.to_device(host, label=name), digest=digest)
        self._buffers[name] = buf
        self._by_digest[digest] = buf
        return buf.array

    # -- access ------------------------------------------------------------------

    def __contains__(self, name: str) -> bool:
        return name in self._buffers

    def __getitem__(self, name: str) -> Any:
        return self.buffer(name).array

    def names(self) -> list[str]:
        return list(self._buffers)

    def buffer(self, name: str) -> Buffer:
        try:
            return self._buffers[name]
        except KeyError:
            known = ", ".join(sorted(self._buffers)) or "none"
            raise BankError(f"no buffer named {name!r} in the bank (declared: {known})") from None

    def version(self, name: str) -> int:
        """Index of the frame that last wrote ``name`` (-1: never written). For a stage
        off the frame's critical path (``mode = "async"``), the frame that started the
        run whose outputs are visible now."""
        return self.buffer(name).version

    def age(self, name: str, frame: Any) -> Age:
        """How old ``name``'s contents are at ``frame`` (a :class:`~vrshare.pipeline.Frame`):
        frames and seconds since the frame its version names (NaN/-1 if never written)."""
        buf = self.buffer(name)
        if buf.version < 0:
            return Age(-1, float("nan"))
        return Age(frame.index - buf.version, frame.t_now - buf.t_version)

    # -- the frame loop's bookkeeping -----------------------------------------------

    def stamp(self, names: tuple[str, ...], frame_index: int,
              t: float = float("nan")) -> None:
        """Mark ``names`` as written by frame ``frame_index`` (which started at clock
        time ``t``, seconds) and publish subscribed ones.

        Called by the frame loop after a stage's ``process`` returns, on the loop's
        thread; stages never call it. If a publish raises (say, a device error while
        copying to the host), the other names are still stamped and published, that
        buffer's readers keep getting its previous snapshot, and the first error is
        raised once all are done.
        """
        buffers = self._buffers
        error: Exception | None = None
        for name in names:
            buf = buffers[name]
            buf.version = frame_index
            buf.t_version = t
            if buf.ring is not None:
                try:
                    buf.ring.publish(buf.array, frame_index, name)
                except Exception as exc:
                    if error is None:
                        error = exc
                    else:
                        error.add_note(f"publishing {name!r} also failed: {exc!r}")
        if error is not None:
            raise error

    def subscribe(self, name: str) -> None:
        """Ask the loop to publish host snapshots of ``name`` for other threads.

        The current contents are published at once (with the current version) so a
        reader never finds an empty ring.
        """
        buf = self.buffer(name)
        with self._lock:
            if buf.ring is None:
                ring = SnapshotRing(buf.shape, buf.dtype)
                ring.publish(buf.array, buf.version, name)
                buf.ring = ring
                self.subscribed += 1

    def snapshot(self, name: str, out: np.ndarray | None = None) -> Snapshot:
        """The last complete published version of ``name``; safe from any thread.

        Returns a whole copy of one complete publish with the frame index it was
        stamped with (a publish that failed is never seen: its previous version
        stays the newest). Never blocks the writer; copies into ``out`` when given
        (no allocation). A reader normally makes one copy; one slower than the
        writer waits at most for the publish in progress (one host copy of this
        buffer, each wait capped at :attr:`SnapshotRing.WAIT_S` seconds), see
        :class:`SnapshotRing`. Requires an earlier :meth:`subscribe`.
        """
        ring = self.buffer(name).ring
        if ring is None:
            raise BankError(
                f"buffer {name!r} has no snapshots: call bank.subscribe({name!r}) first"
            )
        return ring.read(out)

    def report(self) -> BankReport:
        distinct = {id(b): b for b in self._buffers.values()}.values()
        t = backend.transfers
        return BankReport(
            buffers=len(self._buffers),
            bytes_held=sum(int(b.array.nbytes) for b in distinct),
            bytes_saved=self._bytes_saved,
            shared_params=dict(self._aliases),
            transfers_to_device=t.to_device,
            transfers_to_host=t.to_host,
            bytes_to_device=t.bytes_to_device,
            bytes_to_host=t.bytes_to_host,
        )
