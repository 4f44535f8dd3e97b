"""Which faces are drawn, as drawn (headless, llvmpipe): back faces culled except
where a material is double-sided, in every face group and every object after one
that is, in both eyes; each face group drawn from its own triangles; mirrored
instances keep their front faces, blended ones too."""

from __future__ import annotations

import numpy as np
import pytest
from glkit import gl_ctx, harness, mask  # noqa: F401  (fixtures)

trimesh = pytest.importorskip("trimesh")

FLAT = [{"type": "directional", "intensity": 0.0}, {"type": "ambient", "intensity": 1.0}]
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
SIZE = 48
BEHIND = [0.0, 180.0, 0.0]  # yaw: the quads' backs to the eye


def quad(x: float, colour, **material):
    """A 1 m square at ``x`` facing +Z, one colour: four triangles around its centre
    (a group of more than two, so a draw that ran past it would reach the next one)."""
    from trimesh.visual.material import PBRMaterial

    corners = [[-0.5, -0.5, 0], [0.5, -0.5, 0], [0.5, 0.5, 0], [-0.5, 0.5, 0], [0, 0, 0]]
    m = trimesh.Trimesh(vertices=np.array(corners) + [x, 0.0, 0.0],
                        faces=[[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]], process=False)
    m.visual = trimesh.visual.TextureVisuals(
        uv=[[0.0, 0.0]] * 5, material=PBRMaterial(baseColorFactor=[*colour, 255], **material))
    return m


def write(path, *quads):
    """One model of several quads: one face group per draw state, in one mesh."""
    path.write_bytes(trimesh.Scene(list(quads)).export(file_type="glb"))


def table(*objects, models=("two", "one")) -> dict:
    return {"background": [0.0, 0.0, 0.0], "light": FLAT,
            "model": [{"name": n, "file": f"{n}.glb"} for n in models],
            "object": list(objects)}


@pytest.fixture
def models(tmp_path):
    """``two``: red single-sided at x = -0.6 and green double-sided at x = +0.6;
    ``one``: a blue single-sided quad."""
    write(tmp_path / "two.glb", quad(-0.6, RED), quad(0.6, GREEN, doubleSided=True))
    write(tmp_path / "one.glb", quad(0.0, BLUE))
    return tmp_path


def shows(image, colour) -> int:
    return int(mask(image, colour, 2).sum())


def test_a_mesh_of_two_face_groups_draws_each_from_its_own_triangles(harness, models):
    h = harness(table({"mesh": "two", "position": [0.0, 0.0, -2.0]}), size=SIZE,
                base_dir=models)
    left, right = h.frame()
    for image in (left, right):
        assert shows(image[:, : SIZE // 2], RED) > 100 and shows(image, GREEN) > 100
        assert not shows(image[:, : SIZE // 2], GREEN) and not shows(image[:, SIZE // 2:], RED)


def test_from_behind_only_the_double_sided_group_shows_in_both_eyes_every_frame(harness,
                                                                              models):
    """After the double-sided group the next eye pass (and frame) culls again: its
    single-sided group stays hidden."""
    h = harness(table({"mesh": "two", "position": [0.0, 0.0, -2.0], "rotation": BEHIND}),
                size=SIZE, base_dir=models)
    for _ in range(2):
        for image in h.frame():
            assert shows(image[:, : SIZE // 2], GREEN) > 100  # +x turned to the left
            assert not shows(image, RED)


def test_an_object_drawn_after_a_double_sided_group_culls_its_back_faces(harness, models):
    behind = {"rotation": BEHIND}
    h = harness(table({"mesh": "two", "position": [0.0, 0.6, -3.0], **behind},
                      {"mesh": "one", "position": [0.0, -0.7, -3.0], **behind}),
                size=SIZE, base_dir=models)
    for image in h.frame():
        assert shows(image, GREEN) > 30 and not shows(image, RED) and not shows(image, BLUE)
    front = harness(table({"mesh": "two", "position": [0.0, 0.6, -3.0]},
                          {"mesh": "one", "position": [0.0, -0.7, -3.0]}),
                    size=SIZE, base_dir=models)
    for image in front.frame():  # the same objects face the eye: all three show
        assert min(shows(image, RED), shows(image, GREEN), shows(image, BLUE)) > 30


def test_a_blended_group_after_an_opaque_one_is_drawn_blended_only(harness, tmp_path):
    """The opaque group's draw stops at its own last triangle: the blended quad beside
    it looks as it does alone (half-transparent over the background)."""
    veil = quad(0.6, BLUE, alphaMode="BLEND")
    veil.visual.material.baseColorFactor = [0, 0, 255, 128]
    write(tmp_path / "two.glb", quad(-0.6, RED), veil)
    write(tmp_path / "one.glb", veil)
    place = {"position": [0.0, 0.0, -2.0]}
    both, _ = harness(table({"mesh": "two", **place}), size=SIZE, base_dir=tmp_path).frame()
    alone, _ = harness(table({"mesh": "one", **place}, models=("one",)), size=SIZE,
                       base_dir=tmp_path).frame()
    veiled = mask(alone, (0, 0, 0), 0) == 0
    assert veiled.sum() > 100 and alone[veiled][:, 2].max() < 250  # see-through blue
    np.testing.assert_array_equal(both[:, SIZE // 2:], alone[:, SIZE // 2:])


@pytest.mark.parametrize("alpha_mode", ["OPAQUE", "BLEND"])
def test_a_mirrored_single_sided_quad_shows_its_front_as_the_plain_one(harness, tmp_path,
                                                                     alpha_mode):
    write(tmp_path / "one.glb", quad(0.0, BLUE, alphaMode=alpha_mode))
    place = {"mesh": "one", "position": [0.0, 0.0, -2.0]}
    plain, _ = harness(table(place, models=("one",)), size=SIZE, base_dir=tmp_path).frame()
    mirrored, _ = harness(table({**place, "scale": [-1.0, 1.0, 1.0]}, models=("one",)),
                          size=SIZE, base_dir=tmp_path).frame()
    assert shows(plain, BLUE) > 100
    np.testing.assert_array_equal(mirrored, plain)
