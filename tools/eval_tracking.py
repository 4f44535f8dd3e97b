"""Evaluate pose prediction and 1€ filtering on recorded traces.

    python tools/eval_tracking.py TRACE... [--horizons 10 20 30 50] [--json PATH]

A TRACE is a vrshare trace CSV (``t,device,px,...``) or an EyeNavGS CSV (converted
in memory like ``tools/convert_eyenavgs.py``). Every sample of every device is fed,
in time order, to each method; after each sample the method predicts the pose
``H`` ms later, and that prediction is compared with the recorded pose at that
time (interpolated between the two samples around it: linear in position, slerp in
orientation). Methods:

* ``none``, ``constant_velocity``, ``constant_acceleration``, ``learned`` (the
  shared-weight online predictor, starting from constant velocity with no
  pretraining, one instance per horizon) on the raw samples;
* ``1€+constant_velocity``, ``1€+learned``: the same after the 1€ filter (stage
  defaults), still scored against the raw recording;
* ``oracle``: not a predictor but a bound on linear ones. At each horizon, one
  least-squares fit over *all* the given traces (in-sample, so it knows the future
  it is scored on) of the displacement as a linear map of the last ``ORACLE_K``
  velocities: position in the world frame, orientation in the head's frame, every
  axis from every axis. No predictor that is a linear function of past velocities
  (constant velocity, the learned one) can beat it on those traces.

Errors are position (mm) and orientation (degrees), mean and 95th percentile over
all predictions of all traces (each trace's first second, while the learned model
warms up, is scored too: that is part of "no pretraining").

The second table is the 1€ filter's jitter-versus-lag trade-off over a grid of
``min_cutoff`` (Hz, position and orientation) and ``beta`` (position per m/s,
orientation per rad/s; heads move at ~0.1-1 m/s and ~0.3-3 rad/s): *jitter* is the
RMS of what a zero-phase 4 Hz low-pass removes from the filter's output (noise left
in), *lag* the time shift (ms) that best aligns the output with that zero-phase
low-pass of the raw trace.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vrshare.geometry import quat
from vrshare.stages.tracking import learned
from vrshare.stages.tracking.one_euro import OneEuroFilter, OneEuroParams
from vrshare.stages.tracking.predict import METHODS, Predictor
from vrshare.stages.tracking.stage import TrackingSettings
from vrshare.stages.tracking.trace import Trace, interpolate, read_trace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import Column, Table, Timer, write_json  # noqa: E402
from convert_eyenavgs import convert, scene_setting  # noqa: E402

HORIZONS_MS = (10, 20, 30, 50)
GRID_MIN_CUTOFF = (0.25, 0.5, 1.0, 2.0, 4.0)  # Hz
GRID_BETA = ((0.0, 0.0), (3.0, 0.3), (10.0, 1.0), (30.0, 3.0))  # (position /(m/s), rot /(rad/s))
REFERENCE_HZ = 4.0  # zero-phase low-pass used as the jitter/lag reference
DEVICES = 3
ORACLE_K = 8  # past velocities the oracle's linear map sees


def load(path: Path) -> Trace:
    """A vrshare trace, or an EyeNavGS file converted in memory."""
    with path.open(encoding="utf-8") as f:
        first = f.readline()
    if first.startswith("ViewIndex"):
        scale, rotation, _ = scene_setting(path)
        return convert(path, scale, rotation, 0.0, None, None)[0]
    return read_trace(path)


def frames(trace: Trace) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Samples grouped by time: (t, device mask [3], poses [3, 7])."""
    order = np.argsort(trace.t, kind="stable")
    out: list[tuple[float, np.ndarray, np.ndarray]] = []
    for i in order:
        t, d = float(trace.t[i]), int(trace.device[i])
        if not out or out[-1][0] != t or out[-1][1][d]:
            out.append((t, np.zeros(DEVICES, bool), np.zeros((DEVICES, 7))))
        out[-1][1][d] = True
        out[-1][2][d] = trace.pose[i]
    return out


def make(method: str, horizon_s: float, rate_hz: float,
         s: TrackingSettings) -> tuple[Predictor, OneEuroFilter | None]:
    name = method.removeprefix("1€+")
    if name == "learned":
        queue = math.ceil(horizon_s * rate_hz) + 4
        pred: Predictor = learned.LearnedPredictor(
            np, DEVICES, learned.initial_weights(s.history_k).copy(), k=s.history_k,
            forgetting=s.forgetting, prior=s.prior, queue=queue)
    else:
        pred = METHODS[name](np, DEVICES)
    filt = None
    if method.startswith("1€+"):
        filt = OneEuroFilter(np, DEVICES, OneEuroParams(s.min_cutoff, s.beta, s.d_cutoff),
                             OneEuroParams(s.rot_min_cutoff, s.rot_beta, s.rot_d_cutoff))
    return pred, filt


@dataclass
class Errors:
    pos_mm: list[np.ndarray] = field(default_factory=list)
    rot_deg: list[np.ndarray] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        p = np.concatenate(self.pos_mm) if self.pos_mm else np.zeros(0)
        r = np.concatenate(self.rot_deg) if self.rot_deg else np.zeros(0)
        return {"pos_mean_mm": float(p.mean()), "pos_p95_mm": float(np.percentile(p, 95)),
                "rot_mean_deg": float(r.mean()), "rot_p95_deg": float(np.percentile(r, 95)),
                "n": int(p.size)}


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dot = np.abs(np.sum(a * b, axis=-1))
    return np.degrees(2 * np.arccos(np.clip(dot, 0.0, 1.0)))


def run_method(trace: Trace, method: str, horizon_s: float,
               settings: TrackingSettings) -> tuple[np.ndarray, np.ndarray]:
    """Prediction errors (mm, deg) of one method at one horizon over one trace."""
    fr = frames(trace)
    steps = np.diff([f[0] for f in fr])
    rate = 1.0 / np.median(steps[steps > 0])
    pred, filt = make(method, horizon_s, rate, settings)
    truth = {d: trace.of(d) for d in trace.devices()}
    t_end = {d: truth[d][0].max() for d in truth}
    pos = np.zeros((DEVICES, 3))
    q = np.zeros((DEVICES, 4))
    tt = np.zeros(DEVICES)
    guesses: list[tuple[int, float, np.ndarray]] = []
    for t, mask, poses in fr:
        tt[:] = t
        x_pos, x_q = poses[:, :3], np.where(mask[:, None], poses[:, 3:], [0, 0, 0, 1.0])
        if filt is not None:
            filt.update(mask, tt, x_pos, x_q)
            x_pos, x_q = filt.pos, filt.quat
        pred.observe(mask, tt, x_pos, x_q)
        pred.predict(tt + horizon_s, horizon_s + 1.0, pos, q)
        for d in np.flatnonzero(mask):
            if t + horizon_s <= t_end[d] and pred.history.count[d] >= 1:
                guesses.append((int(d), t + horizon_s, np.concatenate([pos[d], q[d]])))
    errs_p, errs_r = [], []
    for d in truth:
        g = [(tq, p) for dd, tq, p in guesses if dd == d]
        if not g:
            continue
        times, poses = truth[d]
        order = np.argsort(times, kind="stable")
        ref = interpolate(times[order], poses[order], np.array([tq for tq, _ in g]))
        got = np.array([p for _, p in g])
        errs_p.append(np.linalg.norm(got[:, :3] - ref[:, :3], axis=1) * 1e3)
        errs_r.append(angle_deg(got[:, 3:], ref[:, 3:]))
    return np.concatenate(errs_p), np.concatenate(errs_r)


def oracle(traces: list[Trace], horizon_s: float,
           k: int = ORACLE_K) -> list[tuple[np.ndarray, np.ndarray]]:
    """Errors (mm, deg) per trace of the in-sample least-squares linear predictor."""
    rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for n, trace in enumerate(traces):
        for d in trace.devices():
            times, poses = trace.of(d)
            order = np.argsort(times, kind="stable")
            times, poses = times[order], poses[order]
            keep = np.r_[True, np.diff(times) > 0]
            times, poses = times[keep], poses[keep]
            ok = np.flatnonzero(times + horizon_s <= times[-1])
            ok = ok[ok > k]
            if not ok.size:
                continue
            dt = np.diff(times)[:, None]
            q = poses[:, 3:]
            v = np.diff(poses[:, :3], axis=0) / dt  # world frame, m/s
            w = quat.to_rotvec(quat.multiply(quat.conjugate(q[:-1]), q[1:])) / dt  # head
            past = np.stack([np.concatenate([v[i - k:i][::-1], w[i - k:i][::-1]], axis=1)
                             for i in ok]) * horizon_s  # N, k, 6 (newest first)
            truth = interpolate(times, poses, times[ok] + horizon_s)
            rows.append((n, past.reshape(len(ok), -1), poses[ok], truth,
                         np.concatenate([truth[:, :3] - poses[ok, :3], quat.to_rotvec(
                             quat.multiply(quat.conjugate(poses[ok, 3:]), truth[:, 3:]))],
                             axis=1)))
    x = np.concatenate([r[1] for r in rows])
    y = np.concatenate([r[4] for r in rows])
    fit = np.linalg.lstsq(x, y, rcond=None)[0]
    out: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in traces]
    for n, past, now, truth, _ in rows:
        guess = past @ fit
        pos = now[:, :3] + guess[:, :3]
        rot = quat.multiply(now[:, 3:], quat.from_rotvec(guess[:, 3:]))
        out[n][0].append(np.linalg.norm(pos - truth[:, :3], axis=1) * 1e3)
        out[n][1].append(angle_deg(rot, truth[:, 3:]))
    return [(np.concatenate(p) if p else np.zeros(0), np.concatenate(r) if r else np.zeros(0))
            for p, r in out]


# -- 1€ jitter versus lag -------------------------------------------------------------

def zero_phase(x: np.ndarray, rate: float) -> np.ndarray:
    from scipy.signal import butter, filtfilt

    b, a = butter(2, REFERENCE_HZ / (0.5 * rate))
    return filtfilt(b, a, x, axis=0)


def uniform(times: np.ndarray, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Resample a device's poses on a uniform grid at its median rate."""
    step = float(np.median(np.diff(times)))
    grid = np.arange(times[0], times[-1], step)
    return grid, interpolate(times, poses, grid), 1.0 / step


def smooth_quat(q: np.ndarray, rate: float) -> np.ndarray:
    q = q.copy()
    flip = np.cumprod(np.where(np.sum(q[1:] * q[:-1], axis=1) < 0, -1.0, 1.0))
    q[1:] *= flip[:, None]
    return quat.normalize(zero_phase(q, rate))


def lag_ms(out: np.ndarray, ref: np.ndarray, rate: float, rot: bool) -> float:
    """Shift (ms, >= 0) that best aligns ``out`` with ``ref`` (1 ms steps, up to 300 ms)."""
    t = np.arange(len(ref)) / rate
    best, best_err = 0.0, np.inf
    for shift in np.arange(0.0, 0.3, 0.001):
        k = t >= shift + 0.5
        ref_s = np.array([np.interp(t[k] - shift, t, ref[:, i]) for i in range(ref.shape[1])]).T
        if rot:
            err = np.mean(angle_deg(out[k], quat.normalize(ref_s)) ** 2)
        else:
            err = np.mean(np.sum((out[k] - ref_s) ** 2, axis=1))
        if err < best_err:
            best, best_err = shift, err
    return best * 1e3


def jitter_lag(trace: Trace, min_cutoff: float | None,
               beta: tuple[float, float]) -> dict[str, float]:
    """Jitter (mm, deg) and lag (ms) of the 1€ filter (None: raw) on the head of a trace."""
    d = trace.devices()[0]
    times, poses = trace.of(d)
    order = np.argsort(times, kind="stable")
    grid, x, rate = uniform(times[order], poses[order])
    if min_cutoff is None:
        out_p, out_q = x[:, :3], x[:, 3:]
    else:
        f = OneEuroFilter(np, 1, OneEuroParams(min_cutoff, beta[0], 1.0),
                          OneEuroParams(min_cutoff, beta[1], 1.0))
        out_p, out_q = np.empty((len(grid), 3)), np.empty((len(grid), 4))
        mask = np.ones(1, bool)
        for i, t in enumerate(grid):
            f.update(mask, np.array([t]), x[i:i + 1, :3], x[i:i + 1, 3:])
            out_p[i], out_q[i] = f.pos[0], f.quat[0]
    ref_p, ref_q = zero_phase(x[:, :3], rate), smooth_quat(x[:, 3:], rate)
    jit_p = np.sqrt(np.mean(np.sum((out_p - zero_phase(out_p, rate)) ** 2, axis=1))) * 1e3
    jit_r = np.sqrt(np.mean(angle_deg(out_q, smooth_quat(out_q, rate)) ** 2))
    return {"pos_jitter_mm": float(jit_p), "pos_lag_ms": lag_ms(out_p, ref_p, rate, False),
            "rot_jitter_deg": float(jit_r), "rot_lag_ms": lag_ms(out_q, ref_q, rate, True)}


# -- main ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("traces", nargs="+", type=Path)
    ap.add_argument("--horizons", nargs="+", type=float, default=list(HORIZONS_MS),
                    help="prediction horizons (ms)")
    ap.add_argument("--methods", nargs="+", default=["none", "constant_velocity",
                    "constant_acceleration", "learned", "1€+constant_velocity", "1€+learned",
                    "oracle"])
    ap.add_argument("--one-euro", nargs=3, type=float, metavar=("MIN_CUTOFF", "BETA", "ROT_BETA"),
                    help="1€ settings of the 1€+ methods (default: the stage's defaults)")
    ap.add_argument("--no-filter-grid", action="store_true", help="skip the 1€ trade-off table")
    ap.add_argument("--json", type=Path, help="write all figures here")
    args = ap.parse_args(argv)
    traces = [load(p) for p in args.traces]
    settings = TrackingSettings()
    if args.one_euro:
        m, b, rb = args.one_euro
        settings = TrackingSettings(min_cutoff=m, beta=b, rot_min_cutoff=m, rot_beta=rb)
    filt_desc = (f"1€ min_cutoff {settings.min_cutoff:g}/{settings.rot_min_cutoff:g} Hz, "
                 f"beta {settings.beta:g} per m/s, {settings.rot_beta:g} per rad/s")
    results: dict[str, dict[str, dict]] = {}
    per_trace: dict[str, dict] = {}
    with Timer() as timer:
        for h in args.horizons:
            for method in args.methods:
                e = Errors()
                bound = oracle(traces, h / 1e3) if method == "oracle" else None
                for i, (path, tr) in enumerate(zip(args.traces, traces, strict=True)):
                    p, r = bound[i] if bound is not None else run_method(
                        tr, method, h / 1e3, settings)
                    e.pos_mm.append(p)
                    e.rot_deg.append(r)
                    per_trace.setdefault(path.name, {}).setdefault(f"{h:g}", {})[method] = \
                        Errors([p], [r]).summary()
                results.setdefault(f"{h:g}", {})[method] = e.summary()
    print(f"prediction error over {len(traces)} trace(s), "
          f"{sum(len(t) for t in traces)} samples ({timer.wall_s:.0f} s); {filt_desc}")
    columns = [Column("horizon", 8), Column("method", 24, "<"), Column("pos mean", 9),
               Column("pos p95", 8), Column("rot mean", 9), Column("rot p95", 8),
               Column("vs cv pos", 9), Column("vs cv rot", 9), Column("p95 pos", 7),
               Column("p95 rot", 7)]
    with Table(columns) as table:
        for h, rows in results.items():
            cv = rows.get("constant_velocity")
            for method, s in rows.items():
                ratio = [None] * 4 if cv is None else [
                    f"{s[key] / cv[key]:.3f}" for key in
                    ("pos_mean_mm", "rot_mean_deg", "pos_p95_mm", "rot_p95_deg")]
                table.add_row(f"{h} ms", method, f"{s['pos_mean_mm']:.2f}mm",
                              f"{s['pos_p95_mm']:.2f}mm", f"{s['rot_mean_deg']:.3f}°",
                              f"{s['rot_p95_deg']:.3f}°", *ratio)
    grid = []
    if not args.no_filter_grid:
        print("\n1€ filter, head, mean over traces: jitter (RMS above a 4 Hz zero-phase "
              "low-pass) vs lag (best alignment with it)")
        columns = [Column("min_cutoff", 10), Column("beta", 5), Column("rot_beta", 8),
                   Column("pos jitter", 11), Column("pos lag", 8), Column("rot jitter", 11),
                   Column("rot lag", 8)]
        cells = [(None, (0.0, 0.0))] + [(m, b) for m in GRID_MIN_CUTOFF for b in GRID_BETA]
        with Table(columns) as table:
            for m, b in cells:
                rows = [jitter_lag(tr, m, b) for tr in traces]
                mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
                grid.append({"min_cutoff": m, "beta": b[0], "rot_beta": b[1], **mean})
                table.add_row("raw" if m is None else f"{m:g}", f"{b[0]:g}", f"{b[1]:g}",
                              f"{mean['pos_jitter_mm']:.3f}mm", f"{mean['pos_lag_ms']:.0f}ms",
                              f"{mean['rot_jitter_deg']:.4f}°", f"{mean['rot_lag_ms']:.0f}ms")
    if args.json:
        write_json(args.json, {
            "traces": [str(p) for p in args.traces], "horizons_ms": args.horizons,
            "prediction": results, "per_trace": per_trace, "one_euro_grid": grid,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
