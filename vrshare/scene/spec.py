"""What a ``[scene]`` table says: one dataclass per table, validated by
:func:`vrshare.config.build` (see :mod:`vrshare.scene` for the format)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import ConfigError, check_ranges, setting

Vec3 = tuple[float, float, float]
Color = tuple[float, float, float] | tuple[float, float, float, float]

LOD_DISTANCES = (0.0, 4.0, 10.0)  # m, default distances from which LODs 0, 1, 2 are used
MAX_FREQUENCY_HZ = 192_000.0  # a tone is also below half the audio stage's sample rate


def _color(default: tuple[float, ...]) -> Any:
    """A colour field: sRGB 0..1 (alpha, where given, linear 0..1)."""
    return setting(default, ge=0, le=1)


# the largest magnitude of a scene number (m, deg, deg/s, a scale factor): bounds what
# float32 model matrices and bounding spheres must hold, products included
MAX_MAGNITUDE = 1e6


def _finite(default: Any, unit: str = "") -> Any:
    """A field whose numbers may be any moderate value (positions, angles, axes, rates)."""
    return setting(default, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE, unit=unit)


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
    size: Vec3 = _finite((1.0, 1.0, 1.0), "m")  # extents along X, Y, Z; a plane: X and Z
    color: Color = _color((1.0, 1.0, 1.0))  # sRGB base colour (alpha linear)

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class MotionSpec:
    """How an object moves; every term is optional and they combine.

    At time t (s): the object spins about its own centre, its position orbits
    ``orbit_center`` and bobs along ``bob_axis``.
    """

    spin_deg_s: float = _finite(0.0, "deg/s")  # spin rate about spin_axis
    spin_axis: Vec3 = _finite((0.0, 1.0, 0.0))
    orbit_deg_s: float = _finite(0.0, "deg/s")  # orbit rate about orbit_axis through the centre
    orbit_center: Vec3 = _finite((0.0, 0.0, 0.0), "m")  # world
    orbit_axis: Vec3 = _finite((0.0, 1.0, 0.0))
    bob_m: float = _finite(0.0, "m")  # bobbing amplitude
    bob_hz: float = setting(0.0, ge=0, unit="Hz")  # bobbing frequency
    bob_axis: Vec3 = _finite((0.0, 1.0, 0.0))
    phase_deg: float = _finite(0.0, "deg")  # added to every angle (spin, orbit, bob phase)
    # added per grid copy, so copies do not move in lockstep
    phase_step_deg: float = _finite(0.0, "deg")

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class ObjectSpec:
    """``[[scene.object]]``: one placement of a mesh (or a grid of them)."""

    mesh: str
    name: str = ""  # lets a sound follow the object (a grid: its first copy)
    position: Vec3 = _finite((0.0, 0.0, 0.0), "m")
    rotation: Vec3 = _finite((0.0, 0.0, 0.0), "deg")  # about X, then Y, then Z (world axes)
    scale: float | Vec3 = _finite(1.0)  # not zero (checked on load)
    color: Color = _color((1.0, 1.0, 1.0))  # sRGB multiplier (alpha linear)
    palette: tuple[Color, ...] = _color(())  # grid copies cycle through these instead of color
    importance: float = setting(1.0, ge=0)  # the scene filter keeps important objects first
    grid: tuple[int, int, int] = setting((1, 1, 1), ge=1, what="counts")  # copies along X, Y, Z
    spacing: Vec3 = _finite((1.0, 1.0, 1.0), "m")  # distance between grid copies
    motion: MotionSpec | None = None

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class LightSpec:
    """``[[scene.light]]``: at most one directional and one ambient light."""

    type: Literal["directional", "ambient"]
    color: Vec3 = _color((1.0, 1.0, 1.0))  # sRGB
    intensity: float = setting(1.0, ge=0)
    direction: Vec3 = _finite((-0.3, -1.0, -0.5))  # directional: where the light travels, world

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class SoundSpec:
    """``[[scene.sound]]``: a point source of sound."""

    name: str
    position: Vec3 = _finite((0.0, 0.0, 0.0), "m")  # world, or offset from the followed object
    object: str = ""  # name of the object to follow; empty: fixed in the world
    file: Path | None = None  # audio file, relative to the run file
    signal: Literal["file", "tone", "noise", "chirp"] | None = None  # default: file if given
    # tone frequency; chirp start frequency
    frequency_hz: float = setting(440.0, gt=0, lt=MAX_FREQUENCY_HZ, unit="Hz")
    gain: float = setting(1.0, ge=0)  # linear
    loop: bool = True

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class SceneSpec:
    """The ``[scene]`` table."""

    background: Vec3 = _color((0.05, 0.05, 0.07))  # sRGB clear colour
    # where each sphere / model LOD starts (from 0, increasing: checked on load)
    lod_distances: tuple[float, ...] = setting(LOD_DISTANCES, ge=0, unit="m")
    # projected sizes (px, decreasing) below which LODs 1, 2, ... are used: what the
    # scene filter switches on (with its eye_height_px) and where each glTF level's
    # picture is checked against LOD 0; empty: switch at lod_distances, no check
    lod_pixels: tuple[float, ...] = setting((), gt=0, unit="px")
    # a model's texture image that cannot be read is an error, not a warning
    strict: bool = False
    model: list[ModelSpec] = field(default_factory=list)
    primitive: list[PrimitiveSpec] = field(default_factory=list)
    object: list[ObjectSpec] = field(default_factory=list)
    light: list[LightSpec] = field(default_factory=list)
    sound: list[SoundSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_ranges(self)
