"""The ``audio`` stage: binaural rendering of the scene's sound sources for the tracked head."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ... import backend
from ...config import check_ranges, setting
from ...interrupts import held
from ...layout import AUDIO_BLOCK, HEAD_POSE, HRTF_SPECTRA, OBJECT_MODEL
from ...pipeline import Frame, Stage, StageConfig
from ...weights import SnapshotRing, WeightBank
from . import hrtf, sources
from .convolve import BinauralRenderer, Distance, fft_size, spectra
from .errors import AudioError
from .hrtf import HEAD_RADIUS_M
from .output import BlockFeeder, WavWriter, open_device
from .output import start as start_stream
from .sources import SourceSettings

log = logging.getLogger(__name__)


@dataclass
class Settings:
    """The ``[stage.settings]`` of an ``audio`` stage (units and ranges declared; the
    stage checks ``min_distance_m < max_distance_m``)."""

    sample_rate: int = setting(48000, ge=8000, le=384000, unit="Hz")  # output rate
    block: int = setting(256, ge=16, le=16384, unit="samples")  # samples per rendered block
    hrtf: str = "spherical"  # "spherical" (analytic), "kemar" (bundled SOFA) or a SOFA path
    # HRTF level: "diffuse" (diffuse-field RMS at 0 dB), "none" (as given) or "frontal"
    # (straight ahead at 0 dB)
    hrtf_normalize: Literal["diffuse", "none", "frontal"] = "diffuse"
    # impulse-response length the HRTFs are cut or padded to
    hrir_taps: int = setting(256, ge=16, le=4096, unit="samples")
    # head of the "spherical" model
    head_radius_m: float = setting(HEAD_RADIUS_M, gt=0, le=1, unit="m")
    # "auto": the audio device, else (logged) headless; "device": the device or an error;
    # "wav": headless into ``wav``; "none": headless, the audio_block buffer only
    output: Literal["auto", "device", "wav", "none"] = "auto"
    wav: Path | None = None  # headless output file (relative to the run file)
    # sounddevice output device: index or name (default: the system's)
    device: int | str | None = setting(None, ge=0)
    # PortAudio output latency: "low", "high" or seconds; raise it if underruns are counted
    device_latency: Literal["low", "high"] | float = setting("low", gt=0, le=10, unit="s")
    # distance at which a source plays at its own gain
    reference_distance_m: float = setting(1.0, gt=0, unit="m")
    min_distance_m: float = setting(0.25, gt=0, unit="m")  # closer sources get no louder
    max_distance_m: float = setting(100.0, gt=0, unit="m")  # farther sources get no quieter
    follow_objects: bool = False  # read object_model: needed by sources on scene objects
    seed: int = setting(0, ge=0)  # noise sources' seed
    sources: list[SourceSettings] = field(default_factory=list)  # besides the scene's sounds

    def __post_init__(self) -> None:
        check_ranges(self)


class AudioStage(Stage):
    """Binaural audio of every sound source, heard from the tracked head.

    Reads ``head_pose`` (7,) (and ``object_model`` (N, 4, 4) with
    ``follow_objects``); writes ``audio_block`` (2, block) float32, the last
    rendered stereo block (linear, full scale 1.0).

    Headless (``wav``/``none``, or ``auto`` without a device), ``process`` renders
    exactly the blocks due by ``frame.t_now`` (block k is due from k * block /
    sample_rate seconds after the first frame), so a virtual clock gives the same
    samples every run. Live, blocks are rendered in the audio device's callback
    thread from snapshots of the pose (see :mod:`.output`), and ``process`` only
    copies the latest block into ``audio_block``.

    NaN or inf in the head pose or in an object's model matrix never reaches the
    output: the renderer keeps the last good pose and each source's last good
    position (a source that never had one is muted), and zeroes any non-finite
    output sample. The counts are read back about once a second of audio (and at
    the end), reported by :meth:`counters` when non-zero, and each kind (each
    source) is warned about once.
    """

    name = "audio"
    reads = (HEAD_POSE,)
    writes = (AUDIO_BLOCK,)
    Settings = Settings

    def __init__(self, settings: Settings | None = None, *, name: str | None = None) -> None:
        super().__init__(settings, name=name)
        s = self.settings
        if not s.min_distance_m < s.max_distance_m:
            raise ValueError(f"min_distance_m ({s.min_distance_m} m) must be less than "
                             f"max_distance_m ({s.max_distance_m} m)")
        if s.output == "wav" and s.wav is None:
            raise ValueError("output 'wav' needs a wav = \"path.wav\"")
        self.reads = (HEAD_POSE, OBJECT_MODEL) if s.follow_objects else (HEAD_POSE,)
        self.renderer: BinauralRenderer | None = None
        self.sources: list[sources.Source] = []
        self.feeder: BlockFeeder | None = None
        self.stream: Any = None
        self.wav: WavWriter | None = None
        self.blocks = 0  # blocks rendered headless
        self._t0: float | None = None
        self._events = {"positions": np.zeros(0, np.int64), "head_pose": 0, "samples": 0}
        self._warned: set[Any] = set()  # source indices, "head_pose", "samples"
        self._checked_at = 0  # blocks rendered when the event counts were last read
        self._check_every = 1  # blocks between reads of the event counts (set in setup)

    # -- setup -------------------------------------------------------------------------

    def setup(self, bank: WeightBank, config: StageConfig) -> None:
        s = self.settings
        where = f"audio stage {self.name!r}"
        specs = sources.from_scene(config.scene) + list(s.sources)
        attached = [sp.name for sp in specs if sp.object_index >= 0]
        if attached and not s.follow_objects:
            raise AudioError(f"{where}: sound {attached[0]!r} is attached to a scene object; "
                             "set follow_objects = true so the stage reads object_model")
        n_objects = bank[OBJECT_MODEL].shape[0] if s.follow_objects else None
        srcs = sources.resolve(specs, s.sample_rate, Path(config.base_dir), n_objects, s.seed)
        hrirs = hrtf.load(s.hrtf, s.sample_rate, s.hrir_taps, Path(config.base_dir),
                          s.head_radius_m, s.hrtf_normalize)
        n_fft = fft_size(s.block, s.hrir_taps)
        table = spectra(backend.to_device(hrtf.on_grid(hrirs), label="hrir"), n_fft)
        shared = bank.param(f"{self.name}/{HRTF_SPECTRA}", table)
        self.sources = srcs
        self.renderer = BinauralRenderer(
            shared, n_fft, s.block, srcs,
            Distance(s.reference_distance_m, s.min_distance_m, s.max_distance_m))
        self.block_buf = bank.state(AUDIO_BLOCK, (2, s.block), np.float32)
        self._check_every = max(1, round(s.sample_rate / s.block))  # about once a second
        self.host_block = np.zeros((2, s.block), np.float32)  # the frame loop's host copy
        log.info("%s: %d sources, HRTF %s, %d Hz, %d-sample blocks", where, len(srcs),
                 hrirs.description, s.sample_rate, s.block)
        self._open_output(bank, where, Path(config.base_dir))

    def _open_output(self, bank: WeightBank, where: str, base_dir: Path) -> None:
        s = self.settings
        if s.output in ("auto", "device"):
            try:
                self._start_live(bank)
                return
            except AudioError as exc:
                if s.output == "device":
                    raise
                log.warning("%s: %s; rendering headless%s", where, exc,
                            f" to {s.wav}" if s.wav else " (audio_block buffer only)")
        if s.wav is not None:
            self.wav = WavWriter(base_dir / s.wav, s.sample_rate)

    def _start_live(self, bank: WeightBank) -> None:
        """Open the device, prepare rendering on its thread, start it; AudioError if none."""
        s = self.settings
        feeder = BlockFeeder(self._render_live, s.block)
        stream = open_device(feeder, s.sample_rate, s.block, s.device, s.device_latency)
        self.feeder = feeder
        self._prepare_live(bank)
        try:
            start_stream(stream)
        except AudioError:
            self.feeder = None
            stream.close()
            raise
        self.stream = stream

    def _prepare_live(self, bank: WeightBank) -> None:
        """Buffers for rendering on the audio thread from snapshots of the bank."""
        self._bank = bank
        xp = backend.active().xp
        bank.subscribe(HEAD_POSE)
        self._pose_host = np.zeros(7, np.float32)
        self._pose_dev = xp.zeros(7, np.float32)
        self._models_host = self._models_dev = None
        if self.settings.follow_objects:
            bank.subscribe(OBJECT_MODEL)
            shape = bank[OBJECT_MODEL].shape
            self._models_host = np.zeros(shape, np.float32)
            self._models_dev = xp.zeros(shape, np.float32)
        self._live_out = xp.zeros((2, self.settings.block), np.float32)
        self._ring = SnapshotRing((2, self.settings.block), np.dtype(np.float32))

    # -- rendering -------------------------------------------------------------------------

    def render_callback(self) -> BlockFeeder | None:
        """The live output's device callback (None when headless); any thread may drive it."""
        return self.feeder

    def _render_live(self, out: np.ndarray) -> None:
        """Render one block on the audio thread into host ``out`` (2, block)."""
        bank = self._bank
        bank.snapshot(HEAD_POSE, out=self._pose_host)
        backend.to_device(self._pose_host, out=self._pose_dev, label=HEAD_POSE)
        if self._models_host is not None:
            bank.snapshot(OBJECT_MODEL, out=self._models_host)
            backend.to_device(self._models_host, out=self._models_dev, label=OBJECT_MODEL)
        self.renderer.render(self._pose_dev, self._models_dev, out=self._live_out)
        self._ring.publish(self._live_out, self.feeder.blocks, AUDIO_BLOCK)
        self._ring.read(out=out)

    def process(self, frame: Frame, bank: WeightBank) -> None:
        """Headless: render the blocks due by ``frame.t_now``; live: publish the latest block."""
        if self.feeder is not None:
            self._ring.read(out=self.host_block)
            backend.to_device(self.host_block, out=self.block_buf, label=AUDIO_BLOCK)
            self._maybe_check(self.feeder.blocks)
            return
        s = self.settings
        if self._t0 is None:
            self._t0 = frame.t_now
        due = math.floor((frame.t_now - self._t0) * s.sample_rate / s.block + 1e-9) + 1
        pose = bank[HEAD_POSE]
        models = bank[OBJECT_MODEL] if s.follow_objects else None
        while self.blocks < due:
            self.renderer.render(pose, models, out=self.block_buf)
            with held:  # a block is both in the WAV and counted, or neither (see interrupts)
                if self.wav is not None:
                    self.wav.write(backend.to_host(self.block_buf, out=self.host_block,
                                                   label=AUDIO_BLOCK))
                self.blocks += 1
        self._maybe_check(self.blocks)

    # -- non-finite input ------------------------------------------------------------------

    def _maybe_check(self, blocks: int) -> None:
        if blocks - self._checked_at >= self._check_every:
            self._checked_at = blocks
            self._check_events()

    def _check_events(self) -> None:
        """Read the renderer's event counts; warn once per source (and kind) with new ones."""
        if self.renderer is None:
            return
        ev = self._events = self.renderer.event_counts()
        where = f"audio stage {self.name!r}"
        for i in np.flatnonzero(ev["positions"]):
            if int(i) not in self._warned:
                self._warned.add(int(i))
                src = self.sources[i]
                log.warning("%s: sound source %r on scene object %d got a non-finite position "
                            "(NaN or inf in object_model) in %d block(s); %s, further blocks "
                            "are counted", where, src.name, src.object_index,
                            ev["positions"][i], "its last good position is held"
                            if bool(self.renderer.heard[i]) else "it is muted until it has one")
        if ev["head_pose"] and "head_pose" not in self._warned:
            self._warned.add("head_pose")
            log.warning("%s: %r was not finite in %d block(s); the last good head pose is "
                        "used, further blocks are counted", where, HEAD_POSE, ev["head_pose"])
        if ev["samples"] and "samples" not in self._warned:
            self._warned.add("samples")
            log.warning("%s: %d non-finite output sample(s) were zeroed (further ones are "
                        "counted)", where, ev["samples"])

    def counters(self) -> dict[str, int]:
        """Blocks rendered, for live output underruns and failed callbacks, and (when
        non-zero) blocks with non-finite source positions or head pose and non-finite
        samples zeroed."""
        self._check_events()
        if self.feeder is None:
            counts = {"blocks": self.blocks}
        else:
            counts = {"blocks": self.feeder.blocks, "underruns": self.feeder.underruns,
                      "render errors": self.feeder.errors}
        ev = self._events
        for key, n in (("non-finite positions", int(ev["positions"].sum())),
                       ("non-finite head poses", ev["head_pose"]),
                       ("non-finite samples", ev["samples"])):
            if n:
                counts[key] = n
        return counts

    def close(self) -> None:
        if self.stream is not None:
            self.stream.stop()
            self.stream.close()
            self.stream = None
        self._check_events()
        if self.feeder is not None:
            log.info("audio stage %r: %d blocks played live, %d underruns, %d render errors",
                     self.name, self.feeder.blocks, self.feeder.underruns, self.feeder.errors)
        if self.wav is not None:
            self.wav.close()
            log.info("audio stage %r: wrote %d blocks to %s", self.name, self.blocks,
                     self.wav.path)
            self.wav = None
