"""Scenes: the ``[scene]`` table of a run file -> meshes, objects, light, sounds.

A scene names meshes (glTF 2.0 models loaded with trimesh, and primitives), places
objects that use them, and lists one directional light, ambient light and the
audio sources::

    [scene]
    background = [0.05, 0.05, 0.07]          # sRGB clear colour

    lod_distances = [0.0, 4.0, 10.0]         # m: where LODs 1, 2 of spheres and models start
    lod_pixels = [160.0, 64.0]               # or px: once their bounding sphere is this small
                                             # on screen (glTF levels checked at that size)
    strict = false                           # true: an unreadable glTF texture is an error

    [[scene.model]]                          # a glTF 2.0 file (.gltf or .glb)
    name = "chair"
    file = "assets/chair.glb"                # relative to the run file

    [[scene.primitive]]                      # box, sphere or plane, sizes in metres
    name = "ball"
    shape = "sphere"
    size = [0.3, 0.3, 0.3]
    color = [0.9, 0.3, 0.2]                  # sRGB 0..1, multiplied into every object

    [[scene.object]]
    mesh = "ball"
    position = [0.0, 1.0, -2.0]              # metres
    rotation = [0.0, 45.0, 0.0]              # degrees about X, then Y, then Z (world axes)
    grid = [10, 1, 10]                       # optional: repeat on a grid ...
    spacing = [0.5, 0.0, 0.5]                # ... this far apart (m)
    motion = { spin_deg_s = 90.0 }           # optional: spin / orbit / bob

    [[scene.light]]
    type = "directional"                     # or "ambient"
    direction = [-0.3, -1.0, -0.4]           # direction the light travels

    [[scene.sound]]
    name = "radio"
    object = "speaker"                       # follow that object (offset: position)
    signal = "tone"                          # "file", "tone", "noise" or "chirp"

Colours written in a scene file are sRGB (as a colour picker shows them) and are
converted to linear once here; glTF base-colour factors are linear, as the glTF
spec defines them. A primitive's colour is multiplied into the colour of each object
that uses it (a per-instance value), not into its vertices, so meshes are compared by
geometry alone: meshes whose levels of detail hold the same bytes (vertices, indices,
textures), whatever their names, share one mesh table entry, are uploaded once and
drawn instanced. Moving objects are placed after the static ones
in the object table so that the motion stage rewrites one contiguous slice.
"""

from __future__ import annotations

from .color import linear_to_srgb, srgb_to_linear
from .gltf import load_model
from .load import load_run_scene, load_scene
from .model import VERTEX_FLOATS, Geometry, Light, Mesh, Motion, Scene, SceneObject, Sound
from .spec import SceneError

__all__ = ["VERTEX_FLOATS", "Geometry", "Light", "Mesh", "Motion", "Scene", "SceneError",
           "SceneObject", "Sound", "linear_to_srgb", "load_model", "load_run_scene", "load_scene",
           "srgb_to_linear"]
