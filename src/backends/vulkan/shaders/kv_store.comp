#version 450
// K and V of row r, KV head h, element i into the head-major cache:
// cache[((seq * n_kv_heads + h) * n_ctx + pos) * head_dim + i].
layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer KCb { float kc[]; };
layout(std430, binding = 1) writeonly buffer VCb { float vc[]; };
layout(std430, binding = 2) readonly buffer Kb { float k[]; };
layout(std430, binding = 3) readonly buffer Vb { float v[]; };
layout(std430, binding = 4) readonly buffer Rb { uint rows[]; };
layout(push_constant) uniform PC {
    uint kc_off, vc_off, k_off, v_off, stride, n_rows, n_kv_heads, head_dim, n_ctx, rows_off;
} pc;

void main()
{
    const uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    const uint w = pc.n_kv_heads * pc.head_dim;
    if (id >= pc.n_rows * w) return;
    const uint r = id / w, e = id % w, h = e / pc.head_dim, i = e % pc.head_dim;
    const uint seq = rows[pc.rows_off + 2u * r], pos = rows[pc.rows_off + 2u * r + 1u];
    const uint o = ((seq * pc.n_kv_heads + h) * pc.n_ctx + pos) * pc.head_dim + i;
    kc[pc.kc_off + o] = k[pc.k_off + r * pc.stride + e];
    vc[pc.vc_off + o] = v[pc.v_off + r * pc.stride + e];
}
