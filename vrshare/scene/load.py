"""A ``[scene]`` table -> a :class:`~.model.Scene`: meshes shared by geometry, objects
placed (moving ones last), light and sounds checked against the file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..config import build
from ..geometry.rotation import euler_xyz
from .color import linear_rgba, srgb_to_linear
from .gltf import load_model
from .model import Light, Mesh, Motion, Scene, SceneObject, Sound, geometry_key
from .primitives import primitive_mesh
from .spec import (
    LightSpec,
    ModelSpec,
    MotionSpec,
    ObjectSpec,
    SceneError,
    SceneSpec,
    SoundSpec,
    Vec3,
)

# objects a scene may hold: each is a row of every per-object buffer (and a Python
# object while the scene loads); the scene filter is measured up to a million
MAX_OBJECTS = 4_000_000


def _unit(v: Vec3, where: str) -> np.ndarray:
    a = np.asarray(v, np.float64)
    n = np.linalg.norm(a)
    if not n > 0:
        raise SceneError(f"{where}: must not be the zero vector")
    return a / n


def _motion(spec: MotionSpec, copy: int, where: str) -> Motion | None:
    if spec.spin_deg_s == 0 and spec.orbit_deg_s == 0 and (spec.bob_m == 0 or spec.bob_hz == 0):
        return None
    return Motion(
        spin_axis=_unit(spec.spin_axis, f"{where} 'spin_axis'"),
        spin_rate=math.radians(spec.spin_deg_s),
        orbit_center=np.asarray(spec.orbit_center, np.float64),
        orbit_axis=_unit(spec.orbit_axis, f"{where} 'orbit_axis'"),
        orbit_rate=math.radians(spec.orbit_deg_s),
        bob_axis=_unit(spec.bob_axis, f"{where} 'bob_axis'"),
        bob_amplitude=spec.bob_m,
        bob_rate=2 * math.pi * spec.bob_hz,
        phase=math.radians(spec.phase_deg + copy * spec.phase_step_deg),
    )


def _placements(spec: ObjectSpec, mesh: int, tint: np.ndarray,
                where: str) -> list[SceneObject]:
    """The object's copies; ``tint`` (linear RGBA) is its mesh's primitive colour.

    The spec's numbers are already in their declared ranges (:mod:`.spec`)."""
    scale = np.broadcast_to(np.asarray(spec.scale, np.float64), (3,))
    if np.any(scale == 0):
        raise SceneError(f"{where} 'scale': must not be zero, got {spec.scale}")
    linear = np.eye(4)
    linear[:3, :3] = euler_xyz(spec.rotation) * scale
    colors = [linear_rgba(c) * tint for c in spec.palette] or [linear_rgba(spec.color) * tint]
    out = []
    nx, ny, nz = spec.grid
    for k, cell in enumerate(np.ndindex(nx, ny, nz)):
        model = linear.copy()
        model[:3, 3] = np.asarray(spec.position) + np.asarray(spec.spacing) * cell
        motion = _motion(spec.motion, k, where) if spec.motion is not None else None
        name = spec.name if k == 0 else ""
        out.append(SceneObject(name, mesh, model, colors[k % len(colors)], spec.importance, motion))
    return out


def _light(specs: list[LightSpec], where: str) -> Light:
    found: dict[str, LightSpec] = {}
    for i, spec in enumerate(specs):
        if spec.type in found:
            raise SceneError(f"{where} [[scene.light]] #{i + 1}: a second {spec.type} light "
                             "(a scene has at most one directional and one ambient light)")
        found[spec.type] = spec
    sun = found.get("directional", LightSpec("directional", intensity=0.9))
    sky = found.get("ambient", LightSpec("ambient", color=(0.5, 0.55, 0.65), intensity=0.35))
    return Light(_unit(sun.direction, f"{where} [[scene.light]] 'direction'"),
                 srgb_to_linear(np.asarray(sun.color)) * sun.intensity,
                 srgb_to_linear(np.asarray(sky.color)) * sky.intensity)


def _sounds(specs: list[SoundSpec], names: dict[str, int], base_dir: Path,
            where: str) -> list[Sound]:
    out = []
    for i, spec in enumerate(specs):
        at = f"{where} [[scene.sound]] #{i + 1} ({spec.name})"
        signal = spec.signal or ("file" if spec.file is not None else "tone")
        file = None
        if signal == "file":
            if spec.file is None:
                raise SceneError(f"{at}: signal 'file' needs a 'file'")
            file = (base_dir / spec.file).resolve()
            if not file.is_file():
                raise SceneError(f"{at} 'file': {file}: audio file not found")
        elif spec.file is not None:
            raise SceneError(f"{at}: 'file' is given but signal is {signal!r}")
        index = -1
        if spec.object:
            if spec.object not in names:
                raise SceneError(f"{at} 'object': no object named {spec.object!r} "
                                 f"(named objects: {', '.join(names) or 'none'})")
            index = names[spec.object]
        out.append(Sound(spec.name, tuple(spec.position), index, file, signal,
                         spec.frequency_hz, spec.gain, spec.loop))
    return out


def load_scene(table: dict[str, Any], base_dir: Path, path: Path) -> Scene:
    """Validate a ``[scene]`` table and load its assets.

    ``base_dir`` is the folder relative asset paths resolve against; ``path`` (the run
    file) names the file in error messages.
    """
    where = f"{path} [scene]"
    spec = build(SceneSpec, table, where)
    if list(spec.lod_distances) != sorted(spec.lod_distances) or spec.lod_distances[:1] != (0.0,):
        raise SceneError(f"{where} 'lod_distances': must start at 0 and increase, "
                         f"got {spec.lod_distances}")
    if list(spec.lod_pixels) != sorted(spec.lod_pixels, reverse=True):
        raise SceneError(f"{where} 'lod_pixels': sizes must decrease (LOD 1 first), "
                         f"got {list(spec.lod_pixels)}")
    meshes: list[Mesh] = []
    index: dict[str, int] = {}  # mesh name -> mesh table entry
    tints: dict[str, np.ndarray] = {}  # mesh name -> linear RGBA for its objects
    by_geometry: dict[bytes, int] = {}  # _geometry_key -> mesh table entry
    entries = [(m.name, f"{where} [[scene.model]] #{i + 1}", m) for i, m in enumerate(spec.model)]
    entries += [(p.name, f"{where} [[scene.primitive]] #{i + 1}", p)
                for i, p in enumerate(spec.primitive)]
    for name, at, entry in entries:
        if name in index:
            raise SceneError(f"{at}: mesh name {name!r} is used twice")
        if isinstance(entry, ModelSpec):
            try:
                mesh = load_model((base_dir / entry.file).resolve(), name, spec.lod_distances,
                                  strict=spec.strict, lod_pixels=spec.lod_pixels)
            except SceneError as exc:  # the model file's own message, after the run file's key
                raise SceneError(f"{at} 'file': {exc}") from exc
            tints[name] = np.ones(4)
        else:
            mesh = primitive_mesh(entry, spec.lod_distances, at)
            tints[name] = linear_rgba(entry.color)
        key = geometry_key(mesh)
        if key not in by_geometry:
            by_geometry[key] = len(meshes)
            meshes.append(mesh)
        index[name] = by_geometry[key]

    objects: list[SceneObject] = []
    for i, obj in enumerate(spec.object):
        at = f"{where} [[scene.object]] #{i + 1}"
        if obj.mesh not in index:
            raise SceneError(f"{at} 'mesh': no mesh named {obj.mesh!r} "
                             f"(meshes: {', '.join(index) or 'none'})")
        copies = math.prod(obj.grid)
        if len(objects) + copies > MAX_OBJECTS:
            raise SceneError(f"{at} 'grid': {obj.grid} makes {copies} copies; a scene holds "
                             f"at most {MAX_OBJECTS} objects")
        objects += _placements(obj, index[obj.mesh], tints[obj.mesh], at)
    objects.sort(key=lambda o: o.motion is not None)  # stable: static first, then moving
    names: dict[str, int] = {}
    for i, obj in enumerate(objects):
        if obj.name:
            if obj.name in names:
                raise SceneError(f"{where}: two objects are named {obj.name!r}")
            names[obj.name] = i
    return Scene(path, meshes, objects, _light(spec.light, where),
                 _sounds(spec.sound, names, base_dir, where),
                 srgb_to_linear(np.asarray(spec.background)), tuple(spec.lod_pixels))


def load_run_scene(run_file: Any) -> Scene | None:
    """The scene of a loaded run file (:class:`vrshare.config.RunFile`), or None if it
    has no ``[scene]`` table."""
    if not run_file.scene:
        return None
    return load_scene(run_file.scene, run_file.base_dir, run_file.path)
