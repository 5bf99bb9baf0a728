#version 450
// probe_f32.comp — `qeil probe`'s f32 peak on a Vulkan device (docs/probe.md,
// "Vulkan devices"): 8 independent vec4 FMA chains per thread, operands in
// registers (no memory traffic in the loop). One fma = 2 FLOPs, so one
// iteration of the loop is 8 chains x 4 lanes x 2 x UNROLL FLOPs. b and c
// come from push constants: nothing folds at compile time, and x = b x + c
// with |b| < 1 stays bounded (no inf/denormal slow paths).
layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer Yb { float y[]; };
layout(push_constant) uniform PC { uint iters; float b, c; } pc;

#define STEP(x) x = fma(x, vb, vc)
#define STEP8 STEP(x0); STEP(x1); STEP(x2); STEP(x3); STEP(x4); STEP(x5); STEP(x6); STEP(x7)

void main()
{
    const vec4 vb = vec4(pc.b), vc = vec4(pc.c);
    const float s = float(gl_GlobalInvocationID.x & 15u) * 1e-3;
    vec4 x0 = vec4(s, s + 0.1, s + 0.2, s + 0.3), x1 = x0 + 0.01, x2 = x0 + 0.02, x3 = x0 + 0.03,
         x4 = x0 + 0.04, x5 = x0 + 0.05, x6 = x0 + 0.06, x7 = x0 + 0.07;
    for (uint i = 0u; i < pc.iters; i++) {
        STEP8; STEP8; STEP8; STEP8; // UNROLL = 4
    }
    const vec4 t = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));
    y[gl_GlobalInvocationID.x] = (t.x + t.y) + (t.z + t.w);
}
