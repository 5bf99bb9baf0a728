// common.glsl — shared pieces of qeil's compute shaders (included).
//
// Every shader sees storage buffers as arrays of 32-bit words (core
// Vulkan 1.0: no 8/16-bit storage features needed); weights are read byte
// by byte with shifts, so a GGUF row may start at any byte offset.

uint wbyte(uint b);  // byte at byte offset b of the weight buffer (per shader)

uint whalf(uint b) { return wbyte(b) | (wbyte(b + 1u) << 8); }
float wf16(uint b) { return unpackHalf2x16(whalf(b)).x; }
float wbf16(uint b) { return uintBitsToFloat(whalf(b) << 16); }
int sbyte(uint v) { return int(v << 24) >> 24; }

// qeil_ggml_type values (include/qeil/gguf.h)
const uint T_F32 = 0u, T_F16 = 1u, T_Q4_0 = 2u, T_Q8_0 = 8u, T_Q4_K = 12u, T_Q6_K = 14u,
           T_BF16 = 30u;

// Q4_K: {f16 d; f16 dmin; uint8 scales[12]; uint8 qs[128]} per 256 elements:
// sub-block j (32 elements) has a 6-bit scale and min packed in scales
// (p: their byte offset); x = d sc q - dmin m, q the nibble of qs[32 (j/2)
// + l] (low for even j).
void scale_min_k4(uint p, uint j, out uint sc, out uint m)
{
    if (j < 4u) {
        sc = wbyte(p + j) & 63u;
        m = wbyte(p + j + 4u) & 63u;
    } else {
        sc = (wbyte(p + j + 4u) & 15u) | ((wbyte(p + j - 4u) >> 6) << 4);
        m = (wbyte(p + j + 4u) >> 4) | ((wbyte(p + j) >> 6) << 4);
    }
}

uint q4k(uint o, uint e)
{
    const uint j = e / 32u, q = wbyte(o + 16u + 32u * (j / 2u) + e % 32u);
    return (j & 1u) != 0u ? q >> 4 : q & 15u;
}

// Q6_K: {uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d} per 256:
// element e = 128 h + 32 c + l has its low 4 bits in ql[64 h + l + 32 (c % 2)]
// (low nibble for c < 2) and its high 2 bits in bits 2c..2c+1 of
// qh[32 h + l]; x = d scales[e / 16] (q - 32).
int q6k(uint o, uint e)
{
    const uint h = e / 128u, c = (e % 128u) / 32u, l = e % 32u;
    uint lo = wbyte(o + 64u * h + l + 32u * (c % 2u));
    lo = c < 2u ? (lo & 15u) : (lo >> 4);
    const uint hi = (wbyte(o + 128u + 32u * h + l) >> (2u * c)) & 3u;
    return int(lo | (hi << 4));
}

// Element c of the row starting at byte `row`, dequantized to f32.
float deq(uint type, uint row, uint c)
{
    if (type == T_F32)
        return uintBitsToFloat(wbyte(row + 4u * c) | (wbyte(row + 4u * c + 1u) << 8) |
                               (wbyte(row + 4u * c + 2u) << 16) | (wbyte(row + 4u * c + 3u) << 24));
    if (type == T_F16) return wf16(row + 2u * c);
    if (type == T_BF16) return wbf16(row + 2u * c);
    if (type == T_Q4_K) {
        const uint o = row + 144u * (c / 256u), e = c % 256u;
        uint sc, m;
        scale_min_k4(o + 4u, e / 32u, sc, m);
        return wf16(o) * float(sc) * float(q4k(o, e)) - wf16(o + 2u) * float(m);
    }
    if (type == T_Q6_K) {
        const uint o = row + 210u * (c / 256u), e = c % 256u;
        return wf16(o + 208u) * float(sbyte(wbyte(o + 192u + e / 16u))) * float(q6k(o, e) - 32);
    }
    const uint blk = c / 32u, j = c % 32u;
    if (type == T_Q8_0) {
        const uint b = row + 34u * blk;
        return float(sbyte(wbyte(b + 2u + j))) * wf16(b);
    }
    // Q4_0: {f16 d; uint8 qs[16]}: x[j] = (lo(qs[j]) - 8) d, x[j+16] = (hi - 8) d
    const uint b = row + 18u * blk;
    const uint q = wbyte(b + 2u + (j % 16u));
    const int v = int(j < 16u ? (q & 15u) : (q >> 4)) - 8;
    return float(v) * wf16(b);
}
