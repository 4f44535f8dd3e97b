"""Controllers on the OpenXR target against xrsim, under the core validation layer:
scripted buttons and axes -> target -> bank -> the interaction stage -> haptics ->
runtime, a profile change mid-run and a component the new profile lacks."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import xrsimkit as kit
from test_controllers import BOX_AT, grab_run_file, write_hand_trace

from vrshare.layout import CONTROLLER_COMPONENTS
from vrshare.targets.openxr.profiles import ACTIONS, PROFILES

COL = {c: i for i, c in enumerate(CONTROLLER_COMPONENTS)}

# Runs a run file on the OpenXR target for FRAMES frames; prints per frame the
# controller state and bound rows written by poll, and the final model matrix of the
# scene object named OBJECT.
RUN = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
import numpy as np
from vrshare import display
rows = []
with display.open_display(sys.argv[1], target="openxr") as run:
    poll = run.target.poll
    def recording(frame, bank):
        poll(frame, bank)
        rows.append([frame.index, bank["controller_state"].tolist(),
                     bank["controller_bound"].tolist()])
    run.target.poll = recording
    stats = run.loop.run(int(sys.argv[2]))
    assert not stats.faults, stats.faults
    row = [o.name for o in run.scene.objects].index(sys.argv[3])
    box = np.asarray(run.bank["object_model"])[row].tolist()
print("RESULT " + json.dumps({"rows": rows, "box": box}))
"""


@pytest.fixture(scope="module")
def manifest():
    return kit.build_xrsim()


def test_every_component_has_one_action_and_profiles_bind_known_actions():
    filled = [c for a in ACTIONS for c in a.components]
    assert sorted(filled) == sorted(CONTROLLER_COMPONENTS)
    names = {a.name for a in ACTIONS}
    for profile in PROFILES:
        assert set(profile.bindings) <= names, profile.path
        assert profile.inputs("grip_pose") == ("/input/grip/pose",) * 2
        assert profile.inputs("haptic") == ("/output/haptic",) * 2


def run_grab(tmp_path, env, frames, path=None, name="box"):
    script = tmp_path / "run.py"
    script.write_text(RUN)
    done = kit.run([str(script), str(path or tmp_path / "grab.toml"), str(frames), name], env)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT ")), done.stderr


def haptic_lines(out):
    return [dict(kv.split("=") for kv in line.split("haptic ")[1].split())
            for line in kit.sim_log(out).splitlines() if "event: haptic " in line]


def test_squeeze_grabs_the_box_and_the_runtime_gets_the_pulses(manifest, tmp_path):
    """Oculus Touch: the squeeze value grabs (haptic pulse applied through the runtime),
    the hand carries the box 0.4 m right, release drops it there, the trigger clicks."""
    write_hand_trace(tmp_path / "hands.csv")
    (tmp_path / "input.csv").write_text(
        "frames,hand,path,x,y\n"
        "20,right,/input/squeeze/value,0.9\n"
        "85,right,/input/squeeze/value,0.1\n"
        "95,right,/input/trigger/value,1\n")
    grab_run_file(tmp_path, 'source = "openxr"', frame_hz=90.0)
    env = kit.xr_env(manifest, tmp_path, trace=tmp_path / "hands.csv",
                     profile="oculus/touch_controller", input=tmp_path / "input.csv")
    result, log = run_grab(tmp_path, env, 110)
    assert kit.sim_errors(tmp_path) == [] and kit.validation_problems(tmp_path) == []
    assert "OpenXR: right hand: /interaction_profiles/oculus/touch_controller" in log
    pulses = haptic_lines(tmp_path)
    assert [(p["hand"], p["amplitude"], round(int(p["duration_ns"]) * 1e-6)) for p in pulses] \
        == [("right", "0.700", 50), ("right", "0.300", 20)]  # ms (float32 settings)
    assert 20 <= int(pulses[0]["frame"]) <= 23 and 95 <= int(pulses[1]["frame"]) <= 98
    assert kit.summary(tmp_path)["haptics"] == 2
    box = np.array(result["box"])
    np.testing.assert_allclose(box[:3, 3], BOX_AT + [0.4, 0, 0], atol=1e-4)
    # the squeeze value reached the bank while it was held
    held = [s[1][COL["squeeze"]] for i, s, b in result["rows"] if 30 <= i <= 80]
    assert held and np.allclose(held, 0.9)


def test_profile_change_mid_run_rebinds_and_a_missing_component_reads_unbound(
        manifest, tmp_path):
    """Touch -> Vive at frame 40: the thumbstick (Touch) reads until then; Vive has no
    thumbstick (unbound, 0) but a trackpad, whose value then reads; both profiles are
    logged."""
    (tmp_path / "input.csv").write_text(
        "5,right,/input/thumbstick,0.5,-0.25\n"
        "5,right,/input/trackpad,0.25,0.75\n"
        "5,left,/input/menu/click,1\n")
    grab_run_file(tmp_path, 'source = "openxr"', frame_hz=90.0)
    env = kit.xr_env(manifest, tmp_path, profile="oculus/touch_controller",
                     profile_at="htc/vive_controller@40", input=tmp_path / "input.csv")
    result, log = run_grab(tmp_path, env, 70)
    assert kit.sim_errors(tmp_path) == [] and kit.validation_problems(tmp_path) == []
    assert re.search(r"right hand: /interaction_profiles/oculus/touch_controller.*"
                     r"right hand: /interaction_profiles/htc/vive_controller", log, re.S)
    x, y, px, py = (COL[c] for c in ("thumbstick_x", "thumbstick_y", "trackpad_x",
                                     "trackpad_y"))
    before = [(s, b) for i, s, b in result["rows"] if 15 <= i <= 35]
    after = [(s, b) for i, s, b in result["rows"] if i >= 50]
    assert before and after
    for state, bound in before:
        assert state[1][x] == 0.5 and state[1][y] == -0.25 and bound[1][x] == 1.0
        assert bound[1][px] == 0.0 and state[1][px] == 0.0  # Touch has no trackpad
        assert state[0][COL["menu"]] == 1.0  # Touch's menu button is on the left
    for state, bound in after:
        assert bound[1][x] == 0.0 and state[1][x] == 0.0  # Vive: no thumbstick
        assert (state[1][px], state[1][py], bound[1][px]) == (0.25, 0.75, 1.0)
        assert bound[1][COL["squeeze"]] == 1.0  # squeeze/click on the Vive


def test_a_controller_without_suggested_bindings_gives_no_input(manifest, tmp_path):
    """No controllers at all (XRSIM_PROFILE=none): every component unbound, logged."""
    grab_run_file(tmp_path, 'source = "openxr"', frame_hz=90.0)
    env = kit.xr_env(manifest, tmp_path, profile="none")
    result, log = run_grab(tmp_path, env, 20)
    assert kit.sim_errors(tmp_path) == [] and kit.validation_problems(tmp_path) == []
    assert "right hand: no interaction profile" not in log  # nothing changed from none
    assert all(np.sum(b) == 0 for _, _, b in result["rows"])


@pytest.mark.slow
def test_the_demo_radio_is_grabbed_and_lifted_on_the_test_runtime(manifest, tmp_path):
    """scenes/demo.toml on xrsim: the right hand points at the radio from 0.7 m, squeezes,
    rises 0.3 m and lets go; the radio follows and a grab pulse reaches the runtime."""
    radio = np.array([0.3, 0.82, 0.1])  # scenes/demo.toml
    with open(tmp_path / "hands.csv", "w") as f:
        f.write("t,device,px,py,pz,qx,qy,qz,qw\n")
        for t in np.arange(0.0, 1.5, 1 / 60):
            y = 0.82 + 0.3 * float(np.clip((t - 0.4) / 0.3, 0.0, 1.0))
            f.write(f"{t:.5f},head,0.3,1.6,1.5,0,0,0,1\n{t:.5f},right,0.3,{y:.6f},0.8,0,0,0,1\n")
    (tmp_path / "input.csv").write_text("20,right,/input/squeeze/value,1\n"
                                        "80,right,/input/squeeze/value,0\n")
    env = kit.xr_env(manifest, tmp_path, trace=tmp_path / "hands.csv",
                     profile="valve/index_controller", input=tmp_path / "input.csv")
    result, _ = run_grab(tmp_path, env, 100, kit.ROOT / "scenes" / "demo.toml", "radio")
    assert kit.sim_errors(tmp_path) == [] and kit.validation_problems(tmp_path) == []
    assert [p["amplitude"] for p in haptic_lines(tmp_path)] == ["0.700"]
    np.testing.assert_allclose(np.array(result["box"])[:3, 3], radio + [0, 0.3, 0], atol=1e-3)
