"""glTF 2.0 files as the specification reads them: flat normals where a primitive has
none, materials (alpha mode, emissive, double-sided) on the vertices and face groups,
warnings for what is not drawn, errors naming run file, key and model. No GL needed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from glkit import textured_ball, write_gltf, write_quad

from vrshare.scene import SceneError, load_model, load_scene

trimesh = pytest.importorskip("trimesh")
Image = pytest.importorskip("PIL.Image")


def load(table: dict, base_dir: Path):
    return load_scene(table, base_dir, Path("scene.toml"))


def box_file(path: Path, **kwargs) -> Path:
    box = trimesh.creation.box()  # 8 shared corners, 12 triangles
    return write_gltf(path, box.vertices, box.faces, **kwargs)


def test_a_primitive_without_normals_gets_one_normal_per_face(tmp_path):
    g = load_model(box_file(tmp_path / "box.gltf"), "box").lods[0]
    assert len(g.vertices) == 36  # split: three corners per triangle
    corners = g.vertices[g.indices.reshape(-1, 3)]
    normals = corners[:, :, 3:6]
    np.testing.assert_allclose(normals, normals[:, :1].repeat(3, axis=1))  # flat per face
    p = corners[:, :, :3]
    cross = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    np.testing.assert_allclose(normals[:, 0], cross / np.linalg.norm(cross, axis=1)[:, None],
                               atol=1e-6)
    assert (np.einsum("ij,ij->i", normals[:, 0], p.mean(axis=1)) > 0).all()  # outward


def test_given_normals_are_kept(tmp_path):
    box = trimesh.creation.box()
    smooth = box.vertices / np.linalg.norm(box.vertices, axis=1)[:, None]
    g = load_model(box_file(tmp_path / "box.gltf", normals=smooth), "box").lods[0]
    assert len(g.vertices) == 8
    np.testing.assert_allclose(g.vertices[:, 3:6], smooth, atol=1e-6)


def test_materials_reach_vertices_and_face_groups(tmp_path):
    material = {"alphaMode": "MASK", "alphaCutoff": 0.3, "doubleSided": True,
                "emissiveFactor": [0.5, 0.25, 0.0],
                "pbrMetallicRoughness": {"baseColorFactor": [1.0, 1.0, 1.0, 0.8]}}
    g = load_model(write_quad(tmp_path / "q.gltf", material), "q").lods[0]
    np.testing.assert_allclose(g.vertices[:, 13:16], [[0.5, 0.25, 0.0]] * 4)
    np.testing.assert_allclose(g.vertices[:, 17], 0.3)
    assert [(x.double_sided, x.blend) for x in g.groups] == [(True, False)]
    assert g.material
    blend = load_model(write_quad(tmp_path / "b.gltf", {"alphaMode": "BLEND"}), "b").lods[0]
    assert (blend.vertices[:, 17] == -1).all() and blend.groups[0].blend
    mask = load_model(write_quad(tmp_path / "m.gltf", {"alphaMode": "MASK"}), "m").lods[0]
    assert (mask.vertices[:, 17] == 0.5).all()  # the specification's default cutoff
    plain = load_model(write_quad(tmp_path / "p.gltf", {}), "p").lods[0]
    assert plain.groups == () and not plain.material


def test_levels_of_detail_keep_their_face_groups(tmp_path):
    pytest.importorskip("fast_simplification")
    ball = trimesh.creation.uv_sphere(count=[32, 32])
    path = write_gltf(tmp_path / "ball.gltf", ball.vertices, ball.faces,
                      normals=ball.vertex_normals, material={"doubleSided": True})
    lods = load_model(path, "ball").lods
    assert len(lods) == 3
    for g in lods:
        assert [(x.first, x.count, x.double_sided) for x in g.groups] == [(0, g.triangles, True)]


def test_unreadable_texture_images_are_warned_about_naming_image_and_model(tmp_path, caplog):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    material = {"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}},
                "emissiveTexture": {"index": 1}, "emissiveFactor": [1.0, 1.0, 1.0]}
    path = write_quad(tmp_path / "q.gltf", material, images=["missing.png", "broken.png"])
    with caplog.at_level(logging.WARNING, "vrshare.scene"):
        mesh = load_model(path, "q")
    text = [r.getMessage() for r in caplog.records]
    assert any("missing.png" in t and str(path) in t and "not found" in t for t in text), text
    assert any("broken.png" in t and str(path) in t for t in text), text
    assert mesh.lods[0].textures is None  # drawn untextured
    with pytest.raises(SceneError, match="missing.png.*strict") as info:
        load({"strict": True, "model": [{"name": "q", "file": "q.gltf"}]}, tmp_path)
    assert "scene.toml [scene] [[scene.model]] #1 'file'" in str(info.value)
    assert str(path) in str(info.value)


def test_readable_images_give_no_warning(tmp_path, caplog):
    material = {"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}
    path = write_quad(tmp_path / "q.gltf", material, images=[Image.new("RGB", (2, 2))])
    with caplog.at_level(logging.WARNING, "vrshare.scene"):
        mesh = load_model(path, "q")
    assert not caplog.records and mesh.lods[0].textures is not None


def test_unsupported_features_give_one_warning_naming_them(tmp_path, caplog):
    extra = {"skins": [{"joints": [0]}], "animations": [{"channels": [], "samplers": []}],
             "extensionsUsed": ["KHR_texture_basisu", "KHR_materials_clearcoat"]}
    path = write_quad(tmp_path / "q.gltf", {}, extra=extra)
    with caplog.at_level(logging.WARNING, "vrshare.scene"):
        load_model(path, "q")
    assert len(caplog.records) == 1
    text = caplog.records[0].getMessage()
    for word in (str(path), "1 skins", "1 animations", "KHR_texture_basisu",
                 "KHR_materials_clearcoat"):
        assert word in text


def test_morph_targets_are_named(tmp_path, caplog):
    path = write_quad(tmp_path / "q.gltf")
    doc = json.loads(path.read_text())
    doc["meshes"][0]["primitives"][0]["targets"] = [{"POSITION": 0}]
    path.write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING, "vrshare.scene"):
        load_model(path, "q")
    assert "morph targets on 1 primitive(s)" in caplog.records[0].getMessage()


def test_a_required_unsupported_extension_is_an_error(tmp_path):
    path = write_quad(tmp_path / "q.gltf", extra={
        "extensionsUsed": ["KHR_draco_mesh_compression"],
        "extensionsRequired": ["KHR_draco_mesh_compression"]})
    with pytest.raises(SceneError, match="requires glTF extension.*KHR_draco_mesh_compression"
                       ) as info:
        load({"model": [{"name": "q", "file": "q.gltf"}]}, tmp_path)
    assert "[[scene.model]] #1 'file'" in str(info.value) and str(path) in str(info.value)


def test_model_errors_name_run_file_key_and_model(tmp_path):
    (tmp_path / "a.glb").write_bytes(trimesh.creation.box().export(file_type="glb"))
    with pytest.raises(SceneError) as info:
        load({"model": [{"name": "a", "file": "a.glb"}, {"name": "b", "file": "nope.glb"}]},
             tmp_path)
    message = str(info.value)
    assert message.startswith("scene.toml [scene] [[scene.model]] #2 'file': ")
    assert str(tmp_path / "nope.glb") in message and "not found" in message


def test_decimation_keeps_open_borders_and_texture_seams(tmp_path):
    pytest.importorskip("fast_simplification")
    # a wavy 33 x 33 plate (2048 triangles), its texture seam down the middle: the
    # vertices at x = 0 are there twice, with u = 0.5 on the left and u = 0.6 on the right
    k = 33
    y, x = np.mgrid[0:k, 0:k] / (k - 1) * 2 - 1
    ids = np.arange(k * k).reshape(k, k)
    quads = np.stack([ids[:-1, :-1], ids[:-1, 1:], ids[1:, 1:], ids[1:, :-1]], -1).reshape(-1, 4)
    faces = np.r_[quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]
    positions = np.c_[x.ravel(), y.ravel(), 0.05 * np.sin(3 * x.ravel()) * np.cos(2 * y.ravel())]
    uv = np.c_[x.ravel() * 0.5 + 0.5, y.ravel() * 0.5 + 0.5]
    seam = np.flatnonzero(np.isclose(positions[:, 0], 0.0))
    right = len(positions) + np.arange(len(seam))
    positions = np.r_[positions, positions[seam]]
    uv = np.r_[uv, uv[seam] + [0.1, 0.0]]
    remap = np.arange(len(positions))
    remap[seam] = right
    on_right = positions[faces].mean(axis=1)[:, 0] > 0
    faces[on_right] = remap[faces[on_right]]
    path = write_gltf(tmp_path / "plate.gltf", positions, faces,
                      normals=np.tile([0.0, 0.0, 1.0], (len(positions), 1)), uv=uv,
                      material={"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}},
                      images=[Image.new("RGB", (2, 2))])
    fine, *coarse = load_model(path, "plate").lods
    assert coarse
    border = np.isclose(np.abs(positions[:, :2]), 1.0).any(axis=1)
    border[seam] = border[right] = True  # a seam is a border of each side
    # vertices as loaded: texture v runs up (glTF's runs down the image)
    expected = np.c_[positions[:, :2], uv[:, 0], 1.0 - uv[:, 1]][border].round(5)
    for g in coarse:
        assert g.triangles < 0.6 * fine.triangles
        kept = {tuple(r) for r in g.vertices[:, [0, 1, 6, 7]].astype(np.float64).round(5)}
        assert {tuple(r) for r in expected} <= kept  # each border vertex, with its own uv


def truck() -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    """A box body on four wheels, and the body alone (the wheels lost)."""
    body = trimesh.creation.box(extents=(2.0, 1.0, 4.0))
    body.apply_translation((0.0, 1.0, 0.0))
    wheels = []
    for x, z in ((-1.1, -1.3), (1.1, -1.3), (-1.1, 1.3), (1.1, 1.3)):
        wheel = trimesh.creation.cylinder(radius=0.4, height=0.3, sections=24,
                                          transform=trimesh.transformations.rotation_matrix(
                                              np.pi / 2, (0, 1, 0)))  # axle along X
        wheel.apply_translation((x, 0.4, z))
        wheels.append(wheel)
    return trimesh.util.concatenate([body, *wheels]), body


def test_picture_difference_sees_a_lost_part_and_passes_a_good_level(tmp_path):
    pytest.importorskip("fast_simplification")
    from vrshare.scene.decimate import MAX_PICTURE_DIFFERENCE
    from vrshare.scene.lod_quality import picture_difference

    whole, body = truck()
    shape = (whole.vertices, whole.faces)
    for size in (24, 64):
        assert picture_difference(shape, shape, size) == 0.0
        assert picture_difference(shape, (body.vertices, body.faces), size) > \
            MAX_PICTURE_DIFFERENCE
    ball = [(g.vertices[:, :3].astype(float), g.indices.reshape(-1, 3))
            for g in load_model(textured_ball(tmp_path / "ball.glb"), "ball").lods]
    assert len(ball) == 3
    for size in (24, 64):
        assert 0 < max(picture_difference(ball[0], g, size) for g in ball[1:]) < \
            MAX_PICTURE_DIFFERENCE


def test_a_level_too_far_from_lod_0_at_its_size_is_dropped_and_logged(tmp_path, caplog,
                                                                      monkeypatch):
    pytest.importorskip("fast_simplification")
    from vrshare.scene import decimate

    path = textured_ball(tmp_path / "ball.glb")
    assert len(load_model(path, "ball", lod_pixels=(48.0, 24.0)).lods) == 3  # both pass
    monkeypatch.setattr(decimate, "MAX_PICTURE_DIFFERENCE", 0.021)  # between the two levels
    with caplog.at_level(logging.WARNING, "vrshare.scene"):
        mesh = load_model(path, "ball", lod_pixels=(48.0, 24.0))
    assert len(mesh.lods) == 2 and mesh.lod_distance == (0.0, 4.0)
    [record] = caplog.records
    text = record.getMessage()
    for word in (str(path), "level of detail 2", "24 px", "limit 0.021"):
        assert word in text, text


def test_the_scene_lod_pixels_reach_the_scene_filter(tmp_path):
    from vrshare import Frame, StageConfig, WeightBank, layout
    from vrshare.config import ConfigError
    from vrshare.stages.motion import SceneMotionStage
    from vrshare.stages.scene_filter import SceneFilterSettings, SceneFilterStage
    from vrshare.stages.scene_filter.synthetic import perspective

    # a 1 m sphere 5 m ahead of 512 px eyes with a 90 degree field of view: f = 256 px,
    # 51 px across, between the scene's 100 and 20 px: LOD 1
    scene = load({"lod_pixels": [100.0, 20.0], "lod_distances": [0.0, 50.0, 90.0],
                  "primitive": [{"name": "s", "shape": "sphere"}],
                  "object": [{"mesh": "s", "position": [0.0, 0.0, -5.0]}]}, tmp_path)
    assert scene.lod_pixels == (100.0, 20.0)
    bank = WeightBank()
    motion = SceneMotionStage()
    motion.setup(bank, StageConfig(None, scene=scene))
    bank.state(layout.EYE_VIEW, (2, 4, 4))[...] = np.eye(4)
    bank.state(layout.EYE_PROJ, (2, 4, 4))[...] = perspective(
        (-np.pi / 4, np.pi / 4, np.pi / 4, -np.pi / 4), 0.1, 100.0)
    stage = SceneFilterStage(SceneFilterSettings(lod_hysteresis=0.0, eye_height_px=512))
    stage.setup(bank, StageConfig(stage.settings, scene=scene))
    frame = Frame(0, 0.0, 0.0, 0.011)
    motion.process(frame, bank)
    stage.process(frame, bank)
    assert np.asarray(stage.lod).tolist() == [1]  # by distance it would be LOD 0
    with pytest.raises(ConfigError, match="eye_height_px"):
        SceneFilterStage().setup(bank, StageConfig(SceneFilterSettings(), scene=scene))
    with pytest.raises(SceneError, match="'lod_pixels': sizes must decrease"):
        load({"lod_pixels": [20.0, 100.0]}, tmp_path)


def test_every_part_keeps_its_share_of_triangles(tmp_path):
    pytest.importorskip("fast_simplification")
    whole, _ = truck()  # 12 body triangles (kept whole) and four wheels of 96
    lods = load_model(write_gltf(tmp_path / "truck.gltf", whole.vertices, whole.faces),
                      "truck").lods
    assert len(lods) == 3
    for g, share in zip(lods, (1.0, 0.5, 0.2), strict=True):
        c = g.vertices[g.indices.reshape(-1, 3), :3].mean(axis=1)  # triangle centres
        for x in (-1.1, 1.1):
            for z in (-1.3, 1.3):  # the wheel there: 0.3 m wide, radius 0.4 m
                here = (np.abs(c[:, 0] - x) <= 0.16) & (np.hypot(c[:, 1] - 0.4, c[:, 2] - z)
                                                        <= 0.45)
                assert np.count_nonzero(here) == pytest.approx(96 * share, abs=6)
