"""Where stage classes come from: built-ins, the ``vrshare.stages`` entry-point
group, or a ``"package.module:Class"`` path in a pipeline file.

Classes are imported only when asked for, so listing stages or importing vrshare
loads no stage's dependencies. Every class is validated when it is resolved (a
``Stage`` subclass with a name and a ``process`` of its own, ``Settings`` a
dataclass), not when its first frame runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import traceback
from dataclasses import dataclass
from importlib.metadata import entry_points

from .schedule import PipelineError
from .stage import Stage

ENTRY_POINT_GROUP = "vrshare.stages"

BUILTIN: dict[str, str] = {
    "tracking": "vrshare.stages.tracking:TrackingStage",
    "scene_filter": "vrshare.stages.scene_filter:SceneFilterStage",
    "audio": "vrshare.stages.audio:AudioStage",
    "scene_motion": "vrshare.stages.motion:SceneMotionStage",
    "passthrough": "vrshare.stages.passthrough:PassthroughStage",
    "optical_tracking": "vrshare.stages.optical:OpticalTrackingStage",
    "interaction": "vrshare.stages.interaction:InteractionStage",
}


@dataclass(frozen=True)
class StageEntry:
    """A stage type a pipeline file can name."""

    name: str  # what [[stage]] type = ... says
    target: str  # "package.module:Class"
    origin: str  # "built-in", or the distribution that provides the entry point


def available() -> list[StageEntry]:
    """Built-in and plugged-in stage types; an entry point may not shadow a built-in."""
    entries = [StageEntry(n, t, "built-in") for n, t in BUILTIN.items()]
    seen = {e.name: e for e in entries}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        if ep.name in seen:
            if seen[ep.name].target == ep.value:
                continue  # the same distribution found twice on sys.path
            raise PipelineError(
                f"entry point {ep.name!r} = {ep.value!r} from {dist} clashes with "
                f"{seen[ep.name].target!r} ({seen[ep.name].origin})"
            )
        seen[ep.name] = StageEntry(ep.name, ep.value, dist)
        entries.append(seen[ep.name])
    return entries


def _import(target: str, what: str) -> type:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise PipelineError(f"{what}: {target!r} is not of the form 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PipelineError(f"{what}: cannot import {module_name!r}: {exc}") from exc
    except (Exception, SystemExit) as exc:  # the plug-in's own code failed while importing
        tb = traceback.extract_tb(exc.__traceback__)
        at = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
        raise PipelineError(f"{what}: importing {module_name!r} raised "
                            f"{type(exc).__name__}: {exc}{at}") from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PipelineError(f"{what}: module {module_name!r} has no {attr!r}") from None
    return obj


def validate(cls: object, what: str) -> type[Stage]:
    """Check that ``cls`` is a usable stage class; raise PipelineError naming it."""
    if not (isinstance(cls, type) and issubclass(cls, Stage)):
        raise PipelineError(f"{what}: {cls!r} is not a subclass of vrshare.Stage")
    if cls.process is Stage.process:
        raise PipelineError(f"{what}: {cls.__name__} does not implement process()")
    if not dataclasses.is_dataclass(cls.Settings):
        raise PipelineError(f"{what}: {cls.__name__}.Settings must be a dataclass")
    for attr in ("reads", "writes"):
        value = getattr(cls, attr)
        if not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
            raise PipelineError(f"{what}: {cls.__name__}.{attr} must be a tuple of buffer names")
    return cls


def resolve(type_name: str) -> type[Stage]:
    """The stage class a pipeline file's ``type`` names."""
    if ":" in type_name:
        return validate(_import(type_name, f"stage {type_name!r}"), f"stage {type_name!r}")
    for entry in available():
        if entry.name == type_name:
            what = f"stage {type_name!r} ({entry.origin})"
            return validate(_import(entry.target, what), what)
    names = ", ".join(e.name for e in available())
    raise PipelineError(
        f"unknown stage type {type_name!r}: expected one of {names}, or 'package.module:Class'"
    )
