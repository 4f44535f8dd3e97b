"""GPU pass times from GL timer queries, read back a few frames late so the CPU
never waits for the GPU, and filed into the frame stats of the frame they timed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LATENCY = 3  # frames between issuing a query and reading it


class PassTimer:
    """One ``GL_TIME_ELAPSED`` query per pass and frame, in a ring of ``LATENCY`` frames.

    Call :meth:`begin_frame` with the frame's index, wrap each pass in
    ``with timer.measure(i):``, and :meth:`flush` at the end of the run. (ModernGL
    frees query objects with their context; it has no per-query release.)
    """

    def __init__(self, ctx: Any, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.queries = [[ctx.query(time=True) for _ in self.names] for _ in range(LATENCY)]
        self.frames: list[int | None] = [None] * LATENCY  # frame index timed by each ring slot
        self.used = [[False] * len(self.names) for _ in range(LATENCY)]
        self.slot = 0
        self.stats: Any = None
        self.tracks: list[int] = []

    def attach(self, stats: Any) -> None:
        """Report into ``stats`` (a FrameStats): one track per pass, named ``gpu <pass>``."""
        self.stats = stats
        self.tracks = [stats.add_track(f"gpu {name}") for name in self.names]

    def begin_frame(self, index: int) -> None:
        self.slot = (self.slot + 1) % LATENCY
        self._collect(self.slot)
        self.frames[self.slot] = index

    def measure(self, index: int) -> Any:
        self.used[self.slot][index] = True
        return self.queries[self.slot][index]

    def _collect(self, slot: int) -> None:
        index = self.frames[slot]
        if index is not None and self.stats is not None:
            for i, query in enumerate(self.queries[slot]):
                if self.used[slot][i]:
                    self.stats.set_later(index, self.tracks[i], query.elapsed * 1e-9)
        self.frames[slot] = None
        self.used[slot] = [False] * len(self.names)

    def flush(self) -> None:
        """Read every outstanding query (waits for the GPU)."""
        for slot in range(LATENCY):
            self._collect(slot)
