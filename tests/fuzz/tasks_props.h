/* tasks_props.h — the properties every input file must keep through the
 * task reader and the prompt builder (src/runtime/tasks.c); shared by the
 * libFuzzer target tests/fuzz/fuzz_tasks.c and the corpus regression run
 * in tests/test_tasks.c. */
#ifndef QEIL_TASKS_PROPS_H
#define QEIL_TASKS_PROPS_H

#include <string.h>

#include "qeil/runtime.h"

/* NULL when the file at path keeps every property, else which one broke:
 *   - read in each format (auto, qeil, gsm8k, arc): QEIL_OK, or
 *     QEIL_ERR_FORMAT / QEIL_ERR_RANGE with a message and no tasks;
 *   - on success: at least one task, the format read is the one asked (or
 *     a concrete one for auto), every task has a non-empty id, question
 *     and solution, a reference answer, a valid mode and increasing lines;
 *   - its zero-shot prompt is "Q: " question "\nA:"; a 2-shot prompt from
 *     the file itself succeeds, or fails with QEIL_ERR_RANGE (too few
 *     other questions), and is longer than the zero-shot one. */
static const char *tasks_props(const char *path)
{
    const char *bad = NULL;
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    if (!ctx) return NULL; /* out of memory: nothing to check */
    for (int f = QEIL_TASKS_AUTO; f <= QEIL_TASKS_ARC && !bad; f++) {
        qeil_tasks *ts = NULL;
        qeil_status st = qeil_tasks_read_as(ctx, path, (qeil_tasks_format)f, 0, &ts);
        if (st != QEIL_OK) {
            if (ts) bad = "tasks returned with an error";
            else if (st != QEIL_ERR_FORMAT && st != QEIL_ERR_RANGE && st != QEIL_ERR_NOMEM)
                bad = "an error other than FORMAT/RANGE";
            else if (!qeil_ctx_errmsg(ctx)[0]) bad = "an error without a message";
            continue;
        }
        uint32_t n = qeil_tasks_count(ts), prev = 0;
        qeil_tasks_format got = qeil_tasks_get_format(ts);
        if (n == 0) bad = "no tasks and no error";
        else if (got == QEIL_TASKS_AUTO || (f != QEIL_TASKS_AUTO && got != (qeil_tasks_format)f))
            bad = "the format read is not the one asked";
        for (uint32_t i = 0; i < n && !bad; i++) {
            const qeil_task *t = qeil_tasks_get(ts, i);
            if (!t->id || !t->id[0] || !t->question || !t->question[0] || !t->gold_text ||
                !t->solution || !t->solution[0])
                bad = "a task with an empty id, question or solution";
            else if (!t->gold.has || (t->mode != QEIL_ANSWER_NUMERIC && t->mode != QEIL_ANSWER_CHOICE))
                bad = "a task without a reference answer or mode";
            else if (t->line <= prev)
                bad = "task lines not increasing";
            prev = t->line;
        }
        if (!bad) {
            const qeil_task *t = qeil_tasks_get(ts, n - 1);
            char *p0 = NULL, *p2 = NULL;
            if (qeil_tasks_prompt(ctx, t, n - 1, NULL, 0, 7, &p0, NULL) != QEIL_OK)
                bad = "the zero-shot prompt failed";
            else if (strlen(p0) != strlen(t->question) + 6 || strncmp(p0, "Q: ", 3) != 0 ||
                     strcmp(p0 + 3 + strlen(t->question), "\nA:") != 0)
                bad = "the zero-shot prompt is not \"Q: <question>\\nA:\"";
            if (!bad) {
                st = qeil_tasks_prompt(ctx, t, n - 1, ts, 2, 7, &p2, NULL);
                if (st == QEIL_OK && strlen(p2) <= strlen(p0)) bad = "a 2-shot prompt no longer";
                else if (st != QEIL_OK && st != QEIL_ERR_RANGE && st != QEIL_ERR_NOMEM)
                    bad = "the 2-shot prompt failed other than RANGE";
            }
            qeil_free(ctx, p0);
            qeil_free(ctx, p2);
        }
        qeil_tasks_free(ts);
    }
    qeil_ctx_free(ctx);
    return bad;
}

#endif
