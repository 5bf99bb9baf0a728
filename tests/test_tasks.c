/* test_tasks.c — the task files of `qeil eval` as users have them
 * (src/runtime/tasks.c, docs/eval.md "Task files"): GSM8K JSONL, ARC-
 * Challenge in AI2's nested form and the flattened (Hugging Face) form,
 * qeil's own format; detection from the first non-blank line and
 * --format; BOM and CRLF; every broken sample of tests/data/eval/bad/
 * rejected naming the file, the line and the field; the few-shot prompts
 * (seeded, never the task's own question); allocation failure at every
 * allocation; the fuzz target's properties on its seed corpus
 * (tests/fuzz/corpus/tasks, tests/fuzz/tasks_props.h). The samples are committed in tests/data/eval/ and were
 * written for these tests. */
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz/tasks_props.h"
#include "qeil/runtime.h"
#include "test.h"

static char data_dir[4096];
static char tmpdir[] = "/tmp/qeil-tasks-XXXXXX";

static const char *data(const char *name)
{
    static char p[4][4400];
    static int next;
    char *r = p[next++ & 3];
    snprintf(r, sizeof p[0], "%s/%s", data_dir, name);
    return r;
}

static int write_file(const char *name, const char *text, size_t len, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(text, 1, len, f);
    return fclose(f);
}

/* Read path as fmt; NULL (failure reported) unless it succeeds. */
static qeil_tasks *read_ok(qeil_ctx *ctx, const char *path, qeil_tasks_format fmt)
{
    qeil_tasks *ts = NULL;
    qeil_status st = qeil_tasks_read_as(ctx, path, fmt, 0, &ts);
    if (st != QEIL_OK) TEST_FAIL_("%s: %s (%s)", path, qeil_status_str(st), qeil_ctx_errmsg(ctx));
    return ts;
}

/* GSM8K test split style: a BOM, CRLF line ends, a line of spaces; the gold
 * after "####" with commas, a sign, a dollar sign, no space. */
TEST(gsm8k_file)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_tasks *ts = read_ok(ctx, data("gsm8k-test.jsonl"), QEIL_TASKS_AUTO);
    if (!ts) {
        qeil_ctx_free(ctx);
        return;
    }
    CHECK_EQ_INT(qeil_tasks_get_format(ts), QEIL_TASKS_GSM8K);
    CHECK_EQ_INT(qeil_tasks_count(ts), 5);
    static const struct {
        const char *id, *gold_text, *gold;
        uint32_t line;
    } want[] = {
        {"1", "42", "42", 1},       {"2", "1,234", "1234", 2}, {"3", "-5", "-5", 3},
        {"5", "$2.50", "2.5", 5},   {"6", "200", "200", 6},
    };
    for (uint32_t i = 0; i < 5 && i < qeil_tasks_count(ts); i++) {
        const qeil_task *t = qeil_tasks_get(ts, i);
        CHECK_EQ_STR(t->id, want[i].id); /* GSM8K has no id: the line number */
        CHECK_EQ_STR(t->gold_text, want[i].gold_text);
        CHECK(t->gold.has);
        CHECK_EQ_STR(t->gold.text, want[i].gold);
        CHECK_EQ_INT(t->line, want[i].line);
        CHECK_EQ_INT(t->mode, QEIL_ANSWER_NUMERIC);
        CHECK(strchr(t->question, '\r') == NULL);
        CHECK(strchr(t->solution, '\r') == NULL);
    }
    const qeil_task *t = qeil_tasks_get(ts, 0);
    /* the BOM is not part of the first question */
    CHECK_EQ_STR(t->question, "Mara picks 14 apples on Monday and twice as many on Tuesday. How "
                              "many apples does she pick in the two days?");
    /* the exemplar solution is the answer as given, working included */
    CHECK_EQ_STR(t->solution, "On Tuesday she picks 14 * 2 = <<14*2=28>>28 apples.\nIn the two "
                              "days she picks 14 + 28 = <<14+28=42>>42 apples.\n#### 42");
    qeil_tasks_free(ts);
    /* --limit */
    CHECK_EQ_INT(qeil_tasks_read_as(ctx, data("gsm8k-test.jsonl"), QEIL_TASKS_GSM8K, 2, &ts),
                 QEIL_OK);
    CHECK_EQ_INT(qeil_tasks_count(ts), 2);
    qeil_tasks_free(ts);
    qeil_ctx_free(ctx);
}

/* AI2's nested form: letters A-D, A-E, digits 1-4 (shown and scored as
 * letters, 1 = A). */
TEST(arc_ai2_file)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_tasks *ts = read_ok(ctx, data("arc-ai2.jsonl"), QEIL_TASKS_AUTO);
    if (!ts) {
        qeil_ctx_free(ctx);
        return;
    }
    CHECK_EQ_INT(qeil_tasks_get_format(ts), QEIL_TASKS_ARC);
    CHECK_EQ_INT(qeil_tasks_count(ts), 4);
    const qeil_task *t = qeil_tasks_get(ts, 0);
    CHECK_EQ_STR(t->id, "Sample_1001");
    CHECK_EQ_STR(t->question, "Which form of energy does a plant store when it makes sugar? "
                              "A) heat energy B) chemical energy C) sound energy D) electrical "
                              "energy");
    CHECK_EQ_STR(t->gold.text, "B");
    CHECK_EQ_INT(t->mode, QEIL_ANSWER_CHOICE);
    CHECK_EQ_STR(t->solution, "The answer is B.\n#### B");
    t = qeil_tasks_get(ts, 1);
    CHECK_CONTAINS(t->question, "D) buoyancy E) tension");
    CHECK_EQ_STR(t->gold.text, "C");
    t = qeil_tasks_get(ts, 2); /* labels 1-4, answerKey "2" */
    CHECK_EQ_STR(t->question, "Which tool is best for measuring the mass of a rock? A) a ruler "
                              "B) a balance C) a thermometer D) a graduated cylinder");
    CHECK_EQ_STR(t->gold_text, "2");
    CHECK_EQ_STR(t->gold.text, "B");
    CHECK_EQ_INT(t->line, 3);
    qeil_tasks_free(ts);
    qeil_ctx_free(ctx);
}

/* The flattened form, with a BOM and CRLF; labels 1-5 and 1-3. */
TEST(arc_flat_file)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_tasks *ts = read_ok(ctx, data("arc-hf.jsonl"), QEIL_TASKS_AUTO);
    if (!ts) {
        qeil_ctx_free(ctx);
        return;
    }
    CHECK_EQ_INT(qeil_tasks_get_format(ts), QEIL_TASKS_ARC);
    CHECK_EQ_INT(qeil_tasks_count(ts), 3);
    const qeil_task *t = qeil_tasks_get(ts, 0);
    CHECK_EQ_STR(t->id, "Sample_2001");
    CHECK_EQ_STR(t->question, "Which part of a plant takes in water from the soil? A) the leaves "
                              "B) the flower C) the roots D) the seeds");
    CHECK_EQ_STR(t->gold.text, "C");
    t = qeil_tasks_get(ts, 1);
    CHECK_EQ_STR(t->question, "Which of these is a renewable resource? A) coal B) oil C) natural "
                              "gas D) wind E) uranium");
    CHECK_EQ_STR(t->gold_text, "4");
    CHECK_EQ_STR(t->gold.text, "D");
    t = qeil_tasks_get(ts, 2);
    CHECK_EQ_STR(t->gold.text, "A");
    CHECK_EQ_STR(t->solution, "The answer is A.\n#### A");
    qeil_tasks_free(ts);
    qeil_ctx_free(ctx);
}

/* The format comes from the first non-blank line, or is given. */
TEST(detection_and_forced_format)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_tasks *ts = NULL;
    char path[4400];
    /* a BOM on a line of its own, blank lines, then a GSM8K line at line 3 */
    static const char gsm[] = "\xEF\xBB\xBF\r\n \t\r\n"
                              "{\"question\":\"What is 2 + 2?\",\"answer\":\"2 + 2 = 4\\n#### 4\"}\r\n";
    CHECK_EQ_INT(write_file("late.jsonl", gsm, sizeof gsm - 1, path, sizeof path), 0);
    CHECK_EQ_INT(qeil_tasks_read(ctx, path, 0, &ts), QEIL_OK);
    CHECK_EQ_INT(qeil_tasks_get_format(ts), QEIL_TASKS_GSM8K);
    CHECK_EQ_INT(qeil_tasks_count(ts), 1);
    if (qeil_tasks_count(ts) == 1) {
        CHECK_EQ_INT(qeil_tasks_get(ts, 0)->line, 3);
        CHECK_EQ_STR(qeil_tasks_get(ts, 0)->id, "3");
    }
    qeil_tasks_free(ts);
    /* qeil's own format stays qeil's (an answer without "####") */
    ts = read_ok(ctx, data("tiny.jsonl"), QEIL_TASKS_AUTO);
    CHECK_EQ_INT(qeil_tasks_get_format(ts), QEIL_TASKS_QEIL);
    qeil_tasks_free(ts);
    /* a BOM before a qeil line */
    static const char q[] = "\xEF\xBB\xBF{\"id\":1,\"question\":\"q\",\"answer\":\"3\"}\n";
    CHECK_EQ_INT(write_file("bom.jsonl", q, sizeof q - 1, path, sizeof path), 0);
    ts = read_ok(ctx, path, QEIL_TASKS_QEIL);
    qeil_tasks_free(ts);
    /* forced: a GSM8K file read as qeil's or ARC lacks their fields */
    CHECK_EQ_INT(qeil_tasks_read_as(ctx, data("gsm8k-test.jsonl"), QEIL_TASKS_QEIL, 0, &ts),
                 QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "gsm8k-test.jsonl:1: field 'id': missing");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "[qeil format]");
    CHECK_EQ_INT(qeil_tasks_read_as(ctx, data("arc-hf.jsonl"), QEIL_TASKS_GSM8K, 0, &ts),
                 QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "arc-hf.jsonl:1: field 'answer': missing");
    /* detected: the message says from which line */
    CHECK_EQ_INT(qeil_tasks_read(ctx, data("bad/gsm8k-no-marker.jsonl"), 0, &ts), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "[gsm8k format, detected from line 1]");
    CHECK_EQ_INT(qeil_tasks_read_as(ctx, path, (qeil_tasks_format)9, 0, &ts), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "format: 9");
    /* names */
    static const char *const names[] = {"auto", "qeil", "gsm8k", "arc"};
    for (int i = 0; i < 4; i++) {
        qeil_tasks_format f = (qeil_tasks_format)7;
        CHECK_EQ_INT(qeil_tasks_format_parse(ctx, names[i], &f), QEIL_OK);
        CHECK_EQ_INT(f, i);
        CHECK_EQ_STR(qeil_tasks_format_name(f), names[i]);
    }
    qeil_tasks_format f;
    CHECK_EQ_INT(qeil_tasks_format_parse(ctx, "ARC", &f), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "'ARC' is not one of auto|qeil|gsm8k|arc");
    CHECK_EQ_STR(qeil_tasks_format_name((qeil_tasks_format)9), "?");
    CHECK_EQ_INT(qeil_tasks_get_format(NULL), QEIL_TASKS_AUTO);
    qeil_ctx_free(ctx);
}

/* Every broken sample: QEIL_ERR_FORMAT, the file, the line, the field. */
TEST(broken_samples_name_file_line_and_field)
{
    static const struct {
        const char *file, *line, *field, *detail;
    } t[] = {
        {"gsm8k-no-marker.jsonl", ":2:", "field 'answer'", "no \"####\""},
        {"gsm8k-empty-question.jsonl", ":3:", "field 'question'", "empty"},
        {"gsm8k-nothing-after-marker.jsonl", ":1:", "field 'answer'", "nothing after"},
        {"gsm8k-not-a-number.jsonl", ":2:", "field 'answer'", "'forty-two' is not one number"},
        {"gsm8k-broken-line.jsonl", ":2:", "not valid JSON", "broken or cut line"},
        {"gsm8k-answer-number.jsonl", ":2:", "field 'answer'", "wrong type"},
        {"arc-empty-text.jsonl", ":2:", "field 'question.choices[1].text'", "empty"},
        {"arc-empty-stem.jsonl", ":1:", "field 'question.stem'", "empty"},
        {"arc-mixed-labels.jsonl", ":3:", "field 'choices.label[1]'", "'2' mixes a digit label"},
        {"arc-key-not-a-label.jsonl", ":2:", "field 'answerKey'", "'F' is not one of the labels A, B, C, D"},
        {"arc-key-style.jsonl", ":1:", "field 'answerKey'", "'A' is not one of the labels 1, 2, 3"},
        {"arc-empty-key.jsonl", ":2:", "field 'answerKey'", "empty"},
        {"arc-label-count.jsonl", ":2:", "field 'choices.label'", "3 labels for 4 texts"},
        {"arc-one-choice.jsonl", ":1:", "field 'question.choices'", "1 choice (allowed 2..8)"},
        {"arc-repeated-label.jsonl", ":1:", "field 'choices.label[2]'", "repeats the label of choice 0"},
        {"arc-bad-label.jsonl", ":1:", "field 'choices.label[0]'", "'a' is not a label A-H or 1-8"},
        {"arc-no-choices.jsonl", ":2:", "field 'question.choices'", "missing"},
        {"arc-choice-not-object.jsonl", ":1:", "field 'question.choices[0]'", "wrong type"},
        {"arc-no-id.jsonl", ":1:", "field 'id'", "missing"},
    };
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        char name[256];
        snprintf(name, sizeof name, "bad/%s", t[k].file);
        qeil_tasks *ts = (qeil_tasks *)ctx; /* must come back NULL */
        qeil_status st = qeil_tasks_read(ctx, data(name), 0, &ts);
        const char *m = qeil_ctx_errmsg(ctx);
        if (st != QEIL_ERR_FORMAT || ts != NULL)
            TEST_FAIL_("%s: %s, want QEIL_ERR_FORMAT and no tasks (%s)", t[k].file,
                       qeil_status_str(st), m);
        char where[300];
        snprintf(where, sizeof where, "%s%s", t[k].file, t[k].line);
        if (!strstr(m, where) || !strstr(m, t[k].field) || !strstr(m, t[k].detail))
            TEST_FAIL_("%s: \"%s\" should name \"%s\", \"%s\" and \"%s\"", t[k].file, m, where,
                       t[k].field, t[k].detail);
    }
    qeil_ctx_free(ctx);
}

/* Empty fields are rejected with the field named, in every format. */
TEST(empty_fields_rejected)
{
    static const struct {
        const char *text, *say;
    } t[] = {
        {"{\"id\":\"\",\"question\":\"q\",\"answer\":\"1\"}\n", "field 'id': empty"},
        {"{\"id\":1,\"question\":\"q\",\"answer\":\" \"}\n", "field 'answer': empty"},
        {"{\"id\":1,\"question\":\"\",\"answer\":\"1\"}\n", "field 'question': empty"},
        {"{\"question\":\"q\",\"answer\":\"#### 4\"}\n{\"question\":\"q\",\"answer\":\"\"}\n",
         ":2: field 'answer': empty"},
        {"{\"id\":\"a\",\"question\":\"q\",\"choices\":{\"text\":[\"x\",\"\"],\"label\":[\"A\",\"B\"]},"
         "\"answerKey\":\"A\"}\n",
         "field 'choices.text[1]': empty"},
        {"{\"id\":\"a\",\"question\":\"q\",\"choices\":{\"text\":[\"x\",\"y\"],\"label\":[\"A\",\"\"]},"
         "\"answerKey\":\"A\"}\n",
         "field 'choices.label[1]': empty"},
        {"{\"id\":\"a\",\"question\":\"\",\"choices\":{\"text\":[\"x\",\"y\"],\"label\":[\"A\",\"B\"]},"
         "\"answerKey\":\"A\"}\n",
         "field 'question': empty"},
        {"{\"id\":\"a\",\"question\":{\"stem\":\"s\",\"choices\":[{\"text\":\"x\",\"label\":\"A\"},"
         "{\"text\":\"y\",\"label\":\"\"}]},\"answerKey\":\"A\"}\n",
         "field 'question.choices[1].label': empty"},
    };
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    char path[4400];
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        CHECK_EQ_INT(write_file("empty-field.jsonl", t[k].text, strlen(t[k].text), path, sizeof path),
                     0);
        qeil_tasks *ts = NULL;
        qeil_status st = qeil_tasks_read(ctx, path, 0, &ts);
        if (st != QEIL_ERR_FORMAT || !strstr(qeil_ctx_errmsg(ctx), t[k].say))
            TEST_FAIL_("case %zu: %s \"%s\", want \"%s\"", k, qeil_status_str(st),
                       qeil_ctx_errmsg(ctx), t[k].say);
        qeil_tasks_free(ts);
    }
    qeil_ctx_free(ctx);
}

/* Prompts: the template, and exemplars drawn with the seed, without
 * replacement, never the task's own question. */
/* The answer boundary and the sample seeds, shared by the runtime's select
 * and qeil serve's cascade (docs/runtime.md). */
TEST(answer_end_and_sample_seed)
{
    static const struct {
        const char *text;
        size_t keep;
    } cases[] = {
        {"", 0},
        {"3 + 4 = 7", 0},                   /* no "####": not finished */
        {"#### 7", 0},                      /* answer line, nothing after it yet */
        {"7\n#### 7\n\nQ: what", 8},       /* "\n\n" first */
        {"7\n#### 7Q: 1\n\n", 8},            /* "Q:" first */
        {"\n\nQ: 1 #### 2\n\n", 13},         /* only what follows "####" counts */
        {"#### 12\n#### 3\n\n", 14},        /* the first "####" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_EQ_INT(qeil_runtime_answer_end(cases[i].text, strlen(cases[i].text)), cases[i].keep);
    /* bytes past len are not read; a NUL inside is an ordinary byte */
    CHECK_EQ_INT(qeil_runtime_answer_end("#### 7\n\n", 7), 0);
    CHECK_EQ_INT(qeil_runtime_answer_end("#### \0\n\n", 8), 6);
    CHECK_EQ_INT(qeil_runtime_answer_end(NULL, 0), 0);

    /* mix64 is splitmix64's step (add 0x9e3779b97f4a7c15, then the
     * finaliser); the values below were computed with Python's integers:
     * mix64(5 ^ mix64(3 << 32 | 7)) */
    CHECK(qeil_runtime_sample_seed(5, 3, 7) == 0x5d2bbbb2105b58a1ULL);
    const uint64_t a = qeil_runtime_sample_seed(1, 0, 0), b = qeil_runtime_sample_seed(1, 0, 1),
                   c = qeil_runtime_sample_seed(1, 1, 0), d = qeil_runtime_sample_seed(2, 0, 0);
    CHECK(a != b && a != c && a != d && b != c); /* stream, sample and seed all count */
}

TEST(few_shot_prompts)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_tasks *test = read_ok(ctx, data("gsm8k-test.jsonl"), QEIL_TASKS_AUTO);
    qeil_tasks *train = read_ok(ctx, data("gsm8k-train.jsonl"), QEIL_TASKS_AUTO);
    if (!test || !train) goto out;
    const qeil_task *t0 = qeil_tasks_get(test, 0);
    char *p = NULL;
    uint32_t idx[QEIL_TASKS_MAX_SHOTS];
    /* zero shots: "Q: <question>\nA:" */
    CHECK_EQ_INT(qeil_tasks_prompt(ctx, t0, 0, NULL, 0, 42, &p, NULL), QEIL_OK);
    char want[4096];
    snprintf(want, sizeof want, "Q: %s\nA:", t0->question);
    CHECK_EQ_STR(p, want);
    qeil_free(ctx, p);
    /* train line 3 repeats test problem 0's question: never its exemplar */
    CHECK_EQ_STR(qeil_tasks_get(train, 2)->question, t0->question);
    int seen[6] = {0};
    for (uint64_t seed = 0; seed < 300; seed++) {
        CHECK_EQ_INT(qeil_tasks_prompt(ctx, t0, 0, train, 3, seed, &p, idx), QEIL_OK);
        for (int k = 0; k < 3; k++) {
            CHECK(idx[k] < 6 && idx[k] != 2);
            for (int m = 0; m < k; m++) CHECK(idx[m] != idx[k]); /* without replacement */
            if (idx[k] < 6) seen[idx[k]]++;
        }
        /* the text is the exemplars in order, then the question */
        size_t at = 0;
        for (int k = 0; k < 3; k++) {
            const qeil_task *e = qeil_tasks_get(train, idx[k]);
            at += (size_t)snprintf(want + at, sizeof want - at, "Q: %s\nA: %s\n\n", e->question,
                                   e->solution);
        }
        snprintf(want + at, sizeof want - at, "Q: %s\nA:", t0->question);
        if (strcmp(p, want) != 0) TEST_FAIL_("seed %llu: prompt\n%s\nwant\n%s", (unsigned long long)seed, p, want);
        qeil_free(ctx, p);
        if (test_failed_) break;
    }
    /* uniform over the 5 eligible: 900 draws, 180 each expected (a
     * binomial s.d. of 12); the bound only catches a broken draw */
    for (int i = 0; i < 6; i++)
        if (i != 2 && (seen[i] < 120 || seen[i] > 240)) TEST_FAIL_("exemplar %d drawn %d times of 900", i, seen[i]);
    /* the same (seed, problem) gives the same exemplars; the problem index
     * changes them */
    uint32_t a[3], b[3];
    int differ = 0;
    CHECK_EQ_INT(qeil_tasks_prompt(ctx, t0, 7, train, 3, 42, &p, a), QEIL_OK);
    qeil_free(ctx, p);
    CHECK_EQ_INT(qeil_tasks_prompt(ctx, t0, 7, train, 3, 42, &p, b), QEIL_OK);
    qeil_free(ctx, p);
    CHECK(memcmp(a, b, sizeof a) == 0);
    for (uint32_t prob = 0; prob < 16; prob++) {
        CHECK_EQ_INT(qeil_tasks_prompt(ctx, t0, prob, train, 3, 42, &p, b), QEIL_OK);
        qeil_free(ctx, p);
        differ |= memcmp(a, b, sizeof a) != 0;
    }
    CHECK(differ);
    /* more shots than eligible exemplars (5 of 6 differ from the question) */
    p = (char *)ctx;
    CHECK_EQ_INT(qeil_tasks_prompt(ctx, t0, 0, train, 6, 42, &p, NULL), QEIL_ERR_RANGE);
    CHECK(p == NULL);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "6 exemplars wanted for the task of line 1, but only 5 of "
                                         "the 6");
    CHECK_EQ_INT(qeil_tasks_prompt(ctx, qeil_tasks_get(test, 1), 0, train, 6, 42, &p, NULL), QEIL_OK);
    qeil_free(ctx, p);
    CHECK_EQ_INT(qeil_tasks_prompt(ctx, t0, 0, train, QEIL_TASKS_MAX_SHOTS + 1, 42, &p, NULL),
                 QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "shots: 65 (allowed 0..64)");
    CHECK_EQ_INT(qeil_tasks_prompt(ctx, t0, 0, NULL, 1, 42, &p, NULL), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_tasks_prompt(ctx, NULL, 0, NULL, 0, 42, &p, NULL), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_tasks_prompt(ctx, t0, 0, NULL, 0, 42, NULL, NULL), QEIL_ERR_INVALID);
out:
    qeil_tasks_free(test);
    qeil_tasks_free(train);
    qeil_ctx_free(ctx);
}

/* ARC: the flattened train split's copy of an AI2 test question renders
 * the same, so it is excluded too. */
TEST(arc_shots_exclude_the_question_across_forms)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_tasks *test = read_ok(ctx, data("arc-ai2.jsonl"), QEIL_TASKS_AUTO);
    qeil_tasks *train = read_ok(ctx, data("arc-train.jsonl"), QEIL_TASKS_AUTO);
    if (test && train) {
        const qeil_task *t0 = qeil_tasks_get(test, 0);
        CHECK_EQ_STR(qeil_tasks_get(train, 3)->question, t0->question);
        char *p = NULL;
        uint32_t idx[8];
        for (uint64_t seed = 0; seed < 50; seed++) {
            CHECK_EQ_INT(qeil_tasks_prompt(ctx, t0, 0, train, 4, seed, &p, idx), QEIL_OK);
            qeil_free(ctx, p);
            for (int k = 0; k < 4; k++) CHECK(idx[k] != 3);
        }
        CHECK_EQ_INT(qeil_tasks_prompt(ctx, t0, 0, train, 5, 1, &p, idx), QEIL_ERR_RANGE);
        CHECK_EQ_INT(qeil_tasks_prompt(ctx, qeil_tasks_get(test, 1), 0, train, 5, 1, &p, idx),
                     QEIL_OK);
        CHECK_CONTAINS(p, "A: The answer is B.\n#### B\n\n");
        qeil_free(ctx, p);
    }
    qeil_tasks_free(test);
    qeil_tasks_free(train);
    qeil_ctx_free(ctx);
}

/* ---- allocation failure at every allocation (as tests/test_oom.c) ---- */

typedef struct {
    long budget, used, live;
} alloc_budget;

static void *budget_realloc(void *user, void *ptr, size_t size)
{
    alloc_budget *a = user;
    if (size == 0) {
        if (ptr) a->live--;
        free(ptr);
        return NULL;
    }
    if (a->used >= a->budget) return NULL;
    a->used++;
    void *q = realloc(ptr, size);
    if (q && !ptr) a->live++;
    return q;
}

/* Read `file` and build problem 0's prompt with 2 shots from `shots`, with
 * the allocator failing after k allocations, for k = 0, 1, ... until it
 * succeeds: every failure is QEIL_ERR_NOMEM and leaks nothing. */
static void oom_sweep(const char *file, const char *shots_file)
{
    for (long k = 0; k < 100000; k++) {
        alloc_budget a = {k, 0, 0};
        qeil_ctx_params cp = qeil_ctx_default_params();
        cp.realloc = budget_realloc;
        cp.alloc_user = &a;
        qeil_ctx *ctx = qeil_ctx_create(&cp);
        if (!ctx) continue; /* the context itself did not fit the budget */
        qeil_tasks *t = NULL, *s = NULL;
        char *p = NULL;
        qeil_status st = qeil_tasks_read(ctx, file, 0, &t);
        if (st == QEIL_OK) st = qeil_tasks_read(ctx, shots_file, 0, &s);
        if (st == QEIL_OK) st = qeil_tasks_prompt(ctx, qeil_tasks_get(t, 0), 0, s, 2, 1, &p, NULL);
        qeil_free(ctx, p);
        qeil_tasks_free(t);
        qeil_tasks_free(s);
        if (st != QEIL_OK && st != QEIL_ERR_NOMEM)
            TEST_FAIL_("%s, budget %ld: %s (%s), want QEIL_ERR_NOMEM", file, k, qeil_status_str(st),
                       qeil_ctx_errmsg(ctx));
        qeil_ctx_free(ctx);
        if (a.live != 0) TEST_FAIL_("%s, budget %ld: %ld blocks leaked", file, k, a.live);
        if (st == QEIL_OK || test_failed_) return;
    }
    TEST_FAIL_("%s: never succeeded", file);
}

TEST(out_of_memory_fails_cleanly)
{
    oom_sweep(data("gsm8k-test.jsonl"), data("gsm8k-train.jsonl"));
    oom_sweep(data("arc-ai2.jsonl"), data("arc-train.jsonl"));
    oom_sweep(data("arc-hf.jsonl"), data("arc-train.jsonl"));
    oom_sweep(data("tiny.jsonl"), data("tiny.jsonl"));
}

/* The libFuzzer target's properties (tests/fuzz/fuzz_tasks.c) on its seed
 * corpus, as a plain regression test. */
TEST(fuzz_corpus_regression)
{
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/../../fuzz/corpus/tasks", data_dir);
    DIR *d = opendir(dir);
    if (!d) SKIP("no tests/fuzz/corpus/tasks");
    int files = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char path[4700];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        const char *bad = tasks_props(path);
        if (bad) TEST_FAIL_("%s: %s", de->d_name, bad);
        files++;
    }
    closedir(d);
    printf("  corpus: %d files\n", files);
    CHECK(files >= 20);
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[3800], dir[3800];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(dir, sizeof dir, "%s", dirname(self));
    /* build/tests/test_tasks -> the repository root above */
    snprintf(data_dir, sizeof data_dir, "%s/../../tests/data/eval", dir);
    if (access(data("gsm8k-test.jsonl"), R_OK) != 0)
        snprintf(data_dir, sizeof data_dir, "tests/data/eval");
    if (access(data("gsm8k-test.jsonl"), R_OK) != 0 || !mkdtemp(tmpdir)) {
        printf("FAIL setup: no %s or no temp dir\n", data("gsm8k-test.jsonl"));
        return 1;
    }
    RUN(gsm8k_file);
    RUN(arc_ai2_file);
    RUN(arc_flat_file);
    RUN(detection_and_forced_format);
    RUN(broken_samples_name_file_line_and_field);
    RUN(empty_fields_rejected);
    RUN(answer_end_and_sample_seed);
    RUN(few_shot_prompts);
    RUN(arc_shots_exclude_the_question_across_forms);
    RUN(out_of_memory_fails_cleanly);
    RUN(fuzz_corpus_regression);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    return test_summary("tasks");
}
