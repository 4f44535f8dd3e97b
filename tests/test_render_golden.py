"""Golden images of the demo scene from fixed head poses, and of the glTF feature
scene (both eyes, Mesa llvmpipe).

The demo's tracking stage is replaced by a fixed camera, its scene filter by the
passthrough stage and its audio is left out, so the image depends only on the scene,
the scene loader, the motion stage (at the first frame's display time) and the
renderer. After an intended change to any of those, regenerate the references with

    VRSHARE_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_render_golden.py

and look at the new PNGs in tests/golden/ before committing them. On a mismatch the
test writes the rendered image and an amplified difference image next to pytest's
temporary files and names them in the failure message.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from glkit import gl_ctx  # noqa: F401  (fixture)

from vrshare import display, resources
from vrshare.config import StageSpec, load_run_file

GOLDEN = Path(__file__).resolve().parent / "golden"
SIZE = 96  # px per eye
MEAN_TOLERANCE = 1.5  # mean absolute difference, 0..255
PIXEL_TOLERANCE = 32  # a pixel differs when a channel is off by more than this
MAX_DIFFERING = 0.005  # fraction of pixels allowed to differ (rasterisation edges)

POSES = {
    "demo_doorway": {"position": [0.0, 1.6, 3.6], "yaw_deg": 0.0, "pitch_deg": -8.0},
    "demo_table": {"position": [1.6, 1.5, 1.6], "yaw_deg": 45.0, "pitch_deg": -30.0},
}


def render_demo(pose: dict) -> np.ndarray:
    run_file = load_run_file(resources.path("scenes", "demo.toml"))
    run_file.stages = [
        StageSpec("vrshare.testing:FixedEyes",
                  settings={**pose, "ipd": 0.063, "half_fov_deg": 50.0}),
        StageSpec("scene_motion"),
        StageSpec("passthrough"),
    ]
    with display.open_display(run_file, target="headless", clock="virtual", capture="numpy",
                              width=SIZE, height=SIZE) as run:
        run.loop.run(1)
        target = run.target
        return target.frames[0][1][..., :3]


def render_features() -> np.ndarray:
    """scenes/gltf_features.toml from its own fixed head (glTF material rules)."""
    with display.open_display(resources.path("scenes", "gltf_features.toml"),
                              target="headless", clock="virtual", capture="numpy",
                              width=SIZE, height=SIZE) as run:
        run.loop.run(1)
        return run.target.frames[0][1][..., :3]


@pytest.mark.parametrize("name", sorted(POSES))
def test_demo_matches_its_golden_image(gl_ctx, name, tmp_path):
    check_golden(render_demo(POSES[name]), name, tmp_path)


def test_gltf_features_match_their_golden_image(gl_ctx, tmp_path):
    check_golden(render_features(), "gltf_features", tmp_path)


def check_golden(image: np.ndarray, name: str, tmp_path: Path) -> None:
    """Compare with tests/golden/<name>.png (or rewrite it, see the module docs)."""
    from PIL import Image

    reference = GOLDEN / f"{name}.png"
    if os.environ.get("VRSHARE_REGEN_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        Image.fromarray(image).save(reference)
        pytest.skip(f"regenerated {reference}")
    assert reference.is_file(), f"no golden image {reference}: regenerate (see module docs)"
    expected = np.asarray(Image.open(reference).convert("RGB"))
    assert expected.shape == image.shape
    diff = np.abs(image.astype(int) - expected.astype(int))
    mean = diff.mean()
    differing = (diff.max(axis=-1) > PIXEL_TOLERANCE).mean()
    if mean > MEAN_TOLERANCE or differing > MAX_DIFFERING:
        Image.fromarray(image).save(tmp_path / f"{name}.actual.png")
        Image.fromarray(np.clip(diff * 4, 0, 255).astype(np.uint8)).save(
            tmp_path / f"{name}.diff.png")
        pytest.fail(f"{name}: mean difference {mean:.2f} (tolerance {MEAN_TOLERANCE}), "
                    f"{differing:.2%} of pixels differ (tolerance {MAX_DIFFERING:.1%}); "
                    f"see {tmp_path}/{name}.actual.png and .diff.png")


def test_the_golden_comparison_catches_a_change(gl_ctx):
    """A moved camera must fail the comparison (the tolerance is not too loose)."""
    from PIL import Image

    reference = GOLDEN / "demo_doorway.png"
    if not reference.is_file():
        pytest.skip("no golden image yet")
    moved = {**POSES["demo_doorway"], "yaw_deg": 3.0}
    image = render_demo(moved).astype(int)
    expected = np.asarray(Image.open(reference).convert("RGB")).astype(int)
    diff = np.abs(image - expected)
    assert diff.mean() > MEAN_TOLERANCE or (diff.max(axis=-1) > PIXEL_TOLERANCE).mean() \
        > MAX_DIFFERING
