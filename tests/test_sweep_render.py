"""vrshare render: the same images however the trace is cut into chunks, poses and
cameras that are those the images were drawn with, intrinsics that agree with the
projection matrices, and a trace's unusable rows left out."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from sweepkit import small_table, write_run_file

from vrshare.cli import main
from vrshare.geometry import quat
from vrshare.stages.tracking.trace import Trace, interpolate, read_trace, write_trace
from vrshare.sweep import Placement, SweepError
from vrshare.sweep.playback import PlaybackSettings, eye_matrices
from vrshare.sweep.render import head_rows, render

LOCAL = Placement(local=True)
FOV = (-0.7, 0.5, 0.6, -0.4)  # rad: an asymmetric field of view (left, right, up, down)


def _trace(path, seconds=0.2, hz=60.0):
    """A head turning left at 1 rad/s and stepping right, plus a controller row."""
    t = np.arange(0.0, seconds + 1e-9, 1.0 / hz)
    poses = np.zeros((len(t), 7))
    poses[:, 0] = 0.3 * t
    poses[:, 1] = 1.6
    poses[:, 3:] = [quat.from_yaw_pitch(yaw) for yaw in t]
    write_trace(path, Trace(np.r_[t, 0.0], np.r_[np.zeros(len(t), int), 1],
                            np.vstack([poses, [0, 1, 0, 0, 0, 0, 1]])))
    return path


@pytest.fixture
def run_file(tmp_path):
    table = small_table()
    table["pipeline"]["frame_hz"] = 30.0
    table["stage"][0]["settings"].update(fov_left=list(FOV), fov_right=list(FOV))
    return write_run_file(tmp_path / "run.toml", table)


def _images(folder):
    return {p.name: np.asarray(Image.open(p)) for p in sorted((folder / "frames").glob("*.png"))}


def test_chunks_render_the_frames_a_single_chunk_renders(tmp_path, run_file):
    trace = _trace(tmp_path / "head.csv")
    one = render(run_file, trace, tmp_path / "one", LOCAL, chunk=100)
    three = render(run_file, trace, tmp_path / "three", LOCAL, chunk=3)
    assert one.frames == three.frames == 7 and not one.failed and not three.failed  # 0.2 s
    a, b = _images(tmp_path / "one"), _images(tmp_path / "three")
    assert list(a) == [f"frame_{k:06d}.png" for k in range(7)] == list(b)
    for name in a:
        assert a[name].shape == (32, 64, 4)
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not np.array_equal(a["frame_000000.png"], a["frame_000006.png"])  # the head moved
    assert sorted(p.name for p in (tmp_path / "three" / "logs").iterdir()) == [
        "chunk_000000.log", "chunk_000003.log", "chunk_000006.log"]


def test_poses_and_cameras_are_the_ones_the_frames_were_drawn_with(tmp_path, run_file):
    trace = _trace(tmp_path / "head.csv")
    assert main(["render", str(run_file), "--trace", str(trace), "--out", str(tmp_path / "r"),
                 "--frames", "4", "--chunk", "2", "--local"]) == 0
    cameras = json.loads((tmp_path / "r" / "cameras.json").read_text())
    source = read_trace(trace)
    t_head, p_head = source.of(0)
    expected = interpolate(t_head, p_head, np.arange(4) / 30.0)
    written = read_trace(tmp_path / "r" / "poses.csv")
    np.testing.assert_allclose(written.pose, expected, atol=1e-6)
    np.testing.assert_allclose(written.t, np.arange(4) / 30.0, atol=1e-6)
    assert [f["index"] for f in cameras["frames"]] == [0, 1, 2, 3]
    settings = PlaybackSettings(ipd=cameras["ipd_m"], near=cameras["near_m"],
                                far=cameras["far_m"], fov_left=FOV, fov_right=FOV,
                                poses=(tuple(expected[0]),))
    for f, pose in zip(cameras["frames"], expected, strict=True):
        view, proj = eye_matrices(pose, settings)
        np.testing.assert_array_equal(np.float32(f["eye_view"]), view)
        np.testing.assert_array_equal(np.float32(f["eye_proj"]), proj)
        assert (tmp_path / "r" / f["image"]).exists()

    # the pinhole intrinsics put a point where the projection matrix puts it
    left = cameras["eyes"]["left"]
    assert (left["width"], left["height"]) == (32, 32)
    proj = np.array(cameras["frames"][0]["eye_proj"][0])
    for point in ([0.3, -0.2, -2.0], [-0.5, 0.4, -1.0]):
        clip = proj @ np.r_[point, 1.0]
        ndc = clip[:2] / clip[3]
        u, v = (ndc[0] + 1) / 2 * 32, (1 - ndc[1]) / 2 * 32
        x, y = point[0] / -point[2], point[1] / -point[2]
        assert u == pytest.approx(left["cx"] + left["fx"] * x)
        assert v == pytest.approx(left["cy"] - left["fy"] * y)
    assert left["cx"] == pytest.approx(32 * math.tan(0.7) / (math.tan(0.7) + math.tan(0.5)))


def test_unusable_head_rows_are_left_out_with_a_warning(caplog):
    t = np.array([0.0, 0.1, 0.05, 0.2, 0.3])
    poses = np.tile([0, 1.6, 0, 0, 0, 0, 1.0], (5, 1))
    poses[3, 0] = np.nan
    kept_t, kept = head_rows(Trace(t, np.zeros(5, int), poses), "trace.csv")
    np.testing.assert_array_equal(kept_t, [0.0, 0.1, 0.3])  # backwards and NaN rows left out
    assert "2 of 5 head rows left out" in caplog.text
    with pytest.raises(SweepError, match="no head rows"):
        head_rows(Trace(t, np.ones(5, int), poses), "trace.csv")


def test_a_signal_while_the_video_is_written_leaves_one_that_opens(tmp_path, monkeypatch):
    """The command's Ctrl-C or SIGTERM landing in a frame fed to ffmpeg waits for that
    frame: the video is then closed with what it holds, and opens."""
    import signal

    imageio = pytest.importorskip("imageio.v2")
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    from vrshare.cli import Endings
    from vrshare.sweep.render import _video

    frames = []
    for k in range(3):
        Image.new("RGB", (16, 8), (40 * k, 90, 200)).save(tmp_path / f"f{k}.png")
        frames.append({"image": f"f{k}.png"})
    get_writer = imageio.get_writer

    def writer_signalled_in_its_first_frame(*args, **kwargs):
        writer = get_writer(*args, **kwargs)
        append = writer.append_data

        def append_data(image):
            signal.raise_signal(signal.SIGTERM)  # lands as the frame is fed to ffmpeg
            append(image)

        writer.append_data = append_data
        return writer

    monkeypatch.setattr(imageio, "get_writer", writer_signalled_in_its_first_frame)
    endings = Endings()
    endings.install()
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            _video(tmp_path, {"frame_hz": 30.0, "frames": frames})
    finally:
        endings.restore()
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "render.mp4"))
    assert next(reader)["size"] == (16, 8) and sum(1 for _ in reader) == 1
