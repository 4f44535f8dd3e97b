"""Everything to run when a GPU machine is at hand, as one command.

Time on such a machine is short, so this runs, in order and each with a time limit:
the array backend's device, the ``gpu``-marked tests, the strict host-boundary test
on CuPy, every benchmark script in tools/ (short settings) with ``--json``, and
``vrshare bench scenes/demo.toml``, all on the CuPy backend. Each step's command,
exit status, duration and figures land in one JSON (``--out``), and a table is
printed as steps finish. ``--dry-run`` prints the plan and runs nothing.

CuPy: a CuPy that already imports is used as it is (machines with CUDA 13 have
``cupy-cuda13x``); otherwise ``pip install -e .[gpu]`` is tried first. Packages a
machine without network lacks can be carried as wheels (docs/development.md).

    python tools/gpu_check.py [--out gpu-check] [--step-timeout 240] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchkit import ROOT, Column, Table, write_json

# benchmark scripts left out, and why (every other tools/bench_*.py is in the plan)
LEFT_OUT = {
    "bench_openxr": "needs the simulated OpenXR runtime built (tools/xrsim) and its GL",
    "bench_controllers": "times OpenXR calls on the host against xrsim, not the array backend",
    "bench_sweep": "measures Ray scheduling on the CPU, not the array backend",
}


@dataclass
class Step:
    name: str
    argv: list[str]  # run in the checkout's root
    json_out: str | None = None  # file name under --out the step writes its figures to
    env: dict[str, str] = field(default_factory=lambda: {"VRSHARE_BACKEND": "cupy"})


def plan(out: Path) -> list[Step]:
    py = sys.executable
    tools = ROOT / "tools"

    def bench(script: str, *args: str) -> Step:
        name = script.removeprefix("bench_")
        return Step(name, [py, str(tools / f"{script}.py"), *args, "--json",
                           str(out / f"{name}.json")], f"{name}.json")

    return [
        Step("device", [py, "-c", "from vrshare import backend; b = backend.select('cupy'); "
                        "print(b.name, b.device)"]),
        Step("gpu tests", [py, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                           "tests"]),
        Step("strict boundary", [py, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 "tests/test_core_strict.py"], env={}),
        bench("bench_overhead", "--frames", "5000", "--rounds", "1"),
        bench("bench_tracking", "--frames", "2000"),
        bench("bench_scene_filter", "--sizes", "100000", "1000000", "--frames", "50"),
        bench("bench_audio", "--sources", "16", "64", "--seconds", "5"),
        bench("bench_render", "--seconds", "1", "--rounds", "1"),
        bench("bench_async", "--frames", "180"),
        Step("demo bench", [py, "-m", "vrshare", "bench", str(ROOT / "scenes" / "demo.toml"),
                            "--frames", "300", "--target", "headless", "--out",
                            str(out / "demo.json")], "demo.json"),
    ]


def ensure_cupy(dry_run: bool) -> str:
    """How CuPy is there: already importable, or installed through the gpu extra."""
    probe = [sys.executable, "-c", "import cupy; print(cupy.__version__)"]
    found = subprocess.run(probe, capture_output=True, text=True)
    if found.returncode == 0:
        return f"cupy {found.stdout.strip()} (already installed)"
    install = [sys.executable, "-m", "pip", "install", "-q", "-e", f"{ROOT}[gpu]"]
    if dry_run:
        return "would run: " + " ".join(install)
    done = subprocess.run(install, capture_output=True, text=True)
    if done.returncode != 0:
        return f"pip install of the gpu extra failed: {done.stderr.strip()[-300:]}"
    return "installed the gpu extra"


def run_step(step: Step, timeout: float) -> dict:
    env = {**os.environ, **step.env, "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    try:
        done = subprocess.run(step.argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
        rc, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        rc = 124
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(
            exc.stdout, bytes) else (exc.stdout or "")
    return {"name": step.name, "argv": step.argv, "env": step.env, "rc": rc,
            "seconds": round(time.perf_counter() - t0, 2), "tail": output[-4000:]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("gpu-check"), help="folder for the JSON")
    p.add_argument("--step-timeout", type=float, default=240.0, help="seconds per step")
    p.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = p.parse_args(argv)
    out = args.out.resolve()
    steps = plan(out)
    cupy = ensure_cupy(args.dry_run)
    print(f"CuPy: {cupy}")
    if args.dry_run:
        for step in steps:
            env = " ".join(f"{k}={v}" for k, v in step.env.items())
            print(f"[{step.name}] {env} {' '.join(step.argv)}".replace("  ", " "))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with Table([Column("step", 18, "<"), Column("rc", 4), Column("seconds", 8),
                Column("figures", 10, "<")]) as table:
        for step in steps:
            r = run_step(step, args.step_timeout)
            if step.json_out and (out / step.json_out).exists():
                r["figures"] = json.loads((out / step.json_out).read_text())
            results.append(r)
            table.add_row(step.name, str(r["rc"]), f"{r['seconds']:.1f}",
                          step.json_out if "figures" in r else "-")
            lines = r["tail"].strip().splitlines()
            print("\n".join(lines[-15:] if r["rc"] else lines[-1:]), flush=True)
    write_json(out / "gpu_check.json", {"cupy": cupy, "steps": results})
    print(f"wrote {out / 'gpu_check.json'}")
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
