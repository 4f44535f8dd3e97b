"""Scene loading (glTF via trimesh, primitives, objects, sounds), bad scene input,
and the scene_motion / passthrough stages. No GL needed."""

from __future__ import annotations

import base64
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from glkit import textured_ball

from vrshare import VirtualClock, WeightBank, layout
from vrshare.config import ConfigError
from vrshare.pipeline import Pipeline, StageConfig
from vrshare.scene import SceneError, load_model, load_scene
from vrshare.stages.motion import SceneMotionStage
from vrshare.stages.passthrough import PassthroughStage

trimesh = pytest.importorskip("trimesh")
DEMO_CHAIR = Path(__file__).resolve().parent.parent / "scenes" / "assets" / "chair.glb"


def load(table: dict, base_dir: Path = Path(".")):
    return load_scene(table, base_dir, Path("scene.toml"))


def gltf_triangle(path: Path, *, color=None, normals: bool = False) -> Path:
    """A one-triangle glTF 2.0 file (embedded buffer), optionally without normals."""
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    blobs = [pos.tobytes()]
    attributes = {"POSITION": 0}
    accessors = [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                  "min": [0, 0, 0], "max": [1, 1, 0]}]
    if normals:
        blobs.append(np.tile(np.float32([0, 0, 1]), (3, 1)).tobytes())
        attributes["NORMAL"] = 1
        accessors.append({"bufferView": 1, "componentType": 5126, "count": 3, "type": "VEC3"})
    data = b"".join(blobs)
    views, offset = [], 0
    for blob in blobs:
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(blob)})
        offset += len(blob)
    doc = {
        "asset": {"version": "2.0"},
        "scene": 0, "scenes": [{"nodes": [0]}],
        "nodes": [{"children": [1], "translation": [0, 2, 0]},
                  {"mesh": 0, "scale": [2, 2, 2]}],
        "meshes": [{"primitives": [{"attributes": attributes,
                                    **({"material": 0} if color else {})}]}],
        "buffers": [{"byteLength": len(data),
                     "uri": "data:application/octet-stream;base64,"
                            + base64.b64encode(data).decode()}],
        "bufferViews": views,
        "accessors": accessors,
    }
    if color:
        doc["materials"] = [{"pbrMetallicRoughness": {"baseColorFactor": color}}]
    path.write_text(json.dumps(doc))
    return path


# -- glTF -----------------------------------------------------------------------------


def test_gltf_node_hierarchy_factor_and_missing_normals(tmp_path):
    path = gltf_triangle(tmp_path / "tri.gltf", color=[0.5, 0.25, 1.0, 1.0])
    mesh = load_model(path, "tri")
    v = mesh.lods[0].vertices
    # parent translation (0, 2, 0) and child scale 2 are baked in
    np.testing.assert_allclose(v[:, :3], [[0, 2, 0], [2, 2, 0], [0, 4, 0]], atol=1e-6)
    np.testing.assert_allclose(v[:, 3:6], np.tile([0, 0, 1], (3, 1)), atol=1e-6)  # computed
    np.testing.assert_allclose(v[:, 8:12], np.tile([0.5, 0.25, 1.0, 1.0], (3, 1)), atol=3e-3)
    assert (v[:, 12] == -1).all() and mesh.lods[0].textures is None


def test_demo_chair_model_has_its_parts_and_texture():
    mesh = load_model(DEMO_CHAIR, "chair")
    g = mesh.lods[0]
    assert g.triangles == 6 * 12  # seat, back, four legs
    assert g.textures is not None and g.textures.shape[0] == 1  # seat and back share it
    top = g.vertices[:, 1].max()
    assert top == pytest.approx(0.925, abs=1e-5)  # the back's node sits on the seat's


def test_gltf_models_get_decimated_levels_of_detail(tmp_path):
    pytest.importorskip("fast_simplification")
    mesh = load_model(textured_ball(tmp_path / "ball.glb"), "ball", (0.0, 3.0, 9.0))
    fine, half, fifth = mesh.lods
    assert mesh.lod_distance == (0.0, 3.0, 9.0)
    assert fine.triangles == 3840
    assert half.triangles == pytest.approx(1920, rel=0.05)
    assert fifth.triangles == pytest.approx(768, rel=0.05)
    for coarse in (half, fifth):
        assert len(coarse.vertices) < 0.6 * len(fine.vertices)  # corners share vertices
        p, n = coarse.vertices[:, :3], coarse.vertices[:, 3:6]
        r = np.linalg.norm(p, axis=1)
        assert np.abs(r - 1).max() < 0.02  # still the unit sphere
        assert np.einsum("ij,ij->i", n, p / r[:, None]).min() > 0.98  # normals point out
        faces = p[coarse.indices.reshape(-1, 3)]
        outward = np.einsum("ij,ij->i", np.cross(faces[:, 1] - faces[:, 0],
                                                 faces[:, 2] - faces[:, 0]), faces.mean(axis=1))
        assert (outward > 0).all()  # counter-clockwise seen from outside, as LOD 0
        assert coarse.textures is fine.textures and (coarse.vertices[:, 12] == 0).all()
        # texture coordinates come from the original vertices, seam sides kept apart
        uv_rows = {tuple(r) for r in fine.vertices[:, 6:8].round(6)}
        assert {tuple(r) for r in coarse.vertices[:, 6:8].round(6)} <= uv_rows
        assert coarse.indices.max() < len(coarse.vertices)


def test_gltf_level_of_detail_count_follows_lod_distances_and_size(tmp_path):
    pytest.importorskip("fast_simplification")
    ball = textured_ball(tmp_path / "ball.glb")
    assert len(load_model(ball, "b", (0.0,)).lods) == 1
    assert len(load_model(ball, "b", (0.0, 5.0)).lods) == 2
    assert len(load_model(DEMO_CHAIR, "chair").lods) == 1  # 72 triangles: kept whole
    scene = load({"lod_distances": [0.0, 2.0, 6.0], "model": [{"name": "b", "file": "ball.glb"}],
                  "object": [{"mesh": "b"}]}, tmp_path)
    draw, distance = scene.lod_tables()
    np.testing.assert_array_equal(draw, [[0, 1, 2]])
    np.testing.assert_array_equal(distance, [[0.0, 2.0, 6.0]])


def test_without_fast_simplification_a_model_keeps_one_level_and_says_so(
        tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "fast_simplification", None)  # import fails
    ball = textured_ball(tmp_path / "ball.glb")
    with caplog.at_level(logging.WARNING, logger="vrshare.scene"):
        mesh = load_model(ball, "b")
    assert [g.triangles for g in mesh.lods] == [3840] and mesh.lod_distance == (0.0,)
    assert str(ball) in caplog.text and "fast-simplification" in caplog.text


@pytest.mark.parametrize("name, content, message", [
    ("missing.glb", None, "model file not found"),
    ("model.obj", b"v 0 0 0\n", "unsupported model format '.obj'"),
    ("broken.glb", b"glTF\x02\x00\x00\x00garbage", "not a readable glTF 2.0 file"),
    ("broken.gltf", b"{ not json", "not a readable glTF 2.0 file"),
])
def test_bad_model_files_name_the_file(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(SceneError, match=message) as info:
        load({"model": [{"name": "m", "file": name}]}, tmp_path)
    assert str(tmp_path / name) in str(info.value)


def test_a_model_without_triangles_is_an_error(tmp_path):
    (tmp_path / "empty.gltf").write_text(json.dumps({"asset": {"version": "2.0"}}))
    with pytest.raises(SceneError, match="empty.gltf"):
        load({"model": [{"name": "m", "file": "empty.gltf"}]}, tmp_path)


# -- bad scene tables -----------------------------------------------------------------------


@pytest.mark.parametrize("table, message", [
    ({"primitive": [{"name": "p", "shape": "cone"}]}, "'shape': expected 'box' or 'sphere'"),
    ({"primitive": [{"name": "p", "shape": "box", "size": "big"}]}, "'size': expected tuple"),
    ({"primitive": [{"name": "p", "shape": "box", "size": [1, 0, 1]}]}, "must be positive"),
    ({"primitive": [{"name": "p", "shape": "box", "colour": [1, 0, 0]}]}, "unknown key 'colour'"),
    ({"object": [{"mesh": "nothing"}]}, "no mesh named 'nothing'"),
    ({"primitive": [{"name": "p", "shape": "box"}], "object": [{"mesh": "p", "grid": [0, 1, 1]}]},
     "'grid': counts must be >= 1"),
    ({"primitive": [{"name": "p", "shape": "box"}, {"name": "p", "shape": "sphere"}]},
     "mesh name 'p' is used twice"),
    ({"primitive": [{"name": "p", "shape": "box"}],
      "object": [{"mesh": "p", "motion": {"spin_deg_s": 1.0, "spin_axis": [0, 0, 0]}}]},
     "'spin_axis': must not be the zero vector"),
    ({"light": [{"type": "ambient"}, {"type": "ambient"}]}, "a second ambient light"),
    ({"sound": [{"name": "s", "object": "ghost"}]}, "no object named 'ghost'"),
    ({"sound": [{"name": "s", "file": "nope.wav"}]}, "audio file not found"),
    ({"sound": [{"name": "s", "signal": "file"}]}, "signal 'file' needs a 'file'"),
    ({"lod_distances": [1.0, 2.0]}, "must start at 0"),
])
def test_bad_scene_tables_say_what_is_wrong(table, message):
    with pytest.raises(ConfigError, match=message) as info:
        load(table)
    assert "scene.toml [scene]" in str(info.value)


# -- the object table ---------------------------------------------------------------------------


def test_objects_sounds_and_lod_tables(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    scene = load({
        "primitive": [{"name": "ball", "shape": "sphere"}, {"name": "box", "shape": "box"}],
        "object": [
            {"mesh": "ball", "name": "mover", "position": [1, 0, 0],
             "motion": {"orbit_deg_s": 90.0}},
            {"mesh": "box", "name": "still", "grid": [2, 1, 3], "spacing": [1, 1, 2]},
        ],
        "sound": [{"name": "hum", "object": "mover", "position": [0, 0.1, 0]},
                  {"name": "clip", "file": "a.wav", "gain": 0.5, "loop": False}],
    }, tmp_path)
    assert len(scene.objects) == 7 and scene.moving_from == 6  # moving objects last
    assert scene.objects[6].name == "mover"
    np.testing.assert_allclose(scene.objects[5].model[:3, 3], [1, 0, 4])  # grid copy (1, 0, 2)
    hum, clip = scene.sounds
    assert (hum.object_index, hum.signal, hum.position) == (6, "tone", (0.0, 0.1, 0.0))
    assert clip.signal == "file" and clip.file == (tmp_path / "a.wav").resolve()
    assert clip.object_index == -1 and clip.gain == 0.5 and clip.loop is False
    draw, distance = scene.lod_tables()
    np.testing.assert_array_equal(draw, [[0, 1, 2], [3, -1, -1]])
    assert [g.triangles for g in scene.draws] == [1280, 320, 80, 12]
    assert distance[0, 1] == 4.0 and np.isinf(distance[1, 1])


def test_meshes_with_the_same_geometry_share_one_mesh_entry(tmp_path):
    gltf_triangle(tmp_path / "a.gltf")
    gltf_triangle(tmp_path / "b.gltf")  # the same geometry in a second file
    scene = load({
        "model": [{"name": "t1", "file": "a.gltf"}, {"name": "t2", "file": "b.gltf"},
                  {"name": "t3", "file": "a.gltf"}],
        "primitive": [{"name": "red", "shape": "box", "color": [1, 0, 0]},
                      {"name": "blue", "shape": "box", "color": [0, 0, 1]},
                      {"name": "tall", "shape": "box", "size": [1, 2, 1]},
                      {"name": "ball", "shape": "sphere"}, {"name": "orb", "shape": "sphere"}],
        "object": [{"mesh": m} for m in ("t1", "t2", "t3", "red", "blue", "tall", "ball", "orb")],
    }, tmp_path)
    mesh = [o.mesh for o in scene.objects]
    assert mesh == [0, 0, 0, 1, 1, 2, 3, 3]  # a different size is different geometry
    assert len(scene.meshes) == 4 and len(scene.draws) == 1 + 1 + 1 + 3
    # the primitive colour went to the objects: red and blue still differ
    np.testing.assert_allclose(scene.objects[3].color, [1, 0, 0, 1])
    np.testing.assert_allclose(scene.objects[4].color, [0, 0, 1, 1])
    assert (scene.meshes[1].lods[0].vertices[:, 8:12] == 1).all()


def run_stages(scene, times):
    bank = WeightBank()
    pipeline = Pipeline([PassthroughStage(), SceneMotionStage()])
    pipeline.setup(bank, StageConfig(None, scene=scene))
    clock = VirtualClock(90.0, latency_frames=0)
    out = []
    for t in times:
        clock.index = round(t * 90)
        frame = clock.wait_frame()
        for stage in pipeline.stages:
            stage.process(frame, bank)
        out.append({name: bank[name].copy() for name in (layout.OBJECT_MODEL,
                    layout.OBJECT_BOUNDS, layout.INSTANCES, layout.DRAW_RANGES)})
    pipeline.close()
    return out


def test_motion_orbit_spin_and_bob_at_display_time():
    scene = load({
        "primitive": [{"name": "b", "shape": "box", "size": [2, 2, 2]}],
        "object": [
            {"mesh": "b"},  # static
            {"mesh": "b", "position": [2, 0, 0], "scale": 0.5,
             "motion": {"orbit_deg_s": 90.0, "orbit_center": [0, 0, 0]}},
            {"mesh": "b", "position": [0, 1, 0], "motion": {"spin_deg_s": 180.0}},
            {"mesh": "b", "position": [0, 0, -3], "motion": {"bob_m": 0.5, "bob_hz": 0.25}},
        ]})
    (f,) = run_stages(scene, [1.0])
    model = f[layout.OBJECT_MODEL]
    np.testing.assert_allclose(model[0], np.eye(4), atol=1e-6)
    # orbit 90 deg about +Y: (2, 0, 0) -> (0, 0, -2), the object turned with it
    np.testing.assert_allclose(model[1][:3, 3], [0, 0, -2], atol=1e-5)
    np.testing.assert_allclose(model[1][:3, 0], [0, 0, -0.5], atol=1e-5)
    # spin 180 deg about +Y in place
    np.testing.assert_allclose(model[2][:3, :3], np.diag([-1, 1, -1]), atol=1e-5)
    np.testing.assert_allclose(model[2][:3, 3], [0, 1, 0], atol=1e-6)
    # bob: 0.5 sin(2 pi 0.25 1) = 0.5
    np.testing.assert_allclose(model[3][:3, 3], [0, 0.5, -3], atol=1e-5)
    # bounds follow; the radius of a 2 m cube scaled 0.5 is sqrt(3) / 2
    bounds = f[layout.OBJECT_BOUNDS]
    np.testing.assert_allclose(bounds[1], [0, 0, -2, math.sqrt(3) / 2], atol=1e-5)
    np.testing.assert_allclose(bounds[0], [0, 0, 0, math.sqrt(3)], atol=1e-5)


def test_passthrough_groups_instances_by_draw_slot():
    scene = load({
        "primitive": [{"name": "s", "shape": "sphere"}, {"name": "b", "shape": "box"}],
        "object": [{"mesh": "b", "position": [1, 0, 0], "color": [1, 0, 0]},
                   {"mesh": "s", "position": [2, 0, 0]},
                   {"mesh": "b", "position": [3, 0, 0]}]})
    (f,) = run_stages(scene, [0.0])
    # slots: sphere LOD 0, 1, 2, box: the sphere first, then both boxes in object order
    np.testing.assert_array_equal(f[layout.DRAW_RANGES], [[0, 1], [1, 0], [1, 0], [1, 2]])
    inst = f[layout.INSTANCES].reshape(3, 5, 4)
    # GL column-major: the translation is the 4th column, floats 12..14
    np.testing.assert_allclose(inst[:, 3, :3], [[2, 0, 0], [1, 0, 0], [3, 0, 0]])
    np.testing.assert_allclose(inst[1, 4], [1, 0, 0, 1])  # linear red


def test_scene_motion_without_a_scene_fails_in_setup():
    with pytest.raises(Exception, match=r"needs the run file's \[scene\]"):
        Pipeline([SceneMotionStage()]).setup(WeightBank(), StageConfig(None))
