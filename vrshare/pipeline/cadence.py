"""When and where a stage runs: every frame on the loop, at its own rate, or on a
worker thread off the frame's critical path.

A stage class may set the defaults as class attributes (``mode = "async"``,
``rate_hz = 10.0``, ``latency_frames``, ``on_overrun``); a ``[[stage]]`` table's
keys of the same names override them. See docs/scheduling.md for the model and a
timing diagram.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MODES = ("sync", "async", "process")
OFF_LOOP = ("async", "process")  # modes whose runs never hold up the frame
DEVICES = ("auto", "host", "gpu")
OVERRUN_POLICIES = ("wait", "skip", "async")


@dataclass(frozen=True)
class Cadence:
    """How one stage is scheduled.

    ``mode``: ``"sync"`` runs ``process`` on the frame loop's thread, in schedule
    order; ``"async"`` runs it on the stage's own worker thread from a snapshot of
    its inputs, and the loop never waits for it (except on a deterministic clock,
    where a run's outputs become visible exactly ``latency_frames`` frames after the
    frame that started it, and the loop waits for them then).

    ``rate_hz``: the stage runs at most this often (clock time); frames in between
    see its last outputs. None: every frame (sync) or as often as its work allows
    (async).

    ``"process"`` is ``"async"`` in a worker process of its own, for work the GIL
    would serialise with the loop (:mod:`vrshare.pipeline.process`).

    ``latency_frames``: async and process only; frames from the start of a run to the frame whose
    readers first see its outputs. Default: one period of the stage's rate in
    frames (``ceil(frame_hz / rate_hz)``), or 1 without a rate.

    ``device``: where its arrays live. ``"auto"``: the backend's (the GPU on CuPy);
    ``"host"``: NumPy copies of what it reads and writes, filled and published
    through the counted transfers, for stages whose work is many operations on tiny
    arrays (a kernel launch each on a GPU costs more than the work); ``"gpu"``: the
    device, and an error on the NumPy backend. On NumPy, ``"auto"`` and ``"host"``
    are the same and cost nothing.

    ``on_overrun``: sync only, what a run over the stage's ``budget_ms`` does:
    ``"wait"`` (the frame waits; counted), ``"skip"`` (the stage's next due run is
    skipped, counted) or ``"async"`` (the stage moves to a worker thread for the rest
    of the run).
    """

    mode: str = "sync"
    rate_hz: float | None = None
    latency_frames: int | None = None
    on_overrun: str = "wait"
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"'mode': expected {' or '.join(map(repr, MODES))}, "
                             f"got {self.mode!r}")
        if self.on_overrun not in OVERRUN_POLICIES:
            raise ValueError(f"'on_overrun': expected "
                             f"{' or '.join(map(repr, OVERRUN_POLICIES))}, got {self.on_overrun!r}")
        if self.device not in DEVICES:
            raise ValueError(f"'device': expected {' or '.join(map(repr, DEVICES))}, "
                             f"got {self.device!r}")
        if self.mode == "process" and self.device == "gpu":
            raise ValueError("'device': a stage in mode \"process\" runs on the host")
        if self.rate_hz is not None and not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"'rate_hz': must be a finite number > 0 Hz, got {self.rate_hz!r}")
        if self.latency_frames is not None:
            if self.latency_frames < 1:
                raise ValueError(f"'latency_frames': must be >= 1, got {self.latency_frames!r}")
            if self.mode not in OFF_LOOP:
                raise ValueError("'latency_frames' applies to mode = \"async\" or "
                                 "\"process\" only")
        if self.mode in OFF_LOOP and self.on_overrun != "wait":
            raise ValueError(f"'on_overrun' applies to mode = \"sync\" only (a stage in "
                             f"mode {self.mode!r} never holds up the frame)")

    @property
    def plain(self) -> bool:
        """True for the default: every frame, on the loop, waiting out overruns."""
        return self.mode == "sync" and self.rate_hz is None and self.on_overrun == "wait"

    @property
    def private(self) -> bool:
        """True when the stage must see the bank through its own copies from ``setup``
        on (it runs, or may come to run, off the loop's thread)."""
        return self.mode in OFF_LOOP or self.on_overrun == "async"

    def latency(self, frame_hz: float) -> int:
        """``latency_frames``, or its default at display rate ``frame_hz`` (Hz)."""
        if self.latency_frames is not None:
            return self.latency_frames
        if self.rate_hz is None:
            return 1
        return max(1, math.ceil(frame_hz / self.rate_hz - 1e-9))


CADENCE_KEYS = ("mode", "rate_hz", "latency_frames", "on_overrun", "device")


def cadence_of(stage: Any, **overrides: Any) -> Cadence:
    """The stage's cadence attributes (class defaults, or the instance's own) with
    ``overrides`` (keys of :class:`Cadence`). Raises ValueError naming the bad key."""
    default = Cadence()
    values = {key: getattr(stage, key, getattr(default, key)) for key in CADENCE_KEYS}
    values.update(overrides)
    return Cadence(**values)
