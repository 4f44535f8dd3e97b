"""Benchmark the audio stage's renderer against pyBinSim and a naive per-source loop.

All three run on the same scene, in the same process: S sources on shells 1-6 m
around a head that turns at 180 deg/s (so every source's direction changes every
block: HRTF filters are exchanged, with a crossfade, every block) while it sways
sideways (distance gains change too).

* stage: ``BinauralRenderer.render`` (one batched overlap-save for all sources),
  plus the copy of the block to the host that live output makes;
* pyBinSim (a real-time binaural synthesiser in Python, with pyFFTW): one
  ``ConvolverFFTW`` per source, driven as pyBinSim's own audio callback drives
  them: per source ``setIR(filter, True)`` (the filter's FFT, crossfade on) and
  ``process(block)``, the outputs summed and scaled. pyBinSim does not
  interpolate: each source gets the grid response nearest its direction (looked
  up, like pyBinSim's filter storage, among responses held in memory), and it has
  no distance gain, so it does less than the stage does;
* naive: for each source in a Python loop, its direction, bilinear HRIR blend and
  distance gain, then per ear ``scipy.signal.oaconvolve`` of the block with the
  old and the new response, crossfaded, with overlap-add state.

pyBinSim is loaded from a separate virtual environment (``--pybinsim PATH``), and
only its ``convolver.py`` (its package ``__init__`` imports pyaudio); pyFFTW comes
from that environment's site-packages, NumPy from this one, so both must be for this
Python version. Without it, the peer is skipped with a message saying how to set it up.
Its convolvers are run with one FFTW thread (pyBinSim's default is one per core).

Prints the real-time factor (processing time / audio time) of each and the
stage's speed-up over the others, both in wall-clock time and in the thread's CPU
time (which leaves out time the thread waited for a core: the figure to compare on
a shared machine), the per-block latency distribution (wall clock) against the
block's deadline, and the largest difference between the stage's and the naive
loop's outputs (the crossfades differ slightly: the naive loop's overlap-add tail
carries the new filter only).

    .venv/bin/python tools/bench_audio.py [--sources 16 64 256] [--pybinsim ENV] \
        [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path
from types import ModuleType

# One BLAS thread, as the audio callback gets; set before NumPy loads its BLAS.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from benchkit import Column, Samples, Table, summary_ms, write_json  # noqa: E402

from vrshare import backend  # noqa: E402
from vrshare.geometry import quat  # noqa: E402
from vrshare.stages.audio import SourceSettings, convolve, grid, hrtf, sources  # noqa: E402

WARMUP_BLOCKS = 50  # FFT plans, caches, allocator pools
TURN_DEG_S = 180.0  # head yaw rate (deg/s)
SWAY_M, SWAY_HZ = 0.3, 0.5  # sideways head sway (m, Hz)


def scene(count: int, rate: int, seed: int = 7) -> list[sources.Source]:
    """``count`` sources on random directions at 1-6 m, alternately noise and tones."""
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((count, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    pos = d * rng.uniform(1.0, 6.0, (count, 1))
    specs = [SourceSettings(f"s{i}", position=tuple(pos[i]),
                            signal="noise" if i % 2 else "tone",
                            frequency_hz=float(rng.uniform(100, 2000)), gain=0.2)
             for i in range(count)]
    return sources.resolve(specs, rate, Path("."), None)


def pose_at(t: float) -> np.ndarray:
    """The head at ``t`` (s): swaying along X while it turns left at TURN_DEG_S."""
    position = [SWAY_M * np.sin(2 * np.pi * SWAY_HZ * t), 0.0, 0.0]
    return np.r_[position, quat.from_yaw_pitch(np.deg2rad(TURN_DEG_S * t))].astype(np.float32)


class Naive:
    """The per-source loop with overlap-add state (NumPy/SciPy on the host)."""

    def __init__(self, hrir_grid: np.ndarray, srcs: list[sources.Source], block: int,
                 distance: convolve.Distance) -> None:
        from scipy.signal import oaconvolve

        self.conv = oaconvolve
        self.hrir, self.srcs, self.block, self.distance = hrir_grid, srcs, block, distance
        taps = hrir_grid.shape[-1]
        self.tails = np.zeros((len(srcs), 2, taps - 1))
        self.old: list[np.ndarray | None] = [None] * len(srcs)
        ramp = np.ones(block + taps - 1)
        ramp[:block] = np.arange(1, block + 1) / block
        self.ramp = ramp
        self.position = 0

    def render(self, pose: np.ndarray) -> np.ndarray:
        b, d = self.block, self.distance
        out = np.zeros((2, b))
        p, q = pose[:3].astype(np.float64), pose[3:].astype(np.float64)
        rot = _rotation(q)
        locate = grid.Locator(np, 1)
        for s, src in enumerate(self.srcs):
            v = (src.position - p) @ rot
            dist = float(np.linalg.norm(v))
            idx, w = locate((v / dist)[None, :])
            gain = src.gain * d.reference_m / min(max(dist, d.min_m), d.max_m)
            h = gain * np.einsum("j,jet->et", w[0], self.hrir[idx[0]])
            old = h if self.old[s] is None else self.old[s]
            n = len(src.signal)
            x = src.signal[np.arange(self.position, self.position + b) % n]
            for e in (0, 1):
                y_old, y_new = self.conv(x, old[e]), self.conv(x, h[e])
                acc = y_old + self.ramp * (y_new - y_old)
                acc[: self.tails.shape[2]] += self.tails[s, e]
                out[e] += acc[:b]
                self.tails[s, e] = acc[b:]
            self.old[s] = h
        self.position += b
        return out


PYBINSIM_SETUP = ("python3 -m venv ENV && ENV/bin/pip install numpy && "
                  "ENV/bin/pip install --no-deps pybinsim pyfftw")


def load_pybinsim(env: Path | None) -> tuple[ModuleType | None, str]:
    """pyBinSim's ``convolver`` module from the virtual environment ``env``, or None
    and why not (with how to set one up)."""
    how = f"set one up with: {PYBINSIM_SETUP}, then pass --pybinsim ENV"
    if env is None:
        return None, f"pyBinSim peer skipped: no --pybinsim environment given; {how}"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = env / "lib" / version / "site-packages"
    path = site / "pybinsim" / "convolver.py"
    if not path.is_file():
        return None, f"pyBinSim peer skipped: {path} not found (needs {version}); {how}"
    sys.path.append(str(site))  # for pyfftw; NumPy still comes from this environment
    spec = importlib.util.spec_from_file_location("pybinsim_convolver", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        return None, f"pyBinSim peer skipped: {path} does not import ({exc}); {how}"
    module.nThreads = 1  # read by ConvolverFFTW.__init__: one FFTW thread, as the stage has
    return module, f"pyBinSim: {path} (one FFTW thread)"


class _Filter:
    """A response pair as pyBinSim's ``filterstorage.Filter`` holds it: each ear's
    response cut into blocks, (blocks, block) float32."""

    def __init__(self, hrir: np.ndarray, block: int) -> None:
        taps = -(-hrir.shape[-1] // block) * block  # pyBinSim needs whole blocks
        padded = np.zeros((2, taps), np.float32)
        padded[:, :hrir.shape[-1]] = hrir
        self.left, self.right = padded.reshape(2, taps // block, block)

    def getFilter(self) -> tuple[np.ndarray, np.ndarray]:  # noqa: N802 (pyBinSim's name)
        return self.left, self.right


class PyBinSim:
    """pyBinSim's per-block work: one ``ConvolverFFTW`` per source, every block a new
    filter with crossfade, outputs summed and scaled as its audio callback does."""

    def __init__(self, module: ModuleType, hrir_grid: np.ndarray, srcs: list[sources.Source],
                 block: int) -> None:
        self.filters = [_Filter(h, block) for h in hrir_grid]  # its filter storage
        taps = self.filters[0].left.size
        self.convolvers = [module.ConvolverFFTW(taps, block, False) for _ in srcs]
        self.srcs, self.block = srcs, block
        self.positions = np.array([src.position for src in srcs], np.float64)
        self.locate = grid.Locator(np, len(srcs))
        self.result = np.zeros((block, 2), np.float32)
        self.clipped = 0  # blocks pyBinSim would warn about
        self.position = 0

    def render(self, pose: np.ndarray) -> np.ndarray:
        b = self.block
        # what pyBinSim's sound handler and pose messages give it: every source's
        # block, and the filter for its direction (here the nearest grid entry)
        span = np.arange(self.position, self.position + b)
        block = np.stack([src.signal.take(span, mode="wrap") for src in self.srcs])
        v = (self.positions - pose[:3]) @ _rotation(pose[3:].astype(np.float64))
        idx, w = self.locate((v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32))
        nearest = idx[np.arange(len(self.srcs)), np.argmax(w, axis=1)]
        # pyBinSim's audio callback, per source
        result = self.result
        for n, conv in enumerate(self.convolvers):
            conv.setIR(self.filters[nearest[n]], True)
            left, right = conv.process(block[n, :])
            if n == 0:
                result[:, 0] = left
                result[:, 1] = right
            else:
                result[:, 0] = np.add(result[:, 0], left)
                result[:, 1] = np.add(result[:, 1], right)
        result = np.multiply(np.divide(result, float(len(self.srcs) * 2)), 1.0)  # loudness
        self.clipped += bool(np.max(np.abs(result)) > 1)
        self.position += b
        return result.T


def _rotation(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def timed(step, blocks: int, first: int = 0):
    """Run ``step(k)`` for blocks ``first..first+blocks``.

    Returns per-block wall seconds, the thread's total CPU seconds and the outputs.
    """
    samples = Samples()
    outs = [samples.call(step, first + i) for i in range(blocks)]
    return np.array(samples.wall), float(np.sum(samples.cpu)), np.concatenate(outs, axis=1)


def summary(times: np.ndarray, cpu_s: float, block_s: float) -> dict:
    audio_s = len(times) * block_s
    ms = summary_ms(times)
    return {"rtf": float(times.sum() / audio_s), "rtf_cpu": float(cpu_s / audio_s),
            "block_ms": {k: ms[k] for k in ("median", "p99", "max")},
            "deadline_misses": int(np.count_nonzero(times > block_s)), "blocks": len(times)}


def bench(count: int, args, table_host: np.ndarray, peer: ModuleType | None) -> dict:
    rate, block = args.rate, args.block
    block_s = block / rate
    srcs = scene(count, rate)
    n_fft = convolve.fft_size(block, table_host.shape[-1])
    spectra = convolve.spectra(backend.to_device(table_host, label="hrir"), n_fft)
    dist = convolve.Distance()
    stage = convolve.BinauralRenderer(spectra, n_fft, block, srcs, dist)
    xp = backend.active().xp
    pose_dev = xp.zeros(7, np.float32)
    host = np.zeros((2, block), np.float32)
    naive_blocks = max(1, int(args.naive_seconds / block_s))
    stage_blocks = max(naive_blocks, int(args.seconds / block_s))
    peer_blocks = max(1, int(args.pybinsim_seconds / block_s))
    # the head's path, made before anything is timed: only rendering is measured
    poses = [pose_at(k * block_s) for k in
             range(WARMUP_BLOCKS + max(naive_blocks + stage_blocks, peer_blocks))]

    def stage_step(k: int) -> np.ndarray:
        backend.to_device(poses[k], out=pose_dev, label="head_pose")
        backend.to_host(stage.render(pose_dev), out=host, label="audio_block")
        return host.copy()

    naive = Naive(table_host, srcs, block, dist)

    def naive_step(k: int) -> np.ndarray:
        return naive.render(poses[k])

    # same blocks for both first (outputs compared), then warm-up, then the timed runs
    *_, ref_stage = timed(stage_step, naive_blocks)
    *_, ref_naive = timed(naive_step, naive_blocks)
    diff = float(np.abs(ref_stage - ref_naive).max() / max(np.abs(ref_naive).max(), 1e-12))
    timed(stage_step, WARMUP_BLOCKS, naive_blocks)
    first = naive_blocks + WARMUP_BLOCKS
    if args.profile:
        profile(stage_step, stage_blocks, first, count)
    t_stage, cpu_stage, _ = timed(stage_step, stage_blocks, first)
    t_naive, cpu_naive, _ = timed(naive_step, naive_blocks, naive_blocks)
    s, n = summary(t_stage, cpu_stage, block_s), summary(t_naive, cpu_naive, block_s)
    row = {"sources": count, "stage": s, "naive": n, "pybinsim": None,
           "speedup": n["rtf"] / s["rtf"], "speedup_cpu": n["rtf_cpu"] / s["rtf_cpu"],
           "speedup_vs_pybinsim": None, "speedup_vs_pybinsim_cpu": None,
           "max_rel_diff_stage_vs_naive": diff}
    if peer is not None:
        binsim = PyBinSim(peer, table_host, srcs, block)

        def binsim_step(k: int) -> np.ndarray:
            return binsim.render(poses[k])

        timed(binsim_step, WARMUP_BLOCKS)
        t_peer, cpu_peer, _ = timed(binsim_step, peer_blocks, WARMUP_BLOCKS)
        pb = row["pybinsim"] = summary(t_peer, cpu_peer, block_s)
        row["speedup_vs_pybinsim"] = pb["rtf"] / s["rtf"]
        row["speedup_vs_pybinsim_cpu"] = pb["rtf_cpu"] / s["rtf_cpu"]
    return row


def profile(step, blocks: int, first: int, count: int) -> None:
    """Where the stage's time goes: cProfile of ``blocks`` more blocks, by own time."""
    import cProfile
    import pstats

    prof = cProfile.Profile(time.thread_time)
    for k in range(first, first + blocks):
        prof.runcall(step, k)
    print(f"profile of the stage, {count} sources, {blocks} blocks (thread CPU, with "
          "cProfile's own overhead):")
    pstats.Stats(prof).sort_stats("tottime").print_stats(14)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sources", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--rate", type=int, default=48000)
    p.add_argument("--block", type=int, default=256)
    p.add_argument("--taps", type=int, default=256)
    p.add_argument("--hrtf", default="kemar", help="spherical, kemar or a SOFA path")
    p.add_argument("--seconds", type=float, default=3.0, help="audio timed for the stage (s)")
    p.add_argument("--naive-seconds", type=float, default=1.0, help="audio timed naive (s)")
    p.add_argument("--pybinsim", type=Path, default=None, metavar="ENV",
                   help="virtual environment with pybinsim and pyfftw (the peer)")
    p.add_argument("--pybinsim-seconds", type=float, default=1.0,
                   help="audio timed for pyBinSim (s)")
    p.add_argument("--profile", action="store_true",
                   help="print a cProfile of the stage for each source count")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    peer, peer_note = load_pybinsim(args.pybinsim)
    hrirs = hrtf.load(args.hrtf, args.rate, args.taps, Path("."))
    table = hrtf.on_grid(hrirs)
    b = backend.active()
    block_ms = args.block / args.rate * 1e3
    print(f"audio bench: {args.rate} Hz, {args.block}-sample blocks (deadline {block_ms:.2f} ms),"
          f" {args.taps}-tap HRIRs ({hrirs.description}), backend {b.name} ({b.device}), "
          f"head turning {TURN_DEG_S:g} deg/s")
    print(peer_note)
    rows = []
    columns = [Column("sources", 7), Column("stage RTF wall/cpu", 18),
               Column("pyBinSim RTF wall/cpu", 21), Column("naive RTF wall/cpu", 18),
               Column("x pyBinSim wall/cpu", 19), Column("x naive wall/cpu", 16),
               Column("stage block ms med/p99/max", 26), Column("misses s/n", 10),
               Column("rel diff", 8)]
    fmt = "{median:.3f}/{p99:.3f}/{max:.3f}".format
    with Table(columns, caption="x: the stage's speed-up (the other's RTF / the stage's); "
               "cpu: the thread's CPU time") as out:
        for count in args.sources:
            r = bench(count, args, table, peer)
            rows.append(r)
            s, n, pb = r["stage"], r["naive"], r["pybinsim"]
            out.add_row(count, f"{s['rtf']:.4f}/{s['rtf_cpu']:.4f}",
                        pb and f"{pb['rtf']:.3f}/{pb['rtf_cpu']:.3f}",
                        f"{n['rtf']:.3f}/{n['rtf_cpu']:.3f}",
                        pb and f"{r['speedup_vs_pybinsim']:.1f}x/"
                               f"{r['speedup_vs_pybinsim_cpu']:.1f}x",
                        f"{r['speedup']:.1f}x/{r['speedup_cpu']:.1f}x",
                        fmt(**s["block_ms"]),
                        f"{s['deadline_misses']}/{n['deadline_misses']}",
                        f"{r['max_rel_diff_stage_vs_naive']:.1e}")
    if args.json:
        write_json(args.json, {
            "rate": args.rate, "block": args.block, "taps": args.taps,
            "hrtf": hrirs.description, "backend": b.name, "device": b.device,
            "deadline_ms": block_ms, "turn_deg_s": TURN_DEG_S, "pybinsim": peer_note,
            "machine": platform.platform(), "python": platform.python_version(),
            "results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
