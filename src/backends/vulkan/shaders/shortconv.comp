#version 450
// lfm2 gated short convolution (engine/backend.h, shortconv), one thread per
// (row, channel). bcx rows hold B | C | x (3 d floats); u = B x; the state
// holds ns = L - 1 inputs per sequence, slot j at position p0 - ns + j for a
// batch whose run of that sequence starts at row r0 (position p0).
// phase 0: y[r][c] = C[r][c] * sum_k w[c L + k] u(pos - ns + k)[c], positions
//          < 0 read as 0 (the same order of additions as the cpu backend);
// phase 1: at the last row of each run, the state keeps the run's last ns
//          inputs (older ones shifted down when the run is shorter). A
//          separate dispatch: every phase-0 read of the state comes first.
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Sb { float st[]; };
layout(std430, binding = 1) readonly buffer Xb { float bcx[]; };
layout(std430, binding = 2) readonly buffer Wb { float w[]; };
layout(std430, binding = 3) writeonly buffer Yb { float y[]; };
layout(std430, binding = 4) readonly buffer Rb { uint meta[]; };
layout(push_constant) uniform PC {
    uint st_off, bcx_off, w_off, y_off, n_rows, d, ns, rows_off, r0_off, phase;
} pc;

float u_row(uint r, uint c)
{
    const uint o = pc.bcx_off + r * 3u * pc.d;
    return bcx[o + c] * bcx[o + 2u * pc.d + c];
}

void main()
{
    const uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    if (id >= pc.n_rows * pc.d) return;
    const uint r = id / pc.d, c = id % pc.d;
    const uint seq = meta[pc.rows_off + 2u * r], pos = meta[pc.rows_off + 2u * r + 1u];
    const uint r0 = meta[pc.r0_off + r], p0 = meta[pc.rows_off + 2u * r0 + 1u];
    const uint L = pc.ns + 1u, base = pc.st_off + seq * pc.ns * pc.d;
    if (pc.phase == 0u) {
        float acc = 0.0;
        for (uint k = 0u; k < L; k++) {
            const int q = int(pos) - int(pc.ns) + int(k);
            if (q < 0) continue;
            float u;
            if (q >= int(p0))
                u = u_row(r0 + uint(q - int(p0)), c);
            else
                u = st[base + uint(q - int(p0) + int(pc.ns)) * pc.d + c];
            acc += w[pc.w_off + c * L + k] * u;
        }
        y[pc.y_off + r * pc.d + c] = acc * bcx[pc.bcx_off + r * 3u * pc.d + pc.d + c];
    } else {
        if (r + 1u < pc.n_rows && meta[pc.r0_off + r + 1u] == r0) return; /* not the run's last row */
        const uint m = r - r0 + 1u;
        for (uint j = 0u; j < pc.ns; j++)
            st[base + j * pc.d + c] = j + m < pc.ns ? st[base + (j + m) * pc.d + c]
                                                  : u_row(r0 + j + m - pc.ns, c);
    }
}
