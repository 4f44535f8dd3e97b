"""The bank as a stage that runs off the frame loop's thread sees it.

Such a stage must never read a buffer while the loop writes it, nor let the loop's
readers see its outputs half-written. So it gets its own copies from ``setup`` on:

* each buffer it **reads** has an *input* copy, filled from the bank on the loop's
  thread when a run starts (:meth:`PrivateBank.take_inputs`): the run sees one
  consistent snapshot of the frame that started it;
* each buffer it **writes** has a *back* copy that it writes in place; the loop
  copies it into the bank's array, between the stages of a frame, when the run's
  result is published (:meth:`PrivateBank.publish`). With the bank's own array as
  the front, every output is double-buffered: readers see one complete version.

Stages keep the arrays ``setup`` handed them, as usual; those are the private
copies. Everything else (parameters, buffers the stage neither reads nor writes)
is the bank's own.

With ``host=True`` (a stage placed on the host, ``device = "host"``, on a device
backend) the copies are NumPy arrays: inputs come through
:func:`vrshare.backend.to_host` and outputs go back through
:func:`~vrshare.backend.to_device`, both counted, and parameters and other buffers
the stage looks at are host copies too (taken once: parameters do not change).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import backend
from ..weights import Buffer, Snapshot, WeightBank
from .stage import Frame
from .worker import Worker


class PrivateBank:
    """A :class:`~vrshare.weights.WeightBank` seen through one stage's own copies of
    the buffers in ``reads`` and ``writes`` (a buffer in both is the stage's own
    state: it gets the back copy, which keeps its values from run to run)."""

    def __init__(self, bank: WeightBank, reads: tuple[str, ...],
                 writes: tuple[str, ...], *, host: bool = False) -> None:
        self.bank = bank
        self.host = host
        self.writes = tuple(writes)
        self.reads = tuple(r for r in dict.fromkeys(reads) if r not in self.writes)
        self._inputs: dict[str, Any] = {}
        self._outputs: dict[str, Any] = {}
        self._others: dict[str, Any] = {}  # host placement: copies of what else it saw
        self.input_versions: dict[str, int] = {}  # version of each input at the last take

    # -- what the stage calls ----------------------------------------------------------

    def state(self, name: str, shape: tuple[int, ...] | int, dtype: Any = "float32") -> Any:
        """Declare the buffer in the bank; an output's back copy is what the stage gets."""
        front = self.bank.state(name, shape, dtype)
        return self._private(name, front) if name in self.writes else self._other(name, front)

    def param(self, name: str, data: Any, dtype: Any = None) -> Any:
        return self._other(name, self.bank.param(name, data, dtype))

    def __contains__(self, name: str) -> bool:
        return name in self.bank

    def __getitem__(self, name: str) -> Any:
        front = self.bank[name]
        if name in self.writes or name in self.reads:
            return self._private(name, front)
        return self._other(name, front)

    def names(self) -> list[str]:
        return self.bank.names()

    def buffer(self, name: str) -> Buffer:
        buf = self.bank.buffer(name)
        if name in self.writes or name in self.reads:
            return Buffer(name, buf.kind, self[name], self.version(name))
        return buf

    def version(self, name: str) -> int:
        """An input's version as of the run's snapshot; otherwise the bank's."""
        return self.input_versions.get(name, self.bank.version(name))

    def subscribe(self, name: str) -> None:
        self.bank.subscribe(name)

    def snapshot(self, name: str, out: Any = None) -> Snapshot:
        return self.bank.snapshot(name, out)

    # -- what the loop calls, on its thread --------------------------------------------

    def ready(self) -> None:
        """After the stage's ``setup``: make the input copies of every read the bank
        holds (so the worker never makes one), and publish the outputs' initial values
        (a stage may set them in ``setup``, say an identity pose)."""
        for name in self.reads:
            if name in self.bank:
                self._private(name, self.bank[name])
        self.take_inputs()
        self.publish()

    def take_inputs(self) -> None:
        """Copy every input from the bank: on the device, or down to the host for a
        stage placed there."""
        bank = self.bank
        for name, copy in self._inputs.items():
            if self.host:
                backend.to_host(bank[name], out=copy, label=name)
            else:
                backend.array_module(copy).copyto(copy, bank[name])
            self.input_versions[name] = bank.version(name)

    def publish(self) -> None:
        """Copy every output into the bank's array, up to the device for a stage placed
        on the host (the caller stamps versions)."""
        bank = self.bank
        for name, back in self._outputs.items():
            if self.host:
                backend.to_device(back, out=bank[name], label=name)
            else:
                backend.array_module(back).copyto(bank[name], back)

    def make_worker(self, name: str, work: Callable[[Frame], None]) -> Worker:
        """The thread the stage's runs go to (``work(frame)`` runs one)."""
        return Worker(name, work)

    def _private(self, name: str, front: Any) -> Any:
        table = self._outputs if name in self.writes else self._inputs
        copy = table.get(name)
        if copy is None:
            copy = table[name] = backend.to_host(front, label=name) if self.host else front.copy()
            if table is self._inputs:
                self.input_versions[name] = self.bank.version(name)
        return copy

    def _other(self, name: str, front: Any) -> Any:
        """A buffer the stage neither reads nor writes: the bank's, or on the host a
        copy taken the first time (parameters, which do not change)."""
        if not self.host:
            return front
        copy = self._others.get(name)
        if copy is None:
            copy = self._others[name] = backend.to_host(front, label=name)
        return copy
