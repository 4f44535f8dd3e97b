"""Which instance rows each draw takes: mirrored rows apart, non-finite rows left out.

A model matrix with a negative determinant mirrors its mesh, which turns the
counter-clockwise front faces clockwise on screen; back-face culling would then keep
the inside of the far faces. Such rows are drawn by a draw of their own with the
front-face winding flipped. Rows holding a NaN or inf are not drawn at all. Both are
found once over the rows in use and need no rows moved in the bank: when a draw
range holds either, its rows are packed (unmirrored, then mirrored) into a spare
region after the instance rows and the draws point there.

Rows are ``layout.INSTANCES`` rows: a model matrix in GL column-major order (columns
at floats 0, 4, 8, 12), then a colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InstanceDraw:
    """One instanced draw of a draw slot: ``count`` rows from row ``first``."""

    slot: int  # draw slot (mesh at one LOD)
    first: int  # instance row; at or past the capacity: in the spare region
    count: int
    mirrored: bool  # every row's model matrix has a negative determinant


def mirrored_rows(rows: np.ndarray) -> np.ndarray:
    """(N,) bool: rows whose model matrix's linear part has a negative determinant
    (the triple product of its first three columns; False for non-finite rows)."""
    c0, c1, c2 = rows[:, 0:3], rows[:, 4:7], rows[:, 8:11]
    det = (c0[:, 0] * (c1[:, 1] * c2[:, 2] - c1[:, 2] * c2[:, 1])
           + c0[:, 1] * (c1[:, 2] * c2[:, 0] - c1[:, 0] * c2[:, 2])
           + c0[:, 2] * (c1[:, 0] * c2[:, 1] - c1[:, 1] * c2[:, 0]))
    return det < 0


def plain_draws(ranges: np.ndarray) -> list[InstanceDraw]:
    """One unmirrored draw per non-empty range (no row is mirrored or skipped)."""
    return [InstanceDraw(slot, int(first), int(count), False)
            for slot, (first, count) in enumerate(ranges) if count > 0]


def regroup(rows: np.ndarray, ranges: np.ndarray, bad: np.ndarray, mirrored: np.ndarray,
            spare: np.ndarray) -> tuple[list[InstanceDraw], int, int]:
    """Split ``ranges`` (D, 2) [first, count] over ``rows`` (the rows in use) into
    draws: ranges holding no ``bad`` and no ``mirrored`` row are drawn in place; the
    others get their good rows packed into ``spare`` (capacity rows, its row ``k`` is
    instance row ``capacity + k``), unmirrored first. Returns the draws, the rows of
    ``spare`` written and the number of bad rows ranges held (each time held).

    Ranges must lie inside the rows (clamped before). Overlapping ranges can need
    more room than ``spare`` has; a range that does not fit is not drawn.
    """
    capacity = len(spare)
    special = bad | mirrored
    before = np.concatenate([[0], np.cumsum(special)])  # special rows before each row
    first, count = ranges[:, 0].astype(np.int64), ranges[:, 1].astype(np.int64)
    held = before[first + count] - before[first]
    draws: list[InstanceDraw] = []
    at = skipped = 0
    for slot in np.flatnonzero(count > 0):
        f, c = int(first[slot]), int(count[slot])
        if not held[slot]:
            draws.append(InstanceDraw(int(slot), f, c, False))
            continue
        skipped += int(np.count_nonzero(bad[f:f + c]))
        for flip in (False, True):
            take = ~bad[f:f + c] & (mirrored[f:f + c] == flip)
            n = int(np.count_nonzero(take))
            if n == 0 or at + n > capacity:
                continue
            np.compress(take, rows[f:f + c], axis=0, out=spare[at:at + n])
            draws.append(InstanceDraw(int(slot), capacity + at, n, flip))
            at += n
    return draws, at, skipped
