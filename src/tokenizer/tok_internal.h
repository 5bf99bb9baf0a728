/*
 * tok_internal.h — the tokenizer object shared by tokenizer.c (building,
 * decoding, GGUF) and tok_encode.c (encoding), and the pre-tokenizer split
 * of tok_pretok.c. Internal: not installed, may change freely.
 */
#ifndef QEIL_ENGINE_TOK_INTERNAL_H
#define QEIL_ENGINE_TOK_INTERNAL_H

#include "qeil/tokenizer.h"

/* One (left id, right id) -> (rank, merged id) entry of the BPE merge hash. */
typedef struct {
    uint64_t key; /* (uint64)left << 32 | right; TOK_MERGE_EMPTY when free */
    int32_t rank;
    int32_t result;
} tok_merge_slot;

#define TOK_MERGE_EMPTY UINT64_MAX

/* Slot hash of a merge key: splitmix64's finalizer (Steele, Lea, Flood
 * 2014), which spreads the two ids over all bits before masking. */
static inline uint64_t tok_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

struct qeil_tokenizer {
    qeil_ctx *ctx; /* allocator of everything below (must outlive the tokenizer) */
    qeil_tok_kind kind;
    qeil_pretok pre;
    uint32_t n_vocab;

    char *text;        /* all token strings, each followed by a NUL */
    uint32_t *off;     /* [n_vocab + 1]: token i is text[off[i] .. off[i+1]-1) */
    float *scores;     /* [n_vocab] */
    uint8_t *types;    /* [n_vocab] QEIL_TOKTYPE_* (0 = undefined, read as normal) */
    char *dec;         /* decoded pieces (what qeil_tokenizer_piece returns) */
    uint32_t *dec_off; /* [n_vocab + 1] */

    uint32_t *vhash;   /* open addressing, id + 1 per slot, 0 = free */
    uint32_t vmask;    /* slots - 1 (a power of two minus one) */
    uint32_t max_len;  /* longest mergeable token in bytes: longer spans skip the lookup */

    tok_merge_slot *mhash; /* BPE only */
    uint32_t mmask;
    size_t n_merges;       /* merges kept (the rest named absent tokens) */

    int32_t byte_tok[256]; /* token of each byte: SPM <0xNN>, BPE GPT-2 symbol; -1 none */
    uint32_t byte_cp[256]; /* GPT-2 bytes_to_unicode: byte -> code point */
    int16_t cp_byte[324];  /* its inverse for code points < 324; -1 none */

    int32_t bos, eos, unk;
    int add_bos;           /* encode's default */
    int spm_prefix;        /* SPM: prefix a space (add_dummy_prefix) */
    int ignore_merges;     /* BPE Llama-3: a word that is a token is taken whole */

    /* Special tokens (CONTROL, UNKNOWN, USER_DEFINED, non-empty) sorted by
     * first byte, then longest first, then lowest id; special_first[b] ..
     * special_first[b+1] are those starting with byte b. */
    int32_t *special;
    uint32_t n_special;
    uint32_t special_first[257];
    int has_user_defined;  /* matched even without parse_special */

    /* Byte pairs that encoding in pieces must not separate (tok_encode.c's
     * cut points): bit a << 8 | b is set when bytes a, b are adjacent in a
     * special token or, for SPM, in a text token as spelled after
     * normalisation (U+2581 for a space); also every pair whose first byte
     * ends a special token. */
    uint8_t nocut[256 * 256 / 8];
};

static inline int tok_nocut(const qeil_tokenizer *tk, uint8_t a, uint8_t b)
{
    unsigned k = (unsigned)a << 8 | b;
    return tk->nocut[k >> 3] >> (k & 7) & 1;
}

/* Types a text span may be encoded as (not CONTROL/UNKNOWN/BYTE). */
static inline int tok_type_is_text(uint8_t t)
{
    return t == 0 || t == QEIL_TOKTYPE_NORMAL || t == QEIL_TOKTYPE_USER_DEFINED ||
           t == QEIL_TOKTYPE_UNUSED;
}

/* Exact vocabulary lookup of s[0..len): the first id with these bytes, -1. */
int32_t qeil_tok_find(const qeil_tokenizer *tk, const char *s, size_t len);

/* End of the pre-tokenizer piece that starts at s[i] (i < n): the match of
 * the pre-tokenizer's regex at i, as a backtracking engine with ordered
 * alternation finds it. Always > i. The regexes: docs/tokenizer.md. */
size_t qeil_pretok_next(qeil_pretok pre, const uint8_t *s, size_t n, size_t i);

/* Bytes of text encoded at once: a longer SPM run is encoded in pieces of
 * about this size, cut where qeil_tokenizer_cut allows, so the encoder's
 * scratch (~40 bytes per byte) stays bounded whatever the text length. */
#define TOK_CHUNK_B ((size_t)1 << 16)

/* qeil_tokenizer_encode_bytes with the piece size as a parameter (tests
 * compare chunk_b = SIZE_MAX, one piece, against small pieces); cont = 1 as
 * qeil_tokenizer_encode_more. */
qeil_status qeil_tok_encode(qeil_ctx *ctx, const qeil_tokenizer *tk, const char *text, size_t len,
                            int add_bos, int parse_special, int cont, size_t chunk_b, int32_t *ids,
                            size_t cap, size_t *n_out);

/* The same with special tokens parsed only where mask allows: mask[i] != 0
 * when byte i of the text may belong to a CONTROL/UNKNOWN token (all of a
 * token's bytes must be allowed); NULL = everywhere. USER_DEFINED tokens are
 * matched everywhere, as always. For chat templates (chat.c): the
 * template's own text is allowed, message contents are not. */
qeil_status qeil_tok_encode_mask(qeil_ctx *ctx, const qeil_tokenizer *tk, const char *text, size_t len,
                                 int add_bos, int parse_special, const uint8_t *mask, int cont,
                                 size_t chunk_b, int32_t *ids, size_t cap, size_t *n_out);

#endif /* QEIL_ENGINE_TOK_INTERNAL_H */
