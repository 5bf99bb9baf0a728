/*
 * tokenizer.h — text <-> token ids from a GGUF vocabulary:
 * SentencePiece-style (tokenizer.ggml.model = "llama": scores, byte
 * fallback <0xNN>) and byte-level BPE (tokenizer.ggml.model = "gpt2":
 * merges, with the GPT-2, Llama-3 and Qwen2 pre-tokenizer splits).
 *
 * Usage:
 *
 *     qeil_tokenizer *tk = NULL;
 *     if (qeil_tokenizer_from_gguf(ctx, g, &tk) != QEIL_OK) { ...errmsg... }
 *     int32_t ids[256];
 *     size_t n = 0;
 *     qeil_tokenizer_encode(ctx, tk, "Hello world", 1, ids, 256, &n); // 1 = add BOS
 *     char text[1024];
 *     qeil_tokenizer_decode(tk, ids, n, text, sizeof text);
 *     qeil_tokenizer_free(tk);
 *
 * The tokenizer copies what it needs from the GGUF; the reader may be freed
 * after creation. Its memory comes from the ctx given at creation, which
 * must outlive it (as for qeil_gguf). Thread-safety: a tokenizer is
 * immutable after creation; encode/decode may run concurrently on the same
 * tokenizer (each encode call allocates its scratch from its own ctx).
 * Behaviour, limits and the pre-tokenizer regexes: docs/tokenizer.md.
 */
#ifndef QEIL_TOKENIZER_H
#define QEIL_TOKENIZER_H

#include "qeil/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QEIL_TOKENIZER_MAX_VOCAB (1u << 20)
#define QEIL_TOKENIZER_MAX_TOKEN_BYTES 1024
#define QEIL_TOKENIZER_MAX_MERGES (1u << 22)     /* < 2^24: ranks stay exact in a float */
#define QEIL_TOKENIZER_MAX_TEXT_BYTES (1u << 28) /* one encode call */

typedef enum {
    QEIL_TOK_SPM = 0, /* SentencePiece-style (llama) */
    QEIL_TOK_BPE      /* byte-level BPE (gpt2) */
} qeil_tok_kind;

typedef enum {
    QEIL_PRE_GPT2 = 0, /* GPT-2 regex split */
    QEIL_PRE_LLAMA3,   /* Llama-3 split (digits in groups of 1-3, etc.) */
    QEIL_PRE_QWEN2     /* Qwen2 split (single digits) */
} qeil_pretok;

/* Token types as GGUF stores them in tokenizer.ggml.token_type. */
enum {
    QEIL_TOKTYPE_NORMAL = 1,
    QEIL_TOKTYPE_UNKNOWN = 2,
    QEIL_TOKTYPE_CONTROL = 3,
    QEIL_TOKTYPE_USER_DEFINED = 4,
    QEIL_TOKTYPE_UNUSED = 5,
    QEIL_TOKTYPE_BYTE = 6
};

typedef struct qeil_tokenizer qeil_tokenizer;

/* From GGUF metadata: tokenizer.ggml.model, .tokens, .scores, .token_type,
 * .merges, .bos_token_id, .eos_token_id, .unknown_token_id, .pre,
 * .add_bos_token, .add_space_prefix. Missing/inconsistent metadata ->
 * QEIL_ERR_FORMAT naming the key (and index); an unknown model or
 * pre-tokenizer -> QEIL_ERR_UNSUPPORTED naming the value. */
qeil_status qeil_tokenizer_from_gguf(qeil_ctx *ctx, const qeil_gguf *g, qeil_tokenizer **out);

/* From arrays (tests, the model exporter). Strings are copied. scores and
 * types may be NULL (0 and NORMAL). merges: "a b" strings, BPE only. */
typedef struct {
    qeil_tok_kind kind;
    qeil_pretok pre;             /* BPE only */
    size_t n_vocab;
    const char *const *tokens;   /* n_vocab NUL-terminated strings */
    const float *scores;         /* SPM: merge priority (higher first) */
    const int32_t *types;        /* QEIL_TOKTYPE_* */
    size_t n_merges;
    const char *const *merges;   /* BPE: rank order */
    int32_t bos_id, eos_id, unk_id; /* -1 when absent */
    int add_bos;                 /* default for encode's add_bos = -1 */
    int spm_no_space_prefix;     /* SPM: 1 = no dummy-prefix space (GGUF
                                    tokenizer.ggml.add_space_prefix = false) */
} qeil_tokenizer_spec;

qeil_status qeil_tokenizer_create(qeil_ctx *ctx, const qeil_tokenizer_spec *spec,
                                  qeil_tokenizer **out);
void qeil_tokenizer_free(qeil_tokenizer *tk);

size_t qeil_tokenizer_n_vocab(const qeil_tokenizer *tk);
/* Bytes the tokenizer holds (strings, pieces, scores, hash tables). */
size_t qeil_tokenizer_memory_use(const qeil_tokenizer *tk);
int32_t qeil_tokenizer_bos(const qeil_tokenizer *tk); /* -1 if none */
int32_t qeil_tokenizer_eos(const qeil_tokenizer *tk);
qeil_tok_kind qeil_tokenizer_kind(const qeil_tokenizer *tk);
int32_t qeil_tokenizer_unk(const qeil_tokenizer *tk); /* -1 if none */
qeil_pretok qeil_tokenizer_pre(const qeil_tokenizer *tk); /* BPE; GPT2 for SPM */
int qeil_tokenizer_add_bos(const qeil_tokenizer *tk);     /* encode's default */

/* Vocabulary entry id as stored (not decoded; not NUL-safe: use *len), or
 * NULL for an id out of range. Owned by tk. */
const char *qeil_tokenizer_token(const qeil_tokenizer *tk, int32_t id, size_t *len);
/* QEIL_TOKTYPE_* of id (0 = undefined), -1 for an id out of range. */
int qeil_tokenizer_token_type(const qeil_tokenizer *tk, int32_t id);
/* Id of the vocabulary entry spelled exactly text[0..len) (the first id when
 * an entry is duplicated), -1 if none. */
int32_t qeil_tokenizer_find(const qeil_tokenizer *tk, const char *text, size_t len);

/* Encode UTF-8 text (invalid UTF-8 is encoded byte-wise, never rejected).
 * add_bos: 1 yes, 0 no, -1 the model's default. Control tokens written in
 * the text (e.g. "<|endoftext|>") are recognised when parse_special != 0;
 * USER_DEFINED tokens always are (as in llama.cpp and SentencePiece).
 * Writes at most cap ids (ids may be NULL when cap is 0); *n_out gets the
 * full count; QEIL_ERR_RANGE if cap was too small (ids hold the first cap).
 * Text longer than QEIL_TOKENIZER_MAX_TEXT_BYTES -> QEIL_ERR_RANGE. */
qeil_status qeil_tokenizer_encode(qeil_ctx *ctx, const qeil_tokenizer *tk, const char *text,
                                  int add_bos, int parse_special, int32_t *ids, size_t cap,
                                  size_t *n_out);
/* The same for text[0..len), which may hold NUL bytes. */
qeil_status qeil_tokenizer_encode_bytes(qeil_ctx *ctx, const qeil_tokenizer *tk, const char *text,
                                        size_t len, int add_bos, int parse_special, int32_t *ids,
                                        size_t cap, size_t *n_out);

/* Encoding a long text in pieces, with the tokens of one call on the whole
 * text, so that neither the text nor the encoder's scratch need be held at
 * once (qeil perplexity streams a file this way):
 *
 *     n = qeil_tokenizer_cut(tk, buf, len);   // 0: read more and ask again
 *     first piece: qeil_tokenizer_encode_bytes(ctx, tk, buf, n, add_bos, ...)
 *     later ones:  qeil_tokenizer_encode_more(ctx, tk, buf, n, ...)
 *     then keep buf[n..len) in front of the next bytes read; encode the
 *     rest of the text the same way at its end.
 *
 * qeil_tokenizer_cut returns the largest p in [1, len-1] where text[0..len)
 * may be cut, or 0 if there is none. It looks at text[p-1] and text[p] only:
 * both ASCII, no token of the vocabulary holds that pair of bytes (SPM: as
 * spelled with U+2581) nor may a special token cross or end there, and for
 * byte-level BPE a letter or digit followed by a space or newline, where
 * every supported pre-tokenizer ends a piece. Rules: docs/tokenizer.md.
 * qeil_tokenizer_encode_more encodes a piece that continues a text cut
 * there: as qeil_tokenizer_encode_bytes without BOS and without the SPM
 * dummy-prefix space at its start. */
size_t qeil_tokenizer_cut(const qeil_tokenizer *tk, const char *text, size_t len);
qeil_status qeil_tokenizer_encode_more(qeil_ctx *ctx, const qeil_tokenizer *tk, const char *text,
                                       size_t len, int parse_special, int32_t *ids, size_t cap,
                                       size_t *n_out);

/* The bytes of one token as they appear in text (byte-fallback and
 * byte-level tokens decoded; SPM's U+2581 becomes a space). Returns the
 * length written (at most cap, not NUL-terminated); control tokens give 0. */
size_t qeil_tokenizer_piece(const qeil_tokenizer *tk, int32_t id, char *buf, size_t cap);

/* Decode ids to NUL-terminated text (truncated to cap-1 bytes, possibly
 * inside a UTF-8 sequence; returns the full length; text may be NULL when
 * cap is 0). A leading space of the first SPM piece is dropped, as
 * SentencePiece does. Ids out of range decode to nothing. */
size_t qeil_tokenizer_decode(const qeil_tokenizer *tk, const int32_t *ids, size_t n, char *text,
                             size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_TOKENIZER_H */
