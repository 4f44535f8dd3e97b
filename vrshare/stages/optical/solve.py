"""Marker detection and pose solves: from a grey image to rig poses in the camera.

Two paths over the same OpenCV detector:

* :func:`single_marker_pose`: the plain single-frame baseline, one marker's four
  corners through ``solvePnP(SOLVEPNP_IPPE_SQUARE)``;
* :func:`solve_rig`: what the stage does. Every detected corner of one rig (a board,
  or markers on several walls) in one solve; corners refined to sub-pixel accuracy by
  the detector; candidates from SQPnP and, for a planar rig, both IPPE solutions (IPPE
  alone fails on a square seen exactly square-on at the image centre: its two
  solutions coincide, 60 px off); the best fit wins, and an ambiguous pair
  (reprojection errors within ``ambiguity`` of each other, rotations more than
  :data:`AMBIGUOUS_RAD` apart) is settled by the previous pose; without one (the
  first frame, a board seen square-on from afar, where the two mirror tilts fit alike)
  the refinement starts halfway between them, where the truth lies for a square-on
  view, and the case is counted; a solution that shows a marker from behind
  (flipped) is rejected; the survivor is refined by Levenberg-Marquardt.

Poses are ``T_cam_rig``: 4x4 row-major, rig frame -> OpenCV camera frame (x right,
y down, z forward), metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vrshare.geometry import quat

from .markers import cv2_module, dictionary

PLANAR_TOL = 1e-6  # m: corners within this of the first marker's plane make a planar rig
# rad: two IPPE solutions closer than this in rotation are one answer, not an ambiguity
# (seen square-on the two mirror tilts of a board nearly coincide)
AMBIGUOUS_RAD = 0.1


@dataclass
class Detection:
    """Markers found in one image: ids (N,) and corners (N, 4, 2) px, OpenCV's order."""

    ids: np.ndarray
    corners: np.ndarray


@dataclass
class RigSolve:
    """One rig's pose in the camera and how well it fits."""

    t_cam_rig: np.ndarray  # 4x4, m
    rms_px: float  # RMS reprojection error over the rig's corners (px)
    markers: int  # markers used


class Detector:
    """OpenCV's ArUco detector for one dictionary; ``subpixel`` refines each corner with
    ``cornerSubPix`` (window ``subpixel_win`` px each way)."""

    def __init__(self, dict_name: str, subpixel: bool = True, subpixel_win: int = 3) -> None:
        cv2 = cv2_module("marker detection")
        params = cv2.aruco.DetectorParameters()
        if subpixel:
            params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
            params.cornerRefinementWinSize = subpixel_win
            params.cornerRefinementMaxIterations = 50
            params.cornerRefinementMinAccuracy = 0.01
        self.detector = cv2.aruco.ArucoDetector(dictionary(dict_name), params)

    def detect(self, image: np.ndarray) -> Detection:
        corners, ids, _ = self.detector.detectMarkers(image)
        if ids is None or len(ids) == 0:
            return Detection(np.zeros(0, np.int32), np.zeros((0, 4, 2), np.float32))
        return Detection(ids.ravel().astype(np.int32),
                         np.asarray(corners, np.float32).reshape(-1, 4, 2))


def _matrix(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    cv2 = cv2_module("pose solves")
    m = np.eye(4)
    m[:3, :3] = cv2.Rodrigues(np.asarray(rvec, np.float64))[0]
    m[:3, 3] = np.asarray(tvec, np.float64).ravel()
    return m


def single_marker_pose(corners: np.ndarray, size_m: float, k: np.ndarray,
                       dist: np.ndarray) -> np.ndarray | None:
    """T_cam_marker (4x4) of one marker's corners (4, 2) px, marker frame centred, its
    front +Z (OpenCV's IPPE_SQUARE frame, y up), by ``SOLVEPNP_IPPE_SQUARE``."""
    cv2 = cv2_module("pose solves")
    h = size_m / 2
    obj = np.array([[-h, h, 0], [h, h, 0], [h, -h, 0], [-h, -h, 0]], np.float64)
    ok, rvec, tvec = cv2.solvePnP(obj, corners.astype(np.float64), k, dist,
                                  flags=cv2.SOLVEPNP_IPPE_SQUARE)
    return _matrix(rvec, tvec) if ok else None


def _plane_frame(corners: np.ndarray) -> np.ndarray | None:
    """4x4 plane -> rig transform whose XY plane holds the markers' corners (N, 4, 3),
    axes along the first marker's sides (x to its right, y up, z its front), or None
    when they are not coplanar. IPPE solves only points with z = 0, so a planar rig
    placed anywhere (a board on a wall) is solved in this frame and moved back."""
    c = corners[0]
    x = c[1] - c[0]
    y = c[0] - c[3]
    m = np.eye(4)
    m[:3, 0] = x / np.linalg.norm(x)
    m[:3, 2] = np.cross(x, y) / np.linalg.norm(np.cross(x, y))
    m[:3, 1] = np.cross(m[:3, 2], m[:3, 0])
    points = corners.reshape(-1, 3)
    m[:3, 3] = points.mean(axis=0)
    off_plane = (points - m[:3, 3]) @ m[:3, 2]
    return m if np.abs(off_plane).max() < PLANAR_TOL else None


def _faces_camera(t: np.ndarray, corners: np.ndarray) -> bool:
    """Whether every marker (N, 4, 3 rig corners) shows its front to the camera at ``t``."""
    p = corners @ t[:3, :3].T + t[:3, 3]
    normal = np.cross(p[:, 3] - p[:, 0], p[:, 1] - p[:, 0])  # front: (BL - TL) x (TR - TL)
    return bool((np.einsum("ij,ij->i", normal, p.mean(axis=1)) < 0).all() and (p[..., 2] > 0).all())


def _midway(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The pose halfway between two (rotation slerped, translation averaged)."""
    qa, qb = quat.from_matrix(a[:3, :3]), quat.from_matrix(b[:3, :3])
    m = np.eye(4)
    m[:3, :3] = quat.to_matrix(quat.slerp(qa, qb, 0.5))
    m[:3, 3] = (a[:3, 3] + b[:3, 3]) / 2
    return m


def _rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    r = a[:3, :3].T @ b[:3, :3]
    return float(np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0)))


@dataclass
class SolveCounts:
    """Why solves were refused (counts over a run)."""

    ambiguous: int = 0  # two IPPE solutions fit alike, no previous pose chose: started midway
    flipped: int = 0  # the fit showed a marker from behind
    failed: int = 0  # OpenCV found no solution


def _candidates(cv2: Any, obj: np.ndarray, img: np.ndarray, k: np.ndarray, dist: np.ndarray,
                flag: int, to_rig: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """(RMS error px, T_cam_rig) of every solution ``solvePnPGeneric`` gives with ``flag``
    for points in a frame that ``to_rig`` maps the rig to."""
    n, rvecs, tvecs, errs = cv2.solvePnPGeneric(obj, img, k, dist, flags=flag)
    if not n:
        return []
    errs = np.asarray(errs, np.float64).ravel()
    return [(float(e), _matrix(r, t) @ to_rig) for e, r, t in zip(errs, rvecs, tvecs, strict=True)]


def solve_rig(obj: np.ndarray, img: np.ndarray, k: np.ndarray, dist: np.ndarray,
              previous: np.ndarray | None, ambiguity: float, counts: SolveCounts,
              ) -> RigSolve | None:
    """Pose of one rig from its markers' rig corners ``obj`` (N, 4, 3, m) and image
    corners ``img`` (N, 4, 2, px); None (and counted) when refused. See the module."""
    cv2 = cv2_module("pose solves")
    o = obj.reshape(-1, 3).astype(np.float64)
    i = img.reshape(-1, 2).astype(np.float64)
    candidates = _candidates(cv2, o, i, k, dist, cv2.SOLVEPNP_SQPNP, np.eye(4))
    plane = _plane_frame(obj)
    if plane is not None:
        local = (o - plane[:3, 3]) @ plane[:3, :3]
        local[:, 2] = 0.0
        candidates += _candidates(cv2, local, i, k, dist, cv2.SOLVEPNP_IPPE,
                                  np.linalg.inv(plane))
    if not candidates:
        counts.failed += 1
        return None
    candidates = [c for c in candidates if _faces_camera(c[1], obj)]
    if not candidates:
        counts.flipped += 1
        return None
    candidates.sort(key=lambda c: c[0])
    first_err, best = candidates[0]
    rival = next((c for c in candidates[1:]
                  if _rotation_angle(best, c[1]) > AMBIGUOUS_RAD), None)
    if rival is not None and rival[0] <= first_err * (1 + ambiguity) + 1e-9:
        if previous is None:
            counts.ambiguous += 1
            best = _midway(best, rival[1])
        elif _rotation_angle(rival[1], previous) < _rotation_angle(best, previous):
            best = rival[1]
    rvec = cv2.Rodrigues(best[:3, :3])[0]
    rvec, tvec = cv2.solvePnPRefineLM(o, i, k, dist, rvec, best[:3, 3].reshape(3, 1).copy())
    t = _matrix(rvec, tvec)
    proj, _ = cv2.projectPoints(o, rvec, tvec, k, dist)
    rms = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - i) ** 2, axis=1))))
    return RigSolve(t, rms, len(obj))
