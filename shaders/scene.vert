#version 430
// One instanced draw per mesh: instance rows come from the `instances` bank buffer
// (bound as a storage buffer); this draw uses rows [u_first, u_first + instance count).

layout(location = 0) in vec3 in_position;  // mesh space (m)
layout(location = 1) in vec3 in_normal;
layout(location = 2) in vec2 in_uv;
layout(location = 3) in vec4 in_color;     // linear RGBA (base-colour factor x vertex colour)
layout(location = 4) in float in_layer;    // base-colour texture layer, -1: none

struct Instance {
    mat4 model;  // object -> world (GL column-major, as the buffer stores it)
    vec4 color;  // linear RGBA multiplier
};
layout(std430, binding = 0) readonly buffer Instances { Instance instances[]; };

// Eye matrices exactly as the bank stores them: row-major, acting on column vectors.
layout(std140, row_major, binding = 0) uniform Eyes {
    mat4 view[2];  // world -> eye
    mat4 proj[2];  // eye -> clip
};

uniform int u_first;
uniform int u_eye;

out vec3 v_normal;
out vec2 v_uv;
out vec4 v_color;
flat out float v_layer;

void main() {
    Instance inst = instances[u_first + gl_InstanceID];
    gl_Position = proj[u_eye] * (view[u_eye] * (inst.model * vec4(in_position, 1.0)));
    // normals take the cofactor matrix (inverse-transpose up to scale): right under
    // non-uniform scale, and three cross products instead of an inverse
    mat3 m = mat3(inst.model);
    mat3 cof = mat3(cross(m[1], m[2]), cross(m[2], m[0]), cross(m[0], m[1]));
    v_normal = cof * in_normal * sign(dot(m[0], cof[0]));
    v_uv = in_uv;
    v_color = in_color * inst.color;
    v_layer = in_layer;
}
