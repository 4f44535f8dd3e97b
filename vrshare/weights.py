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
small ring of host slots, each guarded by a sequence counter (a seqlock), and a
reader that raced a write simply copies again.
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
    """

    SLOTS = 3

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.slots = [np.zeros(shape, dtype) for _ in range(self.SLOTS)]
        self.seq = [0] * self.SLOTS  # odd while the slot is being written
        self.versions = [-1] * self.SLOTS
        self.latest = 0

    def publish(self, array: Any, version: int, label: str) -> None:
        i = (self.latest + 1) % self.SLOTS
        self.seq[i] += 1
        backend.to_host(array, out=self.slots[i], label=label)
        self.versions[i] = version
        self.seq[i] += 1
        self.latest = i

    def read(self, out: np.ndarray | None) -> Snapshot:
        while True:
            i = self.latest
            seq = self.seq[i]
            if seq & 1:
                continue
            if out is None:
                data = self.slots[i].copy()
            else:
                np.copyto(out, self.slots[i])
                data = out
            version = self.versions[i]
            if self.seq[i] == seq:
                return Snapshot(data, version)


@dataclass
class Buffer:
    """One bank entry. ``array`` lives on the active device."""

    name: str
    kind: Kind
    array: Any
    version: int = -1
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
        """Index of the frame that last wrote ``name`` (-1: never written)."""
        return self.buffer(name).version

    # -- the frame loop's bookkeeping -----------------------------------------------

    def stamp(self, names: tuple[str, ...], frame_index: int) -> None:
        """Mark ``names`` as written by frame ``frame_index`` and publish subscribed ones.

        Called by the frame loop after a stage's ``process`` returns, on the loop's
        thread; stages never call it.
        """
        buffers = self._buffers
        for name in names:
            buf = buffers[name]
            buf.version = frame_index
            if buf.ring is not None:
                buf.ring.publish(buf.array, frame_index, name)

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

    def snapshot(self, name: str, out: np.ndarray | None = None) -> Snapshot:
        """The last complete published version of ``name``; safe from any thread.

        Never blocks the writer; copies into ``out`` when given (no allocation).
        Requires an earlier :meth:`subscribe`.
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
