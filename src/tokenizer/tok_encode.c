/*
 * tok_encode.c — text -> token ids.
 *
 * Both model kinds share one merge engine: the text to merge is a doubly
 * linked list of symbols, every adjacent pair that could merge sits in a
 * binary max-heap, and the best pair is merged until none is left
 * (SentencePiece's bpe_model.cc scheme; llama.cpp's llm_tokenizer_spm/bpe).
 * A merge only grows the left symbol, so an entry whose recorded span size
 * no longer equals left+right is stale and is dropped when popped. Cost is
 * O(n log n) per fragment, memory O(n), no recursion.
 *
 *   SPM: symbols are UTF-8 characters of the normalised text (" " -> U+2581,
 *        a U+2581 prefixed); a pair merges when its concatenation is a text
 *        token; priority = that token's score, ties -> leftmost.
 *   BPE: the text is first split by the pre-tokenizer (tok_pretok.c); in
 *        each word, symbols are bytes (= GPT-2 byte symbols); a pair merges
 *        when (left id, right id) is in the merge table; priority = lowest
 *        rank, ties -> leftmost.
 *
 * Special tokens are cut out of the text first (leftmost, then longest
 * match); the pieces between them are encoded independently.
 */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

#include <string.h>

typedef struct {
    uint32_t start, len; /* bytes in the fragment buffer; len 0 = merged away */
    int32_t prev, next;  /* neighbours, -1 at the ends */
    int32_t id;          /* token of the span, -1 unknown (yet) */
    int32_t rec;         /* SPM: merge record that made it, -1 for a character */
} sym;

typedef struct {
    float prio;    /* SPM: score of the merged token; BPE: -rank. Higher first */
    uint32_t left; /* symbol index */
    uint32_t size; /* bytes of left + right when pushed */
    int32_t id;    /* the merged token */
} bigram;

/* SPM merge history, kept so that merges into UNUSED tokens can be undone
 * at output as SentencePiece does. A child >= 0 is a record, < 0 is the
 * character starting at byte -(child + 1) of the buffer. */
typedef struct {
    int32_t id;
    int32_t child[2];
} merge_rec;

typedef struct {
    qeil_ctx *ctx;
    const qeil_tokenizer *tk;
    int32_t *ids; /* output: first cap ids kept, n counts all */
    size_t cap, n;
    sym *sym;
    size_t sym_cap;
    bigram *heap;
    size_t heap_n, heap_cap;
    merge_rec *rec;
    size_t rec_n, rec_cap;
    uint8_t *buf;
    size_t buf_cap;
    int32_t *stack; /* SPM resegmentation */
    size_t stack_cap;
} enc;

static void emit(enc *e, int32_t id)
{
    if (e->n < e->cap) e->ids[e->n] = id;
    e->n++;
}

/* Make *p hold at least need elements of elem bytes (doubling). */
static qeil_status grow(enc *e, void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return QEIL_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return qeil_ctx_fail(e->ctx, QEIL_ERR_NOMEM, "tokenizer: encode buffer overflow");
        c *= 2;
    }
    void *q = qeil_realloc(e->ctx, *p, c * elem);
    if (!q)
        return qeil_ctx_fail(e->ctx, QEIL_ERR_NOMEM, "tokenizer: out of memory (%zu bytes of scratch)",
                             c * elem);
    *p = q;
    *cap = c;
    return QEIL_OK;
}

#define GROW(e, arr, capf, need) grow((e), (void **)&(e)->arr, &(e)->capf, (need), sizeof *(e)->arr)

/* ------------------------------------------------------------------------ */
/* Heap of candidate pairs                                                   */
/* ------------------------------------------------------------------------ */

static int before(const bigram *a, const bigram *b)
{
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

static qeil_status heap_push(enc *e, bigram b)
{
    qeil_status st = GROW(e, heap, heap_cap, e->heap_n + 1);
    if (st != QEIL_OK) return st;
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&b, &e->heap[p])) break;
        e->heap[i] = e->heap[p];
        i = p;
    }
    e->heap[i] = b;
    return QEIL_OK;
}

static bigram heap_pop(enc *e)
{
    bigram top = e->heap[0], last = e->heap[--e->heap_n];
    size_t i = 0, n = e->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&e->heap[c + 1], &e->heap[c])) c++;
        if (!before(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n) e->heap[i] = last;
    return top;
}

/* ------------------------------------------------------------------------ */
/* Fallback for spans no token spells                                        */
/* ------------------------------------------------------------------------ */

/* Byte tokens for every byte of the span; if one is missing, the unknown
 * token once for the whole span; if there is none either, an error. */
static qeil_status fallback(enc *e, const uint8_t *s, size_t n)
{
    const qeil_tokenizer *tk = e->tk;
    size_t i = 0;
    while (i < n && tk->byte_tok[s[i]] >= 0) i++;
    if (i == n) {
        for (i = 0; i < n; i++) emit(e, tk->byte_tok[s[i]]);
        return QEIL_OK;
    }
    if (tk->unk >= 0) {
        emit(e, tk->unk);
        return QEIL_OK;
    }
    return qeil_ctx_fail(e->ctx, QEIL_ERR_FORMAT,
                         "tokenizer: byte 0x%02X has no token and the vocabulary has no unknown token",
                         s[i]);
}

/* ------------------------------------------------------------------------ */
/* Merge loop                                                                */
/* ------------------------------------------------------------------------ */

static qeil_status try_pair(enc *e, int32_t l, int32_t r)
{
    const qeil_tokenizer *tk = e->tk;
    const sym *L = &e->sym[l], *R = &e->sym[r];
    uint32_t size = L->len + R->len;
    bigram b = {0.0f, (uint32_t)l, size, -1};
    if (tk->kind == QEIL_TOK_SPM) {
        if (size > tk->max_len) return QEIL_OK;
        int32_t id = qeil_tok_find(tk, (const char *)e->buf + L->start, size);
        if (id < 0 || !tok_type_is_text(tk->types[id])) return QEIL_OK;
        b.prio = tk->scores[id];
        b.id = id;
    } else {
        if (L->id < 0 || R->id < 0 || !tk->mhash) return QEIL_OK;
        uint64_t key = (uint64_t)(uint32_t)L->id << 32 | (uint32_t)R->id;
        uint32_t h = (uint32_t)tok_mix64(key) & tk->mmask;
        for (;;) {
            const tok_merge_slot *m = &tk->mhash[h];
            if (m->key == TOK_MERGE_EMPTY) return QEIL_OK;
            if (m->key == key) {
                b.prio = -(float)m->rank; /* exact: rank < 2^24 */
                b.id = m->result;
                break;
            }
            h = (h + 1) & tk->mmask;
        }
    }
    return heap_push(e, b);
}

/* Merge e->sym[0 .. nsym) (linked in order) until no pair applies. */
static qeil_status merge_all(enc *e, size_t nsym)
{
    qeil_status st;
    e->heap_n = 0;
    for (size_t i = 1; i < nsym; i++)
        if ((st = try_pair(e, (int32_t)i - 1, (int32_t)i)) != QEIL_OK) return st;
    while (e->heap_n > 0) {
        bigram b = heap_pop(e);
        sym *L = &e->sym[b.left];
        if (L->len == 0 || L->next < 0) continue;
        sym *R = &e->sym[L->next];
        if (L->len + R->len != b.size) continue; /* one side changed since the push */
        if (e->tk->kind == QEIL_TOK_SPM) {
            if ((st = GROW(e, rec, rec_cap, e->rec_n + 1)) != QEIL_OK) return st;
            merge_rec *m = &e->rec[e->rec_n];
            m->id = b.id;
            m->child[0] = L->rec >= 0 ? L->rec : -(int32_t)L->start - 1;
            m->child[1] = R->rec >= 0 ? R->rec : -(int32_t)R->start - 1;
            L->rec = (int32_t)e->rec_n++;
        }
        L->len += R->len;
        L->id = b.id;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) e->sym[R->next].prev = (int32_t)b.left;
        if (L->prev >= 0 && (st = try_pair(e, L->prev, (int32_t)b.left)) != QEIL_OK) return st;
        if (L->next >= 0 && (st = try_pair(e, (int32_t)b.left, L->next)) != QEIL_OK) return st;
    }
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* SentencePiece                                                             */
/* ------------------------------------------------------------------------ */

/* Emit the SPM character starting at buf[start]: its token, else bytes. */
static qeil_status spm_char(enc *e, uint32_t start, size_t avail)
{
    uint32_t cp;
    size_t k = qeil_utf8_decode(e->buf + start, avail, &cp);
    int32_t id = qeil_tok_find(e->tk, (const char *)e->buf + start, k);
    if (id >= 0 && tok_type_is_text(e->tk->types[id])) {
        emit(e, id);
        return QEIL_OK;
    }
    return fallback(e, e->buf + start, k);
}

/* Emit merge record r, splitting records whose token is UNUSED back into
 * their two halves (SentencePiece's resegmentation), with an explicit
 * stack: depth is bounded by the number of merges, not the C stack. */
static qeil_status spm_emit_rec(enc *e, int32_t r, size_t m)
{
    qeil_status st;
    size_t top = 0;
    if ((st = GROW(e, stack, stack_cap, 1)) != QEIL_OK) return st;
    e->stack[top++] = r;
    while (top > 0) {
        int32_t x = e->stack[--top];
        if (x < 0) {
            uint32_t start = (uint32_t)(-(x + 1));
            if ((st = spm_char(e, start, m - start)) != QEIL_OK) return st;
            continue;
        }
        const merge_rec *mr = &e->rec[x];
        if (e->tk->types[mr->id] != QEIL_TOKTYPE_UNUSED) {
            emit(e, mr->id);
            continue;
        }
        if ((st = GROW(e, stack, stack_cap, top + 2)) != QEIL_OK) return st;
        e->stack[top++] = mr->child[1]; /* right after left */
        e->stack[top++] = mr->child[0];
    }
    return QEIL_OK;
}

static qeil_status spm_piece(enc *e, const uint8_t *s, size_t n, int prefix)
{
    qeil_status st;
    size_t spaces = 0;
    for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
    size_t m = n + 2 * spaces + (prefix ? 3 : 0); /* < 2^30 by the text limit */
    if ((st = GROW(e, buf, buf_cap, m)) != QEIL_OK) return st;
    size_t w = 0;
    if (prefix) {
        memcpy(e->buf, "\xE2\x96\x81", 3);
        w = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(e->buf + w, "\xE2\x96\x81", 3);
            w += 3;
        } else {
            e->buf[w++] = s[i];
        }
    }
    if ((st = GROW(e, sym, sym_cap, m)) != QEIL_OK) return st;
    size_t nsym = 0;
    for (size_t i = 0; i < m;) {
        uint32_t cp;
        size_t k = qeil_utf8_decode(e->buf + i, m - i, &cp);
        sym *y = &e->sym[nsym];
        y->start = (uint32_t)i;
        y->len = (uint32_t)k;
        y->prev = (int32_t)nsym - 1;
        y->next = (int32_t)nsym + 1;
        y->id = -1;
        y->rec = -1;
        nsym++;
        i += k;
    }
    if (nsym == 0) return QEIL_OK;
    e->sym[nsym - 1].next = -1;
    e->rec_n = 0;
    if ((st = merge_all(e, nsym)) != QEIL_OK) return st;
    for (int32_t i = 0; i >= 0; i = e->sym[i].next) {
        const sym *y = &e->sym[i];
        st = y->rec >= 0 ? spm_emit_rec(e, y->rec, m) : spm_char(e, y->start, m - y->start);
        if (st != QEIL_OK) return st;
    }
    return QEIL_OK;
}

/* Cut points (see qeil_tokenizer_cut): both bytes ASCII, so no UTF-8
 * character is split; not a pair that a token could hold across the cut;
 * for BPE also a letter or digit followed by a space or newline, where each
 * pre-tokenizer regex ends a piece (docs/tokenizer.md, "Encoding in
 * pieces"). */
static int can_cut(const qeil_tokenizer *tk, uint8_t a, uint8_t b)
{
    if (a >= 0x80 || b >= 0x80) return 0;
    if (tk->kind == QEIL_TOK_BPE) {
        int alnum = (a >= '0' && a <= '9') || (a >= 'A' && a <= 'Z') || (a >= 'a' && a <= 'z');
        if (!alnum || (b != ' ' && b != '\n')) return 0;
    }
    /* SPM tokens are spelled with U+2581 (E2 96 81) for a space */
    uint8_t na = a == ' ' ? 0x81 : a, nb = b == ' ' ? 0xE2 : b;
    return !tok_nocut(tk, a, b) && !tok_nocut(tk, na, nb);
}

/* A cut of s[0..n) near want (< n): the last one at or before want, else
 * the first after it, else n (none). */
static size_t cut_near(const qeil_tokenizer *tk, const uint8_t *s, size_t n, size_t want)
{
    for (size_t p = want; p >= 1; p--)
        if (can_cut(tk, s[p - 1], s[p])) return p;
    for (size_t p = want + 1; p < n; p++)
        if (can_cut(tk, s[p - 1], s[p])) return p;
    return n;
}

/* An SPM run in pieces of about chunk_b bytes: no token spans a cut, so the
 * merges on either side never meet and the tokens are those of the whole
 * run; only the first piece gets the dummy prefix. */
static qeil_status spm_fragment(enc *e, const uint8_t *s, size_t n, int prefix, size_t chunk_b)
{
    while (n > chunk_b) {
        size_t p = cut_near(e->tk, s, n, chunk_b);
        if (p >= n) break;
        qeil_status st = spm_piece(e, s, p, prefix);
        if (st != QEIL_OK) return st;
        s += p;
        n -= p;
        prefix = 0;
    }
    return spm_piece(e, s, n, prefix);
}

size_t qeil_tokenizer_cut(const qeil_tokenizer *tk, const char *text, size_t len)
{
    if (!tk || !text) return 0;
    const uint8_t *s = (const uint8_t *)text;
    for (size_t p = len; p-- > 1;)
        if (can_cut(tk, s[p - 1], s[p])) return p;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Byte-level BPE                                                            */
/* ------------------------------------------------------------------------ */

static qeil_status bpe_word(enc *e, const uint8_t *w, size_t n)
{
    const qeil_tokenizer *tk = e->tk;
    qeil_status st;
    /* Llama-3 (ignore_merges in its tokenizer.json): a word that is itself
     * a token is emitted whole, whatever the merges would make of it. */
    if (tk->ignore_merges && n <= tk->max_len) {
        if ((st = GROW(e, buf, buf_cap, 2 * n)) != QEIL_OK) return st;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) m += qeil_utf8_encode(tk->byte_cp[w[i]], e->buf + m);
        int32_t id = m <= tk->max_len ? qeil_tok_find(tk, (const char *)e->buf, m) : -1;
        if (id >= 0 && tok_type_is_text(tk->types[id])) {
            emit(e, id);
            return QEIL_OK;
        }
    }
    if ((st = GROW(e, sym, sym_cap, n)) != QEIL_OK) return st;
    for (size_t i = 0; i < n; i++) {
        sym *y = &e->sym[i];
        y->start = (uint32_t)i;
        y->len = 1;
        y->prev = (int32_t)i - 1;
        y->next = i + 1 < n ? (int32_t)i + 1 : -1;
        y->id = tk->byte_tok[w[i]];
        y->rec = -1;
    }
    if ((st = merge_all(e, n)) != QEIL_OK) return st;
    for (int32_t i = 0; i >= 0; i = e->sym[i].next) {
        const sym *y = &e->sym[i];
        if (y->id >= 0)
            emit(e, y->id);
        else if ((st = fallback(e, w + y->start, y->len)) != QEIL_OK)
            return st;
    }
    return QEIL_OK;
}

static qeil_status bpe_fragment(enc *e, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = qeil_pretok_next(e->tk->pre, s, n, i);
        qeil_status st = bpe_word(e, s + i, j - i);
        if (st != QEIL_OK) return st;
        i = j;
    }
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Special tokens and the entry point                                        */
/* ------------------------------------------------------------------------ */

/* Whether every byte of s[i..i+l) may be a special token's (mask NULL: all). */
static int mask_all(const uint8_t *mask, size_t i, size_t l)
{
    if (!mask) return 1;
    for (size_t k = 0; k < l; k++)
        if (!mask[i + k]) return 0;
    return 1;
}

/* Longest enabled special token spelled at s[i..n), or -1. With a mask, a
 * CONTROL token counts only where the mask allows all of its bytes. */
static int32_t special_at(const qeil_tokenizer *tk, const uint8_t *s, size_t n, size_t i,
                          int parse_special, const uint8_t *mask, size_t *len)
{
    uint8_t b = s[i];
    for (uint32_t k = tk->special_first[b]; k < tk->special_first[b + 1]; k++) {
        int32_t id = tk->special[k];
        size_t l = tk->off[id + 1] - tk->off[id] - 1;
        if (tk->types[id] != QEIL_TOKTYPE_USER_DEFINED &&
            (!parse_special || (l <= n - i && !mask_all(mask, i, l))))
            continue;
        if (l <= n - i && memcmp(tk->text + tk->off[id], s + i, l) == 0) {
            *len = l;
            return id;
        }
    }
    return -1;
}

/* A run of text between special tokens. Every such run starts the text or
 * follows a special token, and SPM gives each one the dummy-prefix space
 * (llama.cpp's is_prev_special rule; SentencePiece only sees one run) —
 * except a run that continues the previous piece of a text (cont). */
static qeil_status fragment(enc *e, const uint8_t *s, size_t n, int cont, size_t chunk_b)
{
    if (n == 0) return QEIL_OK;
    if (e->tk->kind == QEIL_TOK_SPM)
        return spm_fragment(e, s, n, e->tk->spm_prefix && !cont, chunk_b);
    return bpe_fragment(e, s, n);
}

qeil_status qeil_tok_encode(qeil_ctx *ctx, const qeil_tokenizer *tk, const char *text, size_t len,
                            int add_bos, int parse_special, int cont, size_t chunk_b, int32_t *ids,
                            size_t cap, size_t *n_out)
{
    return qeil_tok_encode_mask(ctx, tk, text, len, add_bos, parse_special, NULL, cont, chunk_b, ids,
                                cap, n_out);
}

qeil_status qeil_tok_encode_mask(qeil_ctx *ctx, const qeil_tokenizer *tk, const char *text, size_t len,
                                 int add_bos, int parse_special, const uint8_t *mask, int cont,
                                 size_t chunk_b, int32_t *ids, size_t cap, size_t *n_out)
{
    if (n_out) *n_out = 0;
    if (!tk || !n_out || (!text && len) || (!ids && cap))
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID,
                             "tokenizer encode: NULL argument (tokenizer, text, ids or n_out)");
    if (len > QEIL_TOKENIZER_MAX_TEXT_BYTES)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "text: %zu bytes (allowed 0..%u)", len,
                             QEIL_TOKENIZER_MAX_TEXT_BYTES);
    if (add_bos < -1 || add_bos > 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "add_bos: %d (allowed -1, 0, 1)", add_bos);
    if (add_bos < 0) add_bos = tk->add_bos;
    if (add_bos && tk->bos < 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "add_bos: 1 but the vocabulary has no BOS token");

    enc e;
    memset(&e, 0, sizeof e);
    e.ctx = ctx;
    e.tk = tk;
    e.ids = ids;
    e.cap = cap;
    if (add_bos) emit(&e, tk->bos);

    const uint8_t *s = (const uint8_t *)(text ? text : "");
    int scan = tk->n_special > 0 && (parse_special || tk->has_user_defined);
    size_t seg = 0;
    qeil_status st = QEIL_OK;
    for (size_t i = 0; scan && i < len && st == QEIL_OK;) {
        size_t l = 0;
        int32_t id = tk->special_first[s[i]] < tk->special_first[s[i] + 1]
                         ? special_at(tk, s, len, i, parse_special, mask, &l)
                         : -1;
        if (id < 0) {
            i++;
            continue;
        }
        if (i > seg) st = fragment(&e, s + seg, i - seg, cont && seg == 0, chunk_b);
        emit(&e, id);
        i += l;
        seg = i;
    }
    if (st == QEIL_OK && seg < len) st = fragment(&e, s + seg, len - seg, cont && seg == 0, chunk_b);

    qeil_free(ctx, e.sym);
    qeil_free(ctx, e.heap);
    qeil_free(ctx, e.rec);
    qeil_free(ctx, e.buf);
    qeil_free(ctx, e.stack);
    if (st != QEIL_OK) return st;
    *n_out = e.n;
    if (e.n > cap)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "ids: %zu tokens do not fit in cap %zu", e.n, cap);
    return QEIL_OK;
}

qeil_status qeil_tokenizer_encode_bytes(qeil_ctx *ctx, const qeil_tokenizer *tk, const char *text,
                                        size_t len, int add_bos, int parse_special, int32_t *ids,
                                        size_t cap, size_t *n_out)
{
    return qeil_tok_encode(ctx, tk, text, len, add_bos, parse_special, 0, TOK_CHUNK_B, ids, cap,
                           n_out);
}

qeil_status qeil_tokenizer_encode_more(qeil_ctx *ctx, const qeil_tokenizer *tk, const char *text,
                                       size_t len, int parse_special, int32_t *ids, size_t cap,
                                       size_t *n_out)
{
    return qeil_tok_encode(ctx, tk, text, len, 0, parse_special, 1, TOK_CHUNK_B, ids, cap, n_out);
}

qeil_status qeil_tokenizer_encode(qeil_ctx *ctx, const qeil_tokenizer *tk, const char *text,
                                  int add_bos, int parse_special, int32_t *ids, size_t cap,
                                  size_t *n_out)
{
    if (!text) {
        if (n_out) *n_out = 0;
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "tokenizer encode: text is NULL");
    }
    return qeil_tokenizer_encode_bytes(ctx, tk, text, strlen(text), add_bos, parse_special, ids, cap,
                                       n_out);
}
