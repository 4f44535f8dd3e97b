"""Where rendered blocks go: an audio device (live) or a WAV file (headless).

Live output renders *in the device's callback thread*: each callback takes a
consistent snapshot of the head pose from the bank (never waiting on the frame
loop) and renders the blocks the device asks for. Rendering in the callback,
rather than queueing blocks rendered by the frame loop, keeps the audio latency at
one device buffer and makes audio independent of the frame rate: a slow or
stalled frame only makes the pose a little older, never the sound late. If a
render fails the callback plays silence and counts the error; PortAudio's
output-underflow flag is counted as an underrun.

The callback shares the interpreter with the frame loop: with NumPy it can wait
for the GIL while the loop runs Python code (up to ``sys.getswitchinterval()``,
5 ms by default). If underruns are counted, raise the stage's ``device_latency``
(PortAudio then buffers more) or the block size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import require
from .errors import AudioError

log = logging.getLogger(__name__)


class BlockFeeder:
    """A sounddevice callback: fills the device buffer from ``render`` (2, block) blocks.

    ``render(out)`` writes the next stereo block into the host array ``out``
    (2, block) float32. The device may ask for any number of frames per call;
    blocks are rendered whole and handed out as needed. Safe to call from any one
    thread at a time (the audio thread); it never raises.
    """

    def __init__(self, render: Callable[[np.ndarray], None], block: int) -> None:
        self.render = render
        self.block = block
        self.pending = np.zeros((2, block), np.float32)
        self.used = block  # frames of ``pending`` already handed out
        self.blocks = 0  # blocks rendered
        self.underruns = 0  # callbacks PortAudio flagged with an output underflow
        self.errors = 0  # blocks that failed to render (played as silence)

    def __call__(self, outdata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        if status is not None and getattr(status, "output_underflow", False):
            self.underruns += 1
        filled = 0
        while filled < frames:
            if self.used == self.block:
                self._next()
            take = min(self.block - self.used, frames - filled)
            outdata[filled:filled + take, :2] = self.pending[:, self.used:self.used + take].T
            self.used += take
            filled += take

    def _next(self) -> None:
        try:
            self.render(self.pending)
        except Exception as exc:  # the audio thread must keep running whatever a render does
            self.pending[...] = 0
            self.errors += 1
            if self.errors == 1:
                log.error("audio render failed in the device callback (playing silence; "
                          "further failures are counted): %s: %s", type(exc).__name__, exc)
        self.blocks += 1
        self.used = 0


def open_device(feeder: BlockFeeder, rate: int, block: int, device: str | int | None,
                latency: str | float = "low") -> Any:
    """A sounddevice output stream driven by ``feeder``, not yet started; AudioError if none.

    The caller starts it (``stream.start()``) once the feeder can render.
    """
    try:
        import sounddevice
    except ImportError as exc:
        raise AudioError(f"no audio output: {exc} (install vrshare[audio])") from exc
    except OSError as exc:
        raise AudioError(f"no audio output: PortAudio not loadable ({exc})") from exc
    try:
        info = sounddevice.query_devices(device, "output")
        if info["max_output_channels"] < 2:
            raise AudioError(f"audio device {info['name']!r} has no stereo output")
        stream = sounddevice.OutputStream(samplerate=rate, blocksize=block, device=device,
                                          channels=2, dtype="float32", callback=feeder,
                                          latency=latency)
    except (sounddevice.PortAudioError, ValueError) as exc:
        which = "the default output device" if device is None else f"output device {device!r}"
        raise AudioError(f"no audio output ({which}): {exc}") from exc
    log.info("audio: live output on %r at %d Hz, %d-sample blocks", info["name"], rate, block)
    return stream


def start(stream: Any) -> None:
    """Start an opened stream; AudioError if the device refuses."""
    import sounddevice

    try:
        stream.start()
    except sounddevice.PortAudioError as exc:
        raise AudioError(f"cannot start audio output: {exc}") from exc


_SFC_UPDATE_HEADER_NOW = 0x1060  # libsndfile: rewrite the header for the data written so far


class WavWriter:
    """Appends stereo blocks to a 32-bit float WAV file (no clipping, bit-exact).

    :meth:`close` finishes the file (the header records its length); the stage's
    ``close`` calls it on every ending of a run. Besides, the header is brought up to
    date about once a second of audio, so that even a process killed outright leaves
    a WAV that opens, short of at most that last second.
    """

    def __init__(self, path: Path, rate: int) -> None:
        soundfile = require("soundfile", "audio", f"writing {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = soundfile.SoundFile(str(path), "w", samplerate=rate, channels=2,
                                            subtype="FLOAT", format="WAV")
        except (RuntimeError, OSError) as exc:
            raise AudioError(f"cannot write audio file {path}: {exc}") from exc
        self.path = path
        self.frame = np.zeros((0, 2), np.float32)
        self.header_every = rate  # samples between header updates
        self._since_header = 0

    def write(self, block: np.ndarray) -> None:
        """Append one (2, B) float32 host block."""
        if self.frame.shape[0] != block.shape[1]:
            self.frame = np.zeros((block.shape[1], 2), np.float32)
        np.copyto(self.frame, block.T)
        self.file.write(self.frame)
        self._since_header += block.shape[1]
        if self._since_header >= self.header_every:
            self._since_header = 0
            self._update_header()

    def _update_header(self) -> None:
        """Make the header describe what was written so far (libsndfile's
        SFC_UPDATE_HEADER_NOW; soundfile has no public call for it, so it is skipped
        if soundfile's internals change)."""
        try:
            import soundfile

            soundfile._snd.sf_command(self.file._file, _SFC_UPDATE_HEADER_NOW,
                                      soundfile._ffi.NULL, 0)
        except Exception:  # a convenience for killed processes; close() is what counts
            self.header_every = 1 << 62

    @property
    def closed(self) -> bool:
        return self.file.closed

    def close(self) -> None:
        """Finish the file; closing twice does nothing."""
        if not self.file.closed:
            self.file.close()
