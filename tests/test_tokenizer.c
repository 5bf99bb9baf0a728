/*
 * test_tokenizer.c — SPM against SentencePiece's own output (golden files
 * written by tests/ref/spm_oracle.py), byte-level BPE against hand-worked
 * cases on a tiny vocabulary, the three pre-tokenizer splits, the GGUF
 * path, and hostile input.
 */
#include "qeil/tokenizer.h"
#include "tokenizer/tok_internal.h"
#include "test.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static qeil_ctx *ctx;

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* tests/ (the directory of this file), or $QEIL_TEST_DIR. */
static void tests_dir(char *out, size_t cap)
{
    const char *env = getenv("QEIL_TEST_DIR");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    snprintf(out, cap, "%s", __FILE__);
    char *slash = strrchr(out, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(out, cap, ".");
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode hex[0..n) into a fresh NUL-terminated buffer; *len = bytes. */
static char *unhex(const char *hex, size_t n, size_t *len)
{
    char *out = malloc(n / 2 + 1);
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        int a = hexval(hex[i]), b = hexval(hex[i + 1]);
        if (a < 0 || b < 0) {
            free(out);
            return NULL;
        }
        out[k++] = (char)(a * 16 + b);
    }
    out[k] = '\0';
    if (len) *len = k;
    return out;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* Split buf into lines in place; returns count, lines[] point into buf. */
static size_t split_lines(char *buf, char **lines, size_t max)
{
    size_t n = 0;
    char *p = buf;
    while (*p && n < max) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }
    return n;
}

/* Value of "key=N" in a "#meta ..." line, or def. */
static long meta_int(const char *meta, const char *key, long def)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(meta, pat);
    return p ? strtol(p + strlen(pat), NULL, 10) : def;
}

/* ------------------------------------------------------------------------ */
/* The SentencePiece oracle's vocabulary                                     */
/* ------------------------------------------------------------------------ */

#define MAX_LINES 4096

typedef struct {
    size_t n;
    char *tok[MAX_LINES];
    float score[MAX_LINES];
    int32_t type[MAX_LINES];
    int32_t bos, eos, unk;
    char meta[256];
} spm_vocab;

static int load_spm_vocab(spm_vocab *v)
{
    char dir[1024], path[1200];
    tests_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/data/tokenizer/spm_vocab.tsv", dir);
    char *buf = read_file(path, NULL);
    if (!buf) {
        printf("  cannot read %s\n", path);
        return 0;
    }
    static char *lines[MAX_LINES + 8];
    size_t nl = split_lines(buf, lines, MAX_LINES + 8);
    memset(v, 0, sizeof *v);
    for (size_t i = 0; i < nl; i++) {
        if (strncmp(lines[i], "#meta", 5) == 0) {
            snprintf(v->meta, sizeof v->meta, "%s", lines[i]);
            continue;
        }
        if (lines[i][0] == '#' || lines[i][0] == '\0') continue;
        char *f[4];
        f[0] = lines[i];
        for (int k = 1; k < 4; k++) {
            f[k] = f[k - 1] ? strchr(f[k - 1], '\t') : NULL;
            if (f[k]) *f[k]++ = '\0';
        }
        if (!f[3] || (size_t)strtol(f[0], NULL, 10) != v->n || v->n >= MAX_LINES) {
            free(buf);
            printf("  %s: bad line %zu\n", path, i + 1);
            return 0;
        }
        v->type[v->n] = (int32_t)strtol(f[1], NULL, 10);
        v->score[v->n] = strtof(f[2], NULL);
        v->tok[v->n] = unhex(f[3], strlen(f[3]), NULL);
        v->n++;
    }
    free(buf);
    v->bos = (int32_t)meta_int(v->meta, "bos", -1);
    v->eos = (int32_t)meta_int(v->meta, "eos", -1);
    v->unk = (int32_t)meta_int(v->meta, "unk", -1);
    return v->n > 0;
}

static void free_spm_vocab(spm_vocab *v)
{
    for (size_t i = 0; i < v->n; i++) free(v->tok[i]);
}

static qeil_tokenizer *spm_from_vocab(const spm_vocab *v, int add_bos)
{
    qeil_tokenizer_spec s = {
        .kind = QEIL_TOK_SPM,
        .n_vocab = v->n,
        .tokens = (const char *const *)v->tok,
        .scores = v->score,
        .types = v->type,
        .bos_id = v->bos,
        .eos_id = v->eos,
        .unk_id = v->unk,
        .add_bos = add_bos,
    };
    qeil_tokenizer *tk = NULL;
    qeil_status st = qeil_tokenizer_create(ctx, &s, &tk);
    if (st != QEIL_OK) printf("  create: %s\n", qeil_ctx_errmsg(ctx));
    return tk;
}

typedef struct {
    char *text;
    size_t text_len;
    int32_t ids[512];
    size_t n_ids;
    char *dec;
} spm_case;

static size_t load_spm_cases(spm_case *c, size_t max)
{
    char dir[1024], path[1200];
    tests_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/data/tokenizer/spm_cases.tsv", dir);
    char *buf = read_file(path, NULL);
    if (!buf) return 0;
    static char *lines[1024];
    size_t nl = split_lines(buf, lines, 1024), n = 0;
    for (size_t i = 0; i < nl && n < max; i++) {
        if (lines[i][0] == '#') continue;
        char *t1 = strchr(lines[i], '\t');
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2) continue;
        *t1 = *t2 = '\0';
        spm_case *k = &c[n];
        k->text = unhex(lines[i], strlen(lines[i]), &k->text_len);
        k->dec = unhex(t2 + 1, strlen(t2 + 1), NULL);
        k->n_ids = 0;
        for (char *p = t1 + 1; *p && k->n_ids < 512;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p) break;
            k->ids[k->n_ids++] = (int32_t)v;
            p = end;
        }
        n++;
    }
    free(buf);
    return n;
}

static void free_spm_cases(spm_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].text);
        free(c[i].dec);
    }
}

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
    printf("    %s:", what);
    for (size_t i = 0; i < n; i++) printf(" %d", (int)ids[i]);
    printf("\n");
}

/* ------------------------------------------------------------------------ */
/* SPM vs SentencePiece                                                      */
/* ------------------------------------------------------------------------ */

static spm_case g_cases[128];

/* Every oracle string encodes to exactly SentencePiece's ids, decodes to
 * SentencePiece's decoding of them, and (where SentencePiece round-trips)
 * back to the string. */
static void check_spm_cases(qeil_tokenizer *tk, size_t n_cases)
{
    for (size_t i = 0; i < n_cases; i++) {
        const spm_case *k = &g_cases[i];
        int32_t ids[600];
        size_t n = 0;
        qeil_status st = qeil_tokenizer_encode(ctx, tk, k->text, 0, 0, ids, 600, &n);
        CHECK_EQ_INT(st, QEIL_OK);
        int same = n == k->n_ids && memcmp(ids, k->ids, n * sizeof *ids) == 0;
        if (!same) {
            TEST_FAIL_("case %zu \"%s\": ids differ from sentencepiece", i, k->text);
            print_ids("want", k->ids, k->n_ids);
            print_ids("got ", ids, n);
        }
        char text[4096];
        size_t len = qeil_tokenizer_decode(tk, ids, n, text, sizeof text);
        CHECK_EQ_INT(len, strlen(k->dec));
        CHECK_EQ_STR(text, k->dec);
        if (strcmp(k->dec, k->text) == 0) CHECK_EQ_STR(text, k->text);
    }
}

TEST(spm_matches_sentencepiece)
{
    spm_vocab v;
    if (!load_spm_vocab(&v)) {
        CHECK(0);
        return;
    }
    size_t n_cases = load_spm_cases(g_cases, 128);
    CHECK(n_cases >= 45);
    qeil_tokenizer *tk = spm_from_vocab(&v, 1);
    CHECK(tk != NULL);
    if (tk) {
        CHECK_EQ_INT(qeil_tokenizer_kind(tk), QEIL_TOK_SPM);
        CHECK_EQ_INT(qeil_tokenizer_n_vocab(tk), v.n);
        CHECK_EQ_INT(qeil_tokenizer_bos(tk), 1);
        CHECK_EQ_INT(qeil_tokenizer_eos(tk), 2);
        check_spm_cases(tk, n_cases);
        /* the cases whose sentencepiece decoding is the text itself must be
         * most of them (all but the literal U+2581 one) */
        size_t rt = 0;
        for (size_t i = 0; i < n_cases; i++) rt += strcmp(g_cases[i].dec, g_cases[i].text) == 0;
        CHECK(rt + 1 >= n_cases);

        /* add_bos: 1, and -1 = the spec's default (1 here) */
        int32_t ids[64];
        size_t n = 0;
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "Hello world", -1, 0, ids, 64, &n), QEIL_OK);
        CHECK_EQ_INT(n, g_cases[1].n_ids + 1);
        CHECK_EQ_INT(ids[0], 1);
        CHECK(n > 1 && memcmp(ids + 1, g_cases[1].ids, (n - 1) * sizeof *ids) == 0);
        char text[64];
        qeil_tokenizer_decode(tk, ids, n, text, sizeof text);
        CHECK_EQ_STR(text, "Hello world");
        /* empty text with BOS is just BOS */
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "", 1, 0, ids, 64, &n), QEIL_OK);
        CHECK_EQ_INT(n, 1);
        /* "<s>" is a control token: only with parse_special, and the text
         * after it gets the dummy-prefix space again (llama.cpp) */
        int32_t a[64], b[64];
        size_t na = 0, nb = 0;
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "Hello<s>world", 0, 1, a, 64, &na), QEIL_OK);
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "world", 0, 0, b, 64, &nb), QEIL_OK);
        CHECK(na > nb + 1);
        CHECK_EQ_INT(a[na - nb - 1], 1);
        CHECK(memcmp(a + na - nb, b, nb * sizeof *b) == 0);
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "Hello<s>world", 0, 0, a, 64, &na), QEIL_OK);
        for (size_t i = 0; i < na; i++) CHECK(a[i] != 1);
        qeil_tokenizer_decode(tk, a, na, text, sizeof text);
        CHECK_EQ_STR(text, "Hello<s>world");
    }
    qeil_tokenizer_free(tk);
    free_spm_cases(g_cases, n_cases);
    free_spm_vocab(&v);
}

/* A python3 that imports sentencepiece, or NULL. */
static const char *find_python(void)
{
    static char chosen[512];
    const char *cands[] = {getenv("QEIL_PYTHON"), "python3", "/usr/bin/python3"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        if (!cands[i] || !*cands[i] || strchr(cands[i], '\'')) continue;
        char cmd[700];
        snprintf(cmd, sizeof cmd, "'%s' -c 'import sentencepiece' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) {
            snprintf(chosen, sizeof chosen, "%s", cands[i]);
            return chosen;
        }
    }
    return NULL;
}

static int same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *x = read_file(a, &na), *y = read_file(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* Re-running the oracle reproduces the committed golden files. */
TEST(spm_oracle_reproducible)
{
    const char *py = find_python();
    if (!py) SKIP("no python3 with sentencepiece (Debian: python3-sentencepiece)");
    spm_vocab v;
    if (!load_spm_vocab(&v)) {
        CHECK(0);
        return;
    }
    free_spm_vocab(&v);
    char dir[1024], cmd[3000], tmp[] = "/tmp/qeil_tok_oracle_XXXXXX";
    tests_dir(dir, sizeof dir);
    if (strchr(dir, '\'')) SKIP("tests directory path has a quote");
    /* the golden files record the sentencepiece version that wrote them;
     * training is only reproducible with the same version */
    const char *ver = strstr(v.meta, "sentencepiece=");
    if (!ver) {
        CHECK(0);
        return;
    }
    char want[32] = {0};
    sscanf(ver + strlen("sentencepiece="), "%31s", want);
    snprintf(cmd, sizeof cmd, "'%s' -c 'import sentencepiece as s; print(s.__version__)'", py);
    FILE *p = popen(cmd, "r");
    char have[64] = {0};
    if (p) {
        if (!fgets(have, sizeof have, p)) have[0] = '\0';
        pclose(p);
    }
    have[strcspn(have, "\r\n")] = '\0';
    if (strcmp(have, want) != 0) {
        static char why[160];
        snprintf(why, sizeof why, "sentencepiece %s here, the golden files came from %s", have, want);
        SKIP(why);
    }
    if (!mkdtemp(tmp)) {
        CHECK(0);
        return;
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s/ref/spm_oracle.py' --out '%s'", py, dir, tmp);
    CHECK_EQ_INT(system(cmd), 0);
    const char *files[] = {"spm_vocab.tsv", "spm_cases.tsv"};
    for (size_t i = 0; i < 2; i++) {
        char a[1300], b[1300];
        snprintf(a, sizeof a, "%s/data/tokenizer/%s", dir, files[i]);
        snprintf(b, sizeof b, "%s/%s", tmp, files[i]);
        if (!same_file(a, b)) TEST_FAIL_("%s differs from a fresh oracle run (%s)", a, b);
        else unlink(b);
    }
    rmdir(tmp);
}

/* ------------------------------------------------------------------------ */
/* SPM by hand: unknowns, UNUSED resegmentation, user-defined, decode         */
/* ------------------------------------------------------------------------ */

#define SP "\xE2\x96\x81" /* U+2581 */

static qeil_tokenizer *make_tk(qeil_tok_kind kind, qeil_pretok pre, const char *const *tok,
                               const float *scores, const int32_t *types, size_t n,
                               const char *const *merges, size_t n_merges, int32_t bos,
                               int32_t unk)
{
    qeil_tokenizer_spec s = {
        .kind = kind,
        .pre = pre,
        .n_vocab = n,
        .tokens = tok,
        .scores = scores,
        .types = types,
        .n_merges = n_merges,
        .merges = merges,
        .bos_id = bos,
        .eos_id = -1,
        .unk_id = unk,
    };
    qeil_tokenizer *tk = NULL;
    if (qeil_tokenizer_create(ctx, &s, &tk) != QEIL_OK) printf("  create: %s\n", qeil_ctx_errmsg(ctx));
    return tk;
}

static void check_ids(qeil_tokenizer *tk, const char *text, int parse_special,
                      const int32_t *want, size_t n_want)
{
    int32_t ids[256];
    size_t n = 0;
    qeil_status st = qeil_tokenizer_encode(ctx, tk, text, 0, parse_special, ids, 256, &n);
    if (st != QEIL_OK) {
        TEST_FAIL_("encode \"%s\": %s", text, qeil_ctx_errmsg(ctx));
        return;
    }
    if (n != n_want || memcmp(ids, want, n * sizeof *ids) != 0) {
        TEST_FAIL_("encode \"%s\"", text);
        print_ids("want", want, n_want);
        print_ids("got ", ids, n);
    }
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__}), (sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t))

TEST(spm_hand_cases)
{
    enum { N = 11 };
    const char *tok[N] = {"<unk>", "<s>", "</s>", SP, "a", "b", "c", "ab", "bc", "<tool>", SP "c"};
    const float sc[N] = {0, 0, 0, -5, -5, -5, -5, -1, -2, 0, -3};
    const int32_t ty[N] = {2, 3, 3, 1, 1, 1, 1, QEIL_TOKTYPE_UNUSED, 1, QEIL_TOKTYPE_USER_DEFINED, 1};
    qeil_tokenizer *tk = make_tk(QEIL_TOK_SPM, QEIL_PRE_GPT2, tok, sc, ty, N, NULL, 0, 1, 0);
    CHECK(tk != NULL);
    if (!tk) return;
    /* "▁abc": "ab" (UNUSED, score -1) merges before "bc" (-2), then is split
     * back into a, b on output, as SentencePiece resegments unused pieces */
    check_ids(tk, "abc", 0, IDS(3, 4, 5, 6));
    /* "▁c" is a token: dummy prefix + c */
    check_ids(tk, "c", 0, IDS(10));
    /* no byte tokens: each unknown character becomes <unk> once */
    check_ids(tk, "x\xC3\xA9", 0, IDS(3, 0, 0));
    /* user-defined tokens are cut out even without parse_special; the text
     * after them gets the prefix space again */
    check_ids(tk, "a<tool>c", 0, IDS(3, 4, 9, 10));
    /* control tokens only with parse_special */
    check_ids(tk, "<s>c", 1, IDS(1, 10));
    check_ids(tk, "<s>c", 0, IDS(3, 0, 0, 0, 6));

    /* pieces and decode */
    char buf[64];
    CHECK_EQ_INT(qeil_tokenizer_piece(tk, 10, buf, sizeof buf), 2);
    CHECK(memcmp(buf, " c", 2) == 0);
    CHECK_EQ_INT(qeil_tokenizer_piece(tk, 1, buf, sizeof buf), 0);  /* control */
    CHECK_EQ_INT(qeil_tokenizer_piece(tk, 9, buf, sizeof buf), 6);  /* user-defined as-is */
    CHECK_EQ_INT(qeil_tokenizer_piece(tk, 10, buf, 1), 1);          /* truncated to cap */
    CHECK_EQ_INT(qeil_tokenizer_piece(tk, 99, buf, sizeof buf), 0); /* out of range */
    /* the first text piece loses its prefix space, BOS or not */
    CHECK_EQ_INT(qeil_tokenizer_decode(tk, (const int32_t[]){1, 10, 10}, 3, buf, sizeof buf), 3);
    CHECK_EQ_STR(buf, "c c");
    CHECK_EQ_INT(qeil_tokenizer_decode(tk, (const int32_t[]){3, 10}, 2, buf, sizeof buf), 2);
    CHECK_EQ_STR(buf, " c");
    /* unknown -> SentencePiece's " \u2047 "; invalid ids -> nothing */
    CHECK_EQ_INT(qeil_tokenizer_decode(tk, (const int32_t[]){4, 0, -7, 4}, 4, buf, sizeof buf), 7);
    CHECK_EQ_STR(buf, "a \xE2\x81\x87 a");
    /* truncation: full length returned, cap-1 bytes written */
    CHECK_EQ_INT(qeil_tokenizer_decode(tk, (const int32_t[]){4, 5, 6}, 3, buf, 3), 3);
    CHECK_EQ_STR(buf, "ab");
    CHECK_EQ_INT(qeil_tokenizer_decode(tk, (const int32_t[]){4, 5, 6}, 3, NULL, 0), 3);
    qeil_tokenizer_free(tk);

    /* without the dummy prefix (tokenizer.ggml.add_space_prefix = false) */
    qeil_tokenizer_spec s = {.kind = QEIL_TOK_SPM, .n_vocab = N, .tokens = tok, .scores = sc,
                             .types = ty, .bos_id = 1, .eos_id = 2, .unk_id = 0,
                             .spm_no_space_prefix = 1};
    CHECK_EQ_INT(qeil_tokenizer_create(ctx, &s, &tk), QEIL_OK);
    check_ids(tk, "c c", 0, IDS(6, 10));
    CHECK_EQ_INT(qeil_tokenizer_decode(tk, (const int32_t[]){10, 10}, 2, buf, sizeof buf), 4);
    CHECK_EQ_STR(buf, " c c");
    qeil_tokenizer_free(tk);
}

/* Invalid UTF-8 and NUL bytes are encoded byte by byte and decode back. */
TEST(spm_invalid_utf8_round_trips)
{
    spm_vocab v;
    if (!load_spm_vocab(&v)) {
        CHECK(0);
        return;
    }
    qeil_tokenizer *tk = spm_from_vocab(&v, 0);
    CHECK(tk != NULL);
    const char text[] = "ok \xFF\xC3(\xE2\x82 \xED\xA0\x80 \xF4\x90\x80\x80 \xC0\xAF end\0tail";
    size_t len = sizeof text - 1;
    int32_t ids[256];
    size_t n = 0;
    CHECK_EQ_INT(qeil_tokenizer_encode_bytes(ctx, tk, text, len, 0, 0, ids, 256, &n), QEIL_OK);
    char out[256];
    CHECK_EQ_INT(qeil_tokenizer_decode(tk, ids, n, out, sizeof out), len);
    CHECK(memcmp(out, text, len) == 0);
    /* 0xFF is not a character: byte token <0xFF> */
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        size_t tl;
        const char *t = qeil_tokenizer_token(tk, ids[i], &tl);
        if (t && tl == 6 && memcmp(t, "<0xFF>", 6) == 0) found = 1;
    }
    CHECK(found);
    qeil_tokenizer_free(tk);
    free_spm_vocab(&v);
}

/* ------------------------------------------------------------------------ */
/* Byte-level BPE on a hand-made vocabulary                                  */
/* ------------------------------------------------------------------------ */

/* GPT-2's bytes_to_unicode, written out again here (independently of the
 * library) to spell the vocabulary: printable bytes stand for themselves,
 * the rest get U+0100, U+0101, ... in byte order. */
static size_t gpt2_spell(const char *raw, size_t n, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned b = (uint8_t)raw[i], cp;
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) {
            cp = b;
        } else {
            unsigned k = 0;
            for (unsigned c = 0; c < b; c++)
                if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) k++;
            cp = 256 + k;
        }
        if (cp < 0x80) {
            out[w++] = (char)cp;
        } else {
            out[w++] = (char)(0xC0 | (cp >> 6));
            out[w++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[w] = '\0';
    return w;
}

/* Merges as (left, right) in raw bytes, in rank order; each adds the
 * concatenation to the vocabulary. */
static const char *const k_merges[][2] = {
    {" ", "t"},                      /* r0 */
    {"h", "e"},                      /* r1 */
    {" t", "he"},                    /* r2 */
    {"i", "n"},                      /* r3 */
    {" ", "a"},                      /* r4 */
    {"o", "n"},                      /* r5 */
    {"e", "r"},                      /* r6 */
    {" ", "w"},                      /* r7 */
    {"o", "r"},                      /* r8 */
    {" w", "or"},                    /* r9 */
    {"l", "d"},                      /* r10 */
    {" wor", "ld"},                  /* r11 */
    {"1", "2"},                      /* r12 */
    {"12", "3"},                     /* r13 */
    {"4", "5"},                      /* r14 */
    {" ", " "},                      /* r15 */
    {"\n", "\n"},                    /* r16 */
    {"\xC3", "\xA9"},                /* r17 é */
    {"c", "a"},                      /* r18 */
    {"f", "\xC3\xA9"},               /* r19 */
    {"ca", "f\xC3\xA9"},             /* r20 café */
    {"'", "t"},                      /* r21 */
    {"d", "on"},                     /* r22 */
    {"L", "L"},                      /* r23 */
    {"'", "LL"},                     /* r24 */
    {"\xE4", "\xB8"},                /* r25 */
    {"\xE4\xB8", "\xAD"},            /* r26 中 */
    {"\xE6", "\x96"},                /* r27 (文 = E6 96 87 stays split) */
    {"\xF0", "\x9F"},                /* r28 */
    {"\xF0\x9F", "\x98"},            /* r29 (😀 = F0 9F 98 80) */
    {"2", "3"},                      /* r30 */
    {"3", "4"},                      /* r31 */
    {" ", "1"},                      /* r32 */
    {"  ", " "},                     /* r33 */
    {"123", "45"},                   /* r34 */
    {"<", "|"},                      /* r35 */
    {"a", "b"},                      /* r36 */
};
#define N_MERGES (sizeof k_merges / sizeof k_merges[0])
/* vocabulary: 256 bytes, one token per merge, then these */
static const char *const k_extra[] = {"xyz", "<|endoftext|>", "<tool>"};
static const int32_t k_extra_type[] = {QEIL_TOKTYPE_NORMAL, QEIL_TOKTYPE_CONTROL,
                                       QEIL_TOKTYPE_USER_DEFINED};
#define BPE_N (256 + N_MERGES + 3)
#define ID_EOT ((int32_t)(256 + N_MERGES + 1))
#define ID_TOOL ((int32_t)(256 + N_MERGES + 2))

typedef struct {
    char *tok[BPE_N];   /* GPT-2 spelled */
    char *raw[BPE_N];   /* raw bytes, for looking up expectations */
    size_t raw_len[BPE_N];
    int32_t type[BPE_N];
    char *merge[N_MERGES + 1];
} bpe_vocab;

static void bpe_vocab_init(bpe_vocab *v)
{
    char sp[64];
    for (int b = 0; b < 256; b++) {
        char r = (char)b;
        gpt2_spell(&r, 1, sp);
        v->tok[b] = strdup(sp);
        v->raw[b] = malloc(2);
        v->raw[b][0] = r;
        v->raw[b][1] = 0;
        v->raw_len[b] = 1;
        v->type[b] = QEIL_TOKTYPE_NORMAL;
    }
    /* merge 0 names a token that does not exist: it must be skipped */
    v->merge[0] = strdup("q zz");
    for (size_t m = 0; m < N_MERGES; m++) {
        char raw[64], l[64], r[64], both[140];
        snprintf(raw, sizeof raw, "%s%s", k_merges[m][0], k_merges[m][1]);
        size_t i = 256 + m;
        gpt2_spell(raw, strlen(raw), sp);
        v->tok[i] = strdup(sp);
        v->raw[i] = strdup(raw);
        v->raw_len[i] = strlen(raw);
        v->type[i] = QEIL_TOKTYPE_NORMAL;
        gpt2_spell(k_merges[m][0], strlen(k_merges[m][0]), l);
        gpt2_spell(k_merges[m][1], strlen(k_merges[m][1]), r);
        snprintf(both, sizeof both, "%s %s", l, r);
        v->merge[m + 1] = strdup(both);
    }
    for (size_t e = 0; e < 3; e++) {
        size_t i = 256 + N_MERGES + e;
        v->tok[i] = strdup(k_extra[e]);
        v->raw[i] = strdup(k_extra[e]);
        v->raw_len[i] = strlen(k_extra[e]);
        v->type[i] = k_extra_type[e];
    }
}

static void bpe_vocab_free(bpe_vocab *v)
{
    for (size_t i = 0; i < BPE_N; i++) {
        free(v->tok[i]);
        free(v->raw[i]);
    }
    for (size_t i = 0; i <= N_MERGES; i++) free(v->merge[i]);
}

static qeil_tokenizer *bpe_make(const bpe_vocab *v, qeil_pretok pre)
{
    return make_tk(QEIL_TOK_BPE, pre, (const char *const *)v->tok, NULL, v->type, BPE_N,
                   (const char *const *)v->merge, N_MERGES + 1, -1, -1);
}

static int32_t raw_id(const bpe_vocab *v, const char *raw)
{
    for (size_t i = 0; i < BPE_N; i++)
        if (v->raw_len[i] == strlen(raw) && memcmp(v->raw[i], raw, v->raw_len[i]) == 0)
            return (int32_t)i;
    return -1;
}

typedef struct {
    qeil_pretok pre;
    int parse_special;
    const char *text;
    const char *want[24]; /* expected pieces, raw bytes; NULL-terminated */
} bpe_case;

/* Worked by hand from the merge ranks above (lowest rank first, leftmost on
 * ties, within each pre-tokenizer piece). */
static const bpe_case k_bpe_cases[] = {
    /* "the": h+e (r1) -> "he"; no "t he" merge. " world": " w" (r7), "or"
     * (r8), " wor" (r9), "ld" (r10), " world" (r11). */
    {QEIL_PRE_GPT2, 0, "the world", {"t", "he", " world"}},
    {QEIL_PRE_GPT2, 0, " the", {" the"}},
    /* é (r17) before ca (r18), then fé (r19), café (r20) */
    {QEIL_PRE_GPT2, 0, "caf\xC3\xA9", {"caf\xC3\xA9"}},
    /* 中 = E4 B8 AD merges fully; 文 = E6 96 87 only its first two bytes */
    {QEIL_PRE_GPT2, 0, "\xE4\xB8\xAD\xE6\x96\x87", {"\xE4\xB8\xAD", "\xE6\x96", "\x87"}},
    /* emoji: an "other" piece; F0 9F 98 merge, 80 stays */
    {QEIL_PRE_GPT2, 0, "\xF0\x9F\x98\x80", {"\xF0\x9F\x98", "\x80"}},
    /* pieces "a", "  ", " b": the last space of the run goes with "b" */
    {QEIL_PRE_GPT2, 0, "a   b", {"a", "  ", " ", "b"}},
    /* trailing run "   ": two equal "  " candidates, leftmost wins (r15),
     * then "  "+" " (r33) */
    {QEIL_PRE_GPT2, 0, "hi   ", {"h", "i", "   "}},
    {QEIL_PRE_GPT2, 0, "\n\n", {"\n\n"}},
    {QEIL_PRE_GPT2, 0, "\n\n\n", {"\n\n", "\n"}},
    /* digits: one GPT-2 piece "12345" -> 12 (r12), 123 (r13), 45 (r14),
     * 12345 (r34); Llama-3 pieces "123" "45"; Qwen2 one digit per piece */
    {QEIL_PRE_GPT2, 0, "12345", {"12345"}},
    {QEIL_PRE_LLAMA3, 0, "12345", {"123", "45"}},
    {QEIL_PRE_QWEN2, 0, "12345", {"1", "2", "3", "4", "5"}},
    /* contractions: "don" (on r5, don r22) + "'t" (r21); "I'LL" is
     * case-sensitive in GPT-2 ("'" alone, "LL") and not in Llama-3 */
    {QEIL_PRE_GPT2, 0, "don't", {"don", "'t"}},
    {QEIL_PRE_LLAMA3, 0, "don't", {"don", "'t"}},
    {QEIL_PRE_GPT2, 0, "I'LL", {"I", "'", "LL"}},
    {QEIL_PRE_LLAMA3, 0, "I'LL", {"I", "'LL"}},
    /* special tokens: only with parse_special; otherwise plain text */
    {QEIL_PRE_GPT2, 1, "a<|endoftext|>b", {"a", "<|endoftext|>", "b"}},
    {QEIL_PRE_GPT2, 0, "a<|endoftext|>b",
     {"a", "<|", "e", "n", "d", "o", "f", "t", "e", "x", "t", "|", ">", "b"}},
    /* user-defined tokens always */
    {QEIL_PRE_GPT2, 0, "x<tool>y", {"x", "<tool>", "y"}},
    /* Llama-3 takes a word that is a token whole (ignore_merges) */
    {QEIL_PRE_LLAMA3, 0, "xyz", {"xyz"}},
    {QEIL_PRE_GPT2, 0, "xyz", {"x", "y", "z"}},
    /* invalid UTF-8: an "other" piece of two bytes, then " a" (r4) */
    {QEIL_PRE_GPT2, 0, "\xFF\xFE a", {"\xFF", "\xFE", " a"}},
    {QEIL_PRE_GPT2, 0, "", {NULL}},
};

TEST(bpe_hand_cases)
{
    bpe_vocab v;
    bpe_vocab_init(&v);
    qeil_tokenizer *tk[3];
    for (int p = 0; p < 3; p++) {
        tk[p] = bpe_make(&v, (qeil_pretok)p);
        CHECK(tk[p] != NULL);
        if (!tk[p]) goto out;
    }
    CHECK_EQ_INT(qeil_tokenizer_kind(tk[0]), QEIL_TOK_BPE);
    CHECK_EQ_INT(qeil_tokenizer_pre(tk[1]), QEIL_PRE_LLAMA3);
    for (size_t c = 0; c < sizeof k_bpe_cases / sizeof k_bpe_cases[0]; c++) {
        const bpe_case *k = &k_bpe_cases[c];
        int32_t want[24];
        size_t nw = 0;
        for (; k->want[nw]; nw++) {
            want[nw] = raw_id(&v, k->want[nw]);
            if (want[nw] < 0) TEST_FAIL_("case %zu: no token \"%s\" in the test vocabulary", c, k->want[nw]);
        }
        check_ids(tk[k->pre], k->text, k->parse_special, want, nw);
        /* decode gives the text back */
        int32_t ids[64];
        size_t n = 0;
        char out[128];
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk[k->pre], k->text, 0, k->parse_special, ids, 64, &n),
                     QEIL_OK);
        CHECK_EQ_INT(qeil_tokenizer_decode(tk[k->pre], ids, n, out, sizeof out),
                     strlen(k->text) - (k->parse_special && strstr(k->text, "<|endoftext|>") ? 13 : 0));
        if (!k->parse_special) CHECK_EQ_STR(out, k->text);
    }
    /* pieces: byte-level symbols map back to bytes; control -> nothing */
    char buf[16];
    CHECK_EQ_INT(qeil_tokenizer_piece(tk[0], raw_id(&v, " world"), buf, sizeof buf), 6);
    CHECK(memcmp(buf, " world", 6) == 0);
    CHECK_EQ_INT(qeil_tokenizer_piece(tk[0], 0x0A, buf, sizeof buf), 1);
    CHECK_EQ_INT(buf[0], '\n');
    CHECK_EQ_INT(qeil_tokenizer_piece(tk[0], ID_EOT, buf, sizeof buf), 0);
    /* BPE models add no BOS by default and have none here */
    CHECK_EQ_INT(qeil_tokenizer_bos(tk[0]), -1);
    int32_t ids[8];
    size_t n = 0;
    CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk[0], "a", 1, 0, ids, 8, &n), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk[0], "a", -1, 0, ids, 8, &n), QEIL_OK);
    CHECK_EQ_INT(n, 1);
out:
    for (int p = 0; p < 3; p++) qeil_tokenizer_free(tk[p]);
    bpe_vocab_free(&v);
}

/* Too small a cap: QEIL_ERR_RANGE, the full count, the first cap ids. */
TEST(encode_cap_too_small)
{
    bpe_vocab v;
    bpe_vocab_init(&v);
    qeil_tokenizer *tk = bpe_make(&v, QEIL_PRE_GPT2);
    CHECK(tk != NULL);
    if (tk) {
        int32_t ids[4] = {-1, -1, -1, -1};
        size_t n = 0;
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "the world", 0, 0, ids, 2, &n), QEIL_ERR_RANGE);
        CHECK_EQ_INT(n, 3);
        CHECK_EQ_INT(ids[0], raw_id(&v, "t"));
        CHECK_EQ_INT(ids[1], raw_id(&v, "he"));
        CHECK_EQ_INT(ids[2], -1);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "cap 2");
        /* counting only */
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "the world", 0, 0, NULL, 0, &n), QEIL_ERR_RANGE);
        CHECK_EQ_INT(n, 3);
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "", 0, 0, NULL, 0, &n), QEIL_OK);
        CHECK_EQ_INT(n, 0);
        /* bad arguments */
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, NULL, 0, 0, ids, 4, &n), QEIL_ERR_INVALID);
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "a", 0, 0, NULL, 4, &n), QEIL_ERR_INVALID);
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "a", 2, 0, ids, 4, &n), QEIL_ERR_INVALID);
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, NULL, "a", 0, 0, ids, 4, &n), QEIL_ERR_INVALID);
    }
    qeil_tokenizer_free(tk);
    bpe_vocab_free(&v);
}

/* ------------------------------------------------------------------------ */
/* Pre-tokenizer splits                                                      */
/* ------------------------------------------------------------------------ */

typedef struct {
    qeil_pretok pre;
    const char *text;
    const char *want[16];
} split_case;

/* Hand-worked from the regexes (docs/tokenizer.md); they agree with
 * Python's `regex` module running the regexes themselves. */
static const split_case k_splits[] = {
    {QEIL_PRE_GPT2, "Hello world", {"Hello", " world"}},
    {QEIL_PRE_GPT2, "a   b", {"a", "  ", " b"}},
    {QEIL_PRE_GPT2, "don't I'LL", {"don", "'t", " I", "'", "LL"}},
    {QEIL_PRE_GPT2, "12345 abc", {"12345", " abc"}},
    {QEIL_PRE_GPT2, "a\n\nb", {"a", "\n", "\n", "b"}},
    {QEIL_PRE_GPT2, "hi!!  ", {"hi", "!!", "  "}},
    {QEIL_PRE_GPT2, "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87\xF0\x9F\x98\x80",
     {"caf\xC3\xA9", " \xE4\xB8\xAD\xE6\x96\x87", "\xF0\x9F\x98\x80"}},
    {QEIL_PRE_GPT2, " ?x", {" ?", "x"}},
    {QEIL_PRE_GPT2, "\xC2\xA0\xC2\xA0x", {"\xC2\xA0", "\xC2\xA0", "x"}}, /* NBSP is \s, not " " */
    {QEIL_PRE_GPT2, "a<|endoftext|>b", {"a", "<|", "endoftext", "|>", "b"}},
    {QEIL_PRE_LLAMA3, "12345", {"123", "45"}},
    {QEIL_PRE_LLAMA3, "don't I'LL", {"don", "'t", " I", "'LL"}},
    {QEIL_PRE_LLAMA3, "a\n\nb", {"a", "\n\n", "b"}},
    {QEIL_PRE_LLAMA3, "(hello) .world", {"(hello", ")", " .", "world"}},
    {QEIL_PRE_LLAMA3, "x1234y", {"x", "123", "4", "y"}},
    {QEIL_PRE_LLAMA3, "a  \n b", {"a", "  \n", " b"}},
    {QEIL_PRE_LLAMA3, "ok!\n\nnext", {"ok", "!\n\n", "next"}},
    {QEIL_PRE_LLAMA3, "hi   ", {"hi", "   "}},
    {QEIL_PRE_LLAMA3, "\xD9\xA3\xD9\xA4\xD9\xA5\xD9\xA6", {"\xD9\xA3\xD9\xA4\xD9\xA5", "\xD9\xA6"}}, /* Arabic-Indic digits are \p{N} */
    {QEIL_PRE_QWEN2, "12345", {"1", "2", "3", "4", "5"}},
    {QEIL_PRE_QWEN2, "x1234y", {"x", "1", "2", "3", "4", "y"}},
    {QEIL_PRE_QWEN2, "I'LL", {"I", "'LL"}},
    {QEIL_PRE_QWEN2, "\xFF" "ab", {"\xFF" "ab"}}, /* an invalid byte is "other" */
};

TEST(pretokenizer_splits)
{
    for (size_t c = 0; c < sizeof k_splits / sizeof k_splits[0]; c++) {
        const split_case *k = &k_splits[c];
        const uint8_t *s = (const uint8_t *)k->text;
        size_t n = strlen(k->text), i = 0, w = 0;
        while (i < n) {
            size_t j = qeil_pretok_next(k->pre, s, n, i);
            if (j <= i || j > n) {
                TEST_FAIL_("case %zu: split at %zu returned %zu", c, i, j);
                break;
            }
            const char *want = k->want[w];
            if (!want || strlen(want) != j - i || memcmp(want, s + i, j - i) != 0)
                TEST_FAIL_("case %zu (pre %d) \"%s\": piece %zu is \"%.*s\", want \"%s\"", c,
                           (int)k->pre, k->text, w, (int)(j - i), k->text + i, want ? want : "(end)");
            w++;
            i = j;
        }
        if (k->want[w]) TEST_FAIL_("case %zu: %zu pieces, want more (\"%s\")", c, w, k->want[w]);
    }
}

/* ------------------------------------------------------------------------ */
/* From GGUF                                                                 */
/* ------------------------------------------------------------------------ */

/* Serialise w, read it back, and build a tokenizer from it. */
static qeil_status via_gguf(qeil_gguf_writer *w, qeil_tokenizer **tk)
{
    void *buf = NULL;
    size_t len = 0;
    qeil_gguf *g = NULL;
    *tk = NULL;
    qeil_status st = qeil_gguf_writer_to_memory(w, &buf, &len);
    if (st == QEIL_OK) st = qeil_gguf_from_memory(ctx, buf, len, &g);
    if (st == QEIL_OK) st = qeil_tokenizer_from_gguf(ctx, g, tk);
    qeil_gguf_free(g); /* the tokenizer keeps copies */
    qeil_free(ctx, buf);
    return st;
}

static qeil_gguf_writer *spm_writer(const spm_vocab *v)
{
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    if (!w) return NULL;
    qeil_gguf_writer_set_str(w, "general.architecture", "llama");
    qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tok, v->n);
    qeil_gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", v->score, v->n);
    qeil_gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", v->type, v->n);
    qeil_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    qeil_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    qeil_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
    return w;
}

TEST(gguf_spm_matches_arrays)
{
    spm_vocab v;
    if (!load_spm_vocab(&v)) {
        CHECK(0);
        return;
    }
    size_t n_cases = load_spm_cases(g_cases, 128);
    qeil_gguf_writer *w = spm_writer(&v);
    CHECK(w != NULL);
    qeil_tokenizer *tk = NULL;
    qeil_status st = w ? via_gguf(w, &tk) : QEIL_ERR_NOMEM;
    CHECK_EQ_INT(st, QEIL_OK);
    if (st != QEIL_OK) printf("  %s\n", qeil_ctx_errmsg(ctx));
    if (tk) {
        CHECK_EQ_INT(qeil_tokenizer_kind(tk), QEIL_TOK_SPM);
        CHECK_EQ_INT(qeil_tokenizer_n_vocab(tk), v.n);
        CHECK_EQ_INT(qeil_tokenizer_unk(tk), v.unk);
        CHECK_EQ_INT(qeil_tokenizer_add_bos(tk), 1); /* SPM default with a BOS */
        check_spm_cases(tk, n_cases);
    }
    qeil_tokenizer_free(tk);
    qeil_gguf_writer_free(w);

    /* add_bos_token = false is honoured */
    w = spm_writer(&v);
    if (w) {
        qeil_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 0);
        CHECK_EQ_INT(via_gguf(w, &tk), QEIL_OK);
        CHECK_EQ_INT(qeil_tokenizer_add_bos(tk), 0);
        qeil_tokenizer_free(tk);
        qeil_gguf_writer_free(w);
    }
    /* add_space_prefix = false: no dummy prefix, nothing stripped */
    w = spm_writer(&v);
    if (w) {
        qeil_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", 0);
        CHECK_EQ_INT(via_gguf(w, &tk), QEIL_OK);
        int32_t a[64], b[64];
        size_t na = 0, nb = 0;
        char text[64];
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "world peace", 0, 0, a, 64, &na), QEIL_OK);
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, " world peace", 0, 0, b, 64, &nb), QEIL_OK);
        CHECK(na > 0 && (na != nb || memcmp(a, b, na * sizeof *a) != 0));
        qeil_tokenizer_decode(tk, a, na, text, sizeof text);
        CHECK_EQ_STR(text, "world peace");
        qeil_tokenizer_decode(tk, b, nb, text, sizeof text);
        CHECK_EQ_STR(text, " world peace");
        size_t tl = 0;
        const char *t0 = qeil_tokenizer_token(tk, a[0], &tl);
        CHECK(t0 && (tl < 3 || memcmp(t0, "\xE2\x96\x81", 3) != 0)); /* no U+2581 first */
        qeil_tokenizer_free(tk);
        qeil_gguf_writer_free(w);
    }
    /* scores of the wrong length */
    w = qeil_gguf_writer_create(ctx);
    qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tok, v.n);
    qeil_gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", v.score, v.n - 1);
    CHECK_EQ_INT(via_gguf(w, &tk), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tokenizer.ggml.scores");
    CHECK(tk == NULL);
    qeil_gguf_writer_free(w);
    /* an out-of-range BOS id */
    w = qeil_gguf_writer_create(ctx);
    qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tok, v.n);
    qeil_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 100000);
    CHECK_EQ_INT(via_gguf(w, &tk), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tokenizer.ggml.bos_token_id");
    qeil_gguf_writer_free(w);

    free_spm_cases(g_cases, n_cases);
    free_spm_vocab(&v);
}

TEST(gguf_bpe_matches_arrays)
{
    bpe_vocab v;
    bpe_vocab_init(&v);
    /* lfm2: llama.cpp's llama-vocab.cpp gives "lfm2" the LLAMA3 pre-tokenizer */
    const char *pre_names[4] = {"gpt2", "llama-bpe", "qwen2", "lfm2"};
    for (int p = 0; p < 4; p++) {
        const int pre = p == 3 ? (int)QEIL_PRE_LLAMA3 : p;
        qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
        qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
        qeil_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre_names[p]);
        qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tok, BPE_N);
        qeil_gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", v.type, BPE_N);
        qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v.merge,
                                     N_MERGES + 1);
        qeil_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)ID_EOT);
        qeil_tokenizer *g = NULL, *a = bpe_make(&v, (qeil_pretok)pre);
        qeil_status st = via_gguf(w, &g);
        CHECK_EQ_INT(st, QEIL_OK);
        if (st != QEIL_OK) printf("  %s\n", qeil_ctx_errmsg(ctx));
        if (g && a) {
            CHECK_EQ_INT(qeil_tokenizer_pre(g), pre);
            CHECK_EQ_INT(qeil_tokenizer_eos(g), ID_EOT);
            CHECK_EQ_INT(qeil_tokenizer_add_bos(g), 0);
            for (size_t c = 0; c < sizeof k_bpe_cases / sizeof k_bpe_cases[0]; c++) {
                int32_t x[64], y[64];
                size_t nx = 0, ny = 0;
                const bpe_case *k = &k_bpe_cases[c];
                CHECK_EQ_INT(qeil_tokenizer_encode(ctx, a, k->text, 0, 1, x, 64, &nx), QEIL_OK);
                CHECK_EQ_INT(qeil_tokenizer_encode(ctx, g, k->text, 0, 1, y, 64, &ny), QEIL_OK);
                CHECK(nx == ny && memcmp(x, y, nx * sizeof *x) == 0);
            }
        }
        qeil_tokenizer_free(a);
        qeil_tokenizer_free(g);
        qeil_gguf_writer_free(w);
    }
    bpe_vocab_free(&v);
}

TEST(gguf_errors_name_the_key)
{
    const char *tok[] = {"a", "b", "ab"};
    const char *merges[] = {"a b"};
    qeil_tokenizer *tk = NULL;
    qeil_gguf_writer *w;

    /* missing tokens */
    w = qeil_gguf_writer_create(ctx);
    qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    CHECK_EQ_INT(via_gguf(w, &tk), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tokenizer.ggml.tokens");
    CHECK(tk == NULL);
    qeil_gguf_writer_free(w);

    /* unknown pre-tokenizer */
    w = qeil_gguf_writer_create(ctx);
    qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    qeil_gguf_writer_set_str(w, "tokenizer.ggml.pre", "deepseek-coder");
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, 3);
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    CHECK_EQ_INT(via_gguf(w, &tk), QEIL_ERR_UNSUPPORTED);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "deepseek-coder");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tokenizer.ggml.pre");
    qeil_gguf_writer_free(w);

    /* unknown model */
    w = qeil_gguf_writer_create(ctx);
    qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "bert");
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, 3);
    CHECK_EQ_INT(via_gguf(w, &tk), QEIL_ERR_UNSUPPORTED);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "bert");
    qeil_gguf_writer_free(w);

    /* no model key at all */
    w = qeil_gguf_writer_create(ctx);
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, 3);
    CHECK_EQ_INT(via_gguf(w, &tk), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tokenizer.ggml.model");
    qeil_gguf_writer_free(w);

    /* BPE without merges */
    w = qeil_gguf_writer_create(ctx);
    qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, 3);
    CHECK_EQ_INT(via_gguf(w, &tk), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tokenizer.ggml.merges");
    qeil_gguf_writer_free(w);

    /* tokens of the wrong element type */
    w = qeil_gguf_writer_create(ctx);
    qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    qeil_gguf_writer_set_arr_i32(w, "tokenizer.ggml.tokens", (const int32_t[]){1, 2}, 2);
    CHECK_EQ_INT(via_gguf(w, &tk), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tokenizer.ggml.tokens");
    qeil_gguf_writer_free(w);

    /* a token type out of range names the index */
    w = qeil_gguf_writer_create(ctx);
    qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, 3);
    qeil_gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", (const int32_t[]){1, 1, 9}, 3);
    CHECK_EQ_INT(via_gguf(w, &tk), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tokenizer.ggml.token_type[2]");
    qeil_gguf_writer_free(w);

    /* a merge that is not "left right" names the index */
    w = qeil_gguf_writer_create(ctx);
    qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, 3);
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *[]){"a b", "ab"}, 2);
    CHECK_EQ_INT(via_gguf(w, &tk), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tokenizer.ggml.merges[1]");
    qeil_gguf_writer_free(w);

    CHECK_EQ_INT(qeil_tokenizer_from_gguf(ctx, NULL, &tk), QEIL_ERR_INVALID);
}

/* ------------------------------------------------------------------------ */
/* Hostile vocabularies                                                      */
/* ------------------------------------------------------------------------ */

static qeil_status try_create(const char *const *tok, size_t n, const int32_t *types,
                              const float *scores, const char *const *merges, size_t n_merges,
                              qeil_tok_kind kind)
{
    qeil_tokenizer_spec s = {.kind = kind, .n_vocab = n, .tokens = tok, .types = types,
                             .scores = scores, .merges = merges, .n_merges = n_merges,
                             .bos_id = -1, .eos_id = -1, .unk_id = -1};
    qeil_tokenizer *tk = NULL;
    qeil_status st = qeil_tokenizer_create(ctx, &s, &tk);
    if ((st == QEIL_OK) != (tk != NULL)) TEST_FAIL_("create: status %d but tk %p", (int)st, (void *)tk);
    qeil_tokenizer_free(tk);
    return st;
}

TEST(hostile_vocabularies)
{
    static char big[QEIL_TOKENIZER_MAX_TOKEN_BYTES + 2];
    memset(big, 'x', sizeof big - 1);
    const char *tok[] = {"a", big, "b"};
    CHECK_EQ_INT(try_create(tok, 3, NULL, NULL, NULL, 0, QEIL_TOK_SPM), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tokens[1]");
    big[QEIL_TOKENIZER_MAX_TOKEN_BYTES] = '\0'; /* exactly the limit: fine */
    CHECK_EQ_INT(try_create(tok, 3, NULL, NULL, NULL, 0, QEIL_TOK_SPM), QEIL_OK);

    const char *t3[] = {"a", "<0xZZ>", "c"};
    CHECK_EQ_INT(try_create(t3, 3, (const int32_t[]){1, 6, 1}, NULL, NULL, 0, QEIL_TOK_SPM),
                 QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tokens[1]");
    CHECK_EQ_INT(try_create(t3, 3, (const int32_t[]){1, 1, 7}, NULL, NULL, 0, QEIL_TOK_SPM),
                 QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "types[2]");
    CHECK_EQ_INT(try_create(t3, 3, NULL, (const float[]){0, NAN, 0}, NULL, 0, QEIL_TOK_SPM),
                 QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "scores[1]");
    CHECK_EQ_INT(try_create(t3, 0, NULL, NULL, NULL, 0, QEIL_TOK_SPM), QEIL_ERR_FORMAT);
    CHECK_EQ_INT(try_create(t3, QEIL_TOKENIZER_MAX_VOCAB + 1, NULL, NULL, NULL, 0, QEIL_TOK_SPM),
                 QEIL_ERR_FORMAT);
    CHECK_EQ_INT(try_create(t3, 3, NULL, NULL, (const char *[]){"abc"}, 1, QEIL_TOK_BPE),
                 QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "merges[0]");
    CHECK_EQ_INT(try_create(t3, 3, NULL, NULL, NULL, 0, (qeil_tok_kind)7), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_tokenizer_create(ctx, NULL, NULL), QEIL_ERR_INVALID);

    /* invalid UTF-8 in a token is fine (tokens are bytes) */
    const char *t4[] = {"\xFF\xFE", "\xC3"};
    CHECK_EQ_INT(try_create(t4, 2, NULL, NULL, NULL, 0, QEIL_TOK_SPM), QEIL_OK);

    /* duplicates: the first id wins */
    const char *t5[] = {"<unk>", SP "a", SP "a", SP, "a"};
    qeil_tokenizer_spec s = {.kind = QEIL_TOK_SPM, .n_vocab = 5, .tokens = t5,
                             .types = (const int32_t[]){2, 1, 1, 1, 1},
                             .scores = (const float[]){0, -1, 5, -3, -3},
                             .bos_id = -1, .eos_id = -1, .unk_id = 0};
    qeil_tokenizer *tk = NULL;
    CHECK_EQ_INT(qeil_tokenizer_create(ctx, &s, &tk), QEIL_OK);
    CHECK_EQ_INT(qeil_tokenizer_find(tk, SP "a", 4), 1);
    check_ids(tk, "a", 0, IDS(1));
    /* out-of-range ids */
    size_t len = 9;
    CHECK(qeil_tokenizer_token(tk, 5, &len) == NULL && len == 0);
    CHECK_EQ_INT(qeil_tokenizer_token_type(tk, -1), -1);
    CHECK_EQ_INT(qeil_tokenizer_token_type(tk, 0), QEIL_TOKTYPE_UNKNOWN);
    qeil_tokenizer_free(tk);

    /* a bos id outside the vocabulary; add_bos without a BOS */
    s.bos_id = 5;
    CHECK_EQ_INT(qeil_tokenizer_create(ctx, &s, &tk), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "bos_id");
    s.bos_id = -1;
    s.add_bos = 1;
    CHECK_EQ_INT(qeil_tokenizer_create(ctx, &s, &tk), QEIL_ERR_FORMAT);

    /* a BPE vocabulary missing byte symbols and with no unknown token:
     * encoding a byte it cannot spell is an error naming the byte */
    const char *t6[] = {"a", "b"};
    qeil_tokenizer_spec s6 = {.kind = QEIL_TOK_BPE, .n_vocab = 2, .tokens = t6, .bos_id = -1,
                              .eos_id = -1, .unk_id = -1};
    CHECK_EQ_INT(qeil_tokenizer_create(ctx, &s6, &tk), QEIL_OK);
    int32_t ids[8];
    size_t n = 0;
    CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "ab", 0, 0, ids, 8, &n), QEIL_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "a!", 0, 0, ids, 8, &n), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "0x21");
    qeil_tokenizer_free(tk);
}

/* ------------------------------------------------------------------------ */
/* Scale: 1 MB inputs, a 150k vocabulary                                     */
/* ------------------------------------------------------------------------ */

/* At most one token per byte, plus SPM's prefix space. */
static void round_trip_big(qeil_tokenizer *tk, const char *text, size_t len, const char *what)
{
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    char *out = malloc(len + 1);
    size_t n = 0;
    if (!ids || !out) {
        CHECK(0);
    } else {
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, text, 0, 0, ids, len + 2, &n), QEIL_OK);
        CHECK(n > 0);
        CHECK_EQ_INT(qeil_tokenizer_decode(tk, ids, n, out, len + 1), len);
        if (memcmp(out, text, len) != 0) TEST_FAIL_("%s: 1 MB round trip differs", what);
    }
    free(ids);
    free(out);
}

TEST(one_megabyte_inputs)
{
    const size_t len = 1 << 20;
    char *text = malloc(len + 1);
    if (!text) {
        CHECK(0);
        return;
    }
    spm_vocab v;
    if (!load_spm_vocab(&v)) {
        CHECK(0);
        free(text);
        return;
    }
    qeil_tokenizer *spm = spm_from_vocab(&v, 0);
    bpe_vocab b;
    bpe_vocab_init(&b);
    qeil_tokenizer *bpe[3] = {bpe_make(&b, QEIL_PRE_GPT2), bpe_make(&b, QEIL_PRE_LLAMA3),
                              bpe_make(&b, QEIL_PRE_QWEN2)};
    if (spm && bpe[0] && bpe[1] && bpe[2]) {
        /* one unbroken SPM run: no spaces, every pair a merge candidate */
        memset(text, 'e', len);
        text[len] = '\0';
        round_trip_big(spm, text, len, "spm eeee");
        /* prose */
        const char *prose = "The year 1999 was caf\xC3\xA9-time, said Alice; the energy of the model. ";
        size_t pl = strlen(prose);
        for (size_t i = 0; i < len; i++) text[i] = prose[i % pl];
        text[len] = '\0';
        round_trip_big(spm, text, len, "spm prose");
        for (int p = 0; p < 3; p++) round_trip_big(bpe[p], text, len, "bpe prose");
        /* one 1 MB BPE word ("abab...", letters only) with 512k merges */
        for (size_t i = 0; i < len; i++) text[i] = "ab"[i & 1];
        round_trip_big(bpe[0], text, len, "bpe abab");
        /* one 1 MB run of white space (merging "  " then "   "), digits */
        memset(text, ' ', len);
        round_trip_big(bpe[0], text, len, "bpe spaces");
        round_trip_big(spm, text, len, "spm spaces");
        memset(text, '7', len);
        round_trip_big(bpe[1], text, len, "bpe digits");
        /* counting only: the full count without ids */
        size_t n = 0;
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, bpe[1], text, 0, 0, NULL, 0, &n), QEIL_ERR_RANGE);
        CHECK_EQ_INT(n, len); /* no merges of "7": one byte token each */
    } else {
        CHECK(0);
    }
    qeil_tokenizer_free(spm);
    for (int p = 0; p < 3; p++) qeil_tokenizer_free(bpe[p]);
    bpe_vocab_free(&b);
    free_spm_vocab(&v);
    free(text);
}

/* ------------------------------------------------------------------------ */
/* Encoding in pieces: the tokens of the whole text, bounded scratch         */
/* ------------------------------------------------------------------------ */

/* Varied text: words, runs of spaces and newlines, tabs, digits, accents,
 * CJK, emoji, an invalid byte, a literal U+2581, contractions, special
 * tokens of both test vocabularies, joined by random separators. */
static void varied_text(char *out, size_t len, uint32_t seed)
{
    static const char *const frag[] = {
        "the", "The", "energy", "model", "1999", "12345", "7", "caf\xC3\xA9", "\xE4\xB8\xAD\xE6\x96\x87",
        "\xF0\x9F\x98\x80", "don't", "WE'LL", "<|endoftext|>", "<tool>", "<s>", "</s>", "xyz",
        "=", ",", ".", "(a)", "\xFF", SP, "eeee", "abab", "  ", "   ", "\t", "\n", "\n\n", " \n",
        "world", "hello", "a", "<|", "|>", "'s"};
    static const char *const sep[] = {" ", " ", " ", "", "\n", "  ", "\n\n", " \n "};
    const size_t nf = sizeof frag / sizeof frag[0], ns = sizeof sep / sizeof sep[0];
    size_t w = 0;
    uint32_t x = seed;
    while (w < len) {
        x = x * 1664525u + 1013904223u;
        const char *f = (x >> 8) % 4 ? frag[(x >> 12) % nf] : sep[(x >> 12) % ns];
        for (size_t k = 0; f[k] && w < len; k++) out[w++] = f[k];
    }
}

/* Encode text through the public streaming calls, reading `step` bytes
 * more each time (a varying step when step is 0). */
static size_t encode_streamed(qeil_tokenizer *tk, const char *text, size_t len, int add_bos,
                              int parse_special, size_t step, int32_t *ids, size_t cap,
                              size_t *n_cuts)
{
    size_t n = 0, start = 0, avail = 0, got = 0;
    uint32_t x = 12345;
    int first = 1;
    *n_cuts = 0;
    while (start < len) {
        x = x * 1664525u + 1013904223u;
        size_t more = step ? step : 1 + (x >> 8) % 3000;
        avail = avail + more > len - start ? len - start : avail + more;
        int last = start + avail == len;
        size_t p = last ? avail : qeil_tokenizer_cut(tk, text + start, avail);
        if (p == 0) continue;
        qeil_status st = first ? qeil_tokenizer_encode_bytes(ctx, tk, text + start, p, add_bos, parse_special,
                                                             ids + n, cap - n, &got)
                               : qeil_tokenizer_encode_more(ctx, tk, text + start, p, parse_special,
                                                            ids + n, cap - n, &got);
        if (st != QEIL_OK) {
            TEST_FAIL_("streamed encode: %s", qeil_ctx_errmsg(ctx));
            return 0;
        }
        first = 0;
        *n_cuts += !last;
        n += got;
        start += p;
        avail -= p;
    }
    return n;
}

/* Byte-level BPE whose merges join every pair of ASCII bytes (0x09..0x7E
 * and newline): any two bytes of one pre-tokenizer piece merge, so a cut
 * inside a piece changes the tokens. */
static qeil_tokenizer *bpe_all_pairs(qeil_pretok pre)
{
    char cs[128];
    size_t nc = 0;
    cs[nc++] = '\n';
    cs[nc++] = '\t';
    for (int c = 0x20; c < 0x7F; c++) cs[nc++] = (char)c;
    size_t nv = 256 + nc * nc, nm = nc * nc;
    char **tok = calloc(nv, sizeof *tok), **mer = calloc(nm, sizeof *mer);
    qeil_tokenizer *tk = NULL;
    if (tok && mer) {
        char sp[16], a[8], b[8], raw[2];
        for (int i = 0; i < 256; i++) {
            raw[0] = (char)i;
            gpt2_spell(raw, 1, sp);
            tok[i] = strdup(sp);
        }
        for (size_t i = 0; i < nc; i++)
            for (size_t j = 0; j < nc; j++) {
                size_t k = i * nc + j;
                raw[0] = cs[i];
                raw[1] = cs[j];
                gpt2_spell(raw, 2, sp);
                tok[256 + k] = strdup(sp);
                gpt2_spell(raw, 1, a);
                gpt2_spell(raw + 1, 1, b);
                mer[k] = malloc(strlen(a) + strlen(b) + 2);
                if (mer[k]) sprintf(mer[k], "%s %s", a, b);
            }
        tk = make_tk(QEIL_TOK_BPE, pre, (const char *const *)tok, NULL, NULL, nv,
                     (const char *const *)mer, nm, -1, -1);
    }
    for (size_t i = 0; tok && i < nv; i++) free(tok[i]);
    for (size_t i = 0; mer && i < nm; i++) free(mer[i]);
    free(tok);
    free(mer);
    return tk;
}

static void check_same(const char *what, const int32_t *want, size_t n_want, const int32_t *got,
                       size_t n_got)
{
    size_t i = 0;
    while (i < n_want && i < n_got && want[i] == got[i]) i++;
    if (i < n_want || i < n_got)
        TEST_FAIL_("%s: tokens differ from the whole-text encoding at %zu (%zu vs %zu tokens)", what,
                   i, n_want, n_got);
}

TEST(encode_in_pieces_matches_whole)
{
    const size_t len = 3u << 19; /* 1.5 MB: the encoder's own pieces are 64 KiB */
    char *text = malloc(len);
    int32_t *want = malloc((len + 8) * sizeof *want), *got = malloc((len + 8) * sizeof *got);
    spm_vocab v;
    bpe_vocab b;
    bpe_vocab_init(&b);
    int have_spm = load_spm_vocab(&v);
    CHECK(have_spm);
    /* an SPM vocabulary whose tokens span spaces and newlines, so that few
     * pairs may be cut */
    static const char *const hand[] = {
        "<unk>", "<s>", "e", "\xE2\x96\x81", "a", "b", "\n", "e\xE2\x96\x81",
        "\xE2\x96\x81\xE2\x96\x81", "\n\n", "a\xE2\x96\x81\x62", "ee", "<tool>", "t", "h",
        "\xE2\x96\x81t", "he", "\xE2\x96\x81the"};
    static const float hand_score[] = {0, 0, -1, -2, -3, -4, -5, -1, -2, -1, -0.5f, -0.7f, 0,
                                       -6, -7, -1, -1, -0.1f};
    static const int32_t hand_type[] = {2, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1, 1, 1, 1, 1};
    enum { NT = 8 };
    qeil_tokenizer *tks[NT] = {
        have_spm ? spm_from_vocab(&v, 1) : NULL,
        make_tk(QEIL_TOK_SPM, QEIL_PRE_GPT2, hand, hand_score, hand_type, 18, NULL, 0, 1, 0),
        bpe_make(&b, QEIL_PRE_GPT2), bpe_make(&b, QEIL_PRE_LLAMA3), bpe_make(&b, QEIL_PRE_QWEN2),
        bpe_all_pairs(QEIL_PRE_GPT2), bpe_all_pairs(QEIL_PRE_LLAMA3), bpe_all_pairs(QEIL_PRE_QWEN2)};
    static const char *const names[NT] = {"spm", "spm-hand", "bpe-gpt2", "bpe-llama3", "bpe-qwen2",
                                          "bpe-pairs-gpt2", "bpe-pairs-llama3", "bpe-pairs-qwen2"};
    if (text && want && got) {
        for (int t = 0; t < NT; t++) {
            qeil_tokenizer *tk = tks[t];
            CHECK(tk != NULL);
            if (!tk) continue;
            varied_text(text, len, 7u + (uint32_t)t);
            for (int ps = 0; ps <= 1; ps++) {
                size_t nw = 0, ng = 0, cuts = 0;
                int add_bos = tk == tks[0] || tk == tks[1];
                /* the reference: one piece, no cut anywhere */
                CHECK_EQ_INT(qeil_tok_encode(ctx, tk, text, len, add_bos, ps, 0, SIZE_MAX, want,
                                             len + 8, &nw),
                             QEIL_OK);
                CHECK(nw > len / 8);
                /* the public call, in 64 KiB pieces */
                CHECK_EQ_INT(qeil_tokenizer_encode_bytes(ctx, tk, text, len, add_bos, ps, got,
                                                         len + 8, &ng),
                             QEIL_OK);
                check_same(names[t], want, nw, got, ng);
                /* tiny pieces on the first 200 kB: a cut at every allowed pair */
                size_t n2 = 0, n3 = 0;
                CHECK_EQ_INT(qeil_tok_encode(ctx, tk, text, 200000, add_bos, ps, 0, SIZE_MAX, want,
                                             len + 8, &n2),
                             QEIL_OK);
                CHECK_EQ_INT(qeil_tok_encode(ctx, tk, text, 200000, add_bos, ps, 0, 1, got, len + 8,
                                             &n3),
                             QEIL_OK);
                check_same(names[t], want, n2, got, n3);
                /* streamed through qeil_tokenizer_cut + encode_more */
                CHECK_EQ_INT(qeil_tok_encode(ctx, tk, text, len, add_bos, ps, 0, SIZE_MAX, want,
                                             len + 8, &nw),
                             QEIL_OK);
                ng = encode_streamed(tk, text, len, add_bos, ps, 0, got, len + 8, &cuts);
                check_same(names[t], want, nw, got, ng);
                if (cuts < 100) TEST_FAIL_("%s: only %zu cuts in 1.5 MB: the test cut nothing", names[t], cuts);
                ng = encode_streamed(tk, text, len, add_bos, ps, 4096, got, len + 8, &cuts);
                check_same(names[t], want, nw, got, ng);
            }
        }
    } else {
        CHECK(0);
    }
    for (int t = 0; t < NT; t++) qeil_tokenizer_free(tks[t]);
    bpe_vocab_free(&b);
    if (have_spm) free_spm_vocab(&v);
    free(text);
    free(want);
    free(got);
}

/* The cut points themselves, by hand. */
TEST(cut_points)
{
    bpe_vocab b;
    bpe_vocab_init(&b);
    qeil_tokenizer *bpe = bpe_make(&b, QEIL_PRE_LLAMA3);
    static const char *const hand[] = {"<unk>", "<s>", "e", SP, "a", "e\xE2\x96\x81", "x>"};
    static const int32_t hand_type[] = {2, 3, 1, 1, 1, 1, 1};
    qeil_tokenizer *spm = make_tk(QEIL_TOK_SPM, QEIL_PRE_GPT2, hand, NULL, hand_type, 7, NULL, 0, 1, 0);
    if (bpe && spm) {
        /* BPE: after a letter or digit, before a space or newline */
        CHECK_EQ_INT(qeil_tokenizer_cut(bpe, "ab cd", 5), 2);
        CHECK_EQ_INT(qeil_tokenizer_cut(bpe, "ab\ncd e, ", 9), 5);
        CHECK_EQ_INT(qeil_tokenizer_cut(bpe, "a7 ,  ", 6), 2);
        CHECK_EQ_INT(qeil_tokenizer_cut(bpe, "a, b.\n", 6), 0); /* punctuation keeps newlines */
        CHECK_EQ_INT(qeil_tokenizer_cut(bpe, "caf\xC3\xA9 x", 8), 0);
        CHECK_EQ_INT(qeil_tokenizer_cut(bpe, "ab c", 1), 0);
        /* nor where a special token ends: "<tool>" ends in '>' */
        CHECK_EQ_INT(qeil_tokenizer_cut(bpe, "x<tool> y", 9), 0);
        /* SPM: any ASCII pair no token holds; "e▁" is a token, "a▁" not */
        CHECK_EQ_INT(qeil_tokenizer_cut(spm, "ae ", 3), 1);
        CHECK_EQ_INT(qeil_tokenizer_cut(spm, "e e", 3), 2);
        CHECK_EQ_INT(qeil_tokenizer_cut(spm, "ee e", 4), 3);
        CHECK_EQ_INT(qeil_tokenizer_cut(spm, "a e", 3), 2);  /* ("▁", "e") is free too */
        CHECK_EQ_INT(qeil_tokenizer_cut(spm, "<s>ax", 5), 4);
        CHECK_EQ_INT(qeil_tokenizer_cut(spm, "<s>x", 4), 0); /* in <s>, or where it ends */
        CHECK_EQ_INT(qeil_tokenizer_cut(spm, "ax>", 3), 1);  /* "x>" is a token */
        CHECK_EQ_INT(qeil_tokenizer_cut(NULL, "ab", 2), 0);
    } else {
        CHECK(0);
    }
    qeil_tokenizer_free(bpe);
    qeil_tokenizer_free(spm);
    bpe_vocab_free(&b);
}

/* Scratch stays bounded: encoding 4 MB of prose peaks at a few MB of the
 * context's allocator (it took ~40 bytes per input byte in one piece). */
typedef struct {
    size_t cur, peak;
} mem_meter;

static void *meter_realloc(void *user, void *ptr, size_t size)
{
    mem_meter *m = user;
    size_t *h = ptr ? (size_t *)ptr - 2 : NULL;
    size_t old = h ? h[0] : 0;
    if (size == 0) {
        free(h);
        m->cur -= old;
        return NULL;
    }
    size_t *q = realloc(h, size + 2 * sizeof *q);
    if (!q) return NULL;
    q[0] = size;
    m->cur = m->cur - old + size;
    if (m->cur > m->peak) m->peak = m->cur;
    return q + 2;
}

TEST(encode_scratch_is_bounded)
{
    mem_meter m = {0, 0};
    qeil_ctx_params p = qeil_ctx_default_params();
    p.realloc = meter_realloc;
    p.alloc_user = &m;
    qeil_ctx *mctx = qeil_ctx_create(&p);
    spm_vocab v;
    const size_t len = 4u << 20;
    char *text = malloc(len);
    int32_t *ids = malloc(len * sizeof *ids);
    if (!mctx || !text || !ids || !load_spm_vocab(&v)) {
        CHECK(0);
    } else {
        qeil_tokenizer *tk = spm_from_vocab(&v, 0);
        const char *prose = "The year 1999 was caf\xC3\xA9-time, said Alice; the energy of the model.\n";
        size_t pl = strlen(prose), n = 0;
        for (size_t i = 0; i < len; i++) text[i] = prose[i % pl];
        size_t base = m.cur;
        m.peak = m.cur;
        CHECK_EQ_INT(qeil_tokenizer_encode_bytes(mctx, tk, text, len, 0, 0, ids, len, &n), QEIL_OK);
        CHECK(n > len / 8);
        size_t scratch = m.peak - base;
        if (scratch > (8u << 20))
            TEST_FAIL_("encoding %zu bytes took %zu bytes of scratch (want <= 8 MiB)", len, scratch);
        CHECK_EQ_INT(m.cur, base); /* all of it freed */
        qeil_tokenizer_free(tk);
        free_spm_vocab(&v);
    }
    free(text);
    free(ids);
    qeil_ctx_free(mctx);
}

/* "q" + the base-26 digits of j as letters a..z: the prefix of spell(j) is
 * spell(j / 26), so every such token is one merge away from a shorter one. */
static void spell26(size_t j, char *out)
{
    char d[16];
    int k = 0;
    do {
        d[k++] = (char)('a' + j % 26);
        j /= 26;
    } while (j);
    *out++ = 'q';
    while (k) *out++ = d[--k];
    *out = '\0';
}

/* A 150k-token vocabulary (the size of Qwen2's) with as many merges builds,
 * every token is found again, and merges chain as ranked. */
TEST(large_vocabulary)
{
    const size_t n = 150000, nm = n - 256 - 1;
    char **tok = malloc(n * sizeof *tok);
    char **merges = malloc(nm * sizeof *merges);
    if (!tok || !merges) {
        free(tok);
        free(merges);
        CHECK(0);
        return;
    }
    char sp[16];
    for (int b = 0; b < 256; b++) {
        char r = (char)b;
        gpt2_spell(&r, 1, sp);
        tok[b] = strdup(sp);
    }
    /* token 256 + j - 1 = spell26(j), j = 1 .. n - 256; its merge is
     * spell26(j / 26) + last letter ("q" + letter for j < 26) */
    for (size_t j = 1; j <= nm; j++) {
        char s[32], pre[32], m[80];
        spell26(j, s);
        tok[256 + j - 1] = strdup(s);
        if (j < 26)
            snprintf(pre, sizeof pre, "q");
        else
            spell26(j / 26, pre);
        snprintf(m, sizeof m, "%s %c", pre, s[strlen(s) - 1]);
        merges[j - 1] = strdup(m);
    }
    tok[n - 1] = strdup("qb"); /* a duplicate of spell26(1): the first id wins */
    qeil_tokenizer *tk = make_tk(QEIL_TOK_BPE, QEIL_PRE_GPT2, (const char *const *)tok, NULL, NULL,
                                 n, (const char *const *)merges, nm, -1, -1);
    CHECK(tk != NULL);
    if (tk) {
        CHECK_EQ_INT(qeil_tokenizer_n_vocab(tk), n);
        size_t bad = 0;
        for (size_t i = 0; i + 1 < n; i++)
            bad += qeil_tokenizer_find(tk, tok[i], strlen(tok[i])) != (int32_t)i;
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(qeil_tokenizer_find(tk, "qb", 2), 256);
        /* every word spell26(j) merges into its own single token */
        const size_t probe[] = {1, 25, 26, 675, 676, 17575, 17576, 100000, nm};
        for (size_t p = 0; p < sizeof probe / sizeof probe[0]; p++) {
            char s[32];
            spell26(probe[p], s);
            check_ids(tk, s, 0, (const int32_t[]){(int32_t)(256 + probe[p] - 1)}, 1);
        }
    }
    qeil_tokenizer_free(tk);
    for (size_t i = 0; i < n; i++) free(tok[i]);
    for (size_t i = 0; i < nm; i++) free(merges[i]);
    free(tok);
    free(merges);
}

int main(void)
{
    ctx = qeil_ctx_create(NULL);
    if (!ctx) return 1;
    RUN(spm_matches_sentencepiece);
    RUN(spm_oracle_reproducible);
    RUN(spm_hand_cases);
    RUN(spm_invalid_utf8_round_trips);
    RUN(bpe_hand_cases);
    RUN(encode_cap_too_small);
    RUN(pretokenizer_splits);
    RUN(gguf_spm_matches_arrays);
    RUN(gguf_bpe_matches_arrays);
    RUN(gguf_errors_name_the_key);
    RUN(hostile_vocabularies);
    RUN(one_megabyte_inputs);
    RUN(large_vocabulary);
    RUN(encode_in_pieces_matches_whole);
    RUN(cut_points);
    RUN(encode_scratch_is_bounded);
    qeil_ctx_free(ctx);
    return test_summary("tokenizer");
}
