"""The OpenXR target end to end against xrsim (tools/xrsim), through pyopenxr's Khronos
loader and its core validation layer, in child processes (see tests/xrsimkit.py)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess

import numpy as np
import pytest
import xrsimkit as kit
from scipy.spatial.transform import Rotation, Slerp

IPD = 0.064  # xrsim's default, and the tracking stage's ipd in tests/data/openxr_box.toml
BOX_CENTRE = np.array([0.0, 1.6, -2.0])  # tests/data/openxr_box.toml (m)
RED, BACKGROUND = (255, 0, 0), (0, 0, 51)  # sRGB bytes of the box and the sky


@pytest.fixture(scope="session")
def manifest():
    return kit.build_xrsim()


def write_trace(path, seconds=4.0, rate=50.0):
    """A head that sways and turns (yaw +-20 deg, 0.1 m sideways) at eye height."""
    t = np.arange(0.0, seconds, 1.0 / rate)
    yaw = np.radians(20.0) * np.sin(2 * np.pi * t / 2.0)
    q = Rotation.from_euler("y", yaw[:, None]).as_quat()
    x = 0.1 * np.sin(2 * np.pi * t / 3.0)
    with open(path, "w") as f:
        f.write("t,device,px,py,pz,qx,qy,qz,qw\n")
        for i in range(len(t)):
            f.write(f"{t[i]:.4f},head,{x[i]:.6f},1.6,0.0,{q[i, 0]:.8f},{q[i, 1]:.8f},"
                    f"{q[i, 2]:.8f},{q[i, 3]:.8f}\n")
            f.write(f"{t[i]:.4f},left,0,1,0,0,0,0,1\n")  # other devices are ignored
    return t, np.stack([x, np.full_like(x, 1.6), np.zeros_like(x)], 1), q


def head_at(trace, t):
    times, pos, quats = trace
    t = float(np.clip(t, times[0], times[-1]))
    i = min(int(np.searchsorted(times, t, side="right")) - 1, len(times) - 2)
    u = (t - times[i]) / (times[i + 1] - times[i])
    rot = Slerp(times[i:i + 2], Rotation.from_quat(quats[i:i + 2]))([t])[0]
    return pos[i] + u * (pos[i + 1] - pos[i]), rot


def project(point, eye_pos, eye_rot, fov, size):
    """Pixel (x right, y down; continuous, pixel centres at +0.5) of a world point."""
    p = eye_rot.inv().apply(point - eye_pos)
    tx, ty = p[0] / -p[2], p[1] / -p[2]
    left, right, up, down = (math.tan(a) for a in fov)
    return np.array([(tx - left) / (right - left) * size[0], (up - ty) / (up - down) * size[1]])


def box_centroid(image):
    mask = np.all(np.abs(image.astype(int) - RED) <= 8, axis=-1)
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5]), int(mask.sum())


def check_headset_run(tmp_path, env, frames):
    """Run the box scene for ``frames`` frames with head.csv replayed, then check: zero
    validation errors, zero runtime errors, and every dumped eye image shows the box where
    the scripted head pose puts it, with the right disparity."""
    dump = tmp_path / "dump"
    dump.mkdir()
    trace = write_trace(tmp_path / "head.csv")
    env.update(XRSIM_RESOLUTION="96x80", XRSIM_TRACE=str(tmp_path / "head.csv"),
               XRSIM_DUMP_DIR=str(dump), XRSIM_DUMP_EVERY="25")
    done = kit.run_cli(["run", str(kit.BOX_SCENE), "--target", "openxr", "--frames",
                        str(frames)], env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert kit.validation_problems(tmp_path) == []
    assert kit.sim_errors(tmp_path) == []
    counts = kit.summary(tmp_path)
    # the session starts READY then SYNCHRONIZED (no layers) before it is VISIBLE
    assert counts["frames_ended"] >= frames and counts["layers"] == counts["frames_ended"] - 2
    views = kit.read_views(dump)
    assert len(views) == 2 * counts["dumped"] and counts["dumped"] >= frames // 30
    sim_fov = {0: np.radians([-50, 40, 45, -50]), 1: np.radians([-40, 50, 45, -50])}
    for row in views:
        eye = int(row["eye"])
        t = (int(row["display_time"]) - kit.VIRTUAL_T0_NS) * 1e-9
        head_pos, head_rot = head_at(trace, t)
        want_pos = head_pos + head_rot.apply([(eye - 0.5) * IPD, 0.0, 0.0])
        pos = np.array([float(row[k]) for k in ("px", "py", "pz")])
        rot = Rotation.from_quat([float(row[k]) for k in ("qx", "qy", "qz", "qw")])
        assert np.allclose(pos, want_pos, atol=2e-4), (row, want_pos)
        assert (rot.inv() * head_rot).magnitude() < 1e-3
        fov = np.array([float(row[k]) for k in ("angle_left", "angle_right", "angle_up",
                                                "angle_down")])
        assert np.allclose(fov, sim_fov[eye], atol=1e-5)
        image = kit.read_ppm(dump / row["file"])
        assert image.shape == (80, 96, 3)
        assert tuple(image[0, 0]) == BACKGROUND
        centre, pixels = box_centroid(image)
        assert pixels > 20
        want = project(BOX_CENTRE, pos, rot, fov, (96, 80))
        assert np.allclose(centre, want, atol=1.0), (row["file"], centre, want)
        row["centre_x"] = centre[0]
        row["want_x"] = want[0]
    by_frame = {}
    for row in views:
        by_frame.setdefault(row["frame"], {})[int(row["eye"])] = row
    for pair in by_frame.values():
        disparity = pair[0]["centre_x"] - pair[1]["centre_x"]
        want = pair[0]["want_x"] - pair[1]["want_x"]
        assert disparity > 5 and abs(disparity - want) < 1.0


def test_headset_run_under_validation_shows_the_scripted_pose(manifest, tmp_path):
    check_headset_run(tmp_path, kit.xr_env(manifest, tmp_path), frames=300)


@pytest.fixture
def x_display():
    """A private Xvfb server (its own display number, via -displayfd)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "320x240x24"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    try:
        if not number:
            pytest.skip("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_glx_binding_under_x(manifest, tmp_path, x_display):
    """A runtime without XR_MNDX_egl_enable (as SteamVR): the target takes a GLX context
    from a hidden window and binds it through XrGraphicsBindingOpenGLXlibKHR."""
    env = kit.xr_env(manifest, tmp_path, no_egl=1)
    env["DISPLAY"] = x_display
    check_headset_run(tmp_path, env, frames=60)


def test_stop_restart_then_exit(manifest, tmp_path):
    """The runtime stops the session (headset taken off) and readies it again; later it
    exits: the run begins the session twice, then ends cleanly before --frames."""
    env = kit.xr_env(manifest, tmp_path, events="stop@20,exit@60")
    done = kit.run_cli(["run", str(kit.BOX_SCENE), "--target", "openxr", "--frames", "500"],
                       env)
    assert done.returncode == 0, done.stderr[-3000:]
    log = kit.sim_log(tmp_path)
    assert log.count("session begun") == 2 and log.count("session ended") == 2
    assert "session state EXITING" in log and "session destroyed" in log
    assert kit.sim_errors(tmp_path) == [] and kit.validation_problems(tmp_path) == []
    counts = kit.summary(tmp_path)
    assert 60 <= counts["frames_ended"] < 100


@pytest.mark.parametrize("event", ["loss", pytest.param("instance_loss", marks=pytest.mark.slow)])
def test_loss_ends_the_run_cleanly(manifest, tmp_path, event):
    env = kit.xr_env(manifest, tmp_path, events=f"{event}@15")
    done = kit.run_cli(["run", str(kit.BOX_SCENE), "--target", "openxr", "--frames", "500"],
                       env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert kit.sim_errors(tmp_path) == [] and kit.validation_problems(tmp_path) == []
    assert "session destroyed" in kit.sim_log(tmp_path)
    assert kit.summary(tmp_path)["frames_ended"] < 30


PROBE = "import json, vrshare.targets.openxr as m; print(json.dumps(m.probe()))"


def test_info_reports_the_runtime(manifest, tmp_path):
    done = kit.run_cli(["info", "--json"], kit.xr_env(manifest, tmp_path, resolution="320x240"))
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads(done.stdout)["openxr"]
    assert info["available"] is True, info
    assert info["runtime"].startswith("xrsim") and info["runtime_version"] == "0.1.0"
    assert info["recommended_eye_size"] == [320, 240] and info["system"] == "xrsim stereo HMD"


BROKEN = {
    "missing manifest": ({"XR_RUNTIME_JSON": "/nonexistent/runtime.json"}, ""),
    "library missing": (None, "missing"),
    "not a runtime": (None, "libm"),
    "instance fails": ({"XRSIM_FAIL": "create_instance"}, ""),
    "no headset": ({"XRSIM_NO_HMD": "1"}, ""),
}


def broken_env(manifest, tmp_path, case):
    env_extra, library = BROKEN[case]
    env = kit.xr_env(manifest, tmp_path)
    if library:
        path = {"missing": str(tmp_path / "nope.so"), "libm": "libm.so.6"}[library]
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"file_format_version": "1.0.0",
                                   "runtime": {"library_path": path}}))
        env["XR_RUNTIME_JSON"] = str(bad)
    env.update(env_extra or {})
    return env


SLOW_CASES = ("library missing", "not a runtime", "instance fails")


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CASES
                                  else c for c in BROKEN])
def test_broken_runtime_probe_and_auto_fallback(manifest, tmp_path, case):
    """probe() says why, and auto picks headless (no display here) instead of OpenXR."""
    code = (PROBE + "\nfrom vrshare.targets.choice import choose_target\n"
            "print('CHOSEN', choose_target('auto')[0])")
    done = kit.run_code(code, broken_env(manifest, tmp_path, case))
    lines = done.stdout.strip().splitlines()
    info = json.loads(lines[-2])
    assert info["available"] is False and info["error"], info
    if case == "no headset":
        assert "FORM_FACTOR_UNAVAILABLE" in info["error"] and info["runtime"].startswith("xrsim")
    assert lines[-1] == "CHOSEN headless"


def test_probe_gives_up_on_a_stuck_runtime(manifest, tmp_path):
    code = ("import json, vrshare.targets.openxr as m\n"
            "print(json.dumps(m.probe(timeout_s=2)))")
    done = kit.run_code(code, kit.xr_env(manifest, tmp_path, fail="hang"), timeout=60)
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info == {"available": False,
                    "error": "the OpenXR runtime did not answer within 2 s"}


@pytest.mark.parametrize("case", ["missing manifest", "no headset"])
def test_broken_runtime_gives_a_clear_error(manifest, tmp_path, case):
    code = ("from vrshare.targets.openxr import OpenXRTarget, OpenXRError\n"
            "try:\n    OpenXRTarget()\n"
            "except OpenXRError as exc:\n    print('ERROR', type(exc).__name__, exc)\n")
    done = kit.run_code(code, broken_env(manifest, tmp_path, case))
    assert done.returncode == 0, done.stderr[-2000:]
    line = done.stdout.strip().splitlines()[-1]
    want = {"missing manifest": "RuntimeUnavailable", "no headset": "HeadsetUnavailable"}[case]
    assert line.startswith(f"ERROR {want} ")
    assert {"missing manifest": "XR_RUNTIME_JSON=/nonexistent/runtime.json",
            "no headset": "XR_ERROR_FORM_FACTOR_UNAVAILABLE"}[case] in line


@pytest.mark.slow
def test_stage_space_falls_back_to_local(manifest, tmp_path):
    env = kit.xr_env(manifest, tmp_path, no_stage=1)
    done = kit.run_cli(["-v", "run", str(kit.BOX_SCENE), "--target", "openxr", "--frames", "5"],
                       env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LOCAL space" in done.stderr
    assert kit.sim_errors(tmp_path) == [] and kit.validation_problems(tmp_path) == []


def test_drawn_eye_matrices_round_trip_to_layer_pose_and_fov():
    """The layer's pose and fov are read back from eye_view/eye_proj: exact inverses of
    how the tracking stage builds them."""
    from vrshare.geometry import eyes
    from vrshare.geometry.eyes import eye_pose_from_view, fov_from_projection

    rng = np.random.default_rng(3)
    for _ in range(20):
        rot = Rotation.random(random_state=rng)
        pose = np.concatenate([rng.uniform(-2, 2, 3), rot.as_quat()])
        views = eyes.eye_views(pose, 0.064, np.zeros((2, 4, 4)))
        for eye, sign in ((0, -1), (1, 1)):
            got = eye_pose_from_view(views[eye])
            want = pose[:3] + rot.apply([sign * 0.032, 0, 0])
            assert np.allclose(got[:3], want, atol=1e-9)
            assert abs(abs(np.dot(got[3:], pose[3:])) - 1) < 1e-9
        fov = (-0.9, 0.7, rng.uniform(0.3, 1.2), -rng.uniform(0.3, 1.2))
        proj = np.array(eyes.projection(fov, 0.05, 100.0))
        assert np.allclose(fov_from_projection(proj), fov, atol=1e-9)


@pytest.mark.slow
def test_real_time_frames_follow_the_display_period(manifest, tmp_path):
    """With real timing, predicted display times are whole refresh periods apart and
    increase; frames that overran skip vsyncs instead of queueing."""
    dump = tmp_path / "dump"
    dump.mkdir()
    env = kit.xr_env(manifest, tmp_path, timing="real", rate=72, dump_dir=dump)
    done = kit.run_cli(["run", str(kit.BOX_SCENE), "--target", "openxr", "--frames", "40"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert kit.sim_errors(tmp_path) == [] and kit.validation_problems(tmp_path) == []
    times = np.array([int(r["display_time"]) for r in kit.read_views(dump) if r["eye"] == "0"])
    steps = np.diff(times) / (1e9 / 72)
    assert len(times) >= 30 and np.all(steps >= 0.999)
    assert np.allclose(steps, np.round(steps), atol=2e-3)


DEVICES = """
import json, sys
import numpy as np
from vrshare.targets.openxr import XrSession

rows = []
with XrSession(None) as s:  # XR_MND_headless: tracking without graphics
    for frame in s.frames():
        out = np.zeros((3, 9))
        s.locate_devices(frame.display_time, out)
        rows.append([frame.display_time, s.state.name, out.tolist()])
        frame.end()
        if frame.index == 40:
            break
print("ROWS " + json.dumps(rows))
"""


def test_head_and_hands_follow_the_trace(manifest, tmp_path):
    """Head from the VIEW space, hands from grip-pose action spaces (khr/simple_controller):
    the hands are valid only once the session is focused, then follow their trace rows."""
    with open(tmp_path / "devices.csv", "w") as f:
        f.write("t,device,px,py,pz,qx,qy,qz,qw\n")
        for i in range(60):
            t = i / 60
            f.write(f"{t},head,{0.1 * t},1.6,0,0,0,0,1\n")
            f.write(f"{t},left,-0.2,{1.0 + 0.3 * t},-0.3,0,0,0,1\n")
            f.write(f"{t},right,0.25,1.1,{-0.3 - 0.2 * t},0,0,0,1\n")
    env = kit.xr_env(manifest, tmp_path, trace=tmp_path / "devices.csv")
    done = kit.run_code(DEVICES, env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(next(x for x in done.stdout.splitlines()
                           if x.startswith("ROWS ")).removeprefix("ROWS "))
    assert kit.sim_errors(tmp_path) == [] and kit.validation_problems(tmp_path) == []
    focused = 0
    for display_time, state, (head, left, right) in rows:
        t = min((display_time - kit.VIRTUAL_T0_NS) * 1e-9, 59 / 60)
        assert head[8] == 1.0 and np.allclose(head[:3], [0.1 * t, 1.6, 0], atol=1e-5)
        if state != "FOCUSED":
            assert left[8] == right[8] == 0.0
            continue
        focused += 1
        assert left[8] == right[8] == 1.0
        assert np.allclose(left[:7], [-0.2, 1.0 + 0.3 * t, -0.3, 0, 0, 0, 1], atol=1e-5)
        assert np.allclose(right[:7], [0.25, 1.1, -0.3 - 0.2 * t, 0, 0, 0, 1], atol=1e-5)
    assert focused >= 35


def read_head_trace(path):
    rows = [line.split(",") for line in path.read_text().splitlines()
            if line and not line.startswith(("#", "t,")) and line.split(",")[1] == "head"]
    data = np.array([[float(r[0]), *map(float, r[2:9])] for r in rows])
    return data[:, 0], data[:, 1:4], data[:, 4:8]


@pytest.mark.slow
def test_replays_a_recorded_head_trace(manifest, tmp_path):
    """A real head trace (EyeNavGS, bundled): every submitted eye pose is the trace's head
    pose at that frame's display time, offset by half the IPD."""
    trace_path = kit.ROOT / "scenes" / "traces" / "eyenavgs_user101_room.csv"
    trace = read_head_trace(trace_path)
    dump = tmp_path / "dump"
    dump.mkdir()
    env = kit.xr_env(manifest, tmp_path, trace=trace_path, dump_dir=dump, dump_every=20)
    done = kit.run_cli(["run", str(kit.BOX_SCENE), "--target", "openxr", "--frames", "400"],
                       env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert kit.sim_errors(tmp_path) == [] and kit.validation_problems(tmp_path) == []
    views = kit.read_views(dump)
    assert len(views) >= 2 * 19
    for row in views:
        eye = int(row["eye"])
        head_pos, head_rot = head_at(trace, (int(row["display_time"]) - kit.VIRTUAL_T0_NS) * 1e-9)
        pos = np.array([float(row[k]) for k in ("px", "py", "pz")])
        rot = Rotation.from_quat([float(row[k]) for k in ("qx", "qy", "qz", "qw")])
        assert np.allclose(pos, head_pos + head_rot.apply([(eye - 0.5) * IPD, 0, 0]), atol=2e-4)
        assert (rot.inv() * head_rot).magnitude() < 1e-3


@pytest.mark.slow
def test_unorm_swapchain_gets_linear_colour(manifest, tmp_path):
    """A runtime offering only GL_RGBA8 reads it as linear: the sky (sRGB 0.2 blue) must
    arrive as linear 0.033 (byte 8), not as the sRGB-encoded byte 51."""
    dump = tmp_path / "dump"
    dump.mkdir()
    env = kit.xr_env(manifest, tmp_path, unorm_only=1, dump_dir=dump, dump_every=10)
    done = kit.run_cli(["run", str(kit.BOX_SCENE), "--target", "openxr", "--frames", "12"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert kit.sim_errors(tmp_path) == [] and kit.validation_problems(tmp_path) == []
    image = kit.read_ppm(dump / kit.read_views(dump)[0]["file"])
    assert tuple(image[0, 0]) == (0, 0, 8)
    assert box_centroid(image)[1] > 20  # pure red is the same in both encodings


@pytest.mark.slow
def test_close_does_not_wait_forever_for_exiting(manifest, tmp_path):
    """A runtime that never reaches EXITING after xrRequestExitSession: close() gives up
    after its time limit and still destroys the session and instance."""
    env = kit.xr_env(manifest, tmp_path, never_exit=1)
    done = kit.run_cli(["run", str(kit.BOX_SCENE), "--target", "openxr", "--frames", "10"],
                       env, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "did not reach EXITING" in done.stderr
    log = kit.sim_log(tmp_path)
    assert "session state EXITING" not in log and "session destroyed" in log
    assert kit.sim_errors(tmp_path) == []


FRAME_TIMES = """
import json, sys
from vrshare import display
run = display.open_display(sys.argv[1], target="openxr")
seen = []
wait = run.loop.clock.wait_frame
def recording():
    frame = wait()
    seen.append([frame.index, frame.t_now, frame.t_display])
    return frame
run.loop.clock.wait_frame = recording
stats = run.loop.run(30)
recorded = stats.t_display[:stats.frames].tolist()
run.close()
print("TIMES " + json.dumps({"seen": seen, "recorded": recorded}))
"""


def test_frame_times_are_the_runtimes_predicted_display_times(manifest, tmp_path):
    """Frame.t_display (what tracking predicts to and scene motion animates at, and what
    the stats record) is the runtime's predictedDisplayTime, on the first frame's
    timeline, and lies ahead of the frame's start."""
    dump = tmp_path / "dump"
    dump.mkdir()
    env = kit.xr_env(manifest, tmp_path, timing="real", dump_dir=dump)
    done = kit.run(["-c", FRAME_TIMES, str(kit.BOX_SCENE)], env)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("TIMES "))
    data = json.loads(line.removeprefix("TIMES "))
    seen = np.array(data["seen"])
    runtime = {int(r["frame"]): int(r["display_time"]) for r in kit.read_views(dump)
               if r["eye"] == "0"}
    common = [int(i) for i in seen[:, 0] if int(i) in runtime]
    assert len(common) >= 25
    t_display = {int(i): t for i, _, t in seen}
    first = common[0]
    for i in common:
        expected = (runtime[i] - runtime[first]) * 1e-9
        assert abs((t_display[i] - t_display[first]) - expected) < 1e-6, i
    assert np.all(seen[:, 2] > seen[:, 1])  # shown after the frame starts
    np.testing.assert_array_equal(data["recorded"], seen[:, 2])
