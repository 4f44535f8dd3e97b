"""Sound sources: where each one is and what it plays.

A source comes from the scene (``scene.sounds``) or from the stage's own
``sources`` setting; both have the fields of :class:`SourceSettings`. Its mono
signal is loaded or generated once, at the output rate, and all signals are packed
into one flat array (:class:`SignalTable`) so the renderer gathers every source's
block with one indexed read.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...config import check_ranges, setting
from ...errors import require
from .errors import AudioError
from .rates import resample

log = logging.getLogger(__name__)

Signal = Literal["file", "tone", "noise", "chirp"]
GENERATED_S = 1.0  # length of a generated signal's period (s); looping repeats it
NOISE_RMS = 0.25  # generated noise, before gain (full scale 1.0)
CHIRP_SPAN = 16.0  # a chirp sweeps up 4 octaves from frequency_hz (log), to 0.45 x rate at most
FADE_S = 0.005  # fade at both ends of a generated chirp so that looping does not click


@dataclass
class SourceSettings:
    """One sound source, as a ``[[stage.settings.sources]]`` or scene sound table.

    ``position`` is in metres: in the world when ``object_index`` is -1, else in the
    local frame of scene object ``object_index`` (its model matrix, scale included,
    maps it to the world each block, so the source moves and turns with the object).
    ``signal`` defaults to ``"file"`` when ``file`` is given, else ``"tone"``.
    """

    name: str
    position: tuple[float, float, float] = setting((0.0, 0.0, -1.0), unit="m")
    object_index: int = setting(-1, ge=-1)  # -1: fixed in the world
    file: Path | None = None
    signal: Signal | None = None
    # tone frequency, or where a chirp starts (and below half the sample rate)
    frequency_hz: float = setting(440.0, gt=0, lt=192_000, unit="Hz")
    gain: float = setting(1.0, ge=0)  # linear gain at the reference distance
    loop: bool = True

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class Source:
    """A resolved source: its signal at the output rate and where it sits."""

    name: str
    position: np.ndarray  # (3,) float64, m
    object_index: int  # -1: fixed in the world
    gain: float
    loop: bool
    signal: np.ndarray = field(repr=False)  # (L,) float32 mono, L >= 1


@dataclass(frozen=True)
class SignalTable:
    """Every source's signal in one flat array (host), with per-source views."""

    samples: np.ndarray  # (sum of L,) float32
    offsets: np.ndarray  # (S,) int64, start of source s in ``samples``
    lengths: np.ndarray  # (S,) int64, >= 1
    loop: np.ndarray  # (S,) bool

    @classmethod
    def pack(cls, sources: Sequence[Source], pad: int = 0) -> SignalTable:
        """Pack signals, each followed by ``pad`` samples of what plays after it.

        After a looping signal comes its own start again (cyclically), after a
        one-shot signal silence, so any ``pad``-sample window starting inside a
        signal (or, one-shot, at its end) is contiguous in ``samples``.
        """
        parts = [np.resize(s.signal, len(s.signal) + pad) if s.loop
                 else np.concatenate([s.signal, np.zeros(pad, np.float32)]) for s in sources]
        lengths = np.array([len(s.signal) for s in sources], np.int64)
        stored = np.array([len(p) for p in parts], np.int64)
        offsets = np.concatenate([[0], np.cumsum(stored)[:-1]]).astype(np.int64)
        samples = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
        return cls(samples, offsets[: len(sources)], lengths,
                   np.array([s.loop for s in sources], bool))


def from_scene(scene: Any) -> list[SourceSettings]:
    """The scene's sounds as :class:`SourceSettings` (none when there is no scene)."""
    sounds = getattr(scene, "sounds", None) or ()
    out = []
    for i, snd in enumerate(sounds):
        try:
            out.append(SourceSettings(
                name=str(snd.name), position=tuple(float(v) for v in snd.position),
                object_index=int(snd.object_index), file=snd.file, signal=snd.signal,
                frequency_hz=float(snd.frequency_hz), gain=float(snd.gain), loop=bool(snd.loop)))
        except (AttributeError, TypeError, ValueError) as exc:
            raise AudioError(f"scene sound #{i + 1}: not a usable sound ({exc})") from exc
    return out


def resolve(specs: Iterable[SourceSettings], rate: int, base_dir: Path, n_objects: int | None,
            seed: int = 0) -> list[Source]:
    """Load or generate every source's signal at ``rate`` Hz and check its fields.

    ``n_objects`` is the number of scene objects (None: unknown, no object can be
    referenced). Relative file paths resolve against ``base_dir``.
    """
    sources: list[Source] = []
    seen: set[str] = set()
    for spec in specs:
        what = f"sound source {spec.name!r}"
        if spec.name in seen:
            raise AudioError(f"{what}: two sources share this name")
        seen.add(spec.name)
        if len(spec.position) != 3:
            raise AudioError(f"{what}: position must be 3 numbers (m), got {spec.position}")
        if spec.object_index >= 0 and (n_objects is None or spec.object_index >= n_objects):
            have = "no scene objects" if n_objects is None else f"{n_objects} scene objects"
            raise AudioError(f"{what}: object_index {spec.object_index} but there are {have}")
        signal = _signal(spec, rate, base_dir, seed)
        sources.append(Source(spec.name, np.asarray(spec.position, np.float64), spec.object_index,
                              float(spec.gain), bool(spec.loop), signal))
    return sources


def _signal(spec: SourceSettings, rate: int, base_dir: Path, seed: int) -> np.ndarray:
    what = f"sound source {spec.name!r}"
    kind = spec.signal or ("file" if spec.file is not None else "tone")
    if kind == "file":
        if spec.file is None:
            raise AudioError(f"{what}: signal 'file' needs a file")
        return read_sound(base_dir / spec.file, rate, what)
    if spec.file is not None:
        raise AudioError(f"{what}: a file is given but signal is {kind!r}; use signal = 'file'")
    f = spec.frequency_hz
    if not (0 < f < rate / 2):
        raise AudioError(f"{what}: frequency_hz must be in (0, {rate / 2:g}) Hz, got {f}")
    return generate(kind, f, rate, zlib.crc32(spec.name.encode()) + seed)


def generate(kind: str, frequency_hz: float, rate: int, seed: int = 0) -> np.ndarray:
    """One period (about :data:`GENERATED_S` seconds) of a generated signal, float32.

    A tone's period holds a whole number of cycles, so looping it is seamless
    (its frequency is off by at most half a cycle per period: < 0.5 Hz at 1 s).
    Noise is white, Gaussian, :data:`NOISE_RMS` RMS, seeded (deterministic).
    """
    n = int(round(GENERATED_S * rate))
    if kind == "tone":
        cycles = max(1, round(frequency_hz * GENERATED_S))
        n = int(round(cycles * rate / frequency_hz))
        return np.sin(2 * np.pi * cycles * np.arange(n) / n).astype(np.float32)
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return np.clip(rng.standard_normal(n) * NOISE_RMS, -1, 1).astype(np.float32)
    if kind == "chirp":
        chirp = require("scipy.signal", "audio", "a chirp signal").chirp
        t = np.arange(n) / rate
        f0 = frequency_hz
        f1 = max(min(frequency_hz * CHIRP_SPAN, 0.45 * rate), f0)
        x = chirp(t, f0, t[-1], f1, method="logarithmic")
        fade = min(int(FADE_S * rate), n // 2)
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        x[:fade] *= ramp
        x[n - fade:] *= ramp[::-1]
        return x.astype(np.float32)
    raise AudioError(f"unknown signal {kind!r}: expected file, tone, noise or chirp")


def read_sound(path: Path, rate: int, what: str) -> np.ndarray:
    """A sound file (WAV/FLAC/OGG...) as mono float32 at ``rate`` Hz.

    Channels are averaged; an empty file becomes one silent sample (logged).
    """
    soundfile = require("soundfile", "audio", f"{what}: reading {path}")
    if not path.is_file():
        raise AudioError(f"{what}: sound file {path} not found")
    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError) as exc:  # LibsndfileError is a RuntimeError
        raise AudioError(f"{what}: cannot read sound file {path}: {exc}") from exc
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if mono.size == 0:
        log.warning("%s: sound file %s is empty; it plays silence", what, path)
        return np.zeros(1, np.float32)
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{what}: sound file {path} holds NaN or infinite samples")
    return resample(mono, file_rate, rate, f"{what} ({path})")
