"""Which ear is which, end to end: a source on the listener's left is louder in the left
channel of the WAV file and of the block handed to the audio device (channel 0 is the
left ear in both, as WAV and PortAudio order them)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import vrshare
from vrshare.stages.audio import AudioStage, Settings, SourceSettings
from vrshare.stages.audio import stage as audio_stage

LEFT = (-2.0, 0.0, 0.0)  # m: the listener faces -Z, so -X is their left
RIGHT = (2.0, 0.0, 0.0)


class StillHead(vrshare.Stage):
    """A head at the origin looking down -Z (identity orientation)."""

    name = "head"
    writes = ("head_pose",)

    def setup(self, bank, config):
        self.pose = bank.state("head_pose", (7,), "float32")
        self.pose[:] = [0, 0, 0, 0, 0, 0, 1]

    def process(self, frame, bank):
        pass


def level_db(channel: np.ndarray) -> float:
    return 10 * np.log10(np.mean(channel.astype(np.float64) ** 2) + 1e-20)


def run(stage: AudioStage, frames: int = 30) -> None:
    bank = vrshare.WeightBank()
    pipe = vrshare.Pipeline([stage, StillHead()])
    pipe.setup(bank, vrshare.StageConfig(None))
    stats = vrshare.FrameLoop(pipe, bank, vrshare.VirtualClock(90.0)).run(frames)
    pipe.close()
    assert not stats.faults


@pytest.mark.parametrize(("position", "louder"), [(LEFT, 0), (RIGHT, 1)])
def test_the_wav_file_has_the_left_ear_in_channel_0(tmp_path, position, louder):
    path = tmp_path / "out.wav"
    run(AudioStage(Settings(output="wav", wav=path, sources=[
        SourceSettings("s", position=position, signal="noise")])))
    data, _ = sf.read(path, dtype="float32")  # (samples, channels): 0 left, 1 right
    near, far = level_db(data[:, louder]), level_db(data[:, 1 - louder])
    assert near > far + 6.0, (near, far)


class FakeStream:
    """Stands in for sounddevice's OutputStream: start() pulls blocks as a device would."""

    def __init__(self, feeder, *args, **kwargs):
        self.feeder = feeder
        self.played = np.zeros((4096, 2), np.float32)  # (frames, channels), PortAudio's layout

    def start(self):
        pass

    def pull(self):
        self.feeder(self.played, len(self.played), None, None)

    def stop(self):
        pass

    def close(self):
        pass


@pytest.mark.parametrize(("position", "louder"), [(LEFT, 0), (RIGHT, 1)])
def test_the_device_block_has_the_left_ear_in_channel_0(monkeypatch, position, louder):
    streams: list[FakeStream] = []

    def open_device(feeder, *args, **kwargs):
        streams.append(FakeStream(feeder))
        return streams[-1]

    monkeypatch.setattr(audio_stage, "open_device", open_device)
    stage = AudioStage(Settings(output="device", sources=[
        SourceSettings("s", position=position, signal="noise")]))
    bank = vrshare.WeightBank()
    pipe = vrshare.Pipeline([stage, StillHead()])
    pipe.setup(bank, vrshare.StageConfig(None))
    vrshare.FrameLoop(pipe, bank, vrshare.VirtualClock(90.0)).run(2)
    streams[0].pull()
    pipe.close()
    played = streams[0].played
    near, far = level_db(played[:, louder]), level_db(played[:, 1 - louder])
    assert near > far + 6.0, (near, far)
