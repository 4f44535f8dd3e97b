"""Display targets: the contract, target choice, headless capture through the display
path, the desktop head, and the window target under Xvfb (skipped without it)."""

from __future__ import annotations

import importlib.util
import inspect
import math
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from glkit import gl_ctx  # noqa: F401  (fixture)

from vrshare import demo, display
from vrshare.config import ConfigError
from vrshare.geometry import quat
from vrshare.render import RenderError
from vrshare.targets import TARGET_NAMES, Capabilities, Target, TargetError, choice, load
from vrshare.targets.window import DesktopHead, letterbox


def available_targets() -> list[str]:
    return [n for n in TARGET_NAMES if importlib.util.find_spec(f"vrshare.targets.{n}")]


@pytest.mark.parametrize("name", available_targets())
def test_every_target_implements_the_contract(name):
    cls = load(name)
    assert issubclass(cls, Target) and cls.name == name
    assert not inspect.isabstract(cls), f"{cls.__name__} leaves abstract methods"
    assert isinstance(cls.capabilities, Capabilities)
    params = inspect.signature(cls).parameters
    assert "settings" in params and params["frame_hz"].kind is inspect.Parameter.KEYWORD_ONLY
    for method in ("declare", "clock", "poll", "surfaces", "submit", "close", "capture"):
        assert callable(getattr(cls, method))
    if cls.capabilities.input:
        assert cls.sources, "a target with input must name the buffers it writes"
    if cls.capabilities.capture:
        assert cls.capture is not Target.capture
    if cls.capabilities.controllers and name != "headless":  # headless: with a track only
        from vrshare.targets.controls import ControllerInput

        assert set(ControllerInput.sources) <= set(cls.sources)


def test_target_choice_order_and_reasons(monkeypatch):
    monkeypatch.setattr(choice, "openxr_unavailable", lambda: "no runtime")
    monkeypatch.setattr(choice, "window_unavailable", lambda: "no display")
    monkeypatch.delenv(choice.ENV_VAR, raising=False)
    assert choice.choose_target("auto", "auto") == ("headless",
                                                     "automatic: no runtime; no display")
    assert choice.choose_target("auto", "window")[0] == "window"  # the file's choice
    monkeypatch.setenv(choice.ENV_VAR, "headless")
    assert choice.choose_target("auto", "window") == ("headless", "$VRSHARE_TARGET")
    assert choice.choose_target("window", "auto") == ("window", "requested")
    monkeypatch.setenv(choice.ENV_VAR, "hologram")
    with pytest.raises(ConfigError, match="unknown target 'hologram'"):
        choice.choose_target()
    monkeypatch.delenv(choice.ENV_VAR)
    monkeypatch.setattr(choice, "window_unavailable", lambda: None)
    assert choice.choose_target()[0] == "window"
    monkeypatch.setattr(choice, "openxr_unavailable", lambda: None)
    assert choice.choose_target()[0] == "openxr"


@pytest.mark.filterwarnings("ignore")  # GLFW also warns about its failed initialisation
def test_without_a_display_auto_avoids_the_window_and_asking_for_it_fails(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv(choice.ENV_VAR, raising=False)
    monkeypatch.setattr(choice, "openxr_unavailable", lambda: "no runtime")
    assert "no display" in choice.window_unavailable()
    assert choice.choose_target()[0] == "headless"
    with pytest.raises(TargetError, match="cannot open a window"):
        load("window")(frame_hz=90.0)


def run_file(tmp_path: Path, stages: str = "", display_table: str = "") -> Path:
    """A run file: a cube in front of a fixed camera, drawn through passthrough."""
    path = tmp_path / "run.toml"
    path.write_text(textwrap.dedent(f"""
        [pipeline]
        frame_hz = 30.0
        clock = "virtual"
        [[stage]]
        type = "vrshare.testing:FixedEyes"
        [[stage]]
        type = "scene_motion"
        {stages}
        [display]
        width = 32
        height = 24
        {display_table}
        [scene]
        [[scene.primitive]]
        name = "cube"
        shape = "box"
        [[scene.object]]
        mesh = "cube"
        position = [0.0, 0.0, -3.0]
        motion = {{ spin_deg_s = 90.0 }}
    """))
    return path


PASS = '[[stage]]\ntype = "passthrough"'


@pytest.mark.parametrize("mode", ["numpy", "png", "video"])
def test_headless_capture_every_nth_frame(gl_ctx, tmp_path, mode):
    out = tmp_path / "capture"
    path = run_file(tmp_path, PASS)
    with display.open_display(path, target="headless", capture=mode, capture_every=2,
                              capture_dir=str(out)) as run:
        stats = run.loop.run(5)
        target = run.target
        frames = list(target.frames)
    assert stats.frames == 5 and not stats.faults
    if mode == "numpy":
        assert [i for i, _ in frames] == [0, 2, 4]
        image = frames[0][1]
        assert image.shape == (24, 64, 4) and image.dtype == np.uint8
        assert (image[12, 16, :3] > 60).all() and (image[12, 48, :3] > 60).all()  # cube, both eyes
        assert not np.array_equal(frames[0][1], frames[2][1])  # it spins
    elif mode == "png":
        assert sorted(p.name for p in out.iterdir()) == [
            "frame_000000.png", "frame_000002.png", "frame_000004.png"]
    else:
        import imageio_ffmpeg

        reader = imageio_ffmpeg.read_frames(str(out / "frames.mp4"))
        meta = next(reader)
        assert meta["size"] == (64, 24) and sum(1 for _ in reader) == 3
    # GPU pass times from the timer queries are in the frame stats
    i = stats.tracks.index("gpu left")
    times = stats.dur[: stats.frames, i]
    assert np.isfinite(times).sum() == 5 and (times > 0).all()


def test_a_capture_folder_in_the_run_file_is_relative_to_it(gl_ctx, tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    folder.mkdir()
    path = run_file(folder, PASS, 'capture = "png"\ncapture_dir = "shots"')
    monkeypatch.chdir(tmp_path)
    with display.open_display(path, target="headless") as run:
        run.loop.run(2)
    assert sorted(p.name for p in (folder / "shots").iterdir()) == [
        "frame_000000.png", "frame_000001.png"]
    assert not (tmp_path / "shots").exists()


def test_closing_a_run_closes_its_renderer_then_its_target_once(gl_ctx, tmp_path, monkeypatch):
    run = display.open_display(run_file(tmp_path, PASS), target="headless")
    closed = []
    for name in ("target", "renderer"):
        part = getattr(run, name)

        def close(name=name, close=part.close):
            closed.append(name)
            close()

        monkeypatch.setattr(part, "close", close)
    run.close()
    run.close()
    assert closed == ["renderer", "target"] and run.target is None and run.renderer is None


def test_display_errors_name_the_problem(gl_ctx, tmp_path):
    with pytest.raises(RenderError, match="'instances' .*add a 'passthrough' or 'scene_filter'"):
        display.open_display(run_file(tmp_path), target="headless")
    with pytest.raises(ConfigError, match=r"run.toml \[display\]: unknown key 'fps'"):
        display.open_display(run_file(tmp_path, PASS, "fps = 60"), target="headless")
    with pytest.raises(ConfigError, match=r"\[display\].*capture_every must be >= 1"):
        display.open_display(run_file(tmp_path, PASS, "capture_every = 0"), target="headless")


# -- the window target's desktop head ----------------------------------------------------------


def test_desktop_head_turns_and_walks():
    head = DesktopHead(position=(0.0, 1.6, 0.0))
    head.look(-math.pi / 2 / 0.004, 0.0)  # drag left by a quarter turn: yaw +90 deg
    head.move(forward=1.0, right=0.0, up=0.0, dt=1.0)  # now facing -X
    np.testing.assert_allclose(head.position, [-1.4, 1.6, 0.0], atol=1e-9)
    head.move(forward=0.0, right=1.0, up=1.0, dt=0.5)  # right of -X is -Z
    np.testing.assert_allclose(head.position, [-1.4, 2.3, -0.7], atol=1e-9)
    head.look(0.0, -1e6)  # pitch clamps below straight up
    pose = head.pose()
    q_yaw = np.array([0.0, math.sin(math.pi / 4), 0.0, math.cos(math.pi / 4)])
    half = math.radians(89.0) / 2
    q_pitch = np.array([math.sin(half), 0.0, 0.0, math.cos(half)])
    np.testing.assert_allclose(pose[3:], quat.multiply(q_yaw, q_pitch), atol=1e-9)
    head.reset()
    np.testing.assert_allclose(head.pose(), [0, 1.6, 0, 0, 0, 0, 1])


def test_letterbox_keeps_the_eye_aspect():
    assert letterbox(1024, 512, 2, 1.0) == [(0, 0, 512, 512), (512, 0, 512, 512)]
    assert letterbox(1000, 300, 2, 1.0) == [(100, 0, 300, 300), (600, 0, 300, 300)]
    assert letterbox(400, 600, 1, 1.0) == [(0, 100, 400, 400)]


# -- the window target under Xvfb --------------------------------------------------------------

WINDOW_SCRIPT = """
import glfw, numpy as np, sys
from vrshare import display
from vrshare.targets import TargetClosed
run = display.open_display(sys.argv[1], target="window", clock="virtual", vsync=False,
                           capture="numpy")
target, renderer = run.target, run.renderer
stats = run.loop.run(2)
both = target.capture().copy()
glfw.set_window_size(target.window, 200, 50)          # resize: letterboxed eyes
for _ in range(20):
    glfw.poll_events()
    if glfw.get_framebuffer_size(target.window) == [200, 50] or \\
            tuple(glfw.get_framebuffer_size(target.window)) == (200, 50):
        break
run.loop.run(1)
small = target.capture().copy()
target._on_key(target.window, glfw.KEY_TAB, 0, glfw.PRESS, 0)  # one eye
run.loop.run(1)
one = target.capture().copy()
target._on_key(target.window, glfw.KEY_ESCAPE, 0, glfw.PRESS, 0)
stats = run.loop.run(10)                               # ends at once: closed
run.close()
np.savez(sys.argv[2], both=both, small=small, one=one, frames=stats.frames,
         interrupted=stats.interrupted)
"""


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_window_target_under_xvfb(tmp_path):
    display_number = 90 + os.getpid() % 500
    server = subprocess.Popen(["Xvfb", f":{display_number}", "-screen", "0", "640x480x24"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        env = {**os.environ, "DISPLAY": f":{display_number}"}
        path = run_file(tmp_path, PASS)
        (tmp_path / "window.py").write_text(WINDOW_SCRIPT)
        result = subprocess.run([sys.executable, str(tmp_path / "window.py"), str(path),
                                 str(tmp_path / "out.npz")], env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        server.terminate()
        server.wait()
    out = np.load(tmp_path / "out.npz")
    assert out["both"].shape == (24, 64, 4)
    assert (out["both"][12, 16, :3] > 60).all() and (out["both"][12, 48, :3] > 60).all()
    small = out["small"]  # 200 x 50 window: two 66 x 50 eyes (aspect 4:3) in 100 px columns
    assert small.shape == (50, 200, 4)
    assert (small[:, :10, :3] == 0).all()  # the letterbox bar left of the left eye
    assert (small[25, 50, :3] > 60).all() and (small[25, 150, :3] > 60).all()
    one = out["one"]  # Tab: the left eye alone, centred
    assert (one[25, 100, :3] > 60).all() and (one[25, 150, :3] == 0).all()
    assert int(out["frames"]) == 4 and bool(out["interrupted"])  # Esc: the last run drew none


def test_cli_runs_a_scene_without_a_display(tmp_path):
    from vrshare.cli import main

    assert main(["run", str(run_file(tmp_path, PASS)), "--target", "none", "--frames", "3"]) == 0


def test_cli_reports_an_unavailable_window_plainly(tmp_path, monkeypatch, capsys):
    from vrshare.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.warns(Warning):  # GLFW's own warning about its failed initialisation
        code = main(["run", str(run_file(tmp_path, PASS)), "--target", "window", "--frames", "1"])
    assert code == 2 and "cannot open a window" in capsys.readouterr().err


@pytest.mark.slow
def test_headless_demo_writes_video_contact_sheet_and_results(gl_ctx, tmp_path, monkeypatch):
    monkeypatch.delenv(choice.ENV_VAR, raising=False)
    assert demo.run_demo(target="headless", seconds=0.4, out_dir=tmp_path) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"frames.mp4", "contact_sheet.png", "results.json", "results.trace.json"} <= names
    from PIL import Image

    sheet = Image.open(tmp_path / "contact_sheet.png")
    assert sheet.width == 2 * 512 and sheet.height % 512 == 0 and sheet.height >= 512 * 2


def test_eyes_that_tile_their_framebuffer_clear_it_once():
    from types import SimpleNamespace

    from vrshare.render.surfaces import clear_modes
    from vrshare.targets.base import EyeSurface

    wide, window, left, right = (SimpleNamespace(size=s) for s in
                                 ((200, 100), (300, 100), (100, 100), (100, 100)))
    side_by_side = [EyeSurface(0, wide, (0, 0, 100, 100)), EyeSurface(1, wide, (100, 0, 100, 100))]
    assert clear_modes(side_by_side) == ["full", "none"]
    letterboxed = [EyeSurface(0, window, (50, 0, 100, 100)),
                   EyeSurface(1, window, (150, 0, 100, 100))]
    assert clear_modes(letterboxed) == ["viewport", "viewport"]  # the bars are not the scene's
    overlapping = [EyeSurface(0, wide, (0, 0, 150, 100)), EyeSurface(1, wide, (50, 0, 50, 100))]
    assert clear_modes(overlapping) == ["viewport", "viewport"]
    mixed = [EyeSurface(0, wide, (0, 0, 100, 100)),
             EyeSurface(1, wide, (100, 0, 100, 100), encode_srgb=False)]
    assert clear_modes(mixed) == ["viewport", "viewport"]
    swapchains = [EyeSurface(0, left, (0, 0, 100, 100)), EyeSurface(1, right, (0, 0, 100, 100))]
    assert clear_modes(swapchains) == ["full", "full"]


def test_desktop_keys_fill_the_right_hand_and_the_hand_rides_with_the_head():
    from vrshare.targets.controls import COLUMN
    from vrshare.targets.window import desktop_controls, desktop_hand

    held = {"KEY_F", "MOUSE_BUTTON_RIGHT", "KEY_LEFT", "KEY_UP"}
    right = np.full(len(COLUMN), 7.0, np.float32)
    desktop_controls(lambda name: name in held, right)
    assert right[COLUMN["squeeze"]] == right[COLUMN["trigger"]] == 1.0
    assert (right[COLUMN["thumbstick_x"]], right[COLUMN["thumbstick_y"]]) == (-1.0, 1.0)
    assert right[COLUMN["primary"]] == right[COLUMN["menu"]] == 0.0
    head = np.concatenate([[0.0, 1.6, 0.0], quat.from_yaw_pitch(math.pi / 2)])  # facing -X
    hand = desktop_hand(head)
    np.testing.assert_allclose(hand[:3], [-0.35, 1.35, -0.2], atol=1e-9)
    np.testing.assert_allclose(hand[3:], head[3:])


WINDOW_GRAB_SCRIPT = """
import sys
from vrshare import display

class Keys:  # GLFW with F and the right mouse button held from the 4th poll on
    def __init__(self, glfw):
        self.glfw, self.polls = glfw, 0
    def __getattr__(self, name):
        return getattr(self.glfw, name)
    def poll_events(self):
        self.polls += 1
        self.glfw.poll_events()
    def get_key(self, window, key):
        held = self.polls > 3 and key == self.glfw.KEY_F
        return self.glfw.PRESS if held else self.glfw.get_key(window, key)
    def get_mouse_button(self, window, button):
        held = self.polls > 3 and button == self.glfw.MOUSE_BUTTON_RIGHT
        return self.glfw.PRESS if held else self.glfw.get_mouse_button(window, button)

with display.open_display(sys.argv[1], target="window") as run:
    run.target.glfw = Keys(run.target.glfw)
    run.loop.run(8)
    stage = next(s for s in run.pipeline.stages if s.name == "interaction")
    print("HELD", stage.holding(), [round(p.amplitude, 2) for _, p in run.target.controls.haptics])
"""


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_window_keys_grab_with_the_desktop_hand(tmp_path):
    from test_controllers import grab_run_file

    display_number = 90 + (os.getpid() + 7) % 500
    server = subprocess.Popen(["Xvfb", f":{display_number}", "-screen", "0", "640x480x24"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        env = {**os.environ, "DISPLAY": f":{display_number}"}
        path = grab_run_file(tmp_path, 'source = "desktop"',
                             'vsync = false\nrecord_input = "keys.csv"')
        (tmp_path / "grab.py").write_text(WINDOW_GRAB_SCRIPT)
        result = subprocess.run([sys.executable, str(tmp_path / "grab.py"), str(path)],
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        server.terminate()
        server.wait()
    line = next(x for x in result.stdout.splitlines() if x.startswith("HELD "))
    # F grabbed the box with the right hand (the head's hand points at it); the grab and
    # the trigger click came in one frame: one request per hand and frame, the grab's
    assert line == "HELD [-1, 0] [0.7]"
    # the keys were recorded as an input track: F and the right button from the 4th frame
    from vrshare.targets.input_track import read_input_track

    track = read_input_track(tmp_path / "keys.csv")
    assert sorted(zip(track.hand.tolist(), track.column.tolist(), track.value.tolist(),
                      strict=True)) == [(1, 0, 1.0), (1, 1, 1.0)]  # trigger, squeeze
    assert np.allclose(track.t, track.t[0]) and track.t[0] > 0


def test_a_signal_during_a_captured_frame_leaves_it_both_written_and_counted(gl_ctx, tmp_path):
    """The results' count of captured frames must match the video the run leaves,
    wherever in the capture the command's SIGTERM lands."""
    import signal

    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    from vrshare.cli import Endings
    from vrshare.pipeline import Frame
    from vrshare.targets.base import DisplaySettings
    from vrshare.targets.headless import HeadlessTarget

    target = HeadlessTarget(DisplaySettings(width=8, height=8, capture="video",
                                            capture_dir=tmp_path), ctx=gl_ctx)
    frame = Frame(0, 0.0, 0.0, 1 / 90)
    target.submit(frame)
    append = target._writer.append_data

    def append_then_signal(image):
        signal.raise_signal(signal.SIGTERM)  # lands inside the write (ffmpeg lives on)
        append(image)
        signal.raise_signal(signal.SIGTERM)  # and between the write and its count

    target._writer.append_data = append_then_signal
    endings = Endings()
    endings.install()
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            target.submit(frame._replace(index=1))
    finally:
        endings.restore()
    target.close()
    assert endings.signals == [signal.SIGTERM] * 2 and endings.exit_code == 143
    assert target.captured == 2 and target.capture_errors == 0
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "frames.mp4"))
    assert next(reader)["size"] == (16, 8) and sum(1 for _ in reader) == 2
