"""A small run file for the sweep tests: a synthetic head, three balls, 32 px eyes on
the virtual clock, so that a run takes a fraction of a second once its process is up."""

from __future__ import annotations

import copy
from pathlib import Path

import tomli_w

SMALL = {
    "pipeline": {"frame_hz": 90.0, "clock": "virtual"},
    "stage": [
        {"type": "tracking", "settings": {"source": "synthetic"}},
        {"type": "scene_motion"},
        {"type": "scene_filter"},
    ],
    "display": {"width": 32, "height": 32},
    "scene": {
        "primitive": [{"name": "ball", "shape": "sphere"}],
        "object": [{"mesh": "ball", "position": [x, 1.6, z]}
                   for x, z in ((0.0, -2.0), (2.0, 0.0), (0.0, 2.0))],
    },
}


def small_table() -> dict:
    return copy.deepcopy(SMALL)


def write_run_file(path: Path, table: dict | None = None) -> Path:
    path.write_text(tomli_w.dumps(small_table() if table is None else table))
    return path
