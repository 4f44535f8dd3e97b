"""Typed settings from TOML files, validated on load.

Every section of a pipeline/scene file maps onto a dataclass; :func:`build` checks
the table against the dataclass's fields and type hints, so a typo, a wrong type
or a missing required key fails at load time with the file, the key and what was
expected, never at frame 1000. Numeric fields declare their valid range with
:func:`setting`; :func:`build` and each settings dataclass's ``__post_init__``
(through :func:`check_ranges`) refuse a value outside it, and NaN or infinity in any
float, naming the key, the value and the range.

A run file has these top-level tables (all optional)::

    [pipeline]            frame clock and externally written buffers -> PipelineSettings
    [[stage]]             one per stage, in any order                -> StageSpec
    [scene]               models, objects, lights, sounds (validated by vrshare.scene)
    [display]             target and resolution (validated by the renderer/targets)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from .errors import VrshareError
from .pipeline.clock import CLOCK_NAMES
from .pipeline.stage import DEFAULT_FRAME_HZ

T = TypeVar("T")


class ConfigError(VrshareError, ValueError):
    """A settings file or table is malformed; the message names file and key."""


# -- numeric ranges ----------------------------------------------------------------------

RANGE = "vrshare.range"  # dataclasses.field metadata key of a declared Range


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric setting (a number, or every number in a tuple).

    Bounds left ``None`` are open; a float is also required to be finite unless ``inf``
    allows infinities (a NaN is never allowed). ``unit`` is shown after the bounds.
    ``what`` names a tuple's numbers as a group (``"counts"``): an error then shows the
    whole tuple (``'grid': counts must be >= 1, got (0, 1, 1)``) instead of one element.
    """

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    unit: str = ""
    inf: bool = False
    what: str = ""

    def contains(self, value: float) -> bool:
        if value != value:  # NaN
            return False
        if not self.inf and value in (math.inf, -math.inf):
            return False
        return ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
                and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))

    def describe(self, floats: bool = True) -> str:
        """``"> 0 and <= 1000 Hz"``; ``"finite"`` or ``"finite and > 0 ms"`` for floats whose
        bounds alone do not exclude infinity."""
        pairs = ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le))
        bounds = [f"{op} {_number(b)}" for op, b in pairs if b is not None]
        closed = (self.gt is not None or self.ge is not None) and \
            (self.lt is not None or self.le is not None)
        if floats and not self.inf and not closed:
            bounds.insert(0, "finite")
        text = " and ".join(bounds) or "any number"
        if self.unit and bounds[-1:] != ["finite"]:
            text += f" {self.unit}"
        return text + (" (inf allowed)" if self.inf else "")


FINITE = Range()  # what a float without a declared range must be


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def setting(default: Any = dataclasses.MISSING, *, gt: float | None = None,
            ge: float | None = None, lt: float | None = None, le: float | None = None,
            unit: str = "", inf: bool = False, what: str = "") -> Any:
    """A dataclass field with a declared numeric range, checked by :func:`build` and by
    :func:`check_ranges` (which every settings dataclass calls in ``__post_init__``)::

        frame_hz: float = setting(90.0, ge=1, le=1000, unit="Hz")

    The range applies to the field's number, or to every number in it (a tuple such as a
    position or colour); ``None`` in an optional field is not checked.
    """
    rng = Range(gt=gt, ge=ge, lt=lt, le=le, unit=unit, inf=inf, what=what)
    return field(default=default, metadata={RANGE: rng})


def range_of(f: dataclasses.Field) -> Range | None:
    """The range a field declares with :func:`setting`, or None."""
    return f.metadata.get(RANGE)


def _check_value(rng: Range, value: Any, where: str, name: str) -> None:
    if isinstance(value, bool) or isinstance(value, str) or dataclasses.is_dataclass(value):
        return
    if isinstance(value, numbers.Real):
        is_float = not isinstance(value, numbers.Integral)
        if not rng.contains(value):
            raise ConfigError(f"{where}: {value!r} is out of range ({name} must be "
                              f"{rng.describe(is_float)})")
        return
    if hasattr(value, "tolist") and not isinstance(value, numbers.Number):
        value = value.tolist()  # a NumPy array given in Python
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_value(rng, v, f"{where}[{i}]", f"{name}[{i}]")


def check_setting(f: dataclasses.Field, value: Any, where: str) -> None:
    """Check one field's value against its declared range (floats without one: finite)."""
    rng = range_of(f) or FINITE
    try:
        _check_value(rng, value, where, f.name)
    except ConfigError:
        if not rng.what:
            raise
        floats = any(isinstance(v, float) for v in _numbers(value))
        raise ConfigError(f"{where}: {rng.what} must be {rng.describe(floats)}, "
                          f"got {value!r}") from None


def _numbers(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return [n for v in value for n in _numbers(v)]
    return [value]


def check_ranges(obj: Any) -> None:
    """Check every field of the dataclass instance ``obj`` against its declared range.

    Settings dataclasses call this first in ``__post_init__``, so a value out of range
    is refused however the settings are made (a run file through :func:`build`, or
    Python); the error is a :class:`ConfigError` naming the class, key, value and range.
    """
    for f in dataclasses.fields(obj):
        check_setting(f, getattr(obj, f.name), f"{type(obj).__name__} {f.name!r}")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file, turning a missing file or a syntax error into ConfigError."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text (byte {exc.start} is "
                          f"{exc.object[exc.start:exc.start + 1]!r})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp) if a is not Ellipsis)
        return f"{origin.__name__} of {args}"
    if dataclasses.is_dataclass(tp):
        return "table"
    return "none" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the type hint ``tp``; return it converted (lists -> tuples)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return build(arg, value, where)  # a table: its own errors name its keys
        for arg in args:
            try:
                return _convert(value, arg, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {_describe(value)}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {_describe(value)}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {_describe(value)}")
        return build(tp, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {_describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        pairs = enumerate(zip(value, args, strict=True))
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in pairs)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {_describe(value)}")
        return [_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {_describe(value)}")
        return {k: _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is Path:
        if isinstance(value, str):
            return Path(value)
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {_describe(value)}")


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 40 else text[:37] + '...'}"


def build(cls: type[T], table: dict[str, Any], where: str) -> T:
    """Make a ``cls`` dataclass from a TOML table, validating keys and types.

    ``where`` prefixes every error, e.g. ``"scenes/demo.toml [stage.settings]"``. Every
    number is checked against its field's declared range (:func:`setting`; a float
    without one must be finite). A ``ValueError`` from the dataclass's own checks
    (``__post_init__``) becomes a ConfigError with the same prefix.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (expected one of: {', '.join(fields) or 'none'})"
        )
    kwargs = {}
    for name, f in fields.items():
        if name in table:
            kwargs[name] = _convert(table[name], hints[name], f"{where} {name!r}")
            check_setting(f, kwargs[name], f"{where} {name!r}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r} ({_type_name(hints[name])})")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


MIN_FRAME_HZ = 1.0  # Hz: a frame is at most 1 s (the headless audio stage renders the
#                     blocks due per frame, so this bounds one frame's work)
MAX_FRAME_HZ = 1000.0  # Hz


@dataclass
class PipelineSettings:
    """The ``[pipeline]`` table: how frames are clocked."""

    # display refresh rate
    frame_hz: float = setting(DEFAULT_FRAME_HZ, ge=MIN_FRAME_HZ, le=MAX_FRAME_HZ, unit="Hz")
    clock: str = "vsync"  # one of CLOCK_NAMES (vrshare.pipeline.clock)
    # buffers written outside any stage (by a target), e.g. "desktop_input"
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.clock not in CLOCK_NAMES:
            raise ValueError(f"'clock': expected {' or '.join(map(repr, CLOCK_NAMES))}, "
                             f"got {self.clock!r}")


@dataclass
class StageSpec:
    """One ``[[stage]]`` table: which stage, its name and its settings."""

    type: str  # built-in name, entry-point name, or "package.module:Class"
    name: str = ""  # defaults to the stage class's name
    # per-frame time budget; overruns are reported
    budget_ms: float | None = setting(None, gt=0, unit="ms")
    # scheduling (vrshare.pipeline.cadence); None keeps the stage class's default
    mode: str | None = None  # "sync", "async" or "process"
    rate_hz: float | None = setting(None, gt=0, le=MAX_FRAME_HZ, unit="Hz")
    latency_frames: int | None = setting(None, ge=1, le=10_000)
    on_overrun: str | None = None  # "wait", "skip" or "async"
    device: str | None = None  # "auto", "host" or "gpu": where the stage's arrays live
    enabled: bool = True
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class RunFile:
    """A parsed pipeline/scene file."""

    path: Path
    pipeline: PipelineSettings
    stages: list[StageSpec]
    scene: dict[str, Any]
    display: dict[str, Any]

    @property
    def base_dir(self) -> Path:
        """Folder against which relative asset paths in the file resolve."""
        return self.path.parent


@dataclass
class _Top:
    pipeline: dict[str, Any] = field(default_factory=dict)  # -> PipelineSettings
    stage: list[dict[str, Any]] = field(default_factory=list)  # -> StageSpec each
    scene: dict[str, Any] = field(default_factory=dict)
    display: dict[str, Any] = field(default_factory=dict)


def load_run_file(path: str | Path) -> RunFile:
    """Load and validate a pipeline/scene file (TOML).

    Errors name the file and the table as TOML writes it (``x.toml [pipeline]``,
    ``x.toml [[stage]] #2``), then the key.
    """
    path = Path(path)
    return parse_run_file(load_toml(path), path)


def parse_run_file(table: dict[str, Any], path: str | Path) -> RunFile:
    """Validate a run file's parsed TOML ``table`` as :func:`load_run_file` does; ``path``
    names it in errors and is where its relative asset paths resolve from (a sweep
    builds each run's overridden table and checks it here)."""
    path = Path(path)
    top = build(_Top, table, str(path))
    pipeline = build(PipelineSettings, top.pipeline, f"{path} [pipeline]")
    stages = [build(StageSpec, table, f"{path} [[stage]] #{i + 1}")
              for i, table in enumerate(top.stage)]
    for i, spec in enumerate(stages):
        if not spec.type.strip():
            raise ConfigError(f"{path} [[stage]] #{i + 1} 'type': must not be empty")
    return RunFile(path, pipeline, stages, top.scene, top.display)
