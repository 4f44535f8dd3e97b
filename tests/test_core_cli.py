import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from vrshare.cli import main

TESTS = Path(__file__).parent
ROOT = TESTS.parent
COUNTER = TESTS / "data" / "counter.toml"


def test_stages_lists_builtins(capsys):
    assert main(["stages"]) == 0
    out = capsys.readouterr().out
    for name in ("tracking", "scene_filter", "audio"):
        assert name in out


def test_info_reports_backend_gl_openxr_audio(capsys):
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["array"]["backend"] == "numpy"
    assert set(data) >= {"gl", "openxr", "audio", "compiled"}
    assert isinstance(data["openxr"]["available"], bool)
    try:
        import numba
    except ImportError:
        assert not data["compiled"]["available"] and "vrshare[fast]" in data["compiled"]["error"]
    else:
        assert data["compiled"] == {"available": True, "numba": numba.__version__}
    from vrshare.targets import TargetError
    from vrshare.targets.headless import standalone_context

    try:  # what info says must be what a target finds
        ctx = standalone_context()
    except TargetError:
        assert not data["gl"]["available"] and data["gl"]["error"]
    else:
        try:
            assert data["gl"]["available"]
            assert data["gl"]["version"] == ctx.info["GL_VERSION"]
            assert data["gl"]["renderer"] == ctx.info["GL_RENDERER"]
        finally:
            ctx.release()


def test_run_prints_the_summary(capsys):
    assert main(["run", str(COUNTER), "--target", "none", "--frames", "30"]) == 0
    out = capsys.readouterr().out
    assert "counter" in out and "nap" in out and "30 frames" in out


def test_bench_writes_json_trace_and_plot(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["bench", str(COUNTER), "--target", "none", "--frames", "40",
                 "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["frames"] == 40
    assert len(data["per_frame"]["frame_ms"]) == 40 and len(data["per_frame"]["nap"]) == 40
    summary = {row["name"]: row for row in data["summary"]}
    assert set(summary) == {"frame", "counter", "nap"}
    assert summary["nap"]["median_ms"] >= 0.5  # it sleeps 0.5 ms per frame
    assert "transfers_per_frame" in data["bank"]
    assert data["counters"] == {"counter": {"steps": 40}}
    trace = json.loads(out.with_suffix(".trace.json").read_text())
    assert {e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M"} == \
        {"frame", "counter", "nap"}
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "p99.9" in capsys.readouterr().out


def test_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[stage]]\ntype = 'warp_drive'\n")
    assert main(["run", str(bad), "--target", "none", "--frames", "1"]) == 2
    assert "unknown stage type 'warp_drive'" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.toml"), "--target", "none"]) == 2
    assert "missing.toml: file not found" in capsys.readouterr().err


def test_ctrl_c_ends_a_bench_cleanly_and_still_writes_results(tmp_path):
    out = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vrshare.cli", "bench", str(COUNTER), "--target", "none",
         "--frames", "10000000", "--out", str(out)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)  # imports + a few thousand frames
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr  # 128 + SIGINT
    data = json.loads(out.read_text())
    assert data["interrupted"] and 0 < data["frames"] < 10000000
    assert "interrupted" in stdout


def test_wheel_ships_shaders_and_scenes(tmp_path):
    """A non-editable install must find the GLSL and scene files inside the package."""
    pytest.importorskip("hatchling")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True)
    [wheel] = tmp_path.glob("vrshare-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"vrshare/{p.relative_to(ROOT).as_posix()}"
                for folder in ("shaders", "scenes") for p in (ROOT / folder).rglob("*")
                if p.is_file()}
    assert expected, "no shaders or scenes found in the source tree"
    assert expected <= names, sorted(expected - names)[:5]
    assert "vrshare/resources.py" in names


@pytest.mark.parametrize("args", [["--seconds", "nan"], ["--seconds", "-1"], ["--seconds", "0"],
                                  ["--frames", "0"], ["--frames", "-5"]])
def test_run_lengths_must_be_positive(args, capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", str(COUNTER), "--target", "none", *args])
    assert done.value.code == 2
    assert args[0] in capsys.readouterr().err
