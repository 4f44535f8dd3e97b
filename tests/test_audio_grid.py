"""The direction grid's fallback for sets that cannot be triangulated: rings of equal
elevation, blended linearly in azimuth (vrshare.stages.audio.grid)."""

import numpy as np
import pytest

from vrshare.stages.audio import grid


def unit(az_deg, el_deg) -> np.ndarray:
    """Head-frame unit vectors (+X right, +Y up, -Z front); azimuth from the front
    towards the right, degrees."""
    az, el = np.deg2rad(np.asarray(az_deg, float)), np.deg2rad(np.asarray(el_deg, float))
    return np.stack([np.sin(az) * np.cos(el), np.sin(el), -np.cos(az) * np.cos(el)], axis=-1)


# three directions (too few for a hull): a ring of two at 0 deg and one at -30 deg
MEASURED = unit([0.0, 90.0, 45.0], [0.0, 0.0, -30.0])
A, B, C = 0, 1, 2


def weights_of(idx, w):
    """{measured index: total weight} of one target."""
    out = {}
    for i, x in zip(idx, w, strict=True):
        if x > 0:
            out[int(i)] = out.get(int(i), 0.0) + float(x)
    return out


@pytest.mark.parametrize(("az", "el", "expected"), [
    (30.0, 10.0, {A: 2 / 3, B: 1 / 3}),  # the 0-deg ring, a third of the way from A to B
    (60.0, 12.0, {A: 1 / 3, B: 2 / 3}),
    (180.0, 5.0, {B: 2 / 3, A: 1 / 3}),  # across the back: from B at 90 round to A at 360
    (-90.0, 0.0, {B: 1 / 3, A: 2 / 3}),
    (10.0, -20.0, {C: 1.0}),  # nearer the -30-deg ring, which has one direction
    (-170.0, -25.0, {C: 1.0}),
    (45.0, -80.0, {C: 1.0}),
])
def test_a_target_blends_the_nearest_rings_neighbours_linearly_in_azimuth(az, el, expected):
    targets = unit([az], [el])
    idx, w = grid.interpolation_weights(MEASURED, targets)
    got = weights_of(idx[0], w[0])
    assert got.keys() == expected.keys()
    assert [got[k] for k in expected] == pytest.approx(list(expected.values()), abs=1e-9)


def test_every_target_of_a_batch_takes_its_own_ring():
    """Targets on both rings in one call, the single-direction ring first in elevation."""
    az = np.array([10.0, 30.0, -170.0, 60.0])
    el = np.array([-20.0, 10.0, -25.0, 12.0])
    idx, w = grid.interpolation_weights(MEASURED, unit(az, el))
    got = [weights_of(i, x) for i, x in zip(idx, w, strict=True)]
    assert [sorted(g) for g in got] == [[C], [A, B], [C], [A, B]]
    assert got[1][A] == pytest.approx(2 / 3) and got[3][B] == pytest.approx(2 / 3)
    assert idx.dtype == np.int64 and np.allclose(w.sum(axis=1), 1.0)


def test_rings_are_told_apart_to_half_a_degree():
    """Directions 0.2 deg apart in elevation are one ring; a target blends across both."""
    measured = unit([0.0, 90.0, 0.0], [0.2, -0.2, 40.0])
    idx, w = grid.interpolation_weights(measured, unit([45.0], [5.0]))
    assert weights_of(idx[0], w[0]) == pytest.approx({0: 0.5, 1: 0.5})


def test_a_ring_of_one_direction_measured_twice_blends_its_copies_over_a_full_turn():
    """Two measurements of the same direction: the span between them is a whole turn,
    so the weights stay finite and follow the target's azimuth from the first copy."""
    measured = unit([20.0, 20.0, 0.0], [0.0, 0.0, 60.0])
    idx, w = grid.interpolation_weights(measured, unit([110.0], [0.0]))
    assert np.all(np.isfinite(w)) and set(idx[0][w[0] > 0]) <= {0, 1}
    assert sorted(w[0][w[0] > 0]) == pytest.approx([0.25, 0.75])


def test_below_the_measured_cap_a_target_takes_the_first_covered_step_on_its_meridian():
    """An upper-hemisphere set, rings 40 deg apart in azimuth from -10 deg up: midway
    between two lowest directions the covered cap ends at about -10.6 deg, so a target
    below takes the weights of its meridian's direction at -10.5 deg (the search steps
    MERIDIAN_STEP_DEG = 0.5 deg), not -10 or -11."""
    az, el = np.meshgrid(np.arange(0.0, 360.0, 40.0), np.arange(-10.0, 81.0, 10.0))
    measured = unit(np.r_[az.ravel(), 0.0], np.r_[el.ravel(), 90.0])
    idx, w = grid.interpolation_weights(measured, unit([20.0, 20.0, 20.0, 20.0],
                                                       [-60.0, -10.5, -10.0, -89.0]))
    below, at_step, above = (weights_of(i, x) for i, x in zip(idx[:3], w[:3], strict=True))
    assert below == pytest.approx(at_step, abs=1e-8) and below.keys() == at_step.keys()
    assert at_step != pytest.approx(above, abs=1e-6)
    assert weights_of(idx[3], w[3]) == pytest.approx(below, abs=1e-8)


def test_four_directions_are_enough_for_a_hull():
    """A tetrahedron's faces cover the sphere: the centre of each face blends its three
    corners equally (the ring fallback would pick other directions)."""
    measured = np.array([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    faces = [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]
    targets = np.array([measured[list(f)].sum(axis=0) for f in faces])
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    idx, w = grid.interpolation_weights(measured, targets)
    for face, i, x in zip(faces, idx, w, strict=True):
        assert weights_of(i, x) == pytest.approx(dict.fromkeys(face, 1 / 3), abs=1e-12)


def test_weights_sum_to_one_where_a_target_sits_just_outside_the_covered_cap():
    """Just below the rim of a set measured above the horizon only, the rim face takes
    the target with a barycentric coordinate a hair below zero (within the tolerance):
    it is clipped, and the weights are scaled back to a sum of one."""
    az = np.arange(0.0, 360.0, 45.0)
    measured = np.concatenate([unit(az, np.zeros_like(az)), unit(az + 22.5, np.full(8, 45.0)),
                               unit([0.0], [90.0])])
    rim = unit([22.5], [-2e-8])  # between the first two horizon directions, just below
    idx, w = grid.interpolation_weights(measured, rim)
    assert set(weights_of(idx[0], w[0])) <= {0, 1, 8}  # the rim face's corners
    assert abs(w.sum() - 1.0) < 1e-14 and (w >= 0).all()
