#version 450
// probe_int8.comp — `qeil probe`'s int8 peak on a Vulkan device with
// shaderInt8: 8 independent i8vec4 multiply-add chains per thread (x = x b +
// c, wrapping as SPIR-V's integer arithmetic does), 2 OPs per lane, so one
// iteration is 8 x 4 x 2 x 4 OPs. b and c come from push constants so no
// multiply becomes shifts. (The packed dot-product form, dp4a, needs
// GL_EXT_integer_dot_product, which the glslc qeil builds with lacks.)
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer Yb { int y[]; };
layout(push_constant) uniform PC { uint iters; int b, c; } pc;

#define STEP(x) x = x * vb + vc
#define STEP8 STEP(x0); STEP(x1); STEP(x2); STEP(x3); STEP(x4); STEP(x5); STEP(x6); STEP(x7)

void main()
{
    const i8vec4 vb = i8vec4(int8_t(pc.b)), vc = i8vec4(int8_t(pc.c));
    const int8_t s = int8_t(gl_GlobalInvocationID.x & 15u);
    i8vec4 x0 = i8vec4(s, s + int8_t(1), s + int8_t(2), s + int8_t(3)), x1 = x0 + int8_t(4),
           x2 = x0 + int8_t(8), x3 = x0 + int8_t(12), x4 = x0 + int8_t(16), x5 = x0 + int8_t(20),
           x6 = x0 + int8_t(24), x7 = x0 + int8_t(28);
    for (uint i = 0u; i < pc.iters; i++) {
        STEP8; STEP8; STEP8; STEP8; // UNROLL = 4
    }
    const ivec4 t = ivec4(((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)));
    y[gl_GlobalInvocationID.x] = (t.x + t.y) + (t.z + t.w);
}
