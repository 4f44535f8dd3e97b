"""Every numeric setting has a declared range (vrshare.config.setting), checked when a run
file is loaded and when settings are made in Python; a value outside it is an error naming
the file, the table, the key, the value and the range. Also: GL framebuffer limits, a run
file that is not UTF-8, and a plug-in stage module that fails while importing."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import pkgutil
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from glkit import gl_ctx  # noqa: F401  (the session's GL context, through getfixturevalue)

import vrshare
from vrshare.app import make_stages
from vrshare.config import (
    ConfigError,
    PipelineSettings,
    StageSpec,
    build,
    load_run_file,
    range_of,
    setting,
)
from vrshare.pipeline import PipelineError
from vrshare.pipeline.registry import BUILTIN, resolve
from vrshare.scene import load_scene
from vrshare.scene.spec import SceneSpec
from vrshare.stages.interaction import InteractionSettings
from vrshare.stages.tracking import TrackingSettings
from vrshare.stages.tracking.one_euro import OneEuroParams
from vrshare.sweep.playback import PlaybackSettings
from vrshare.targets.base import DisplaySettings, TargetError
from vrshare.testing import FixedEyesSettings


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def message(exc: pytest.ExceptionInfo) -> str:
    return str(exc.value)


# -- [pipeline] frame_hz and [[stage]] budget_ms -----------------------------------------------

@pytest.mark.parametrize("value, shown", [
    ("0", "0.0"), ("-90", "-90.0"), ("1e9", "1000000000.0"), ("0.001", "0.001"),
    ("nan", "nan"), ("inf", "inf"), ("-inf", "-inf"),
])
def test_frame_hz_out_of_range_names_file_table_key_value_and_range(tmp_path, value, shown):
    path = write(tmp_path, f"[pipeline]\nframe_hz = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_run_file(path)
    assert message(info) == (f"{path} [pipeline] 'frame_hz': {shown} is out of range "
                             "(frame_hz must be >= 1 and <= 1000 Hz)")


def test_frame_hz_in_range_and_an_int_are_accepted(tmp_path):
    assert load_run_file(write(tmp_path, "[pipeline]\nframe_hz = 1000\n")).pipeline.frame_hz \
        == 1000.0
    assert load_run_file(write(tmp_path, "[pipeline]\nframe_hz = 1\n")).pipeline.frame_hz == 1.0


def test_frame_hz_is_checked_in_python_too():
    # the headless audio stage renders the blocks due per frame: a frame of at most 1 s
    # bounds that work, so no tiny rate can make it loop for ever
    with pytest.raises(ConfigError, match=r"^PipelineSettings 'frame_hz': 0\.01 is out of range"):
        PipelineSettings(frame_hz=0.01)


@pytest.mark.parametrize("value, shown", [("nan", "nan"), ("-1", "-1.0"), ("0", "0.0"),
                                          ("inf", "inf")])
def test_budget_ms_must_be_finite_and_positive(tmp_path, value, shown):
    path = write(tmp_path, f'[[stage]]\ntype = "tracking"\nbudget_ms = {value}\n')
    with pytest.raises(ConfigError) as info:
        load_run_file(path)
    assert message(info) == (f"{path} [[stage]] #1 'budget_ms': {shown} is out of range "
                             "(budget_ms must be finite and > 0 ms)")
    with pytest.raises(ConfigError, match="'budget_ms'"):
        StageSpec("tracking", budget_ms=float(value))


# -- stage settings ---------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, rng", [
    ("history_k", "0", "history_k must be >= 1 and <= 64"),
    ("seed", "-1", "seed must be >= 0"),
    ("noise_mm", "nan", "noise_mm must be >= 0 and <= 1000 mm"),
    ("far", "inf", "far must be finite and > 0 m"),
    ("forgetting", "1.5", "forgetting must be > 0 and <= 1"),
])
def test_tracking_settings_out_of_range_in_a_run_file(tmp_path, key, value, rng):
    path = write(tmp_path, f'[[stage]]\ntype = "tracking"\n[stage.settings]\n{key} = {value}\n')
    with pytest.raises(ConfigError) as info:
        make_stages(load_run_file(path))
    shown = repr(int(value) if value.lstrip("-").isdigit() else float(value))
    assert message(info) == (f"{path} [[stage]] #1 (tracking) settings {key!r}: {shown} is out "
                             f"of range ({rng})")


def test_settings_made_in_python_are_checked():
    with pytest.raises(ConfigError, match=r"^TrackingSettings 'history_k': 0 is out of range "
                                          r"\(history_k must be >= 1 and <= 64\)$"):
        TrackingSettings(history_k=0)
    with pytest.raises(ConfigError, match=r"^TrackingSettings 'seed': -1 is out of range"):
        TrackingSettings(seed=-1)
    with pytest.raises(ConfigError, match=r"'fov_left'\[2\]: nan is out of range \(fov_left\[2\] "
                                          r"must be > -1\.5708 and < 1\.5708 rad\)"):
        TrackingSettings(fov_left=(-0.5, 0.5, math.nan, -0.5))
    with pytest.raises(ConfigError, match=r"^OneEuroParams 'beta': -1\.0 is out of range"):
        OneEuroParams(beta=-1.0)
    with pytest.raises(ConfigError, match=r"'ipd': -0\.01 is out of range"):
        FixedEyesSettings(ipd=-0.01)


def test_cross_field_checks_stay_with_the_stage():
    from vrshare.stages.audio import AudioStage
    from vrshare.stages.audio.stage import Settings as AudioSettings
    from vrshare.stages.tracking import TrackingStage

    with pytest.raises(ValueError, match="near < far"):
        TrackingStage(TrackingSettings(near=2.0, far=1.0))
    with pytest.raises(ValueError, match=r"min_distance_m \(5\.0 m\) must be less than "
                                         r"max_distance_m \(1\.0 m\)"):
        AudioStage(AudioSettings(min_distance_m=5.0, max_distance_m=1.0))


# -- the scene and the display ---------------------------------------------------------------

SCENE = {"primitive": [{"name": "p", "shape": "box"}]}
BOUNDS = "must be >= -1000000 and <= 1000000"  # scene numbers: |x| <= MAX_MAGNITUDE


@pytest.mark.parametrize("obj, text", [
    ({"position": [0.0, math.nan, 0.0]},
     f"'object'[0] 'position'[1]: nan is out of range (position[1] {BOUNDS} m)"),
    ({"rotation": [math.inf, 0.0, 0.0]},
     f"'object'[0] 'rotation'[0]: inf is out of range (rotation[0] {BOUNDS} deg)"),
    ({"scale": math.nan}, f"'object'[0] 'scale': nan is out of range (scale {BOUNDS})"),
    ({"importance": -1.0},
     "'object'[0] 'importance': -1.0 is out of range (importance must be finite and >= 0)"),
    ({"grid": [2, 0, 1]}, "'object'[0] 'grid': counts must be >= 1, got (2, 0, 1)"),
    ({"color": [1.5, 0.0, 0.0]},
     "'object'[0] 'color'[0]: 1.5 is out of range (color[0] must be >= 0 and <= 1)"),
    ({"motion": {"orbit_deg_s": 30.0, "orbit_center": [0.0, math.nan, 0.0]}},
     "'object'[0] 'motion' 'orbit_center'[1]: nan is out of range (orbit_center[1] "
     f"{BOUNDS} m)"),
])
def test_scene_numbers_out_of_range(obj, text):
    table = {**SCENE, "object": [{"mesh": "p", **obj}]}
    with pytest.raises(ConfigError) as info:
        load_scene(table, Path("."), Path("scene.toml"))
    assert message(info) == f"scene.toml [scene] {text}"


def test_a_nan_position_in_a_scene_file(tmp_path):
    path = write(tmp_path, '[[scene.primitive]]\nname = "p"\nshape = "box"\n'
                           '[[scene.object]]\nmesh = "p"\nposition = [0.0, nan, -2.0]\n')
    run = load_run_file(path)
    with pytest.raises(ConfigError) as info:
        load_scene(run.scene, run.base_dir, run.path)
    assert message(info) == (f"{path} [scene] 'object'[0] 'position'[1]: nan is out of range "
                             "(position[1] must be >= -1000000 and <= 1000000 m)")


def test_scene_sound_numbers():
    with pytest.raises(ConfigError, match=r"'sound'\[0\] 'gain': -2\.0 is out of range"):
        load_scene({"sound": [{"name": "s", "gain": -2.0}]}, Path("."), Path("scene.toml"))
    with pytest.raises(ConfigError, match=r"'frequency_hz': 0\.0 is out of range \(frequency_hz "
                                          r"must be > 0 and < 192000 Hz\)"):
        load_scene({"sound": [{"name": "s", "frequency_hz": 0}]}, Path("."), Path("scene.toml"))


@pytest.mark.parametrize("key, value, rng", [
    ("width", 0, "width must be >= 1 and <= 131072 px"),
    ("height", 200000, "height must be >= 1 and <= 131072 px"),
    ("capture_every", 0, "capture_every must be >= 1"),
    ("video_fps", -1.0, "video_fps must be >= 0 and <= 1000 Hz"),
])
def test_display_settings_out_of_range(key, value, rng):
    with pytest.raises(ConfigError) as info:
        build(DisplaySettings, {key: value}, "run.toml [display]")
    assert message(info) == f"run.toml [display] {key!r}: {value!r} is out of range ({rng})"


def test_width_beyond_the_gl_limit_names_the_key_and_the_limit(request):
    from vrshare.targets.headless import HeadlessTarget

    ctx = request.getfixturevalue("gl_ctx")  # skips without EGL
    with pytest.raises(TargetError) as info:
        HeadlessTarget(DisplaySettings(width=100000, height=64), ctx=ctx)
    assert isinstance(info.value, ConfigError)
    text = message(info)
    limit = re.search(r"its (GL_MAX_\w+) is (\d+) px", text)
    assert limit, text
    assert text.startswith("[display] 'width': 100000 px is too large for the headless target's "
                           "GL context (2 eyes side by side: 200000 px)")
    assert text.endswith(f"so width must be <= {int(limit[2]) // 2} px here")
    with pytest.raises(TargetError, match=r"\[display\] 'height': 100000 px is too large"):
        HeadlessTarget(DisplaySettings(width=8, height=100000), ctx=ctx)
    HeadlessTarget(DisplaySettings(width=8, height=8), ctx=ctx).close()  # the context lives on


# -- files and plug-ins -----------------------------------------------------------------------

def test_a_run_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes("# caf\u00e9\n[pipeline]\nframe_hz = 90\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_run_file(path)
    assert message(info) == f"{path}: not valid TOML: not UTF-8 text (byte 5 is b'\\xe9')"
    path.write_text("[pipeline\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: not valid TOML: .*line 1"):
        load_run_file(path)


def test_a_plugin_module_raising_on_import_names_the_type_and_the_exception(tmp_path,
                                                                           monkeypatch):
    (tmp_path / "broken_plugin_xyz.py").write_text(
        "import os\n\nraise RuntimeError('licence server unreachable')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PipelineError) as info:
        resolve("broken_plugin_xyz:Stage")
    text = message(info)
    assert text.startswith("stage 'broken_plugin_xyz:Stage': importing 'broken_plugin_xyz' "
                           "raised RuntimeError: licence server unreachable (at ")
    assert text.endswith("broken_plugin_xyz.py:3)")
    path = write(tmp_path, '[[stage]]\ntype = "broken_plugin_xyz:Stage"\n')
    with pytest.raises(vrshare.VrshareError, match="broken_plugin_xyz:Stage.*RuntimeError"):
        make_stages(load_run_file(path))


# -- the mechanism --------------------------------------------------------------------------

@dataclass
class Plugin:  # a plug-in's Settings: a plain dataclass, no ranges declared
    gain: float = 1.0
    taps: int = 4
    limit: float = setting(10.0, gt=0, inf=True, unit="s")


def test_build_checks_plain_floats_for_finiteness_and_honours_inf():
    with pytest.raises(ConfigError, match=r"^p\.toml \[s\] 'gain': nan is out of range "
                                          r"\(gain must be finite\)$"):
        build(Plugin, {"gain": math.nan}, "p.toml [s]")
    assert build(Plugin, {"limit": math.inf}, "p.toml [s]").limit == math.inf
    with pytest.raises(ConfigError, match=r"'limit': nan is out of range \(limit must be > 0 s "
                                          r"\(inf allowed\)\)"):
        build(Plugin, {"limit": math.nan}, "p.toml [s]")
    assert build(Plugin, {"taps": -5}, "p.toml [s]").taps == -5  # ints: no range, no check


# every settings dataclass: what a run file or a test makes
ROOTS: list[type] = [PipelineSettings, StageSpec, DisplaySettings, SceneSpec, FixedEyesSettings,
                     OneEuroParams, PlaybackSettings, InteractionSettings]


def builtin_settings() -> list[type]:
    return [resolve(name).Settings for name in BUILTIN]


def _types_in(hint: Any) -> list[Any]:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return []
    if origin is not None or isinstance(hint, types.UnionType):
        return [t for a in typing.get_args(hint) if a is not Ellipsis for t in _types_in(a)]
    return [hint]


def settings_classes() -> list[type]:
    """ROOTS, the built-in stages' Settings and every dataclass their fields hold."""
    todo, seen = [*ROOTS, *builtin_settings()], []
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        hints = typing.get_type_hints(cls)
        todo += [t for f in dataclasses.fields(cls) for t in _types_in(hints[f.name])
                 if dataclasses.is_dataclass(t)]
    return seen


def numeric(hint: Any) -> bool:
    return any(t in (int, float) for t in _types_in(hint))


def test_every_numeric_setting_declares_a_range():
    classes = settings_classes()
    names = {c.__name__ for c in classes}
    assert {"TrackingSettings", "Settings", "SourceSettings", "SceneFilterSettings", "ObjectSpec",
            "MotionSpec", "SoundSpec", "LightSpec", "PrimitiveSpec"} <= names
    missing = []
    for cls in classes:
        hints = typing.get_type_hints(cls)
        missing += [f"{cls.__module__}.{cls.__qualname__}.{f.name}"
                    for f in dataclasses.fields(cls) if numeric(hints[f.name]) and
                    range_of(f) is None]
    assert not missing, f"declare a range with vrshare.config.setting(...): {missing}"


def test_every_settings_dataclass_in_vrshare_is_walked():
    """A new *Settings / *Spec / *Params dataclass must be added to ROOTS (or be reachable)."""
    walked = set(settings_classes())
    found = set()
    for info in pkgutil.walk_packages(vrshare.__path__, "vrshare."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and dataclasses.is_dataclass(obj)
                    and obj.__module__ == module.__name__
                    and re.search(r"(Settings|Spec|Params)$", name)):
                found.add(obj)
    stray = sorted(f"{c.__module__}.{c.__qualname__}" for c in found - walked)
    assert not stray, f"settings dataclasses not covered by the range test: {stray}"


def _required(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            hint = hints[f.name]
            out[f.name] = (typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Literal
                           else Path("x") if hint is Path else "x")
    return out


def _bad_number(f: dataclasses.Field, integer: bool) -> Any:
    rng = range_of(f)
    if not integer:
        return math.nan
    for bound, step in ((rng.ge, -1), (rng.le, 1)):
        if bound is not None:
            return int(bound) + step
    return int(rng.gt) if rng.gt is not None else int(rng.lt) if rng.lt is not None else None


def _bad_value(f: dataclasses.Field, hint: Any) -> Any:
    """A value of ``f``'s type outside its range: NaN in a float, a bound +- 1 in an int."""
    for arm in _types_in(hint) if typing.get_origin(hint) is not tuple else []:
        if arm in (int, float):
            return _bad_number(f, arm is int)
    arms = [a for a in typing.get_args(hint) if typing.get_origin(a) is tuple] \
        if typing.get_origin(hint) is not tuple else [hint]
    for arm in arms:
        args = [a for a in typing.get_args(arm) if a is not Ellipsis]
        if typing.get_origin(args[0]) in (tuple, typing.Union, types.UnionType):
            return (_bad_value(f, args[0]),)  # a tuple of colours
        first = _bad_number(f, args[0] is int)
        return (first, *[0.0 if a is float else 1 for a in args[1:]])
    return None


def test_every_settings_dataclass_checks_its_ranges_when_made_in_python():
    for cls in settings_classes():
        hints = typing.get_type_hints(cls)
        cls(**_required(cls))  # the defaults are in range
        for f in dataclasses.fields(cls):
            if not numeric(hints[f.name]):
                continue
            bad = _bad_value(f, hints[f.name])
            assert bad is not None, f"{cls.__name__}.{f.name}: no value out of its range"
            with pytest.raises(ConfigError, match=rf"'{f.name}'"):
                cls(**{**_required(cls), f.name: bad})


def test_a_grid_too_large_for_any_scene_is_refused_before_placing_it():
    from vrshare.scene.load import MAX_OBJECTS

    table = {**SCENE, "object": [{"mesh": "p", "grid": [2, 1, 2**62]}]}
    with pytest.raises(ConfigError, match=rf"'grid': \(2, 1, {2**62}\) makes {2**63} copies; "
                                          rf"a scene holds at most {MAX_OBJECTS} objects"):
        load_scene(table, Path("."), Path("big.toml"))
