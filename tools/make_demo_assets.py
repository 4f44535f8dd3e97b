"""Build the demo's glTF models in ``scenes/assets/`` with trimesh: the chair, and
the models of ``scenes/gltf_features.toml``.

The chair is a small node hierarchy (a root with a seat; the back and four legs are
children of the seat, placed by node transforms), with two materials: a wood
base-colour texture (a procedural grain, 64x64 px) on the seat and back, and a plain
dark base-colour factor on the legs. It exercises what the scene loader handles:
hierarchy, base-colour factors and textures. The feature scene's models each show
one material rule of glTF 2.0: a lantern (emissive factor), a fence (MASK texture,
double-sided), a glass pane (BLEND), and a crate without normals (flat faces); and a
toy truck whose levels of detail docs/scene-filter.md shows.
Deterministic: same bytes every run.

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


def quad(width: float, height: float, material: PBRMaterial) -> trimesh.Trimesh:
    """A ``width`` x ``height`` m rectangle in the XY plane facing +Z, base at y = 0."""
    w = width / 2
    mesh = trimesh.Trimesh(vertices=[[-w, 0, 0], [w, 0, 0], [w, height, 0], [-w, height, 0]],
                           faces=[[0, 1, 2], [0, 2, 3]], process=False)
    mesh.vertex_normals = np.tile([0.0, 0.0, 1.0], (4, 1))
    mesh.visual = trimesh.visual.TextureVisuals(uv=[[0, 0], [1, 0], [1, 1], [0, 1]],
                                                material=material)
    return mesh


def lattice_texture(size: int = 64, bars: int = 6) -> Image.Image:
    """Green bars on transparent gaps (RGBA): a MASK material cuts the gaps out."""
    y, x = np.mgrid[0:size, 0:size] * bars / size
    solid = (np.abs(x - np.round(x)) < 0.15) | (np.abs(y - np.round(y)) < 0.15)
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., :3] = (60, 140, 70)
    rgba[..., 3] = np.where(solid, 255, 0)
    return Image.fromarray(rgba, "RGBA")


def features() -> dict[str, trimesh.Trimesh]:
    """The models of scenes/gltf_features.toml, by file name."""
    lantern = trimesh.creation.icosphere(subdivisions=2, radius=0.15)
    lantern.vertex_normals  # noqa: B018  (computed, so that they are exported)
    lantern.visual = trimesh.visual.TextureVisuals(material=PBRMaterial(
        baseColorFactor=[1.0, 0.8, 0.4, 1.0], emissiveFactor=[1.0, 0.65, 0.2]))
    fence = quad(1.2, 0.8, PBRMaterial(baseColorTexture=lattice_texture(), alphaMode="MASK",
                                       alphaCutoff=0.5, doubleSided=True))
    glass = quad(0.9, 0.9, PBRMaterial(baseColorFactor=[0.55, 0.75, 1.0, 0.35],
                                       alphaMode="BLEND"))
    crate = trimesh.creation.box(extents=(0.4, 0.4, 0.4))  # 8 shared corners, no normals
    crate.visual = trimesh.visual.TextureVisuals(material=PBRMaterial(
        baseColorFactor=[0.75, 0.5, 0.3, 1.0]))
    return {"lantern.glb": lantern, "fence.glb": fence, "glass.glb": glass,
            "crate.glb": crate, "truck.glb": truck()}


def canopy(width: float, length: float, rise: float, k: int = 24) -> trimesh.Trimesh:
    """An open, arched k x k sheet (a tarp), ``width`` x ``length`` m, its crest
    ``rise`` m above its edges, facing up: an open border for decimation to keep."""
    v, u = np.mgrid[0:k, 0:k] / (k - 1)
    x = (u - 0.5) * width
    y = rise * np.sin(np.pi * u) + 0.05 * np.sin(6 * np.pi * v)
    ids = np.arange(k * k).reshape(k, k)
    quads = np.stack([ids[:-1, :-1], ids[1:, :-1], ids[1:, 1:], ids[:-1, 1:]], -1).reshape(-1, 4)
    sheet = trimesh.Trimesh(vertices=np.c_[x.ravel(), y.ravel(), (v.ravel() - 0.5) * length],
                            faces=np.r_[quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]],
                            process=False)
    if sheet.face_normals[:, 1].mean() < 0:
        sheet.invert()
    return sheet


def truck() -> trimesh.Trimesh:
    """A toy truck (4.2 m long): body, cab, an arched tarp over the body and four
    wheels, separate parts, smooth normals on the wheels and the tarp; what
    docs/scene-filter.md shows the levels of detail of."""
    body = trimesh.creation.box(extents=(1.8, 1.0, 3.0))
    body.apply_translation((0.0, 1.1, 0.5))
    tarp = canopy(1.8, 3.0, 0.6)
    tarp.apply_translation((0.0, 1.6, 0.5))
    tarp.vertex_normals  # noqa: B018  (computed, so that they are exported)
    cab = trimesh.creation.box(extents=(1.8, 1.2, 1.1))
    cab.apply_translation((0.0, 1.2, -1.55))
    parts = []
    for part, color in ((body, [0.8, 0.25, 0.15, 1.0]), (cab, [0.2, 0.35, 0.7, 1.0]),
                        (tarp, [0.35, 0.45, 0.25, 1.0])):
        part.visual = trimesh.visual.TextureVisuals(material=PBRMaterial(
            baseColorFactor=color))
        parts.append(part)
    for x in (-0.95, 0.95):
        for z in (-1.5, 1.4):
            wheel = trimesh.creation.cylinder(
                radius=0.45, height=0.3, sections=48,
                transform=trimesh.transformations.rotation_matrix(np.pi / 2, (0, 1, 0)))
            wheel.apply_translation((x, 0.45, z))
            wheel.vertex_normals  # noqa: B018  (computed, so that they are exported)
            wheel.visual = trimesh.visual.TextureVisuals(material=PBRMaterial(
                baseColorFactor=[0.1, 0.1, 0.1, 1.0]))
            parts.append(wheel)
    return trimesh.util.concatenate(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=OUT, help="the chair's file; the feature "
                   "models are written beside it")
    args = p.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(chair().export(file_type="glb"))
    print(f"wrote {args.out}")
    for name, mesh in features().items():
        out = args.out.parent / name
        out.write_bytes(mesh.export(file_type="glb"))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
