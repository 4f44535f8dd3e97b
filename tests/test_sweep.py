"""vrshare sweep without Ray: --set parsing and overriding, validation before any run
(with the run file's own errors), --local runs, resumption, a failing run, and the
error that says what to install when Ray is missing."""

from __future__ import annotations

import csv
import json
import sys

import pytest
from sweepkit import small_table, write_run_file

from vrshare.cli import main
from vrshare.config import ConfigError, load_run_file
from vrshare.errors import MissingDependency
from vrshare.sweep import Placement, SweepError, parse_set, plan, sweep
from vrshare.sweep.overrides import apply
from vrshare.sweep.plan import validate

LOCAL = Placement(local=True)

# -- --set ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, key, values", [
    ("display.width=256,512", "display.width", (256, 512)),
    ("pipeline.frame_hz=72.5", "pipeline.frame_hz", (72.5,)),
    ("pipeline.clock=virtual,unthrottled", "pipeline.clock", ("virtual", "unthrottled")),
    ('stage.audio.settings.hrtf="kemar", "a,b"', "stage.audio.settings.hrtf", ("kemar", "a,b")),
    ("scene.object.1.position=[0, 1, 2],[3, 4, 5]", "scene.object.1.position",
     ([0, 1, 2], [3, 4, 5])),
    ("stage.tracking.enabled=true,false", "stage.tracking.enabled", (True, False)),
])
def test_set_reads_toml_values_and_bare_words(text, key, values):
    o = parse_set(text)
    assert (o.key, o.values) == (key, values)


@pytest.mark.parametrize("text", ["display.width", "=1", "display.width=", "display..width=1",
                                  "display.width=1,,2"])
def test_a_malformed_set_is_an_error_naming_it(text):
    with pytest.raises(SweepError, match="--set"):
        parse_set(text)


def test_apply_finds_stages_by_name_type_or_number_and_leaves_the_table_alone():
    table = small_table()
    table["stage"][1]["name"] = "mover"
    out = apply(table, {"stage.tracking.settings.seed": 3, "stage.mover.enabled": False,
                        "stage.3.budget_ms": 2.0, "scene.object.2.scale": 0.5,
                        "display.width": 64, "pipeline.sources": ["desktop_input"]})
    assert out["stage"][0]["settings"]["seed"] == 3
    assert out["stage"][1]["enabled"] is False
    assert out["stage"][2]["budget_ms"] == 2.0
    assert out["scene"]["object"][1]["scale"] == 0.5
    assert out["display"]["width"] == 64 and out["pipeline"]["sources"] == ["desktop_input"]
    assert table == small_table() | {"stage": table["stage"]}  # the input is not changed
    assert "seed" not in table["stage"][0]["settings"]


@pytest.mark.parametrize("settings, match", [
    ({"stage.nope.enabled": True}, "no \\[\\[stage\\]\\] is named or typed 'nope'"),
    ({"stage.9.enabled": True}, "no \\[\\[stage\\]\\] #9"),
    ({"scene.object.7.scale": 1.0}, "expected a number 1..3"),
    ({"display.width.x": 1}, "display.width is a value, not a table"),
])
def test_apply_names_what_it_cannot_find(settings, match):
    with pytest.raises(SweepError, match=match):
        apply(small_table(), settings)


# -- validation -------------------------------------------------------------------------


@pytest.mark.parametrize("key, bad", [
    ("display.width", "wide"),
    ("pipeline.frame_hz", 5000.0),
    ("pipeline.clock", "sundial"),
    ("stage.scene_filter.settings.instance_budjet", 10),
    ("stage.tracking.settings.source", "crystal_ball"),
    ("stage.1.budget_ms", -1.0),
    ("pipeline.colour", 1),
])
def test_a_bad_key_or_value_fails_before_any_run_with_the_run_files_error(tmp_path, key, bad):
    path = write_run_file(tmp_path / "run.toml")
    with pytest.raises(SweepError) as caught:
        plan(path, [parse_set(f"{key}={json.dumps(bad)}")], frames=5)
    # the same value written into the file: the error the file itself gives
    write_run_file(path, apply(small_table(), {key: bad}))
    with pytest.raises(ConfigError) as direct:
        validate(load_run_file(path), "headless", True)
    assert str(caught.value).startswith(f"--set {key}=")
    assert str(caught.value).endswith(str(direct.value))


def test_every_combination_is_validated_before_anything_runs(tmp_path):
    path = write_run_file(tmp_path / "run.toml")
    # the first combinations are fine; the last one's width is out of range
    with pytest.raises(SweepError, match="display.width=0"):
        sweep(path, [parse_set("display.width=32,0")], tmp_path / "out", LOCAL, frames=5)
    assert not (tmp_path / "out").exists()


def test_plan_is_the_product_with_repeats_and_stable_ids(tmp_path):
    path = write_run_file(tmp_path / "run.toml")
    sets = [parse_set("display.width=32,48"), parse_set("pipeline.frame_hz=60,90,120")]
    runs = plan(path, sets, repeat=2, frames=5)
    assert len(runs) == 12 and len({r.id for r in runs}) == 12
    assert [r.settings for r in runs[:4:2]] == [
        {"display.width": 32, "pipeline.frame_hz": 60},
        {"display.width": 32, "pipeline.frame_hz": 90}]
    assert [r.repeat for r in runs[:2]] == [0, 1]
    assert [r.id for r in plan(path, sets, repeat=2, frames=5)] == [r.id for r in runs]
    assert plan(path, sets, repeat=2, frames=6)[0].id != runs[0].id  # frames count
    assert runs[3].run_file().pipeline.frame_hz == 90 and runs[3].run_file().display == {
        "width": 32, "height": 32}


# -- running ----------------------------------------------------------------------------


def test_a_failing_run_is_recorded_and_the_sweep_goes_on_then_resumes(tmp_path, capsys):
    path = write_run_file(tmp_path / "run.toml")
    sets = [parse_set("stage.tracking.settings.source=trace,synthetic"),
            parse_set("stage.tracking.settings.trace=not_there.csv")]
    out = tmp_path / "out"
    first = sweep(path, sets, out, LOCAL, frames=5, target="none")
    assert first.ran == 2
    failed, ok = first.rows
    assert failed.status == "failed" and "not_there.csv" in failed.error and failed.frames == 0
    assert ok.ok and ok.frames == 5 and ok.error is None
    assert "not_there.csv" in (out / "runs" / f"{failed.id}.log").read_text()
    with (out / "sweep.csv").open() as f:
        lines = list(csv.DictReader(f))
    assert [line["status"] for line in lines] == ["failed", "ok"]
    assert lines[1]["stage.tracking.settings.source"] == "synthetic"
    assert (out / "sweep.png").stat().st_size > 0

    again = sweep(path, sets, out, LOCAL, frames=5, target="none")
    assert again.ran == 1  # the ok run is skipped; the failed one is tried again
    assert again.rows[1] == ok
    assert "1 of 2 runs already in" in capsys.readouterr().out


def test_the_command_runs_a_local_sweep_and_exits_1_when_a_run_failed(tmp_path, capsys):
    path = write_run_file(tmp_path / "run.toml")
    out = tmp_path / "out"
    args = ["sweep", str(path), "--set", "pipeline.frame_hz=60,90", "--frames", "4",
            "--target", "none", "--clock", "virtual", "--local", "--out", str(out)]
    assert main(args) == 0
    rows = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")
            if not p.name.endswith(".results.json")]
    assert sorted(r["settings"]["pipeline.frame_hz"] for r in rows) == [60, 90]
    assert all(r["frames"] == 4 and r["status"] == "ok" for r in rows)
    assert "sweep.csv" in capsys.readouterr().out
    bad = ["sweep", str(path), "--set", "stage.tracking.settings.source=trace", "--set",
           "stage.tracking.settings.trace=not_there.csv", "--frames", "4", "--target", "none",
           "--local", "--out", str(tmp_path / "bad")]
    assert main(bad) == 1


def test_without_ray_the_error_says_what_to_install_and_local_still_runs(tmp_path,
                                                                        monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    path = write_run_file(tmp_path / "run.toml")
    sets = [parse_set("pipeline.frame_hz=60")]
    with pytest.raises(MissingDependency, match=r"--local.*vrshare\[sweep\]"):
        sweep(path, sets, tmp_path / "ray", Placement(), frames=3, target="none")
    assert not (tmp_path / "ray").exists()  # said before anything is written
    code = main(["sweep", str(path), "--set", "pipeline.frame_hz=60", "--frames", "3",
                 "--target", "none", "--out", str(tmp_path / "cli")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'vrshare[sweep]'" in err and "--local" in err
    both = ["--local", "--address", "auto"]
    assert main(["sweep", str(path), "--set", "pipeline.frame_hz=60", *both, "--out",
                 str(tmp_path / "both")]) == 2
    assert "give one of them" in capsys.readouterr().err
    done = sweep(path, sets, tmp_path / "local", LOCAL, frames=3, target="none")
    assert [r.status for r in done.rows] == ["ok"]
