#version 430
// One instanced draw per mesh. Instance rows come from the `instances` bank buffer as
// per-instance attributes, bound at this draw's first row (offset first x 80 bytes).
// Compiled with TEXTURED defined for meshes with textures (texture coordinates and
// layers fetched and interpolated) and MATERIAL for meshes with emissive, masked,
// blended or double-sided faces; a mesh with neither fetches and interpolates only
// what plain Lambert shading needs, which is what a software rasterizer pays for.

layout(location = 0) in vec3 in_position;  // mesh space (m)
layout(location = 1) in vec3 in_normal;
layout(location = 3) in vec4 in_color;     // linear RGBA (base-colour factor x vertex colour)
#ifdef TEXTURED
layout(location = 2) in vec2 in_uv;
layout(location = 4) in float in_layer;    // base-colour texture layer, -1: none
out vec3 v_uv_layer;
#endif
#ifdef MATERIAL
layout(location = 10) in vec3 in_emissive; // linear RGB emissive factor
layout(location = 12) in float in_cutoff;  // 0: opaque, > 0: MASK cutoff, -1: BLEND
out vec3 v_emissive;
flat out float v_cutoff;
#ifdef TEXTURED
layout(location = 11) in float in_emissive_layer;  // emissive texture layer, -1: none
flat out float v_emissive_layer;
#endif
#endif

layout(location = 5) in mat4 in_model;           // per instance (locations 5-8): object ->
                                                  // world, GL column-major as stored
layout(location = 9) in vec4 in_instance_color;  // per instance: linear RGBA multiplier

// proj @ view of the eye being drawn, from the bank's eye_proj and eye_view, row-major
// as stored there (acting on column vectors): one matrix product per vertex fewer than
// applying both. The renderer binds the eye's range of one buffer before each pass.
layout(std140, row_major, binding = 0) uniform Eye {
    mat4 view_proj;  // world -> clip
};

out vec3 v_normal;
out vec4 v_color;

void main() {
    gl_Position = view_proj * (in_model * vec4(in_position, 1.0));
    // normals take the cofactor matrix (inverse-transpose up to scale): right under
    // non-uniform scale, and three cross products instead of an inverse; times the
    // determinant's sign so that a mirroring matrix keeps them outward
    mat3 m = mat3(in_model);
    mat3 cof = mat3(cross(m[1], m[2]), cross(m[2], m[0]), cross(m[0], m[1]));
    v_normal = cof * in_normal * sign(dot(m[0], cof[0]));
    v_color = in_color * in_instance_color;
#ifdef TEXTURED
    v_uv_layer = vec3(in_uv, in_layer);
#endif
#ifdef MATERIAL
    v_emissive = in_emissive;
    v_cutoff = in_cutoff;
#ifdef TEXTURED
    v_emissive_layer = in_emissive_layer;
#endif
#endif
}
