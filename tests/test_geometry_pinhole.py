"""The pinhole camera's intrinsics (OpenCV's convention) and the checks on its table,
without OpenCV: the optical tracker's tests (test_optical.py) use them through it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vrshare.geometry.pinhole import CameraSpec, fov_of


def test_the_matrix_is_opencvs_k_with_the_given_intrinsics():
    k = CameraSpec(width=640, height=480, fx=500.0, fy=520.0, cx=300.5, cy=250.25).matrix()
    assert k.dtype == np.float64
    np.testing.assert_array_equal(k, [[500.0, 0.0, 300.5], [0.0, 520.0, 250.25],
                                      [0.0, 0.0, 1.0]])


def test_without_intrinsics_the_focal_length_follows_the_fov_and_the_centre_the_image():
    k = CameraSpec(width=641, height=481, hfov_deg=90.0).matrix()
    fx = 641 / 2 / math.tan(math.radians(45.0))
    np.testing.assert_allclose(k, [[fx, 0.0, 320.0], [0.0, fx, 240.0], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize("cx, cy", [(0.0, 0.0), (0.5, 0.75), (639.0, 479.0)])
def test_a_principal_point_anywhere_on_the_image_is_kept(cx, cy):
    """Pixel centres are at integers: (0, 0) is the top-left pixel's centre, a valid
    principal point; only a negative value means "the image centre"."""
    k = CameraSpec(width=640, height=480, cx=cx, cy=cy).matrix()
    assert (k[0, 2], k[1, 2]) == (cx, cy)


def test_the_fov_runs_through_the_outer_pixel_edges():
    spec = CameraSpec(width=640, height=480, hfov_deg=70.0)
    left, right, up, down = fov_of(spec.matrix(), spec.width, spec.height)
    assert math.isclose(right - left, math.radians(70.0)) and math.isclose(left, -right)
    assert math.isclose(up, -down) and up > 0


@pytest.mark.parametrize("n", [0, 4, 5, 8, 12, 14])
def test_every_distortion_model_opencv_takes_is_kept_as_float64(n):
    coefficients = tuple(range(1, n + 1))  # integers in a run file
    d = CameraSpec(distortion=coefficients).dist_coeffs()
    assert d.dtype == np.float64
    np.testing.assert_array_equal(d, coefficients if n else np.zeros(5))


@pytest.mark.parametrize("n", [1, 2, 3, 6, 7, 9, 13, 15])
def test_other_numbers_of_distortion_coefficients_are_refused(n):
    with pytest.raises(ValueError) as err:
        CameraSpec(distortion=(0.1,) * n)
    assert str(err.value) == (f"camera distortion has {n} coefficients; OpenCV takes 4, 5, "
                              "8, 12 or 14")


@pytest.mark.parametrize("near, far", [(1.0, 1.0), (2.0, 1.0)])
def test_near_must_be_below_far(near, far):
    with pytest.raises(ValueError) as err:
        CameraSpec(near=near, far=far)
    assert str(err.value) == f"camera near ({near}) must be < far ({far})"
