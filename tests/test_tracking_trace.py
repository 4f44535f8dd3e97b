"""Trace files: format, errors, interpolation, bundled traces and the EyeNavGS converter."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vrshare import StageConfig, VirtualClock, WeightBank, resources
from vrshare.pipeline import Pipeline
from vrshare.stages.tracking import TrackingSettings, TrackingStage
from vrshare.stages.tracking.synthetic import synthetic_trace
from vrshare.stages.tracking.trace import TraceError, interpolate, read_trace, write_trace

TOOLS = Path(__file__).resolve().parent.parent / "tools"
HEADER = "t,device,px,py,pz,qx,qy,qz,qw"


def test_write_read_roundtrip(tmp_path):
    trace = synthetic_trace(seed=2, duration_s=0.5, rate_hz=30.0)
    path = write_trace(tmp_path / "t.csv", trace, ("a comment",))
    back = read_trace(path)
    np.testing.assert_allclose(back.t, trace.t, atol=1e-6)
    np.testing.assert_array_equal(back.device, trace.device)
    np.testing.assert_allclose(back.pose, trace.pose, atol=1e-6)
    assert back.devices() == [0, 1, 2]


@pytest.mark.parametrize("text,match", [
    ("t,dev,px\n", r"x\.csv:1: expected the header"),
    (f"{HEADER}\n0,nose,0,0,0,0,0,0,1\n", r"x\.csv:2: unknown device 'nose'"),
    (f"# c\n{HEADER}\n0,head,0,0,zero,0,0,0,1\n", r"x\.csv:3: fields .* must be numbers"),
    (f"{HEADER}\nnan,head,0,0,0,0,0,0,1\n", r"x\.csv:2: time 'nan' is not finite"),
    (f"{HEADER}\n0,head,0,0,0,0,0,1\n", r"x\.csv:2: expected 9 fields, got 8"),
    (f"{HEADER}\n", "no samples"),
    ("", "empty trace"),
])
def test_malformed_traces_name_file_and_line(tmp_path, text, match):
    (tmp_path / "x.csv").write_text(text)
    with pytest.raises(TraceError, match=match):
        read_trace(tmp_path / "x.csv")


def test_missing_trace(tmp_path):
    with pytest.raises(TraceError, match="nope.csv: trace file not found"):
        read_trace(tmp_path / "nope.csv")


def test_bad_rows_stay_in_the_trace_and_are_rejected_on_replay(tmp_path):
    rows = [HEADER, "0.00,head,0,1.6,0,0,0,0,1", "0.01,head,nan,1.6,0,0,0,0,1",
            "0.02,head,0,1.6,0,0,0,0,0", "0.03,head,0,1.6,0,0,0,0,1",
            "0.025,head,0,1.6,0,0,0,0,1", "0.04,head,0,1.6,0,0,0,0,1"]
    (tmp_path / "bad.csv").write_text("\n".join(rows) + "\n")
    trace = read_trace(tmp_path / "bad.csv")
    assert math.isnan(trace.pose[1, 0])
    stage = TrackingStage(TrackingSettings(source="trace", trace="bad.csv", loop=False))
    bank = WeightBank()
    Pipeline([stage]).setup(bank, StageConfig(stage.settings, base_dir=tmp_path))
    clock = VirtualClock(200.0)  # a frame every 5 ms: every row is seen
    for _ in range(12):
        stage.process(clock.wait_frame(), bank)
    assert stage.rejections == {"nonfinite": 1, "out_of_range": 0, "bad_quaternion": 1,
                                "time_backwards": 1, "lost": 0}
    assert np.all(np.isfinite(bank["head_pose"]))


def test_interpolate_matches_samples_and_slerp():
    times = np.array([0.0, 1.0, 3.0])
    rots = Rotation.from_rotvec([[0, 0, 0], [0, 1.0, 0], [0, 1.0, 0.5]])
    poses = np.concatenate([[[0, 0, 0], [1, 2, 3], [3, 2, 1]], rots.as_quat()], axis=1)
    got = interpolate(times, poses, np.array([0.0, 0.5, 1.0, 2.0, 5.0]))
    np.testing.assert_allclose(got[[0, 2, 4]], poses[[0, 1, 2]], atol=1e-12)  # 5 s: clamped
    np.testing.assert_allclose(got[1, :3], [0.5, 1, 1.5])
    np.testing.assert_allclose(Rotation.from_quat(got[1, 3:]).as_rotvec(), [0, 0.5, 0], atol=1e-12)
    np.testing.assert_allclose(got[3, :3], [2, 2, 2])


def test_bundled_traces_parse():
    room = read_trace(resources.path("scenes", "traces/eyenavgs_user101_room.csv"))
    bike = read_trace(resources.path("scenes", "traces/eyenavgs_user102_bicycle.csv"))
    for trace, step_ms in ((room, 14.0), (bike, 28.0)):
        assert trace.devices() == [0]
        assert np.median(np.diff(trace.t)) * 1e3 == pytest.approx(step_ms, abs=1.0)
        np.testing.assert_allclose(trace.pose[0, :3], [0, 1.6, 0])
        norms = np.linalg.norm(trace.pose[:, 3:], axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    synth = read_trace(resources.path("scenes", "traces/synthetic_3s.csv"))
    assert synth.devices() == [0, 1, 2] and synth.duration == pytest.approx(3.0 - 1 / 60)


# -- the EyeNavGS converter ----------------------------------------------------------------

@pytest.fixture
def converter():
    sys.path.insert(0, str(TOOLS))
    try:
        import convert_eyenavgs

        yield convert_eyenavgs
    finally:
        sys.path.remove(str(TOOLS))


def fake_eyenavgs(folder, scale, tilt):
    """Two head samples as EyeNavGS would log them (scene units, tilted scene frame)."""
    scene = Rotation.from_quat(tilt)
    header = ("ViewIndex,FOV1,FOV2,FOV3,FOV4,PositionX,PositionY,PositionZ,QuaternionX,"
              "QuaternionY,QuaternionZ,QuaternionW,GazePosX,GazePosY,GazePosZ,GazeQX,GazeQY,"
              "GazeQZ,GazeQW,Timestamp")
    lines = [header]
    truth = []
    for k, (head, yaw, ms) in enumerate([((0.1, 1.5, 0.2), 0.3, 0), ((0.2, 1.5, 0.1), 0.4, 14)]):
        r_track = Rotation.from_rotvec([0, yaw, 0])
        truth.append((np.array(head), r_track.as_quat(), (2 * ms + 4) / 2000))
        r_scene = scene.inv() * r_track  # what the dataset stores
        for eye, sign in ((0, -1), (1, 1)):
            p_eye = scene.inv().apply(np.array(head) + r_track.apply([sign * 0.031, 0, 0])) * scale
            q = r_scene.as_quat()
            lines.append(",".join(map(str, [eye, -0.9, 0.7, -0.9, 0.7, *p_eye, *q,
                                            *p_eye, *q, ms + 4 * eye])))
        assert k < 2
    (folder / "user1_room.csv").write_text("\n".join(lines) + "\n")
    (folder / "scene_setting.csv").write_text(
        "\ufeffScene_Name,Quaternion,Scale,Initial_Position\n"
        f'room,"{tilt[0]}, {tilt[1]}, {tilt[2]}, {tilt[3]}",{scale},"0,1.15,0"\n')
    return truth


def test_converter_recovers_the_head(tmp_path, converter):
    tilt = Rotation.from_rotvec([-0.47, 0, 0]).as_quat()
    truth = fake_eyenavgs(tmp_path, 2.0, tilt)
    scale, rotation, why = converter.scene_setting(tmp_path / "user1_room.csv")
    assert scale == 2.0 and "room" in why
    trace, facts = converter.convert(tmp_path / "user1_room.csv", scale, rotation, 0.0, None,
                                     None)
    assert facts["ipd_mm"] == pytest.approx(62.0)
    for i, (head, q, t) in enumerate(truth):
        np.testing.assert_allclose(trace.pose[i, :3], head, atol=1e-9)
        assert abs(abs(np.dot(trace.pose[i, 3:], q)) - 1) < 1e-9
        assert trace.t[i] == pytest.approx(t - truth[0][2])


def test_converter_command_writes_a_trace(tmp_path, converter, capsys):
    fake_eyenavgs(tmp_path, 1.25, [0.0, 0.0, 0.0, 1.0])
    out = tmp_path / "out.csv"
    assert converter.main([str(tmp_path / "user1_room.csv"), "-o", str(out),
                           "--origin", "0,1.6,0"]) == 0
    trace = read_trace(out)
    np.testing.assert_allclose(trace.pose[0, :3], [0, 1.6, 0], atol=1e-6)
    assert "Apache" in out.read_text()
    assert "2 head samples" in capsys.readouterr().out
    assert converter.main([str(tmp_path / "scene_setting.csv"), "-o", str(out)]) == 1
