/*
 * test.h — a tiny test harness (libuv-style typed checks, SKIP for missing
 * hardware). Checks never compile out; a failing check prints both values.
 *
 *     TEST(parse_rejects_junk) {
 *         CHECK_EQ_INT(qeil_parse_u64(ctx, "x", "12a", 0, 99, &v), QEIL_ERR_FORMAT);
 *     }
 *     int main(void) { RUN(parse_rejects_junk); return test_summary("core"); }
 *
 * Output lines, read by tests/run.sh: "PASS name", "FAIL name: why",
 * "SKIP name: why".
 */
#ifndef QEIL_TEST_H
#define QEIL_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_;            /* current test failed */
static const char *test_skip_;      /* current test skipped, with reason */
static int test_n_pass_, test_n_fail_, test_n_skip_;

#define TEST(name) static void name(void)

#define TEST_FAIL_(...)                                                     \
    do {                                                                    \
        fprintf(stdout, "  %s:%d: ", __FILE__, __LINE__);                   \
        fprintf(stdout, __VA_ARGS__);                                       \
        fprintf(stdout, "\n");                                              \
        test_failed_ = 1;                                                   \
    } while (0)

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) TEST_FAIL_("CHECK(%s) failed", #cond);                 \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                  \
    do {                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                 \
        if (a_ != b_) TEST_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_); \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                  \
    do {                                                                    \
        const char *a_ = (a), *b_ = (b);                                    \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                              \
            TEST_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b,                \
                       a_ ? a_ : "(null)", b_ ? b_ : "(null)");             \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                         \
    do {                                                                    \
        const char *h_ = (hay), *n_ = (needle);                             \
        if (!h_ || !strstr(h_, n_))                                         \
            TEST_FAIL_("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); \
    } while (0)

/* |a - b| <= tol_abs + tol_rel * |b| */
#define CHECK_NEAR(a, b, tol_rel, tol_abs)                                  \
    do {                                                                    \
        double a_ = (double)(a), b_ = (double)(b);                          \
        if (!(fabs(a_ - b_) <= (tol_abs) + (tol_rel) * fabs(b_)))           \
            TEST_FAIL_("%s ~= %s: %.17g vs %.17g (rel %g abs %g)", #a, #b,  \
                       a_, b_, (double)(tol_rel), (double)(tol_abs));       \
    } while (0)

/* Mark the current test skipped (missing hardware, missing tool) and return. */
#define SKIP(reason)                                                        \
    do {                                                                    \
        test_skip_ = (reason);                                              \
        return;                                                             \
    } while (0)

#define RUN(name)                                                           \
    do {                                                                    \
        test_failed_ = 0;                                                   \
        test_skip_ = NULL;                                                  \
        name();                                                             \
        if (test_failed_) {                                                 \
            printf("FAIL %s\n", #name);                                     \
            test_n_fail_++;                                                 \
        } else if (test_skip_) {                                            \
            printf("SKIP %s: %s\n", #name, test_skip_);                     \
            test_n_skip_++;                                                 \
        } else {                                                            \
            printf("PASS %s\n", #name);                                     \
            test_n_pass_++;                                                 \
        }                                                                   \
        fflush(stdout);                                                     \
    } while (0)

static inline int test_summary(const char *suite)
{
    printf("# %s: %d passed, %d failed, %d skipped\n", suite, test_n_pass_,
           test_n_fail_, test_n_skip_);
    return test_n_fail_ ? 1 : 0;
}

#endif /* QEIL_TEST_H */
