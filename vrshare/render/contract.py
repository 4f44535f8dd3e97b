"""The renderer's side of :mod:`vrshare.layout`: the buffers it draws must have the
dtype and shape the layout gives them, checked once at bind; a mismatch names the
stage that declared the buffer, since that is the stage to fix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import layout
from ..pipeline import PipelineError


class RenderError(PipelineError):
    """The renderer cannot draw this pipeline (a buffer is missing or mismatched)."""


def declared_by_note(declared_by: Mapping[str, str] | None, name: str) -> str:
    """`` (declared by stage 'x')`` for a buffer, as far as ``declared_by`` tells."""
    if declared_by is None:
        return ""
    owner = declared_by.get(name)
    return (f" (declared by stage {owner!r})" if owner
            else " (declared outside the stages: a source of the pipeline)")


def check_contract(arrays: Mapping[str, Any], draw_slots: int,
                   declared_by: Mapping[str, str] | None) -> None:
    """RenderError naming every drawn buffer whose dtype or shape breaks the contract;
    ``arrays`` maps instances, draw_ranges, eye_view and eye_proj to their arrays."""
    d = draw_slots
    expected = {  # name: (dtype, shape test, shape as said, what it holds)
        layout.INSTANCES: (np.float32, lambda sh: len(sh) == 2
                           and sh[1] == layout.INSTANCE_FLOATS,
                           f"(capacity, {layout.INSTANCE_FLOATS})",
                           "a model matrix and a colour per row"),
        layout.DRAW_RANGES: (np.int32, lambda sh: sh == (d, 2), f"({d}, 2)",
                             f"[first, count] for each of the scene's {d} draw slots"),
        layout.EYE_VIEW: (np.float32, lambda sh: sh == (2, 4, 4), "(2, 4, 4)",
                          "world -> eye per eye"),
        layout.EYE_PROJ: (np.float32, lambda sh: sh == (2, 4, 4), "(2, 4, 4)",
                          "eye -> clip per eye"),
    }
    problems = []
    for name, (dtype, fits, said, holds) in expected.items():
        a = arrays[name]
        shape = tuple(int(n) for n in a.shape)
        contiguous = bool(a.flags.c_contiguous) or name != layout.INSTANCES
        if a.dtype != dtype or not fits(shape) or not contiguous:
            what = f"{shape} {a.dtype}" + ("" if contiguous else " (not C-contiguous)")
            problems.append(f"{name!r} is {what}, the renderer needs {said} "
                            f"{np.dtype(dtype)}{'' if contiguous else ' C-contiguous'} "
                            f"({holds}; see vrshare.layout)"
                            f"{declared_by_note(declared_by, name)}")
    if problems:
        raise RenderError("cannot draw from these buffers: " + "; ".join(problems))
