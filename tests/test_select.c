/* test_select.c — answer extraction, the EAC → ARDE cascade with CSVET early
 * stopping, the baselines (first, majority, ESC, Adaptive-Consistency), the
 * stopping-rule math, pass@k and the aggregate metrics. Every selection test
 * replays a fixed list of samples through a fake generator; stop indices
 * are computed by hand in the comments. */
#include "qeil/select.h"
#include "select/select_math.h"

#include "test.h"

#include <stdint.h>

static qeil_ctx *ctx;

/* ------------------------------------------------------------------------ */
/* Fake generator: replays a fixed list                                      */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *text;   /* NULL: the sample has no text */
    double ll;          /* log-likelihood per token (the sample has 10 tokens) */
    uint32_t flags;
} fake_sample;

#define FAKE_MAX_CALLS 64

typedef struct {
    const fake_sample *s;
    uint32_t n;
    uint32_t calls, call_first[FAKE_MAX_CALLS], call_n[FAKE_MAX_CALLS];
    uint32_t fail_at;   /* return fail_status when a call reaches this index */
    qeil_status fail_status;
    double bad_logprob; /* non-zero: sample 0 reports this logprob_sum */
} fake_gen;

static qeil_status fake_fn(void *user, uint32_t first, uint32_t n, qeil_sample *out)
{
    fake_gen *g = user;
    if (g->calls < FAKE_MAX_CALLS) {
        g->call_first[g->calls] = first;
        g->call_n[g->calls] = n;
    }
    g->calls++;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = first + i;
        if (g->fail_status != QEIL_OK && k >= g->fail_at) return g->fail_status;
        if (k >= g->n) return QEIL_ERR_RANGE; /* the selector asked past the list */
        out[i].text = g->s[k].text;
        out[i].text_len = g->s[k].text ? strlen(g->s[k].text) : 0;
        out[i].n_tokens = 10;
        out[i].logprob_sum = 10.0 * g->s[k].ll;
        out[i].flags = g->s[k].flags;
    }
    if (g->bad_logprob != 0.0 && first == 0) out[0].logprob_sum = g->bad_logprob;
    return QEIL_OK;
}

/* Build a stream from a string of letters: 'A'..'Z' → answer "#### <100+i>",
 * '-' → no answer. All samples get log-likelihood -0.5 per token. */
static uint32_t stream_from(const char *pattern, fake_sample *out, char (*texts)[32])
{
    uint32_t n = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p == ' ') continue;
        if (*p == '-') snprintf(texts[n], 32, "I do not know.");
        else snprintf(texts[n], 32, "so #### %d", 100 + (*p - 'A'));
        out[n].text = texts[n];
        out[n].ll = -0.5;
        out[n].flags = 0;
        n++;
    }
    return n;
}

typedef struct {
    fake_sample s[64];
    char texts[64][32];
    fake_gen g;
} stream;

static void stream_init(stream *st, const char *pattern)
{
    memset(st, 0, sizeof *st);
    st->g.n = stream_from(pattern, st->s, st->texts);
    st->g.s = st->s;
}

/* Run `pattern` with params p; returns the status, fills res. */
static qeil_status run_pattern(const qeil_select_params *p, stream *st, qeil_select_result *res)
{
    qeil_selector *sel = NULL;
    qeil_status rc = qeil_select_create(ctx, p, &sel);
    if (rc != QEIL_OK) return rc;
    rc = qeil_select_run(sel, fake_fn, &st->g, res);
    qeil_select_free(sel);
    return rc;
}

/* The answer letter 'A'.. behind a result ("100" → 'A'), '-' for NONE. */
static char letter_of(const qeil_select_result *r)
{
    if (!r->answer.has) return '-';
    return (char)('A' + (strtol(r->answer.text, NULL, 10) - 100));
}

/* ------------------------------------------------------------------------ */
/* Extraction                                                                */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *text;
    const char *want; /* NULL: no extractable answer */
} xcase;

TEST(extract_numeric_table)
{
    static const xcase cases[] = {
        /* markers */
        {"Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"},
        {"#### -7", "-7"},
        {"####42", "42"},
        {"The answer is 42", "42"},
        {"The answer is 1,234.", "1234"},
        {"So the final answer is $1,234.56.", "1234.56"},
        {"answer: -3.5", "-3.5"},
        {"ANSWER IS 17 apples", "17"},
        {"Answer = 8", "8"},
        {"The answer to part 1 is 5", "5"},          /* no connector after "answer": last number */
        {"The answer is \\boxed{12}.", "12"},
        {"so we get \\boxed{3/4}", "0.75"},
        {"#### Step 1\nadd them: 9\n#### 12", "12"}, /* "#### Step" is a heading */
        {"#### 5\nQuestion: next one?\n#### 9", "5"}, /* first marker, not a run-on */
        {"3 + 4 = 7 and 2 more days", "7"},          /* last line's '=' */
        {"Total = 1,234 in 2 days", "1234"},
        /* last number fallback */
        {"I have 3 apples and 4 pears", "4"},
        {"It costs 5 dollars.", "5"},
        {"10-3=7", "7"},
        {"x-4 is what we want, so 9", "9"},
        {"we find 12,34", "34"},                      /* not a thousands group */
        /* normalisation */
        {"#### 42.0", "42"},
        {"#### 042", "42"},
        {"#### -0", "0"},
        {"#### +5", "5"},
        {"#### 0.50", "0.5"},
        {"#### .5", "0.5"},
        {"#### 1,234,567.890", "1234567.89"},
        {"#### $18", "18"},
        {"#### -$5", "-5"},
        {"#### \xE2\x88\x92" "12", "-12"},          /* U+2212 minus sign */
        {"#### 6/8", "0.75"},
        {"#### 1/3", "1/3"},
        {"#### 4/2", "2"},
        {"#### -2/4", "-0.5"},
        {"#### 3/0", "3"},                            /* p/0 is no fraction */
        {"#### 50%", "50"},
        {"answer is 10.", "10"},
        /* no answer */
        {"I do not know.", NULL},
        {"", NULL},
        {"answer is (c)", NULL},
        {"#### 12345678901234567890123456789012345678901", NULL}, /* 41 digits */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qeil_answer a;
        CHECK_EQ_INT(qeil_answer_extract(ctx, QEIL_ANSWER_NUMERIC, cases[i].text,
                                         strlen(cases[i].text), &a),
                     QEIL_OK);
        if (cases[i].want) {
            if (!a.has) TEST_FAIL_("case %zu \"%s\": no answer, want %s", i, cases[i].text, cases[i].want);
            else CHECK_EQ_STR(a.text, cases[i].want);
        } else if (a.has) {
            TEST_FAIL_("case %zu \"%s\": got %s, want none", i, cases[i].text, a.text);
        }
    }
}

TEST(extract_choice_table)
{
    static const xcase cases[] = {
        {"The answer is (B)", "B"},
        {"Answer: C", "C"},
        {"#### D", "D"},
        {"Let me think.\nB\n", "B"},
        {"reasoning...\n(A)", "A"},
        {"reasoning...\n**C.**", "C"},
        {"answer is (c)", "C"},
        {"The correct answer is: b.", "B"},
        {"The correct option is D because it melts.", "D"},
        {"the answer is choice (E)", "E"},
        {"Answer: option A", "A"},
        {"A is wrong.\nThe answer is C", "C"},
        {"the answer is a dog", NULL},  /* lowercase article, not (A) */
        {"I think so", NULL},
        {"The answer is 42", NULL},
        {"#### Z", NULL},               /* outside A–H */
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qeil_answer a;
        CHECK_EQ_INT(qeil_answer_extract(ctx, QEIL_ANSWER_CHOICE, cases[i].text,
                                         strlen(cases[i].text), &a),
                     QEIL_OK);
        if (cases[i].want) {
            if (!a.has) TEST_FAIL_("case %zu \"%s\": no answer, want %s", i, cases[i].text, cases[i].want);
            else CHECK_EQ_STR(a.text, cases[i].want);
        } else if (a.has) {
            TEST_FAIL_("case %zu \"%s\": got %s, want none", i, cases[i].text, a.text);
        }
    }
}

TEST(extract_reads_only_len_bytes)
{
    /* "#### 42" followed by bytes beyond len: they must not be read */
    const char buf[] = "#### 4299999";
    qeil_answer a;
    CHECK_EQ_INT(qeil_answer_extract(ctx, QEIL_ANSWER_NUMERIC, buf, 7, &a), QEIL_OK);
    CHECK_EQ_STR(a.text, "42");
    CHECK_EQ_INT(qeil_answer_extract(ctx, QEIL_ANSWER_NUMERIC, NULL, 0, &a), QEIL_OK);
    CHECK_EQ_INT(a.has, 0);
}

TEST(extract_rejects_bad_arguments)
{
    qeil_answer a;
    CHECK_EQ_INT(qeil_answer_extract(ctx, QEIL_ANSWER_NUMERIC, "1", 1, NULL), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_answer_extract(ctx, QEIL_ANSWER_NUMERIC, NULL, 3, &a), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_answer_extract(ctx, (qeil_answer_mode)7, "1", 1, &a), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "mode: 7");
    CHECK_EQ_INT(qeil_answer_extract(ctx, QEIL_ANSWER_NUMERIC, "1", (size_t)QEIL_ANSWER_MAX_TEXT + 1, &a),
                 QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "text_len");
}

/* Random texts built from the extractor's trigger bytes and words: every
 * call succeeds, reads only its bytes (ASan), and every extracted answer is
 * a fixed point of normalisation (its canonical text normalises to itself). */
TEST(extract_random_texts_property)
{
    static const char *const atoms[] = {"#", "####", " ", "\n", "1", "0", "9", ",", ".", "/", "-",
                                        "+", "$", "=", "answer", "Answer is", ":", "(", ")", "B",
                                        "c", "\\boxed{", "}", "\xE2\x88\x92", "000", "a", "option"};
    const size_t n_atoms = sizeof atoms / sizeof atoms[0];
    qeil_rng r;
    qeil_rng_seed(&r, 20240607);
    char buf[256];
    for (int it = 0; it < 20000; it++) {
        size_t len = 0, want = (size_t)qeil_rng_below(&r, 40);
        for (size_t k = 0; k < want; k++) {
            const char *a = atoms[qeil_rng_below(&r, n_atoms)];
            size_t al = strlen(a);
            if (len + al > sizeof buf) break;
            memcpy(buf + len, a, al);
            len += al;
        }
        for (int mode = 0; mode < 2; mode++) {
            qeil_answer x, y;
            /* exact-size heap copy so ASan sees any read past len */
            char *heap = malloc(len ? len : 1);
            memcpy(heap, buf, len);
            CHECK_EQ_INT(qeil_answer_extract(ctx, (qeil_answer_mode)mode, heap, len, &x), QEIL_OK);
            free(heap);
            if (!x.has) continue;
            CHECK(strlen(x.text) < QEIL_ANSWER_MAX);
            if (qeil_answer_normalize(ctx, (qeil_answer_mode)mode, x.text, &y) != QEIL_OK ||
                strcmp(x.text, y.text) != 0) {
                TEST_FAIL_("\"%.*s\" → \"%s\" is not canonical", (int)len, buf, x.text);
                return;
            }
        }
    }
}

TEST(normalize_reference_answers)
{
    static const struct {
        qeil_answer_mode mode;
        const char *ref, *want; /* want NULL: QEIL_ERR_FORMAT */
    } cases[] = {
        {QEIL_ANSWER_NUMERIC, "1,234", "1234"}, {QEIL_ANSWER_NUMERIC, " 042 ", "42"},
        {QEIL_ANSWER_NUMERIC, "-0", "0"},       {QEIL_ANSWER_NUMERIC, "18.00", "18"},
        {QEIL_ANSWER_NUMERIC, "$5", "5"},       {QEIL_ANSWER_NUMERIC, "3/4", "0.75"},
        {QEIL_ANSWER_NUMERIC, "-7", "-7"},      {QEIL_ANSWER_NUMERIC, "12 apples", NULL},
        {QEIL_ANSWER_NUMERIC, "abc", NULL},     {QEIL_ANSWER_NUMERIC, "", NULL},
        {QEIL_ANSWER_CHOICE, "b", "B"},         {QEIL_ANSWER_CHOICE, "(C)", "C"},
        {QEIL_ANSWER_CHOICE, " D ", "D"},       {QEIL_ANSWER_CHOICE, "AB", NULL},
        {QEIL_ANSWER_CHOICE, "Z", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qeil_answer a;
        qeil_status st = qeil_answer_normalize(ctx, cases[i].mode, cases[i].ref, &a);
        if (cases[i].want) {
            CHECK_EQ_INT(st, QEIL_OK);
            CHECK_EQ_STR(a.text, cases[i].want);
        } else {
            CHECK_EQ_INT(st, QEIL_ERR_FORMAT);
            CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "reference answer");
        }
    }
    /* an extracted answer equals its normalised reference */
    qeil_answer x, r;
    qeil_answer_extract(ctx, QEIL_ANSWER_NUMERIC, "The answer is 1,234.", 20, &x);
    qeil_answer_normalize(ctx, QEIL_ANSWER_NUMERIC, "1234", &r);
    CHECK(qeil_answer_equal(&x, &r));
}

TEST(none_never_equals_anything)
{
    qeil_answer a, b;
    qeil_answer_extract(ctx, QEIL_ANSWER_NUMERIC, "no idea", 7, &a);
    qeil_answer_extract(ctx, QEIL_ANSWER_NUMERIC, "none", 4, &b);
    CHECK_EQ_INT(a.has, 0);
    CHECK_EQ_INT(qeil_answer_equal(&a, &b), 0);
    CHECK_EQ_INT(qeil_answer_equal(&a, &a), 0);
    CHECK_EQ_INT(qeil_answer_equal(NULL, &a), 0);
}

TEST(repetition_ratio)
{
    char loop[2048] = "";
    for (int i = 0; i < 40; i++) strcat(loop, "let me check the sum again ");
    double r = qeil_answer_repetition(loop, strlen(loop), NULL);
    /* 240 words, 237 4-grams, only 6 distinct (the cycle has period 6):
     * 231 repeats / 237 = 0.9747 */
    CHECK_NEAR(r, 231.0 / 237.0, 0, 1e-12);
    const char *prose = "Natalia sold clips to 48 of her friends in April, and then she sold "
                        "half as many clips in May. How many clips did Natalia sell altogether "
                        "in April and May? She sold 48 / 2 = 24 clips in May.";
    CHECK(qeil_answer_repetition(prose, strlen(prose), NULL) < 0.05);
    CHECK_EQ_INT(qeil_answer_repetition("a a a a a a a a a a", 19, NULL) == 0.0, 1); /* 7 4-grams: too short */
    uint64_t scratch[QEIL_SELECT_NGRAM_SLOTS];
    CHECK_NEAR(qeil_answer_repetition(loop, strlen(loop), scratch), r, 0, 0);
}

/* ------------------------------------------------------------------------ */
/* Stopping-rule math                                                        */
/* ------------------------------------------------------------------------ */

/* I_x(m, n) for integers = P(Binomial(m+n−1, x) >= m). */
static double binom_tail(int m, int n, double x)
{
    int N = m + n - 1;
    double s = 0;
    for (int j = m; j <= N; j++) {
        double c = 1;
        for (int i = 1; i <= j; i++) c = c * (N - j + i) / i;
        s += c * pow(x, j) * pow(1 - x, N - j);
    }
    return s;
}

TEST(betainc_matches_binomial_sums)
{
    for (int a = 1; a <= 20; a++)
        for (int b = 1; b <= 20; b++)
            for (int k = 1; k <= 9; k++) {
                double x = k / 10.0;
                CHECK_NEAR(qeil_select_betainc(x, a, b), binom_tail(a, b, x), 1e-12, 1e-14);
            }
    /* half-integer: I_x(1/2, 1/2) = (2/π) asin(√x) */
    for (int k = 1; k <= 9; k++) {
        double x = k / 10.0;
        CHECK_NEAR(qeil_select_betainc(x, 0.5, 0.5), 2.0 / M_PI * asin(sqrt(x)), 1e-12, 1e-14);
    }
    /* I_x(a, 1) = x^a */
    CHECK_NEAR(qeil_select_betainc(0.5, 3.5, 1.0), pow(0.5, 3.5), 1e-12, 0);
    CHECK_EQ_INT(qeil_select_betainc(0.0, 2, 3) == 0.0, 1);
    CHECK_EQ_INT(qeil_select_betainc(1.0, 2, 3) == 1.0, 1);
    CHECK(isnan(qeil_select_betainc(0.5, 0.0, 1.0)));
    CHECK(isnan(qeil_select_betainc(1.5, 1.0, 1.0)));
    CHECK(isnan(qeil_select_betainc(NAN, 1.0, 1.0)));
}

TEST(adaptive_prob_hand_values)
{
    /* 1 − I_{1/2}(v1+1, v2+1) = P(Bin(v1+v2+1, 1/2) <= v1) */
    CHECK_NEAR(qeil_select_adaptive_prob(3, 0), 1 - 1.0 / 16, 0, 1e-14);   /* 0.9375 */
    CHECK_NEAR(qeil_select_adaptive_prob(4, 0), 1 - 1.0 / 32, 0, 1e-14);   /* 0.96875 */
    CHECK_NEAR(qeil_select_adaptive_prob(5, 1), 1 - 8.0 / 128, 0, 1e-14);  /* 0.9375 */
    CHECK_NEAR(qeil_select_adaptive_prob(6, 1), 1 - 9.0 / 256, 0, 1e-14);  /* 0.96484 */
    CHECK_NEAR(qeil_select_adaptive_prob(2, 2), 0.5, 0, 1e-14);
}

TEST(csvet_mode_risk_hand_values)
{
    /* prior 1: the unseen rival's term is I_{1/2}(a+1, 1) = 2^-(a+1) and a
     * rival with c votes adds I_{1/2}(a+1, c+1) = P(Bin(a+c+1, 1/2) >= a+1) */
    CHECK_NEAR(qeil_select_csvet_risk(3, NULL, 0, 1.0), 1.0 / 16, 0, 1e-14);
    uint32_t one = 1;
    /* 1/16 + P(Bin(5,½) >= 4) = 1/16 + 6/32 = 0.25 */
    CHECK_NEAR(qeil_select_csvet_risk(3, &one, 1, 1.0), 0.25, 0, 1e-14);
    uint32_t two[2] = {1, 1};
    CHECK_NEAR(qeil_select_csvet_risk(3, two, 2, 1.0), 1.0 / 16 + 2 * 6.0 / 32, 0, 1e-14);
    CHECK_EQ_INT(qeil_select_csvet_risk(0, NULL, 0, 0.5) == 1.0, 1);
    uint32_t many[8] = {3, 3, 3, 3, 3, 3, 3, 3};
    CHECK_EQ_INT(qeil_select_csvet_risk(3, many, 8, 0.5) == 1.0, 1); /* clamped */
    /* Jeffreys prior, 3 unanimous: I_{1/2}(3.5, 0.5) = 0.0331 (below δ = 0.05);
     * 2 unanimous: I_{1/2}(2.5, 0.5) = 0.0756 (above) */
    CHECK(qeil_select_csvet_risk(3, NULL, 0, 0.5) < 0.05);
    CHECK(qeil_select_csvet_risk(2, NULL, 0, 0.5) > 0.05);
}

TEST(csvet_overturn_risk_hand_values)
{
    /* a = 1 after 1 sample, r = 1, prior 1: the posterior predictive gives
     * the unseen rival the next sample with probability 1/(2+1+1) = 1/4,
     * which would tie the leader */
    CHECK_NEAR(qeil_select_csvet_overturn_risk(1, NULL, 0, 1, 1, 1.0), 0.25, 0, 1e-14);
    /* a = 2, r = 2, prior 1: the rival needs both samples:
     * (1/5)·(2/6) = 1/15 (Pólya urn with weights 3, 1, 1) */
    CHECK_NEAR(qeil_select_csvet_overturn_risk(2, NULL, 0, 2, 2, 1.0), 1.0 / 15, 0, 1e-14);
    /* nothing left to draw: no risk */
    CHECK_EQ_INT(qeil_select_csvet_overturn_risk(2, NULL, 0, 2, 0, 0.5) == 0.0, 1);
    CHECK_EQ_INT(qeil_select_csvet_overturn_risk(0, NULL, 0, 2, 3, 0.5) == 1.0, 1);
    /* exactly 0 whenever rule (a) holds (a > c + r for every rival) */
    uint32_t riv[3] = {1, 2, 1};
    CHECK_EQ_INT(qeil_select_csvet_overturn_risk(7, riv, 3, 11, 4, 0.5) == 0.0, 1);
    CHECK(qeil_select_csvet_overturn_risk(7, riv, 3, 11, 5, 0.5) > 0.0);
    /* more budget left, more risk */
    CHECK(qeil_select_csvet_overturn_risk(3, NULL, 0, 3, 13, 0.5) >
          qeil_select_csvet_overturn_risk(3, NULL, 0, 3, 5, 0.5));
    /* beyond 256 remaining: the mode bound */
    CHECK_NEAR(qeil_select_csvet_overturn_risk(5, riv, 3, 9, 300, 0.5),
               qeil_select_csvet_risk(5, riv, 3, 0.5), 0, 0);
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                                */
/* ------------------------------------------------------------------------ */

TEST(params_validation_names_the_field)
{
    qeil_select_params d = qeil_select_default_params();
    CHECK_EQ_INT(qeil_select_params_validate(ctx, &d), QEIL_OK);
    CHECK_EQ_INT(d.budget, 16);
    CHECK_EQ_INT(d.batch, 2);
    static const char *fields[] = {"budget",       "budget",          "batch",
                                   "eac_share",    "eac_share",       "eac_min_votes",
                                   "csvet_delta",  "csvet_min_samples", "csvet_prior",
                                   "csvet_unbeatable", "csvet_bound", "csvet_futility",
                                   "arde_lambda",  "arde_rep_threshold", "arde_rep_penalty",
                                   "arde_limit_penalty", "esc_window", "adaptive_conf",
                                   "method",       "mode"};
    for (int i = 0; i < (int)(sizeof fields / sizeof fields[0]); i++) {
        qeil_select_params p = d;
        switch (i) {
        case 0: p.budget = 0; break;
        case 1: p.budget = QEIL_SELECT_MAX_BUDGET + 1; break;
        case 2: p.batch = 65; break;
        case 3: p.eac_share = 0; break;
        case 4: p.eac_share = NAN; break;
        case 5: p.eac_min_votes = 0; break;
        case 6: p.csvet_delta = 0.6; break;
        case 7: p.csvet_min_samples = 0; break;
        case 8: p.csvet_prior = 0; break;
        case 9: p.csvet_unbeatable = 2; break;
        case 10: p.csvet_bound = 5; break;
        case 11: p.csvet_futility = -1; break;
        case 12: p.arde_lambda = -1; break;
        case 13: p.arde_rep_threshold = 0; break;
        case 14: p.arde_rep_penalty = 2; break;
        case 15: p.arde_limit_penalty = INFINITY; break;
        case 16: p.esc_window = 0; break;
        case 17: p.adaptive_conf = 1.0; break;
        case 18: p.method = QEIL_SELECT_METHOD_COUNT; break;
        case 19: p.mode = (qeil_answer_mode)2; break;
        }
        qeil_selector *sel = (qeil_selector *)&p; /* must be reset to NULL */
        CHECK_EQ_INT(qeil_select_create(ctx, &p, &sel), QEIL_ERR_RANGE);
        CHECK(sel == NULL);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), fields[i]);
    }
}

TEST(method_and_stage_names)
{
    qeil_select_method m;
    static const char *names[] = {"cascade", "first", "majority", "esc", "adaptive"};
    for (int i = 0; i < QEIL_SELECT_METHOD_COUNT; i++) {
        CHECK_EQ_STR(qeil_select_method_name((qeil_select_method)i), names[i]);
        CHECK_EQ_INT(qeil_select_method_parse(ctx, names[i], &m), QEIL_OK);
        CHECK_EQ_INT(m, i);
    }
    CHECK_EQ_INT(qeil_select_method_parse(ctx, "vote", &m), QEIL_ERR_NOTFOUND);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "cascade|first|majority|esc|adaptive");
    CHECK_EQ_STR(qeil_select_stage_name(QEIL_STAGE_CSVET_BOUND), "csvet-bound");
    CHECK_EQ_STR(qeil_select_stage_name(QEIL_STAGE_ARDE), "arde");
    CHECK_EQ_STR(qeil_select_stage_name(QEIL_STAGE_COUNT), "?");
    CHECK_EQ_STR(qeil_answer_mode_name(QEIL_ANSWER_CHOICE), "choice");
}

/* ------------------------------------------------------------------------ */
/* The cascade                                                               */
/* ------------------------------------------------------------------------ */

TEST(header_usage_example)
{
    /* the same generator and calls as the example at the top of select.h */
    static const char *texts[] = {"6 * 7 = 42\n#### 42", "The answer is 42."};
    fake_sample s[16];
    for (int i = 0; i < 16; i++) s[i] = (fake_sample){texts[i % 2], -0.35, 0};
    fake_gen g = {.s = s, .n = 16};
    qeil_select_params sp = qeil_select_default_params();
    qeil_selector *sel = NULL;
    qeil_select_result res;
    CHECK_EQ_INT(qeil_select_create(ctx, &sp, &sel), QEIL_OK);
    CHECK_EQ_INT(qeil_select_run(sel, fake_fn, &g, &res), QEIL_OK);
    char line[128];
    snprintf(line, sizeof line, "%s after %u samples (%s)", res.answer.text, res.n_samples,
             qeil_select_stage_name(res.stage));
    CHECK_EQ_STR(line, "42 after 3 samples (csvet-bound)");
    qeil_select_free(sel);
}

TEST(cascade_unanimous_stops_at_three)
{
    /* Opening batch max(2, n_min = 3) = 3 samples, all A. (a): 3 > 0 + 13?
     * no. (b): predictive risk of 3-0 with 13 left = 0.0249 <= 0.1: stop. */
    stream st;
    stream_init(&st, "AAAAAAAAAAAAAAAA");
    qeil_select_params p = qeil_select_default_params();
    qeil_select_result res;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_samples, 3);
    CHECK_EQ_INT(res.n_tokens, 30);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_CSVET_BOUND);
    CHECK_EQ_INT(res.stop, QEIL_STOP_BOUND);
    CHECK_EQ_INT(letter_of(&res), 'A');
    CHECK_EQ_INT(res.votes, 3);
    CHECK_NEAR(res.share, 1.0, 0, 0);
    CHECK_EQ_INT(st.g.calls, 1);
    CHECK_EQ_INT(st.g.call_n[0], 3);
    CHECK_NEAR(qeil_select_csvet_overturn_risk(3, NULL, 0, 3, 13, 0.5), 0.0249, 0, 5e-4);
}

TEST(cascade_batches_and_last_partial_batch)
{
    /* No early stop possible ((b) and (c) off, and ABAB never unbeatable):
     * budget 8, batch 2, opening 3 → calls (0,3) (3,2) (5,2) (7,1). */
    stream st;
    stream_init(&st, "ABABABAB");
    qeil_select_params p = qeil_select_default_params();
    p.budget = 8;
    p.csvet_delta = 0;
    p.csvet_futility = 0;
    qeil_select_result res;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(st.g.calls, 4);
    static const uint32_t f[4] = {0, 3, 5, 7}, n[4] = {3, 2, 2, 1};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(st.g.call_first[i], f[i]);
        CHECK_EQ_INT(st.g.call_n[i], n[i]);
    }
    CHECK_EQ_INT(res.n_samples, 8);
    CHECK_EQ_INT(res.stop, QEIL_STOP_BUDGET);
    /* 4-4 tie: EAC needs the leader strictly ahead → ARDE; equal
     * likelihoods → the earlier cluster, A */
    CHECK_EQ_INT(res.stage, QEIL_STAGE_ARDE);
    CHECK_EQ_INT(letter_of(&res), 'A');
}

TEST(csvet_unbeatable_stop_indices)
{
    /* Rule (a) alone (b and c off), batch 1, budget 8: stop after the first
     * batch where leader > runner-up + remaining. */
    static const struct {
        const char *pattern;
        uint32_t stop_at;
        char answer;
    } cases[] = {
        /* n=3: 3>0+5 no; n=4: 4>0+4 no; n=5: 5>0+3 yes */
        {"AAAAAAAA", 5, 'A'},
        /* n=5 A3 B2 r3; n=6 A4 B2 r2: 4>4 no; n=7 A5 B2 r1: 5>3 yes */
        {"ABAABAAA", 7, 'A'},
        /* n=4 A1 B3 r4; n=5 B4 r3: 4>1+3 no; n=6 B5 r2: 5>3 yes */
        {"ABBBBBAA", 6, 'B'},
        /* NONE samples count towards n but vote for nobody:
         * n=6 A4 r2: 4>0+2 yes (n=5: A3, r=3: 3>3 no) */
        {"A-AA-AAA", 6, 'A'},
        /* 4-4 is never decided early: the budget */
        {"AABBABAB", 8, 'A'},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        stream st;
        stream_init(&st, cases[i].pattern);
        qeil_select_params p = qeil_select_default_params();
        p.budget = 8;
        p.batch = 1;
        p.csvet_delta = 0;
        p.csvet_futility = 0;
        qeil_select_result res;
        CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
        if (res.n_samples != cases[i].stop_at || letter_of(&res) != cases[i].answer)
            TEST_FAIL_("%s: stopped at %u with %c, want %u with %c", cases[i].pattern,
                       res.n_samples, letter_of(&res), cases[i].stop_at, cases[i].answer);
    }
    /* the first unbeatable case is labelled as such */
    stream st;
    stream_init(&st, "AAAAAAAA");
    qeil_select_params p = qeil_select_default_params();
    p.budget = 8, p.batch = 1, p.csvet_delta = 0, p.csvet_futility = 0;
    qeil_select_result res;
    run_pattern(&p, &st, &res);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_CSVET_UNBEATABLE);
    CHECK_EQ_INT(res.stop, QEIL_STOP_UNBEATABLE);
}

TEST(csvet_bound_mode_rule_stop_index)
{
    /* Mode bound, prior 1, δ = 0.07, batch 1, budget 16, (c) off:
     *   n=3 A2 B1: leader below n_min = 3, not consulted
     *   n=4 A3 B1: 2^-4 + P(Bin(5,½) >= 4)  = 0.0625 + 0.1875 = 0.25
     *   n=5 A4 B1: 2^-5 + P(Bin(6,½) >= 5)  = 0.03125 + 7/64 = 0.1406
     *   n=6 A5 B1: 2^-6 + P(Bin(7,½) >= 6)  = 0.015625 + 8/128 = 0.0781
     *   n=7 A6 B1: 2^-7 + P(Bin(8,½) >= 7)  = 0.0078125 + 9/256 = 0.0430 <= 0.07: stop
     * (rule (a) at n=7: 6 > 1 + 9? no) */
    stream st;
    stream_init(&st, "AABAAAAAAAAAAAAA");
    qeil_select_params p = qeil_select_default_params();
    p.batch = 1;
    p.csvet_bound = QEIL_CSVET_MODE;
    p.csvet_prior = 1.0;
    p.csvet_delta = 0.07;
    p.csvet_late_after = QEIL_SELECT_MAX_BUDGET; /* one δ throughout */
    p.csvet_futility = 0;
    qeil_select_result res;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_samples, 7);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_CSVET_BOUND);
    CHECK_NEAR(res.mode_risk, 1.0 / 128 + 9.0 / 256, 1e-12, 0);
    /* δ = 0.05 needs one more: n=8 A7 B1: 2^-8 + P(Bin(9,½) >= 8) = 0.0039 + 10/512 = 0.0234 */
    p.csvet_delta = 0.03;
    stream_init(&st, "AABAAAAAAAAAAAAA");
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_samples, 8);
}

TEST(csvet_late_delta)
{
    /* Predictive bound, batch 1, budget 16. A leads 4-3 after 7 samples
     * (risk 0.374 with 9 left, docs/selection.md's stop table): under the
     * single δ = 0.1 sampling goes on and B, which takes every later
     * sample, wins; with δ₂ = 0.4 from 7 samples on the cascade stops at 7
     * on A. Before n₂ the strict δ still holds: with n₂ = 8 it goes on past
     * 7 (at 8 samples A4 B4 is a tie, which never stops). */
    static const char *pat = "AABBABABBBBBBBBB";
    stream st;
    qeil_select_params p = qeil_select_default_params();
    p.batch = 1;
    qeil_select_result res;
    p.csvet_delta_late = 0.1;
    stream_init(&st, pat);
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(letter_of(&res), 'B');
    CHECK(res.n_samples > 7);
    p.csvet_delta_late = 0.4;
    p.csvet_late_after = 7;
    stream_init(&st, pat);
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_samples, 7);
    CHECK_EQ_INT(letter_of(&res), 'A');
    CHECK_EQ_INT(res.stop, QEIL_STOP_BOUND);
    p.csvet_late_after = 8;
    stream_init(&st, pat);
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK(res.n_samples > 7);
    CHECK_EQ_INT(letter_of(&res), 'B');
    /* bad values are rejected, naming the field */
    qeil_ctx *c = qeil_ctx_create(NULL);
    qeil_selector *sel = NULL;
    p.csvet_delta_late = 0.6;
    CHECK_EQ_INT(qeil_select_create(c, &p, &sel), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(c), "csvet_delta_late");
    p.csvet_delta_late = 0.4;
    p.csvet_late_after = 0;
    CHECK_EQ_INT(qeil_select_create(c, &p, &sel), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(c), "csvet_late_after");
    qeil_ctx_free(c);
}

TEST(csvet_bound_not_triggered_by_two_samples)
{
    /* With the guards removed (n_min = min_samples = 1) the predictive bound
     * at δ = 0.05 still does not stop on 2-0 (risk 0.0687 with 14 left);
     * with the defaults (n_min = 3) two agreeing samples never stop, even
     * at δ = 0.5. */
    stream st;
    stream_init(&st, "AAB-BBBBBBBBBBBB");
    qeil_select_params p = qeil_select_default_params();
    p.batch = 1;
    p.eac_min_votes = 1;
    p.csvet_min_samples = 1;
    p.csvet_delta = 0.05;
    p.csvet_futility = 0;
    qeil_select_result res;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK(res.n_samples > 2);
    CHECK_NEAR(qeil_select_csvet_overturn_risk(2, NULL, 0, 2, 14, 0.5), 0.0687, 0, 5e-4);

    p = qeil_select_default_params();
    p.batch = 1;
    p.csvet_delta = 0.5;
    p.csvet_futility = 0;
    for (int i = 0; i < 3; i++) {
        static const char *pats[] = {"AAB-BBBBBBBBBBBB", "A-AB-BBBBBBBBBBB", "AA--BBBBBBBBBBBB"};
        stream_init(&st, pats[i]);
        CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
        if (res.n_samples <= 4) TEST_FAIL_("%s stopped at %u with 2 votes", pats[i], res.n_samples);
    }
}

TEST(cascade_leader_early_then_overturned)
{
    /* A leads 2-1 after the opening batch and 3-2 after five, then B takes
     * over. No rule may lock A in: the answer is B, the true mode. */
    static const char *pats[] = {
        "AABABBBBBBBBBBBB",
        "ABAABBBBBBBBBBBB",
        "AA-BABBBBBBBBBBB",
    };
    for (size_t i = 0; i < 3; i++) {
        for (uint32_t b = 1; b <= 4; b++) {
            stream st;
            stream_init(&st, pats[i]);
            qeil_select_params p = qeil_select_default_params();
            p.batch = b;
            qeil_select_result res;
            CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
            if (letter_of(&res) != 'B')
                TEST_FAIL_("%s batch %u: picked %c after %u samples (stage %s), want B", pats[i], b,
                           letter_of(&res), res.n_samples, qeil_select_stage_name(res.stage));
        }
    }
    /* and majority over the same streams agrees */
    stream st;
    stream_init(&st, pats[0]);
    qeil_select_params p = qeil_select_default_params();
    p.method = QEIL_SELECT_MAJORITY;
    qeil_select_result res;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(letter_of(&res), 'B');
}

TEST(cascade_all_distinct_goes_to_arde_by_likelihood)
{
    /* 16 distinct answers, rule (c) on. EAC needs ceil(0.6·16) = 10 votes;
     * after 3, 5, 7 samples a + r = 1 + 13, 11, 9... n=7: 1 + 9 = 10 still
     * reachable; n=9: 1 + 7 = 8 < 10 → stop at 9, ARDE. Sample 5 has the
     * best log-likelihood among the first 9; sample 12 would be better but
     * is never drawn. */
    stream st;
    stream_init(&st, "ABCDEFGHIJKLMNOP");
    st.s[5].ll = -0.2;
    st.s[12].ll = -0.1;
    qeil_select_params p = qeil_select_default_params();
    p.csvet_futility = 1;
    qeil_select_result res;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_samples, 9);
    CHECK_EQ_INT(res.stop, QEIL_STOP_FUTILE);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_ARDE);
    CHECK_EQ_INT(letter_of(&res), 'F');
    CHECK_EQ_INT(res.n_clusters, 9);
    /* with rule (c) off (the default), all 16 are drawn and sample 12 wins */
    p.csvet_futility = 0;
    stream_init(&st, "ABCDEFGHIJKLMNOP");
    st.s[5].ll = -0.2;
    st.s[12].ll = -0.1;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_samples, 16);
    CHECK_EQ_INT(letter_of(&res), 'M');
    /* ARDE's score for the winner: 1 vote + λ·z (z clipped at 3) */
    qeil_selector *sel = NULL;
    qeil_select_create(ctx, &p, &sel);
    stream_init(&st, "ABCDEFGHIJKLMNOP");
    st.s[12].ll = -0.1;
    qeil_select_run(sel, fake_fn, &st.g, &res);
    qeil_select_cluster cl;
    CHECK_EQ_INT(qeil_select_cluster_get(sel, res.chosen_cluster, &cl), QEIL_OK);
    /* 15 samples at -0.5, one at -0.1: mean -0.475, sd = 0.4·√15/16 = 0.0968;
     * z = 0.375/0.0968 = 3.87 → clipped to 3; score = 1 + λ·3 = 2.5 */
    CHECK_NEAR(cl.mean_z, 3.0, 0, 1e-12);
    CHECK_NEAR(cl.arde_score, 2.5, 0, 1e-12);
    CHECK_NEAR(cl.mean_ll, -0.1, 0, 1e-12);
    qeil_select_free(sel);
}

TEST(cascade_no_extractable_answers)
{
    /* All NONE: no cluster ever. Defaults: the whole budget, answer NONE. */
    stream st;
    stream_init(&st, "----------------");
    qeil_select_params p = qeil_select_default_params();
    qeil_select_result res;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_samples, 16);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_NO_ANSWER);
    CHECK_EQ_INT(res.stop, QEIL_STOP_BUDGET);
    /* Rule (c) with a = 0: r < 10 first at n = 7 (r = 9) → stop. */
    p.csvet_futility = 1;
    stream_init(&st, "----------------");
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_samples, 7);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_NO_ANSWER);
    CHECK_EQ_INT(res.stop, QEIL_STOP_FUTILE);
    CHECK_EQ_INT(res.answer.has, 0);
    CHECK_EQ_INT(res.n_none, 7);
    CHECK_EQ_INT(res.n_clusters, 0);
    CHECK_EQ_INT(res.chosen_cluster, UINT32_MAX);
    CHECK_NEAR(res.mode_risk, 1.0, 0, 0);
    /* and every baseline handles it */
    for (int m = QEIL_SELECT_FIRST; m < QEIL_SELECT_METHOD_COUNT; m++) {
        p.method = (qeil_select_method)m;
        stream_init(&st, "----------------");
        CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
        CHECK_EQ_INT(res.stage, QEIL_STAGE_NO_ANSWER);
        CHECK_EQ_INT(res.answer.has, 0);
    }
    /* NONE is never clustered: NONE samples among answers do not join */
    stream_init(&st, "A-A-A-A-");
    p = qeil_select_default_params();
    p.method = QEIL_SELECT_MAJORITY;
    p.budget = 8;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_clusters, 1);
    CHECK_EQ_INT(res.votes, 4);
    CHECK_EQ_INT(res.n_none, 4);
}

TEST(cascade_ties)
{
    /* budget 4, batch 2: opening 3 (A B A), then 1 (B): 2-2 at the budget.
     * EAC rejects a tie → ARDE. Equal likelihoods → earlier cluster A;
     * B's samples more likely → B. */
    stream st;
    stream_init(&st, "ABAB");
    qeil_select_params p = qeil_select_default_params();
    p.budget = 4;
    qeil_select_result res;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_samples, 4);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_ARDE);
    CHECK_EQ_INT(letter_of(&res), 'A');
    stream_init(&st, "ABAB");
    st.s[1].ll = st.s[3].ll = -0.3;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(letter_of(&res), 'B');
    /* majority breaks the same tie by first appearance, whatever the likelihood */
    p.method = QEIL_SELECT_MAJORITY;
    stream_init(&st, "BABA");
    st.s[1].ll = st.s[3].ll = -0.1;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(letter_of(&res), 'B');
}

TEST(arde_penalises_degenerate_samples)
{
    /* budget 6, rules off: A A A (looping texts) B B C. EAC: A has 3/6 = 0.5
     * < 0.6 → ARDE. A: 3 − 0.5·3 (repetitive) = 1.5 + λ·z with z capped at
     * 0; B: 2 + λ·z_B with z_B > 0 → B. Without penalties A would win. */
    char loop[1024] = "";
    for (int i = 0; i < 20; i++) strcat(loop, "we add the numbers again ");
    strcat(loop, "#### 100");
    fake_sample s[6] = {{loop, -0.1, 0},  {"#### 101", -0.4, 0}, {loop, -0.1, 0},
                        {"#### 101", -0.4, 0}, {loop, -0.1, 0},  {"#### 102", -0.6, 0}};
    fake_gen g = {.s = s, .n = 6};
    qeil_select_params p = qeil_select_default_params();
    p.budget = 6;
    p.csvet_delta = 0;
    p.csvet_futility = 0;
    qeil_selector *sel = NULL;
    qeil_select_result res;
    CHECK_EQ_INT(qeil_select_create(ctx, &p, &sel), QEIL_OK);
    CHECK_EQ_INT(qeil_select_run(sel, fake_fn, &g, &res), QEIL_OK);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_ARDE);
    CHECK_EQ_STR(res.answer.text, "101");
    qeil_select_cluster cl;
    CHECK_EQ_INT(qeil_select_cluster_get(sel, 0, &cl), QEIL_OK);
    CHECK_EQ_STR(cl.answer.text, "100");
    CHECK_EQ_INT(cl.votes, 3);
    CHECK_EQ_INT(cl.n_repetitive, 3);
    CHECK(cl.mean_z <= 0.0); /* a loop's high likelihood earns nothing */
    CHECK_NEAR(cl.arde_score, 1.5 + p.arde_lambda * cl.mean_z, 0, 1e-12);
    qeil_select_sample_info si;
    CHECK_EQ_INT(qeil_select_sample_get(sel, 0, &si), QEIL_OK);
    CHECK(si.repetition >= 0.5);
    CHECK_EQ_INT(si.cluster, 0);
    CHECK_EQ_INT(qeil_select_sample_get(sel, 6, &si), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_select_cluster_get(sel, 3, &cl), QEIL_ERR_RANGE);
    qeil_select_free(sel);

    /* penalties off: A's three votes win */
    p.arde_rep_penalty = 0;
    CHECK_EQ_INT(qeil_select_create(ctx, &p, &sel), QEIL_OK);
    g.calls = 0;
    CHECK_EQ_INT(qeil_select_run(sel, fake_fn, &g, &res), QEIL_OK);
    CHECK_EQ_STR(res.answer.text, "100");
    qeil_select_free(sel);

    /* length-limit penalty: A A (both hit the limit) B C D, budget 5 →
     * A: 2 − 2·0.5 = 1 + λ·0 (ll -0.5 = the mean), B: 1 + 0.5·1.83 = 1.91
     * (ll -0.3; mean -0.5, sd √0.012 = 0.1095), C, D below 1 → B */
    fake_sample t[5] = {{"#### 100", -0.5, QEIL_SAMPLE_HIT_LIMIT},
                        {"#### 100", -0.5, QEIL_SAMPLE_HIT_LIMIT},
                        {"#### 101", -0.3, 0}, {"#### 102", -0.6, 0}, {"#### 103", -0.6, 0}};
    fake_gen g2 = {.s = t, .n = 5};
    p = qeil_select_default_params();
    p.budget = 5, p.csvet_delta = 0, p.csvet_futility = 0;
    CHECK_EQ_INT(qeil_select_create(ctx, &p, &sel), QEIL_OK);
    CHECK_EQ_INT(qeil_select_run(sel, fake_fn, &g2, &res), QEIL_OK);
    CHECK_EQ_STR(res.answer.text, "101");
    qeil_select_free(sel);
}

TEST(eac_thresholds)
{
    /* Rules (a), (b), (c) off; budget 5: the budget decides and EAC checks
     * share >= 0.6 and count >= 3, strictly ahead. */
    static const struct {
        const char *pattern;
        qeil_select_stage stage;
    } cases[] = {
        {"AAABB", QEIL_STAGE_EAC},   /* 3/5 = 0.6, 3 votes */
        {"AAB-B", QEIL_STAGE_ARDE},  /* 2 votes < 3 */
        {"AAA--", QEIL_STAGE_EAC},   /* 3/5: NONE dilutes but 0.6 holds */
        {"AA-A-", QEIL_STAGE_EAC},
        {"AABBC", QEIL_STAGE_ARDE},  /* tie */
        {"AAAAB", QEIL_STAGE_EAC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        stream st;
        stream_init(&st, cases[i].pattern);
        qeil_select_params p = qeil_select_default_params();
        p.budget = 5, p.csvet_unbeatable = 0, p.csvet_delta = 0, p.csvet_futility = 0;
        qeil_select_result res;
        CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
        if (res.stage != cases[i].stage)
            TEST_FAIL_("%s: stage %s, want %s", cases[i].pattern, qeil_select_stage_name(res.stage),
                       qeil_select_stage_name(cases[i].stage));
    }
    /* a higher τ rejects 3/5 */
    stream st;
    stream_init(&st, "AAABB");
    qeil_select_params p = qeil_select_default_params();
    p.budget = 5, p.csvet_unbeatable = 0, p.csvet_delta = 0, p.csvet_futility = 0;
    p.eac_share = 0.61;
    qeil_select_result res;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_ARDE);
    CHECK_EQ_INT(letter_of(&res), 'A'); /* ARDE still prefers 3 votes to 2 */
    /* a tie is never accepted, even when it clears the share: τ = 0.5,
     * AAABBB → 3/6 each → ARDE, which picks the likelier B */
    stream_init(&st, "AAABBB");
    st.s[3].ll = st.s[4].ll = st.s[5].ll = -0.3;
    p.budget = 6, p.eac_share = 0.5;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_ARDE);
    CHECK_EQ_INT(letter_of(&res), 'B');
    p.budget = 5;
    /* n_min = 4 rejects 3 votes */
    stream_init(&st, "AAA--");
    p.eac_share = 0.6, p.eac_min_votes = 4;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_ARDE);
}

/* ------------------------------------------------------------------------ */
/* Baselines                                                                 */
/* ------------------------------------------------------------------------ */

TEST(majority_never_stops_early)
{
    stream st;
    stream_init(&st, "AAAAAAAAAAAAAAAA");
    qeil_select_params p = qeil_select_default_params();
    p.method = QEIL_SELECT_MAJORITY;
    qeil_select_result res;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_samples, 16);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_BUDGET);
    CHECK_EQ_INT(res.votes, 16);
    CHECK_EQ_INT(st.g.calls, 8); /* batches of 2 */
    stream_init(&st, "ABBACCCDAC------");
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(letter_of(&res), 'C');
    CHECK_EQ_INT(res.votes, 4);
}

TEST(first_sample)
{
    stream st;
    stream_init(&st, "BAAAAAAAAAAAAAAA");
    qeil_select_params p = qeil_select_default_params();
    p.method = QEIL_SELECT_FIRST;
    qeil_select_result res;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_samples, 1);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_FIRST);
    CHECK_EQ_INT(letter_of(&res), 'B');
}

TEST(esc_window_rule)
{
    static const struct {
        const char *pattern;
        uint32_t w, stop_at;
        char answer;
        qeil_select_stage stage;
    } cases[] = {
        /* window 1 AABA not unanimous; window 2 AAAA → stop at 8 */
        {"AABAAAAAAAAAAAAA", 4, 8, 'A', QEIL_STAGE_ESC_WINDOW},
        /* the first window already unanimous */
        {"BBBBAAAAAAAAAAAA", 4, 4, 'B', QEIL_STAGE_ESC_WINDOW},
        /* a NONE breaks unanimity: windows A-AA, AAAA → 8 */
        {"A-AAAAAAAAAAAAAA", 4, 8, 'A', QEIL_STAGE_ESC_WINDOW},
        /* a window of NONE only is not unanimous either */
        {"----AAAAAAAAAAAA", 4, 8, 'A', QEIL_STAGE_ESC_WINDOW},
        /* the answer is the plurality over all drawn: BBA|AAA → A 4, B 2 */
        {"BBAAAABBBBBBBBBB", 3, 6, 'A', QEIL_STAGE_ESC_WINDOW},
        /* never unanimous: the budget */
        {"ABABABABABABABAB", 4, 16, 'A', QEIL_STAGE_BUDGET},
        /* w = 5 over 16: windows 5, 5, 5, 1 */
        {"ABABAABABABBBBBA", 5, 15, 'B', QEIL_STAGE_ESC_WINDOW},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        stream st;
        stream_init(&st, cases[i].pattern);
        qeil_select_params p = qeil_select_default_params();
        p.method = QEIL_SELECT_ESC;
        p.esc_window = cases[i].w;
        qeil_select_result res;
        CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
        if (res.n_samples != cases[i].stop_at || letter_of(&res) != cases[i].answer ||
            res.stage != cases[i].stage)
            TEST_FAIL_("%s w=%u: %u samples, %c, %s; want %u, %c, %s", cases[i].pattern, cases[i].w,
                       res.n_samples, letter_of(&res), qeil_select_stage_name(res.stage),
                       cases[i].stop_at, cases[i].answer, qeil_select_stage_name(cases[i].stage));
        CHECK_EQ_INT(st.g.call_n[0], cases[i].w);
    }
}

TEST(adaptive_consistency_stop)
{
    /* Beta criterion, threshold 0.95, batch 1:
     *   AAAA: 3-0 → 0.9375; 4-0 → 0.96875 → stop at 4
     *   ABAAAAA: 2-1 0.6875, 3-1 0.8125, 4-1 0.8906, 5-1 0.9375,
     *            6-1 → 1 − 9/256 = 0.9648 → stop at 7 */
    static const struct {
        const char *pattern;
        uint32_t stop_at;
    } cases[] = {{"AAAAAAAAAAAAAAAA", 4}, {"ABAAAAAAAAAAAAAA", 7}, {"A-AAAAAAAAAAAAAA", 5}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        stream st;
        stream_init(&st, cases[i].pattern);
        qeil_select_params p = qeil_select_default_params();
        p.method = QEIL_SELECT_ADAPTIVE;
        p.batch = 1;
        qeil_select_result res;
        CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
        CHECK_EQ_INT(res.n_samples, cases[i].stop_at);
        CHECK_EQ_INT(res.stage, QEIL_STAGE_ADAPTIVE);
        CHECK_EQ_INT(letter_of(&res), 'A');
    }
    /* batch 2 checks at 2, 4, 6: AAAA stops at 4 as well; ABAAAAA at 8 */
    stream st;
    stream_init(&st, "ABAAAAAAAAAAAAAA");
    qeil_select_params p = qeil_select_default_params();
    p.method = QEIL_SELECT_ADAPTIVE;
    qeil_select_result res;
    CHECK_EQ_INT(run_pattern(&p, &st, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_samples, 8);
}

/* field by field: padding bytes of a struct are unspecified */
static int same_result(const qeil_select_result *a, const qeil_select_result *b)
{
    return a->answer.has == b->answer.has && strcmp(a->answer.text, b->answer.text) == 0 &&
           a->stage == b->stage && a->stop == b->stop && a->n_samples == b->n_samples &&
           a->n_tokens == b->n_tokens && a->n_none == b->n_none &&
           a->n_clusters == b->n_clusters && a->votes == b->votes &&
           a->chosen_cluster == b->chosen_cluster && a->share == b->share &&
           a->mode_risk == b->mode_risk;
}

TEST(determinism)
{
    /* the same stream gives the same result, cluster table and ARDE scores
     * on a reused selector and on a fresh one */
    stream st;
    stream_init(&st, "ABCABDAB-CEFABCD");
    for (int i = 0; i < 16; i++) st.s[i].ll = -0.3 - 0.01 * ((i * 7) % 5);
    qeil_select_params p = qeil_select_default_params();
    p.csvet_futility = 0;
    qeil_selector *s1 = NULL, *s2 = NULL;
    qeil_select_result r1, r2, r3;
    CHECK_EQ_INT(qeil_select_create(ctx, &p, &s1), QEIL_OK);
    CHECK_EQ_INT(qeil_select_create(ctx, &p, &s2), QEIL_OK);
    CHECK_EQ_INT(qeil_select_run(s1, fake_fn, &st.g, &r1), QEIL_OK);
    CHECK_EQ_INT(qeil_select_run(s1, fake_fn, &st.g, &r2), QEIL_OK);
    CHECK_EQ_INT(qeil_select_run(s2, fake_fn, &st.g, &r3), QEIL_OK);
    CHECK_EQ_INT(r1.stage, QEIL_STAGE_ARDE); /* so the ARDE scores are compared too */
    CHECK(same_result(&r1, &r2));
    CHECK(same_result(&r1, &r3));
    CHECK_EQ_INT(qeil_select_cluster_count(s1), qeil_select_cluster_count(s2));
    for (uint32_t c = 0; c < qeil_select_cluster_count(s1); c++) {
        qeil_select_cluster a, b;
        qeil_select_cluster_get(s1, c, &a);
        qeil_select_cluster_get(s2, c, &b);
        CHECK(qeil_answer_equal(&a.answer, &b.answer));
        CHECK(a.votes == b.votes && a.first_sample == b.first_sample);
        CHECK(a.n_repetitive == b.n_repetitive && a.n_hit_limit == b.n_hit_limit);
        CHECK(a.mean_ll == b.mean_ll && a.mean_z == b.mean_z && a.arde_score == b.arde_score);
    }
    qeil_select_free(s1);
    qeil_select_free(s2);
    qeil_select_free(NULL);
}

TEST(generator_and_sample_errors)
{
    qeil_select_params p = qeil_select_default_params();
    qeil_selector *sel = NULL;
    qeil_select_result res;
    CHECK_EQ_INT(qeil_select_create(ctx, &p, &sel), QEIL_OK);
    stream st;
    stream_init(&st, "ABCDEFGHABCDEFGH");
    st.g.fail_at = 5;
    st.g.fail_status = QEIL_ERR_IO;
    CHECK_EQ_INT(qeil_select_run(sel, fake_fn, &st.g, &res), QEIL_ERR_IO);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "generator failed on samples 5..6");
    CHECK_EQ_INT(res.n_samples, 0);
    CHECK_EQ_INT(qeil_select_cluster_count(sel), 0);

    stream_init(&st, "AAAA");
    st.g.bad_logprob = 0.5;
    CHECK_EQ_INT(qeil_select_run(sel, fake_fn, &st.g, &res), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "sample 0: logprob_sum: 0.5");
    stream_init(&st, "AAAA");
    st.g.bad_logprob = NAN;
    CHECK_EQ_INT(qeil_select_run(sel, fake_fn, &st.g, &res), QEIL_ERR_RANGE);

    stream_init(&st, "AAAA");
    st.s[1].flags = 0x80;
    CHECK_EQ_INT(qeil_select_run(sel, fake_fn, &st.g, &res), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "sample 1: flags: 0x80");

    CHECK_EQ_INT(qeil_select_run(sel, NULL, &st.g, &res), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_select_run(NULL, fake_fn, &st.g, &res), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_select_create(ctx, &p, NULL), QEIL_ERR_INVALID);

    /* a sample without text is a NONE, not an error */
    fake_sample s[16];
    for (int i = 0; i < 16; i++) s[i] = (fake_sample){NULL, -0.5, 0};
    fake_gen g = {.s = s, .n = 16};
    CHECK_EQ_INT(qeil_select_run(sel, fake_fn, &g, &res), QEIL_OK);
    CHECK_EQ_INT(res.stage, QEIL_STAGE_NO_ANSWER);
    qeil_select_free(sel);
}

TEST(choice_mode_cascade)
{
    fake_sample s[16];
    static const char *t[] = {"The answer is (B)", "Answer: b", "#### B", "I pick\nC"};
    for (int i = 0; i < 16; i++) s[i] = (fake_sample){t[i % 4], -0.5, 0};
    fake_gen g = {.s = s, .n = 16};
    qeil_select_params p = qeil_select_default_params();
    p.mode = QEIL_ANSWER_CHOICE;
    qeil_selector *sel = NULL;
    qeil_select_result res;
    CHECK_EQ_INT(qeil_select_create(ctx, &p, &sel), QEIL_OK);
    CHECK_EQ_INT(qeil_select_run(sel, fake_fn, &g, &res), QEIL_OK);
    CHECK_EQ_STR(res.answer.text, "B");
    CHECK_EQ_INT(res.n_samples, 3);
    qeil_select_free(sel);
}

/* ------------------------------------------------------------------------ */
/* Metrics                                                                   */
/* ------------------------------------------------------------------------ */

TEST(pass_at_k_hand_values)
{
    /* n = 5, c = 2: 1 − C(3,k)/C(5,k)
     *   k=1: 1 − 3/5  = 0.4
     *   k=2: 1 − 3/10 = 0.7
     *   k=3: 1 − 1/10 = 0.9
     *   k=4: n − c = 3 < 4 → 1
     *   k=5: 1 */
    static const double want[6] = {0, 0.4, 0.7, 0.9, 1.0, 1.0};
    for (uint32_t k = 1; k <= 5; k++) {
        double v;
        CHECK_EQ_INT(qeil_metrics_pass_at_k(ctx, 5, 2, k, &v), QEIL_OK);
        CHECK_NEAR(v, want[k], 0, 1e-15);
    }
    double v;
    /* c = 0 → 0; c = n → 1 */
    CHECK_EQ_INT(qeil_metrics_pass_at_k(ctx, 10, 0, 3, &v), QEIL_OK);
    CHECK_EQ_INT(v == 0.0, 1);
    CHECK_EQ_INT(qeil_metrics_pass_at_k(ctx, 10, 10, 3, &v), QEIL_OK);
    CHECK_EQ_INT(v == 1.0, 1);
    /* k = 1 is the fraction correct */
    CHECK_EQ_INT(qeil_metrics_pass_at_k(ctx, 16, 7, 1, &v), QEIL_OK);
    CHECK_NEAR(v, 7.0 / 16, 0, 1e-15);
    /* n = 16, c = 1, k = 4: 1 − C(15,4)/C(16,4) = 1 − 12/16 = 0.25 */
    CHECK_EQ_INT(qeil_metrics_pass_at_k(ctx, 16, 1, 4, &v), QEIL_OK);
    CHECK_NEAR(v, 0.25, 0, 1e-15);
    /* large n stays finite and in [0, 1]: C(200,100) ≈ 9e58 */
    CHECK_EQ_INT(qeil_metrics_pass_at_k(ctx, 200, 100, 100, &v), QEIL_OK);
    CHECK_NEAR(v, 1.0, 0, 1e-15);
    CHECK_EQ_INT(qeil_metrics_pass_at_k(ctx, 100000, 1, 1, &v), QEIL_OK);
    CHECK_NEAR(v, 1e-5, 1e-12, 0);
    /* errors */
    CHECK_EQ_INT(qeil_metrics_pass_at_k(ctx, 5, 2, 6, &v), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "pass@k k: 6");
    CHECK_EQ_INT(qeil_metrics_pass_at_k(ctx, 5, 2, 0, &v), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_metrics_pass_at_k(ctx, 5, 6, 1, &v), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "pass@k c: 6");
    CHECK_EQ_INT(qeil_metrics_pass_at_k(ctx, 0, 0, 1, &v), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_metrics_pass_at_k(ctx, 5, 2, 1, NULL), QEIL_ERR_INVALID);
}

TEST(pass_at_k_mean)
{
    uint32_t n[3] = {5, 5, 10}, c[3] = {2, 0, 10};
    double v;
    /* k=2: (0.7 + 0 + 1) / 3 */
    CHECK_EQ_INT(qeil_metrics_pass_at_k_mean(ctx, n, c, 3, 2, &v), QEIL_OK);
    CHECK_NEAR(v, 1.7 / 3, 0, 1e-15);
    CHECK_EQ_INT(qeil_metrics_pass_at_k_mean(ctx, n, c, 3, 6, &v), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "problem 0 has n = 5");
    CHECK_EQ_INT(qeil_metrics_pass_at_k_mean(ctx, n, c, 0, 1, &v), QEIL_ERR_RANGE);
}

TEST(metrics_aggregates_hand_values)
{
    /* 4 problems: correct 1,1,0,1; samples 3,5,16,4; tokens 300,500,1600,400;
     * energy 10,20,30,40 J; time 1,2,3,4 s.
     *   accuracy 3/4 = 75 %; mean samples 7; mean tokens 700;
     *   Σ E = 100 J, Σ t = 10 s → average power 10 W;
     *   IPW = 75 / 10 = 7.5 %/W; ECE = 3 / 100 J = 0.03 correct/J;
     *   energy per problem 25 J, per token 100/2800 J, latency 2.5 s. */
    qeil_metrics_acc acc;
    qeil_metrics_init(&acc);
    static const qeil_problem_record r[4] = {
        {1, 3, 300, 10, 1, QEIL_PROV_MEASURED},
        {1, 5, 500, 20, 2, QEIL_PROV_MEASURED},
        {0, 16, 1600, 30, 3, QEIL_PROV_MEASURED_TIME_MODELED_POWER},
        {1, 4, 400, 40, 4, QEIL_PROV_MEASURED},
    };
    for (int i = 0; i < 4; i++) CHECK_EQ_INT(qeil_metrics_add(ctx, &acc, &r[i]), QEIL_OK);
    qeil_metrics_summary s;
    CHECK_EQ_INT(qeil_metrics_summarize(ctx, &acc, &s), QEIL_OK);
    CHECK_EQ_INT(s.n_problems, 4);
    CHECK_NEAR(s.accuracy, 0.75, 0, 1e-15);
    CHECK_NEAR(s.accuracy_pct, 75.0, 0, 1e-12);
    CHECK_NEAR(s.mean_samples, 7.0, 0, 1e-15);
    CHECK_NEAR(s.mean_tokens, 700.0, 0, 1e-12);
    CHECK_NEAR(s.avg_power_W, 10.0, 0, 1e-12);
    CHECK_NEAR(s.ipw, 7.5, 0, 1e-12);
    CHECK_NEAR(s.ece, 0.03, 0, 1e-15);
    CHECK_NEAR(s.energy_per_problem_J, 25.0, 0, 1e-12);
    CHECK_NEAR(s.energy_per_token_J, 100.0 / 2800.0, 0, 1e-15);
    CHECK_NEAR(s.latency_s, 2.5, 0, 1e-15);
    CHECK_EQ_INT(s.power_valid, 1);
    /* a mix is labelled by its weakest part */
    CHECK_EQ_INT(s.energy_src, QEIL_PROV_MEASURED_TIME_MODELED_POWER);
    CHECK_EQ_STR(qeil_provenance_name(s.energy_src), "measured-time\xC3\x97modeled-power");
    CHECK_EQ_STR(qeil_provenance_name(QEIL_PROV_MODELED), "modeled");
    CHECK_EQ_STR(qeil_provenance_name(QEIL_PROV_MEASURED), "measured");

    /* no energy: power figures flagged invalid */
    qeil_metrics_init(&acc);
    qeil_problem_record z = {1, 1, 10, 0, 0, QEIL_PROV_MODELED};
    CHECK_EQ_INT(qeil_metrics_add(ctx, &acc, &z), QEIL_OK);
    CHECK_EQ_INT(qeil_metrics_summarize(ctx, &acc, &s), QEIL_OK);
    CHECK_EQ_INT(s.power_valid, 0);
    CHECK_EQ_INT(s.ipw == 0.0, 1);
    CHECK_EQ_INT(s.energy_src, QEIL_PROV_MODELED);

    /* bad records are named */
    qeil_problem_record bad = {1, 1, 10, -1, 1, QEIL_PROV_MODELED};
    CHECK_EQ_INT(qeil_metrics_add(ctx, &acc, &bad), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "energy_J: -1");
    bad.energy_J = 1, bad.time_s = NAN;
    CHECK_EQ_INT(qeil_metrics_add(ctx, &acc, &bad), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "time_s");
    bad.time_s = 1, bad.n_samples = 0;
    CHECK_EQ_INT(qeil_metrics_add(ctx, &acc, &bad), QEIL_ERR_RANGE);
    bad.n_samples = 1, bad.correct = 2;
    CHECK_EQ_INT(qeil_metrics_add(ctx, &acc, &bad), QEIL_ERR_RANGE);
    bad.correct = 1, bad.energy_src = (qeil_provenance)9;
    CHECK_EQ_INT(qeil_metrics_add(ctx, &acc, &bad), QEIL_ERR_RANGE);
    CHECK_EQ_INT(acc.n_problems, 1); /* nothing bad was added */
    qeil_metrics_init(&acc);
    CHECK_EQ_INT(qeil_metrics_summarize(ctx, &acc, &s), QEIL_ERR_RANGE);
}

int main(void)
{
    ctx = qeil_ctx_create(NULL);
    if (!ctx) return 1;
    RUN(extract_numeric_table);
    RUN(extract_choice_table);
    RUN(extract_reads_only_len_bytes);
    RUN(extract_rejects_bad_arguments);
    RUN(extract_random_texts_property);
    RUN(normalize_reference_answers);
    RUN(none_never_equals_anything);
    RUN(repetition_ratio);
    RUN(betainc_matches_binomial_sums);
    RUN(adaptive_prob_hand_values);
    RUN(csvet_mode_risk_hand_values);
    RUN(csvet_overturn_risk_hand_values);
    RUN(params_validation_names_the_field);
    RUN(method_and_stage_names);
    RUN(header_usage_example);
    RUN(cascade_unanimous_stops_at_three);
    RUN(cascade_batches_and_last_partial_batch);
    RUN(csvet_unbeatable_stop_indices);
    RUN(csvet_bound_mode_rule_stop_index);
    RUN(csvet_late_delta);
    RUN(csvet_bound_not_triggered_by_two_samples);
    RUN(cascade_leader_early_then_overturned);
    RUN(cascade_all_distinct_goes_to_arde_by_likelihood);
    RUN(cascade_no_extractable_answers);
    RUN(cascade_ties);
    RUN(arde_penalises_degenerate_samples);
    RUN(eac_thresholds);
    RUN(majority_never_stops_early);
    RUN(first_sample);
    RUN(esc_window_rule);
    RUN(adaptive_consistency_stop);
    RUN(determinism);
    RUN(generator_and_sample_errors);
    RUN(choice_mode_cascade);
    RUN(pass_at_k_hand_values);
    RUN(pass_at_k_mean);
    RUN(metrics_aggregates_hand_values);
    qeil_ctx_free(ctx);
    return test_summary("select");
}
