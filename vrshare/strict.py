"""A checking backend: NumPy underneath, CuPy's rules at the host boundary.

On CuPy, code that quietly works on NumPy fails or stalls: ``np.asarray(x)`` of a
device array raises, ``float(x)`` / ``bool(x)`` / ``x.item()`` copy to the host and
wait for the device, a NumPy array mixed into a CuPy operation raises, and a
data-dependent shape (``x[mask]``, ``nonzero``, ``unique``) copies a count to the
host. None of that can be seen on a machine without a GPU, so this backend makes it
visible there: its arrays (:class:`StrictArray`) are not ``np.ndarray``; they work
through NumPy's own protocols (``__array_ufunc__``, ``__array_function__``: NEP 13
and 18) and the ``xp`` namespace of :func:`vrshare.backend.array_module`, so stage
code written against the array module runs unchanged; and every crossing is
checked:

* **forbidden** (raise :class:`HostCrossing` in ``"raise"`` mode, recorded with
  its file:line in ``"count"`` mode): implicit conversion to NumPy
  (``np.asarray``), Python scalars from arrays (``float``, ``int``, ``bool``,
  ``item``, ``tolist``, ``if x.any():``), a NumPy array operand in an operation;
* **counted** (always allowed, recorded as *syncs*): data-dependent shapes, host
  data written into a device array (``x[...] = host``), ``repr``/``str`` of a
  device array, host index arrays.

:func:`vrshare.backend.to_host` / :func:`~vrshare.backend.to_device` are the only
ways across that count as declared transfers. Select it with
``VRSHARE_BACKEND=strict`` (``VRSHARE_STRICT=count`` for counting mode); it is a
checking tool and never chosen automatically.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from .errors import VrshareError

MODE_VAR = "VRSHARE_STRICT"
MODES = ("raise", "count")
# functions whose result's shape depends on the data (a count read back from the device)
DATA_DEPENDENT = frozenset({"nonzero", "flatnonzero", "argwhere", "unique", "compress",
                            "extract", "unique_values", "unique_counts", "unique_inverse",
                            "unique_all", "trim_zeros"})
_HERE = str(Path(__file__).resolve())
_NUMPY = str(Path(np.__file__).resolve().parent)


class HostCrossing(VrshareError, TypeError):
    """An implicit device -> host crossing (or a NumPy operand) that CuPy would refuse
    or that would silently synchronise; the message names the kind and the site."""


@dataclass(frozen=True)
class Crossing:
    kind: str  # what crossed, e.g. "float() of an array"
    site: str  # "path/to/file.py:123 in function"
    forbidden: bool


@dataclass
class Record:
    """What the strict backend saw since the last :meth:`clear`."""

    mode: str = field(default_factory=lambda: os.environ.get(MODE_VAR, "raise") or "raise")
    crossings: list[Crossing] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise VrshareError(f"{MODE_VAR}={self.mode!r}: expected one of {', '.join(MODES)}")

    def clear(self) -> None:
        self.crossings.clear()

    @property
    def forbidden(self) -> list[Crossing]:
        return [c for c in self.crossings if c.forbidden]

    @property
    def syncs(self) -> list[Crossing]:
        return [c for c in self.crossings if not c.forbidden]

    def describe(self) -> str:
        """One line per distinct kind and site, with how often it happened."""
        counts: dict[tuple[str, str], int] = {}
        for c in self.crossings:
            counts[(c.kind, c.site)] = counts.get((c.kind, c.site), 0) + 1
        return "\n".join(f"{n:5d} x {kind} at {site}" for (kind, site), n in counts.items())


record = Record()


def _site() -> str:
    """The first caller outside this module and NumPy: where the crossing is written."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if name != _HERE and not name.startswith(_NUMPY) and not name.startswith("<"):
            return f"{name}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


def cross(kind: str, *, forbidden: bool) -> None:
    """Note a crossing; raise for a forbidden one in ``"raise"`` mode."""
    site = _site()
    if forbidden and record.mode == "raise":
        raise HostCrossing(f"{kind} at {site}: on CuPy this copies to the host (or "
                           "fails); use vrshare.backend.to_host where a copy is meant")
    record.crossings.append(Crossing(kind, site, forbidden))


# -- wrapping ----------------------------------------------------------------------------


def _wrap(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return StrictArray(value)
    if isinstance(value, np.generic):  # CuPy returns 0-d device arrays, not scalars
        return StrictArray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _unwrap(value: Any, what: str) -> Any:
    """The NumPy arrays under ``value``; a bare NumPy array is a foreign operand."""
    if isinstance(value, StrictArray):
        return value._a
    if isinstance(value, np.ndarray):
        cross(f"a NumPy array as an operand of {what}", forbidden=True)
        return value
    if isinstance(value, tuple):
        return tuple(_unwrap(v, what) for v in value)
    if isinstance(value, list):
        return [_unwrap(v, what) for v in value]
    if isinstance(value, dict):
        return {k: _unwrap(v, what) for k, v in value.items()}
    return value


def _index(key: Any) -> Any:
    """An index, unwrapped: a boolean mask gives a data-dependent shape; a host index
    array is copied to the device."""
    parts = key if isinstance(key, tuple) else (key,)
    for k in parts:
        if isinstance(k, StrictArray | np.ndarray) and k.dtype == bool:
            cross("a boolean mask index (data-dependent shape)", forbidden=False)
        elif isinstance(k, np.ndarray):
            cross("a host index array (copied to the device)", forbidden=False)
    if isinstance(key, tuple):
        return tuple(k._a if isinstance(k, StrictArray) else k for k in key)
    return key._a if isinstance(key, StrictArray) else key


class StrictArray(NDArrayOperatorsMixin):
    """A device array as far as the host boundary goes (see the module docstring)."""

    __slots__ = ("_a",)
    __array_priority__ = 1000

    def __init__(self, array: np.ndarray) -> None:
        self._a = array

    # -- plain attributes --------------------------------------------------------------

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: StrictArray(self._a.T))
    flags = property(lambda self: self._a.flags)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        return (StrictArray(np.asarray(row)) for row in self._a)

    def __getattr__(self, name: str) -> Any:
        if name == "_a" or name.startswith("__"):  # _a unset (copy, pickle); and no
            raise AttributeError(name)  # __array_interface__ etc. behind __array__'s back
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)
        if name in DATA_DEPENDENT:
            cross(f"{name}() (data-dependent shape)", forbidden=False)

        def method(*args: Any, **kwargs: Any) -> Any:
            return _wrap(attr(*_unwrap(args, name), **_unwrap(kwargs, name)))

        return method

    # -- the host boundary --------------------------------------------------------------

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        cross("an implicit conversion to NumPy (np.asarray of a device array)",
              forbidden=True)
        return self._a if dtype is None else self._a.astype(dtype)

    def _scalar(self, kind: str) -> None:
        cross(f"{kind} of an array (a Python scalar from the device)", forbidden=True)

    def __float__(self) -> float:
        self._scalar("float()")
        return float(self._a)

    def __int__(self) -> int:
        self._scalar("int()")
        return int(self._a)

    def __index__(self) -> int:
        self._scalar("an index")
        return self._a.__index__()

    def __complex__(self) -> complex:
        self._scalar("complex()")
        return complex(self._a)

    def __bool__(self) -> bool:
        self._scalar("bool() (an `if` on an array)")
        return bool(self._a)

    def item(self, *args: Any) -> Any:
        self._scalar("item()")
        return self._a.item(*args)

    def tolist(self) -> Any:
        self._scalar("tolist()")
        return self._a.tolist()

    def get(self, *args: Any, **kwargs: Any) -> np.ndarray:
        cross("get() outside vrshare.backend.to_host", forbidden=True)
        return self._a.copy()

    def __repr__(self) -> str:
        cross("repr() of a device array", forbidden=False)
        return f"StrictArray({self._a!r})"

    __str__ = __repr__

    # -- indexing ------------------------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        return _wrap(self._a[_index(key)])

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, np.ndarray) and value.ndim:
            cross("host data written into a device array (copied to the device)",
                  forbidden=False)
        elif isinstance(value, StrictArray):
            value = value._a
        self._a[_index(key)] = value

    # -- NumPy's protocols -------------------------------------------------------------------

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any):
        what = f"np.{ufunc.__name__}"
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*_unwrap(inputs, what), **_unwrap(kwargs, what))
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func: Callable, types: Any, args: Any, kwargs: Any):
        name = func.__name__
        if name in DATA_DEPENDENT:
            cross(f"np.{name} (data-dependent shape)", forbidden=False)
        out = kwargs.get("out")
        result = func(*_unwrap(args, f"np.{name}"), **_unwrap(kwargs, f"np.{name}"))
        return out if out is not None else _wrap(result)


# -- the array namespace ---------------------------------------------------------------------

_CREATORS = frozenset({"array", "asarray", "ascontiguousarray", "asanyarray"})


class _Namespace(types.ModuleType):
    """NumPy's names, returning :class:`StrictArray`: ``array_module`` of a strict array."""

    def __init__(self, module: types.ModuleType) -> None:
        super().__init__(f"vrshare.strict.{module.__name__}")
        self._module = module

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._module, name)
        if isinstance(attr, types.ModuleType):
            return _Namespace(attr)
        if name == "ndarray":
            return StrictArray
        if isinstance(attr, type) or not callable(attr):
            return attr  # dtypes, constants

        def function(*args: Any, **kwargs: Any) -> Any:
            if name in _CREATORS and args and isinstance(args[0], np.ndarray):
                cross(f"xp.{name}() of host data outside vrshare.backend.to_device",
                      forbidden=False)
                return _wrap(attr(args[0], *_unwrap(args[1:], name),
                                  **_unwrap(kwargs, name)))
            if name in DATA_DEPENDENT:
                cross(f"xp.{name} (data-dependent shape)", forbidden=False)
            out = kwargs.get("out")
            result = attr(*_unwrap(args, f"xp.{name}"), **_unwrap(kwargs, f"xp.{name}"))
            return out if out is not None else _wrap(result)

        function.__name__ = name
        return function


xp = _Namespace(np)


def wrap(host: np.ndarray) -> StrictArray:
    """A device array holding ``host`` (no copy): for vrshare.backend.to_device."""
    return StrictArray(host)


def unwrap(array: StrictArray) -> np.ndarray:
    """The NumPy array under a strict array (no check): for vrshare.backend.to_host."""
    return array._a
