"""Recorded controller input: the input-track CSV format, reading and playback.

An input track is UTF-8 CSV with this header line (lines starting with ``#`` are
comments, allowed anywhere)::

    t,hand,component,value

* ``t``: time in seconds on the run's frame clock (the first frame is at 0 s, as the
  replay of a pose trace starts at its first row, so a track recorded beside a trace
  lines up with it);
* ``hand``: ``left`` or ``right``;
* ``component``: one of :data:`vrshare.layout.CONTROLLER_COMPONENTS` (``trigger``,
  ``squeeze``, ``thumbstick_x``, ...);
* ``value``: the component's value from that time on (0..1, axes -1..1): a value is held
  until the track's next row for the same hand and component (steps, not interpolated).

Components the track names are reported as bound (``controller_bound`` 1.0); the others
read 0. Rows need not be sorted; rows of one time apply in file order.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import ConfigError
from .controls import COLUMN, COMPONENTS, HANDS

HEADER = ("t", "hand", "component", "value")


class InputTrackError(ConfigError):
    """An input track is malformed; the message names the file and line."""


@dataclass(frozen=True)
class InputTrack:
    """A track's rows sorted by time: times (s), hand rows, component columns, values."""

    path: Path
    t: np.ndarray  # (K,) float64, ascending
    hand: np.ndarray  # (K,) int64, 0 left, 1 right
    column: np.ndarray  # (K,) int64, into CONTROLLER_COMPONENTS
    value: np.ndarray  # (K,) float32

    def bound(self) -> np.ndarray:
        """(2, C) float32: 1.0 for each hand and component the track names."""
        out = np.zeros((2, len(COLUMN)), np.float32)
        out[self.hand, self.column] = 1.0
        return out


class Playback:
    """Plays a track into a (2, C) state array frame by frame: each call applies the rows
    due since the previous one (a time earlier than the previous call starts over)."""

    def __init__(self, track: InputTrack) -> None:
        self.track = track
        self._next = 0  # index of the first row not yet applied
        self._t = -math.inf

    def state_at(self, t: float, out: np.ndarray) -> None:
        """Update ``out`` in place to every component's value at time ``t`` (s)."""
        tr = self.track
        if t < self._t:
            out[...] = 0.0
            self._next = 0
        self._t = t
        k = self._next
        while k < len(tr.t) and tr.t[k] <= t:
            out[tr.hand[k], tr.column[k]] = tr.value[k]
            k += 1
        self._next = k


def read_input_track(path: str | Path) -> InputTrack:
    """Read and check an input track (see the module docstring for the format)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputTrackError(f"input track {path}: cannot read it: {exc}") from exc
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise InputTrackError(f"input track {path}: empty (no header {','.join(HEADER)})")
    table = csv.reader(line for _, line in lines)
    header = tuple(f.strip() for f in next(table))
    if header != HEADER:
        raise InputTrackError(f"input track {path} line {lines[0][0]}: expected the header "
                              f"{','.join(HEADER)}, got {','.join(header)}")
    rows = [_row(path, number, [f.strip() for f in fields])
            for (number, _), fields in zip(lines[1:], table, strict=True)]
    order = sorted(range(len(rows)), key=lambda i: rows[i][0])  # stable: file order kept
    t, hand, column, value = (zip(*(rows[i] for i in order), strict=True) if rows
                              else ((), (), (), ()))
    return InputTrack(path, np.array(t, np.float64), np.array(hand, np.int64),
                      np.array(column, np.int64), np.array(value, np.float32))


def _row(path: Path, number: int, fields: list[str]) -> tuple[float, int, int, float]:
    where = f"input track {path} line {number}"
    if len(fields) != len(HEADER):
        raise InputTrackError(f"{where}: expected {len(HEADER)} fields, got {len(fields)}")
    t, hand, component, value = fields
    if hand not in HANDS:
        raise InputTrackError(f"{where}: hand {hand!r}: expected left or right")
    if component not in COLUMN:
        raise InputTrackError(f"{where}: unknown component {component!r} (one of "
                              f"{', '.join(COLUMN)})")
    try:
        numbers = float(t), float(value)
    except ValueError:
        raise InputTrackError(f"{where}: t and value must be numbers, got {t!r}, {value!r}") \
            from None
    if not all(math.isfinite(x) for x in numbers):
        raise InputTrackError(f"{where}: t and value must be finite")
    return numbers[0], HANDS.index(hand), COLUMN[component], numbers[1]


class Recorder:
    """Writes an input track while a run goes: a row for every hand and component whose
    value changed since the previous frame (the window target records its keys so, and
    the headless target plays the file back)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file = self.path.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise InputTrackError(f"input track {self.path}: cannot write it: {exc}") from exc
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(HEADER)
        self._last = np.zeros((len(HANDS), len(COLUMN)), np.float32)

    def record(self, t: float, state: np.ndarray) -> None:
        """Write the changes of ``state`` (2, C) at time ``t`` (s, the frame clock's; written
        exactly, so that playback at the same frame time applies it)."""
        for hand, column in zip(*np.nonzero(state != self._last), strict=True):
            self._writer.writerow((repr(float(t)), HANDS[hand], COMPONENTS[column],
                                   repr(float(state[hand, column]))))
        self._last[...] = state

    def close(self) -> None:
        self._file.close()
