"""Camera calibration: intrinsics K (px) and distortion, from a file or the settings.

Files: JSON ``{"camera_matrix": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
"dist_coeffs": [k1, k2, p1, p2, k3]}``, or OpenCV's own YAML/XML as
``cv2.FileStorage`` writes it (keys ``camera_matrix`` and ``distortion_coefficients``,
as OpenCV's calibration sample saves them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vrshare.errors import VrshareError

from .markers import cv2_module


class CalibrationError(VrshareError, ValueError):
    """A calibration file that is missing or does not hold a usable camera matrix."""


@dataclass
class Calibration:
    """Intrinsics K (3x3, px, OpenCV convention) and distortion coefficients."""

    k: np.ndarray
    dist: np.ndarray


def load_calibration(path: Path) -> Calibration:
    """Read a calibration file (see the module docstring)."""
    if not path.is_file():
        raise CalibrationError(f"calibration file {path} does not exist")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
            k, dist = data["camera_matrix"], data.get("dist_coeffs", [0.0] * 5)
        except (ValueError, KeyError, TypeError) as exc:
            raise CalibrationError(f"{path}: not a calibration ({exc!r}); expected "
                                   "'camera_matrix' and 'dist_coeffs'") from exc
    else:
        cv2 = cv2_module("reading calibration files")
        store = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
        k = store.getNode("camera_matrix").mat()
        dist = store.getNode("distortion_coefficients").mat()
        store.release()
        if k is None:
            raise CalibrationError(f"{path}: no 'camera_matrix' node")
        dist = np.zeros(5) if dist is None else dist
    k = np.asarray(k, np.float64)
    if k.shape != (3, 3) or not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise CalibrationError(f"{path}: camera_matrix must be 3x3, finite, with fx, fy > 0")
    return Calibration(k, np.asarray(dist, np.float64).ravel())
