"""Optical tracking: marker layouts, the closed loop against the virtual camera's known
poses (bounds from the geometry: pixel error -> pose error), and bad input (nothing in
view, occlusion, motion blur, missing video, folder or calibration files)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from glkit import gl_ctx  # noqa: F401  (fixture)

from vrshare.geometry import quat
from vrshare.geometry.pinhole import CameraSpec
from vrshare.pipeline import Frame, Pipeline, StageConfig
from vrshare.stages.optical.markers import BoardSpec, MarkerError, MarkerLayout

cv2 = pytest.importorskip("cv2")
pytest.importorskip("trimesh")

from vrshare.stages.optical import OpticalSettings, OpticalTrackingStage  # noqa: E402
from vrshare.stages.optical.calibration import CalibrationError, load_calibration  # noqa: E402
from vrshare.stages.optical.frames import FrameSourceError  # noqa: E402
from vrshare.stages.optical.markers import board_image  # noqa: E402
from vrshare.stages.optical.solve import SolveCounts, solve_rig  # noqa: E402
from vrshare.weights import WeightBank  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

DICT = "4X4_50"
BOARD = BoardSpec(kind="grid", cols=2, rows=2, marker_m=0.1, gap_m=0.02, position=(0, 1.5, -1.0))
PIXEL_ERROR = 0.5  # px: corner error of the renders (edges sampled from a mipmapped texture)


def pose_bounds(distance: float, focal: float, size: float, e_px: float) -> tuple[float, float]:
    """(position m, angle rad) a planar target of side ``size`` (m) at ``distance`` (m)
    allows when its corners are off by ``e_px`` under focal length ``focal`` (px): a
    tilt is seen only through foreshortening, the near edge's image growing against the
    far one's by ``f L / Z * (L tilt / Z)`` px, so ``tilt = e Z^2 / (f L^2)``; depth
    through the target's scale, ``Z^2 e / (f L)`` (doubled: corners' errors add up);
    the lateral position through the image offset and the tilt's lever arm,
    ``2 Z e / f + Z * tilt``."""
    tilt = e_px * distance**2 / (focal * size**2)
    depth = 2 * distance**2 * e_px / (focal * size)
    lateral = 2 * distance * e_px / focal + distance * tilt
    return math.hypot(depth, lateral), tilt


def angle_rad(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * math.acos(min(1.0, abs(float(np.dot(a, b)))))


def test_grid_layout_corners_are_the_boards_markers_facing_plus_z():
    layout = MarkerLayout.from_boards([BoardSpec(cols=2, rows=1, marker_m=0.1, gap_m=0.05)], DICT)
    assert layout.ids.tolist() == [0, 1]
    c = layout.corners
    centres = c.mean(axis=1)
    assert np.allclose(centres[1] - centres[0], [0.15, 0.0, 0.0])  # marker + gap along +X
    assert np.allclose(centres.mean(axis=0), 0.0)  # centred on the board
    normal = np.cross(c[0, 3] - c[0, 0], c[0, 1] - c[0, 0])  # front: (BL - TL) x (TR - TL)
    assert normal[2] > 0 and np.allclose(normal[:2], 0)
    assert c[0, 0, 1] > c[0, 3, 1]  # top-left above bottom-left: +Y is up
    table = MarkerLayout.from_table(layout.table())
    assert np.allclose(table.corners, c) and table.ids.tolist() == [0, 1]


def test_layout_refuses_ids_shared_by_two_boards_or_past_the_dictionary():
    with pytest.raises(MarkerError, match="more than one board"):
        MarkerLayout.from_boards([BoardSpec(), BoardSpec(device="left")], DICT)
    with pytest.raises(MarkerError, match="dictionary"):
        MarkerLayout.from_boards([BoardSpec(first_id=48)], DICT)
    with pytest.raises(MarkerError, match="unknown marker dictionary"):
        MarkerLayout.from_boards([BoardSpec()], "5X5_7")


def test_same_markers_in_two_stages_are_one_param_buffer():
    bank = WeightBank()
    for name in ("cam_a", "cam_b"):
        stage = OpticalTrackingStage(OpticalSettings(source="folder", path="x"), name=name)
        with pytest.raises(FrameSourceError):  # the folder is missing: setup got past the param
            stage.setup(bank, StageConfig(stage.settings))
    assert bank.report().shared_params == {"cam_b/optical_markers": "cam_a/optical_markers"}


def test_a_solve_that_shows_the_markers_from_behind_is_refused_as_flipped():
    layout = MarkerLayout.from_boards([BoardSpec(cols=2, rows=2)], DICT)
    k = CameraSpec(width=320, height=240).matrix()
    behind = np.eye(4)  # the board's front (+Z) faces away from the camera, 1 m ahead
    behind[2, 3] = 1.0
    p = layout.corners.reshape(-1, 3) @ behind[:3, :3].T + behind[:3, 3]
    img = (p[:, :2] / p[:, 2:]) @ k[:2, :2].T + k[:2, 2]
    counts = SolveCounts()
    assert solve_rig(layout.corners, img.reshape(-1, 4, 2), k, np.zeros(5), None, 0.2,
                     counts) is None
    assert counts.flipped == 1


def _fronto_image(spec: BoardSpec, px_per_m: float, size: tuple[int, int],
                  dict_name: str = DICT) -> np.ndarray:
    board = board_image(spec, dict_name, px_per_m, margin_m=spec.marker_m / 2)
    image = np.full((size[1], size[0]), 255, np.uint8)
    h, w = board.shape
    y, x = (size[1] - h) // 2, (size[0] - w) // 2
    image[y:y + h, x:x + w] = board
    return image


@pytest.mark.parametrize("spec, dict_name", [
    (BoardSpec(device="left", marker_m=0.1, gap_m=0.02), DICT),
    (BoardSpec(device="left", kind="single", marker_m=0.15), "APRILTAG_36h11"),
    (BoardSpec(device="left", kind="charuco", cols=4, rows=3, marker_m=0.06, square_m=0.08),
     "5X5_50"),
])
def test_folder_of_images_gives_the_distance_its_scale_implies(tmp_path, spec, dict_name):
    """A board printed at p px/m, seen square-on with focal f (px), is at f / p metres."""
    cam = CameraSpec(width=320, height=240, fx=300.0, mount="world", rate_hz=10.0)
    folder = tmp_path / "frames"
    folder.mkdir()
    px_per_m = 600.0  # -> 0.5 m
    cv2.imwrite(str(folder / "000.png"), _fronto_image(spec, px_per_m, (320, 240), dict_name))
    stage = OpticalTrackingStage(OpticalSettings(source="folder", path="frames", camera=cam,
                                                 board=[spec], dictionary=dict_name))
    bank = WeightBank()
    stage.setup(bank, StageConfig(stage.settings, base_dir=tmp_path))
    stage.process(Frame(0, 2.0, 2.0, 0.01), bank)
    # the camera's frame: OpenXR looks down -Z, so the board is at z = -0.5
    assert bank["optical_valid"].tolist() == [0.0, 1.0, 0.0]
    assert bank["optical_poses"][1, :3] == pytest.approx([0.0, 0.0, -300 / px_per_m], abs=5e-3)
    assert bank["optical_time"][1] == 2.0  # the first image's time
    assert stage.counters()["missed left"] == 0


def test_missing_video_file_camera_and_folder_name_what_is_missing(tmp_path):
    for settings, match in ((OpticalSettings(source="video", path="nope.mp4"), "nope.mp4"),
                            (OpticalSettings(source="folder", path="none"), "none"),
                            (OpticalSettings(source="camera", device=97), "camera 97")):
        stage = OpticalTrackingStage(settings)
        with pytest.raises(FrameSourceError, match=match):
            stage.setup(WeightBank(), StageConfig(settings, base_dir=tmp_path))


def test_calibration_file_is_read_and_a_bad_one_named(tmp_path):
    good = tmp_path / "cam.json"
    good.write_text(json.dumps({"camera_matrix": [[500, 0, 320], [0, 500, 240], [0, 0, 1]],
                                "dist_coeffs": [0.1, 0, 0, 0, 0]}))
    calib = load_calibration(good)
    assert calib.k[0, 0] == 500 and calib.dist[0] == 0.1
    yaml = tmp_path / "cam.yml"
    store = cv2.FileStorage(str(yaml), cv2.FILE_STORAGE_WRITE)
    store.write("camera_matrix", calib.k)
    store.write("distortion_coefficients", calib.dist)
    store.release()
    assert np.allclose(load_calibration(yaml).k, calib.k)
    bad = tmp_path / "bad.json"
    bad.write_text('{"camera_matrix": [[0, 0, 0], [0, 1, 0], [0, 0, 1]]}')
    with pytest.raises(CalibrationError, match="bad.json"):
        load_calibration(bad)
    with pytest.raises(CalibrationError, match="missing.json"):
        load_calibration(tmp_path / "missing.json")


# -- the closed loop: the virtual camera draws, the stage solves --------------------------


def _rig(gl_ctx, tmp_path, camera: CameraSpec, extra=(), **settings):  # noqa: F811
    from optical_rig import MarkerRig, marker_scene_table

    table = marker_scene_table([BOARD], DICT, tmp_path, extra)
    s = OpticalSettings(camera=camera, board=[BOARD], dictionary=DICT, **settings)
    return MarkerRig(gl_ctx, table, s, tmp_path)


def _head(position, yaw_deg=0.0, pitch_deg=0.0) -> np.ndarray:
    q = quat.from_yaw_pitch(math.radians(yaw_deg), math.radians(pitch_deg))
    return np.concatenate([position, q])


@pytest.mark.parametrize("head", [
    _head([0.0, 1.5, 0.0]),
    _head([0.12, 1.45, -0.3], yaw_deg=12, pitch_deg=-5),
    _head([-0.2, 1.6, 0.2], yaw_deg=-15, pitch_deg=4),
])
def test_inside_out_recovers_the_head_pose_within_the_geometric_bound(gl_ctx, tmp_path, head):  # noqa: F811
    cam = CameraSpec(width=320, height=240, hfov_deg=60, position=(0.0, 0.05, -0.05))
    rig = _rig(gl_ctx, tmp_path, cam)
    try:
        from vrshare.render.camera import camera_pose

        rig.expose(lambda t: camera_pose(head, cam), 0.25)
        rig.track(0.3)
        bank = rig.bank
        distance = float(np.linalg.norm(np.array(BOARD.position) - head[:3]))
        pos_bound, ang_bound = pose_bounds(distance, cam.matrix()[0, 0], 0.22, PIXEL_ERROR)
        assert bank["optical_valid"][0] == 1.0
        got = bank["optical_poses"][0].astype(np.float64)
        assert np.linalg.norm(got[:3] - head[:3]) <= pos_bound
        assert angle_rad(got[3:], head[3:]) <= ang_bound
        assert bank["optical_time"][0] == 0.25  # the exposure's time, not the run's
        assert bank["optical_error"][0] < 1.0
    finally:
        rig.close()


def test_outside_in_recovers_a_controller_from_a_fixed_camera(gl_ctx, tmp_path):  # noqa: F811
    from optical_rig import MarkerRig, marker_scene_table

    controller = BoardSpec(kind="grid", cols=2, rows=1, marker_m=0.06, gap_m=0.01,
                           device="right", first_id=10, position=(0.2, 1.2, -0.6),
                           rotation_deg=(0.0, -20.0, 0.0))
    table = marker_scene_table([controller], DICT, tmp_path)
    cam = CameraSpec(width=320, height=240, hfov_deg=60, mount="world",
                     position=(0.0, 1.3, 0.0))
    # the stage's layout holds the board in the device's frame: at its origin
    local = BoardSpec(**{**controller.__dict__, "position": (0, 0, 0), "rotation_deg": (0, 0, 0)})
    s = OpticalSettings(camera=cam, board=[local], dictionary=DICT)
    rig = MarkerRig(gl_ctx, table, s, tmp_path)
    try:
        rig.expose(lambda t: np.array([*cam.position, 0, 0, 0, 1.0]), 0.1)
        rig.track(0.1)
        got = rig.bank["optical_poses"][2].astype(np.float64)
        assert rig.bank["optical_valid"].tolist() == [0.0, 0.0, 1.0]
        pos_bound, ang_bound = pose_bounds(0.62, cam.matrix()[0, 0], 0.13, PIXEL_ERROR)
        assert np.linalg.norm(got[:3] - controller.position) <= pos_bound
        want = quat.from_matrix(controller.rig_from_board()[:3, :3])
        assert angle_rad(got[3:], want) <= ang_bound
    finally:
        rig.close()


def test_no_marker_in_view_holds_the_pose_marks_it_invalid_and_counts(gl_ctx, tmp_path):  # noqa: F811
    from vrshare.render.camera import camera_pose

    cam = CameraSpec(width=160, height=120, hfov_deg=60)
    rig = _rig(gl_ctx, tmp_path, cam)
    try:
        facing = _head([0.0, 1.5, 0.0])
        rig.expose(lambda t: camera_pose(facing, cam), 0.0)
        rig.track(0.0)
        held = rig.bank["optical_poses"][0].copy()
        assert rig.bank["optical_valid"][0] == 1.0
        away = _head([0.0, 1.5, 0.0], yaw_deg=180)
        rig.expose(lambda t: camera_pose(away, cam), 0.1)
        rig.track(0.1)
        assert rig.bank["optical_valid"][0] == 0.0
        assert np.array_equal(rig.bank["optical_poses"][0], held)
        assert rig.bank["optical_time"][0] == 0.0  # its age: the last solve's exposure
        assert rig.stage.counters()["missed head"] == 1
        rig.track(0.2)  # no new exposure: nothing changes, nothing counted
        assert rig.stage.counters()["frames"] == 2
    finally:
        rig.close()


def test_occluded_markers_still_solve_from_the_rest(gl_ctx, tmp_path):  # noqa: F811
    from vrshare.render.camera import camera_pose

    cam = CameraSpec(width=320, height=240, hfov_deg=60)
    # a grey box in front of the board's left column of markers
    box = {"mesh": "box", "position": [-0.065, 1.5, -0.9], "scale": [0.13, 0.3, 0.02]}
    from optical_rig import MarkerRig, marker_scene_table

    table = marker_scene_table([BOARD], DICT, tmp_path, [box])
    table["primitive"] = [{"name": "box", "shape": "box", "color": [0.5, 0.5, 0.5]}]
    rig = MarkerRig(gl_ctx, table, OpticalSettings(camera=cam, board=[BOARD]), tmp_path)
    try:
        head = _head([0.0, 1.5, 0.0])
        image = rig.expose(lambda t: camera_pose(head, cam), 0.0)
        assert len(rig.stage.detector.detect(image).ids) == 2  # half the board hidden
        rig.track(0.0)
        got = rig.bank["optical_poses"][0].astype(np.float64)
        pos_bound, _ = pose_bounds(1.0, cam.matrix()[0, 0], 0.1, PIXEL_ERROR)
        assert rig.bank["optical_valid"][0] == 1.0
        assert np.linalg.norm(got[:3] - head[:3]) <= pos_bound
    finally:
        rig.close()


def test_motion_blur_smears_the_markers_and_the_pose_stays_within_the_blur(gl_ctx, tmp_path):  # noqa: F811
    from vrshare.render.camera import camera_pose

    cam = CameraSpec(width=320, height=240, hfov_deg=60, exposure_ms=10.0, blur_samples=4)
    rig = _rig(gl_ctx, tmp_path, cam)
    try:
        speed = 0.5  # m/s sideways: 5 mm during the exposure
        head_at = lambda t: _head([speed * t, 1.5, 0.0])  # noqa: E731
        image = rig.expose(lambda t: camera_pose(head_at(t), cam), 0.0)
        edges = np.abs(np.diff(image.astype(np.int16), axis=1)).max()
        assert edges < 250  # sub-frames averaged: no hard black-to-white step left
        rig.track(0.0)
        got = rig.bank["optical_poses"][0].astype(np.float64)
        pos_bound, _ = pose_bounds(1.0, cam.matrix()[0, 0], 0.22, PIXEL_ERROR)
        assert rig.bank["optical_valid"][0] == 1.0
        assert np.linalg.norm(got[:3] - head_at(0.0)[:3]) <= pos_bound + speed * 0.005
    finally:
        rig.close()


def test_pipeline_declares_the_camera_buffers_the_stage_reads():
    with pytest.raises(Exception, match="camera_image"):
        Pipeline([OpticalTrackingStage()]).setup(WeightBank(), StageConfig(None))


def test_optical_scene_runs_headless_and_tracks_the_replayed_head(gl_ctx):  # noqa: F811
    """scenes/optical.toml: the camera rides the replayed head; once the head faces a
    wall (after about 0.45 s of the trace) the stage's pose follows the tracking
    stage's, within its error plus the head's motion over the async latency."""
    from vrshare.display import open_display

    scene = Path(__file__).resolve().parent.parent / "scenes" / "optical.toml"
    run = open_display(scene, target="headless", width=16, height=16)
    try:
        run.play(90)
        bank = run.bank
        assert bank["optical_valid"][0] == 1.0
        assert 0.9 < bank["optical_time"][0] <= 1.0  # a recent exposure's time (s)
        gap = np.linalg.norm(bank["optical_poses"][0, :3] - bank["device_poses"][0, :3])
        assert gap < 0.06  # m: 4 frames at up to 1 m/s, plus the solve's error
        stage = next(s for s in run.pipeline.stages if s.name == "optical_tracking")
        assert stage.counters()["frames"] >= 25  # 30 Hz over 1 s
    finally:
        run.close()


def test_tracking_predicts_optical_poses_from_their_exposure_time_to_display_time():
    """source = "optical": the exposure time is the sample's time, so a head seen at
    x = 0 and x = 0.05 m 0.1 s apart is predicted 0.05 s past the newest exposure."""
    from vrshare import layout
    from vrshare.stages.tracking import TrackingStage
    from vrshare.stages.tracking.stage import TrackingSettings

    bank = WeightBank()
    poses = bank.state(layout.OPTICAL_POSES, shape=(3, 7), dtype="float32")
    valid = bank.state(layout.OPTICAL_VALID, shape=(3,), dtype="float32")
    times = bank.state(layout.OPTICAL_TIME, shape=(3,), dtype="float64")
    stage = TrackingStage(TrackingSettings(source="optical", predictor="constant_velocity",
                                           max_extrapolation_ms=100.0))
    Pipeline([stage], sources=(layout.OPTICAL_POSES, layout.OPTICAL_VALID,
                               layout.OPTICAL_TIME)).setup(bank, StageConfig(stage.settings))
    poses[:, 6] = 1.0
    valid[0] = 1.0
    for k, (t_exposure, x) in enumerate(((0.0, 0.0), (0.1, 0.05))):
        poses[0, :3] = (x, 1.6, 0.0)
        times[0] = t_exposure
        stage.process(Frame(k, t_exposure + 0.02, t_exposure + 0.05, 0.011), bank)
    assert bank[layout.DEVICE_POSES][0, 0] == pytest.approx(0.075, abs=1e-6)
    assert bank[layout.DEVICE_VALID][0] == 1.0 and bank[layout.DEVICE_VALID][1] == 0.0


def test_without_opencv_the_stage_says_which_extra_to_install(monkeypatch):
    from vrshare.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    stage = OpticalTrackingStage(OpticalSettings(source="folder", path="x"))
    with pytest.raises(MissingDependency, match=r"vrshare\[optical\]"):
        stage.setup(WeightBank(), StageConfig(stage.settings))


def test_video_file_frames_are_stamped_with_their_own_times_and_the_end_holds(tmp_path):
    spec = BoardSpec(device="left", marker_m=0.1, gap_m=0.02)
    image = _fronto_image(spec, 600.0, (320, 240))
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0,
                             (320, 240), False)
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MJPG video")
    for _ in range(3):
        writer.write(image)
    writer.release()
    cam = CameraSpec(width=320, height=240, fx=300.0, mount="world")
    stage = OpticalTrackingStage(OpticalSettings(source="video", path="clip.avi", camera=cam,
                                                 board=[spec]))
    bank = WeightBank()
    stage.setup(bank, StageConfig(stage.settings, base_dir=tmp_path))
    try:
        stage.process(Frame(0, 5.0, 5.0, 0.01), bank)  # the first frame, at the start
        assert bank["optical_time"][1] == pytest.approx(5.0)
        stage.process(Frame(1, 5.25, 5.25, 0.01), bank)  # frames at 0.1 and 0.2 s are due
        assert bank["optical_time"][1] == pytest.approx(5.2)
        assert bank["optical_poses"][1, 2] == pytest.approx(-0.5, abs=5e-3)
        stage.process(Frame(2, 9.0, 9.0, 0.01), bank)  # past the end: nothing new
        assert bank["optical_time"][1] == pytest.approx(5.2)
        assert stage.counters()["frames"] == 2
    finally:
        stage.close()
