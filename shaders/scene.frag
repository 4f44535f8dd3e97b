#version 430
// Lambert shading with one directional light plus ambient, in linear light; the
// result is encoded to sRGB here unless the framebuffer does it (u_encode_srgb).
// TEXTURED: as in scene.vert.

in vec3 v_normal;
in vec4 v_color;
#ifdef TEXTURED
in vec3 v_uv_layer;                 // texture coordinates, layer (-1: untextured vertex)
uniform sampler2DArray u_textures;  // linear RGBA base-colour layers of this mesh
#endif

uniform vec3 u_light_dir;           // unit direction the light travels (world)
uniform vec3 u_light_color;         // linear RGB x intensity
uniform vec3 u_ambient;             // linear RGB x intensity
uniform bool u_encode_srgb;

out vec4 f_color;

vec3 linear_to_srgb(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(0.0031308, c));
}

void main() {
    vec4 base = v_color;
#ifdef TEXTURED
    if (v_uv_layer.z >= 0.0) {
        base *= texture(u_textures, v_uv_layer);
    }
#endif
    vec3 n = normalize(v_normal);
    float lambert = max(dot(n, -u_light_dir), 0.0);
    vec3 c = base.rgb * (u_ambient + u_light_color * lambert);
    f_color = vec4(u_encode_srgb ? linear_to_srgb(c) : c, base.a);
}
