#version 450
// RoPE in place: item (row r, head h, pair i < n_rot/2); normal pairs
// (2i, 2i+1), neox pairs (i, i + n_rot/2). rows: (seq, pos) per row.
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Xb { float x[]; };
layout(std430, binding = 1) readonly buffer Cb { float cs[]; };
layout(std430, binding = 2) readonly buffer Sb { float sn[]; };
layout(std430, binding = 3) readonly buffer Rb { uint rows[]; };
layout(push_constant) uniform PC {
    uint x_off, stride, n_rows, n_heads, head_dim, n_rot, cs_off, sn_off, rows_off, neox;
} pc;

void main()
{
    const uint half_rot = pc.n_rot / 2u;
    const uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    if (id >= pc.n_rows * pc.n_heads * half_rot) return;
    const uint i = id % half_rot, h = (id / half_rot) % pc.n_heads, r = id / (half_rot * pc.n_heads);
    const uint pos = rows[pc.rows_off + 2u * r + 1u];
    const uint base = pc.x_off + r * pc.stride + h * pc.head_dim;
    const uint i0 = base + (pc.neox != 0u ? i : 2u * i);
    const uint i1 = base + (pc.neox != 0u ? i + half_rot : 2u * i + 1u);
    const float c = cs[pc.cs_off + pos * half_rot + i], s = sn[pc.sn_off + pos * half_rot + i];
    const float a = x[i0], b = x[i1];
    x[i0] = a * c - b * s;
    x[i1] = a * s + b * c;
}
