"""Helpers for the OpenXR tests: build xrsim, run OpenXR code in a child process, read
what xrsim dumped.

OpenXR runs happen in child processes: the loader keeps process-wide state (the
runtime library, environment read once), and ``import xr`` switches PyOpenGL's
platform for the whole process; neither should leak into the other tests.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOX_SCENE = ROOT / "tests" / "data" / "openxr_box.toml"
VALIDATION_LAYER = "XR_APILAYER_LUNARG_core_validation"
VIRTUAL_T0_NS = 1_000_000_000  # xrsim's virtual XrTime at instance creation


def build_xrsim() -> Path:
    """The xrsim manifest, built (and cached) by tools/xrsim/build.py; skips when gcc or
    the OpenXR headers are missing, except on CI where that is a failure."""
    spec = importlib.util.spec_from_file_location("xrsim_build", ROOT / "tools/xrsim/build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.build()
    except module.BuildError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"xrsim must build on CI: {exc}")
        pytest.skip(f"xrsim test runtime not buildable here: {exc}")


def bundled_layer_dir() -> str:
    """pyopenxr's API layer folder, found without importing xr in this process."""
    spec = importlib.util.find_spec("xr")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pyopenxr is not installed")
    return str(Path(spec.submodule_search_locations[0]) / "api_layer" / "linux_x86_64")


def xr_env(manifest: Path | str, out: Path, *, validation: bool = True,
           **xrsim: str | int) -> dict[str, str]:
    """Environment for a child OpenXR process against xrsim (virtual timing, small eyes),
    with the core validation layer writing to ``out/validation.txt`` and xrsim's log in
    ``out/xrsim.log``; ``xrsim`` adds XRSIM_* settings (``resolution="64x64"``)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XRSIM_", "XR_", "VRSHARE_TARGET", "PYOPENGL_"))}
    env.update(XR_RUNTIME_JSON=str(manifest), XR_API_LAYER_PATH=bundled_layer_dir(),
               XRSIM_TIMING="virtual", XRSIM_RESOLUTION="64x64", XRSIM_LOG=str(out / "xrsim.log"),
               VRSHARE_BACKEND="numpy")
    env.pop("DISPLAY", None)
    if validation:
        env.update(XR_ENABLE_API_LAYERS=VALIDATION_LAYER, XR_CORE_VALIDATION_EXPORT_TYPE="text",
                   XR_CORE_VALIDATION_FILE_NAME=str(out / "validation.txt"))
    env.update({f"XRSIM_{k.upper()}": str(v) for k, v in xrsim.items()})
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120):
    return run(["-m", "vrshare.cli", *args], env, timeout)


def run_code(code: str, env: dict[str, str], timeout: float = 120):
    return run(["-c", code], env, timeout)


def validation_problems(out: Path) -> list[str]:
    """Error and warning lines the core validation layer wrote."""
    path = out / "validation.txt"
    assert path.exists(), "the validation layer wrote nothing: was it loaded?"
    text = path.read_text()
    assert "Core Validation Layer is initialized" in text
    return [line for line in text.splitlines() if "VALID_ERROR" in line or "VALID_WARNING" in line]


def sim_log(out: Path) -> str:
    return (out / "xrsim.log").read_text()


def sim_errors(out: Path) -> list[str]:
    return [line for line in sim_log(out).splitlines() if line.startswith("error:")]


def summary(out: Path) -> dict[str, int]:
    """The counters of xrsim's last summary line (frames_waited, frames_ended, ...)."""
    line = [x for x in sim_log(out).splitlines() if "summary " in x][-1]
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split("summary ")[1].split())}


def read_views(dump: Path) -> list[dict[str, str]]:
    with open(dump / "views.csv", newline="") as f:
        return list(csv.DictReader(f))


def read_ppm(path: Path) -> np.ndarray:
    """A binary PPM (P6, 8 bit) as (height, width, 3) uint8, top row first."""
    data = path.read_bytes()
    header = re.match(rb"P6\s+(\d+)\s+(\d+)\s+255\s", data)
    assert header, f"{path} is not an 8-bit binary PPM"
    w, h = int(header[1]), int(header[2])
    return np.frombuffer(data[header.end():], np.uint8).reshape(h, w, 3)
