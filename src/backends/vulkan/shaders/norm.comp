#version 450
// Row-wise RMS norm (layer == 0) or layer norm: one workgroup per row.
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Xb { float x[]; };
layout(std430, binding = 1) readonly buffer Wb { float w[]; };
layout(std430, binding = 2) readonly buffer Bb { float bias[]; };
layout(std430, binding = 3) writeonly buffer Yb { float y[]; };
layout(push_constant) uniform PC {
    uint layer, has_b, d, x_off, w_off, b_off, y_off;
    float eps;
} pc;
shared float red[64];

float row_sum(float v)
{
    const uint t = gl_LocalInvocationID.x;
    red[t] = v;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        barrier();
    }
    const float r = red[0];
    barrier();
    return r;
}

void main()
{
    const uint t = gl_LocalInvocationID.x, r = gl_WorkGroupID.x;
    const uint xo = pc.x_off + r * pc.d, yo = pc.y_off + r * pc.d;
    float mean = 0.0;
    if (pc.layer != 0u) {
        float s = 0.0;
        for (uint i = t; i < pc.d; i += 64u) s += x[xo + i];
        mean = row_sum(s) / float(pc.d);
    }
    float ss = 0.0;
    for (uint i = t; i < pc.d; i += 64u) {
        const float c = x[xo + i] - mean;
        ss += c * c;
    }
    const float inv = 1.0 / sqrt(row_sum(ss) / float(pc.d) + pc.eps);
    for (uint i = t; i < pc.d; i += 64u) {
        float v = (x[xo + i] - mean) * inv * w[pc.w_off + i];
        if (pc.has_b != 0u) v += bias[pc.b_off + i];
        y[yo + i] = v;
    }
}
