"""Analytic pixel checks of the stereo renderer (headless, llvmpipe, small images)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from glkit import centroid_x, gl_ctx, harness, mask, textured_ball  # noqa: F401  (fixtures)

from vrshare import layout
from vrshare.scene import linear_to_srgb

FLAT = [{"type": "directional", "intensity": 0.0}, {"type": "ambient", "intensity": 1.0}]
BACKGROUND = [0.0, 0.0, 0.0]


def cubes(*objects, light=FLAT, **primitive) -> dict:
    prim = {"name": "cube", "shape": "box", "size": [1.0, 1.0, 1.0], **primitive}
    return {"background": BACKGROUND, "light": light, "primitive": [prim],
            "object": [{"mesh": "cube", **o} for o in objects]}


def expected_span(half_extent: float, depth: float, half_fov_deg: float, size: int) -> range:
    """Pixel columns whose centres fall inside a centred square of ``half_extent`` (m)
    at ``depth`` (m) in front of an eye with a symmetric field of view."""
    ndc = half_extent / depth / math.tan(math.radians(half_fov_deg))
    lo, hi = (1 - ndc) * size / 2, (1 + ndc) * size / 2
    return range(math.ceil(lo - 0.5), math.floor(hi - 0.5) + 1)


def test_unit_cube_lands_on_the_expected_pixels(harness):
    size = 128
    h = harness(cubes({"position": [0.0, 0.0, -5.0]}, color=[1.0, 0.0, 0.0]), size=size)
    left, right = h.frame()
    m = mask(left, (255, 0, 0), tol=2)
    rows, cols = np.nonzero(m)
    span = expected_span(0.5, 4.5, 45.0, size)  # the front face, 4.5 m away
    assert (cols.min(), cols.max()) == (span.start, span.stop - 1)
    assert (rows.min(), rows.max()) == (span.start, span.stop - 1)
    assert m.sum() == len(span) ** 2  # a filled square, nothing else
    np.testing.assert_array_equal(left, right)  # ipd 0: both eyes alike


def test_same_geometry_under_two_names_is_one_draw_with_per_object_colours(harness):
    def table(*names):
        return {"background": BACKGROUND, "light": FLAT,
                "primitive": [{"name": n, "shape": "box", "size": [0.5, 0.5, 0.5], "color": c}
                              for n, c in (("red", [1, 0, 0]), ("green", [0, 1, 0]))],
                "object": [{"mesh": n, "position": [x, 0.0, -3.0]}
                           for n, x in (("red", -0.6), ("green", 0.6)) if n in names]}

    h = harness(table("red", "green"), size=64)
    assert len(h.renderer.meshes) == 1  # one GPU mesh, one draw of two instances
    both, _ = h.frame()
    red, _ = harness(table("red"), size=64).frame()
    green, _ = harness(table("green"), size=64).frame()
    assert mask(red, (255, 0, 0), 2).sum() > 0 and mask(green, (0, 255, 0), 2).sum() > 0
    np.testing.assert_array_equal(both[..., :3], red[..., :3] | green[..., :3])


def test_near_object_occludes_the_far_one(harness):
    near = {"position": [0.0, 0.0, -3.0], "color": [1.0, 0.0, 0.0]}
    far = {"position": [0.0, 0.0, -6.0], "color": [0.0, 1.0, 0.0], "scale": 3.0}
    for order in ((near, far), (far, near)):  # draw order must not matter
        left, _ = harness(cubes(*order), size=64).frame()
        red, green = mask(left, (255, 0, 0), 2), mask(left, (0, 255, 0), 2)
        assert red[32, 32] and not green[32, 32]
        assert red.sum() == len(expected_span(0.5, 2.5, 45.0, 64)) ** 2
        assert green.sum() == len(expected_span(1.5, 4.5, 45.0, 64)) ** 2 - red.sum()


def test_asymmetric_field_of_view_moves_the_centre(harness):
    # OpenXR-style angles: left -20, right 40, up 30, down -10 degrees
    size, fov = 128, (-20.0, 40.0, 30.0, -10.0)
    h = harness(cubes({"position": [0.0, 0.0, -5.0]}, size=[0.2, 0.2, 0.2]), size=size,
                fov_deg=fov)
    left, _ = h.frame()
    tl, tr, tu, td = (math.tan(math.radians(a)) for a in fov)
    x = (0.0 - tl) / (tr - tl) * size  # straight ahead, in pixels from the left edge
    y = (tu - 0.0) / (tu - td) * size  # ... and from the top edge
    m = mask(left, (255, 255, 255), 2)
    rows, cols = np.nonzero(m)
    assert cols.mean() + 0.5 == pytest.approx(x, abs=0.5)
    assert rows.mean() + 0.5 == pytest.approx(y, abs=0.5)


def test_eyes_see_a_near_object_shifted_by_the_disparity(harness):
    size, ipd, depth = 128, 0.064, 0.4  # the front face of a 0.2 m cube 0.5 m away
    h = harness(cubes({"position": [0.0, 0.0, -0.5]}, size=[0.2, 0.2, 0.2]), size=size,
                ipd=ipd)
    left, right = h.frame()
    shift = (ipd / 2) / depth * size / 2  # px, tan(45 deg) = 1
    x_left = centroid_x(mask(left, (255, 255, 255), 2))
    x_right = centroid_x(mask(right, (255, 255, 255), 2))
    assert x_left == pytest.approx(size / 2 + shift, abs=0.5)  # left eye: object to the right
    assert x_right == pytest.approx(size / 2 - shift, abs=0.5)
    assert x_left - x_right == pytest.approx(2 * shift, abs=0.5)


def test_a_changed_model_matrix_moves_the_object_in_the_next_frame(harness):
    size = 64
    h = harness(cubes({"position": [0.0, 0.0, -5.0]}), size=size)
    before = centroid_x(mask(h.frame()[0], (255, 255, 255), 2))
    h.bank[layout.OBJECT_MODEL][0, 0, 3] = 1.0  # 1 m to the right
    after = centroid_x(mask(h.frame()[0], (255, 255, 255), 2))
    assert before == pytest.approx(size / 2, abs=0.5)
    assert after - before == pytest.approx(1.0 / 4.5 * size / 2, abs=0.5)


def test_lambert_light_and_ambient_encode_to_srgb(harness):
    # front face normal +Z, light travelling -Z: full Lambert term
    light = [{"type": "directional", "direction": [0.0, 0.0, -1.0], "intensity": 0.3},
             {"type": "ambient", "intensity": 0.2}]
    left, _ = harness(cubes({"position": [0.0, 0.0, -5.0]}, light=light), size=32).frame()
    expected = linear_to_srgb(0.5) * 255
    assert np.abs(left[16, 16, :3].astype(float) - expected).max() <= 1.0
    # a grey sRGB colour comes back as itself (decoded on load, encoded by the shader)
    left, _ = harness(cubes({"position": [0.0, 0.0, -5.0]}, color=[0.5, 0.5, 0.5]),
                      size=32).frame()
    assert np.abs(left[16, 16, :3].astype(float) - 127.5).max() <= 1.0


def test_shader_srgb_encoding_matches_the_standard_formula(gl_ctx):
    """The fragment shader's linear_to_srgb (a polynomial, no pow) against IEC
    61966-2-1 in float64, on 65,536 values from 0 to 1, in a float framebuffer."""
    from vrshare.resources import shader_source

    source = shader_source("scene.frag")
    start = source.index("vec3 linear_to_srgb(vec3 c)")
    function = source[start:source.index("\n}\n", start) + 3]
    program = gl_ctx.program(
        vertex_shader="#version 430\nin vec2 p;\nvoid main() { gl_Position = vec4(p, 0, 1); }",
        fragment_shader="#version 430\nout vec4 f;\n" + function + """
            void main() {
                float c = (floor(gl_FragCoord.y) * 256.0 + floor(gl_FragCoord.x)) / 65535.0;
                f = vec4(linear_to_srgb(vec3(c, c * c, 0.5 * c)), 1.0);
            }""")
    quad = gl_ctx.buffer(np.array([-1, -1, 1, -1, -1, 1, 1, 1], np.float32).tobytes())
    vao = gl_ctx.vertex_array(program, [(quad, "2f", "p")])
    color = gl_ctx.texture((256, 256), 4, dtype="f4")
    fbo = gl_ctx.framebuffer([color])
    try:
        fbo.use()
        vao.render(mode=gl_ctx.TRIANGLE_STRIP)
        got = np.frombuffer(fbo.read(components=4, dtype="f4"), np.float32).reshape(-1, 4)
    finally:
        for obj in (fbo, color, vao, quad, program):
            obj.release()
    c = np.arange(65536) / 65535.0
    expected = linear_to_srgb(np.stack([c, c * c, 0.5 * c], axis=1))
    assert np.abs(got[:, :3] - expected).max() < 2e-6
    assert got[0, 0] == 0.0 and got[-1, 0] == pytest.approx(1.0, abs=1e-6)


def test_back_faces_are_culled(harness):
    table = {"background": BACKGROUND, "light": FLAT,
             "primitive": [{"name": "p", "shape": "plane", "size": [4.0, 0.0, 4.0]}],
             "object": [{"mesh": "p"}]}
    above, _ = harness(table, size=32, position=(0.0, 1.0, 0.0), pitch_deg=-90.0).frame()
    below, _ = harness(table, size=32, position=(0.0, -1.0, 0.0), pitch_deg=90.0).frame()
    assert mask(above, (255, 255, 255), 2).all()
    assert not mask(below, (255, 255, 255), 2).any()


def test_gltf_base_colour_texture_is_upright(harness, tmp_path):
    trimesh = pytest.importorskip("trimesh")
    from PIL import Image
    from trimesh.visual.material import PBRMaterial

    # 2x2 texture, top row red | green, bottom row blue | white (image rows top-down)
    texels = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)
    quad = trimesh.Trimesh(vertices=[[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]],
                           faces=[[0, 1, 2], [0, 2, 3]], process=False)
    quad.visual = trimesh.visual.TextureVisuals(
        uv=[[0, 0], [1, 0], [1, 1], [0, 1]],
        material=PBRMaterial(baseColorTexture=Image.fromarray(texels)))
    (tmp_path / "quad.glb").write_bytes(quad.export(file_type="glb"))
    table = {"background": BACKGROUND, "light": FLAT,
             "model": [{"name": "quad", "file": "quad.glb"}],
             "object": [{"mesh": "quad", "position": [0.0, 0.0, -1.0]}]}
    left, _ = harness(table, size=64, base_dir=tmp_path).frame()
    # the quad fills the view (1 m half size, 1 m away, 45 deg); near the quadrant
    # centres bilinear filtering blends in a few per cent (linear) of the neighbours
    for (row, col), rgb in {(16, 16): (255, 0, 0), (16, 48): (0, 255, 0),
                            (48, 16): (0, 0, 255), (48, 48): (255, 255, 255)}.items():
        assert mask(left[row:row + 1, col:col + 1], rgb, tol=64).all(), (row, col, left[row, col])


def test_levels_of_detail_of_a_model_share_one_texture(harness, tmp_path):
    pytest.importorskip("fast_simplification")
    textured_ball(tmp_path / "ball.glb")
    table = {"background": BACKGROUND, "light": FLAT,
             "model": [{"name": "ball", "file": "ball.glb"}],
             "object": [{"mesh": "ball", "position": [0.0, 0.0, -4.0]}]}
    h = harness(table, size=32, base_dir=tmp_path)
    assert len(h.renderer.meshes) == 3
    assert len({id(m.texture) for m in h.renderer.meshes}) == 1
    left, _ = h.frame()
    assert mask(left, (200, 10, 10), 4)[16, 16]  # the texture's colour, unlit


def test_srgb_framebuffers_get_the_same_image(harness, gl_ctx):
    """A surface whose framebuffer encodes (encode_srgb=False, an sRGB format, as
    OpenXR swapchains often are) ends up with the bytes the shader would write."""
    from vrshare.targets.base import EyeSurface

    h = harness(cubes({"position": [0.0, 0.0, -3.0]}, color=[0.5, 0.25, 0.75]),
                size=32, half_fov_deg=30.0)
    shader_encoded, _ = h.frame()
    color = gl_ctx.texture((32, 32), 4, internal_format=0x8C43)  # GL_SRGB8_ALPHA8
    depth = gl_ctx.depth_renderbuffer((32, 32))
    fbo = gl_ctx.framebuffer([color], depth)
    try:
        h.renderer.render(None, [EyeSurface(0, fbo, (0, 0, 32, 32), encode_srgb=False)])
        gl_encoded = np.frombuffer(fbo.read(components=4), np.uint8).reshape(32, 32, 4)[::-1]
    finally:
        for obj in (fbo, color, depth):
            obj.release()
    assert np.abs(gl_encoded.astype(int) - shader_encoded.astype(int)).max() <= 1
    assert mask(gl_encoded, (128, 64, 191), 2)[16, 16]  # the cube, not the background


@pytest.mark.parametrize("scale", [[-1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]])
def test_a_mirrored_symmetric_box_renders_like_the_unmirrored_one(harness, scale):
    light = [{"type": "directional", "direction": [-0.4, -0.7, -0.6], "intensity": 0.8},
             {"type": "ambient", "intensity": 0.2}]
    placed = {"position": [0.0, 0.0, -4.0], "rotation": [25.0, 35.0, 0.0]}
    plain, _ = harness(cubes(placed, light=light), size=64).frame()
    mirrored, _ = harness(cubes({**placed, "scale": scale}, light=light), size=64).frame()
    assert len(np.unique(plain[..., :3].reshape(-1, 3), axis=0)) >= 4  # three faces, background
    np.testing.assert_allclose(mirrored[..., :3], plain[..., :3], atol=1)


def test_mirrored_and_plain_instances_of_one_mesh_share_a_draw_slot(harness):
    light = [{"type": "directional", "direction": [0.0, 0.0, -1.0], "intensity": 0.8},
             {"type": "ambient", "intensity": 0.2}]
    left = {"position": [-1.0, 0.0, -4.0], "rotation": [25.0, 35.0, 0.0]}
    right = {"position": [1.0, 0.0, -4.0], "rotation": [25.0, 35.0, 0.0]}
    apart = [harness(cubes(o, light=light, size=[0.8, 0.8, 0.8]), size=64).frame()[0]
             for o in (left, right)]
    h = harness(cubes({**left, "scale": [1.0, 1.0, -1.0]}, right, light=light,
                      size=[0.8, 0.8, 0.8]), size=64)
    assert len(h.renderer.meshes) == 1
    both, _ = h.frame()
    np.testing.assert_allclose(both[..., :3], np.maximum(*apart)[..., :3], atol=1)


def test_an_eye_that_does_not_fill_its_framebuffer_clears_only_its_viewport(harness):
    """A letterboxed eye clears its own rectangle, colour and depth, every frame: the
    bars and the rest of the framebuffer keep what they had, and the cube is drawn
    again in the next frame."""
    from vrshare.targets.base import EyeSurface

    size = 32
    h = harness(cubes({"position": [0.0, 0.0, -3.0]}, color=[1.0, 0.0, 0.0]), size=size)
    fbo = h.target.fbo
    fbo.use()
    fbo.clear(0.0, 0.0, 1.0, 1.0)  # blue: what lies outside the eye's rectangle
    surfaces = [EyeSurface(0, fbo, (4, 6, size - 8, size - 12))]
    inside = np.zeros((size, 2 * size), bool)
    inside[6:size - 6, 4:size - 4] = True
    for _ in range(2):
        f = h.clock.wait_frame()
        for stage in h.pipeline.stages:
            stage.process(f, h.bank)
        h.renderer.render(f, surfaces)
        image = h.target.capture()
        assert mask(image, (0, 0, 255), 0)[~inside].all()
        assert mask(image, (255, 0, 0), 2)[size // 2, size // 2]  # the cube, every frame
        assert mask(image, (0, 0, 0), 0)[7, 5]  # the scene's background in its corner
