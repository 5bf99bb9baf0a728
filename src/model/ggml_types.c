/* ggml_types.c — the tensor type table: name, elements per block and bytes
 * per block of every ggml type qeil can size.
 *
 * Source for every number: ggml's src/ggml-common.h (ggml-org/ggml), where
 * each block struct is followed by a static_assert on its size. QK_K = 256.
 *
 *   type   elems bytes  layout of one block
 *   f32        1     4  float
 *   f16        1     2  IEEE half
 *   bf16       1     2  bfloat16
 *   q4_0      32    18  half d; u8 qs[16]
 *   q4_1      32    20  half d, m; u8 qs[16]
 *   q5_0      32    22  half d; u8 qh[4]; u8 qs[16]
 *   q5_1      32    24  half d, m; u8 qh[4]; u8 qs[16]
 *   q8_0      32    34  half d; i8 qs[32]
 *   q8_1      32    36  half d, s; i8 qs[32]   (older ggml used float d, s:
 *                                                 40 bytes; GGUF files use 36)
 *   q2_k     256    84  u8 scales[16]; u8 qs[64]; half d, dmin
 *   q3_k     256   110  u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d
 *   q4_k     256   144  half d, dmin; u8 scales[12]; u8 qs[128]
 *   q5_k     256   176  half d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
 *   q6_k     256   210  u8 ql[128]; u8 qh[64]; i8 scales[16]; half d
 *   q8_k     256   292  float d; i8 qs[256]; i16 bsums[16]
 *
 * Types ggml defines but this table does not (the IQ family, TQ, MXFP4,
 * integer tensors) read as unknown: 0/NULL here, rejected by the reader.
 */
#include "qeil/gguf.h"

#include <ctype.h>
#include <string.h>

typedef struct {
    const char *name;
    uint32_t block_elems;
    uint32_t block_bytes;
} ggml_type_info;

/* Indexed by ggml type number; zero entries are types we do not know. */
static const ggml_type_info type_table[QEIL_GGML_TYPE_LIMIT] = {
    [QEIL_GGML_F32] = {"f32", 1, 4},
    [QEIL_GGML_F16] = {"f16", 1, 2},
    [QEIL_GGML_Q4_0] = {"q4_0", 32, 2 + 16},
    [QEIL_GGML_Q4_1] = {"q4_1", 32, 2 + 2 + 16},
    [QEIL_GGML_Q5_0] = {"q5_0", 32, 2 + 4 + 16},
    [QEIL_GGML_Q5_1] = {"q5_1", 32, 2 + 2 + 4 + 16},
    [QEIL_GGML_Q8_0] = {"q8_0", 32, 2 + 32},
    [QEIL_GGML_Q8_1] = {"q8_1", 32, 2 + 2 + 32},
    [QEIL_GGML_Q2_K] = {"q2_k", 256, 16 + 64 + 2 + 2},
    [QEIL_GGML_Q3_K] = {"q3_k", 256, 32 + 64 + 12 + 2},
    [QEIL_GGML_Q4_K] = {"q4_k", 256, 2 + 2 + 12 + 128},
    [QEIL_GGML_Q5_K] = {"q5_k", 256, 2 + 2 + 12 + 32 + 128},
    [QEIL_GGML_Q6_K] = {"q6_k", 256, 128 + 64 + 16 + 2},
    [QEIL_GGML_Q8_K] = {"q8_k", 256, 4 + 256 + 16 * 2},
    [QEIL_GGML_IQ4_NL] = {"iq4_nl", 32, 2 + 16},
    [QEIL_GGML_IQ4_XS] = {"iq4_xs", 256, 2 + 2 + 4 + 128},
    [QEIL_GGML_BF16] = {"bf16", 1, 2},
};

static const ggml_type_info *type_info(int type)
{
    if (type < 0 || type >= QEIL_GGML_TYPE_LIMIT) return NULL;
    const ggml_type_info *t = &type_table[type];
    return t->name ? t : NULL;
}

const char *qeil_ggml_type_name(int type)
{
    const ggml_type_info *t = type_info(type);
    return t ? t->name : NULL;
}

uint32_t qeil_ggml_block_elems(int type)
{
    const ggml_type_info *t = type_info(type);
    return t ? t->block_elems : 0;
}

uint32_t qeil_ggml_block_bytes(int type)
{
    const ggml_type_info *t = type_info(type);
    return t ? t->block_bytes : 0;
}

int qeil_ggml_type_from_name(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < QEIL_GGML_TYPE_LIMIT; i++) {
        const char *n = type_table[i].name;
        if (!n) continue;
        size_t k = 0;
        while (n[k] && name[k] && tolower((unsigned char)name[k]) == n[k]) k++;
        if (n[k] == '\0' && name[k] == '\0') return i;
    }
    return -1;
}

uint64_t qeil_ggml_nbytes(int type, uint64_t n, int *ok)
{
    int ok_local = 0;
    uint64_t bytes = 0;
    const ggml_type_info *t = type_info(type);
    if (t && n % t->block_elems == 0) {
        uint64_t blocks = n / t->block_elems;
        if (blocks <= UINT64_MAX / t->block_bytes) {
            bytes = blocks * t->block_bytes;
            ok_local = 1;
        }
    }
    if (ok) *ok = ok_local;
    return bytes;
}
