"""Where camera frames come from: the bank (the virtual camera), a video file or live
camera through OpenCV's ``VideoCapture``, or a folder of images.

Every source answers :meth:`FrameSource.next` with the newest frame not yet handed
out, as ``(grey image (H, W) uint8, mid-exposure time (s) on the frame clock)``, or
None when there is none. A source that cannot open what it was given raises
:class:`FrameSourceError` naming the file, folder or device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vrshare.errors import VrshareError
from vrshare.layout import CAMERA_EXPOSURE, CAMERA_IMAGE

from .markers import cv2_module

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm")

Frame = tuple[np.ndarray, float]


class FrameSourceError(VrshareError, RuntimeError):
    """A video file, camera or image folder that cannot be read."""


class FrameSource(Protocol):
    def next(self, t_now: float) -> Frame | None:
        """The newest frame not handed out yet, as of frame-clock time ``t_now`` (s)."""
        ...

    def close(self) -> None: ...


def _grey(cv2: Any, image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


class BankFrames:
    """``camera_image`` / ``camera_exposure``, as the virtual camera writes them: a frame
    is new when its exposure number changed."""

    def __init__(self, bank: Any) -> None:
        self.image = bank[CAMERA_IMAGE]
        self.exposure = bank[CAMERA_EXPOSURE]
        self.seen = -1.0

    def next(self, t_now: float) -> Frame | None:
        number = float(self.exposure[1])
        if number < 0 or number == self.seen:
            return None
        self.seen = number
        return self.image, float(self.exposure[0])

    def close(self) -> None:
        pass


class VideoFrames:
    """A video file (played on the frame clock from the first call: frame k is due at
    its own timestamp) or a live camera (an int device index: the newest frame, stamped
    ``t_now``)."""

    def __init__(self, what: str | int, base_dir: Path) -> None:
        self.cv2 = cv2 = cv2_module("reading video")
        self.live = isinstance(what, int)
        self.what = what if self.live else base_dir / what
        if not self.live and not Path(self.what).is_file():
            raise FrameSourceError(f"video file {self.what} does not exist")
        self.capture = cv2.VideoCapture(what if self.live else str(self.what))
        if not self.capture.isOpened():
            name = f"camera {what}" if self.live else f"video file {self.what}"
            raise FrameSourceError(f"OpenCV cannot open {name}")
        self.start: float | None = None
        self.pending: Frame | None = None
        self.ended = False

    def next(self, t_now: float) -> Frame | None:
        if self.live:
            ok, image = self.capture.read()
            return (_grey(self.cv2, image), t_now) if ok else None
        if self.start is None:
            self.start = t_now
        newest = None
        while not self.ended:
            if self.pending is None:
                ok, image = self.capture.read()
                if not ok:
                    self.ended = True
                    break
                t = self.start + self.capture.get(self.cv2.CAP_PROP_POS_MSEC) / 1e3
                self.pending = (_grey(self.cv2, image), t)
            if self.pending[1] > t_now:
                break
            newest, self.pending = self.pending, None
        return newest

    def close(self) -> None:
        self.capture.release()


class FolderFrames:
    """Images of a folder in name order, one every 1/``rate_hz`` s from the first call."""

    def __init__(self, folder: str, base_dir: Path, rate_hz: float) -> None:
        self.cv2 = cv2_module("reading images")
        path = base_dir / folder
        if not path.is_dir():
            raise FrameSourceError(f"image folder {path} does not exist")
        self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise FrameSourceError(f"image folder {path} holds no images "
                                   f"({', '.join(IMAGE_SUFFIXES)})")
        self.period = 1.0 / rate_hz
        self.start: float | None = None
        self.index = -1

    def next(self, t_now: float) -> Frame | None:
        if self.start is None:
            self.start = t_now
        due = min(int((t_now - self.start) / self.period + 1e-9), len(self.files) - 1)
        if due == self.index:
            return None
        self.index = due
        image = self.cv2.imread(str(self.files[due]), self.cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise FrameSourceError(f"{self.files[due]}: OpenCV cannot read this image")
        return image, self.start + due * self.period

    def close(self) -> None:
        pass
