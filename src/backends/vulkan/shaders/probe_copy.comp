#version 450
// probe_copy.comp — `qeil probe`'s bandwidth on a Vulkan device: dst = src
// over n 16-byte elements (STREAM "copy": 32 B per element counted). Each
// workgroup copies one contiguous block of `chunk` elements, its 64 threads
// side by side: coalesced 1 KiB rows on a GPU, and one sequential stream
// per worker thread on a CPU implementation (lavapipe), where a grid-wide
// stride touches a new page every access.
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Sb { uvec4 src[]; };
layout(std430, binding = 1) writeonly buffer Db { uvec4 dst[]; };
layout(push_constant) uniform PC { uint n, chunk; } pc;

void main()
{
    const uint lo = gl_WorkGroupID.x * pc.chunk, hi = min(pc.n, lo + pc.chunk);
    for (uint i = lo + gl_LocalInvocationID.x; i < hi; i += 64u) dst[i] = src[i];
}
