from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from vrshare import ConfigError, load_run_file
from vrshare.app import make_stages, open_run
from vrshare.config import build

DATA = Path(__file__).parent / "data"


@dataclass
class Inner:
    gain: float = 1.0


@dataclass
class Settings:
    name: str
    count: int = 1
    mode: Literal["a", "b"] = "a"
    fov: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.8)
    tags: tuple[str, ...] = ()
    inner: Inner = field(default_factory=Inner)
    maybe: float | None = None


def test_build_converts_and_fills_defaults():
    s = build(Settings, {"name": "x", "count": 3, "fov": [1, 1, 1, 1], "inner": {"gain": 2}},
              "f.toml [t]")
    assert s == Settings("x", 3, "a", (1.0, 1.0, 1.0, 1.0), (), Inner(2.0), None)


@pytest.mark.parametrize("table, message", [
    ({"name": "x", "cuont": 2}, "f.toml [t]: unknown key 'cuont' (expected one of: name, count"),
    ({"name": 5}, "f.toml [t] 'name': expected str, got int 5"),
    ({"name": "x", "count": 1.5}, "'count': expected int, got float 1.5"),
    ({"name": "x", "count": True}, "'count': expected int, got bool True"),
    ({"name": "x", "mode": "c"}, "'mode': expected 'a' or 'b', got str 'c'"),
    ({"name": "x", "fov": [1, 2]}, "'fov': expected 4 values, got 2"),
    ({"name": "x", "tags": ["a", 1]}, "'tags'[1]: expected str, got int 1"),
    ({"name": "x", "inner": {"gian": 1}}, "'inner': unknown key 'gian'"),
    ({"name": "x", "maybe": "no"}, "'maybe': expected float or none, got str 'no'"),
    ({}, "f.toml [t]: missing required key 'name' (str)"),
])
def test_build_errors_name_the_file_key_and_expectation(table, message):
    with pytest.raises(ConfigError) as info:
        build(Settings, table, "f.toml [t]")
    assert message in str(info.value)


@dataclass
class Checked:
    width: int = 1

    def __post_init__(self):
        if self.width < 1:
            raise ValueError(f"width must be >= 1 px, got {self.width}")


def test_a_dataclass_check_becomes_a_config_error_naming_the_table():
    with pytest.raises(ConfigError, match=r"^f\.toml \[display\]: width must be >= 1 px, got 0$"):
        build(Checked, {"width": 0}, "f.toml [display]")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        load_run_file(tmp_path / "nope.toml")


def test_invalid_toml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[pipeline]\nframe_hz = = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML: .*line 2"):
        load_run_file(bad)


def test_unknown_top_level_and_pipeline_keys(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text("[pipelin]\n")
    with pytest.raises(ConfigError, match=r"x\.toml: unknown key 'pipelin'"):
        load_run_file(f)
    f.write_text("[pipeline]\nclock = 'fast'\n")
    with pytest.raises(ConfigError, match=r"'clock': expected 'vsync' or 'virtual' or"):
        load_run_file(f)


def test_stage_settings_are_validated_against_the_stage(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[[stage]]\ntype = "stagekit:Counter"\n[stage.settings]\nstep = "big"\n')
    with pytest.raises(ConfigError, match=r"s\.toml \[\[stage\]\] #1 \(stagekit:Counter\) "
                                          r"settings 'step': expected float, got str 'big'"):
        make_stages(load_run_file(f))
    f.write_text('[[stage]]\ntype = "stagekit:Counter"\n[stage.settings]\nsteps = 1\n')
    with pytest.raises(ConfigError, match="unknown key 'steps' \\(expected one of: step\\)"):
        make_stages(load_run_file(f))
    f.write_text('[[stage]]\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"s\.toml \[\[stage\]\] #1: missing required key 'type'"):
        load_run_file(f)


def test_open_run_builds_and_runs_a_file():
    with open_run(DATA / "counter.toml") as run:
        stats = run.loop.run(12)
        assert run.bank["counter"][0] == 24.0
        assert [s.name for s in run.pipeline.stages] == ["counter", "nap"]
        assert stats.track_budget_s == {"counter": 0.005}
