"""Pictures of a glTF model's levels of detail as the loader's check sees them.

For each coarser level l, LOD 0 and LOD l drawn side by side at level l's switching
size (``--sizes``, px across the bounding sphere; the scene's ``lod_pixels``) by
:func:`vrshare.scene.lod_quality.picture`, from one corner direction, enlarged
without smoothing. ``--before TREE`` adds a second row: the levels another vrshare
source tree makes of the same model (loaded in a subprocess with that tree on the
path). Prints each picture difference (worst of the eight directions the check
uses) and the triangle counts.

    .venv/bin/python tools/lod_pictures.py scenes/assets/truck.glb --sizes 160 64 \\
        [--before ../old-checkout] --out docs/lod_truck.png
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from vrshare.scene import load_model
from vrshare.scene.lod_quality import DIRECTIONS, picture, picture_difference, view_axes

SHOWN = 192  # px: each picture is enlarged to this
GAP = 6  # px between pictures


def levels_from(checkout: Path, model: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The model's levels as the vrshare in ``checkout`` (a source tree) makes them:
    loaded in a subprocess with that tree first on the path."""
    script = ("import sys, numpy as np; from pathlib import Path; "
              "from vrshare.scene import load_model; "
              "m = load_model(Path(sys.argv[1]), 'model'); "
              "np.savez(sys.argv[2], *[a for g in m.lods for a in (g.vertices[:, :3], "
              "g.indices)])")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lods.npz"
        env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
        subprocess.run([sys.executable, "-c", script, str(model.resolve()), str(out)],
                       check=True, env=env, cwd=tmp)
        arrays = np.load(out)
        found = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    return [(p.astype(np.float64), f.reshape(-1, 3)) for p, f in zip(found[::2], found[1::2],
                                                                       strict=True)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--sizes", type=float, nargs="+", default=[160.0, 64.0],
                   help="switching sizes of LODs 1, 2 (px)")
    p.add_argument("--before", type=Path, default=None,
                   help="a source tree of another vrshare: its levels in a second row")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    mesh = load_model(args.model, "model", lod_pixels=tuple(args.sizes))
    shapes = [(g.vertices[:, :3].astype(np.float64), g.indices.reshape(-1, 3))
              for g in mesh.lods]
    sets = {"this vrshare": shapes}
    if args.before is not None:
        sets[f"{args.before}"] = levels_from(args.before, args.model)
    fine = shapes[0]
    center = (fine[0].min(axis=0) + fine[0].max(axis=0)) / 2
    radius = float(np.linalg.norm(fine[0] - center, axis=1).max())
    axes = view_axes(DIRECTIONS[7] * [1, 1, -1])  # from the front right, above
    rows: list[list[np.ndarray]] = [[] for _ in sets]
    print(f"{args.model}: LOD 0 {len(fine[1])} triangles")
    for row, (name, levels) in zip(rows, sets.items(), strict=True):
        for level, size in enumerate(args.sizes, start=1):
            s = int(round(size))
            row.append(picture(*fine, axes, center, radius, s))
            if level >= len(levels):  # the level was not made (or dropped)
                row.append(np.zeros((s, s)))
                print(f"  {name}: no LOD {level}")
                continue
            row.append(picture(*levels[level], axes, center, radius, s))
            print(f"  {name}: LOD {level} at {s} px: {len(levels[level][1])} triangles, "
                  f"picture difference {picture_difference(fine, levels[level], s):.3f}")
    tiles = [[Image.fromarray((im * 255).astype(np.uint8)).resize((SHOWN, SHOWN),
                                                                  Image.Resampling.NEAREST)
              for im in row] for row in rows]
    sheet = Image.new("L", (len(tiles[0]) * (SHOWN + GAP) - GAP,
                            len(tiles) * (SHOWN + GAP) - GAP), 255)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            sheet.paste(tile, (c * (SHOWN + GAP), r * (SHOWN + GAP)))
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
