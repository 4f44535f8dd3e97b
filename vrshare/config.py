"""Typed settings from TOML files, validated on load.

Every section of a pipeline/scene file maps onto a dataclass; :func:`build` checks
the table against the dataclass's fields and type hints, so a typo, a wrong type
or a missing required key fails at load time with the file, the key and what was
expected, never at frame 1000.

A run file has these top-level tables (all optional)::

    [pipeline]            frame clock and externally written buffers -> PipelineSettings
    [[stage]]             one per stage, in any order                -> StageSpec
    [scene]               models, objects, lights, sounds (validated by vrshare.scene)
    [display]             target and resolution (validated by the renderer/targets)
"""

from __future__ import annotations

import dataclasses
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

    ``where`` prefixes every error, e.g. ``"scenes/demo.toml [stage.settings]"``. A
    ``ValueError`` from the dataclass's own checks (``__post_init__``) becomes a
    ConfigError with the same prefix.
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
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r} ({_type_name(hints[name])})")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


@dataclass
class PipelineSettings:
    """The ``[pipeline]`` table: how frames are clocked."""

    frame_hz: float = DEFAULT_FRAME_HZ  # display refresh rate, Hz
    clock: str = "vsync"  # one of CLOCK_NAMES (vrshare.pipeline.clock)
    # buffers written outside any stage (by a target), e.g. "desktop_input"
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.clock not in CLOCK_NAMES:
            raise ValueError(f"'clock': expected {' or '.join(map(repr, CLOCK_NAMES))}, "
                             f"got {self.clock!r}")


@dataclass
class StageSpec:
    """One ``[[stage]]`` table: which stage, its name and its settings."""

    type: str  # built-in name, entry-point name, or "package.module:Class"
    name: str = ""  # defaults to the stage class's name
    budget_ms: float | None = None  # per-frame time budget; overruns are reported
    enabled: bool = True
    settings: dict[str, Any] = field(default_factory=dict)


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
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    stage: list[StageSpec] = field(default_factory=list)
    scene: dict[str, Any] = field(default_factory=dict)
    display: dict[str, Any] = field(default_factory=dict)


def load_run_file(path: str | Path) -> RunFile:
    """Load and validate a pipeline/scene file (TOML)."""
    path = Path(path)
    top = build(_Top, load_toml(path), str(path))
    for i, spec in enumerate(top.stage):
        if not spec.type.strip():
            raise ConfigError(f"{path} [[stage]] #{i + 1} 'type': must not be empty")
    return RunFile(path, top.pipeline, top.stage, top.scene, top.display)
