"""Plug-in stages: by entry point (a real installed distribution's metadata on
sys.path) and by "module:Class" path, validated when resolved."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vrshare import PipelineError
from vrshare.pipeline import available, resolve

TESTS = Path(__file__).parent


def install_plugin(root: Path, ep_name: str = "bouncer", target: str = "vrs_bounce:Bounce"):
    """Lay out a package and its .dist-info on ``root`` as pip would."""
    (root / "vrs_bounce.py").write_text(textwrap.dedent("""
        from dataclasses import dataclass
        import vrshare

        @dataclass
        class BounceSettings:
            height: float = 1.0

        class Bounce(vrshare.Stage):
            name = "bounce"
            writes = ("ball",)
            Settings = BounceSettings
            def setup(self, bank, config):
                self.ball = bank.state("ball", (1,))
            def process(self, frame, bank):
                self.ball[0] = self.settings.height * (frame.index % 2)

        class NotAStage:
            pass
    """))
    info = root / "vrs_bounce-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vrs-bounce\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[vrshare.stages]\n{ep_name} = {target}\n")
    (info / "RECORD").write_text("")


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("vrs_bounce", None)


def test_entry_point_stage_is_listed_and_resolved(plugin_path):
    entries = {e.name: e for e in available()}
    assert entries["bouncer"].origin == "vrs-bounce"
    assert entries["tracking"].origin == "built-in"
    cls = resolve("bouncer")
    assert cls.__name__ == "Bounce" and cls.name == "bounce"


def test_entry_point_stage_runs_from_a_pipeline_file(plugin_path):
    f = plugin_path / "p.toml"
    f.write_text('[pipeline]\nclock = "virtual"\n[[stage]]\ntype = "bouncer"\n'
                 '[stage.settings]\nheight = 3.0\n')
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    out = subprocess.run([sys.executable, "-m", "vrshare.cli", "stages"], env=env,
                         capture_output=True, text=True, check=True)
    assert "bouncer" in out.stdout and "vrs-bounce" in out.stdout
    out = subprocess.run([sys.executable, "-m", "vrshare.cli", "run", str(f), "--target", "none",
                          "--frames", "5"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "bounce" in out.stdout


def test_entry_point_clashing_with_a_builtin_is_refused(tmp_path, monkeypatch):
    install_plugin(tmp_path, ep_name="tracking")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PipelineError, match="entry point 'tracking' .* from vrs-bounce clashes"):
        available()


def test_entry_point_to_a_non_stage_is_refused(tmp_path, monkeypatch):
    install_plugin(tmp_path, ep_name="broken", target="vrs_bounce:NotAStage")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PipelineError, match=r"stage 'broken' \(vrs-bounce\): .*not a subclass"):
        resolve("broken")
    sys.modules.pop("vrs_bounce", None)


@pytest.mark.parametrize("type_name, message", [
    ("stagekit:Nope", "module 'stagekit' has no 'Nope'"),
    ("no_such_module_xyz:Stage", "cannot import 'no_such_module_xyz'"),
    ("stagekit:", "is not of the form 'package.module:Class'"),
    ("warp_drive", "unknown stage type 'warp_drive': expected one of tracking"),
])
def test_bad_stage_references(type_name, message):
    with pytest.raises(PipelineError, match=message):
        resolve(type_name)


def test_a_stage_without_process_is_refused(tmp_path, monkeypatch):
    (tmp_path / "lazy_stage.py").write_text(
        "import vrshare\nclass Lazy(vrshare.Stage):\n    name = 'lazy'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PipelineError, match="Lazy does not implement process"):
        resolve("lazy_stage:Lazy")
