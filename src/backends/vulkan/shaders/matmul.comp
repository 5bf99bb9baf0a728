#version 450
// y[v][r] = sum_c W[r][c] x[v][c]: a workgroup of 64 threads computes
// ROWS rows for up to NV vectors; the LANES threads of a row split its
// blocks (or columns) and add their sums in shared memory. Q8_0/Q4_0 weights: x is quantized to Q8_0 per block of 32 as
// the cpu backend does (d = amax/127 stored as f16, q = round(x/d)) and
// each block adds d_w * d_x * sum(q_w q_x), so results match the CPU's
// up to the order of the float sums. Float weights multiply x in f32.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Wb { uint w[]; };
layout(std430, binding = 1) readonly buffer Xb { float x[]; };
layout(std430, binding = 2) writeonly buffer Yb { float y[]; };
layout(push_constant) uniform PC {
    uint type, n_cols, n_rows, n_vec, row_bytes, x_off, y_off, w_off;
    uint y_stride;  // floats between vectors' y rows: the whole weight's rows (a split
                    // weight's chunk is n_rows rows of it, y_off at its first row)
} pc;
uint wbyte(uint b) { return (w[b >> 2] >> ((b & 3u) * 8u)) & 255u; }
#include "common.glsl"

#define NV 4
#define ROWS 8u
#define LANES 8u  // ROWS * LANES = 64
shared float red[NV][64];

int qx(float v, float id)
{
    const float t = v * id;
    if (!(t > -127.0)) return -127;
    if (!(t < 127.0)) return 127;
    return int(sign(t) * floor(abs(t) + 0.5));
}

void main()
{
    const uint t = gl_LocalInvocationID.x, lane = t % LANES;
    const uint r = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * ROWS + t / LANES;
    const uint v0 = gl_WorkGroupID.z * NV;
    const uint nv = min(uint(NV), pc.n_vec - v0);
    float acc[NV];
    for (uint v = 0u; v < NV; v++) acc[v] = 0.0;
    if (r < pc.n_rows) {
        const uint row = pc.w_off + r * pc.row_bytes;
        if (is32(pc.type)) {
            // x quantized per 32 as the cpu backend does: Q8_0 (d = amax/127
            // stored f16, q = round(x/d)); Q8_1 for the types with a min,
            // which add m_w * s_x, s_x = f16(d sum q)
            const uint nb = pc.n_cols / 32u, bb = bytes32(pc.type);
            const bool mn = has_min(pc.type);
            for (uint b = lane; b < nb; b += LANES) {
                const uint o = row + bb * b;
                int qw[32];
                for (uint j = 0u; j < 32u; j++) qw[j] = code32(pc.type, o, j);
                const float dw = wf16(o), mw = mn ? wf16(o + 2u) : 0.0;
                for (uint v = 0u; v < nv; v++) {
                    const uint xb = pc.x_off + (v0 + v) * pc.n_cols + 32u * b;
                    float amax = 0.0;
                    for (uint j = 0u; j < 32u; j++) amax = max(amax, abs(x[xb + j]));
                    const float d = amax / 127.0;
                    const float id = d != 0.0 ? 1.0 / d : 0.0;
                    const float dx = unpackHalf2x16(packHalf2x16(vec2(d, 0.0))).x;
                    int isum = 0, qsum = 0;
                    for (uint j = 0u; j < 32u; j++) {
                        const int q = qx(x[xb + j], id);
                        isum += qw[j] * q;
                        qsum += q;
                    }
                    acc[v] += dw * dx * float(isum);
                    if (mn) acc[v] += mw * unpackHalf2x16(packHalf2x16(vec2(float(qsum) * d, 0.0))).x;
                }
            }
        } else if (pc.type == T_Q4_K || pc.type == T_Q6_K) {
            // K-quants: x quantized per 256 as the cpu backend's Q8_K
            // (d = amax/127 kept f32, q = round(x 127/amax))
            const uint nb = pc.n_cols / 256u;
            for (uint b = lane; b < nb; b += LANES) {
                const uint o = row + (pc.type == T_Q4_K ? 144u : 210u) * b;
                for (uint v = 0u; v < nv; v++) {
                    const uint xb = pc.x_off + (v0 + v) * pc.n_cols + 256u * b;
                    float amax = 0.0;
                    for (uint j = 0u; j < 256u; j++) amax = max(amax, abs(x[xb + j]));
                    const float dx = amax / 127.0;
                    const float id = amax > 0.0 ? 127.0 / amax : 0.0;
                    if (pc.type == T_Q4_K) {
                        int isum = 0, summin = 0;
                        for (uint j = 0u; j < 8u; j++) {
                            uint sc, m;
                            scale_min_k4(o + 4u, j, sc, m);
                            int sq = 0, bs = 0;
                            for (uint l = 0u; l < 32u; l++) {
                                const int q = qx(x[xb + 32u * j + l], id);
                                sq += int(q4k(o, 32u * j + l)) * q;
                                bs += q;
                            }
                            isum += int(sc) * sq;
                            summin += int(m) * bs;
                        }
                        acc[v] += dx * wf16(o) * float(isum) - dx * wf16(o + 2u) * float(summin);
                    } else {
                        int isum = 0;
                        for (uint sb = 0u; sb < 16u; sb++) {
                            int part = 0;
                            for (uint l = 0u; l < 16u; l++)
                                part += (q6k(o, 16u * sb + l) - 32) * qx(x[xb + 16u * sb + l], id);
                            isum += sbyte(wbyte(o + 192u + sb)) * part;
                        }
                        acc[v] += dx * wf16(o + 208u) * float(isum);
                    }
                }
            }
        } else {
            for (uint c = lane; c < pc.n_cols; c += LANES) {
                const float wv = deq(pc.type, row, c);
                for (uint v = 0u; v < nv; v++) acc[v] += wv * x[pc.x_off + (v0 + v) * pc.n_cols + c];
            }
        }
    }
    for (uint v = 0u; v < NV; v++) red[v][t] = acc[v];
    barrier();
    for (uint s = LANES / 2u; s > 0u; s >>= 1) {
        if (lane < s)
            for (uint v = 0u; v < NV; v++) red[v][t] += red[v][t + s];
        barrier();
    }
    if (lane == 0u && r < pc.n_rows)
        for (uint v = 0u; v < nv; v++) y[pc.y_off + (v0 + v) * pc.y_stride + r] = red[v][t];
}
