#version 450
// Element-wise ops on a (rw) and b (read): op 0 add (a[i] += b[i]),
// 1 add_bias (a[r*stride + i] += b[i], i < d), 2 silu_mul (a = silu(a) b),
// 3 gelu (tanh form, a = gelu(a)), 4 scale (a *= the float whose bits are
// pc.d: granite's multipliers). Index = x + y * 65535 * 64.
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Ab { float a[]; };
layout(std430, binding = 1) readonly buffer Bb { float b[]; };
layout(push_constant) uniform PC {
    uint op, n, a_off, b_off, d, stride;
} pc;

void main()
{
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    if (i >= pc.n) return;
    if (pc.op == 0u) {
        a[pc.a_off + i] += b[pc.b_off + i];
    } else if (pc.op == 1u) {
        const uint r = i / pc.d, c = i % pc.d;
        a[pc.a_off + r * pc.stride + c] += b[pc.b_off + c];
    } else if (pc.op == 2u) {
        const float g = a[pc.a_off + i];
        a[pc.a_off + i] = g / (1.0 + exp(-g)) * b[pc.b_off + i];
    } else if (pc.op == 4u) {
        a[pc.a_off + i] *= uintBitsToFloat(pc.d);
    } else {
        const float v = a[pc.a_off + i];
        const float u = 0.79788456080286535588 * (v + 0.044715 * v * v * v);
        // tanh(u) = 1 - 2 / (exp(2u) + 1), safe for large |u|
        const float th = 1.0 - 2.0 / (exp(2.0 * u) + 1.0);
        a[pc.a_off + i] = 0.5 * v * (1.0 + th);
    }
}
