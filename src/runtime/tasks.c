/* tasks.c — the JSONL task files of `qeil eval` (docs/eval.md): one JSON
 * object per line, {"id":..,"question":..,"answer":..,"kind":..}. Every
 * byte is hostile: lines are bounded, NUL bytes and \u0000 escapes are
 * rejected, every error names the file, the line and the field. Moved from
 * cli/cmd_eval.c; the messages are the CLI's. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qeil/runtime.h"

struct qeil_tasks {
    qeil_ctx *ctx;
    qeil_task *t;
    uint32_t n;
};

static char *dupstr(qeil_ctx *ctx, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = qeil_malloc(ctx, n);
    if (d) memcpy(d, s, n);
    return d;
}

static void task_clear(qeil_ctx *ctx, qeil_task *t)
{
    qeil_free(ctx, (char *)t->id);
    qeil_free(ctx, (char *)t->question);
    qeil_free(ctx, (char *)t->gold_text);
}

void qeil_tasks_free(qeil_tasks *ts)
{
    if (!ts) return;
    for (uint32_t i = 0; i < ts->n; i++) task_clear(ts->ctx, &ts->t[i]);
    qeil_free(ts->ctx, ts->t);
    qeil_free(ts->ctx, ts);
}

uint32_t qeil_tasks_count(const qeil_tasks *ts) { return ts ? ts->n : 0; }

const qeil_task *qeil_tasks_get(const qeil_tasks *ts, uint32_t i)
{
    return ts && i < ts->n ? &ts->t[i] : NULL;
}

/* Parse one JSONL line into *t. */
static qeil_status task_parse(qeil_ctx *ctx, const char *file, uint32_t line, const char *s,
                              size_t len, qeil_task *t)
{
    cJSON *j = cJSON_ParseWithLength(s, len);
    qeil_status st = QEIL_ERR_FORMAT;
    if (!j || !cJSON_IsObject(j)) {
        qeil_ctx_fail(ctx, st, "%s:%u: not a JSON object", file, line);
        goto out;
    }
    /* cJSON's C strings would cut an id or a question at the NUL */
    size_t nul = qeil_json_find_nul(s, len);
    if (nul < len) {
        qeil_ctx_fail(ctx, st, "%s:%u: a string holds \\u0000 (NUL) at column %zu (not allowed)",
                      file, line, nul + 1);
        goto out;
    }
    cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "question");
    cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "answer");
    cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "kind");
    char num[64];
    t->line = line;
    if (cJSON_IsString(id)) {
        t->id = dupstr(ctx, id->valuestring);
    } else if (cJSON_IsNumber(id)) {
        snprintf(num, sizeof num, "%.17g", id->valuedouble);
        t->id = dupstr(ctx, num);
    } else {
        qeil_ctx_fail(ctx, st, "%s:%u: field 'id': %s (want a string or a number)", file, line,
                      id ? "wrong type" : "missing");
        goto out;
    }
    if (!cJSON_IsString(q) || q->valuestring[0] == '\0') {
        qeil_ctx_fail(ctx, st, "%s:%u: field 'question': %s (want a non-empty string)", file,
                      line, !q ? "missing" : cJSON_IsString(q) ? "empty" : "wrong type");
        goto out;
    }
    t->question = dupstr(ctx, q->valuestring);
    if (cJSON_IsString(a)) {
        t->gold_text = dupstr(ctx, a->valuestring);
    } else if (cJSON_IsNumber(a)) {
        snprintf(num, sizeof num, "%.17g", a->valuedouble);
        t->gold_text = dupstr(ctx, num);
    } else {
        qeil_ctx_fail(ctx, st, "%s:%u: field 'answer': %s (want a string such as \"42\" or \"B\")",
                      file, line, a ? "wrong type" : "missing");
        goto out;
    }
    t->mode = QEIL_ANSWER_NUMERIC;
    if (k) {
        if (cJSON_IsString(k) && strcmp(k->valuestring, "numeric") == 0) {
            t->mode = QEIL_ANSWER_NUMERIC;
        } else if (cJSON_IsString(k) && strcmp(k->valuestring, "choice") == 0) {
            t->mode = QEIL_ANSWER_CHOICE;
        } else {
            qeil_ctx_fail(ctx, st, "%s:%u: field 'kind': not one of \"numeric\"|\"choice\"", file,
                          line);
            goto out;
        }
    }
    if (!t->id || !t->question || !t->gold_text) {
        st = qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (qeil_answer_normalize(ctx, t->mode, t->gold_text, &t->gold) != QEIL_OK) {
        char why[512]; /* the detail lives in ctx's buffer, which the next fail overwrites */
        snprintf(why, sizeof why, "%s", qeil_ctx_errmsg(ctx));
        qeil_ctx_fail(ctx, st, "%s:%u: field 'answer': %s", file, line, why);
        goto out;
    }
    st = QEIL_OK;
out:
    cJSON_Delete(j);
    return st;
}

qeil_status qeil_tasks_read(qeil_ctx *ctx, const char *file, uint32_t limit, qeil_tasks **out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_tasks_read: out is NULL");
    *out = NULL;
    if (!file) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_tasks_read: path is NULL");
    if (limit > QEIL_TASKS_MAX)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "limit: %u (allowed 0 = all, 1..%u)", limit,
                             QEIL_TASKS_MAX);
    FILE *f = fopen(file, "rb");
    if (!f) return qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: cannot open", file);
    char *buf = qeil_malloc(ctx, QEIL_TASKS_MAX_LINE + 2);
    qeil_tasks *ts = qeil_calloc(ctx, 1, sizeof *ts);
    uint32_t cap = 0, line = 0;
    qeil_status st = QEIL_ERR_NOMEM;
    if (ts) ts->ctx = ctx;
    if (!buf || !ts) {
        qeil_ctx_fail(ctx, st, "out of memory");
        goto out;
    }
    for (;;) {
        if (limit && ts->n == limit) break;
        size_t len = 0;
        int c = 0, any = 0;
        while ((c = fgetc(f)) != EOF) {
            any = 1;
            if (c == '\n') break;
            if (len == QEIL_TASKS_MAX_LINE) {
                st = qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s:%u: line longer than %u bytes", file,
                                   line + 1, QEIL_TASKS_MAX_LINE);
                goto out;
            }
            buf[len++] = (char)c;
        }
        if (!any) break;
        line++;
        if (len && buf[len - 1] == '\r') len--;
        size_t k = 0;
        while (k < len && (buf[k] == ' ' || buf[k] == '\t')) k++;
        if (k == len) continue; /* blank line */
        if (memchr(buf, '\0', len)) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s:%u: NUL byte in line", file, line);
            goto out;
        }
        if (ts->n == QEIL_TASKS_MAX) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s:%u: more than %u tasks", file, line,
                               QEIL_TASKS_MAX);
            goto out;
        }
        if (ts->n == cap) {
            uint32_t nc = cap ? 2 * cap : 64;
            qeil_task *nt = qeil_realloc(ctx, ts->t, sizeof *nt * nc);
            if (!nt) {
                st = qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "out of memory");
                goto out;
            }
            ts->t = nt;
            cap = nc;
        }
        memset(&ts->t[ts->n], 0, sizeof ts->t[ts->n]);
        ts->n++;
        if ((st = task_parse(ctx, file, line, buf, len, &ts->t[ts->n - 1])) != QEIL_OK) goto out;
    }
    if (ferror(f)) {
        st = qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: read error", file);
        goto out;
    }
    if (ts->n == 0) {
        st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                           "%s:%u: no tasks in the file (want one JSON object per line)", file,
                           line);
        goto out;
    }
    st = QEIL_OK;
out:
    fclose(f);
    qeil_free(ctx, buf);
    if (st != QEIL_OK) {
        qeil_tasks_free(ts);
        ts = NULL;
    }
    *out = ts;
    return st;
}
