#version 450
// y[i][c] (+)= row ids[i] of W, dequantized: x = column block, y = i.
// W here holds rows [row0, row0 + rows) of the weight (a chunk of a split
// weight; row0 0 otherwise): ids outside them are another chunk's.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Wb { uint w[]; };
layout(std430, binding = 1) buffer Yb { float y[]; };
layout(std430, binding = 2) readonly buffer Ib { uint ids[]; };
layout(push_constant) uniform PC {
    uint type, n_cols, row_bytes, n, y_off, ids_off, accumulate, w_off, row0, rows;
} pc;
uint wbyte(uint b) { return (w[b >> 2] >> ((b & 3u) * 8u)) & 255u; }
#include "common.glsl"

void main()
{
    const uint c = gl_GlobalInvocationID.x, i = gl_WorkGroupID.y;
    if (c >= pc.n_cols || i >= pc.n) return;
    const uint id = ids[pc.ids_off + i];
    if (id < pc.row0 || id - pc.row0 >= pc.rows) return;
    const float v = deq(pc.type, pc.w_off + (id - pc.row0) * pc.row_bytes, c);
    const uint o = pc.y_off + i * pc.n_cols + c;
    y[o] = pc.accumulate != 0u ? y[o] + v : v;
}
