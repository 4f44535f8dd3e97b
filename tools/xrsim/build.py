"""Build xrsim, vrshare's OpenXR test runtime: ``libxrsim.so`` and its manifest ``xrsim.json``.

    python tools/xrsim/build.py [OUT_DIR]      # prints the manifest path
    XR_RUNTIME_JSON=$(python tools/xrsim/build.py) vrshare run ... --target openxr

Needs gcc and Debian's OpenXR headers (``apt-get install gcc libopenxr-dev``). Builds
are cached by the hash of the source and flags: without OUT_DIR, in
``$XDG_CACHE_HOME/vrshare/xrsim/<hash>/`` (``~/.cache`` by default; the temporary
folder when that is not writable), so a second call costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("xrsim.c")
LIBRARY = "libxrsim.so"
MANIFEST = "xrsim.json"
CFLAGS = ("-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
          "-fvisibility=hidden")


class BuildError(RuntimeError):
    """xrsim cannot be built here; the message says what is missing."""


def source_hash() -> str:
    h = hashlib.sha256(SOURCE.read_bytes())
    h.update(" ".join(CFLAGS).encode())
    return h.hexdigest()[:16]


def default_dir() -> Path:
    """The user's cache folder, or the temporary folder where that is not writable."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache / "vrshare" / "xrsim" / source_hash()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.gettempdir()) / f"vrshare-xrsim-{os.getuid()}" / source_hash()
    return folder


def build(out_dir: Path | None = None) -> Path:
    """Compile xrsim into ``out_dir`` (unless already built from this source) and return
    the manifest path to put in ``XR_RUNTIME_JSON``."""
    out_dir = Path(out_dir) if out_dir is not None else default_dir()
    manifest, library = out_dir / MANIFEST, out_dir / LIBRARY
    stamp = out_dir / "source.sha"
    if manifest.exists() and library.exists() and stamp.exists() \
            and stamp.read_text() == source_hash():
        return manifest
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BuildError("gcc is not installed (apt-get install gcc)")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{LIBRARY}.{os.getpid()}"
    done = subprocess.run([gcc, *CFLAGS, "-o", str(tmp), str(SOURCE), "-lm", "-ldl"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        if "openxr/openxr.h" in done.stderr:
            raise BuildError("the OpenXR headers are missing (apt-get install libopenxr-dev)")
        raise BuildError(f"gcc failed to build {SOURCE.name}:\n{done.stderr.strip()}")
    tmp.replace(library)  # atomic: concurrent builders never see a half-written library
    text = json.dumps({"file_format_version": "1.0.0",
                       "runtime": {"name": "xrsim", "library_path": f"./{LIBRARY}"}}, indent=1)
    tmp_manifest = out_dir / f".{MANIFEST}.{os.getpid()}"
    tmp_manifest.write_text(text + "\n")
    tmp_manifest.replace(manifest)
    stamp.write_text(source_hash())
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        print(build(Path(args[0]) if args else None))
    except BuildError as exc:
        print(f"xrsim: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
