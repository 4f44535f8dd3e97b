"""glTF materials and normals as drawn (headless, llvmpipe): flat faces, MASK holes,
BLEND order, emission, double-sided faces, sRGB textures."""

from __future__ import annotations

import numpy as np
import pytest
from glkit import gl_ctx, harness, mask, write_gltf, write_quad  # noqa: F401  (fixtures)

from vrshare.scene import linear_to_srgb

trimesh = pytest.importorskip("trimesh")
Image = pytest.importorskip("PIL.Image")

FLAT = [{"type": "directional", "intensity": 0.0}, {"type": "ambient", "intensity": 1.0}]
DARK = [{"type": "directional", "intensity": 0.0}, {"type": "ambient", "intensity": 0.0}]


def scene(*objects, light=FLAT, models=("q",), primitives=()) -> dict:
    return {"background": [0.0, 0.0, 0.0], "light": light,
            "model": [{"name": n, "file": f"{n}.gltf"} for n in models],
            "primitive": list(primitives), "object": list(objects)}


def colours(image: np.ndarray) -> dict[tuple[int, ...], int]:
    """Distinct RGB values of an image and how many pixels have each."""
    values, counts = np.unique(image[..., :3].reshape(-1, 3), axis=0, return_counts=True)
    return {tuple(int(c) for c in v): int(n) for v, n in zip(values, counts, strict=True)}


def test_a_cube_without_normals_shows_one_shade_per_face(harness, tmp_path):
    box = trimesh.creation.box()
    write_gltf(tmp_path / "q.gltf", box.vertices, box.faces)  # no NORMAL
    light = [{"type": "directional", "direction": [-0.2, -0.5, -0.8], "intensity": 0.8},
             {"type": "ambient", "intensity": 0.1}]
    left, _ = harness(scene({"mesh": "q", "position": [0.0, 0.0, -2.5],
                             "rotation": [30.0, 40.0, 0.0]}, light=light),
                      size=64, base_dir=tmp_path).frame()
    found = colours(left)
    found.pop((0, 0, 0))
    assert len(found) == 3, found  # three faces in view, each one flat shade
    assert min(found.values()) > 30  # each face a patch, not a seam


def test_a_mask_texture_cuts_holes(harness, tmp_path):
    texels = np.full((2, 2, 4), 255, np.uint8)
    texels[0, 0, 3] = texels[1, 1, 3] = 20  # two opposite quadrants nearly transparent
    image = Image.fromarray(texels, "RGBA")
    base = {"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}
    write_quad(tmp_path / "q.gltf", {**base, "alphaMode": "MASK"}, images=[image])
    write_quad(tmp_path / "o.gltf", base, images=[image])  # OPAQUE: alpha ignored
    place = {"position": [0.0, 0.0, -1.0]}
    masked, _ = harness(scene({"mesh": "q", **place}), size=64, base_dir=tmp_path).frame()
    opaque, _ = harness(scene({"mesh": "o", **place}, models=("o",)), size=64,
                        base_dir=tmp_path).frame()
    assert mask(opaque, (255, 255, 255), 2).all()
    holes = mask(masked, (0, 0, 0), 2)
    assert holes[16, 16] and holes[48, 48] and not holes[16, 48] and not holes[48, 16]
    assert mask(masked, (255, 255, 255), 2)[16, 48]


def blended_quad(path, rgb, alpha=0.5):
    return write_quad(path, {"alphaMode": "BLEND",
                             "pbrMetallicRoughness": {"baseColorFactor": [*rgb, alpha]}})


def test_blend_shows_what_is_behind(harness, tmp_path):
    blended_quad(tmp_path / "q.gltf", (0.0, 1.0, 0.0))
    red = {"name": "red", "shape": "box", "size": [4.0, 4.0, 0.1], "color": [1.0, 0.0, 0.0]}
    # the glass is listed first: opaque faces must still be drawn before it
    left, _ = harness(scene({"mesh": "q", "position": [0.0, 0.0, -2.0]},
                            {"mesh": "red", "position": [0.0, 0.0, -3.0]}, primitives=[red]),
                      size=32, base_dir=tmp_path).frame()
    r, g, b = (int(c) for c in left[16, 16, :3])
    assert abs(r - 127.5) <= 2 and abs(g - 127.5) <= 2 and b == 0  # half of each


def test_blended_instances_are_drawn_back_to_front(harness, tmp_path):
    blended_quad(tmp_path / "q.gltf", (1.0, 1.0, 1.0))
    near = {"mesh": "q", "position": [0.0, 0.0, -2.0], "color": [0.0, 0.0, 1.0]}
    far = {"mesh": "q", "position": [0.0, 0.0, -3.0], "color": [0.0, 1.0, 0.0]}
    for order in ((near, far), (far, near)):
        h = harness(scene(*order), size=32, base_dir=tmp_path)
        assert len(h.renderer.meshes) == 1  # one mesh, two instances
        left, _ = h.frame()
        _, g, b = (float(c) for c in left[16, 16, :3])
        # far first (a quarter left of it), then near over it (a half)
        assert abs(b - 127.5) <= 2 and abs(g - 63.75) <= 2, (order, left[16, 16])


def test_blended_faces_do_not_hide_what_is_drawn_after_them(harness, tmp_path):
    blended_quad(tmp_path / "q.gltf", (0.0, 1.0, 0.0))
    blended_quad(tmp_path / "p.gltf", (0.0, 0.0, 1.0))
    # two blended meshes: the nearer one (mesh q) comes first in draw slot order
    left, _ = harness(scene({"mesh": "q", "position": [0.0, 0.0, -2.0]},
                            {"mesh": "p", "position": [0.0, 0.0, -3.0]}, models=("q", "p")),
                      size=32, base_dir=tmp_path).frame()
    _, g, b = (float(c) for c in left[16, 16, :3])
    assert abs(g - 127.5) <= 2 and abs(b - 63.75) <= 2


def test_emission_shows_where_no_light_reaches(harness, tmp_path):
    write_quad(tmp_path / "q.gltf", {"emissiveFactor": [1.0, 0.5, 0.0]})
    write_quad(tmp_path / "o.gltf", {})
    place = {"position": [0.0, 0.0, -1.0]}
    lit, _ = harness(scene({"mesh": "q", **place}, light=DARK), size=16,
                     base_dir=tmp_path).frame()
    dark, _ = harness(scene({"mesh": "o", **place}, light=DARK, models=("o",)), size=16,
                      base_dir=tmp_path).frame()
    assert mask(dark, (0, 0, 0), 0).all()
    expected = np.round(linear_to_srgb(np.array([1.0, 0.5, 0.0])) * 255)
    assert np.abs(lit[8, 8, :3] - expected).max() <= 1


def test_emissive_and_base_colour_textures_are_decoded_as_srgb(harness, tmp_path):
    grey = Image.new("RGB", (2, 2), (128, 64, 200))  # sRGB-encoded texels
    write_quad(tmp_path / "q.gltf", {"emissiveTexture": {"index": 0},
                                     "emissiveFactor": [1.0, 1.0, 1.0]}, images=[grey])
    write_quad(tmp_path / "b.gltf", {"pbrMetallicRoughness": {
        "baseColorTexture": {"index": 0}}}, images=[grey])
    place = {"position": [0.0, 0.0, -1.0]}
    for name, light in (("q", DARK), ("b", FLAT)):
        left, _ = harness(scene({"mesh": name, **place}, light=light, models=(name,)),
                          size=16, base_dir=tmp_path).frame()
        # decoded on load, encoded by the shader: the texel comes back as itself
        assert np.abs(left[8, 8, :3].astype(int) - (128, 64, 200)).max() <= 2, name


def test_double_sided_faces_show_their_back_lit_from_behind(harness, tmp_path):
    write_quad(tmp_path / "q.gltf", {"doubleSided": True})
    write_quad(tmp_path / "o.gltf", {})
    light = [{"type": "directional", "direction": [0.0, 0.0, -1.0], "intensity": 1.0},
             {"type": "ambient", "intensity": 0.0}]  # from the eye: onto the back
    behind = {"position": [0.0, 0.0, -1.0], "rotation": [0.0, 180.0, 0.0]}  # back to the eye
    two, _ = harness(scene({"mesh": "q", **behind}, light=light), size=16,
                     base_dir=tmp_path).frame()
    one, _ = harness(scene({"mesh": "o", **behind}, light=light, models=("o",)), size=16,
                     base_dir=tmp_path).frame()
    assert mask(one, (0, 0, 0), 0).all()  # single-sided: culled
    assert mask(two, (255, 255, 255), 2).all()  # the back, fully lit


def test_a_mirrored_gltf_object_renders_like_the_plain_one(harness, tmp_path):
    box = trimesh.creation.box()
    write_gltf(tmp_path / "q.gltf", box.vertices, box.faces)
    light = [{"type": "directional", "direction": [-0.3, -0.8, -0.5], "intensity": 0.8},
             {"type": "ambient", "intensity": 0.1}]
    place = {"mesh": "q", "position": [0.0, 0.0, -4.0], "rotation": [30.0, 40.0, 0.0]}
    plain, _ = harness(scene(place, light=light), size=48, base_dir=tmp_path).frame()
    mirrored, _ = harness(scene({**place, "scale": [1.0, -1.0, 1.0]}, light=light), size=48,
                          base_dir=tmp_path).frame()
    np.testing.assert_allclose(mirrored[..., :3], plain[..., :3], atol=1)
