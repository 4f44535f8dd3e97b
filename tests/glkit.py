"""Headless GL support for the render tests: one EGL context for the whole test run
and a small harness that renders a scene table in front of a fixed camera.

Import the fixtures into a test module (``from glkit import gl_ctx, harness``); the
context fixture skips cleanly when no EGL/OpenGL 4.3 is available.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vrshare import VirtualClock, WeightBank
from vrshare.pipeline import Pipeline, StageConfig
from vrshare.scene import load_scene
from vrshare.stages.motion import SceneMotionStage
from vrshare.stages.passthrough import PassthroughStage
from vrshare.targets.base import DisplaySettings
from vrshare.testing import FixedEyes, FixedEyesSettings


@pytest.fixture(scope="session")
def gl_ctx():
    """One headless OpenGL 4.3+ context for the session (skips without EGL)."""
    from vrshare.targets import TargetError
    from vrshare.targets.headless import standalone_context

    try:
        ctx = standalone_context()
    except TargetError as exc:
        pytest.skip(f"no headless OpenGL: {exc}")
    yield ctx
    ctx.release()


class Harness:
    """A scene table drawn by scene_motion + passthrough + FixedEyes into a headless
    target sharing the session context. Images are (H, W, 4) per eye, top row first."""

    def __init__(self, ctx, table: dict, *, size: int = 64, base_dir: Path = Path("."),
                 **camera) -> None:
        from vrshare.render import Renderer
        from vrshare.targets.headless import HeadlessTarget

        self.scene = load_scene(table, base_dir, Path("test.toml"))
        self.bank = WeightBank()
        self.camera = FixedEyes(FixedEyesSettings(**{"ipd": 0.0, **camera}))
        self.pipeline = Pipeline([SceneMotionStage(), PassthroughStage(), self.camera])
        self.pipeline.setup(self.bank, StageConfig(None, scene=self.scene))
        self.target = HeadlessTarget(DisplaySettings(width=size, height=size), ctx=ctx)
        self.renderer = Renderer(ctx, self.scene, gpu_timing=False)
        self.renderer.bind(self.bank)
        self.clock = VirtualClock(90.0)
        self.size = size

    def frame(self) -> tuple[np.ndarray, np.ndarray]:
        """Run one frame; (left, right) images, copied."""
        frame = self.clock.wait_frame()
        for stage in self.pipeline.stages:
            stage.process(frame, self.bank)
        self.renderer.render(frame, self.target.surfaces(frame))
        self.target.submit(frame)
        image = self.target.capture().copy()
        return image[:, : self.size], image[:, self.size:]

    def close(self) -> None:
        self.renderer.close()
        self.target.close()
        self.pipeline.close()


@pytest.fixture
def harness(gl_ctx):
    """Factory: ``harness(table, **camera)``; everything made is closed after the test."""
    made: list[Harness] = []

    def make(table: dict, **kwargs) -> Harness:
        h = Harness(gl_ctx, table, **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def mask(image: np.ndarray, rgb, tol: int = 40) -> np.ndarray:
    """Pixels within ``tol`` of an sRGB colour (0..255)."""
    return np.all(np.abs(image[..., :3].astype(int) - np.asarray(rgb)) <= tol, axis=-1)


def centroid_x(m: np.ndarray) -> float:
    """Mean column (px, pixel centres at +0.5) of a boolean mask."""
    cols = np.nonzero(m)[1]
    assert cols.size, "the object is not on screen"
    return float(cols.mean() + 0.5)


def textured_ball(path: Path) -> Path:
    """A UV sphere (3840 triangles) with a seam, texture coordinates, a texture and
    smooth normals."""
    import trimesh
    from PIL import Image
    from trimesh.visual.material import PBRMaterial

    ball = trimesh.creation.uv_sphere(count=[32, 32])
    p = ball.vertices
    uv = np.c_[np.arctan2(p[:, 0], p[:, 2]) / (2 * np.pi) + 0.5, p[:, 1] * 0.5 + 0.5]
    ball.visual = trimesh.visual.TextureVisuals(
        uv=uv, material=PBRMaterial(baseColorTexture=Image.new("RGB", (4, 4), (200, 10, 10))))
    path.write_bytes(ball.export(file_type="glb", include_normals=True))  # smooth
    return path


def write_gltf(path: Path, positions, faces, *, normals=None, uv=None, material=None,
               images=(), extra=None) -> Path:
    """A glTF 2.0 file of one mesh (one primitive, one node) with its buffer embedded.

    ``material`` is a glTF material object (its texture ``index`` i is image i);
    ``images`` are PIL images (embedded as PNG data URIs) or URI strings; ``extra``
    top-level keys are merged in (skins, extensions, ...). Without ``normals`` the
    primitive has no NORMAL attribute."""
    import base64
    import io
    import json

    blobs, accessors, attributes = [], [], {}
    for key, data, kind in (("POSITION", positions, "VEC3"), ("NORMAL", normals, "VEC3"),
                            ("TEXCOORD_0", uv, "VEC2")):
        if data is None:
            continue
        a = np.asarray(data, np.float32)
        attributes[key] = len(accessors)
        accessor = {"bufferView": len(blobs), "componentType": 5126, "count": len(a),
                    "type": kind}
        if key == "POSITION":
            accessor.update(min=a.min(axis=0).tolist(), max=a.max(axis=0).tolist())
        accessors.append(accessor)
        blobs.append(a.tobytes())
    indices = np.asarray(faces, np.uint32).reshape(-1)
    accessors.append({"bufferView": len(blobs), "componentType": 5125,
                      "count": len(indices), "type": "SCALAR"})
    blobs.append(indices.tobytes())
    views, offset = [], 0
    for blob in blobs:
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(blob)})
        offset += len(blob)
    data = b"".join(blobs)
    primitive = {"attributes": attributes, "indices": len(accessors) - 1}
    doc = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
           "nodes": [{"mesh": 0}], "meshes": [{"primitives": [primitive]}],
           "buffers": [{"byteLength": len(data), "uri": "data:application/octet-stream;base64,"
                        + base64.b64encode(data).decode()}],
           "bufferViews": views, "accessors": accessors}
    if material is not None:
        primitive["material"] = 0
        doc["materials"] = [material]
    if images:
        uris = []
        for image in images:
            if isinstance(image, str):
                uris.append(image)
            else:
                png = io.BytesIO()
                image.save(png, format="PNG")
                uris.append("data:image/png;base64," + base64.b64encode(png.getvalue()).decode())
        doc["images"] = [{"uri": u} for u in uris]
        doc["textures"] = [{"source": i} for i in range(len(uris))]
    doc.update(extra or {})
    path.write_text(json.dumps(doc))
    return path


QUAD_POSITIONS = [[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 1.0, 0.0]]
QUAD_UV = [[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]  # glTF: v runs down the image
QUAD_FACES = [[0, 1, 2], [0, 2, 3]]  # counter-clockwise seen from +Z


def write_quad(path: Path, material=None, images=(), **kwargs) -> Path:
    """A 2 m square facing +Z (normals +Z, texture upright seen from +Z)."""
    return write_gltf(path, QUAD_POSITIONS, QUAD_FACES, normals=[[0.0, 0.0, 1.0]] * 4,
                      uv=QUAD_UV, material=material, images=images, **kwargs)
