"""The import rules of docs/architecture.md, checked on the source: which part of
vrshare may import which. Every import counts, also those inside functions and
``TYPE_CHECKING`` blocks, since each is a dependency a reader has to follow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vrshare"

CORE = ("errors", "interrupts", "backend", "strict", "weights", "geometry", "layout", "config",
        "pipeline", "resources")
# assemble runs (a sweep: many bench runs): nothing below them imports them
RUN = ("app", "display", "demo", "bench", "sweep", "cli", "__main__")
# part -> the parts it must not import
FORBIDDEN = {
    **{part: ("stages", "render", "targets", "scene", "testing", "report", "info", *RUN)
       for part in CORE},
    "stages": ("render", "targets", "testing", *RUN),
    "scene": ("stages", "render", "targets", "testing", *RUN),
    "render": ("stages", "testing", *RUN),
    "targets": ("stages", "render", "scene", "testing", *RUN),
    "testing": ("stages", "render", "targets", "scene", *RUN),
    "report": ("stages", "render", "targets", "scene", *RUN),
    "info": ("stages", "render", "scene", *RUN),
}


def part_of(module: str) -> str:
    """``vrshare.stages.audio.hrtf`` -> ``stages``."""
    return module.split(".")[1] if module.count(".") else ""


def module_name(path: Path) -> str:
    """``.../vrshare/stages/audio/hrtf.py`` -> ``vrshare.stages.audio.hrtf``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of the vrshare modules that ``source`` (module ``module``) imports."""
    package = module if is_package else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            names.add(name)
            names.update(f"{name}.{a.name}" for a in node.names)  # "from . import x"
    return {n for n in names if n.startswith("vrshare.")}


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_is_known():
    parts = {part_of(module_name(p)) for p in SOURCES}
    assert parts - {""} <= set(FORBIDDEN) | set(RUN), "add the new part's rules"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layering(path):
    module = module_name(path)
    forbidden = FORBIDDEN.get(part_of(module), ())
    names = imported(path.read_text(), module, path.name == "__init__.py")
    bad = sorted(name for name in names if part_of(name) in forbidden)
    assert not bad, f"{module} must not import {', '.join(bad)}"


def test_the_checker_sees_relative_nested_and_type_checking_imports():
    source = """
from typing import TYPE_CHECKING
from . import quat
if TYPE_CHECKING:
    from ...targets.base import EyeSurface
def later():
    from ...render import Renderer
    import vrshare.display
"""
    names = imported(source, "vrshare.stages.tracking.stage")
    assert {"vrshare.stages.tracking.quat", "vrshare.targets.base.EyeSurface",
            "vrshare.render.Renderer", "vrshare.display"} <= names
    assert imported("from .. import layout", "vrshare.scene", is_package=True) == {
        "vrshare.layout"}
