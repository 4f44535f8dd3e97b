#version 430
// Lambert shading with one directional light plus ambient, in linear light, plus the
// emissive colour; the result is encoded to sRGB here unless the framebuffer does it
// (u_encode_srgb). TEXTURED, MATERIAL: as in scene.vert.

in vec3 v_normal;
in vec4 v_color;
#ifdef TEXTURED
in vec3 v_uv_layer;                 // texture coordinates, layer (-1: untextured vertex)
uniform sampler2DArray u_textures;  // linear RGBA layers of this mesh (colour, emissive)
#endif
#ifdef MATERIAL
in vec3 v_emissive;
flat in float v_cutoff;
#ifdef TEXTURED
flat in float v_emissive_layer;
#endif
#endif

uniform vec3 u_light_dir;           // unit direction the light travels (world)
uniform vec3 u_light_color;         // linear RGB x intensity
uniform vec3 u_ambient;             // linear RGB x intensity
uniform bool u_encode_srgb;

out vec4 f_color;

// The sRGB transfer function (IEC 61966-2-1) without pow: above 0.0031308 it is
// 1.055 c^(1/2.4) - 0.055 = 1.055 t^(5/3) - 0.055 with t = c^(1/4) (two square roots),
// and that is a smooth function of t on [0.2365, 1], given here by a degree-7
// polynomial (least-squares Chebyshev fit, numpy.polynomial, in powers of t) within
// 1.1e-6 of it in float32, 1/3600 of an 8-bit step (rounded to 8 bits, about one
// value in 80,000 lands one step off). On llvmpipe it costs about half of pow, which
// is exp2(log2(c) / 2.4): two polynomial evaluations and exponent bit handling.
vec3 linear_to_srgb(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    vec3 t = sqrt(sqrt(c));
    vec3 p = -6.982558010e-02 * t + 3.653708719e-01;
    p = p * t - 8.423814439e-01;
    p = p * t + 1.151692853e+00;
    p = p * t - 1.121832573e+00;
    p = p * t + 1.449887788e+00;
    p = p * t + 1.256916196e-01;
    p = p * t - 5.860413157e-02;
    return mix(c * 12.92, p, step(0.0031308, c));
}

void main() {
    vec4 base = v_color;
#ifdef TEXTURED
    if (v_uv_layer.z >= 0.0) {
        base *= texture(u_textures, v_uv_layer);
    }
#endif
    vec3 n = normalize(v_normal);
#ifdef MATERIAL
    if (v_cutoff >= 0.0) {  // opaque, or MASK: below the cutoff cut out, else opaque
        if (base.a < v_cutoff) {
            discard;
        }
        base.a = 1.0;
    }
    if (!gl_FrontFacing) {  // a double-sided face seen from behind: lit from behind
        n = -n;
    }
#endif
    float lambert = max(dot(n, -u_light_dir), 0.0);
    vec3 c = base.rgb * (u_ambient + u_light_color * lambert);
#ifdef MATERIAL
    vec3 emissive = v_emissive;
#ifdef TEXTURED
    if (v_emissive_layer >= 0.0) {
        emissive *= texture(u_textures, vec3(v_uv_layer.xy, v_emissive_layer)).rgb;
    }
#endif
    c += emissive;
#endif
    f_color = vec4(u_encode_srgb ? linear_to_srgb(c) : c, base.a);
}
