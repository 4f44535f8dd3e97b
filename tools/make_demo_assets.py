"""Build the demo's glTF model, ``scenes/assets/chair.glb``, with trimesh.

The chair is a small node hierarchy (a root with a seat; the back and four legs are
children of the seat, placed by node transforms), with two materials: a wood
base-colour texture (a procedural grain, 64x64 px) on the seat and back, and a plain
dark base-colour factor on the legs. It exercises what the scene loader handles:
hierarchy, base-colour factors and textures. Deterministic: same bytes every run.

    .venv/bin/python tools/make_demo_assets.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image
from trimesh.visual.material import PBRMaterial

OUT = Path(__file__).resolve().parent.parent / "scenes" / "assets" / "chair.glb"


def wood_texture(size: int = 64) -> Image.Image:
    """A warm wood grain: stripes bent by a low-frequency wobble (sRGB)."""
    y, x = np.mgrid[0:size, 0:size] / size
    grain = np.sin((x * 14 + 0.6 * np.sin(y * 6.0)) * np.pi) * 0.5 + 0.5
    light = np.array([0.80, 0.58, 0.36])
    dark = np.array([0.52, 0.33, 0.18])
    rgb = dark + (light - dark) * grain[..., None] ** 1.5
    return Image.fromarray((rgb * 255).round().astype(np.uint8), "RGB")


def textured_box(extents: tuple[float, float, float], image: Image.Image) -> trimesh.Trimesh:
    """A box with per-face UVs (each face maps the whole texture)."""
    box = trimesh.creation.box(extents=extents)
    box = box.copy()
    box.unmerge_vertices()  # one UV per corner of each face
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    uv = np.tile(corners, (len(box.faces), 1))
    box.visual = trimesh.visual.TextureVisuals(
        uv=uv, material=PBRMaterial(baseColorTexture=image, metallicFactor=0.0,
                                    roughnessFactor=0.8))
    return box


def chair() -> trimesh.Scene:
    wood = wood_texture()
    seat = textured_box((0.45, 0.05, 0.45), wood)
    back = textured_box((0.45, 0.45, 0.04), wood)
    leg = trimesh.creation.box(extents=(0.04, 0.45, 0.04))
    leg.visual = trimesh.visual.TextureVisuals(
        material=PBRMaterial(baseColorFactor=[0.08, 0.08, 0.09, 1.0], metallicFactor=0.6))
    scene = trimesh.Scene()
    scene.add_geometry(seat, node_name="seat", geom_name="seat",
                       transform=trimesh.transformations.translation_matrix([0, 0.45, 0]))
    scene.add_geometry(back, node_name="back", geom_name="back", parent_node_name="seat",
                       transform=trimesh.transformations.translation_matrix([0, 0.25, -0.205]))
    for i, (x, z) in enumerate([(-0.19, -0.19), (0.19, -0.19), (-0.19, 0.19), (0.19, 0.19)]):
        scene.add_geometry(leg, node_name=f"leg{i}", geom_name="leg", parent_node_name="seat",
                           transform=trimesh.transformations.translation_matrix([x, -0.225, z]))
    return scene


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(chair().export(file_type="glb"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
