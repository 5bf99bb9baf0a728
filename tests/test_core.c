/* test_core.c — status strings, context errors, strict parsing, RNG. */
#include <float.h>
#include <string.h>

#include "qeil/qeil.h"
#include "test.h"

TEST(status_strings_are_distinct)
{
    for (int a = QEIL_OK; a <= QEIL_ERR_DEVICE; a++)
        for (int b = a + 1; b <= QEIL_ERR_DEVICE; b++)
            CHECK(strcmp(qeil_status_str((qeil_status)a), qeil_status_str((qeil_status)b)) != 0);
    CHECK_EQ_STR(qeil_status_str(QEIL_OK), "ok");
}

TEST(ctx_records_failure)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    CHECK(ctx != NULL);
    CHECK_EQ_STR(qeil_ctx_errmsg(ctx), "");
    CHECK_EQ_INT(qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "x=%d", 7), QEIL_ERR_RANGE);
    CHECK_EQ_STR(qeil_ctx_errmsg(ctx), "x=7");
    qeil_ctx_clear(ctx);
    CHECK_EQ_STR(qeil_ctx_errmsg(ctx), "");
    qeil_ctx_free(ctx);
    qeil_ctx_free(NULL);
}

static int log_calls;
static void count_log(void *user, qeil_log_level lvl, const char *msg)
{
    (void)user; (void)lvl; (void)msg;
    log_calls++;
}

TEST(ctx_log_hook_and_level)
{
    qeil_ctx_params p = qeil_ctx_default_params();
    p.log = count_log;
    p.log_level = QEIL_LOG_WARN;
    qeil_ctx *ctx = qeil_ctx_create(&p);
    log_calls = 0;
    qeil_ctx_log(ctx, QEIL_LOG_INFO, "dropped");
    qeil_ctx_log(ctx, QEIL_LOG_WARN, "kept");
    qeil_ctx_fail(ctx, QEIL_ERR_IO, "also kept");
    CHECK_EQ_INT(log_calls, 2);
    qeil_ctx_free(ctx);
}

TEST(calloc_overflow_is_null)
{
    CHECK(qeil_calloc(NULL, SIZE_MAX / 2, 4) == NULL);
    void *p = qeil_calloc(NULL, 3, 4);
    CHECK(p != NULL);
    qeil_free(NULL, p);
}

typedef struct {
    int allocs, frees;
} alloc_count;

static void *counting_realloc(void *user, void *ptr, size_t size)
{
    alloc_count *c = user;
    if (!ptr && size) c->allocs++;
    if (ptr && !size) c->frees++;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

/* Big buffers: through the hook, 2 MiB-aligned from 2 MiB on, 64-byte
 * aligned below; every byte writable; freed through the hook. */
TEST(malloc_big_aligns_and_uses_the_hook)
{
    alloc_count c = {0, 0};
    qeil_ctx_params p = qeil_ctx_default_params();
    p.realloc = counting_realloc;
    p.alloc_user = &c;
    qeil_ctx *ctx = qeil_ctx_create(&p);
    CHECK(ctx != NULL);
    c.allocs = 0;
    const size_t sizes[] = {1, 100, 4096, QEIL_BIG_PAGE - 1, QEIL_BIG_PAGE, 5 * QEIL_BIG_PAGE + 12345};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *b = qeil_malloc_big(ctx, sizes[i]);
        CHECK(b != NULL);
        if (!b) continue;
        const uintptr_t align = sizes[i] >= QEIL_BIG_PAGE ? QEIL_BIG_PAGE : 64;
        CHECK_EQ_INT((uintptr_t)b % align, 0);
        memset(b, 0xA5, sizes[i]);
        CHECK(b[0] == 0xA5 && b[sizes[i] - 1] == 0xA5);
        qeil_free_big(ctx, b);
    }
    CHECK_EQ_INT(c.allocs, 6);
    CHECK_EQ_INT(c.frees, 6);
    qeil_free_big(ctx, NULL);
    CHECK(qeil_malloc_big(ctx, SIZE_MAX - 8) == NULL); /* overflow: NULL, nothing asked of the hook */
    CHECK_EQ_INT(c.allocs, 6);
    qeil_ctx_free(ctx);
}

/* The advice reaches the kernel: the buffer's mapping is eligible for
 * transparent huge pages (/proc/self/smaps, THPeligible). Needs Linux with
 * THP not "never". */
TEST(malloc_big_is_thp_eligible)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char mode[128] = "";
    if (f) {
        if (!fgets(mode, sizeof mode, f)) mode[0] = '\0';
        fclose(f);
    }
    if (!mode[0]) SKIP("no /sys/kernel/mm/transparent_hugepage/enabled (not Linux, or no THP)");
    if (strstr(mode, "[never]")) SKIP("transparent huge pages are off ([never])");
    /* qemu-user 7.2 (make test-arm, tests/run.sh exports the runner) drops
     * every madvise, the MADV_HUGEPAGE hint included. */
    const char *runner = getenv("QEIL_TEST_RUNNER");
    if (runner && runner[0] && !strstr(mode, "[always]"))
        SKIP("under an emulator (QEIL_TEST_RUNNER) madvise does not reach the kernel");
    const size_t n = 4 * QEIL_BIG_PAGE;
    uint8_t *b = qeil_malloc_big(NULL, n);
    CHECK(b != NULL);
    if (!b) return;
    memset(b, 1, n);
    f = fopen("/proc/self/smaps", "r");
    CHECK(f != NULL);
    int eligible = -1, inside = 0;
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        unsigned long long lo, hi;
        char c;
        if (sscanf(line, "%llx-%llx %c", &lo, &hi, &c) == 3) { /* a mapping's header */
            inside = (uintptr_t)b >= lo && (uintptr_t)b < hi;
            continue;
        }
        if (inside && strncmp(line, "THPeligible:", 12) == 0) eligible = (int)strtol(line + 12, NULL, 10);
    }
    if (f) fclose(f);
    CHECK_EQ_INT(eligible, 1);
    qeil_free_big(NULL, b);
}

TEST(parse_u64_strict)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    uint64_t v = 0;
    CHECK_EQ_INT(qeil_parse_u64(ctx, "--n", "42", 1, 100, &v), QEIL_OK);
    CHECK_EQ_INT(v, 42);
    CHECK_EQ_INT(qeil_parse_u64(ctx, "--n", "42x", 1, 100, &v), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "--n");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "42x");
    CHECK_EQ_INT(qeil_parse_u64(ctx, "--n", "", 1, 100, &v), QEIL_ERR_FORMAT);
    CHECK_EQ_INT(qeil_parse_u64(ctx, "--n", "-1", 1, 100, &v), QEIL_ERR_FORMAT);
    CHECK_EQ_INT(qeil_parse_u64(ctx, "--n", " 5", 1, 100, &v), QEIL_ERR_FORMAT);
    CHECK_EQ_INT(qeil_parse_u64(ctx, "--n", "101", 1, 100, &v), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "1..100");
    CHECK_EQ_INT(qeil_parse_u64(ctx, "--n", "0", 1, 100, &v), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_parse_u64(ctx, "--n", "99999999999999999999999", 0, UINT64_MAX, &v),
                 QEIL_ERR_RANGE);
    CHECK_EQ_INT(v, 42); /* untouched on failure */
    qeil_ctx_free(ctx);
}

TEST(parse_f64_strict)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    double v = 0;
    CHECK_EQ_INT(qeil_parse_f64(ctx, "--temp", "0.7", 0, 2, &v), QEIL_OK);
    CHECK_NEAR(v, 0.7, 0, 0);
    CHECK_EQ_INT(qeil_parse_f64(ctx, "--temp", "2.5", 0, 2, &v), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_parse_f64(ctx, "--temp", "1e", 0, 2, &v), QEIL_ERR_FORMAT);
    CHECK_EQ_INT(qeil_parse_f64(ctx, "--temp", "1e999", 0, 2, &v), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "1e999");
    /* as strict as the integers: decimal only, the whole string, no sign
     * '+', no hex (strtod's 0x10 and 0x1p4), no inf/nan, no blanks */
    static const char *bad[] = {"nan", "inf", "-inf", "infinity", "NAN", "0x10", "0X1",
                                "0x1p4", "+3", "+0.5", " 1", "1 ", "1e+", ".", "-", "",
                                "1.5.2", "e5", "--1", "1f", "\t1"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        v = 0.25;
        qeil_status st = qeil_parse_f64(ctx, "--temp", bad[k], 0, 1e300, &v);
        if (st != QEIL_ERR_FORMAT) TEST_FAIL_("'%s' gave status %d, want FORMAT", bad[k], st);
        CHECK_NEAR(v, 0.25, 0, 0); /* untouched on failure */
    }
    CHECK_EQ_INT(qeil_parse_f64(ctx, "--temp", "+3", 0, 10, &v), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "'+3'");
    static const struct {
        const char *text;
        double want;
    } good[] = {{"3", 3}, {"-2", -2}, {".5", 0.5}, {"1.", 1}, {"1e3", 1e3}, {"2.5E-3", 2.5e-3},
                {"1e+2", 100}, {"0", 0}, {"0e-400", 0}, {"2.2250738585072014e-308", DBL_MIN}};
    for (size_t k = 0; k < sizeof good / sizeof *good; k++) {
        v = -1;
        CHECK_EQ_INT(qeil_parse_f64(ctx, "--x", good[k].text, -10, 1e300, &v), QEIL_OK);
        CHECK_NEAR(v, good[k].want, 0, 0);
    }
    /* a nonzero value that underflows: the message quotes what was typed,
     * not the 0 or subnormal strtod made of it */
    CHECK_EQ_INT(qeil_parse_f64(ctx, "--temp", "1e-320", 0, 100, &v), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "1e-320");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "too small");
    CHECK_EQ_INT(qeil_parse_f64(ctx, "--temp", "-1e-400", -1, 1, &v), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "-1e-400");
    qeil_ctx_free(ctx);
}

/* \u0000 inside a JSON string (key or value) is found; an escaped
 * backslash before "u0000", text outside strings and a cut-off escape are
 * not NULs. */
TEST(json_find_nul)
{
    static const struct {
        const char *json;
        size_t want; /* (size_t)-1: none (the length) */
    } t[] = {
        {"{\"name\": \"exa\\u0000mple\"}", 13},
        {"{\"a\\u0000\": 1}", 3},
        {"[\"x\", \"\\\\u0000\"]", (size_t)-1},       /* "\\u0000": backslash, then text */
        {"[\"\\\\\\u0000\"]", 4},                      /* "\\\u0000": backslash, then NUL */
        {"[\"\\u00e9\", \"\\\"\\u0000\"]", 14},
        {"{\"k\": 1} \\u0000", (size_t)-1},            /* not in a string */
        {"[\"\\u000", (size_t)-1},                     /* cut short */
        {"[\"\\u0001\"]", (size_t)-1},
        {"", (size_t)-1},
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        size_t n = strlen(t[k].json);
        size_t want = t[k].want == (size_t)-1 ? n : t[k].want;
        size_t got = qeil_json_find_nul(t[k].json, n);
        if (got != want) TEST_FAIL_("'%s': %zu, want %zu", t[k].json, got, want);
    }
    /* bounded by len: the NUL escape past len is not seen */
    CHECK_EQ_INT(qeil_json_find_nul("[\"\\u0000\"]", 5), 5);
    CHECK_EQ_INT(qeil_json_find_nul(NULL, 0), 0);
}

TEST(rng_deterministic_and_uniform)
{
    qeil_rng a, b;
    qeil_rng_seed(&a, 123);
    qeil_rng_seed(&b, 123);
    for (int i = 0; i < 100; i++) CHECK(qeil_rng_u64(&a) == qeil_rng_u64(&b));
    qeil_rng_seed(&b, 124);
    CHECK(qeil_rng_u64(&a) != qeil_rng_u64(&b));
    /* 60000 draws of below(6): each face within 5 sigma of 10000 */
    int count[6] = {0};
    for (int i = 0; i < 60000; i++) count[qeil_rng_below(&a, 6)]++;
    for (int i = 0; i < 6; i++) CHECK(abs(count[i] - 10000) < 5 * 92);
    double sum = 0;
    for (int i = 0; i < 10000; i++) {
        double u = qeil_rng_uniform(&a);
        CHECK(u >= 0 && u < 1);
        sum += u;
    }
    CHECK_NEAR(sum / 10000, 0.5, 0, 0.015);
    CHECK_EQ_INT(qeil_rng_below(&a, 0), 0);
}

int main(void)
{
    RUN(status_strings_are_distinct);
    RUN(ctx_records_failure);
    RUN(ctx_log_hook_and_level);
    RUN(calloc_overflow_is_null);
    RUN(malloc_big_aligns_and_uses_the_hook);
    RUN(malloc_big_is_thp_eligible);
    RUN(parse_u64_strict);
    RUN(parse_f64_strict);
    RUN(json_find_nul);
    RUN(rng_deterministic_and_uniform);
    return test_summary("core");
}
