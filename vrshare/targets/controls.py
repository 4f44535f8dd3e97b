"""Controller input and haptic output as bank buffers, shared by every target.

A target fills :class:`ControllerInput`'s host arrays in ``poll`` (from OpenXR actions,
the window's keys, or the headless input track) and calls :meth:`ControllerInput.publish`;
the edges (pressed / released this frame) are derived here, once for every target, so
that every target reports them alike and a stage need not keep state. Haptics go the
other way: a stage writes :data:`~vrshare.layout.HAPTICS` and the target asks
:class:`HapticRequests` after the stages which rows are new requests.

Buffer shapes, units and the edge threshold are in :mod:`vrshare.layout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import backend, layout

if TYPE_CHECKING:
    from ..weights import WeightBank

HANDS = ("left", "right")
COMPONENTS = layout.CONTROLLER_COMPONENTS
COLUMN = {name: i for i, name in enumerate(COMPONENTS)}
AXES = np.array([COLUMN[a] for a in layout.CONTROLLER_AXES])


class ControllerInput:
    """Both hands' controller state on the host, published to the bank each frame.

    ``state`` and ``bound`` are (2, C) float32 arrays the target writes in place
    (rows left, right; columns :data:`~vrshare.layout.CONTROLLER_COMPONENTS`).
    """

    sources = (layout.CONTROLLER_STATE, layout.CONTROLLER_BOUND, layout.CONTROLLER_EDGES,
               layout.CONTROLLER_TIME)

    def __init__(self) -> None:
        n = len(COMPONENTS)
        self.state = np.zeros((2, n), np.float32)
        self.bound = np.zeros((2, n), np.float32)
        self.edges = np.zeros((2, 2, n), np.float32)
        self.time = np.zeros(2)
        self._pressed = np.zeros((2, n), bool)
        self._is_button = np.ones(n, bool)
        self._is_button[AXES] = False

    def declare(self, bank: WeightBank) -> None:
        n = len(COMPONENTS)
        bank.state(layout.CONTROLLER_STATE, (2, n), "float32")
        bank.state(layout.CONTROLLER_BOUND, (2, n), "float32")
        bank.state(layout.CONTROLLER_EDGES, (2, 2, n), "float32")
        bank.state(layout.CONTROLLER_TIME, (2,), "float64")

    def publish(self, bank: WeightBank, t: float, index: int) -> None:
        """Derive this frame's edges from ``state`` and copy everything to the bank;
        ``t`` is the time the state was sampled for (s), ``index`` the frame's."""
        pressed = (self.state >= layout.PRESS_THRESHOLD) & self._is_button
        self.edges[:, 0] = pressed & ~self._pressed
        self.edges[:, 1] = ~pressed & self._pressed
        self._pressed = pressed
        self.time[:] = (t, index)
        for name, host in ((layout.CONTROLLER_STATE, self.state),
                           (layout.CONTROLLER_BOUND, self.bound),
                           (layout.CONTROLLER_EDGES, self.edges),
                           (layout.CONTROLLER_TIME, self.time)):
            backend.to_device(host, out=bank[name], label="controllers")


@dataclass(frozen=True)
class HapticPulse:
    """One haptic request of a hand: amplitude 0..1 (0: stop), duration (s; 0: the
    runtime's shortest pulse), frequency (Hz; 0: the runtime's default)."""

    hand: int  # 0 left, 1 right
    amplitude: float
    duration: float
    frequency: float

    @property
    def stop(self) -> bool:
        return self.amplitude <= 0.0


class HapticRequests:
    """Finds the new rows of :data:`~vrshare.layout.HAPTICS` (their request number
    changed since the last call); no requests while no stage declared the buffer."""

    def __init__(self) -> None:
        self._last = np.zeros(2, np.float32)

    def new(self, bank: WeightBank | None) -> list[HapticPulse]:
        if bank is None or layout.HAPTICS not in bank:
            return []
        rows = backend.to_host(bank[layout.HAPTICS], label="haptics")
        fresh = [HapticPulse(hand, float(max(rows[hand, 0], 0.0)), float(max(rows[hand, 1], 0.0)),
                             float(max(rows[hand, 2], 0.0)))
                 for hand in (0, 1) if rows[hand, 3] != self._last[hand]]
        self._last[:] = rows[:, 3]
        return fresh


class RecordedControllers:
    """Controllers of a target without a haptic device (window, headless): publishes the
    input the target fills in and keeps every haptic request as ``(frame index, pulse)``
    in :attr:`haptics`, so that tests and tools can check what a stage asked for."""

    def __init__(self) -> None:
        self.input = ControllerInput()
        self.haptics: list[tuple[int, HapticPulse]] = []
        self._requests = HapticRequests()
        self._bank: WeightBank | None = None

    def declare(self, bank: WeightBank) -> None:
        self.input.declare(bank)
        self._bank = bank

    def record_haptics(self, frame_index: int) -> None:
        """Keep this frame's new haptic requests (call after the stages, in submit)."""
        for pulse in self._requests.new(self._bank):
            self.haptics.append((frame_index, pulse))
