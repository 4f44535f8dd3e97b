"""Controller buffers: edges, haptic requests, the input track and its headless playback."""

from __future__ import annotations

import numpy as np
import pytest
from glkit import gl_ctx  # noqa: F401  (fixture)

from vrshare import WeightBank, layout
from vrshare.targets.controls import COLUMN, ControllerInput, HapticRequests
from vrshare.targets.input_track import InputTrackError, Playback, read_input_track

TRIGGER, STICK_X = COLUMN["trigger"], COLUMN["thumbstick_x"]


def test_edges_mark_presses_and_releases_of_the_frame_only():
    bank = WeightBank()
    controls = ControllerInput()
    controls.declare(bank)
    edges = bank[layout.CONTROLLER_EDGES]
    seen = []
    for value in (0.0, 0.7, 0.9, 0.2, 0.2):  # analog trigger crossing 0.5 up, then down
        controls.state[1, TRIGGER] = value
        controls.state[1, STICK_X] = value  # an axis: never an edge
        controls.publish(bank, 0.0, 0)
        seen.append((edges[1, 0, TRIGGER], edges[1, 1, TRIGGER]))
        assert edges[:, :, STICK_X].sum() == 0 and edges[0].sum() == 0
    assert seen == [(0, 0), (1, 0), (0, 0), (0, 1), (0, 0)]
    assert bank[layout.CONTROLLER_STATE][1, TRIGGER] == pytest.approx(0.2)


def test_haptic_rows_are_sent_when_their_request_number_changes():
    bank = WeightBank()
    requests = HapticRequests()
    assert requests.new(bank) == []  # no stage declared haptics: nothing to send
    rows = bank.state(layout.HAPTICS, (2, 4), "float32")
    assert requests.new(bank) == []
    rows[1] = (0.8, 0.05, 160.0, 1)
    (pulse,) = requests.new(bank)
    assert (pulse.hand, pulse.duration, pulse.frequency) == (1, pytest.approx(0.05), 160.0)
    assert pulse.amplitude == pytest.approx(0.8) and not pulse.stop
    assert requests.new(bank) == []  # the same request is not sent twice
    rows[1, [0, 3]] = (0.0, 2)
    assert [p.stop for p in requests.new(bank)] == [True]


def write_track(path, text):
    path.write_text(text)
    return path


def test_input_track_plays_steps_in_time_and_starts_over_when_time_goes_back(tmp_path):
    track = read_input_track(write_track(tmp_path / "input.csv", (
        "# a squeeze and a trigger pull\n"
        "t,hand,component,value\n"
        "0.5,right,squeeze,1\n"
        "0.2,left,trigger,0.3\n"  # out of order: sorted by time
        "1.0,right,squeeze,0\n")))
    bound = track.bound()
    assert bound[1, COLUMN["squeeze"]] == 1 and bound[0, TRIGGER] == 1 and bound.sum() == 2
    play, state = Playback(track), np.zeros((2, len(COLUMN)), np.float32)
    values = []
    for t in (0.0, 0.3, 0.6, 1.2, 0.1):
        play.state_at(t, state)
        values.append((float(state[0, TRIGGER]), float(state[1, COLUMN["squeeze"]])))
    assert values == [(0, 0), (pytest.approx(0.3), 0), (pytest.approx(0.3), 1),
                      (pytest.approx(0.3), 0), (0, 0)]


@pytest.mark.parametrize(("text", "message"), [
    ("t,hand,value\n", "line 1: expected the header"),
    ("t,hand,component,value\n0,middle,trigger,1\n", "line 2: hand 'middle'"),
    ("t,hand,component,value\n0,left,grip,1\n", "line 2: unknown component 'grip'"),
    ("t,hand,component,value\n0,left,trigger,nan\n", "line 2: t and value must be finite"),
    ("t,hand,component,value\n0,left,trigger\n", "line 2: expected 4 fields"),
    ("", "empty"),
])
def test_input_track_errors_name_the_file_and_line(tmp_path, text, message):
    path = write_track(tmp_path / "bad.csv", text)
    with pytest.raises(InputTrackError, match=message) as info:
        read_input_track(path)
    assert str(path) in str(info.value) and isinstance(info.value, ValueError)


BOX_AT = np.array([0.2, 1.2, -1.5])  # the grabbable box's rest centre (m)


def grab_run_file(tmp_path, tracking: str, display: str = "", frame_hz: float = 30.0):
    """A run file: a box 1.2 m in front of the right hand, the interaction stage able to
    grab it, passthrough drawing; ``tracking`` is the tracking stage's settings table."""
    path = tmp_path / "grab.toml"
    path.write_text(f"""
[pipeline]
frame_hz = {frame_hz}
clock = "virtual"

[[stage]]
type = "tracking"
[stage.settings]
{tracking}
filter = false
predictor = "none"

[[stage]]
type = "scene_motion"

[[stage]]
type = "interaction"
[stage.settings]
objects = ["box"]

[[stage]]
type = "passthrough"

[display]
width = 32
height = 24
{display}

[scene]
[[scene.primitive]]
name = "cube"
shape = "box"
size = [0.3, 0.3, 0.3]

[[scene.object]]
name = "box"
mesh = "cube"
position = [{BOX_AT[0]}, {BOX_AT[1]}, {BOX_AT[2]}]
""")
    return path


def write_hand_trace(path, seconds=2.0, rate=60.0):
    """Head still at eye height; the right hand at (0.2, 1.2, -0.3) pointing -Z, moving
    0.4 m to the right between 0.4 s and 0.8 s."""
    with open(path, "w") as f:
        f.write("t,device,px,py,pz,qx,qy,qz,qw\n")
        for t in np.arange(0.0, seconds, 1.0 / rate):
            x = 0.2 + 0.4 * float(np.clip((t - 0.4) / 0.4, 0.0, 1.0))
            f.write(f"{t:.5f},head,0,1.6,0,0,0,0,1\n{t:.5f},left,-0.2,1.2,-0.3,0,0,0,1\n"
                    f"{t:.5f},right,{x:.6f},1.2,-0.3,0,0,0,1\n")
    return path


GRAB_TRACK = ("t,hand,component,value\n"
              "0.2,right,squeeze,1\n"   # grab (the ray meets the box)
              "1.0,right,squeeze,0\n"   # drop, 0.4 m to the right of where it was
              "1.2,right,trigger,1\n"   # a click
              "1.3,right,trigger,0\n")


@pytest.mark.usefixtures("gl_ctx")
def test_headless_input_track_grabs_moves_and_drops_the_box_with_haptics(tmp_path):
    from vrshare import display

    write_hand_trace(tmp_path / "hands.csv")
    write_track(tmp_path / "input.csv", GRAB_TRACK)
    path = grab_run_file(tmp_path, 'source = "trace"\ntrace = "hands.csv"',
                         'input_track = "input.csv"')
    with display.open_display(path, target="headless") as run:
        stats = run.loop.run(45)  # 1.5 s at 30 Hz
        haptics = list(run.target.controls.haptics)
        model = np.array(run.bank[layout.OBJECT_MODEL])
        bounds = np.array(run.bank[layout.OBJECT_BOUNDS])
    assert stats.frames == 45 and not stats.faults
    assert [(p.hand, round(p.amplitude, 3), round(p.duration, 3)) for _, p in haptics] == [
        (1, 0.7, 0.05), (1, 0.3, 0.02)]  # the grab pulse, then the trigger click
    assert 5 <= haptics[0][0] <= 7 and 35 <= haptics[1][0] <= 37  # at 0.2 s and 1.2 s
    np.testing.assert_allclose(model[0, :3, 3], BOX_AT + [0.4, 0, 0], atol=1e-5)
    np.testing.assert_allclose(bounds[0, :3], BOX_AT + [0.4, 0, 0], atol=1e-5)


@pytest.mark.usefixtures("gl_ctx")
def test_squeezing_with_the_hand_pointing_away_grabs_nothing(tmp_path):
    from vrshare import display

    with open(tmp_path / "hands.csv", "w") as f:  # the right hand points up (+Y): a miss
        f.write("t,device,px,py,pz,qx,qy,qz,qw\n0,right,0.2,1.2,-0.3,0.7071068,0,0,0.7071068\n"
                "0,head,0,1.6,0,0,0,0,1\n")
    write_track(tmp_path / "input.csv", GRAB_TRACK)
    path = grab_run_file(tmp_path, 'source = "trace"\ntrace = "hands.csv"',
                         'input_track = "input.csv"')
    with display.open_display(path, target="headless") as run:
        run.loop.run(45)
        haptics = [p.amplitude for _, p in run.target.controls.haptics]
        model = np.array(run.bank[layout.OBJECT_MODEL])
    assert haptics == [pytest.approx(0.3)]  # only the trigger click
    np.testing.assert_allclose(model[0, :3, 3], BOX_AT, atol=1e-6)


def test_a_recorded_track_plays_back_the_same_states(tmp_path):
    from vrshare.targets.input_track import Recorder

    rng = np.random.default_rng(3)
    recorder = Recorder(tmp_path / "rec.csv")
    frames = []
    state = np.zeros((2, len(COLUMN)), np.float32)
    for i in range(30):
        if i % 4 == 0:  # a few components change now and then; the rest hold
            state[rng.integers(0, 2), rng.integers(0, len(COLUMN))] = rng.choice([0.0, 0.5, 1.0])
        recorder.record(i / 30, state)
        frames.append(state.copy())
    recorder.close()
    play, got = Playback(read_input_track(tmp_path / "rec.csv")), np.zeros_like(state)
    for i, want in enumerate(frames):
        play.state_at(i / 30, got)
        np.testing.assert_array_equal(got, want)
