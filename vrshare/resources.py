"""Files that ship with the package: GLSL shaders and bundled scenes.

In a wheel they live inside the package (``vrshare/shaders``, ``vrshare/scenes``);
in a source checkout (editable install) they are the top-level ``shaders/`` and
``scenes/`` folders beside the package. Paths are resolved from the package's own
location, never from the working directory.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

KINDS = ("shaders", "scenes")


@cache
def folder(kind: str) -> Path:
    """The folder holding ``kind`` ("shaders" or "scenes")."""
    if kind not in KINDS:
        raise ValueError(f"unknown resource kind {kind!r}: expected one of {KINDS}")
    packaged = Path(str(files("vrshare"))) / kind
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parent.parent / kind
    if source.is_dir():
        return source
    raise FileNotFoundError(
        f"vrshare's {kind} folder is missing (looked in {packaged} and {source})"
    )


def path(kind: str, name: str) -> Path:
    """A bundled file, e.g. ``path("scenes", "demo.toml")``; FileNotFoundError names it."""
    p = folder(kind) / name
    if not p.is_file():
        available = ", ".join(sorted(f.name for f in folder(kind).iterdir())) or "none"
        raise FileNotFoundError(f"no bundled {kind[:-1]} {name!r} (available: {available})")
    return p


@cache
def shader_source(name: str) -> str:
    """GLSL source text of ``shaders/<name>``, read once."""
    return path("shaders", name).read_text()
