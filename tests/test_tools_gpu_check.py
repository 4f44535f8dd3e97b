"""tools/gpu_check.py: the one command for a GPU machine plans every benchmark."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_dry_run_plans_every_benchmark_or_says_why_not(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(ROOT / "tools"))
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--dry-run",
                           "--out", str(tmp_path)], capture_output=True, text=True, check=True)
    planned = done.stdout
    for script in sorted((ROOT / "tools").glob("bench_*.py")):
        if script.stem in gpu_check.LEFT_OUT:
            assert script.name not in planned
        else:
            assert f"{script.name} " in planned, f"{script.name} is neither run nor left out"
            assert f"--json {tmp_path}" in planned
    assert "-m pytest -m gpu" in planned and "vrshare bench" in planned
    assert not any(tmp_path.iterdir())  # a dry run writes nothing
