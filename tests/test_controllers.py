"""Controller buffers: edges, haptic requests, the input track and its headless playback."""

from __future__ import annotations

import numpy as np
import pytest

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
