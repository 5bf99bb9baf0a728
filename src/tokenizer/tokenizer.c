/*
 * tokenizer.c — building a tokenizer (from arrays or GGUF metadata), the
 * vocabulary and merge hash tables, pieces and decoding. Encoding lives in
 * tok_encode.c, the pre-tokenizer splits in tok_pretok.c. Behaviour and
 * formats: docs/tokenizer.md.
 */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/util.h"

/* SentencePiece's surface for the unknown piece (" \u2047 ", its
 * unk_surface default), used when an UNKNOWN token is decoded. */
#define TOK_UNK_SURFACE " \xE2\x81\x87 "

/* ------------------------------------------------------------------------ */
/* Build arguments: the arrays constructor and the GGUF path meet here       */
/* ------------------------------------------------------------------------ */

typedef struct {
    qeil_tok_kind kind;
    qeil_pretok pre;
    size_t n_vocab;
    const char *const *tok; /* bytes of token i: tok[i][0 .. tok_len[i]) */
    const size_t *tok_len;
    const float *scores;    /* may be NULL */
    const int32_t *types;   /* may be NULL */
    size_t n_merges;
    const char *const *merges;
    const size_t *merge_len;
    int32_t bos, eos, unk;
    int add_bos;
    int spm_prefix;
    /* names used in error messages ("tokens" or "tokenizer.ggml.tokens") */
    const char *k_tokens, *k_scores, *k_types, *k_merges, *k_bos, *k_eos, *k_unk;
} build_args;

/* ------------------------------------------------------------------------ */
/* Hashing                                                                   */
/* ------------------------------------------------------------------------ */

/* FNV-1a (core/util.h): vocabulary strings are short, so this is fast
 * enough and has no setup. */
static uint64_t hash_bytes(const char *s, size_t n) { return qeil_fnv1a(s, n); }

/* Smallest power of two >= 2n (load factor <= 1/2), at least 16. */
static uint32_t table_size(size_t n)
{
    uint32_t s = 16;
    while (s < 2 * n) s <<= 1;
    return s;
}

static size_t tok_len(const qeil_tokenizer *tk, uint32_t id)
{
    return tk->off[id + 1] - tk->off[id] - 1;
}

int32_t qeil_tok_find(const qeil_tokenizer *tk, const char *s, size_t len)
{
    uint32_t h = (uint32_t)hash_bytes(s, len) & tk->vmask;
    for (;;) {
        uint32_t v = tk->vhash[h];
        if (v == 0) return -1;
        uint32_t id = v - 1;
        if (tok_len(tk, id) == len && memcmp(tk->text + tk->off[id], s, len) == 0)
            return (int32_t)id;
        h = (h + 1) & tk->vmask;
    }
}

/* Insert id unless its string is already there: the first id wins. */
static void vocab_insert(qeil_tokenizer *tk, uint32_t id)
{
    const char *s = tk->text + tk->off[id];
    size_t len = tok_len(tk, id);
    uint32_t h = (uint32_t)hash_bytes(s, len) & tk->vmask;
    for (;;) {
        uint32_t v = tk->vhash[h];
        if (v == 0) {
            tk->vhash[h] = id + 1;
            return;
        }
        uint32_t o = v - 1;
        if (tok_len(tk, o) == len && memcmp(tk->text + tk->off[o], s, len) == 0) return;
        h = (h + 1) & tk->vmask;
    }
}

/* Insert a merge unless the pair is already there: the lower rank wins. */
static void merge_insert(qeil_tokenizer *tk, int32_t l, int32_t r, int32_t rank, int32_t res)
{
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    uint32_t h = (uint32_t)tok_mix64(key) & tk->mmask;
    for (;;) {
        tok_merge_slot *m = &tk->mhash[h];
        if (m->key == TOK_MERGE_EMPTY) {
            m->key = key;
            m->rank = rank;
            m->result = res;
            tk->n_merges++;
            return;
        }
        if (m->key == key) return;
        h = (h + 1) & tk->mmask;
    }
}

/* ------------------------------------------------------------------------ */
/* GPT-2 byte <-> unicode table                                              */
/* ------------------------------------------------------------------------ */

/* GPT-2's bytes_to_unicode (openai/gpt-2, encoder.py): the printable bytes
 * '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves; the other 68
 * bytes (controls, space, DEL, 0x80..0xA0, soft hyphen) are given the code
 * points 256, 257, ... in increasing byte order, so every byte becomes a
 * visible character and a token is a printable string. */
static void gpt2_byte_table(qeil_tokenizer *tk)
{
    uint32_t next = 256;
    for (int i = 0; i < 324; i++) tk->cp_byte[i] = -1;
    for (uint32_t b = 0; b < 256; b++) {
        int self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        uint32_t cp = self ? b : next++;
        tk->byte_cp[b] = cp;
        tk->cp_byte[cp] = (int16_t)b;
    }
}

/* ------------------------------------------------------------------------ */
/* Decoded pieces                                                            */
/* ------------------------------------------------------------------------ */

/* "<0xNN>" (either case of hex digit) -> NN, else -1. */
static int parse_byte_token(const char *s, size_t n)
{
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                         : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Write the decoded bytes of token id to out (NULL: only count); returns
 * the count. Decoded: SPM U+2581 -> ' '; BPE GPT-2 symbols -> their bytes
 * (a code point outside the table, or an invalid byte, is copied as-is);
 * BYTE <0xNN> -> the byte; CONTROL -> nothing; UNKNOWN -> " \u2047 ";
 * USER_DEFINED -> the token text unchanged. */
static size_t decode_token(const qeil_tokenizer *tk, uint32_t id, char *out)
{
    const char *s = tk->text + tk->off[id];
    size_t n = tok_len(tk, id), w = 0;
    switch (tk->types[id]) {
    case QEIL_TOKTYPE_CONTROL: return 0;
    case QEIL_TOKTYPE_UNKNOWN:
        if (out) memcpy(out, TOK_UNK_SURFACE, sizeof TOK_UNK_SURFACE - 1);
        return sizeof TOK_UNK_SURFACE - 1;
    case QEIL_TOKTYPE_BYTE:
        if (out) out[0] = (char)parse_byte_token(s, n); /* validated at create */
        return 1;
    case QEIL_TOKTYPE_USER_DEFINED:
        if (out) memcpy(out, s, n);
        return n;
    default: break;
    }
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = qeil_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (tk->kind == QEIL_TOK_SPM && cp == 0x2581) {
            if (out) out[w] = ' ';
            w++;
        } else if (tk->kind == QEIL_TOK_BPE && cp < 324 && tk->cp_byte[cp] >= 0) {
            if (out) out[w] = (char)tk->cp_byte[cp];
            w++;
        } else {
            if (out) memcpy(out + w, s + i, k);
            w += k;
        }
        i += k;
    }
    return w;
}

/* ------------------------------------------------------------------------ */
/* Create / free                                                             */
/* ------------------------------------------------------------------------ */

void qeil_tokenizer_free(qeil_tokenizer *tk)
{
    if (!tk) return;
    qeil_free(tk->ctx, tk->text);
    qeil_free(tk->ctx, tk->off);
    qeil_free(tk->ctx, tk->scores);
    qeil_free(tk->ctx, tk->types);
    qeil_free(tk->ctx, tk->dec);
    qeil_free(tk->ctx, tk->dec_off);
    qeil_free(tk->ctx, tk->vhash);
    qeil_free(tk->ctx, tk->mhash);
    qeil_free(tk->ctx, tk->special);
    qeil_free(tk->ctx, tk);
}

typedef struct {
    uint8_t first;
    uint32_t len;
    int32_t id;
} special_key;

static int special_cmp(const void *a, const void *b)
{
    const special_key *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1; /* longest first */
    return x->id < y->id ? -1 : x->id > y->id;
}

static qeil_status build_specials(qeil_ctx *ctx, qeil_tokenizer *tk)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < tk->n_vocab; i++) {
        uint8_t t = tk->types[i];
        if ((t == QEIL_TOKTYPE_CONTROL || t == QEIL_TOKTYPE_UNKNOWN ||
             t == QEIL_TOKTYPE_USER_DEFINED) && tok_len(tk, i) > 0)
            n++;
    }
    for (int b = 0; b <= 256; b++) tk->special_first[b] = 0;
    if (n == 0) return QEIL_OK;
    special_key *keys = qeil_malloc(ctx, (size_t)n * sizeof *keys);
    tk->special = qeil_malloc(ctx, (size_t)n * sizeof *tk->special);
    if (!keys || !tk->special) {
        qeil_free(ctx, keys);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "tokenizer: out of memory for %u special tokens", n);
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < tk->n_vocab; i++) {
        uint8_t t = tk->types[i];
        size_t len = tok_len(tk, i);
        if ((t == QEIL_TOKTYPE_CONTROL || t == QEIL_TOKTYPE_UNKNOWN ||
             t == QEIL_TOKTYPE_USER_DEFINED) && len > 0) {
            keys[k].first = (uint8_t)tk->text[tk->off[i]];
            keys[k].len = (uint32_t)len;
            keys[k].id = (int32_t)i;
            if (t == QEIL_TOKTYPE_USER_DEFINED) tk->has_user_defined = 1;
            k++;
        }
    }
    qsort(keys, n, sizeof *keys, special_cmp);
    /* special_first[b] = index of the first key with first byte >= b */
    uint32_t j = 0;
    for (int b = 0; b <= 256; b++) {
        while (j < n && keys[j].first < b) j++;
        tk->special_first[b] = j;
    }
    for (uint32_t i = 0; i < n; i++) tk->special[i] = keys[i].id;
    tk->n_special = n;
    qeil_free(ctx, keys);
    return QEIL_OK;
}

static void nocut_set(qeil_tokenizer *tk, uint8_t a, uint8_t b)
{
    unsigned k = (unsigned)a << 8 | b;
    tk->nocut[k >> 3] = (uint8_t)(tk->nocut[k >> 3] | 1u << (k & 7));
}

/* The pairs a cut may not separate (see tok_internal.h). A merge only makes
 * a text token, so a token crossing a cut would hold the two bytes around
 * it side by side; a special token crossing it, or ending at it, would be
 * matched differently in the pieces than in the whole text. */
static void build_nocut(qeil_tokenizer *tk)
{
    memset(tk->nocut, 0, sizeof tk->nocut);
    for (uint32_t i = 0; i < tk->n_vocab; i++) {
        uint8_t t = tk->types[i];
        int special = t == QEIL_TOKTYPE_CONTROL || t == QEIL_TOKTYPE_UNKNOWN ||
                      t == QEIL_TOKTYPE_USER_DEFINED;
        if (!special && !(tk->kind == QEIL_TOK_SPM && tok_type_is_text(t))) continue;
        const uint8_t *s = (const uint8_t *)tk->text + tk->off[i];
        size_t len = tok_len(tk, i);
        for (size_t k = 1; k < len; k++) nocut_set(tk, s[k - 1], s[k]);
        if (special && len > 0)
            for (unsigned b = 0; b < 256; b++) nocut_set(tk, s[len - 1], (uint8_t)b);
    }
}

static qeil_status check_id(qeil_ctx *ctx, const char *key, int32_t id, size_t n_vocab)
{
    if (id < -1 || (id >= 0 && (size_t)id >= n_vocab))
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: %d is not a token id (allowed -1..%zu)",
                             key, (int)id, n_vocab - 1);
    return QEIL_OK;
}

static qeil_status build(qeil_ctx *ctx, const build_args *a, qeil_tokenizer **out)
{
    *out = NULL;
    if (a->kind != QEIL_TOK_SPM && a->kind != QEIL_TOK_BPE)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "tokenizer kind: %d is not SPM (0) or BPE (1)",
                             (int)a->kind);
    if (a->kind == QEIL_TOK_BPE && a->pre != QEIL_PRE_GPT2 && a->pre != QEIL_PRE_LLAMA3 &&
        a->pre != QEIL_PRE_QWEN2)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "tokenizer pre: %d is not a qeil_pretok (0..2)",
                             (int)a->pre);
    if (a->n_vocab == 0 || a->n_vocab > QEIL_TOKENIZER_MAX_VOCAB)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: %zu tokens (allowed 1..%u)", a->k_tokens,
                             a->n_vocab, QEIL_TOKENIZER_MAX_VOCAB);
    if (a->n_merges > QEIL_TOKENIZER_MAX_MERGES)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: %zu merges (allowed 0..%u)", a->k_merges,
                             a->n_merges, QEIL_TOKENIZER_MAX_MERGES);
    qeil_status st;
    if ((st = check_id(ctx, a->k_bos, a->bos, a->n_vocab)) != QEIL_OK) return st;
    if ((st = check_id(ctx, a->k_eos, a->eos, a->n_vocab)) != QEIL_OK) return st;
    if ((st = check_id(ctx, a->k_unk, a->unk, a->n_vocab)) != QEIL_OK) return st;
    if (a->add_bos && a->bos < 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "add_bos: BOS is to be added but %s names no token", a->k_bos);

    size_t n = a->n_vocab, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!a->tok[i])
            return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "%s[%zu]: NULL", a->k_tokens, i);
        if (a->tok_len[i] > QEIL_TOKENIZER_MAX_TOKEN_BYTES)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s[%zu]: %zu bytes (allowed 0..%u)",
                                 a->k_tokens, i, a->tok_len[i], QEIL_TOKENIZER_MAX_TOKEN_BYTES);
        total += a->tok_len[i] + 1;
        if (a->types) {
            int32_t t = a->types[i];
            if (t < 0 || t > QEIL_TOKTYPE_BYTE)
                return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s[%zu]: type %d (allowed 0..6)",
                                     a->k_types, i, (int)t);
            if (t == QEIL_TOKTYPE_BYTE && parse_byte_token(a->tok[i], a->tok_len[i]) < 0)
                return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                     "%s[%zu]: a BYTE token must read <0xNN>, not '%.*s'",
                                     a->k_tokens, i, (int)(a->tok_len[i] > 32 ? 32 : a->tok_len[i]),
                                     a->tok[i]);
        }
        if (a->scores && isnan(a->scores[i]))
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s[%zu]: NaN", a->k_scores, i);
    }

    qeil_tokenizer *tk = qeil_calloc(ctx, 1, sizeof *tk);
    if (!tk) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "tokenizer: out of memory");
    tk->ctx = ctx;
    tk->kind = a->kind;
    tk->pre = a->kind == QEIL_TOK_BPE ? a->pre : QEIL_PRE_GPT2;
    tk->n_vocab = (uint32_t)n;
    tk->bos = a->bos;
    tk->eos = a->eos;
    tk->unk = a->unk;
    tk->add_bos = a->add_bos ? 1 : 0;
    tk->spm_prefix = a->spm_prefix;
    tk->ignore_merges = a->kind == QEIL_TOK_BPE && a->pre == QEIL_PRE_LLAMA3;
    tk->vmask = table_size(n) - 1;
    tk->text = qeil_malloc(ctx, total);
    tk->off = qeil_malloc(ctx, (n + 1) * sizeof *tk->off);
    tk->scores = qeil_malloc(ctx, n * sizeof *tk->scores);
    tk->types = qeil_malloc(ctx, n);
    tk->dec_off = qeil_malloc(ctx, (n + 1) * sizeof *tk->dec_off);
    tk->vhash = qeil_calloc(ctx, (size_t)tk->vmask + 1, sizeof *tk->vhash);
    if (!tk->text || !tk->off || !tk->scores || !tk->types || !tk->dec_off || !tk->vhash) {
        qeil_tokenizer_free(tk);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "tokenizer: out of memory for %zu tokens", n);
    }

    /* strings, scores, types, hash */
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        tk->off[i] = (uint32_t)pos;
        memcpy(tk->text + pos, a->tok[i], a->tok_len[i]);
        pos += a->tok_len[i];
        tk->text[pos++] = '\0';
        tk->scores[i] = a->scores ? a->scores[i] : 0.0f;
        tk->types[i] = (uint8_t)(a->types ? a->types[i] : QEIL_TOKTYPE_NORMAL);
        if (tok_type_is_text(tk->types[i]) && a->tok_len[i] > tk->max_len)
            tk->max_len = (uint32_t)a->tok_len[i];
    }
    tk->off[n] = (uint32_t)pos;
    for (uint32_t i = 0; i < n; i++) vocab_insert(tk, i);

    /* byte tokens */
    gpt2_byte_table(tk);
    for (int b = 0; b < 256; b++) tk->byte_tok[b] = -1;
    if (tk->kind == QEIL_TOK_SPM) {
        for (uint32_t i = 0; i < n; i++) {
            if (tk->types[i] != QEIL_TOKTYPE_BYTE) continue;
            int b = parse_byte_token(tk->text + tk->off[i], tok_len(tk, i));
            if (tk->byte_tok[b] < 0) tk->byte_tok[b] = (int32_t)i;
        }
    } else {
        for (int b = 0; b < 256; b++) {
            uint8_t u[4];
            size_t k = qeil_utf8_encode(tk->byte_cp[b], u);
            tk->byte_tok[b] = qeil_tok_find(tk, (const char *)u, k);
        }
    }

    /* decoded pieces */
    size_t dtotal = 0;
    for (uint32_t i = 0; i < n; i++) dtotal += decode_token(tk, i, NULL);
    tk->dec = qeil_malloc(ctx, dtotal ? dtotal : 1);
    if (!tk->dec) {
        qeil_tokenizer_free(tk);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "tokenizer: out of memory for pieces");
    }
    pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        tk->dec_off[i] = (uint32_t)pos;
        pos += decode_token(tk, i, tk->dec + pos);
    }
    tk->dec_off[n] = (uint32_t)pos;

    /* merges: "left right", split at the first space after the first byte
     * (so a left token that is a plain space still works, as in llama.cpp) */
    if (tk->kind == QEIL_TOK_BPE && a->n_merges > 0) {
        if (!a->merges) {
            qeil_tokenizer_free(tk);
            return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "%s: NULL with %zu merges", a->k_merges,
                                 a->n_merges);
        }
        tk->mmask = table_size(a->n_merges) - 1;
        tk->mhash = qeil_malloc(ctx, ((size_t)tk->mmask + 1) * sizeof *tk->mhash);
        char *cat = qeil_malloc(ctx, 2 * QEIL_TOKENIZER_MAX_TOKEN_BYTES + 2);
        if (!tk->mhash || !cat) {
            qeil_free(ctx, cat);
            qeil_tokenizer_free(tk);
            return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "tokenizer: out of memory for %zu merges",
                                 a->n_merges);
        }
        for (size_t i = 0; i <= tk->mmask; i++) tk->mhash[i].key = TOK_MERGE_EMPTY;
        for (size_t i = 0; i < a->n_merges; i++) {
            const char *m = a->merges[i];
            size_t len = a->merge_len[i], sp = 1;
            if (!m) {
                qeil_free(ctx, cat);
                qeil_tokenizer_free(tk);
                return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "%s[%zu]: NULL", a->k_merges, i);
            }
            while (sp < len && m[sp] != ' ') sp++;
            if (sp >= len) {
                qeil_free(ctx, cat);
                qeil_tokenizer_free(tk);
                return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                     "%s[%zu]: '%.*s' is not two tokens separated by a space",
                                     a->k_merges, i, (int)(len > 64 ? 64 : len), m);
            }
            size_t rlen = len - sp - 1;
            /* a merge naming an absent token (or one too long to be a
             * token) is skipped: it could never apply */
            if (sp > QEIL_TOKENIZER_MAX_TOKEN_BYTES || rlen > QEIL_TOKENIZER_MAX_TOKEN_BYTES) continue;
            int32_t l = qeil_tok_find(tk, m, sp), r = qeil_tok_find(tk, m + sp + 1, rlen);
            if (l < 0 || r < 0) continue;
            memcpy(cat, m, sp);
            memcpy(cat + sp, m + sp + 1, rlen);
            int32_t res = qeil_tok_find(tk, cat, sp + rlen);
            if (res < 0) continue;
            merge_insert(tk, l, r, (int32_t)i, res);
        }
        qeil_free(ctx, cat);
        if (tk->n_merges < a->n_merges)
            qeil_ctx_log(ctx, QEIL_LOG_DEBUG, "tokenizer: %zu of %zu merges name absent tokens or repeat a pair; skipped",
                         a->n_merges - tk->n_merges, a->n_merges);
    }

    qeil_status sst = build_specials(ctx, tk);
    if (sst != QEIL_OK) {
        qeil_tokenizer_free(tk);
        return sst;
    }
    build_nocut(tk);
    *out = tk;
    return QEIL_OK;
}

qeil_status qeil_tokenizer_create(qeil_ctx *ctx, const qeil_tokenizer_spec *spec,
                                  qeil_tokenizer **out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "tokenizer: out is NULL");
    *out = NULL;
    if (!spec) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "tokenizer: spec is NULL");
    if (!spec->tokens) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "tokens: NULL");
    if (spec->n_vocab == 0 || spec->n_vocab > QEIL_TOKENIZER_MAX_VOCAB)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "tokens: %zu tokens (allowed 1..%u)",
                             spec->n_vocab, QEIL_TOKENIZER_MAX_VOCAB);
    if (spec->n_merges > QEIL_TOKENIZER_MAX_MERGES)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "merges: %zu merges (allowed 0..%u)",
                             spec->n_merges, QEIL_TOKENIZER_MAX_MERGES);
    if (spec->add_bos != 0 && spec->add_bos != 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "add_bos: %d (allowed 0, 1)", spec->add_bos);
    size_t *tl = qeil_malloc(ctx, spec->n_vocab * sizeof *tl);
    size_t *ml = qeil_malloc(ctx, (spec->n_merges ? spec->n_merges : 1) * sizeof *ml);
    if (!tl || !ml) {
        qeil_free(ctx, tl);
        qeil_free(ctx, ml);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "tokenizer: out of memory");
    }
    for (size_t i = 0; i < spec->n_vocab; i++)
        tl[i] = spec->tokens[i] ? strnlen(spec->tokens[i], QEIL_TOKENIZER_MAX_TOKEN_BYTES + 1) : 0;
    for (size_t i = 0; i < spec->n_merges; i++)
        ml[i] = spec->merges && spec->merges[i]
                    ? strnlen(spec->merges[i], 2 * QEIL_TOKENIZER_MAX_TOKEN_BYTES + 2)
                    : 0;
    build_args a = {
        .kind = spec->kind,
        .pre = spec->pre,
        .n_vocab = spec->n_vocab,
        .tok = spec->tokens,
        .tok_len = tl,
        .scores = spec->scores,
        .types = spec->types,
        .n_merges = spec->n_merges,
        .merges = spec->merges,
        .merge_len = ml,
        .bos = spec->bos_id,
        .eos = spec->eos_id,
        .unk = spec->unk_id,
        .add_bos = spec->add_bos,
        .spm_prefix = !spec->spm_no_space_prefix,
        .k_tokens = "tokens",
        .k_scores = "scores",
        .k_types = "types",
        .k_merges = "merges",
        .k_bos = "bos_id",
        .k_eos = "eos_id",
        .k_unk = "unk_id",
    };
    qeil_status st = build(ctx, &a, out);
    qeil_free(ctx, tl);
    qeil_free(ctx, ml);
    return st;
}

/* ------------------------------------------------------------------------ */
/* From GGUF                                                                 */
/* ------------------------------------------------------------------------ */

#define K_MODEL "tokenizer.ggml.model"
#define K_TOKENS "tokenizer.ggml.tokens"
#define K_SCORES "tokenizer.ggml.scores"
#define K_TYPES "tokenizer.ggml.token_type"
#define K_MERGES "tokenizer.ggml.merges"
#define K_PRE "tokenizer.ggml.pre"
#define K_BOS "tokenizer.ggml.bos_token_id"
#define K_EOS "tokenizer.ggml.eos_token_id"
#define K_UNK "tokenizer.ggml.unknown_token_id"
#define K_ADD_BOS "tokenizer.ggml.add_bos_token"
#define K_SPACE_PREFIX "tokenizer.ggml.add_space_prefix"

/* A string array's key index and length; required: missing -> FORMAT. */
static qeil_status gguf_str_array(qeil_ctx *ctx, const qeil_gguf *g, const char *key, int required,
                                  int64_t *idx, uint64_t *n)
{
    *idx = qeil_gguf_find_key(g, key);
    *n = 0;
    if (*idx < 0) {
        if (required) return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: missing", key);
        return QEIL_OK;
    }
    qeil_gguf_vtype et;
    qeil_status st = qeil_gguf_get_arr(ctx, g, key, &et, n);
    if (st != QEIL_OK) return st == QEIL_ERR_NOTFOUND ? QEIL_ERR_FORMAT : st;
    if (et != QEIL_GGUF_STRING)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: array of type %d, expected strings (8)",
                             key, (int)et);
    return QEIL_OK;
}

/* A numeric array of exactly n elements (optional); *idx = -1 if absent. */
static qeil_status gguf_num_array(qeil_ctx *ctx, const qeil_gguf *g, const char *key, uint64_t n,
                                  int64_t *idx)
{
    *idx = qeil_gguf_find_key(g, key);
    if (*idx < 0) return QEIL_OK;
    qeil_gguf_vtype et;
    uint64_t m = 0;
    qeil_status st = qeil_gguf_get_arr(ctx, g, key, &et, &m);
    if (st != QEIL_OK) return st == QEIL_ERR_NOTFOUND ? QEIL_ERR_FORMAT : st;
    if (et == QEIL_GGUF_STRING || et == QEIL_GGUF_ARRAY || et == QEIL_GGUF_BOOL)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: array of type %d, expected numbers", key,
                             (int)et);
    if (m != n)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: %llu entries but %s has %llu", key,
                             (unsigned long long)m, K_TOKENS, (unsigned long long)n);
    return QEIL_OK;
}

/* Optional token id: absent, -1 or 0xFFFFFFFF (llama.cpp's "none") -> -1. */
static qeil_status gguf_token_id(qeil_ctx *ctx, const qeil_gguf *g, const char *key,
                                 uint64_t n_vocab, int32_t *out)
{
    *out = -1;
    if (qeil_gguf_find_key(g, key) < 0) return QEIL_OK;
    int64_t v;
    qeil_status st = qeil_gguf_get_i64(ctx, g, key, &v);
    if (st != QEIL_OK) return st;
    if (v == -1 || v == 0xFFFFFFFFll) return QEIL_OK;
    if (v < 0 || (uint64_t)v >= n_vocab)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: %lld is not a token id (allowed 0..%llu)",
                             key, (long long)v, (unsigned long long)(n_vocab - 1));
    *out = (int32_t)v;
    return QEIL_OK;
}

static qeil_status gguf_flag(qeil_ctx *ctx, const qeil_gguf *g, const char *key, int dflt,
                             int *out)
{
    *out = dflt;
    if (qeil_gguf_find_key(g, key) < 0) return QEIL_OK;
    return qeil_gguf_get_bool(ctx, g, key, out);
}

qeil_status qeil_tokenizer_from_gguf(qeil_ctx *ctx, const qeil_gguf *g, qeil_tokenizer **out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "tokenizer: out is NULL");
    *out = NULL;
    if (!g) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "tokenizer: gguf is NULL");

    build_args a = {
        .k_tokens = K_TOKENS,
        .k_scores = K_SCORES,
        .k_types = K_TYPES,
        .k_merges = K_MERGES,
        .k_bos = K_BOS,
        .k_eos = K_EOS,
        .k_unk = K_UNK,
    };
    const char *model = qeil_gguf_get_str(g, K_MODEL);
    if (!model) {
        if (qeil_gguf_find_key(g, K_MODEL) >= 0)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: not a string", K_MODEL);
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: missing", K_MODEL);
    }
    if (strcmp(model, "llama") == 0)
        a.kind = QEIL_TOK_SPM;
    else if (strcmp(model, "gpt2") == 0)
        a.kind = QEIL_TOK_BPE;
    else
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "%s: '%.64s' is not supported (supported: llama, gpt2)", K_MODEL, model);

    a.pre = QEIL_PRE_GPT2;
    if (a.kind == QEIL_TOK_BPE && qeil_gguf_find_key(g, K_PRE) >= 0) {
        const char *pre = qeil_gguf_get_str(g, K_PRE);
        if (!pre) return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: not a string", K_PRE);
        /* llama.cpp's converter writes "gpt-2" for GPT-2 files */
        if (strcmp(pre, "gpt2") == 0 || strcmp(pre, "gpt-2") == 0 || strcmp(pre, "default") == 0)
            a.pre = QEIL_PRE_GPT2;
        else if (strcmp(pre, "llama-bpe") == 0 || strcmp(pre, "llama3") == 0 ||
                 strcmp(pre, "lfm2") == 0) /* llama-vocab.cpp: lfm2 is LLAMA3's split */
            a.pre = QEIL_PRE_LLAMA3;
        else if (strcmp(pre, "qwen2") == 0)
            a.pre = QEIL_PRE_QWEN2;
        else
            return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                                 "%s: '%.64s' is not supported (supported: default, gpt2, gpt-2, "
                                 "llama-bpe, llama3, lfm2, qwen2)",
                                 K_PRE, pre);
    }

    int64_t ki_tok, ki_scores, ki_types, ki_merges;
    uint64_t n = 0, n_merges = 0;
    qeil_status st = gguf_str_array(ctx, g, K_TOKENS, 1, &ki_tok, &n);
    if (st != QEIL_OK) return st;
    if (n == 0 || n > QEIL_TOKENIZER_MAX_VOCAB)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: %llu tokens (allowed 1..%u)", K_TOKENS,
                             (unsigned long long)n, QEIL_TOKENIZER_MAX_VOCAB);
    if ((st = gguf_num_array(ctx, g, K_SCORES, n, &ki_scores)) != QEIL_OK) return st;
    if ((st = gguf_num_array(ctx, g, K_TYPES, n, &ki_types)) != QEIL_OK) return st;
    if (a.kind == QEIL_TOK_BPE) {
        if ((st = gguf_str_array(ctx, g, K_MERGES, 1, &ki_merges, &n_merges)) != QEIL_OK) return st;
        if (n_merges > QEIL_TOKENIZER_MAX_MERGES)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: %llu merges (allowed 0..%u)", K_MERGES,
                                 (unsigned long long)n_merges, QEIL_TOKENIZER_MAX_MERGES);
    }
    if ((st = gguf_token_id(ctx, g, K_BOS, n, &a.bos)) != QEIL_OK) return st;
    if ((st = gguf_token_id(ctx, g, K_EOS, n, &a.eos)) != QEIL_OK) return st;
    if ((st = gguf_token_id(ctx, g, K_UNK, n, &a.unk)) != QEIL_OK) return st;
    /* add_bos default: SentencePiece models add BOS (when they have one),
     * byte-level BPE models do not (llama.cpp's defaults). */
    if ((st = gguf_flag(ctx, g, K_ADD_BOS, a.kind == QEIL_TOK_SPM && a.bos >= 0, &a.add_bos)) !=
        QEIL_OK)
        return st;
    if ((st = gguf_flag(ctx, g, K_SPACE_PREFIX, 1, &a.spm_prefix)) != QEIL_OK) return st;

    const char **tok = qeil_malloc(ctx, n * sizeof *tok);
    size_t *tl = qeil_malloc(ctx, n * sizeof *tl);
    float *scores = ki_scores >= 0 ? qeil_malloc(ctx, n * sizeof *scores) : NULL;
    int32_t *types = ki_types >= 0 ? qeil_malloc(ctx, n * sizeof *types) : NULL;
    const char **mg = qeil_malloc(ctx, (n_merges ? n_merges : 1) * sizeof *mg);
    size_t *ml = qeil_malloc(ctx, (n_merges ? n_merges : 1) * sizeof *ml);
    if (!tok || !tl || !mg || !ml || (ki_scores >= 0 && !scores) || (ki_types >= 0 && !types)) {
        st = qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "tokenizer: out of memory for %llu tokens",
                           (unsigned long long)n);
        goto done;
    }
    for (uint64_t i = 0; i < n; i++) {
        tok[i] = qeil_gguf_arr_str(g, ki_tok, i, &tl[i]);
        if (!tok[i]) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s[%llu]: unreadable", K_TOKENS,
                               (unsigned long long)i);
            goto done;
        }
        if (scores) scores[i] = (float)qeil_gguf_arr_f64(g, ki_scores, i);
        if (types) {
            double t = qeil_gguf_arr_f64(g, ki_types, i);
            if (!(t >= 0 && t <= QEIL_TOKTYPE_BYTE) || t != floor(t)) {
                st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s[%llu]: type %g (allowed 0..6)",
                                   K_TYPES, (unsigned long long)i, t);
                goto done;
            }
            types[i] = (int32_t)t;
        }
    }
    for (uint64_t i = 0; i < n_merges; i++) {
        mg[i] = qeil_gguf_arr_str(g, ki_merges, i, &ml[i]);
        if (!mg[i]) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s[%llu]: unreadable", K_MERGES,
                               (unsigned long long)i);
            goto done;
        }
    }
    a.n_vocab = n;
    a.tok = tok;
    a.tok_len = tl;
    a.scores = scores;
    a.types = types;
    a.n_merges = n_merges;
    a.merges = mg;
    a.merge_len = ml;
    st = build(ctx, &a, out);
done:
    qeil_free(ctx, tok);
    qeil_free(ctx, tl);
    qeil_free(ctx, scores);
    qeil_free(ctx, types);
    qeil_free(ctx, mg);
    qeil_free(ctx, ml);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Accessors, pieces, decode                                                 */
/* ------------------------------------------------------------------------ */

size_t qeil_tokenizer_n_vocab(const qeil_tokenizer *tk) { return tk ? tk->n_vocab : 0; }

size_t qeil_tokenizer_memory_use(const qeil_tokenizer *tk)
{
    if (!tk) return 0;
    const size_t n = tk->n_vocab;
    return sizeof *tk + tk->off[n] /* text */ + (n + 1) * sizeof *tk->off + n * sizeof *tk->scores +
           n /* types */ + tk->dec_off[n] + (n + 1) * sizeof *tk->dec_off +
           ((size_t)tk->vmask + 1) * sizeof *tk->vhash +
           (tk->mhash ? ((size_t)tk->mmask + 1) * sizeof *tk->mhash : 0) +
           (size_t)tk->n_special * sizeof *tk->special;
}
int32_t qeil_tokenizer_bos(const qeil_tokenizer *tk) { return tk ? tk->bos : -1; }
int32_t qeil_tokenizer_eos(const qeil_tokenizer *tk) { return tk ? tk->eos : -1; }
int32_t qeil_tokenizer_unk(const qeil_tokenizer *tk) { return tk ? tk->unk : -1; }
qeil_tok_kind qeil_tokenizer_kind(const qeil_tokenizer *tk) { return tk ? tk->kind : QEIL_TOK_SPM; }
qeil_pretok qeil_tokenizer_pre(const qeil_tokenizer *tk) { return tk ? tk->pre : QEIL_PRE_GPT2; }
int qeil_tokenizer_add_bos(const qeil_tokenizer *tk) { return tk ? tk->add_bos : 0; }

static int valid_id(const qeil_tokenizer *tk, int32_t id)
{
    return tk && id >= 0 && (uint32_t)id < tk->n_vocab;
}

const char *qeil_tokenizer_token(const qeil_tokenizer *tk, int32_t id, size_t *len)
{
    if (len) *len = 0;
    if (!valid_id(tk, id)) return NULL;
    if (len) *len = tok_len(tk, (uint32_t)id);
    return tk->text + tk->off[id];
}

int qeil_tokenizer_token_type(const qeil_tokenizer *tk, int32_t id)
{
    return valid_id(tk, id) ? tk->types[id] : -1;
}

int32_t qeil_tokenizer_find(const qeil_tokenizer *tk, const char *text, size_t len)
{
    if (!tk || (!text && len)) return -1;
    return qeil_tok_find(tk, text ? text : "", len);
}

size_t qeil_tokenizer_piece(const qeil_tokenizer *tk, int32_t id, char *buf, size_t cap)
{
    if (!valid_id(tk, id)) return 0;
    size_t n = tk->dec_off[id + 1] - tk->dec_off[id];
    if (n > cap) n = cap;
    if (n) memcpy(buf, tk->dec + tk->dec_off[id], n);
    return n;
}

size_t qeil_tokenizer_decode(const qeil_tokenizer *tk, const int32_t *ids, size_t n, char *text,
                             size_t cap)
{
    size_t total = 0;
    /* SentencePiece drops the space its dummy prefix put before the first
     * word: the first token that gives any text loses one leading space if
     * it is a text piece spelled with U+2581 first. */
    int strip = tk && tk->kind == QEIL_TOK_SPM && tk->spm_prefix;
    for (size_t i = 0; tk && ids && i < n; i++) {
        int32_t id = ids[i];
        if (!valid_id(tk, id)) continue; /* documented: invalid ids decode to nothing */
        const char *p = tk->dec + tk->dec_off[id];
        size_t len = tk->dec_off[id + 1] - tk->dec_off[id];
        if (strip && len > 0) {
            const char *raw = tk->text + tk->off[id];
            if (tk->types[id] != QEIL_TOKTYPE_BYTE && tok_len(tk, (uint32_t)id) >= 3 &&
                memcmp(raw, "\xE2\x96\x81", 3) == 0 && p[0] == ' ') {
                p++;
                len--;
            }
            strip = 0;
        }
        if (text && cap > 0 && total < cap - 1) {
            size_t room = cap - 1 - total;
            memcpy(text + total, p, len < room ? len : room);
        }
        total += len;
    }
    if (text && cap > 0) text[total < cap - 1 ? total : cap - 1] = '\0';
    return total;
}
