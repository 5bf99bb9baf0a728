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
const uint T_F32 = 0u, T_F16 = 1u, T_Q4_0 = 2u, T_Q8_0 = 8u, T_BF16 = 30u;

// Element c of the row starting at byte `row`, dequantized to f32.
float deq(uint type, uint row, uint c)
{
    if (type == T_F32)
        return uintBitsToFloat(wbyte(row + 4u * c) | (wbyte(row + 4u * c + 1u) << 8) |
                               (wbyte(row + 4u * c + 2u) << 16) | (wbyte(row + 4u * c + 3u) << 24));
    if (type == T_F16) return wf16(row + 2u * c);
    if (type == T_BF16) return wbf16(row + 2u * c);
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
