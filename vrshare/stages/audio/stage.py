"""The ``audio`` stage: binaural rendering of the scene's sound sources for the tracked head."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ... import backend
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
    """The ``[stage.settings]`` of an ``audio`` stage."""

    sample_rate: int = 48000  # output rate (Hz)
    block: int = 256  # samples per rendered block
    hrtf: str = "spherical"  # "spherical" (analytic), "kemar" (bundled SOFA) or a SOFA path
    hrir_taps: int = 256  # impulse-response length the HRTFs are cut or padded to
    head_radius_m: float = HEAD_RADIUS_M  # head of the "spherical" model (m)
    # "auto": the audio device, else (logged) headless; "device": the device or an error;
    # "wav": headless into ``wav``; "none": headless, the audio_block buffer only
    output: Literal["auto", "device", "wav", "none"] = "auto"
    wav: Path | None = None  # headless output file (relative to the run file)
    device: int | str | None = None  # sounddevice output device (default: the system's)
    # PortAudio output latency: "low", "high" or seconds; raise it if underruns are counted
    device_latency: Literal["low", "high"] | float = "low"
    reference_distance_m: float = 1.0  # distance at which a source plays at its own gain (m)
    min_distance_m: float = 0.25  # closer sources get no louder (m)
    max_distance_m: float = 100.0  # farther sources get no quieter (m)
    follow_objects: bool = False  # read object_model: needed by sources on scene objects
    seed: int = 0  # noise sources' seed
    sources: list[SourceSettings] = field(default_factory=list)  # besides the scene's sounds


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
    """

    name = "audio"
    reads = (HEAD_POSE,)
    writes = (AUDIO_BLOCK,)
    Settings = Settings

    def __init__(self, settings: Settings | None = None, *, name: str | None = None) -> None:
        super().__init__(settings, name=name)
        s = self.settings
        if not 8000 <= s.sample_rate <= 384000:
            raise ValueError(f"sample_rate must be 8000..384000 Hz, got {s.sample_rate}")
        if not 16 <= s.block <= 16384:
            raise ValueError(f"block must be 16..16384 samples, got {s.block}")
        if not 16 <= s.hrir_taps <= 4096:
            raise ValueError(f"hrir_taps must be 16..4096, got {s.hrir_taps}")
        if not 0 < s.min_distance_m < s.max_distance_m or s.reference_distance_m <= 0:
            raise ValueError("distances must satisfy 0 < min_distance_m < max_distance_m and "
                             "reference_distance_m > 0")
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
                          s.head_radius_m)
        n_fft = fft_size(s.block, s.hrir_taps)
        table = spectra(backend.to_device(hrtf.on_grid(hrirs), label="hrir"), n_fft)
        shared = bank.param(f"{self.name}/{HRTF_SPECTRA}", table)
        self.sources = srcs
        self.renderer = BinauralRenderer(
            shared, n_fft, s.block, srcs,
            Distance(s.reference_distance_m, s.min_distance_m, s.max_distance_m))
        self.block_buf = bank.state(AUDIO_BLOCK, (2, s.block), np.float32)
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
            return
        s = self.settings
        if self._t0 is None:
            self._t0 = frame.t_now
        due = math.floor((frame.t_now - self._t0) * s.sample_rate / s.block + 1e-9) + 1
        pose = bank[HEAD_POSE]
        models = bank[OBJECT_MODEL] if s.follow_objects else None
        while self.blocks < due:
            self.renderer.render(pose, models, out=self.block_buf)
            if self.wav is not None:
                self.wav.write(backend.to_host(self.block_buf, out=self.host_block,
                                               label=AUDIO_BLOCK))
            self.blocks += 1

    def counters(self) -> dict[str, int]:
        """Blocks rendered, and for live output underruns and failed callbacks."""
        if self.feeder is None:
            return {"blocks": self.blocks}
        return {"blocks": self.feeder.blocks, "underruns": self.feeder.underruns,
                "render errors": self.feeder.errors}

    def close(self) -> None:
        if self.stream is not None:
            self.stream.stop()
            self.stream.close()
            self.stream = None
        if self.feeder is not None:
            log.info("audio stage %r: %d blocks played live, %d underruns, %d render errors",
                     self.name, self.feeder.blocks, self.feeder.underruns, self.feeder.errors)
        if self.wav is not None:
            self.wav.close()
            log.info("audio stage %r: wrote %d blocks to %s", self.name, self.blocks,
                     self.wav.path)
            self.wav = None
