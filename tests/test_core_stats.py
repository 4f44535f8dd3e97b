"""Frame statistics: what is recorded, what the summaries, JSON and trace say, and the
one-line descriptions of faults and hangs, against figures worked out in the test."""

from __future__ import annotations

import math
import traceback

import numpy as np
import pytest

from vrshare.pipeline.stats import FrameStats, StageFault, StageHang, percentiles_ms


def test_percentiles_leave_nans_out_and_are_milliseconds():
    times = np.array([0.004, np.nan, 0.001, 0.003, 0.002, np.nan])
    got = percentiles_ms(times)
    good = times[~np.isnan(times)]
    expected = [*np.percentile(good, [50, 95, 99, 99.9]) * 1e3, 4.0]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert all(math.isnan(v) for v in percentiles_ms([np.nan, np.nan]))
    assert len(percentiles_ms([])) == 5


def test_recording_past_the_capacity_keeps_every_row():
    stats = FrameStats(["a", "b"], budget_s=0.01, capacity=2)
    for i in range(7):
        stats.record(10 + i, 0.5 + i, 100.0 + i, 100.0 + i + 0.001 * (i + 1),
                     [0.0, 0.0005], [0.0002 * (i + 1), np.nan] if i % 2 else [0.0001, 0.0003])
    assert stats.frames == 7
    np.testing.assert_array_equal(stats.index[:7], np.arange(10, 17))
    assert stats.capacity >= 7  # the arrays grew to hold them
    np.testing.assert_allclose(stats.t_display[:7], 0.5 + np.arange(7))
    np.testing.assert_allclose(stats.start[:7], 100.0 + np.arange(7))
    np.testing.assert_allclose(stats.total[:7], 0.001 * np.arange(1, 8), rtol=1e-9)
    np.testing.assert_allclose(stats.offset[:7, 1], 0.0005)
    assert np.isnan(stats.dur[1, 1]) and stats.dur[2, 1] == 0.0003
    assert np.isnan(stats.dur[7:]).all()  # rows not recorded yet: no times
    assert stats.index.dtype == np.int64


def test_a_frame_with_fewer_times_than_tracks_leaves_the_rest_unrun():
    stats = FrameStats(["a", "b"], 0.01)
    gpu = stats.add_track("gpu")
    stats.record(0, 0.0, 0.0, 0.002, [0.0, 0.001], [0.001, 0.001])
    assert gpu == 2 and np.isnan(stats.dur[0, gpu]) and np.isnan(stats.offset[0, gpu])
    assert stats.add_track("gpu") == gpu and stats.tracks == ["a", "b", "gpu"]
    assert stats.measured == ["gpu"]


def test_summary_counts_frames_over_each_budget():
    stats = FrameStats(["fast", "slow"], budget_s=0.010, track_budget_s={"slow": 0.004})
    durations = [0.002, 0.003, 0.005, 0.006]  # two over the slow track's 4 ms
    for i, d in enumerate(durations):
        stats.record(i, 0.0, 0.0, 0.004 * (i + 1), [0.0, d], [d / 2, d])
    frame, fast, slow = stats.summary()
    assert (frame.name, fast.name, slow.name) == ("frame", "fast", "slow")
    assert frame.over_budget == stats.deadline_misses == 2  # 12 and 16 ms frames
    assert fast.over_budget == 0  # no budget of its own
    assert slow.over_budget == 2
    assert slow.frames == 4 and slow.mean_ms == pytest.approx(4.0)
    assert slow.median_ms == pytest.approx(4.0) and slow.max_ms == pytest.approx(6.0)


def test_a_track_that_never_ran_summarises_as_empty():
    stats = FrameStats(["idle"], budget_s=0.01)
    stats.record(0, 0.0, 0.0, 0.001, [np.nan], [np.nan])
    idle = stats.summary()[1]
    assert idle.name == "idle" and idle.frames == 0 and idle.over_budget == 0
    assert math.isnan(idle.median_ms)


def test_a_time_equal_to_its_budget_is_not_over_it():
    stats = FrameStats(["s"], budget_s=0.25, track_budget_s={"s": 0.125})
    stats.record(0, 0.0, 0.0, 0.25, [0.0], [0.125])  # exact in binary
    assert [s.over_budget for s in stats.summary()] == [0, 0] and stats.deadline_misses == 0


def test_as_dict_gives_every_frame_in_milliseconds():
    stats = FrameStats(["s"], budget_s=0.0111)
    stats.record(3, 0.25, 10.0, 10.0021234567, [0.0], [0.0012345678])
    stats.record(4, 0.26, 10.1, 10.1010, [np.nan], [np.nan])
    stats.faults.append(StageFault("s", 4, "ValueError: x", "tb"))
    stats.counters["s"] = {"rejected": 2}
    data = stats.as_dict()
    assert data["frames"] == 2 and data["budget_ms"] == pytest.approx(11.1)
    assert data["deadline_misses"] == 0
    assert data["ending"] == "completed" and data["interrupted"] is False
    assert data["ending_detail"] == "" and data["interrupted_in"] is None and data["hangs"] == []
    assert data["faults"][0]["stage"] == "s" and data["counters"] == {"s": {"rejected": 2}}
    per_frame = data["per_frame"]
    assert per_frame["index"] == [3, 4] and per_frame["t_display_s"] == [0.25, 0.26]
    assert per_frame["s"] == [1.234568, None]  # rounded to the nanosecond
    assert per_frame["frame_ms"][0] == pytest.approx(2.123457, abs=1e-6)
    assert [s["name"] for s in data["summary"]] == ["frame", "s"]


def test_chrome_trace_times_are_microseconds_from_the_first_frame():
    stats = FrameStats(["a", "b"], 0.01)
    stats.record(7, 0.0, 50.0, 50.004, [0.001, 0.003], [0.002, np.nan])  # b did not run
    stats.record(8, 0.0, 50.011, 50.015, [0.0, 0.002], [0.001, 0.0015])
    trace = stats.chrome_trace()
    assert trace["displayTimeUnit"] == "ms"
    events = trace["traceEvents"]
    spans = [(e["tid"], e["name"], round(e["ts"], 3), round(e["dur"], 3))
             for e in events if e["ph"] == "X"]
    assert spans == [(0, "frame 7", 0.0, 4000.0), (1, "a", 1000.0, 2000.0),
                     (0, "frame 8", 11000.0, 4000.0), (1, "a", 11000.0, 1000.0),
                     (2, "b", 13000.0, 1500.0)]
    assert all(e["pid"] == 1 for e in events)
    names = [(e["tid"], e["name"], e["args"]) for e in events if e["ph"] == "M"]
    assert names == [(0, "thread_name", {"name": "frame"}), (1, "thread_name", {"name": "a"}),
                     (2, "thread_name", {"name": "b"})]
    assert FrameStats(["a"], 0.01).chrome_trace()["traceEvents"][0]["args"] == {"name": "frame"}


def test_row_of_finds_recorded_frames_only():
    stats = FrameStats(["s"], 0.01)
    for index in (2, 3, 9):
        stats.record(index, 0.0, 0.0, 0.001, [0.0], [0.001])
    assert [stats.row_of(i) for i in (2, 3, 9)] == [0, 1, 2]
    assert stats.row_of(1) is None and stats.row_of(5) is None and stats.row_of(10) is None
    full = FrameStats(["s"], 0.01, capacity=2)
    for index in (0, 1):
        full.record(index, 0.0, 0.0, 0.001, [0.0], [0.001])
    assert full.row_of(2) is None  # past the last row of a full table


def test_a_fault_keeps_the_error_and_its_traceback():
    try:
        raise ValueError("bad input")
    except ValueError as exc:
        fault = StageFault.from_exception("tracking", 12, exc, phase="publish")
        expected = "".join(traceback.format_exception(exc))
    assert fault.error == "ValueError: bad input"
    assert fault.traceback == expected
    assert 'raise ValueError("bad input")' in fault.traceback
    assert (fault.stage, fault.frame, fault.phase) == ("tracking", 12, "publish")
    assert StageFault.from_exception("s", 1, KeyError("k")).phase == "process"


@pytest.mark.parametrize("phase,says", [
    ("process", "'s' raised in frame 5 and was disabled: E: m"),
    ("step", "'s' raised in frame 5 and ended the run: E: m"),
    ("exit", "'s' raised SystemExit in frame 5, which ended the run: E: m"),
    ("publish", "'s' could not publish its outputs in frame 5 and was disabled: E: m"),
    ("close", "'s' failed in close: E: m"),
    ("other", "'s' failed (other): E: m"),
])
def test_a_fault_describes_what_followed(phase, says):
    assert StageFault("s", 5, "E: m", "", phase).describe() == says


@pytest.mark.parametrize("returned,says", [
    (True, "returned after 2.500 s"),
    (False, "had not returned after 2.500 s when the run ended"),
    (None, "had not returned after 2.500 s"),
])
def test_a_hang_describes_whether_it_returned(returned, says):
    hang = StageHang("audio", 9, 0.25, 2.5, returned, "stack")
    assert hang.describe() == f"'audio' hung in frame 9: {says} (limit 0.250 s)"


def test_rows_are_the_same_whether_read_pending_or_moved_into_the_arrays():
    from vrshare.pipeline.stats import FLUSH_ROWS

    frames = 2 * FLUSH_ROWS + 7
    stats = FrameStats(["a", "b"], budget_s=0.01, capacity=4)
    expected_dur = np.full((frames, 3), np.nan)
    expected_off = np.full((frames, 3), np.nan)
    for i in range(frames):
        width = 2 if i < FLUSH_ROWS + 3 else 3  # a track added mid-run: longer lists after
        if i == FLUSH_ROWS + 3:
            assert stats.add_track("gpu") == 2
        offsets = [0.001 * i, 0.002 * i, np.nan][:width]
        durations = [0.0001 * i, np.nan, np.nan][:width]
        stats.record(i, 0.5 * i, 10.0 + i, 10.0 + i + 0.01, offsets, durations)
        expected_off[i, :width] = offsets
        expected_dur[i, :width] = durations
        if i >= 3:  # a measurement three frames late, on a pending or a moved row
            assert stats.set_later(i - 3, 1, 0.03 * i, began=10.0 + (i - 3) + 0.004)
            expected_dur[i - 3, 1] = 0.03 * i
            expected_off[i - 3, 1] = 0.004
        if i == FLUSH_ROWS // 2:  # reading in the middle of a block moves the rows in
            np.testing.assert_allclose(stats.dur[: i + 1, :2], expected_dur[: i + 1, :2])
    assert not stats.set_later(frames + 5, 0, 1.0)  # a frame never recorded
    assert stats.frames == frames
    np.testing.assert_array_equal(stats.index[:frames], np.arange(frames))
    np.testing.assert_allclose(stats.t_display[:frames], 0.5 * np.arange(frames))
    np.testing.assert_allclose(stats.total[:frames], 0.01, rtol=1e-6)
    np.testing.assert_allclose(stats.dur[:frames], expected_dur, rtol=1e-9)
    np.testing.assert_allclose(stats.offset[:frames], expected_off, rtol=1e-6, atol=1e-12)


def test_a_late_measurement_of_a_moved_frame_leaves_the_pending_frames_pending():
    from vrshare.pipeline.stats import FLUSH_ROWS

    stats = FrameStats(["a", "gpu"], budget_s=0.01)
    for i in range(FLUSH_ROWS + 2):  # the first FLUSH_ROWS frames move into the arrays
        stats.record(i, 0.0, float(i), i + 0.5, [0.0, np.nan], [0.1, np.nan])
    assert stats.set_later(FLUSH_ROWS - 1, 1, 0.25)  # three frames late, already moved
    assert stats.set_later(FLUSH_ROWS + 1, 1, 0.5)  # pending
    assert len(stats._pending) == 2  # neither measurement moved the pending frames
    assert stats.dur[FLUSH_ROWS - 1, 1] == 0.25 and stats.dur[FLUSH_ROWS + 1, 1] == 0.5
    assert np.isnan(stats.dur[FLUSH_ROWS, 1])
