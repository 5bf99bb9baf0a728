/* test_core.c — status strings, context errors, strict parsing, RNG. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/quant.h"
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

/* ------------------------------------------------------------------------ */
/* CPU features (src/core/cpu.c)                                             */
/* ------------------------------------------------------------------------ */

TEST(cpu_features_str)
{
    char buf[QEIL_CPU_FEATURES_STR_MAX];
    CHECK_EQ_STR(qeil_cpu_features_str(0, buf, sizeof buf), "none");
    CHECK_EQ_STR(qeil_cpu_features_str(QEIL_CPU_AVX2 | QEIL_CPU_FMA | QEIL_CPU_AVX512VNNI, buf,
                                       sizeof buf),
                 "avx2 fma avx512vnni");
    CHECK_EQ_STR(qeil_cpu_features_str(QEIL_CPU_ASIMD | QEIL_CPU_ASIMDDP | QEIL_CPU_I8MM, buf,
                                       sizeof buf),
                 "asimd asimddp i8mm");
    /* every flag fits the documented maximum */
    qeil_cpu_features_str(~0u, buf, sizeof buf);
    CHECK(strstr(buf, "avx512bf16") != NULL && strstr(buf, " sve") != NULL);
    /* a short buffer keeps whole names only, NUL-terminated */
    char small[12];
    CHECK_EQ_STR(qeil_cpu_features_str(QEIL_CPU_AVX | QEIL_CPU_AVX2 | QEIL_CPU_FMA, small,
                                       sizeof small),
                 "avx avx2");
}

#if defined(__x86_64__) || defined(__i386__)
/* Is `flag` a whole word of the "flags" line of /proc/cpuinfo? -1 when the
 * file or line is missing. (x86 only: qemu-user shows the host's file.) */
static int cpuinfo_has(const char *key, const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return -1;
    char line[8192];
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, strlen(key)) != 0) continue;
        found = 0;
        for (char *t = strtok(strchr(line, ':') ? strchr(line, ':') + 1 : line, " \t\n"); t;
             t = strtok(NULL, " \t\n"))
            if (strcmp(t, flag) == 0) found = 1;
    }
    fclose(f);
    return found;
}
#endif

TEST(cpu_features_consistent)
{
    const unsigned f = qeil_cpu_features();
    char buf[QEIL_CPU_FEATURES_STR_MAX];
    printf("  cpu features: %s\n", qeil_cpu_features_str(f, buf, sizeof buf));
    CHECK_EQ_INT(f, qeil_cpu_features_detect());
    const unsigned x86 = 0xffffu, arm = 0xffff0000u;
#if defined(__x86_64__) || defined(__i386__)
    (void)x86;
    CHECK_EQ_INT(f & arm, 0);
    /* implications the detection must keep */
    if (f & (QEIL_CPU_AVX2 | QEIL_CPU_FMA | QEIL_CPU_F16C)) CHECK(f & QEIL_CPU_AVX);
    if (f & (QEIL_CPU_AVX512BW | QEIL_CPU_AVX512VL | QEIL_CPU_AVX512VNNI)) CHECK(f & QEIL_CPU_AVX512F);
    if (f & QEIL_CPU_AVXVNNI) CHECK(f & QEIL_CPU_AVX2);
    /* the kernel dispatch reads the same flags */
    if (!qeil_cpu_simd_disabled()) {
        const unsigned lvl = QEIL_CPU_AVX2 | QEIL_CPU_FMA | QEIL_CPU_F16C;
        CHECK_EQ_INT(qeil_simd_best() == QEIL_SIMD_AVX2, (f & lvl) == lvl);
        const unsigned evex = QEIL_CPU_AVX512F | QEIL_CPU_AVX512VL | QEIL_CPU_AVX512VNNI;
        CHECK_EQ_INT(qeil_cpu_has_avx512_vnni(), (f & lvl) == lvl && (f & evex) == evex);
    }
    /* the kernel's own view, where Linux has one (a VM may hide a flag
     * from both, never show it to one only) */
    static const struct {
        unsigned flag;
        const char *name;
    } k_x86[] = {{QEIL_CPU_AVX2, "avx2"},         {QEIL_CPU_FMA, "fma"},
                 {QEIL_CPU_F16C, "f16c"},         {QEIL_CPU_AVX512F, "avx512f"},
                 {QEIL_CPU_AVX512VL, "avx512vl"}, {QEIL_CPU_AVX512VNNI, "avx512_vnni"},
                 {QEIL_CPU_AVXVNNI, "avx_vnni"},  {QEIL_CPU_AVX512BF16, "avx512_bf16"}};
    if (cpuinfo_has("flags", "fpu") < 0) printf("  no /proc/cpuinfo flags line: not cross-checked\n");
    else for (size_t i = 0; i < sizeof k_x86 / sizeof k_x86[0]; i++)
        if (!!(f & k_x86[i].flag) != cpuinfo_has("flags", k_x86[i].name))
            TEST_FAIL_("%s: cpuid %d, /proc/cpuinfo %d", k_x86[i].name, !!(f & k_x86[i].flag),
                       cpuinfo_has("flags", k_x86[i].name));
#elif defined(__aarch64__)
    (void)arm;
    CHECK_EQ_INT(f & x86, 0);
    CHECK(f & QEIL_CPU_ASIMD); /* mandatory on AArch64 Linux */
    if (!qeil_cpu_simd_disabled()) {
        CHECK(qeil_simd_best() == QEIL_SIMD_NEON);
        CHECK_EQ_INT(qeil_cpu_has_arm_dotprod(), (f & QEIL_CPU_ASIMDDP) != 0);
    }
    /* under qemu-user (make test-arm) the runner names the core model */
    const char *runner = getenv("QEIL_TEST_RUNNER");
    if (runner && strstr(runner, "-cpu max")) {
        CHECK(f & QEIL_CPU_ASIMDDP);
        CHECK(f & QEIL_CPU_I8MM);
        CHECK(f & QEIL_CPU_ASIMDHP);
    } else if (runner && strstr(runner, "-cpu cortex-a76")) { /* ARMv8.2: SDOT, no I8MM */
        CHECK(f & QEIL_CPU_ASIMDDP);
        CHECK(f & QEIL_CPU_ASIMDHP);
        CHECK_EQ_INT(f & (QEIL_CPU_I8MM | QEIL_CPU_SVE), 0);
    } else if (runner && strstr(runner, "-cpu cortex-a53")) {
        CHECK_EQ_INT(f & (QEIL_CPU_ASIMDDP | QEIL_CPU_I8MM | QEIL_CPU_ASIMDHP | QEIL_CPU_SVE), 0);
    }
#else
    (void)x86;
    (void)arm;
    CHECK_EQ_INT(f, 0);
#endif
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
    RUN(cpu_features_str);
    RUN(cpu_features_consistent);
    return test_summary("core");
}
