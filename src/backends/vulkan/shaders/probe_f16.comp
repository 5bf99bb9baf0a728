#version 450
// probe_f16.comp — `qeil probe`'s f16 peak on a Vulkan device with
// shaderFloat16: probe_f32.comp's loop on f16vec4 (the same 2 FLOPs per
// lane per fma, 8 chains x 4 lanes x 2 x 4 per iteration). Results are
// written widened to f32, so no 16-bit storage feature is needed.
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer Yb { float y[]; };
layout(push_constant) uniform PC { uint iters; float b, c; } pc;

#define STEP(x) x = fma(x, vb, vc)
#define STEP8 STEP(x0); STEP(x1); STEP(x2); STEP(x3); STEP(x4); STEP(x5); STEP(x6); STEP(x7)

void main()
{
    const f16vec4 vb = f16vec4(float16_t(pc.b)), vc = f16vec4(float16_t(pc.c));
    const float16_t s = float16_t(float(gl_GlobalInvocationID.x & 15u) * 1e-3);
    f16vec4 x0 = f16vec4(s, s + 0.1hf, s + 0.2hf, s + 0.3hf), x1 = x0 + 0.01hf,
            x2 = x0 + 0.02hf, x3 = x0 + 0.03hf, x4 = x0 + 0.04hf, x5 = x0 + 0.05hf,
            x6 = x0 + 0.06hf, x7 = x0 + 0.07hf;
    for (uint i = 0u; i < pc.iters; i++) {
        STEP8; STEP8; STEP8; STEP8; // UNROLL = 4
    }
    const vec4 t = vec4(((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)));
    y[gl_GlobalInvocationID.x] = (t.x + t.y) + (t.z + t.w);
}
