"""The ``passthrough`` stage: every object at LOD 0 into the instance buffer.

What the renderer draws when no scene filter runs: no culling, no LOD choice.
Objects are grouped by draw slot once at setup (the grouping never changes), so
each frame is one gather of the model matrices into their instance rows.
"""

from __future__ import annotations

import numpy as np

from .. import backend, layout
from ..pipeline import Frame, Stage, StageConfig
from ..weights import WeightBank


class PassthroughStage(Stage):
    """Writes ``instances`` and ``draw_ranges`` for every object at its mesh's LOD 0."""

    name = "passthrough"
    reads = (layout.OBJECT_MODEL,)
    writes = (layout.INSTANCES, layout.DRAW_RANGES)

    def setup(self, bank: WeightBank, config: StageConfig) -> None:
        mesh = backend.to_host(bank[layout.OBJECT_MESH], label="passthrough")
        lod_draw = backend.to_host(bank[layout.MESH_LOD_DRAW], label="passthrough")
        color = backend.to_host(bank[layout.OBJECT_COLOR], label="passthrough")
        n = len(mesh)
        slots = lod_draw.max(initial=-1) + 1
        slot = lod_draw[mesh, 0] if n else np.zeros(0, np.int64)
        order = np.argsort(slot, kind="stable")
        counts = np.bincount(slot, minlength=slots)
        ranges = np.stack([np.cumsum(counts) - counts, counts], axis=1).astype(np.int32)

        self.instances = bank.state(layout.INSTANCES, (n, layout.INSTANCE_FLOATS), "float32")
        draw_ranges = bank.state(layout.DRAW_RANGES, (slots, 2), "int32")
        draw_ranges[...] = backend.to_device(ranges, label="draw_ranges")
        # rows of 20 floats seen as 5 rows of 4: the first 4 hold the transposed model
        # matrix (GL's column-major layout), the last the colour
        self.rows = self.instances.reshape(n, 5, 4)
        self.rows[:, 4, :] = backend.to_device(color[order], label="instances")
        self.model = bank[layout.OBJECT_MODEL]
        xp = backend.array_module(self.model)
        self.order = backend.to_device(order.astype(np.int64), label="passthrough")
        self.gathered = xp.empty((n, 4, 4), np.float32)

    def process(self, frame: Frame, bank: WeightBank) -> None:
        xp = backend.array_module(self.model)
        xp.take(self.model, self.order, axis=0, out=self.gathered)
        self.rows[:, :4, :] = self.gathered.transpose(0, 2, 1)
