"""A marker scene seen by the virtual camera, for tests and tools: boards written as
glTF quads, placed in a scene, drawn from any camera pose into a bank's camera
buffers, and an optical tracking stage reading them (run sync, frame by frame).

It joins a renderer to a stage, which no vrshare part below the run assembly may do,
so it lives with the tools (tests/test_optical.py imports it from here).

    python tools/optical_rig.py RUN_FILE [--sheet PNG]

writes the marker quads a run file's optical stage names, and with ``--sheet`` runs the
file headless and writes a contact sheet of the left eye beside the camera's view.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vrshare.geometry.pinhole import CameraSpec
from vrshare.pipeline import Frame, Pipeline, StageConfig
from vrshare.render import camera as vcam
from vrshare.scene import load_scene
from vrshare.stages.motion import SceneMotionStage
from vrshare.stages.optical import OpticalSettings, OpticalTrackingStage
from vrshare.stages.optical.markers import BoardSpec
from vrshare.stages.optical.quads import write_marker_quad
from vrshare.stages.passthrough import PassthroughStage
from vrshare.weights import WeightBank


def marker_scene_table(boards: Sequence[BoardSpec], dict_name: str, folder: Path,
                       extra_objects: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """A ``[scene]`` table with each room board as a textured quad at its place (the
    quads are written into ``folder``); ``extra_objects`` are added as they are."""
    models, objects = [], []
    for n, spec in enumerate(boards):
        path = write_marker_quad(folder / f"board_{n}.glb", spec, dict_name)
        models.append({"name": f"board_{n}", "file": str(path)})
        objects.append({"mesh": f"board_{n}", "position": list(spec.position),
                        "rotation": list(spec.rotation_deg)})
    return {"model": models, "object": [*objects, *extra_objects],
            "light": [{"type": "ambient", "intensity": 1.0}],
            "background": (0.3, 0.3, 0.3)}


class MarkerRig:
    """``scene_table`` drawn by a :class:`~vrshare.render.camera.VirtualCamera` of
    ``camera`` and read by an optical stage of ``settings`` (its camera and boards)."""

    def __init__(self, ctx: Any, scene_table: dict[str, Any], settings: OpticalSettings,
                 base_dir: Path) -> None:
        self.scene = load_scene(scene_table, base_dir, base_dir / "scene.toml")
        self.bank = WeightBank()
        sources = vcam.declare(self.bank, settings.camera)
        self.stage = OpticalTrackingStage(settings)
        self.stage.mode = "sync"  # type: ignore[misc]  # frame by frame, no private copies
        self.stage.rate_hz = None  # type: ignore[misc]
        self.pipeline = Pipeline([SceneMotionStage(), PassthroughStage(), self.stage],
                                 sources=sources)
        self.pipeline.setup(self.bank, StageConfig(None, scene=self.scene, base_dir=base_dir))
        first = Frame(0, 0.0, 0.0, 1.0)
        for stage in self.pipeline.stages[:2]:
            stage.process(first, self.bank)
        self.camera = vcam.VirtualCamera(ctx, self.scene, settings.camera)
        self.camera.bind(self.bank)
        self.index = 0

    @property
    def spec(self) -> CameraSpec:
        return self.camera.spec

    def expose(self, pose_at: vcam.PoseAt, t: float) -> np.ndarray:
        """Draw the camera's view at time ``t`` (s), camera pose from ``pose_at``."""
        frame = Frame(self.index, t, t, 1.0)
        return self.camera.expose(frame, pose_at, t)

    def track(self, t: float) -> None:
        """Run the optical stage on the newest exposure, at frame time ``t`` (s)."""
        self.stage.process(Frame(self.index, t, t, 1.0), self.bank)
        self.index += 1

    def close(self) -> None:
        self.camera.close()
        self.pipeline.close()


def write_run_file_quads(path: Path) -> list[Path]:
    """Write the boards of ``path``'s optical_tracking stage as the glTF quads its scene
    names (``optical/board_N.glb`` beside the run file), at 1000 px per metre."""
    from vrshare.config import build, load_run_file

    run_file = load_run_file(path)
    spec = next(st for st in run_file.stages if st.type == "optical_tracking")
    settings = build(OpticalSettings, spec.settings, f"{path} [stage.settings]")
    return [write_marker_quad(run_file.base_dir / "optical" / f"board_{n}.glb", board,
                              settings.dictionary, px_per_m=1000.0)
            for n, board in enumerate(settings.board)]


def contact_sheet(path: Path, out: Path, rows: int = 4, first: int = 45, every: int = 36,
                  eye_px: int = 240) -> Path:
    """Run ``path`` headless and write a PNG of ``rows`` moments (frame ``first``, then
    every ``every`` frames): the left eye beside the virtual camera's newest image (at
    half size), one row per moment."""
    from PIL import Image

    from vrshare.display import open_display

    run = open_display(path, target="headless", width=eye_px, height=eye_px)
    picture = []
    try:
        run.play(first)
        for k in range(rows):
            if k:
                run.play(every)
            eye = run.target.capture()[:, :eye_px, :3]
            grey = Image.fromarray(np.asarray(run.bank["camera_image"]))
            camera = grey.resize((grey.width // 2, grey.height // 2)).convert("RGB")
            row = Image.new("RGB", (eye_px + camera.width, max(eye_px, camera.height)))
            row.paste(Image.fromarray(np.ascontiguousarray(eye)), (0, 0))
            row.paste(camera, (eye_px, 0))
            picture.append(row)
    finally:
        run.close()
    sheet = Image.new("RGB", (picture[0].width, sum(r.height for r in picture)))
    for k, row in enumerate(picture):
        sheet.paste(row, (0, k * row.height))
    sheet.save(out)
    return out


if __name__ == "__main__":
    for written in write_run_file_quads(Path(sys.argv[1])):
        print(f"wrote {written}")
    if len(sys.argv) > 3 and sys.argv[2] == "--sheet":
        print(f"wrote {contact_sheet(Path(sys.argv[1]), Path(sys.argv[3]))}")
