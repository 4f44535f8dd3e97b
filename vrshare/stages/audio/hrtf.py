"""Head-related impulse responses: an analytic spherical head, or a measured SOFA set.

Both give an :class:`HrirSet` (directions in the head frame, a left/right impulse
response for each, at the output rate), which :func:`on_grid` brings onto the
regular grid of :mod:`.grid`. The filter spectra the renderer uses are computed
from that grid on the device (see :mod:`.convolve`).

The analytic model is the structural model of Brown & Duda (1998, "A structural
model for binaural sound synthesis", IEEE Trans. Speech Audio Process. 6(5)): a
rigid spherical head (a one-pole/one-zero head-shadow filter and a frequency
independent interaural delay per ear) followed by a pinna model of five
elevation-dependent echoes, which give front/back and elevation cues. The
shoulder echo is left out. It needs no data file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import resources
from ...errors import require
from . import grid
from .errors import AudioError
from .rates import check_rate, resample

log = logging.getLogger(__name__)

SPEED_OF_SOUND = 343.0  # m/s
HEAD_RADIUS_M = 0.0875  # Brown & Duda's average head radius (m)
BASE_DELAY_S = 0.0005  # bulk delay of every response, room for the fractional-delay ringing (s)
FADE_TAPS = 16  # half-Hann fade at the end of a truncated response (taps)
KEMAR = "kemar"  # the bundled MIT KEMAR set (scenes/hrtf)
KEMAR_FILE = "hrtf/MIT_KEMAR_normal_pinna.sofa"
SOFA_CONVENTION = "SimpleFreeFieldHRIR"

# Brown & Duda's head shadow and pinna parameters (their Table I; delays in samples at 44.1 kHz)
ALPHA_MIN = 0.1
THETA_MIN = np.deg2rad(150.0)
PINNA_RHO = np.array([0.5, -1.0, 0.5, -0.25, 0.25])
PINNA_A = np.array([1.0, 5.0, 5.0, 5.0, 5.0])
PINNA_B = np.array([2.0, 4.0, 7.0, 11.0, 13.0])
PINNA_D = np.array([1.0, 0.5, 0.5, 0.5, 0.5])
PINNA_RATE = 44100.0


@dataclass(frozen=True)
class HrirSet:
    """Impulse responses for a set of directions."""

    directions: np.ndarray  # (D, 3) float64 unit vectors, head frame (+X right, +Y up, -Z fwd)
    hrir: np.ndarray  # (D, 2, taps) float32, ears left then right
    rate: int  # Hz
    description: str  # what it is, for logs and reports


def load(spec: str, rate: int, taps: int, base_dir: Path,
         head_radius_m: float = HEAD_RADIUS_M) -> HrirSet:
    """``"spherical"`` (analytic), ``"kemar"`` (bundled SOFA) or a SOFA file path."""
    if spec == "spherical":
        return spherical_head(rate, taps, head_radius_m)
    if spec == KEMAR:
        return read_sofa(resources.path("scenes", KEMAR_FILE), rate, taps)
    return read_sofa(base_dir / spec, rate, taps)


def spherical_head(rate: int, taps: int, head_radius_m: float = HEAD_RADIUS_M,
                   directions: np.ndarray | None = None) -> HrirSet:
    """Brown & Duda's structural model at ``directions`` (default: the grid's)."""
    d = grid.directions() if directions is None else np.asarray(directions, np.float64)
    n_fft = 4 * max(taps, 128)
    w = 2 * np.pi * np.fft.rfftfreq(n_fft, 1.0 / rate)  # rad/s
    w0 = SPEED_OF_SOUND / head_radius_m
    a_over_c = head_radius_m / SPEED_OF_SOUND
    # pinna echoes: interaural-polar angles (lateral in [-90, 90], polar in [-90, 270) deg)
    lateral = np.arcsin(np.clip(d[:, 0], -1, 1))
    polar = np.arctan2(d[:, 1], -d[:, 2])
    polar = np.where(polar < -np.pi / 2, polar + 2 * np.pi, polar)
    tau = (PINNA_A * np.cos(lateral / 2)[:, None]
           * np.sin(PINNA_D * (np.pi / 2 - polar[:, None])) + PINNA_B) / PINNA_RATE  # (D, 5) s
    pinna = 1 + np.einsum("k,dkf->df", PINNA_RHO, np.exp(-1j * w * tau[:, :, None]))
    spectra = np.empty((len(d), 2, len(w)), np.complex128)
    for ear, side in enumerate((-1.0, 1.0)):  # left ear on -X, right ear on +X
        theta = np.arccos(np.clip(side * d[:, 0], -1, 1))[:, None]  # angle from the ear's axis
        alpha = (1 + ALPHA_MIN / 2) + (1 - ALPHA_MIN / 2) * np.cos(theta / THETA_MIN * np.pi)
        shadow = (1 + 1j * alpha * w / (2 * w0)) / (1 + 1j * w / (2 * w0))
        delay = np.where(theta < np.pi / 2, -a_over_c * np.cos(theta),
                         a_over_c * (theta - np.pi / 2)) + a_over_c + BASE_DELAY_S
        spectra[:, ear] = shadow * np.exp(-1j * w * delay) * pinna
    hrir = np.fft.irfft(spectra, n_fft, axis=-1)
    return HrirSet(d, _fit(hrir, taps), rate,
                   f"spherical head (Brown & Duda 1998), radius {head_radius_m} m")


def read_sofa(path: Path, rate: int, taps: int) -> HrirSet:
    """A SimpleFreeFieldHRIR SOFA file, resampled to ``rate`` Hz and cut to ``taps``."""
    sofar = require("sofar", "audio", f"reading the SOFA file {path}")
    if not Path(path).is_file():
        raise AudioError(f"HRTF file {path} not found")
    try:
        sofa = sofar.read_sofa(str(path), verify=False, verbose=False)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise AudioError(f"HRTF file {path}: not a readable SOFA file ({exc})") from exc
    convention = getattr(sofa, "GLOBAL_SOFAConventions", "?")
    if convention != SOFA_CONVENTION:
        raise AudioError(f"HRTF file {path}: SOFA convention {convention!r}, expected "
                         f"{SOFA_CONVENTION!r}")
    ir = np.asarray(sofa.Data_IR, np.float64)
    if ir.ndim != 3 or ir.shape[1] != 2 or ir.shape[0] < 1:
        raise AudioError(f"HRTF file {path}: Data.IR has shape {ir.shape}, expected "
                         "(measurements, 2 receivers, samples)")
    file_rate = np.ravel(np.asarray(sofa.Data_SamplingRate, np.float64))
    if file_rate.size != 1:
        raise AudioError(f"HRTF file {path}: one sampling rate expected, got {file_rate.size}")
    check_rate(float(file_rate[0]), f"HRTF file {path}")
    if _receivers_swapped(sofa):
        ir = ir[:, ::-1]
    dirs = _to_head_frame(np.asarray(sofa.SourcePosition, np.float64),
                          str(sofa.SourcePosition_Type), path)
    _check_view(sofa, path)
    ir = resample(ir, float(file_rate[0]), rate, f"HRTF file {path}")
    return HrirSet(dirs, _fit(ir, taps), rate,
                   f"{Path(path).name} ({len(dirs)} directions, {int(file_rate[0])} Hz)")


def _receivers_swapped(sofa) -> bool:
    """True when receiver 0 is the right ear (SOFA: +y is the listener's left)."""
    pos = np.asarray(getattr(sofa, "ReceiverPosition", np.zeros((2, 3))), np.float64)
    if str(getattr(sofa, "ReceiverPosition_Type", "cartesian")) != "cartesian" or pos.shape[0] != 2:
        return False
    y = pos.reshape(2, 3, -1)[:, 1, 0]
    return bool(y[0] < y[1])


def _cartesian(p: np.ndarray, kind: str, what: str) -> np.ndarray:
    """SOFA positions (listener frame: +x front, +y left, +z up) as cartesian, (M, 3)."""
    if kind == "spherical":
        az, el = np.deg2rad(p[:, 0]), np.deg2rad(p[:, 1])
        r = p[:, 2] if p.shape[1] > 2 else np.ones(len(p))
        return np.stack([r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az),
                         r * np.sin(el)], axis=1)
    if kind == "cartesian":
        return p[:, :3]
    raise AudioError(f"{what}: position type {kind!r}, expected spherical or cartesian")


def _to_head_frame(p: np.ndarray, kind: str, path: Path) -> np.ndarray:
    c = _cartesian(np.atleast_2d(p), kind, f"HRTF file {path} SourcePosition")
    norm = np.linalg.norm(c, axis=1, keepdims=True)
    if np.any(norm <= 0):
        raise AudioError(f"HRTF file {path}: a source position is at the listener's centre")
    c = c / norm
    return np.stack([-c[:, 1], c[:, 2], -c[:, 0]], axis=1)  # SOFA (x fwd, y left) -> OpenXR


def _check_view(sofa, path: Path) -> None:
    """Refuse a listener that does not face +x: its directions would be silently rotated."""
    view = getattr(sofa, "ListenerView", None)
    if view is None:
        return
    v = _cartesian(np.atleast_2d(np.asarray(view, np.float64)),
                   str(getattr(sofa, "ListenerView_Type", "cartesian")),
                   f"HRTF file {path} ListenerView")
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    if not np.allclose(v, [1.0, 0.0, 0.0], atol=1e-3):
        raise AudioError(f"HRTF file {path}: ListenerView {v[0].round(3).tolist()} is not "
                         "[1, 0, 0]; only listeners facing +x are supported")


def _fit(ir: np.ndarray, taps: int) -> np.ndarray:
    """Cut or zero-pad responses to ``taps``, fading the end of a cut one out."""
    out = np.zeros((*ir.shape[:-1], taps), np.float32)
    n = min(taps, ir.shape[-1])
    out[..., :n] = ir[..., :n]
    if ir.shape[-1] > taps:
        fade = min(FADE_TAPS, taps // 4)
        out[..., taps - fade:] *= np.cos(np.linspace(0, np.pi / 2, fade)) ** 2
    return out


def on_grid(hrirs: HrirSet) -> np.ndarray:
    """Responses at every grid direction, (grid.SIZE, 2, taps) float32.

    A set already on the grid is returned as is. Otherwise each grid direction is
    the barycentric blend of the three measured directions of the triangle (of the
    measured directions' convex hull) its ray crosses, or, where the measured
    directions do not surround the listener, of its three nearest measured ones.
    """
    targets = grid.directions()
    if hrirs.directions.shape == targets.shape and np.allclose(hrirs.directions, targets):
        return hrirs.hrir
    idx, w = _hull_weights(hrirs.directions, targets)
    if idx is None:
        log.info("HRTF %s does not surround the listener: interpolating the 3 nearest "
                 "measured directions", hrirs.description)
        idx, w = _nearest_weights(hrirs.directions, targets)
    return np.einsum("gj,gjet->get", w, hrirs.hrir[idx]).astype(np.float32)


def _hull_weights(dirs: np.ndarray, targets: np.ndarray):
    spatial = require("scipy.spatial", "audio", "interpolating HRTF directions")
    ConvexHull, QhullError = spatial.ConvexHull, spatial.QhullError  # noqa: N806

    if len(dirs) < 4:
        return None, None
    try:
        hull = ConvexHull(dirs)
    except QhullError:  # coplanar directions (a horizontal-plane set, for instance)
        return None, None
    normals, offsets = hull.equations[:, :3], -hull.equations[:, 3]
    if np.any(offsets <= 1e-6):  # the listener is outside or on the hull
        return None, None
    face = np.argmax(targets @ (normals / offsets[:, None]).T, axis=1)  # face each ray exits by
    idx = hull.simplices[face]  # (G, 3)
    verts = dirs[idx].transpose(0, 2, 1)  # (G, 3 coords, 3 vertices)
    w = np.linalg.solve(verts, targets[:, :, None])[:, :, 0]
    w = np.clip(w, 0, None)
    return idx, w / w.sum(axis=1, keepdims=True)


def _nearest_weights(dirs: np.ndarray, targets: np.ndarray):
    k = min(3, len(dirs))
    cos = targets @ dirs.T
    idx = np.argsort(-cos, axis=1)[:, :k]
    dist = np.arccos(np.clip(np.take_along_axis(cos, idx, axis=1), -1, 1))
    w = 1.0 / np.maximum(dist, 1e-6)
    return idx, w / w.sum(axis=1, keepdims=True)
