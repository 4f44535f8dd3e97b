"""The runs of a sweep: the cartesian product of its overrides, times its repeats,
each validated before anything runs.

Each run's overridden run file is checked by the same code a run uses when it
starts: :func:`vrshare.config.parse_run_file` (what ``load_run_file`` does with a
file), the stages' settings (:func:`vrshare.app.make_stages`), the ``[display]``
table (:func:`vrshare.display.display_settings`) for a drawn run and, when a
``scene.`` key is swept, the scene (:func:`vrshare.scene.load_run_scene`). Its
error, prefixed by the ``--set`` values that led to it, is the run file's error.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunFile, load_toml, parse_run_file
from ..errors import VrshareError
from ..pipeline.clock import CLOCK_NAMES
from .overrides import Override, SweepError, apply


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: everything a worker process needs to run it.

    ``table`` is the overridden TOML of the run file at ``path`` (relative asset paths
    resolve against ``path``'s folder, on whichever host runs it); ``id`` names the run
    in the results folder and is the same whenever the same run is planned again.
    """

    id: str
    path: str
    table: dict[str, Any]
    settings: dict[str, Any]  # dotted key -> value of this run
    repeat: int  # 0 .. repeats - 1
    frames: int
    target: str  # "headless" or "none"
    clock: str  # a clock name (vrshare.pipeline.clock)
    label: str = field(default="", compare=False)

    def run_file(self) -> RunFile:
        return parse_run_file(self.table, self.path)


def describe(settings: dict[str, Any]) -> str:
    """``display.width=256 pipeline.frame_hz=90``."""
    return " ".join(f"{k}={json.dumps(v)}" for k, v in settings.items()) or "(the file as it is)"


def _run_id(file_digest: str, spec: dict[str, Any]) -> str:
    text = json.dumps({"file": file_digest, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def validate(run_file: RunFile, target: str, scene: bool) -> None:
    """Everything a run checks before its first frame, short of opening GL."""
    from ..app import make_stages

    make_stages(run_file)
    if target != "none":
        from ..display import display_settings

        display_settings(run_file)
    if scene:
        from ..scene import load_run_scene

        load_run_scene(run_file)


def plan(path: Path, overrides: list[Override], *, repeat: int = 1, frames: int = 300,
         target: str = "headless", clock: str = "unthrottled") -> list[SweepRun]:
    """Every run of the sweep, in order (the last ``--set`` varies fastest, repeats
    of one setting together), each validated; raises :class:`SweepError` naming the
    ``--set`` values (and, through them, the run file's own error) before any run."""
    if repeat < 1:
        raise SweepError(f"--repeat must be >= 1, got {repeat}")
    if frames < 1:
        raise SweepError(f"--frames must be >= 1, got {frames}")
    if clock not in CLOCK_NAMES:
        raise SweepError(f"--clock: expected one of {', '.join(CLOCK_NAMES)}, got {clock!r}")
    keys = [o.key for o in overrides]
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise SweepError(f"--set {twice}: given twice; list all its values in one --set")
    path = Path(path)
    table = load_toml(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    swept_scene = any(k.split(".")[0] == "scene" for k in keys)
    runs: list[SweepRun] = []
    for values in itertools.product(*(o.values for o in overrides)):
        settings = dict(zip(keys, values, strict=True))
        overridden = apply(table, settings)
        try:
            validate(parse_run_file(overridden, path), target, swept_scene or not runs)
        except VrshareError as exc:  # a stage type, a setting, a scene, a size
            if not settings:
                raise
            raise SweepError(f"--set {describe(settings)}: {exc}") from exc
        for r in range(repeat):
            spec = {"settings": settings, "repeat": r, "frames": frames, "target": target,
                    "clock": clock}
            runs.append(SweepRun(_run_id(digest, spec), str(path), overridden, settings, r,
                                frames, target, clock,
                                label=describe(settings) + (f" #{r + 1}" if repeat > 1 else "")))
    return runs


__all__ = ["SweepRun", "describe", "plan", "validate"]
