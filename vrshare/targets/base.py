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

from ..errors import VrshareError

if TYPE_CHECKING:
    import moderngl

    from ..pipeline import Clock, Frame
    from ..weights import WeightBank

TARGET_NAMES = ("openxr", "window", "headless")
# OpenGL version every target's context must offer: the renderer's shaders are GLSL 4.30
# (shaders/scene.vert binds its uniform block with layout(binding = ...))
GL_REQUIRE = 430


class TargetError(VrshareError, RuntimeError):
    """A target cannot be opened or has failed (no display, no runtime, no GL)."""


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
    width: int = 512  # per eye (px)
    height: int = 512  # per eye (px)
    vsync: bool = True  # window: swap on the monitor's refresh
    eyes: Literal["both", "left", "right"] = "both"  # window: side by side, or one eye
    capture: Literal["none", "numpy", "png", "video"] = "none"  # headless
    capture_every: int = 1  # headless: keep every Nth submitted frame
    capture_dir: Path = Path("capture")  # headless: PNG/video folder (relative: to the run file)
    video_fps: float = 0.0  # headless video rate (Hz); 0: the frame rate / capture_every

    def __post_init__(self) -> None:
        if self.target != "auto" and self.target not in TARGET_NAMES:
            raise ValueError(f"'target': expected {' or '.join(map(repr, ('auto', *TARGET_NAMES)))}"
                             f", got {self.target!r}")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"width and height must be >= 1 px, got {self.width}x{self.height}")
        if self.capture_every < 1:
            raise ValueError(f"capture_every must be >= 1, got {self.capture_every}")


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


def side_by_side(framebuffer: moderngl.Framebuffer, width: int, height: int,
                 eyes: Sequence[int] = (0, 1)) -> list[EyeSurface]:
    """Eye surfaces splitting a ``width`` x ``height`` framebuffer into equal columns,
    one per entry of ``eyes`` (left to right)."""
    n = len(eyes)
    column = width // n
    return [EyeSurface(eye, framebuffer, (i * column, 0, column, height))
            for i, eye in enumerate(eyes)]
