"""Array backend: CuPy when a CUDA device answers, else NumPy.

The choice is made once, on first use, in this order: the ``VRSHARE_BACKEND``
environment variable (``numpy``, ``cupy`` or ``strict``), then automatic (CuPy if it
imports and sees a device). ``strict`` (:mod:`vrshare.strict`) is NumPy with CuPy's
rules at the host boundary, a checking tool for machines without a GPU. Forcing
``cupy`` without a usable device raises :class:`BackendError`; an automatic fall
back to NumPy is logged and its reason is kept in :attr:`Backend.reason`, which
``vrshare info`` prints.

All array code in vrshare is written once against ``array_module(x)`` so that the
NumPy path tested on CPU machines is the code that runs on CuPy.

Every copy across the host/device boundary goes through :func:`to_device` or
:func:`to_host`, which count calls and bytes in :data:`transfers`. On the NumPy
backend nothing physically moves, but the same calls are counted, so a pipeline's
transfer budget can be checked on any machine.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .errors import VrshareError

log = logging.getLogger(__name__)

ENV_VAR = "VRSHARE_BACKEND"
NAMES = ("numpy", "cupy", "strict")  # "strict": a checking tool (vrshare.strict), never automatic


class BackendError(VrshareError, RuntimeError):
    """The requested array backend cannot be used."""


@dataclass(frozen=True)
class Backend:
    """The active array backend."""

    name: str  # "numpy" or "cupy"
    xp: ModuleType  # the array module
    device: str  # human-readable device name
    reason: str  # why this backend was chosen

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"


@dataclass
class TransferCounter:
    """Host<->device copies made through :func:`to_device` / :func:`to_host`."""

    to_device: int = 0
    to_host: int = 0
    bytes_to_device: int = 0
    bytes_to_host: int = 0
    by_label: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.to_device + self.to_host

    def reset(self) -> None:
        self.to_device = self.to_host = self.bytes_to_device = self.bytes_to_host = 0
        self.by_label.clear()

    def _count(self, direction: str, nbytes: int, label: str) -> None:
        if direction == "to_device":
            self.to_device += 1
            self.bytes_to_device += nbytes
        else:
            self.to_host += 1
            self.bytes_to_host += nbytes
        key = f"{direction}:{label}"
        self.by_label[key] = self.by_label.get(key, 0) + 1


transfers = TransferCounter()
_active: Backend | None = None


def _cupy_backend() -> Backend:
    """Import CuPy and check that a device answers; raise BackendError otherwise."""
    try:
        import cupy
    except ImportError as exc:
        raise BackendError(
            "CuPy is not installed; install the GPU extra: pip install 'vrshare[gpu]'"
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError has no common base besides Exception
        raise BackendError(f"CuPy found no usable CUDA device: {exc}") from exc
    if count < 1:
        raise BackendError("CuPy found no CUDA device")
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return Backend("cupy", cupy, name, "")


def select(name: str | None = None) -> Backend:
    """Choose the backend (explicit name, then ``$VRSHARE_BACKEND``, then automatic)."""
    global _active
    requested = name or os.environ.get(ENV_VAR, "").strip().lower() or None
    if requested is not None and requested not in NAMES:
        raise BackendError(f"{ENV_VAR}={requested!r}: expected one of {', '.join(NAMES)}")
    if requested == "strict":
        from . import strict

        _active = Backend("strict", strict.xp, "cpu (NumPy with CuPy's host boundary)",
                          "forced: a checking tool (vrshare.strict)")
    elif requested == "numpy":
        _active = Backend("numpy", np, "cpu", f"forced by {ENV_VAR}" if not name else "forced")
    elif requested == "cupy":
        b = _cupy_backend()
        _active = Backend(b.name, b.xp, b.device, "forced")
    else:
        try:
            b = _cupy_backend()
            _active = Backend(b.name, b.xp, b.device, "CUDA device found")
        except BackendError as exc:
            _active = Backend("numpy", np, "cpu", f"fallback to NumPy: {exc}")
            log.info("array backend: %s", _active.reason)
    return _active


def active() -> Backend:
    """The backend in use, selected on first call."""
    return _active if _active is not None else select()


def _strict() -> ModuleType | None:
    """:mod:`vrshare.strict` while it is the active backend (imported only then)."""
    if _active is None or _active.name != "strict":
        return None
    from . import strict

    return strict


def array_module(*arrays: Any) -> ModuleType:
    """The array module (``numpy`` or ``cupy``) of the given arrays.

    Plain Python scalars and NumPy arrays give NumPy; any CuPy array gives CuPy (and
    an array of the strict checking backend its namespace, :data:`vrshare.strict.xp`).
    """
    from array_api_compat import is_cupy_array

    strict = _strict()
    if strict is not None and any(isinstance(a, strict.StrictArray) for a in arrays):
        return strict.xp
    for a in arrays:
        if is_cupy_array(a):
            import cupy

            return cupy
    return np


def to_device(host: np.ndarray, out: Any = None, *, label: str = "") -> Any:
    """Copy a host array to the active device (into ``out`` when given), counted."""
    host = np.asarray(host)
    if isinstance(out, np.ndarray) and active().name != "numpy":
        np.copyto(out, host)  # a host destination (a stage placed on the host): no transfer
        return out
    transfers._count("to_device", host.nbytes, label)
    b = active()
    strict = _strict()
    if strict is not None:
        if out is None:
            return strict.wrap(host.copy())
        np.copyto(strict.unwrap(out), host)
        return out
    xp = b.xp
    if out is None:
        return xp.array(host, copy=True)
    if xp is np:
        np.copyto(out, host)
    else:
        out.set(np.ascontiguousarray(host, dtype=out.dtype).reshape(out.shape))
    return out


def asarray_like(host: np.ndarray, like: Any, *, label: str = "") -> Any:
    """A copy of ``host`` where ``like`` lives: a NumPy copy beside a NumPy array (a
    stage placed on the host), else on the device through :func:`to_device`."""
    if isinstance(like, np.ndarray):
        return np.array(host, copy=True)
    return to_device(host, label=label)


def to_host(array: Any, out: np.ndarray | None = None, *, label: str = "") -> np.ndarray:
    """Copy a device array to host memory (into ``out`` when given), counted."""
    transfers._count("to_host", int(array.nbytes), label)
    strict = _strict()
    if strict is not None and isinstance(array, strict.StrictArray):
        array = strict.unwrap(array)
    if isinstance(array, np.ndarray):
        if out is None:
            return array.copy()
        np.copyto(out, array)
        return out
    if out is None:
        return array.get()
    array.get(out=out)
    return out
