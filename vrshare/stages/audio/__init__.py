"""Binaural spatial audio: the ``audio`` stage and its parts.

sources.py   what plays where (files, tones, noise, chirps; fixed or on objects)
hrtf.py      head-related impulse responses: analytic spherical head or SOFA file
grid.py      the regular direction grid of the HRTF bank and bilinear lookup
convolve.py  the batched overlap-save renderer with crossfades
output.py    live device callback and headless WAV output
stage.py     the stage tying them to the bank and the frame loop
"""

from .errors import AudioError
from .sources import SourceSettings
from .stage import AudioStage, Settings

__all__ = ["AudioError", "AudioStage", "Settings", "SourceSettings"]
