#version 450
// Causal attention, one workgroup per (row r, query head h): positions in
// chunks of 64 (one score per thread), online softmax (running max m and
// sum l, earlier sums rescaled by exp(m_old - m_new)); thread t owns
// output dims t, t+64, t+128, t+192 (head_dim <= 256).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer KCb { float kc[]; };
layout(std430, binding = 1) readonly buffer VCb { float vc[]; };
layout(std430, binding = 2) readonly buffer Qb { float q[]; };
layout(std430, binding = 3) writeonly buffer Ob { float o[]; };
layout(std430, binding = 4) readonly buffer Rb { uint rows[]; };
layout(push_constant) uniform PC {
    uint kc_off, vc_off, q_off, o_off, q_stride, n_heads, n_kv_heads, head_dim, n_ctx, rows_off;
    float scale;
} pc;
shared float qs[256];
shared float sc[64];

void main()
{
    const uint t = gl_LocalInvocationID.x, h = gl_WorkGroupID.x, r = gl_WorkGroupID.y;
    const uint hd = pc.head_dim, kvh = h / (pc.n_heads / pc.n_kv_heads);
    const uint seq = rows[pc.rows_off + 2u * r], n_pos = rows[pc.rows_off + 2u * r + 1u] + 1u;
    const uint base = (seq * pc.n_kv_heads + kvh) * pc.n_ctx * hd;
    for (uint i = t; i < hd; i += 64u) qs[i] = q[pc.q_off + r * pc.q_stride + h * hd + i];
    barrier();
    float m = -1.0 / 0.0, l = 0.0;
    float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);
    for (uint c0 = 0u; c0 < n_pos; c0 += 64u) {
        const uint j = c0 + t;
        float s = -1.0 / 0.0;
        if (j < n_pos) {
            s = 0.0;
            const uint kb = pc.kc_off + base + j * hd;
            for (uint i = 0u; i < hd; i++) s += qs[i] * kc[kb + i];
            s *= pc.scale;
        }
        sc[t] = s;
        barrier();
        const uint n = min(64u, n_pos - c0);
        float cm = m;
        for (uint k = 0u; k < n; k++) cm = max(cm, sc[k]);
        const float corr = exp(m - cm);
        l *= corr;
        for (uint a = 0u; a < 4u; a++) acc[a] *= corr;
        for (uint k = 0u; k < n; k++) {
            const float p = exp(sc[k] - cm);
            l += p;
            const uint vb = pc.vc_off + base + (c0 + k) * hd;
            for (uint a = 0u; a < 4u; a++) {
                const uint i = t + 64u * a;
                if (i < hd) acc[a] += p * vc[vb + i];
            }
        }
        m = cm;
        barrier();
    }
    for (uint a = 0u; a < 4u; a++) {
        const uint i = t + 64u * a;
        if (i < hd) o[pc.o_off + (r * pc.n_heads + h) * hd + i] = acc[a] / l;
    }
}
