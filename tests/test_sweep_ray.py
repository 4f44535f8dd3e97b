"""vrshare sweep on a local Ray instance with 2 CPUs: a 2 x 2 sweep whose merged rows
agree with single bench runs of the same settings (on the virtual clock: frame counts,
stage lists, counters, the bank, every frame's display time; not timings), then
resumed with nothing left to run."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sweepkit import small_table, write_run_file

from vrshare.bench import bench
from vrshare.sweep import Placement, parse_set, sweep

pytest.importorskip("ray")

RAY = Placement(num_cpus=2)
FRAMES = 12


def _per_run(results: dict) -> dict:
    """What must agree between two runs of the same settings on the virtual clock."""
    return {
        "frames": results["frames"],
        "budget_ms": results["budget_ms"],
        "tracks": [s["name"] for s in results["summary"]],
        "counters": results["counters"],
        "index": results["per_frame"]["index"],
        "t_display_s": results["per_frame"]["t_display_s"],
        "bytes_held": results["bank"]["bytes_held"],
        "faults": results["faults"],
    }


def test_a_2x2_sweep_on_ray_matches_single_bench_runs_and_resumes(tmp_path):
    path = write_run_file(tmp_path / "run.toml")
    sets = [parse_set("pipeline.frame_hz=60,90"), parse_set("display.width=32,48")]
    out = tmp_path / "out"
    done = sweep(path, sets, out, RAY, frames=FRAMES, clock="virtual")
    assert done.ran == 4 and [r.status for r in done.rows] == ["ok"] * 4, \
        [r.error for r in done.rows]
    assert [r.settings for r in done.rows] == [
        {"pipeline.frame_hz": hz, "display.width": w} for hz in (60, 90) for w in (32, 48)]
    assert len({r.id for r in done.rows}) == 4
    pids = {r.pid for r in done.rows}  # a process of its own for each run
    assert len(pids) == 4 and os.getpid() not in pids

    for row in done.rows:
        table = small_table()
        table["pipeline"]["frame_hz"] = float(row.settings["pipeline.frame_hz"])
        table["display"]["width"] = row.settings["display.width"]
        single = write_run_file(tmp_path / f"single_{row.id}.toml", table)
        bench(single, FRAMES, tmp_path / f"single_{row.id}.json", clock="virtual",
              trace=False, plot_png=False)
        alone = json.loads((tmp_path / f"single_{row.id}.json").read_text())
        swept = json.loads((out / "runs" / f"{row.id}.results.json").read_text())
        assert _per_run(swept) == _per_run(alone)
        assert row.frames == FRAMES and row.deadline_misses == swept["deadline_misses"]
        assert set(row.stage_median_ms) == {s["name"] for s in alone["summary"][1:]}
        assert row.frame_ms["median"] == pytest.approx(swept["summary"][0]["median_ms"])
        assert row.host and row.duration_s > 0
    assert (out / "sweep.png").stat().st_size > 0

    again = sweep(path, sets, out, Placement(local=True), frames=FRAMES, clock="virtual")
    assert again.ran == 0 and again.rows == done.rows


@pytest.mark.slow
def test_a_larger_sweep_with_repeats_packs_two_cpus_per_run(tmp_path):
    path = write_run_file(tmp_path / "run.toml")
    sets = [parse_set("display.width=32,48,64"),
            parse_set("stage.tracking.settings.predictor=none,constant_velocity")]
    done = sweep(path, sets, tmp_path / "out", Placement(num_cpus=2, cpus_per_run=2),
                 repeat=2, frames=30)
    assert len(done.rows) == 12 and all(r.ok for r in done.rows), [r.error for r in done.rows]
    assert all(r.frames == 30 for r in done.rows)
    assert len({r.pid for r in done.rows}) == 12
    assert [r.repeat for r in done.rows[:4]] == [0, 1, 0, 1]


def test_a_render_split_across_ray_tasks_matches_one_local_chunk(tmp_path):
    from PIL import Image

    from vrshare.stages.tracking.synthetic import synthetic_trace
    from vrshare.stages.tracking.trace import write_trace
    from vrshare.sweep.render import render

    path = write_run_file(tmp_path / "run.toml")
    trace = write_trace(tmp_path / "head.csv", synthetic_trace(seed=1, duration_s=0.1,
                                                               rate_hz=90.0))
    on_ray = render(path, trace, tmp_path / "ray", RAY, chunk=3)
    here = render(path, trace, tmp_path / "here", Placement(local=True), chunk=100)
    assert on_ray.frames == here.frames > 6 and not on_ray.failed  # 3 chunks or more
    for k in range(here.frames):
        name = f"frames/frame_{k:06d}.png"
        a = np.asarray(Image.open(tmp_path / "ray" / name))
        np.testing.assert_array_equal(a, np.asarray(Image.open(tmp_path / "here" / name)))
    assert (tmp_path / "ray" / "cameras.json").read_text() == \
        (tmp_path / "here" / "cameras.json").read_text()
