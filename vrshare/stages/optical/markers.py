"""Fiducial markers: OpenCV's dictionaries and boards, and the marker layout they give.

A :class:`MarkerLayout` is what the tracker knows of the markers: for every marker id,
its four corners (m) in the frame of the rig it is fixed to (the room for inside-out,
a tracked device for outside-in) and which device row that rig is. Corners are in
OpenCV's order as seen from the marker's front: top-left, top-right, bottom-right,
bottom-left. Layout frames follow vrshare's axes: a marker lies in the rig's XY
plane, its front facing +Z, its top towards +Y (OpenCV's board frame, x right, y down,
is turned 180 degrees about X into this one).

The layout becomes one ``param`` buffer (:meth:`MarkerLayout.table`), so every stage
and device that uses the same markers shares one copy in the bank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vrshare.config import check_ranges, setting
from vrshare.errors import VrshareError, require
from vrshare.geometry import rotation

LAYOUT_COLUMNS = 14  # id, device row, then 4 corners x (x, y, z) in metres
CV_TO_RIG = np.diag([1.0, -1.0, -1.0])  # OpenCV board frame (y down, z into it) -> rig frame


class MarkerError(VrshareError, ValueError):
    """A dictionary, board or marker id that OpenCV does not have or that clashes."""


def cv2_module(purpose: str) -> Any:
    """``cv2`` with its ``aruco`` module, or MissingDependency naming the optical extra."""
    cv2 = require("cv2", "optical", purpose)
    if not hasattr(cv2, "aruco"):
        raise MarkerError(f"{purpose} needs cv2.aruco, which this OpenCV ({cv2.__version__}) "
                          "lacks: pip install 'vrshare[optical]' (opencv-contrib-python-headless)")
    return cv2


def dictionary(name: str) -> Any:
    """OpenCV's predefined dictionary ``name`` ("4X4_50", "6X6_250", "APRILTAG_36h11", ...)."""
    cv2 = cv2_module("marker dictionaries")
    key = "DICT_" + name.upper().removeprefix("DICT_")
    if key.startswith("DICT_APRILTAG_"):
        key = "DICT_APRILTAG_" + key.removeprefix("DICT_APRILTAG_").lower()
    code = getattr(cv2.aruco, key, None)
    if code is None:
        known = sorted(k.removeprefix("DICT_") for k in dir(cv2.aruco) if k.startswith("DICT_"))
        raise MarkerError(f"unknown marker dictionary {name!r}; OpenCV has: {', '.join(known)}")
    return cv2.aruco.getPredefinedDictionary(code)


@dataclass
class BoardSpec:
    """One set of markers fixed to one rig (a ``[[stage.settings.board]]`` table).

    ``kind``: ``"single"`` (one marker), ``"grid"`` (OpenCV's GridBoard: ``cols`` x
    ``rows`` markers ``gap_m`` apart) or ``"charuco"`` (a chessboard of ``square_m``
    squares with markers in the white ones). ``position`` / ``rotation_deg`` place the
    board's centre in its rig (m; degrees about X, then Y, then Z).
    """

    kind: Literal["single", "grid", "charuco"] = "grid"
    device: Literal["room", "head", "left", "right"] = "room"  # the rig the board is on
    first_id: int = setting(0, ge=0)
    cols: int = setting(2, ge=1, le=64)
    rows: int = setting(2, ge=1, le=64)
    marker_m: float = setting(0.1, gt=0, le=10, unit="m")
    gap_m: float = setting(0.02, ge=0, le=10, unit="m")  # grid: between markers
    square_m: float = setting(0.0, ge=0, le=10, unit="m")  # charuco: chessboard square
    position: tuple[float, float, float] = setting((0.0, 0.0, 0.0), unit="m")
    rotation_deg: tuple[float, float, float] = setting((0.0, 0.0, 0.0), unit="deg")

    def __post_init__(self) -> None:
        check_ranges(self)

    def opencv_board(self, dict_name: str) -> Any:
        """The OpenCV board object (ids from ``first_id``)."""
        cv2 = cv2_module("marker boards")
        d = dictionary(dict_name)
        cols, rows = (1, 1) if self.kind == "single" else (self.cols, self.rows)
        if self.kind == "charuco":
            if not self.square_m > self.marker_m:
                raise MarkerError(f"charuco board: square_m ({self.square_m}) must exceed "
                                  f"marker_m ({self.marker_m})")
            n = (cols * rows) // 2
            ids = np.arange(self.first_id, self.first_id + n, dtype=np.int32)
            self._check_ids(ids, d)
            return cv2.aruco.CharucoBoard((cols, rows), self.square_m, self.marker_m, d, ids)
        ids = np.arange(self.first_id, self.first_id + cols * rows, dtype=np.int32)
        self._check_ids(ids, d)
        return cv2.aruco.GridBoard((cols, rows), self.marker_m, self.gap_m, d, ids)

    def _check_ids(self, ids: np.ndarray, d: Any) -> None:
        size = int(d.bytesList.shape[0])
        if int(ids[-1]) >= size:
            raise MarkerError(f"board ids {int(ids[0])}..{int(ids[-1])} pass the end of the "
                              f"dictionary ({size} markers)")

    def extent(self) -> tuple[float, float]:
        """Width and height (m) of the board's printed area, margins not counted."""
        if self.kind == "single":
            return self.marker_m, self.marker_m
        if self.kind == "charuco":
            return self.cols * self.square_m, self.rows * self.square_m
        return (self.cols * self.marker_m + (self.cols - 1) * self.gap_m,
                self.rows * self.marker_m + (self.rows - 1) * self.gap_m)

    def rig_from_board(self) -> np.ndarray:
        """4x4 board (centred, vrshare axes) -> rig transform, row-major."""
        m = np.eye(4)
        m[:3, :3] = rotation.euler_xyz(self.rotation_deg)
        m[:3, 3] = self.position
        return m


DEVICE_ROWS = {"room": -1, "head": 0, "left": 1, "right": 2}


@dataclass
class MarkerLayout:
    """Marker ids, their corners (N, 4, 3) in their rig's frame (m) and rig rows (N,):
    -1 the room, else a device row of ``vrshare.layout.DEVICES``."""

    ids: np.ndarray  # (N,) int32
    corners: np.ndarray  # (N, 4, 3) float64, m
    rig: np.ndarray  # (N,) int32

    @classmethod
    def from_boards(cls, boards: list[BoardSpec], dict_name: str) -> MarkerLayout:
        ids, corners, rigs = [], [], []
        for spec in boards:
            board = spec.opencv_board(dict_name)
            pts = np.asarray(board.getObjPoints(), np.float64)  # (n, 4, 3), OpenCV frame
            w, h = spec.extent()
            centred = pts - np.array([w / 2, h / 2, 0.0])
            local = centred @ CV_TO_RIG.T
            m = spec.rig_from_board()
            corners.append(local @ m[:3, :3].T + m[:3, 3])
            ids.append(np.asarray(board.getIds(), np.int32).ravel())
            rigs.append(np.full(len(pts), DEVICE_ROWS[spec.device], np.int32))
        all_ids = np.concatenate(ids)
        unique, counts = np.unique(all_ids, return_counts=True)
        if (counts > 1).any():
            raise MarkerError(f"marker ids used by more than one board: {unique[counts > 1]}")
        return cls(all_ids, np.concatenate(corners), np.concatenate(rigs))

    def table(self) -> np.ndarray:
        """The layout as one (N, 14) float32 array: id, rig row, 12 corner coordinates (m)."""
        out = np.empty((len(self.ids), LAYOUT_COLUMNS), np.float32)
        out[:, 0] = self.ids
        out[:, 1] = self.rig
        out[:, 2:] = self.corners.reshape(len(self.ids), 12)
        return out

    @classmethod
    def from_table(cls, table: Any) -> MarkerLayout:
        t = np.asarray(table, np.float64)
        return cls(t[:, 0].astype(np.int32), t[:, 2:].reshape(-1, 4, 3), t[:, 1].astype(np.int32))


def board_image(spec: BoardSpec, dict_name: str, px_per_m: float,
                margin_m: float = 0.0) -> np.ndarray:
    """The board as OpenCV draws it, (H, W) uint8 grey, top row first, at ``px_per_m``
    with a white quiet zone of ``margin_m`` on every side (detection needs one)."""
    board = spec.opencv_board(dict_name)
    w, h = spec.extent()
    margin = int(round(margin_m * px_per_m))
    size = (int(round(w * px_per_m)) + 2 * margin, int(round(h * px_per_m)) + 2 * margin)
    return board.generateImage(size, marginSize=margin, borderBits=1)
