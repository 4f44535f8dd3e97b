"""How runs end: results kept on every ending, exit codes, WAV and video finalised,
leaked plug-in threads, faults in close, and the watchdog's hang reports through the
command.

The command runs in a child process (``python -m vrshare.cli``) with a plug-in stage
(``endkit:Marker``, written to tmp_path) that touches a file when its frame starts,
so that a signal is sent once frames are running rather than after a blind sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from glkit import gl_ctx  # noqa: F401  (fixture: skips without headless GL)

from vrshare import VirtualClock, WeightBank
from vrshare.cli import main
from vrshare.pipeline import FrameLoop, Pipeline, StageConfig
from vrshare.report import write_atomic

TESTS = Path(__file__).parent
COUNTER = TESTS / "data" / "counter.toml"
GUARD_S = 60.0  # generous: only a hang guard, never a timing assertion

ENDKIT = '''
"""Plug-in stages for tests of how runs end."""
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vrshare import Stage


@dataclass
class MarkerSettings:
    marker: str = ""  # touched when frame ``at`` starts
    at: int = 0
    action: str = ""  # "", hang, exit, raise, thread, close_fault, close_wait


class Marker(Stage):
    name = "marker"
    writes = ("marked",)
    Settings = MarkerSettings

    def setup(self, bank, config):
        self.out = bank.state("marked", (1,))

    def process(self, frame, bank):
        s = self.settings
        if frame.index == s.at:
            if s.action == "thread":
                threading.Thread(target=threading.Event().wait, name="plugin-forever").start()
            if s.marker:
                Path(s.marker).touch()
            if s.action == "hang":
                while True:
                    time.sleep(0.05)
            if s.action == "exit":
                raise SystemExit(3)
            if s.action == "raise":
                raise RuntimeError("marker failed on purpose")
        self.out[0] = frame.index

    def close(self):
        s = self.settings
        if s.action == "close_fault":
            raise OSError("marker could not close on purpose")
        if s.action == "close_wait":
            Path(s.marker + ".closing").touch()
            time.sleep(1.0)
'''


def write_plugin(tmp_path: Path) -> None:
    (tmp_path / "endkit.py").write_text(ENDKIT)


def marker_file(tmp_path: Path, at: int = 5, action: str = "", budget_ms: float | None = None,
                name: str = "run.toml", mode: str = "sync") -> Path:
    """The counter pipeline (tests/data/counter.toml) plus the marker stage."""
    write_plugin(tmp_path)
    budget = f"budget_ms = {budget_ms}\n" if budget_ms is not None else ""
    path = tmp_path / name
    path.write_text(COUNTER.read_text() + textwrap.dedent(f"""
        [[stage]]
        type = "endkit:Marker"
        mode = "{mode}"
        {budget}[stage.settings]
        marker = "{tmp_path / 'started'}"
        at = {at}
        action = "{action}"
    """))
    return path


def av_file(tmp_path: Path, at: int = 5) -> Path:
    """A displayed run: a cube, a tone into a WAV, a video capture and the marker."""
    write_plugin(tmp_path)
    path = tmp_path / "av.toml"
    path.write_text(textwrap.dedent(f"""
        [pipeline]
        frame_hz = 30.0
        clock = "virtual"
        [[stage]]
        type = "tracking"
        [stage.settings]
        source = "synthetic"
        [[stage]]
        type = "scene_motion"
        [[stage]]
        type = "passthrough"
        [[stage]]
        type = "audio"
        [stage.settings]
        output = "wav"
        wav = "media/sound.wav"
        [[stage.settings.sources]]
        name = "bell"
        signal = "tone"
        [[stage]]
        type = "endkit:Marker"
        [stage.settings]
        marker = "{tmp_path / 'started'}"
        at = {at}
        [display]
        width = 32
        height = 24
        capture = "video"
        capture_dir = "media"
        [scene]
        [[scene.primitive]]
        name = "cube"
        shape = "box"
        [[scene.object]]
        mesh = "cube"
        position = [0.0, 0.0, -3.0]
    """))
    return path


class Child:
    """``python -m vrshare.cli ARGS`` (or a script) with stdout and stderr in files."""

    def __init__(self, tmp_path: Path, args: list[str], script: str | None = None) -> None:
        self.out, self.err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(TESTS)])}
        cmd = [sys.executable, "-c", script, *args] if script else \
            [sys.executable, "-m", "vrshare.cli", *args]
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=tmp_path)

    def wait_for(self, check, what: str) -> None:
        deadline = time.monotonic() + GUARD_S
        while not check():
            if self.proc.poll() is not None:
                pytest.fail(f"exited ({self.proc.returncode}) before {what}:\n{self.stderr}")
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"no {what} within {GUARD_S} s:\n{self.stderr}")
            time.sleep(0.02)

    def wait_for_file(self, path: Path) -> None:
        self.wait_for(path.exists, path.name)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self) -> int:
        try:
            return self.proc.wait(timeout=GUARD_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"did not exit within {GUARD_S} s:\n{self.stderr}")

    @property
    def stdout(self) -> str:
        return self.out.read_text()

    @property
    def stderr(self) -> str:
        return self.err.read_text()


def results(out: Path) -> dict:
    """The JSON, trace and plot all there and whole; no temporary files left behind."""
    data = json.loads(out.read_text())
    assert len(data["per_frame"]["index"]) == data["frames"]
    json.loads(out.with_suffix(".trace.json").read_text())
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")]
    return data


def bench(tmp_path: Path, run_file: Path, frames: int = 10_000_000, target: str = "none",
          out: Path | None = None) -> tuple[Child, Path]:
    out = out or tmp_path / "res" / "r.json"
    return Child(tmp_path, ["bench", str(run_file), "--target", target, "--frames", str(frames),
                            "--out", str(out)]), out


# -- signals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_the_bench_in_order_with_its_results(tmp_path, sig, code):
    child, out = bench(tmp_path, marker_file(tmp_path))
    child.wait_for_file(tmp_path / "started")
    child.signal(sig)
    assert child.finish() == code, child.stderr
    data = results(out)
    assert data["interrupted"] and data["ending"] == signal.Signals(sig).name
    assert data["frames"] >= 5 and data["counters"]["counter"]["steps"] >= 5
    assert "Traceback" not in child.stderr
    assert f"interrupted ({signal.Signals(sig).name})" in child.stdout


@pytest.mark.parametrize("mode", ["async", "process"])
def test_ctrl_c_ends_a_run_whose_off_loop_stage_hangs_with_its_results(tmp_path, mode):
    child, out = bench(tmp_path, marker_file(tmp_path, action="hang", mode=mode))
    child.wait_for_file(tmp_path / "started")  # touched by the worker, which then hangs
    child.signal(signal.SIGINT)
    assert child.finish() == 130, child.stderr
    data = results(out)
    assert data["ending"] == "SIGINT" and data["counters"]["counter"]["steps"] >= 5
    assert data["cadence"]["marker"]["mode"] == mode
    assert "still" in child.stderr and "Traceback" not in child.stderr


def test_a_second_ctrl_c_while_finishing_does_not_cut_it_short(tmp_path):
    child, out = bench(tmp_path, marker_file(tmp_path, action="close_wait"))
    child.wait_for_file(tmp_path / "started")
    child.signal(signal.SIGINT)
    child.wait_for_file(tmp_path / "started.closing")  # the results are written, closing now
    child.signal(signal.SIGINT)
    assert child.finish() == 130, child.stderr
    assert "finishing first" in child.stderr and "Traceback" not in child.stderr
    data = results(out)
    assert data["interrupted"] and data["frames"] >= 5
    assert "0 stage faults" in child.stdout  # the summary came after closing


def test_two_quick_ctrl_c_still_leave_whole_results(tmp_path):
    child, out = bench(tmp_path, marker_file(tmp_path))
    child.wait_for_file(tmp_path / "started")
    child.signal(signal.SIGINT)
    time.sleep(0.05)  # lands while the run finishes (writing the plot takes longer)
    child.signal(signal.SIGINT)
    assert child.finish() == 130, child.stderr
    assert results(out)["frames"] >= 5


def test_sigterm_finalises_the_wav_and_the_video(tmp_path, gl_ctx):  # noqa: F811
    soundfile = pytest.importorskip("soundfile")
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    child, out = bench(tmp_path, av_file(tmp_path), target="headless")
    child.wait_for_file(tmp_path / "started")
    child.signal(signal.SIGTERM)
    assert child.finish() == 143, child.stderr
    data = results(out)
    assert data["ending"] == "SIGTERM" and data["frames"] >= 5
    audio, rate = soundfile.read(tmp_path / "media" / "sound.wav")
    assert rate == 48000 and audio.shape[1] == 2 and len(audio) > 0
    assert np.isfinite(audio).all()
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "media" / "frames.mp4"))
    meta = next(reader)
    assert meta["size"] == (64, 24)
    assert sum(1 for _ in reader) == data["counters"]["headless target"]["captured"] >= 5


@pytest.mark.slow
def test_sigterm_during_the_headless_demo_keeps_its_results_and_video(tmp_path, gl_ctx):  # noqa: F811
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    folder = tmp_path / "demo"
    child = Child(tmp_path, ["demo", "--target", "headless", "--seconds", "1000",
                             "--out", str(folder)])
    video = folder / "frames.mp4"
    child.wait_for(lambda: video.exists() and video.stat().st_size > 0, "video")
    child.signal(signal.SIGTERM)
    assert child.finish() == 143, child.stderr
    data = results(folder / "results.json")
    assert data["ending"] == "SIGTERM" and data["frames"] > 0
    reader = imageio_ffmpeg.read_frames(str(video))
    next(reader)
    assert sum(1 for _ in reader) > 0
    assert (folder / "contact_sheet.png").is_file()


# -- endings from inside the run -------------------------------------------------------------


def test_a_plugin_raising_system_exit_ends_the_run_and_keeps_it(tmp_path):
    child, out = bench(tmp_path, marker_file(tmp_path, at=5, action="exit"))
    assert child.finish() == 1, child.stderr
    data = results(out)
    assert data["frames"] == 5 and data["ending"] == "SystemExit" and not data["interrupted"]
    [fault] = data["faults"]
    assert fault["stage"] == "marker" and fault["frame"] == 5 and fault["phase"] == "exit"
    assert "SystemExit" in child.stdout


RAISING_SUBMIT = """
import sys
from vrshare.cli import main
from vrshare.targets import headless

submit = headless.HeadlessTarget.submit

def failing(self, frame):
    if frame.index == 5:
        raise RuntimeError("the display path broke on purpose")
    submit(self, frame)

headless.HeadlessTarget.submit = failing
sys.exit(main(sys.argv[1:]))
"""


def test_a_raising_step_ends_the_run_and_its_frames_are_kept(tmp_path, gl_ctx):  # noqa: F811
    out = tmp_path / "r.json"
    child = Child(tmp_path, ["bench", str(av_file(tmp_path, at=1000)), "--target", "headless",
                             "--frames", "50", "--out", str(out)], script=RAISING_SUBMIT)
    assert child.finish() == 1, child.stderr
    data = results(out)
    assert data["frames"] == 5 and data["ending"] == "error"
    [fault] = data["faults"]
    assert fault["stage"] == "submit" and fault["phase"] == "step" and fault["frame"] == 5
    assert "broke on purpose" in child.stderr
    assert "'submit' raised in frame 5 and ended the run" in child.stdout


def test_an_unwritable_out_fails_before_the_first_frame(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    path = marker_file(tmp_path, at=0)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad = blocker / "res" / "r.json"
    assert main(["bench", str(path), "--target", "none", "--frames", "5", "--out", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / "started").exists()  # no frame ran
    folder = tmp_path / "folder"
    folder.mkdir()
    assert main(["bench", str(path), "--target", "none", "--frames", "5",
                 "--out", str(folder)]) == 2
    assert f"{folder}: it is a folder" in capsys.readouterr().err
    assert main(["demo", "--target", "headless", "--out", str(blocker / "demo")]) == 2
    assert str(blocker / "demo") in capsys.readouterr().err


def test_the_command_exits_despite_a_leaked_plugin_thread(tmp_path):
    child, out = bench(tmp_path, marker_file(tmp_path, at=0, action="thread"), frames=20)
    assert child.finish() == 0, child.stderr
    assert "'plugin-forever'" in child.stderr and "still running" in child.stderr
    assert results(out)["frames"] == 20


def test_a_fault_in_close_is_in_the_summary_the_results_and_the_exit_code(tmp_path):
    child, out = bench(tmp_path, marker_file(tmp_path, action="close_fault"), frames=20)
    assert child.finish() == 1, child.stderr
    assert "0 stage faults" not in child.stdout and "1 stage faults" in child.stdout
    assert "'marker' failed in close: OSError: marker could not close" in child.stdout
    [fault] = results(out)["faults"]
    assert fault["phase"] == "close" and fault["stage"] == "marker"


# -- the watchdog through the command ----------------------------------------------------------


def test_ctrl_c_while_a_stage_hangs_reports_the_hang_with_its_stack(tmp_path):
    # budget 10 ms: the watchdog's limit is 10 budgets, 0.1 s
    child, out = bench(tmp_path, marker_file(tmp_path, at=3, action="hang", budget_ms=10))
    child.wait_for(lambda: "has not returned" in child.stderr, "hang report")
    child.signal(signal.SIGINT)
    assert child.finish() == 130, child.stderr
    data = results(out)
    assert data["frames"] == 3  # frames 0-2 completed; frame 3 never did
    [hang] = data["hangs"]
    assert hang["stage"] == "marker" and hang["frame"] == 3 and hang["returned"] is False
    assert hang["limit_s"] == pytest.approx(0.1) and hang["seconds"] > hang["limit_s"]
    assert "endkit.py" in hang["stack"] and "in process" in hang["stack"]
    assert data["interrupted_in"]["stage"] == "marker"
    assert "watchdog: 'marker' hung in frame 3: had not returned" in child.stdout
    assert "stage 'marker' has not returned" in child.stderr and "endkit.py" in child.stderr


# -- in process: the loop's part -------------------------------------------------------------


def loop_of(stages, steps=(), **kw) -> FrameLoop:
    bank = WeightBank()
    pipe = Pipeline(stages)
    pipe.setup(bank, StageConfig(None))
    return FrameLoop(pipe, bank, VirtualClock(90), steps, **kw)


def test_a_raising_step_is_recorded_then_raised():
    from stagekit import make

    def boom(frame, bank):
        if frame.index == 4:
            raise ValueError("no display")

    loop = loop_of([make("a", writes=("a",))], [("submit", boom)])
    with pytest.raises(ValueError, match="no display"):
        loop.run(10)
    stats = loop.stats
    assert stats.frames == 4 and stats.ending == "error" and "no display" in stats.ending_detail
    [fault] = stats.faults
    assert (fault.stage, fault.frame, fault.phase) == ("submit", 4, "step")
    assert loop.watchdog.t0 < 0  # idle again


def test_system_exit_in_a_stage_ends_the_run_without_escaping():
    from stagekit import make

    loop = loop_of([make("a", writes=("a",)),
                    make("quits", reads=("a",), writes=("q",), raise_at=6, exc=SystemExit)])
    stats = loop.run(100)
    assert stats.frames == 6 and stats.ending == "SystemExit" and not stats.interrupted
    [fault] = stats.faults
    assert (fault.stage, fault.frame, fault.phase) == ("quits", 6, "exit")
    assert stats.as_dict()["ending"] == "SystemExit"


def test_results_are_replaced_whole_or_not_at_all(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"old": true}')

    def half(tmp: Path) -> None:
        tmp.write_text('{"new": ')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, half)
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    write_atomic(path, lambda tmp: tmp.write_text('{"new": 1}'))
    assert json.loads(path.read_text()) == {"new": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_capture_folder_that_goes_away_mid_run_stops_capture_not_the_run(
        tmp_path, gl_ctx, caplog):  # noqa: F811
    import shutil

    from test_render_targets import PASS, run_file

    from vrshare import display

    shots = tmp_path / "shots"
    with display.open_display(run_file(tmp_path, PASS), target="headless", capture="png",
                              capture_dir=str(shots)) as run:
        run.loop.run(2)
        shutil.rmtree(shots)
        shots.write_text("a file where the folder was")
        stats = run.loop.run(3)
    assert stats.frames == 5 and not stats.faults
    assert stats.counters["headless target"] == {"captured": 2, "capture errors": 1}
    assert "capturing stops, the run goes on" in caplog.text
