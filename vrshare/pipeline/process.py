"""``mode = "process"``: an async stage in a worker process of its own.

A worker *thread* shares the GIL with the frame loop: pure-Python work there slows
every frame (see docs/scheduling.md). A worker process does not. The rule is the
async one: the run reads a snapshot of its inputs taken when it starts, and its
outputs are published whole, between two stages of a frame. Here the stage's
input and output copies live in :mod:`multiprocessing.shared_memory` blocks both
processes map:

* the loop creates an input block per buffer the stage reads and copies the bank's
  array into it when a run starts (device to host on CuPy, counted);
* the stage, set up in the child, declares its outputs there as usual; each lands
  in a block the child creates and the loop maps, and publishing copies it into
  the bank's array.

The child runs on NumPy, loads its own parameters (they are not shared with the
loop's bank), ignores Ctrl-C (the loop ends the run and then closes it) and ends
when the loop closes it or goes away. The stage object is sent to it pickled (its
class must be importable by module path); the process is started with ``spawn``,
so nothing of the loop's GL contexts or threads is inherited.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import traceback
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
from time import perf_counter
from typing import Any

import numpy as np

from .. import backend
from ..errors import VrshareError
from ..weights import Buffer, WeightBank
from .stage import Frame, Stage, StageConfig
from .watchdog import IDLE

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0  # the child's import and setup (s)
CLOSE_TIMEOUT_S = 5.0  # the stage's close in the child (s)
STOP_WAIT_S = 1.0  # at close, how long (s) a run still in flight may take to finish
EXIT_WAIT_S = 1.0  # how long (s) a process that closed its pipe may take to exit


class StageProcessError(VrshareError, RuntimeError):
    """A process-mode stage failed in its worker process; the message is its error,
    the child's traceback is attached as a note."""


def _error(exc: BaseException) -> tuple[str, str]:
    return (f"{type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(exc)))


def _ended(child: Any) -> str:
    """What to say of a worker process whose end of the pipe has closed, with its exit
    code: it may not have been reaped yet, so wait a moment for it (None if it still
    runs)."""
    child.join(EXIT_WAIT_S)
    return f"the worker process ended (exit code {child.exitcode})"


def _raise(error: tuple[str, str], doing: str) -> StageProcessError:
    exc = StageProcessError(f"{doing}: {error[0]}")
    exc.add_note(f"in the stage's worker process:\n{error[1]}")
    return exc


def _attach(name: str, shape: tuple[int, ...], dtype: str) -> tuple[SharedMemory, np.ndarray]:
    shm = SharedMemory(name)
    return shm, np.ndarray(shape, np.dtype(dtype), buffer=shm.buf)


# -- the child -------------------------------------------------------------------------


class _ChildBank(WeightBank):
    """The child's bank: inputs are the loop's shared blocks, outputs new ones."""

    def __init__(self, writes: tuple[str, ...]) -> None:
        super().__init__()
        self.writes = writes
        self.inputs: list[SharedMemory] = []  # kept open while their arrays are in use
        self.blocks: dict[str, SharedMemory] = {}  # the outputs, by buffer name

    def attach(self, name: str, block: str, shape: tuple[int, ...], dtype: str) -> None:
        """Map the loop's input block ``block`` as buffer ``name``."""
        shm, array = _attach(block, shape, dtype)
        self.inputs.append(shm)
        self._buffers[name] = Buffer(name, "state", array)

    def state(self, name: str, shape: tuple[int, ...] | int, dtype: Any = "float32") -> Any:
        if name not in self.writes or name in self._buffers:
            return super().state(name, shape, dtype)
        shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
        dtype = np.dtype(dtype)
        shm = SharedMemory(create=True, size=max(1, int(np.prod(shape)) * dtype.itemsize))
        resource_tracker.unregister(shm._name, "shared_memory")  # the loop unlinks it
        self.blocks[name] = shm
        array = np.ndarray(shape, dtype, buffer=shm.buf)
        array[...] = 0
        self._buffers[name] = Buffer(name, "state", array)
        return array


def _serve(conn: Any, stage: Stage, config: StageConfig,
           inputs: list[tuple[str, str, tuple[int, ...], str]]) -> None:
    """The child's main: set the stage up, then answer the loop's messages until it
    closes the stage, or goes away (the pipe ends: nobody is left to answer)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    backend.select("numpy")
    bank = _ChildBank(tuple(stage.writes))
    try:
        try:
            for name, block, shape, dtype in inputs:
                bank.attach(name, block, shape, dtype)
            stage.setup(bank, config)
        except BaseException as exc:
            conn.send(("error", _error(exc)))
            return
        conn.send(("ready", [(n, shm.name, bank[n].shape, bank[n].dtype.str)
                             for n, shm in bank.blocks.items()]))
        while _answer(conn, stage, bank, *conn.recv()):
            pass
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return


def _answer(conn: Any, stage: Stage, bank: WeightBank, message: str, frame: Any) -> bool:
    """Answer one of the loop's messages; False once the stage is closed. A stage's
    error is sent back (the loop raises it), never left to end the process."""
    if message == "run":
        t0 = perf_counter()
        try:
            stage.process(frame, bank)
            error = None
        except Exception as exc:
            error = _error(exc)
        conn.send(("done", perf_counter() - t0, error))
    elif message == "counters":
        try:
            reply = ("counters", dict(stage.counters()))
        except Exception as exc:
            reply = ("error", _error(exc))
        conn.send(reply)
    elif message == "close":
        try:
            stage.close()
            error = None
        except Exception as exc:
            error = _error(exc)
        conn.send(("closed", error))
        return False
    return True


# -- the loop's side ----------------------------------------------------------------------


class ProcessStage(Stage):
    """Stands in the pipeline for a stage that runs in a worker process: set up
    there, counted and closed through the pipe. ``worker`` runs it; it is its own
    view (:meth:`take_inputs` and :meth:`publish` copy between the bank and the
    shared blocks), as a :class:`~vrshare.pipeline.private.PrivateBank` is for a
    stage on a thread."""

    def __init__(self, stage: Stage, bank: WeightBank, config: StageConfig) -> None:
        super().__init__(stage.settings, name=stage.name)
        self.reads, self.writes = tuple(stage.reads), tuple(stage.writes)
        self.optional_reads = tuple(stage.optional_reads)
        for key in ("rate_hz", "latency_frames", "on_overrun"):
            setattr(self, key, getattr(stage, key))
        self.bank = bank
        self.inputs: dict[str, tuple[SharedMemory, np.ndarray]] = {}
        self.outputs: dict[str, tuple[SharedMemory, np.ndarray]] = {}
        self.closed = False
        for name in dict.fromkeys((*self.reads, *self.optional_reads)):
            if name in bank and name not in self.writes:
                front = bank[name]
                shm = SharedMemory(create=True, size=max(1, int(front.nbytes)))
                self.inputs[name] = (shm, np.ndarray(front.shape, front.dtype, buffer=shm.buf))
        self.take_inputs()
        ctx = mp.get_context("spawn")
        self.conn, child_end = ctx.Pipe()
        spec = [(n, shm.name, a.shape, a.dtype.str) for n, (shm, a) in self.inputs.items()]
        try:
            self.child = ctx.Process(target=_serve, args=(child_end, stage, config, spec),
                                        name=f"vrshare-{stage.name}", daemon=True)
            self.child.start()
        except Exception as exc:  # most often: the stage or its settings do not pickle
            self._unlink()
            raise StageProcessError(f"cannot start the worker process: {type(exc).__name__}: "
                                    f"{exc} (a process-mode stage is sent pickled: its "
                                    "class must be importable by module path)") from exc
        child_end.close()
        try:
            reply = self._reply(READY_TIMEOUT_S, "setting up")
            if reply[0] == "error":
                raise _raise(reply[1], "setup in the worker process")
            for name, block, shape, dtype in reply[1]:
                self.outputs[name] = _attach(block, tuple(shape), dtype)
                bank.state(name, tuple(shape), dtype)
            self.publish()
        except BaseException:
            self.close()  # the process and the shared blocks go with the failed setup
            raise
        self.worker = ProcessWorker(self)

    def _reply(self, timeout: float, doing: str) -> tuple:
        if not self.conn.poll(timeout):
            raise StageProcessError(f"the worker process did not answer within {timeout:g} s "
                                    f"({doing})")
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            raise StageProcessError(f"{_ended(self.child)} while {doing}") from None

    # -- the view: what PacedStage calls --------------------------------------------------

    def take_inputs(self) -> None:
        for name, (_, copy) in self.inputs.items():
            backend.to_host(self.bank[name], out=copy, label=name)

    def publish(self) -> None:
        for name, (_, back) in self.outputs.items():
            backend.to_device(back, out=self.bank[name], label=name)

    def make_worker(self, name: str, work: Any) -> ProcessWorker:
        return self.worker

    # -- the stage contract ----------------------------------------------------------------

    def process(self, frame: Frame, bank: WeightBank) -> None:
        raise StageProcessError("a process-mode stage runs through its worker")

    def counters(self) -> dict[str, int]:
        if self.closed or self.worker.busy or not self.child.is_alive():
            return {}
        self.conn.send(("counters", None))
        reply = self._reply(CLOSE_TIMEOUT_S, "counting")
        if reply[0] == "error":
            raise _raise(reply[1], "counters")
        return reply[1]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        error = None
        try:
            worker = getattr(self, "worker", None)
            if worker is not None and not worker.wait(STOP_WAIT_S):
                log.warning("stage %r: its worker process is still in a run; ending it "
                            "without closing the stage there", self.name)
                self.child.kill()
            elif self.child.is_alive():
                self.conn.send(("close", None))  # the run's reply, if any, is read
                error = self._reply(CLOSE_TIMEOUT_S, "closing")[1]
        except (StageProcessError, OSError) as exc:
            log.warning("stage %r: %s", self.name, exc)
        finally:
            self.child.join(CLOSE_TIMEOUT_S)
            if self.child.is_alive():
                self.child.kill()
            self.conn.close()
            self._unlink()
        if error is not None:
            raise _raise(error, "close")

    def _unlink(self) -> None:
        for shm, _ in (*self.inputs.values(), *self.outputs.values()):
            shm.close()
            try:
                shm.unlink()
            except FileNotFoundError:
                pass
        self.inputs.clear()
        self.outputs.clear()


class ProcessWorker:
    """The :class:`~vrshare.pipeline.worker.Worker` interface over the pipe."""

    ident = None  # no thread of this process: the watchdog reports no stack

    def __init__(self, stage: ProcessStage) -> None:
        self.stage = stage
        self.name = stage.name
        self.frame: Frame | None = None
        self.t0 = IDLE
        self.began = IDLE
        self.seconds = 0.0
        self.error: BaseException | None = None
        self.hang = None
        self._busy = False

    @property
    def busy(self) -> bool:
        if self._busy and self.stage.conn.poll():
            self._receive()
        return self._busy

    def start(self, frame: Frame) -> None:
        self.frame, self.error, self.hang = frame, None, None
        self.t0 = self.began = perf_counter()
        self._busy = True
        self.stage.conn.send(("run", frame))

    def wait(self, timeout: float | None = None) -> bool:
        if self._busy and self.stage.conn.poll(timeout):
            self._receive()
        return not self._busy

    def stop(self, timeout: float) -> bool:
        return self.wait(timeout)

    def _receive(self) -> None:
        try:
            _, seconds, error = self.stage.conn.recv()
        except (EOFError, OSError):
            seconds, error = perf_counter() - self.t0, (
                f"StageProcessError: {_ended(self.stage.child)}", "")
        self.seconds = seconds
        self.error = _raise(error, "process") if error is not None else None
        self.t0 = IDLE
        self._busy = False
