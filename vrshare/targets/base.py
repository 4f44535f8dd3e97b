"""The display-target contract: what every target (headless, window, OpenXR) provides.

A target owns the GL context the renderer draws in, the surfaces each eye is drawn
into, and presentation (capture, buffer swap, ``xrEndFrame``). The renderer knows
no target and a target knows no stage: they meet in :mod:`vrshare.display`, which
runs one frame like this::

    frame = clock.wait_frame()        # target.clock() if it has one, else the run's clock
    target.poll(frame, bank)          # events, input; writes the target's source buffers
    ... stages run (tracking reads the poses the target wrote) ...
    for eye in target.surfaces(frame):    # empty: nothing to draw this frame
        renderer.draw(eye, bank)          # eye.framebuffer, eye.viewport, eye.eye
    target.submit(frame)              # present / capture / end the frame

All calls happen on the frame loop's thread, with ``target.ctx`` current. Sizes are
pixels; times are seconds on the frame clock's timeline.

For OpenXR the same calls map onto the runtime: ``clock()`` returns a clock whose
``wait_frame`` calls ``xrWaitFrame`` + ``xrBeginFrame`` and converts
``predictedDisplayTime`` to ``Frame.t_display``; ``poll`` drains events and locates
the views and controllers at that time into :data:`~vrshare.layout.TARGET_POSES` /
:data:`~vrshare.layout.TARGET_FOV`; ``surfaces`` acquires the swapchain images
(none when ``shouldRender`` is false); ``submit`` releases them and calls
``xrEndFrame`` with the same display time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..config import ConfigError, check_ranges, setting
from ..errors import VrshareError

if TYPE_CHECKING:
    import moderngl

    from ..pipeline import Clock, Frame
    from ..weights import WeightBank

TARGET_NAMES = ("openxr", "window", "headless")
# OpenGL version every target's context must offer: the renderer's shaders are GLSL 4.30
# (shaders/scene.vert binds its uniform block with layout(binding = ...))
GL_REQUIRE = 430
# largest per-eye width/height a run file may ask for (px); the GL context's own limit
# (GL_MAX_TEXTURE_SIZE and friends, usually 8192..32768) is checked when a target opens
MAX_EYE_PX = 1 << 17


class TargetError(VrshareError, RuntimeError):
    """A target cannot be opened or has failed (no display, no runtime, no GL)."""


class DisplaySizeError(TargetError, ConfigError):
    """The ``[display]`` size asks for a framebuffer larger than the GL context allows; the
    message names the key, the value and the context's limit."""


class TargetClosed(KeyboardInterrupt):  # noqa: N818  (an ending, not an error)
    """Raised from ``wait_frame`` once the user closed the target (window closed, Esc,
    headset session ended). The frame loop ends a run on it the way it ends one on
    Ctrl-C: after the current frame, keeping the stats of every completed frame."""


@dataclass(frozen=True)
class Capabilities:
    """What a target can do; tests and the display path skip or branch on these."""

    stereo: bool  # each eye's image reaches its own eye (a headset); False: shown side by side
    vsync: bool  # submit() waits for the display's refresh
    input: bool  # writes poses from a user or a tracker into TARGET_POSES in poll()
    capture: bool  # can hand back what it presented as NumPy images (capture())
    own_clock: bool  # frame timing comes from the target (clock() returns one)
    controllers: bool = False  # can write the CONTROLLER_* buffers in poll() and read
    #                            HAPTICS in submit() (docs/controllers.md)


@dataclass(frozen=True)
class EyeSurface:
    """Where one eye is drawn this frame."""

    eye: int  # 0 left, 1 right: the row of EYE_VIEW / EYE_PROJ to draw with
    framebuffer: moderngl.Framebuffer
    viewport: tuple[int, int, int, int]  # x, y, width, height (px), GL's bottom-left origin
    encode_srgb: bool = True  # the shader encodes linear -> sRGB; False where the framebuffer
    #                           is an sRGB format and GL encodes (GL_FRAMEBUFFER_SRGB enabled)


@dataclass
class DisplaySettings:
    """The ``[display]`` table of a run file (every key optional).

    Options a target does not use are ignored by it (a window has no capture
    folder); the command line overrides ``target``.
    """

    target: str = "auto"  # "auto" or one of TARGET_NAMES
    width: int = setting(512, ge=1, le=MAX_EYE_PX, unit="px")  # per eye
    height: int = setting(512, ge=1, le=MAX_EYE_PX, unit="px")  # per eye
    vsync: bool = True  # window: swap on the monitor's refresh
    eyes: Literal["both", "left", "right"] = "both"  # window: side by side, or one eye
    capture: Literal["none", "numpy", "png", "video"] = "none"  # headless
    capture_every: int = setting(1, ge=1)  # headless: keep every Nth submitted frame
    capture_dir: Path = Path("capture")  # headless: PNG/video folder (relative: to the run file)
    # headless video rate; 0: the frame rate / capture_every
    video_fps: float = setting(0.0, ge=0, le=1000, unit="Hz")
    # headless: a recorded controller input track played into the controller buffers
    # (CSV, see vrshare.targets.input_track; relative: to the run file)
    input_track: Path | None = None
    # window: write the controller input to this CSV as an input track (relative: to the
    # run file), to play it back headless
    record_input: Path | None = None

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.target != "auto" and self.target not in TARGET_NAMES:
            raise ValueError(f"'target': expected {' or '.join(map(repr, ('auto', *TARGET_NAMES)))}"
                             f", got {self.target!r}")


class Target(ABC):
    """Base class of display targets; subclasses implement the abstract methods.

    ``name`` and ``capabilities`` are class attributes. The constructor is
    ``Target(settings: DisplaySettings, *, frame_hz: float)`` (``frame_hz``: the run
    file's refresh rate, Hz, for targets without their own timing); it opens
    everything the target needs, or raises :class:`TargetError` saying what is
    missing, and sets ``ctx`` (the ModernGL context, current on the loop's thread)
    and ``eye_size`` (per-eye pixels). Release happens in :meth:`close`,
    never in ``__del__``; targets are context managers.
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities]
    sources: tuple[str, ...] = ()  # bank buffers poll() writes (declared in declare())

    ctx: moderngl.Context
    eye_size: tuple[int, int]  # width, height of one eye's image (px)

    def declare(self, bank: WeightBank) -> None:  # noqa: B027  (optional hook)
        """Declare the buffers named in ``sources`` (shapes per :mod:`vrshare.layout`)."""

    def clock(self) -> Clock | None:
        """The target's own frame clock (OpenXR's ``xrWaitFrame``), or None to use the
        run's clock."""
        return None

    def poll(self, frame: Frame, bank: WeightBank) -> None:  # noqa: B027  (optional hook)
        """Handle events and write ``sources`` for ``frame``; runs before the stages."""

    @abstractmethod
    def surfaces(self, frame: Frame) -> Sequence[EyeSurface]:
        """The surfaces to draw this frame, one per visible eye (may be empty)."""

    @abstractmethod
    def submit(self, frame: Frame) -> None:
        """Present what was drawn into this frame's surfaces (and capture it)."""

    @property
    def should_close(self) -> bool:
        """True once the user asked to stop (closed the window, pressed Esc)."""
        return False

    def counters(self) -> dict[str, int]:
        """Event counts for the run's stats (failed captures, ...), asked once at the
        end of the run on the loop's thread; empty for a target that counts nothing."""
        return {}

    def capture(self) -> Any:
        """The last presented image, (height, width, 4) uint8 RGBA, top row first.

        Only targets with ``capabilities.capture`` implement it.
        """
        raise TargetError(f"target {self.name!r} cannot capture images")

    @abstractmethod
    def close(self) -> None:
        """Finish captures and release the window, session and GL context."""

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# GL limits on a framebuffer's width and height (ModernGL's ctx.info keys; VIEWPORT_DIMS is
# a (width, height) pair)
GL_SIZE_LIMITS = ("GL_MAX_TEXTURE_SIZE", "GL_MAX_RENDERBUFFER_SIZE", "GL_MAX_VIEWPORT_DIMS")


def gl_size_limit(ctx: Any) -> tuple[tuple[int, str], tuple[int, str]]:
    """The largest framebuffer ``ctx`` can draw: ((width, limit name), (height, limit name))."""
    width: tuple[int, str] | None = None
    height: tuple[int, str] | None = None
    for name in GL_SIZE_LIMITS:
        value = ctx.info.get(name)
        if value is None:
            continue
        w, h = (value[0], value[1]) if isinstance(value, list | tuple) else (value, value)
        if width is None or int(w) < width[0]:
            width = (int(w), name)
        if height is None or int(h) < height[0]:
            height = (int(h), name)
    unknown = (1 << 31, "no GL limit reported")
    return width or unknown, height or unknown


def check_gl_size(ctx: Any, settings: DisplaySettings, columns: int, target: str) -> None:
    """Refuse a ``[display]`` size whose framebuffer (``columns`` eyes side by side) the GL
    context cannot hold, with a :class:`DisplaySizeError` naming the key and the limit,
    instead of the driver's error when the framebuffer is made."""
    (max_w, w_name), (max_h, h_name) = gl_size_limit(ctx)
    for key, value, total, limit, name, per in (
            ("width", settings.width, columns * settings.width, max_w, w_name, columns),
            ("height", settings.height, settings.height, max_h, h_name, 1)):
        if total > limit:
            side = f" ({columns} eyes side by side: {total} px)" if per > 1 else ""
            raise DisplaySizeError(
                f"[display] {key!r}: {value} px is too large for the {target} target's GL "
                f"context{side}: its {name} is {limit} px, so {key} must be <= "
                f"{limit // per} px here")


def side_by_side(framebuffer: moderngl.Framebuffer, width: int, height: int,
                 eyes: Sequence[int] = (0, 1)) -> list[EyeSurface]:
    """Eye surfaces splitting a ``width`` x ``height`` framebuffer into equal columns,
    one per entry of ``eyes`` (left to right)."""
    n = len(eyes)
    column = width // n
    return [EyeSurface(eye, framebuffer, (i * column, 0, column, height))
            for i, eye in enumerate(eyes)]
