"""One exception root: every error vrshare raises on purpose is a VrshareError, the
command catches that one class, and a missing optional library says what to install."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import textwrap

import pytest

import vrshare
from vrshare.cli import main
from vrshare.errors import MissingDependency, VrshareError, require

ENDINGS = ("TargetClosed",)  # a KeyboardInterrupt: how a run ends, not an error


def vrshare_exceptions() -> dict[str, type]:
    """Every exception class defined in a vrshare module, by qualified name."""
    found = {}
    for info in pkgutil.walk_packages(vrshare.__path__, "vrshare."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__):
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_vrshare_exception_derives_from_vrshare_error():
    found = vrshare_exceptions()
    assert len(found) >= 15  # config, backend, bank, pipeline, scene, audio, targets, openxr...
    strays = [name for name, cls in found.items()
              if not issubclass(cls, VrshareError) and cls.__name__ not in ENDINGS]
    assert not strays, f"not under VrshareError: {strays}"


def test_require_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "trimesh", None)  # as if it were not installed
    with pytest.raises(MissingDependency, match=r"loading glTF needs trimesh.*"
                                                r"pip install 'vrshare\[scene\]'") as info:
        require("trimesh", "scene", "loading glTF")
    assert isinstance(info.value, ImportError) and isinstance(info.value, VrshareError)
    assert require("json", "none", "never missing") is sys.modules["json"]


def test_the_command_reports_a_missing_library_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "trimesh", None)
    path = tmp_path / "run.toml"
    path.write_text(textwrap.dedent("""
        [scene]
        [[scene.primitive]]
        name = "cube"
        shape = "box"
    """))
    assert main(["run", str(path), "--target", "none", "--frames", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vrshare: ") and "pip install 'vrshare[scene]'" in err
    assert "Traceback" not in err
