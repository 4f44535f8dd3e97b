"""What the renderer uploads once: the scene programs, and each mesh (one draw slot:
a mesh at one level of detail) with its vertex layout and texture array."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..resources import shader_source

if TYPE_CHECKING:
    import moderngl

    from ..scene import Geometry
    from ..scene.model import FaceGroup, Light

# what each program reads of a vrshare.scene.Geometry vertex (VERTEX_FLOATS), by
# (textured, material): those columns are uploaded, packed, so a plain mesh's vertex
# is 40 bytes, not 72 (a software rasterizer fetches every byte of the stride)
_ATTRIBUTES = {"in_position": (0, 3), "in_normal": (3, 3), "in_uv": (6, 2), "in_color": (8, 4),
               "in_layer": (12, 1), "in_emissive": (13, 3), "in_emissive_layer": (16, 1),
               "in_cutoff": (17, 1)}
VERTEX_ATTRIBUTES = {
    (True, True): tuple(_ATTRIBUTES),
    (True, False): ("in_position", "in_normal", "in_uv", "in_color", "in_layer"),
    (False, True): ("in_position", "in_normal", "in_color", "in_emissive", "in_cutoff"),
    (False, False): ("in_position", "in_normal", "in_color"),
}


def vertex_columns(kind: tuple[bool, bool]) -> tuple[list[int], str]:
    """The vertex columns a program of ``kind`` reads, and their ModernGL format."""
    spans = [_ATTRIBUTES[name] for name in VERTEX_ATTRIBUTES[kind]]
    columns = [c for start, n in spans for c in range(start, start + n)]
    return columns, " ".join(f"{n}f" for _, n in spans)


@dataclass
class GpuMesh:
    """One draw slot: a mesh at one level of detail, uploaded once."""

    vbo: Any
    ibo: Any
    vao: Any
    program: Any
    texture: Any  # texture array, None when the mesh has no texture
    opaque: tuple[FaceGroup, ...]  # face groups drawn in the opaque pass
    blended: tuple[FaceGroup, ...]  # face groups drawn after it, back to front
    center: np.ndarray  # (4,) bounding-sphere centre, mesh space (m), w = 1
    first: int = -1  # instance row the per-instance attributes point at now

    def release(self) -> None:
        """Release the mesh's buffers (its texture belongs to the renderer: shared)."""
        for obj in (self.vao, self.vbo, self.ibo):
            obj.release()


def scene_program(ctx: moderngl.Context, light: Light, textured: bool, material: bool) -> Any:
    """The scene program, with or without textures and material terms (emission,
    alpha cutoff, back faces); lights set once."""
    define = ("#define TEXTURED\n" if textured else "") + (
        "#define MATERIAL\n" if material else "")
    vertex, fragment = (shader_source(n).replace("\n", f"\n{define}", 1)
                        for n in ("scene.vert", "scene.frag"))
    program = ctx.program(vertex_shader=vertex, fragment_shader=fragment)
    program["u_light_dir"].value = tuple(map(float, light.direction))
    program["u_light_color"].value = tuple(map(float, light.color))
    program["u_ambient"].value = tuple(map(float, light.ambient))
    if textured:
        program["u_textures"].value = 0
    return program


def upload(ctx: moderngl.Context, programs: dict[tuple[bool, bool], Any],
           textures: dict[int, Any], geometry: Geometry, center: np.ndarray) -> GpuMesh:
    """``geometry`` as GL buffers drawn by its kind's program. ``textures`` maps
    ``id(Geometry.textures)`` to GL texture arrays, so the LODs of one model share one
    (a new one is added to it)."""
    layers = geometry.textures
    kind = (layers is not None, geometry.material)
    program = programs[kind]
    columns, fmt = vertex_columns(kind)
    vbo = ctx.buffer(np.ascontiguousarray(geometry.vertices[:, columns]).tobytes())
    ibo = ctx.buffer(geometry.indices.tobytes())
    vao = ctx.vertex_array(program, [(vbo, fmt, *VERTEX_ATTRIBUTES[kind])],
                           index_buffer=ibo, index_element_size=4)
    texture = None
    if layers is not None:
        texture = textures.get(id(layers))
        if texture is None:
            n, h, w, _ = layers.shape
            texture = ctx.texture_array((w, h, n), 4, layers.tobytes(), dtype="f2")
            texture.build_mipmaps()
            textures[id(layers)] = texture
    groups = geometry.draw_groups
    return GpuMesh(vbo, ibo, vao, program, texture,
                   tuple(g for g in groups if not g.blend),
                   tuple(g for g in groups if g.blend), np.append(center, 1.0))
