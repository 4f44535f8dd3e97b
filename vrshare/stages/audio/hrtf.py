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
import shutil
import tempfile
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
SOFA_CONVENTIONS = ("SimpleFreeFieldHRIR",)  # supported
SOFA_DATA_TYPES = ("FIR",)

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
         head_radius_m: float = HEAD_RADIUS_M, normalize: str = "diffuse") -> HrirSet:
    """``"spherical"`` (analytic), ``"kemar"`` (bundled SOFA) or a SOFA file path,
    brought to a level by ``normalize`` (see :func:`normalized`)."""
    if spec == "spherical":
        hrirs = spherical_head(rate, taps, head_radius_m)
    elif spec == KEMAR:
        hrirs = read_sofa(resources.path("scenes", KEMAR_FILE), rate, taps, shown=KEMAR)
    else:
        hrirs = read_sofa(base_dir / spec, rate, taps, shown=spec)
    return normalized(hrirs, normalize)


def normalized(hrirs: HrirSet, how: str) -> HrirSet:
    """``hrirs`` scaled so that its level is 0 dB, logging the gain.

    ``"diffuse"``: the RMS over all its directions and both ears (the diffuse-field
    level: the mean over directions and ears of each response's energy, which is its
    mean squared magnitude over frequency) is 1; ``"frontal"``: the same over the two
    ears of the direction nearest straight ahead; ``"none"``: left as it is.
    """
    if how == "none":
        return hrirs
    h = hrirs.hrir.astype(np.float64)
    energy = np.sum(h * h, axis=-1)  # (D, 2)
    if how == "diffuse":
        level = float(np.mean(energy))
    elif how == "frontal":
        level = float(np.mean(energy[np.argmax(-hrirs.directions[:, 2])]))
    else:
        raise AudioError(f"hrtf_normalize {how!r}: expected 'diffuse', 'none' or 'frontal'")
    if not level > 0:
        raise AudioError(f"HRTF {hrirs.description}: the responses are silent")
    gain = 1.0 / np.sqrt(level)
    log.info("HRTF %s: %s normalisation, gain %+.2f dB", hrirs.description, how,
             20 * np.log10(gain))
    return HrirSet(hrirs.directions, (h * gain).astype(np.float32), hrirs.rate,
                   hrirs.description)


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


def read_sofa(path: Path, rate: int, taps: int, shown: str | None = None) -> HrirSet:
    """A SimpleFreeFieldHRIR SOFA file, resampled to ``rate`` Hz and cut to ``taps``.

    ``shown`` is how the user named the file (messages say it). Which receiver is the
    left ear is read from the responses (:func:`_left_receiver`); ``Data.Delay`` is
    applied as a fractional delay at the file's rate before resampling.
    """
    name = f"HRTF file {shown if shown is not None else path}"
    sofa = _open_sofa(Path(path), name)
    convention = str(getattr(sofa, "GLOBAL_SOFAConventions", "?"))
    if convention not in SOFA_CONVENTIONS:
        raise AudioError(f"{name}: SOFA convention {convention!r} is not supported; "
                         f"supported: {', '.join(map(repr, SOFA_CONVENTIONS))}")
    data_type = str(getattr(sofa, "GLOBAL_DataType", "FIR"))
    if data_type not in SOFA_DATA_TYPES:
        raise AudioError(f"{name}: SOFA data type {data_type!r} is not supported; "
                         f"supported: {', '.join(map(repr, SOFA_DATA_TYPES))}")
    ir = np.asarray(sofa.Data_IR, np.float64)
    if ir.ndim != 3 or ir.shape[1] != 2 or ir.shape[0] < 1:
        raise AudioError(f"{name}: Data.IR has shape {ir.shape}, expected "
                         "(measurements, 2 receivers, samples)")
    if not np.all(np.isfinite(ir)):
        raise AudioError(f"{name}: Data.IR holds NaN or infinite values")
    file_rate = np.ravel(np.asarray(sofa.Data_SamplingRate, np.float64))
    if file_rate.size != 1:
        raise AudioError(f"{name}: one sampling rate expected, got {file_rate.size}")
    check_rate(float(file_rate[0]), name)
    positions = np.atleast_2d(np.asarray(sofa.SourcePosition, np.float64))
    if len(positions) == 1 and len(ir) > 1:
        positions = np.repeat(positions, len(ir), axis=0)
    if len(positions) != len(ir):
        raise AudioError(f"{name}: {len(positions)} source positions for {len(ir)} "
                         "measurements")
    sofa_dirs = _unit_sofa(positions, str(sofa.SourcePosition_Type), name)
    _check_view(sofa, name)
    delay = _delays(sofa, ir.shape[:2], name)
    if np.any(delay):
        delayed = _delayed(ir, delay)
        _warn_if_cut(ir, delayed, int(np.ceil(taps * file_rate[0] / rate)), name)
        ir = delayed
    left = _left_receiver(sofa, ir, sofa_dirs, name)
    if left == 1:
        ir = ir[:, ::-1]
    ir = resample(ir, float(file_rate[0]), rate, name)
    dirs = np.stack([-sofa_dirs[:, 1], sofa_dirs[:, 2], -sofa_dirs[:, 0]], axis=1)  # -> OpenXR
    label = Path(shown).name if shown is not None else Path(path).name
    return HrirSet(dirs, _fit(ir, taps), rate,
                   f"{label} ({len(dirs)} directions, {int(file_rate[0])} Hz)")


HDF5_MAGIC = b"\x89HDF"  # SOFA files are netCDF-4, i.e. HDF5


def _open_sofa(path: Path, name: str):
    sofar = require("sofar", "audio", f"reading the SOFA file {path}")
    if not path.is_file():
        raise AudioError(f"{name} not found ({path})")
    with open(path, "rb") as f:
        head = f.read(len(HDF5_MAGIC))
    if head != HDF5_MAGIC:
        raise AudioError(f"{name}: not a SOFA file (a SOFA file is netCDF-4/HDF5; {path.name} "
                         f"starts with {head[:8]!r})")
    try:
        if path.suffix == ".sofa":
            return sofar.read_sofa(str(path), verify=False, verbose=False)
        # sofar reads <name>.sofa whatever it is given: give it a link by that name
        with tempfile.TemporaryDirectory() as tmp:
            link = Path(tmp) / "hrtf.sofa"
            try:
                link.symlink_to(path.resolve())
            except OSError:
                shutil.copyfile(path, link)
            return sofar.read_sofa(str(link), verify=False, verbose=False)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise AudioError(f"{name}: not a readable SOFA file ({exc})") from exc


def _delays(sofa, shape: tuple[int, int], name: str) -> np.ndarray:
    """``Data.Delay`` as (M, R) samples at the file's rate (shapes (1, R), (M, R), (I, R))."""
    raw = getattr(sofa, "Data_Delay", None)
    if raw is None:
        return np.zeros(shape)
    d = np.asarray(raw, np.float64)
    if d.ndim == 0:
        d = d.reshape(1, 1)
    elif d.ndim == 1:
        d = d[None, :] if d.size == shape[1] else d[:, None]
    try:
        d = np.broadcast_to(d, shape).copy()
    except ValueError:
        raise AudioError(f"{name}: Data.Delay has shape {np.shape(raw)}, expected (1, {shape[1]}) "
                         f"or ({shape[0]}, {shape[1]})") from None
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise AudioError(f"{name}: Data.Delay must be finite and >= 0 samples")
    return d


def _delayed(ir: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """Each response delayed by its (fractional) delay in samples: a linear phase."""
    n = ir.shape[-1]
    out_len = n + int(np.ceil(delay.max()))
    n_fft = 1 << int(np.ceil(np.log2(out_len + 64)))  # room for the fractional ringing
    k = np.fft.rfftfreq(n_fft)  # cycles per sample
    spec = np.fft.rfft(ir, n_fft, axis=-1) * np.exp(-2j * np.pi * k * delay[..., None])
    return np.fft.irfft(spec, n_fft, axis=-1)[..., :out_len]


def _warn_if_cut(before: np.ndarray, after: np.ndarray, taps: int, name: str) -> None:
    """Warn when ``Data.Delay`` pushes more than 1% of a response's energy past
    ``taps`` (both at the file's rate, ``taps`` scaled to it)."""
    def worst_cut(ir: np.ndarray) -> float:
        e = np.maximum(np.sum(ir * ir, axis=-1), 1e-300)
        return float(np.max(np.sum(ir[..., taps:] ** 2, axis=-1) / e))

    extra = worst_cut(after) - worst_cut(before)
    if extra > 0.01:
        log.warning("%s: with its Data.Delay, hrir_taps cuts up to %.0f%% more of a "
                    "response's energy; raise hrir_taps", name, 100 * extra)


def _left_receiver(sofa, ir: np.ndarray, dirs: np.ndarray, name: str) -> int:
    """Which receiver (0 or 1) is the left ear: from the data, cross-checked with
    ``ReceiverPosition`` (y > 0 is the left).

    The data decide by the measurements nearest +90 deg (left) and -90 deg (right)
    azimuth at 0 elevation (if within 45 deg of them): the left ear's response is the
    louder and the earlier one for the left source, and the other way round for the
    right one. When the data cannot tell (a symmetric or one-sided set), the position
    decides, and with no usable position receiver 0 is the left ear.
    """
    by_data, found = _left_by_data(ir, dirs)
    by_position = _left_by_position(sofa)
    if by_data is None:
        return 0 if by_position is None else by_position
    if by_position is not None and by_position != by_data:
        log.warning("%s: its responses show receiver %d is the left ear (%s), but "
                    "ReceiverPosition puts receiver %d on the left (+y); using the responses",
                    name, by_data, found, by_position)
    return by_data


def _left_by_data(ir: np.ndarray, dirs: np.ndarray) -> tuple[int | None, str]:
    cos_l, cos_r = dirs[:, 1], -dirs[:, 1]  # SOFA: +y is the left
    ml, mr = int(np.argmax(cos_l)), int(np.argmax(cos_r))
    limit = np.cos(np.deg2rad(45.0))
    if cos_l[ml] < limit or cos_r[mr] < limit:
        return None, "no measurements near +-90 deg"
    energy = np.sum(ir * ir, axis=-1) + 1e-300  # (M, R)
    # level of receiver 0 over receiver 1 for the left source, minus the same for the right
    level_db = 10 * (np.log10(energy[ml, 0] / energy[ml, 1])
                     - np.log10(energy[mr, 0] / energy[mr, 1]))
    onset = _onsets(ir[[ml, mr]])  # (2, R)
    lead = (onset[0, 1] - onset[0, 0]) - (onset[1, 1] - onset[1, 0])  # receiver 0's lead
    found = f"{abs(level_db):.1f} dB louder and {abs(lead):.0f} samples earlier on its side"
    if abs(level_db) >= 1.0:
        if abs(lead) >= 1 and np.sign(lead) != np.sign(level_db):
            found = (f"{abs(level_db):.1f} dB louder on its side, although "
                     f"{abs(lead):.0f} samples later")
        return (0 if level_db > 0 else 1), found
    if abs(lead) >= 1:
        return (0 if lead > 0 else 1), f"{abs(lead):.0f} samples earlier on its side"
    return None, "no level or delay difference"


def _onsets(ir: np.ndarray) -> np.ndarray:
    """First sample reaching 10% of each response's peak."""
    mag = np.abs(ir)
    return np.argmax(mag >= 0.1 * mag.max(axis=-1, keepdims=True), axis=-1).astype(np.float64)


def _left_by_position(sofa) -> int | None:
    raw = getattr(sofa, "ReceiverPosition", None)
    if raw is None:
        return None
    pos = np.asarray(raw, np.float64)
    if pos.ndim < 2 or pos.shape[0] != 2 or pos.shape[1] != 3:
        return None
    pos = pos.reshape(2, 3, -1)[:, :, 0]
    kind = str(getattr(sofa, "ReceiverPosition_Type", "cartesian"))
    try:
        y = _cartesian(pos, kind, "ReceiverPosition")[:, 1]
    except AudioError:
        return None
    if abs(y[0] - y[1]) < 1e-9:
        return None
    return 0 if y[0] > y[1] else 1


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


def _unit_sofa(p: np.ndarray, kind: str, name: str) -> np.ndarray:
    """Source positions as unit vectors in SOFA's frame (x front, y left, z up)."""
    c = _cartesian(np.atleast_2d(p), kind, f"{name} SourcePosition")
    norm = np.linalg.norm(c, axis=1, keepdims=True)
    if np.any(norm <= 0) or not np.all(np.isfinite(norm)):
        raise AudioError(f"{name}: a source position is at the listener's centre or not finite")
    return c / norm


def _check_view(sofa, name: str) -> None:
    """Refuse a listener that does not face +x: its directions would be silently rotated."""
    view = getattr(sofa, "ListenerView", None)
    if view is None:
        return
    v = _cartesian(np.atleast_2d(np.asarray(view, np.float64)),
                   str(getattr(sofa, "ListenerView_Type", "cartesian")),
                   f"{name} ListenerView")
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    if not np.allclose(v, [1.0, 0.0, 0.0], atol=1e-3):
        raise AudioError(f"{name}: ListenerView {v[0].round(3).tolist()} is not "
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

    A set already on the grid is returned as is. Otherwise each grid direction is a
    convex blend of measured ones (:func:`.grid.interpolation_weights`: the triangle
    of the measurements that contains it, a measured direction alone, or, outside the
    measured directions, the nearest ones at its own azimuth).
    """
    targets = grid.directions()
    if hrirs.directions.shape == targets.shape and np.allclose(hrirs.directions, targets):
        return hrirs.hrir
    idx, w = grid.interpolation_weights(hrirs.directions, targets)
    return np.einsum("gj,gjet->get", w, hrirs.hrir[idx].astype(np.float64)).astype(np.float32)
