"""Quaternion/matrix helpers against scipy, eye matrices against hand-computed cases."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation, Slerp

from vrshare.geometry import eyes, quat

finite = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)
vec4 = arrays(np.float64, 4, elements=finite).filter(lambda q: np.linalg.norm(q) > 0.1)
vec3 = arrays(np.float64, 3, elements=st.floats(-10, 10))
rotvec = arrays(np.float64, 3, elements=st.floats(-1.8, 1.8))  # |r| < pi


def unit(q):
    return q / np.linalg.norm(q)


def same_rotation(a, b, tol=1e-9):
    """Quaternions equal up to sign."""
    return min(np.abs(a - b).max(), np.abs(a + b).max()) < tol


@given(vec4, vec4)
def test_multiply_matches_scipy(a, b):
    a, b = unit(a), unit(b)
    expected = (Rotation.from_quat(a) * Rotation.from_quat(b)).as_quat()
    assert same_rotation(quat.multiply(a, b), expected)


@given(vec4, vec3)
def test_rotate_and_matrix_match_scipy(q, v):
    q = unit(q)
    r = Rotation.from_quat(q)
    np.testing.assert_allclose(quat.rotate(q, v), r.apply(v), atol=1e-9)
    np.testing.assert_allclose(quat.to_matrix(q), r.as_matrix(), atol=1e-12)


@given(rotvec)
def test_exp_log_match_scipy(r):
    q = quat.from_rotvec(r)
    assert same_rotation(q, Rotation.from_rotvec(r).as_quat())
    np.testing.assert_allclose(quat.to_rotvec(q), r, atol=1e-9)
    np.testing.assert_allclose(quat.to_rotvec(-q), r, atol=1e-9)  # sign does not matter


@given(vec4, vec4, st.floats(0.0, 1.0))
def test_slerp_matches_scipy(a, b, t):
    a, b = unit(a), unit(b)
    if abs(np.dot(a, b)) > 1 - 1e-9 or abs(np.dot(a, b)) < 1e-6:
        return  # identical or exactly opposite-axis halfway cases are ambiguous
    expected = Slerp([0, 1], Rotation.from_quat([a, b]))([t]).as_quat()[0]
    assert same_rotation(quat.slerp(a, b, t), expected, 1e-7)


@given(vec4, vec3)
def test_pose_matrix_and_rigid_inverse(q, p):
    pose = np.concatenate([p, unit(q)])
    m = quat.pose_matrix(pose)
    np.testing.assert_allclose(m[:3, :3], Rotation.from_quat(unit(q)).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(m[:3, 3], p)
    np.testing.assert_allclose(quat.rigid_inverse(m) @ m, np.eye(4), atol=1e-9)
    np.testing.assert_allclose(quat.rigid_inverse(m), np.linalg.inv(m), atol=1e-9)


@settings(max_examples=50)
@given(arrays(np.float64, 3, elements=st.floats(-1e-7, 1e-7)))
def test_small_angles_are_finite_and_exact(r):
    q = quat.from_rotvec(r)
    assert np.all(np.isfinite(q)) and abs(np.linalg.norm(q) - 1) < 1e-12
    np.testing.assert_allclose(quat.to_rotvec(q), r, atol=1e-15)


def test_batched_shapes():
    rng = np.random.default_rng(0)
    q = Rotation.random(12, random_state=1).as_quat().reshape(3, 4, 4)
    v = rng.normal(size=(3, 4, 3))
    assert quat.rotate(q, v).shape == (3, 4, 3)
    assert quat.to_matrix(q).shape == (3, 4, 3, 3)
    assert quat.pose_matrix(np.concatenate([v, q], -1)).shape == (3, 4, 4, 4)


# -- eye matrices ----------------------------------------------------------------------

def test_symmetric_projection_by_hand():
    q = math.pi / 4  # tan = 1
    p = np.array(eyes.projection((-q, q, q, -q), near=1.0, far=3.0))
    # 2/(r-l) = 1; (f+n)/(f-n) = 2; 2fn/(f-n) = 3
    np.testing.assert_allclose(p, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -2, -3], [0, 0, -1, 0]],
                               atol=1e-12)


def test_asymmetric_projection_maps_frustum_edges():
    left, right, up, down = -math.pi / 4, 0.0, math.atan(0.5), -math.atan(0.25)
    n, f = 0.5, 10.0
    p = np.array(eyes.projection((left, right, up, down), n, f))
    # by hand: w = tan(r) - tan(l) = 1, h = 0.5 + 0.25 = 0.75
    assert p[0, 0] == pytest.approx(2.0) and p[0, 2] == pytest.approx(-1.0)
    assert p[1, 1] == pytest.approx(2 / 0.75) and p[1, 2] == pytest.approx(0.25 / 0.75)
    corners = {(-1, -1): (n * -1.0, n * -0.25, -n), (1, 1): (0.0, n * 0.5, -n)}
    for (nx, ny), point in corners.items():
        clip = p @ np.array([*point, 1.0])
        np.testing.assert_allclose(clip[:3] / clip[3], [nx, ny, -1.0], atol=1e-12)
    far_point = p @ np.array([0.0, 0.0, -f, 1.0])
    assert far_point[2] / far_point[3] == pytest.approx(1.0)


def test_projection_batch_matches_single():
    fovs = np.array([[-0.9, 0.7, 0.8, -0.95], [-0.7, 0.9, 0.8, -0.95]])
    out = np.zeros((2, 4, 4), np.float32)
    eyes.projection_batch(fovs, 0.05, 100.0, out)
    for i in range(2):
        np.testing.assert_allclose(out[i], eyes.projection(fovs[i], 0.05, 100.0), rtol=1e-6)


@pytest.mark.parametrize("fov,near,far", [
    ((0.5, -0.5, 0.5, -0.5), 0.1, 10.0),  # left > right
    ((-0.5, 0.5, 0.5, -0.5), 0.0, 10.0),  # near 0
    ((-0.5, 0.5, 0.5, -0.5), 1.0, 0.5),  # far < near
    ((-1.6, 0.5, 0.5, -0.5), 0.1, 10.0),  # beyond 90 degrees
])
def test_bad_projection_raises(fov, near, far):
    with pytest.raises(ValueError):
        eyes.projection(fov, near, far)


def test_projection_errors_give_the_values_and_the_rule():
    with pytest.raises(ValueError) as err:
        eyes.projection((-0.5, 0.5, 0.5, -0.5), 1.0, 0.5)
    assert str(err.value) == "need 0 < near < far, got near=1.0 far=0.5"
    with pytest.raises(ValueError) as err:
        eyes.projection((0.5, -0.5, 0.25, -0.25), 0.1, 10.0)
    assert str(err.value) == ("field of view (left=0.5, right=-0.5, up=0.25, down=-0.25) rad "
                              "must have -pi/2 < left < right < pi/2 and -pi/2 < down < up "
                              "< pi/2")


H = math.pi / 2


@pytest.mark.parametrize("fov,near,far", [
    ((-0.5, 0.5, 0.5, -0.5), 1.0, 1.0),  # near == far
    ((0.3, 0.3, 0.5, -0.5), 0.1, 10.0),  # left == right
    ((-0.5, 0.5, 0.3, 0.3), 0.1, 10.0),  # down == up
    ((-H, 0.5, 0.5, -0.5), 0.1, 10.0), ((-0.5, H, 0.5, -0.5), 0.1, 10.0),  # 90 degrees
    ((-0.5, 0.5, H, -0.5), 0.1, 10.0), ((-0.5, 0.5, 0.5, -H), 0.1, 10.0),
    ((-0.5, 2.0, 0.5, -0.5), 0.1, 10.0), ((-2.0, 0.5, 0.5, -0.5), 0.1, 10.0),  # beyond
    ((-0.5, 0.5, 2.0, -0.5), 0.1, 10.0), ((-0.5, 0.5, 0.5, -2.0), 0.1, 10.0),
])
def test_projection_refuses_each_bound(fov, near, far):
    with pytest.raises(ValueError, match="near < far" if near == far else "field of view"):
        eyes.projection(fov, near, far)


def test_projection_takes_wide_fields_of_view_just_inside_90_degrees():
    wide = eyes.projection((-1.5, 1.5, 1.5, -1.5), 0.1, 10.0)  # 86 degrees each side
    assert wide[0][0] == pytest.approx(2 / (2 * math.tan(1.5)))


def test_eye_views_by_hand():
    out = np.zeros((2, 4, 4), np.float32)
    head = np.array([1.0, 1.6, -2.0, 0, 0, 0, 1], np.float32)
    eyes.eye_views(head, 0.064, out)
    # identity orientation: each view is a translation by minus the eye position
    np.testing.assert_allclose(out[0][:3, 3], [-(1.0 - 0.032), -1.6, 2.0], atol=1e-6)
    np.testing.assert_allclose(out[1][:3, 3], [-(1.0 + 0.032), -1.6, 2.0], atol=1e-6)
    # turn the head 90 degrees left (about +Y): its +X (right) axis points to world -Z
    yaw = np.array([0, math.sin(math.pi / 4), 0, math.cos(math.pi / 4)])
    eyes.eye_views(np.concatenate([[0, 0, 0], yaw]).astype(np.float32), 0.064, out)
    right_eye_world = np.array([0, 0, -0.032, 1.0])
    np.testing.assert_allclose(out[1] @ right_eye_world, [0, 0, 0, 1], atol=1e-6)
    # a point 1 m ahead of the head (world -X after the turn) is straight ahead of the eyes
    ahead = out[0] @ np.array([-1.0, 0, 0, 1])
    np.testing.assert_allclose(ahead[:3], [0.032, 0, -1.0], atol=1e-6)


def test_quaternion_maths_keeps_float32():
    """Bank buffers are float32: the helpers must not widen them (an upcast would make
    every write into a float32 buffer a converting copy)."""
    q = Rotation.random(5, random_state=3).as_quat().astype(np.float32)
    v = np.random.default_rng(3).normal(size=(5, 3)).astype(np.float32)
    pose = np.concatenate([v, q], axis=-1)
    results = {"conjugate": quat.conjugate(q), "multiply": quat.multiply(q, q),
               "rotate": quat.rotate(q, v), "to_matrix": quat.to_matrix(q),
               "pose_matrix": quat.pose_matrix(pose),
               "rigid_inverse": quat.rigid_inverse(quat.pose_matrix(pose))}
    assert {k: r.dtype for k, r in results.items()} == {k: np.float32 for k in results}


def test_rigid_inverse_of_a_batch():
    """Each matrix of a batch is inverted on its own (rotation transposed per matrix)."""
    q = Rotation.random(6, random_state=4).as_quat()
    p = np.random.default_rng(4).normal(size=(6, 3))
    m = quat.pose_matrix(np.concatenate([p, q], axis=-1))
    np.testing.assert_allclose(quat.rigid_inverse(m), np.linalg.inv(m), atol=1e-12)


@pytest.mark.parametrize("axis", [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]])
def test_from_matrix_of_half_turns(axis):
    """A half turn has trace -1, so the quaternion comes from the largest diagonal
    entry, whichever axis that is."""
    r = Rotation.from_rotvec(math.pi * unit(np.array(axis, float)))
    assert same_rotation(quat.from_matrix(r.as_matrix()), r.as_quat(), 1e-12)


@pytest.mark.parametrize("angle", [0.3, 2.5])  # trace > 0 and trace < 0
def test_from_matrix_of_a_slightly_scaled_rotation_is_unit(angle):
    """A matrix that is a rotation only up to rounding or scale (a float32 view matrix)
    still gives a unit quaternion of that rotation."""
    r = Rotation.from_rotvec(angle * unit(np.array([0.2, -0.5, 0.8])))
    q = quat.from_matrix(1.001 * r.as_matrix())
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-12)
    assert same_rotation(q, r.as_quat(), 1e-3)


@pytest.mark.parametrize("angle", [0.5e-6, 0.99e-6, 1.01e-6])  # around quat.SMALL_ANGLE
def test_small_angle_series_continues_the_exact_exp_map(angle):
    """Below SMALL_ANGLE the exp map uses its Taylor series: it must agree with the exact
    sin(a/2)/a to float64 precision on both sides of the switch."""
    r = angle * unit(np.array([0.3, -0.4, 0.5]))
    np.testing.assert_allclose(quat.from_rotvec(r)[:3], r * math.sin(angle / 2) / angle,
                               rtol=4e-16, atol=0)


# -- rotations from numbers, and back to OpenXR eye poses -----------------------------

def test_euler_xyz_and_axis_angle_match_scipy():
    """A run file's rotation = [rx, ry, rz] degrees is X first, then Y, then Z, about the
    world axes (scipy's extrinsic "xyz")."""
    from vrshare.geometry import rotation

    for degrees in ([30.0, 0.0, 0.0], [0.0, -50.0, 0.0], [0.0, 0.0, 70.0], [10.0, 120.0, -35.0]):
        np.testing.assert_allclose(rotation.euler_xyz(degrees),
                                   Rotation.from_euler("xyz", degrees, degrees=True).as_matrix(),
                                   atol=1e-12)
    axis = unit(np.array([0.3, -0.8, 0.5]))
    np.testing.assert_allclose(rotation.axis_angle(axis, 2.0),
                               Rotation.from_rotvec(2.0 * axis).as_matrix(), atol=1e-12)


def test_cross_matrix_is_the_cross_product():
    from vrshare.geometry import rotation

    rng = np.random.default_rng(5)
    a, v = rng.normal(size=(4, 2, 3)), rng.normal(size=(4, 2, 3))
    k = rotation.cross_matrix(a)
    assert k.shape == (4, 2, 3, 3)
    np.testing.assert_allclose((k @ v[..., None])[..., 0], np.cross(a, v), atol=1e-12)


def test_eye_poses_and_fields_of_view_come_back_from_the_matrices():
    """What an OpenXR projection layer is told (each eye's pose and field of view) is the
    pose and field of view the matrices were made from."""
    q = Rotation.from_rotvec([0.3, -1.1, 0.4]).as_quat()
    head = np.array([0.5, 1.6, -2.0, *q])
    views = eyes.eye_views(head, 0.064)
    for eye, side in enumerate((-1, 1)):
        pose = eyes.eye_pose_from_view(views[eye])
        expected = head[:3] + quat.rotate(q, np.array([side * 0.032, 0.0, 0.0]))
        np.testing.assert_allclose(pose[:3], expected, atol=1e-12)
        assert same_rotation(pose[3:], q, 1e-12)
    fov = (-0.9, 0.7, 0.8, -0.95)
    proj = np.array(eyes.projection(fov, 0.05, 100.0))
    np.testing.assert_allclose(eyes.fov_from_projection(proj), fov, atol=1e-12)


@given(st.floats(-3.1, 3.1), st.floats(-1.5, 1.5))
def test_yaw_then_pitch_matches_scipy_and_turns_the_way_it_says(yaw, pitch):
    expected = Rotation.from_rotvec([0.0, yaw, 0.0]) * Rotation.from_rotvec([pitch, 0.0, 0.0])
    assert same_rotation(quat.from_yaw_pitch(yaw, pitch), expected.as_quat())
    forward = np.array([0.0, 0.0, -1.0])  # -Z, the OpenXR view direction
    left = quat.rotate(quat.from_yaw_pitch(math.pi / 2), forward)
    up = quat.rotate(quat.from_yaw_pitch(0.0, math.pi / 2), forward)
    np.testing.assert_allclose(left, [-1.0, 0.0, 0.0], atol=1e-12)  # positive yaw: left
    np.testing.assert_allclose(up, [0.0, 1.0, 0.0], atol=1e-12)  # positive pitch: up
