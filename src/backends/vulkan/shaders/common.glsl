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
const uint T_F32 = 0u, T_F16 = 1u, T_Q4_0 = 2u, T_Q4_1 = 3u, T_Q5_0 = 6u, T_Q5_1 = 7u,
           T_Q8_0 = 8u, T_Q4_K = 12u, T_Q6_K = 14u, T_IQ4_NL = 20u, T_BF16 = 30u;

// Blocks of 32: {f16 d; [f16 m;] codes}, x = d code (+ m):
//   Q8_0 int8 codes; Q4_0 nibbles - 8; Q4_1 nibbles (+ m); IQ4_NL nibbles
//   through the non-uniform table; Q5_0 (Q5_1) 5-bit codes, the high bits
//   in a 32-bit qh before the nibbles, - 16 (+ m). Nibble byte j % 16, low
//   nibble for j < 16.
const int kv_iq4nl[16] = int[16](-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53,
                                 69, 89, 113);

bool is32(uint t)
{
    return t == T_Q8_0 || t == T_Q4_0 || t == T_Q4_1 || t == T_Q5_0 || t == T_Q5_1 ||
           t == T_IQ4_NL;
}

bool has_min(uint t) { return t == T_Q4_1 || t == T_Q5_1; }

uint bytes32(uint t)
{
    return t == T_Q8_0 ? 34u : t == T_Q4_1 ? 20u : t == T_Q5_0 ? 22u : t == T_Q5_1 ? 24u : 18u;
}

int code32(uint t, uint o, uint j)
{
    if (t == T_Q8_0) return sbyte(wbyte(o + 2u + j));
    if (t == T_Q5_0 || t == T_Q5_1) {
        const uint qh = t == T_Q5_0 ? 2u : 4u;
        const uint q = wbyte(o + qh + 4u + j % 16u);
        const uint lo = j < 16u ? (q & 15u) : (q >> 4);
        const uint h = (wbyte(o + qh + j / 8u) >> (j % 8u)) & 1u;
        const int c = int(lo | (h << 4));
        return t == T_Q5_0 ? c - 16 : c;
    }
    const uint q = wbyte(o + (t == T_Q4_1 ? 4u : 2u) + j % 16u);
    const uint n = j < 16u ? (q & 15u) : (q >> 4);
    return t == T_Q4_0 ? int(n) - 8 : t == T_IQ4_NL ? kv_iq4nl[n] : int(n);
}

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
    // blocks of 32 (is32)
    const uint o = row + bytes32(type) * (c / 32u);
    const float v = float(code32(type, o, c % 32u)) * wf16(o);
    return has_min(type) ? v + wf16(o + 2u) : v;
}
