"""What a ``[scene]`` table says: one dataclass per table, validated by
:func:`vrshare.config.build` (see :mod:`vrshare.scene` for the format)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import ConfigError

Vec3 = tuple[float, float, float]
Color = tuple[float, float, float] | tuple[float, float, float, float]

LOD_DISTANCES = (0.0, 4.0, 10.0)  # m, default distances from which LODs 0, 1, 2 are used


class SceneError(ConfigError):
    """The scene is malformed or an asset cannot be loaded; the message names both."""


@dataclass
class ModelSpec:
    """``[[scene.model]]``: a glTF 2.0 file, all of its nodes baked into one mesh."""

    name: str
    file: Path  # .gltf or .glb, relative to the run file


@dataclass
class PrimitiveSpec:
    """``[[scene.primitive]]``: a generated mesh."""

    name: str
    shape: Literal["box", "sphere", "plane"]
    size: Vec3 = (1.0, 1.0, 1.0)  # extents along X, Y, Z (m); a plane uses X and Z
    color: Color = (1.0, 1.0, 1.0)  # sRGB base colour (alpha linear)


@dataclass
class MotionSpec:
    """How an object moves; every term is optional and they combine.

    At time t (s): the object spins about its own centre, its position orbits
    ``orbit_center`` and bobs along ``bob_axis``.
    """

    spin_deg_s: float = 0.0  # spin rate about spin_axis (deg/s)
    spin_axis: Vec3 = (0.0, 1.0, 0.0)
    orbit_deg_s: float = 0.0  # orbit rate about orbit_axis through orbit_center (deg/s)
    orbit_center: Vec3 = (0.0, 0.0, 0.0)  # m, world
    orbit_axis: Vec3 = (0.0, 1.0, 0.0)
    bob_m: float = 0.0  # bobbing amplitude (m)
    bob_hz: float = 0.0  # bobbing frequency (Hz)
    bob_axis: Vec3 = (0.0, 1.0, 0.0)
    phase_deg: float = 0.0  # added to every angle (spin, orbit, bob phase)
    phase_step_deg: float = 0.0  # added per grid copy, so copies do not move in lockstep


@dataclass
class ObjectSpec:
    """``[[scene.object]]``: one placement of a mesh (or a grid of them)."""

    mesh: str
    name: str = ""  # lets a sound follow the object (a grid: its first copy)
    position: Vec3 = (0.0, 0.0, 0.0)  # m
    rotation: Vec3 = (0.0, 0.0, 0.0)  # degrees about X, then Y, then Z (world axes)
    scale: float | Vec3 = 1.0
    color: Color = (1.0, 1.0, 1.0)  # sRGB multiplier (alpha linear)
    palette: tuple[Color, ...] = ()  # grid copies cycle through these instead of color
    importance: float = 1.0  # >= 0; the scene filter keeps important objects first
    grid: tuple[int, int, int] = (1, 1, 1)  # copies along X, Y, Z
    spacing: Vec3 = (1.0, 1.0, 1.0)  # distance between grid copies (m)
    motion: MotionSpec | None = None


@dataclass
class LightSpec:
    """``[[scene.light]]``: at most one directional and one ambient light."""

    type: Literal["directional", "ambient"]
    color: Vec3 = (1.0, 1.0, 1.0)  # sRGB
    intensity: float = 1.0
    direction: Vec3 = (-0.3, -1.0, -0.5)  # directional: where the light travels, world


@dataclass
class SoundSpec:
    """``[[scene.sound]]``: a point source of sound."""

    name: str
    position: Vec3 = (0.0, 0.0, 0.0)  # m: world, or offset from the followed object
    object: str = ""  # name of the object to follow; empty: fixed in the world
    file: Path | None = None  # audio file, relative to the run file
    signal: Literal["file", "tone", "noise", "chirp"] | None = None  # default: file if given
    frequency_hz: float = 440.0  # tone frequency; chirp start frequency
    gain: float = 1.0  # linear
    loop: bool = True


@dataclass
class SceneSpec:
    """The ``[scene]`` table."""

    background: Vec3 = (0.05, 0.05, 0.07)  # sRGB clear colour
    lod_distances: tuple[float, ...] = LOD_DISTANCES  # m, where each sphere / model LOD starts
    model: list[ModelSpec] = field(default_factory=list)
    primitive: list[PrimitiveSpec] = field(default_factory=list)
    object: list[ObjectSpec] = field(default_factory=list)
    light: list[LightSpec] = field(default_factory=list)
    sound: list[SoundSpec] = field(default_factory=list)
