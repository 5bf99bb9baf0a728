/* tasks.c — the JSONL task files of `qeil eval` (docs/eval.md "Task
 * files"): qeil's own {"id","question","answer","kind"}, GSM8K
 * {"question","answer": "... #### 72"} and ARC-Challenge (AI2's nested
 * question.stem/question.choices[] and the flattened choices {text[],
 * label[]}), one JSON object per line, the format detected from the first
 * non-blank line or given; and the prompts, with seeded few-shot
 * exemplars. Every byte is hostile: lines are bounded, NUL bytes and
 * \u0000 escapes are rejected, empty fields are rejected, every error names
 * the file, the line and the field. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qeil/runtime.h"

struct qeil_tasks {
    qeil_ctx *ctx;
    qeil_task *t;
    uint32_t n;
    qeil_tasks_format format;
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
    qeil_free(ctx, (char *)t->solution);
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

/* ------------------------------------------------------------------------ */
/* Formats                                                                   */
/* ------------------------------------------------------------------------ */

static const char *const format_names[] = {"auto", "qeil", "gsm8k", "arc"};
#define N_FORMATS (sizeof format_names / sizeof format_names[0])

const char *qeil_tasks_format_name(qeil_tasks_format f)
{
    return (unsigned)f < N_FORMATS ? format_names[f] : "?";
}

qeil_status qeil_tasks_format_parse(qeil_ctx *ctx, const char *name, qeil_tasks_format *out)
{
    if (!name || !out)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_tasks_format_parse: NULL argument");
    for (size_t i = 0; i < N_FORMATS; i++)
        if (strcmp(name, format_names[i]) == 0) {
            *out = (qeil_tasks_format)i;
            return QEIL_OK;
        }
    return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "format: '%.64s' is not one of auto|qeil|gsm8k|arc",
                         name);
}

qeil_tasks_format qeil_tasks_get_format(const qeil_tasks *ts)
{
    return ts ? ts->format : QEIL_TASKS_AUTO;
}

/* The format of a file from its first task line: ARC files are the only
 * ones with "answerKey"; GSM8K's answer is the worked solution ending in
 * "#### N", which qeil's own format (one number or letter) never holds. */
static qeil_tasks_format detect(const cJSON *j)
{
    if (cJSON_GetObjectItemCaseSensitive(j, "answerKey")) return QEIL_TASKS_ARC;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "answer");
    if (cJSON_IsString(a) && strstr(a->valuestring, "####")) return QEIL_TASKS_GSM8K;
    return QEIL_TASKS_QEIL;
}

/* ------------------------------------------------------------------------ */
/* One line                                                                  */
/* ------------------------------------------------------------------------ */

/* Where a line came from, for the messages. */
typedef struct {
    qeil_ctx *ctx;
    const char *file;
    uint32_t line;
    char note[96]; /* " [gsm8k format, detected from line 1]" */
} line_ctx;

static qeil_status field_fail(const line_ctx *lc, const char *field, const char *fmt, ...)
    QEIL_PRINTF(3, 4);
static qeil_status field_fail(const line_ctx *lc, const char *field, const char *fmt, ...)
{
    char why[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return qeil_ctx_fail(lc->ctx, QEIL_ERR_FORMAT, "%s:%u: field '%s': %s%s", lc->file, lc->line,
                         field, why, lc->note);
}

static qeil_status nomem(const line_ctx *lc)
{
    return qeil_ctx_fail(lc->ctx, QEIL_ERR_NOMEM, "out of memory");
}

static int is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 0;
    return 1;
}

/* A copy of s[0..n) from ctx's allocator (NULL when out of memory). */
static char *dupn(qeil_ctx *ctx, const char *s, size_t n)
{
    char *d = qeil_malloc(ctx, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Member `key` of o as a non-empty string (not only white space), or NULL
 * after naming `field` in the error. */
static const char *need_string(const line_ctx *lc, const cJSON *o, const char *key,
                               const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) field_fail(lc, field, "missing (want a non-empty string)");
    else if (!cJSON_IsString(v)) field_fail(lc, field, "wrong type (want a non-empty string)");
    else if (is_blank(v->valuestring)) field_fail(lc, field, "empty (want a non-empty string)");
    else return v->valuestring;
    return NULL;
}

/* "id": a non-empty string or a number (kept as its %.17g text). When
 * absent and not required, the line number. */
static qeil_status take_id(const line_ctx *lc, const cJSON *j, int required, qeil_task *t)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    char num[64];
    if (!id && !required) {
        snprintf(num, sizeof num, "%u", lc->line);
        t->id = dupstr(lc->ctx, num);
    } else if (cJSON_IsString(id)) {
        if (is_blank(id->valuestring))
            return field_fail(lc, "id", "empty (want a non-empty string or a number)");
        t->id = dupstr(lc->ctx, id->valuestring);
    } else if (cJSON_IsNumber(id)) {
        snprintf(num, sizeof num, "%.17g", id->valuedouble);
        t->id = dupstr(lc->ctx, num);
    } else {
        return field_fail(lc, "id", "%s (want a string or a number)",
                          id ? "wrong type" : "missing");
    }
    return t->id ? QEIL_OK : nomem(lc);
}

/* t->gold from t->gold_text under t->mode; the error names `field`. */
static qeil_status set_gold(const line_ctx *lc, const char *field, qeil_task *t)
{
    if (qeil_answer_normalize(lc->ctx, t->mode, t->gold_text, &t->gold) == QEIL_OK) return QEIL_OK;
    char why[512]; /* the detail lives in ctx's buffer, which the next fail overwrites */
    snprintf(why, sizeof why, "%s", qeil_ctx_errmsg(lc->ctx));
    return field_fail(lc, field, "%s", why);
}

/* The exemplar answer of a task without a worked solution. */
static qeil_status plain_solution(const line_ctx *lc, qeil_task *t)
{
    char b[2 * QEIL_ANSWER_MAX + 32];
    snprintf(b, sizeof b, "The answer is %s.\n#### %s", t->gold.text, t->gold.text);
    t->solution = dupstr(lc->ctx, b);
    return t->solution ? QEIL_OK : nomem(lc);
}

/* ---- qeil's own: {"id", "question", "answer", "kind"} ---- */

static qeil_status parse_qeil(const line_ctx *lc, const cJSON *j, qeil_task *t)
{
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "question");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "answer");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "kind");
    char num[64];
    qeil_status st = take_id(lc, j, 1, t);
    if (st != QEIL_OK) return st;
    if (!cJSON_IsString(q) || q->valuestring[0] == '\0')
        return field_fail(lc, "question", "%s (want a non-empty string)",
                          !q ? "missing" : cJSON_IsString(q) ? "empty" : "wrong type");
    t->question = dupstr(lc->ctx, q->valuestring);
    if (cJSON_IsString(a)) {
        if (is_blank(a->valuestring))
            return field_fail(lc, "answer", "empty (want a string such as \"42\" or \"B\")");
        t->gold_text = dupstr(lc->ctx, a->valuestring);
    } else if (cJSON_IsNumber(a)) {
        snprintf(num, sizeof num, "%.17g", a->valuedouble);
        t->gold_text = dupstr(lc->ctx, num);
    } else {
        return field_fail(lc, "answer", "%s (want a string such as \"42\" or \"B\")",
                          a ? "wrong type" : "missing");
    }
    t->mode = QEIL_ANSWER_NUMERIC;
    if (k) {
        if (cJSON_IsString(k) && strcmp(k->valuestring, "numeric") == 0)
            t->mode = QEIL_ANSWER_NUMERIC;
        else if (cJSON_IsString(k) && strcmp(k->valuestring, "choice") == 0)
            t->mode = QEIL_ANSWER_CHOICE;
        else
            return field_fail(lc, "kind", "not one of \"numeric\"|\"choice\"");
    }
    if (!t->question || !t->gold_text) return nomem(lc);
    if ((st = set_gold(lc, "answer", t)) != QEIL_OK) return st;
    return plain_solution(lc, t);
}

/* ---- GSM8K: {"question", "answer": "<working>\n#### 72"} ---- */

static qeil_status parse_gsm8k(const line_ctx *lc, const cJSON *j, qeil_task *t)
{
    qeil_status st = take_id(lc, j, 0, t);
    if (st != QEIL_OK) return st;
    const char *q = need_string(lc, j, "question", "question");
    if (!q) return QEIL_ERR_FORMAT;
    const char *a = need_string(lc, j, "answer", "answer");
    if (!a) return QEIL_ERR_FORMAT;
    /* the final answer follows the last "####" (GSM8K has exactly one) */
    const char *h = NULL;
    for (const char *p = strstr(a, "####"); p; p = strstr(p + 1, "####")) h = p;
    if (!h)
        return field_fail(lc, "answer", "no \"####\" before the final answer (GSM8K's answer "
                                        "is \"<working>\\n#### 72\")");
    const char *g = h + 4, *e;
    while (*g == '#') g++;
    while (*g == ' ' || *g == '\t') g++;
    e = g + strlen(g);
    while (e > g && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) e--;
    if (e == g) return field_fail(lc, "answer", "nothing after \"####\" (want the final number)");
    size_t al = strlen(a);
    while (al > 0 && (a[al - 1] == ' ' || a[al - 1] == '\n' || a[al - 1] == '\r' || a[al - 1] == '\t'))
        al--;
    t->question = dupstr(lc->ctx, q);
    t->gold_text = dupn(lc->ctx, g, (size_t)(e - g));
    t->solution = dupn(lc->ctx, a, al);
    t->mode = QEIL_ANSWER_NUMERIC;
    if (!t->question || !t->gold_text || !t->solution) return nomem(lc);
    return set_gold(lc, "answer", t);
}

/* ---- ARC-Challenge: AI2's nested form and the flattened one ---- */

/* A label "A".."H" (*digit = 0) or "1".."8" (*digit = 1) as its letter;
 * 0 when s is neither. */
static char label_letter(const char *s, int *digit)
{
    if (s[0] == '\0' || s[1] != '\0') return 0;
    if (s[0] >= 'A' && s[0] < 'A' + (int)QEIL_TASKS_MAX_CHOICES) {
        *digit = 0;
        return s[0];
    }
    if (s[0] >= '1' && s[0] < '1' + (int)QEIL_TASKS_MAX_CHOICES) {
        *digit = 1;
        return (char)('A' + (s[0] - '1'));
    }
    return 0;
}

static qeil_status parse_arc(const line_ctx *lc, const cJSON *j, qeil_task *t)
{
    const char *texts[QEIL_TASKS_MAX_CHOICES], *labels[QEIL_TASKS_MAX_CHOICES], *stem;
    char field[64], tfield[QEIL_TASKS_MAX_CHOICES][64], lfield[QEIL_TASKS_MAX_CHOICES][64];
    int n = 0;
    qeil_status st = take_id(lc, j, 1, t);
    if (st != QEIL_OK) return st;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "question");
    if (cJSON_IsObject(q)) {
        /* AI2: "question": {"stem", "choices": [{"text", "label"}, ...]} */
        if (!(stem = need_string(lc, q, "stem", "question.stem"))) return QEIL_ERR_FORMAT;
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(q, "choices"), *c;
        if (!cJSON_IsArray(ch))
            return field_fail(lc, "question.choices", "%s (want an array of {\"text\", \"label\"})",
                              ch ? "wrong type" : "missing");
        int m = cJSON_GetArraySize(ch);
        if (m < 2 || m > (int)QEIL_TASKS_MAX_CHOICES)
            return field_fail(lc, "question.choices", "%d choice%s (allowed 2..%u)", m, m == 1 ? "" : "s",
                              QEIL_TASKS_MAX_CHOICES);
        cJSON_ArrayForEach(c, ch)
        {
            snprintf(field, sizeof field, "question.choices[%d]", n);
            if (!cJSON_IsObject(c))
                return field_fail(lc, field, "wrong type (want an object {\"text\", \"label\"})");
            snprintf(tfield[n], sizeof tfield[n], "question.choices[%d].text", n);
            snprintf(lfield[n], sizeof lfield[n], "question.choices[%d].label", n);
            if (!(texts[n] = need_string(lc, c, "text", tfield[n]))) return QEIL_ERR_FORMAT;
            if (!(labels[n] = need_string(lc, c, "label", lfield[n]))) return QEIL_ERR_FORMAT;
            n++;
        }
    } else if (cJSON_IsString(q)) {
        /* flattened (Hugging Face): "question": "...", "choices": {"text": [..], "label": [..]} */
        if (!(stem = need_string(lc, j, "question", "question"))) return QEIL_ERR_FORMAT;
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "choices");
        if (!cJSON_IsObject(ch))
            return field_fail(lc, "choices", "%s (want an object {\"text\": [...], \"label\": [...]})",
                              ch ? "wrong type" : "missing");
        const cJSON *tx = cJSON_GetObjectItemCaseSensitive(ch, "text");
        const cJSON *lb = cJSON_GetObjectItemCaseSensitive(ch, "label");
        if (!cJSON_IsArray(tx))
            return field_fail(lc, "choices.text", "%s (want an array of strings)",
                              tx ? "wrong type" : "missing");
        if (!cJSON_IsArray(lb))
            return field_fail(lc, "choices.label", "%s (want an array of strings)",
                              lb ? "wrong type" : "missing");
        int m = cJSON_GetArraySize(tx);
        if (m < 2 || m > (int)QEIL_TASKS_MAX_CHOICES)
            return field_fail(lc, "choices.text", "%d choice%s (allowed 2..%u)", m, m == 1 ? "" : "s",
                              QEIL_TASKS_MAX_CHOICES);
        if (cJSON_GetArraySize(lb) != m)
            return field_fail(lc, "choices.label", "%d labels for %d texts (want one per text)",
                              cJSON_GetArraySize(lb), m);
        for (n = 0; n < m; n++) {
            const cJSON *tv = cJSON_GetArrayItem(tx, n), *lv = cJSON_GetArrayItem(lb, n);
            snprintf(tfield[n], sizeof tfield[n], "choices.text[%d]", n);
            snprintf(lfield[n], sizeof lfield[n], "choices.label[%d]", n);
            if (!cJSON_IsString(tv) || is_blank(tv->valuestring))
                return field_fail(lc, tfield[n], "%s (want a non-empty string)",
                                  cJSON_IsString(tv) ? "empty" : "wrong type");
            if (!cJSON_IsString(lv) || is_blank(lv->valuestring))
                return field_fail(lc, lfield[n], "%s (want a label A-H or 1-8)",
                                  cJSON_IsString(lv) ? "empty" : "wrong type");
            texts[n] = tv->valuestring;
            labels[n] = lv->valuestring;
        }
    } else {
        return field_fail(lc, "question",
                          "%s (want a string with \"choices\" beside it, or an object "
                          "{\"stem\", \"choices\"})",
                          q ? "wrong type" : "missing");
    }

    /* Labels: all letters A-H or all digits 1-8 (ARC uses both), distinct;
     * digits are shown and scored as letters, 1 = A, so the prompt, the
     * gold and the extracted answers share one alphabet. */
    char letters[QEIL_TASKS_MAX_CHOICES], set[QEIL_TASKS_MAX_CHOICES * 3 + 1];
    int style = -1;
    size_t sl = 0;
    for (int i = 0; i < n; i++) {
        int d = 0;
        letters[i] = label_letter(labels[i], &d);
        if (!letters[i])
            return field_fail(lc, lfield[i], "'%.16s' is not a label A-H or 1-8", labels[i]);
        if (style >= 0 && d != style)
            return field_fail(lc, lfield[i], "'%s' mixes %s with the %s before it", labels[i],
                              d ? "a digit label" : "a letter label",
                              style ? "digit labels" : "letter labels");
        style = d;
        for (int k = 0; k < i; k++)
            if (letters[k] == letters[i])
                return field_fail(lc, lfield[i], "'%s' repeats the label of choice %d", labels[i],
                                  k);
        sl += (size_t)snprintf(set + sl, sizeof set - sl, "%s%s", i ? ", " : "", labels[i]);
    }
    const cJSON *ak = cJSON_GetObjectItemCaseSensitive(j, "answerKey");
    char key[64];
    if (cJSON_IsString(ak)) {
        if (is_blank(ak->valuestring))
            return field_fail(lc, "answerKey", "empty (want one of the labels %s)", set);
        snprintf(key, sizeof key, "%s", ak->valuestring);
    } else if (cJSON_IsNumber(ak)) {
        snprintf(key, sizeof key, "%.17g", ak->valuedouble);
    } else {
        return field_fail(lc, "answerKey", "%s (want one of the labels %s)",
                          ak ? "wrong type" : "missing", set);
    }
    int kd = 0;
    char kl = label_letter(key, &kd);
    int found = 0;
    for (int i = 0; i < n && kl && kd == style; i++) found |= letters[i] == kl;
    if (!found)
        return field_fail(lc, "answerKey", "'%.16s' is not one of the labels %s", key, set);

    /* The question as the prompt shows it: "stem A) text B) text ..." (the
     * layout of the demo model's choice tasks, data/tasks/choice.jsonl). */
    size_t stl = strlen(stem), len = stl;
    while (stl > 0 && (stem[stl - 1] == ' ' || stem[stl - 1] == '\n' || stem[stl - 1] == '\r' ||
                       stem[stl - 1] == '\t'))
        stl--;
    len = stl;
    for (int i = 0; i < n; i++) len += 4 + strlen(texts[i]); /* " X) " */
    char *r = qeil_malloc(lc->ctx, len + 1);
    if (!r) return nomem(lc);
    memcpy(r, stem, stl);
    size_t at = stl;
    for (int i = 0; i < n; i++) {
        size_t tl = strlen(texts[i]);
        r[at++] = ' ';
        r[at++] = letters[i];
        r[at++] = ')';
        r[at++] = ' ';
        memcpy(r + at, texts[i], tl);
        at += tl;
    }
    r[at] = '\0';
    t->question = r;
    t->gold_text = dupstr(lc->ctx, key);
    t->mode = QEIL_ANSWER_CHOICE;
    if (!t->gold_text) return nomem(lc);
    char letter[2] = {kl, '\0'};
    if (qeil_answer_normalize(lc->ctx, QEIL_ANSWER_CHOICE, letter, &t->gold) != QEIL_OK)
        return field_fail(lc, "answerKey", "'%s' is not a letter A-H", letter); /* not reached */
    return plain_solution(lc, t);
}

/* Parse one JSONL line into *t. *fmt AUTO: detect it from this line, the
 * first, and set it. */
static qeil_status task_parse(qeil_ctx *ctx, const char *file, uint32_t line, const char *s,
                              size_t len, qeil_tasks_format *fmt, int detected, qeil_task *t)
{
    cJSON *j = cJSON_ParseWithLength(s, len);
    qeil_status st = QEIL_ERR_FORMAT;
    if (!j) {
        qeil_ctx_fail(ctx, st, "%s:%u: not valid JSON (a broken or cut line? want one JSON "
                      "object per line)", file, line);
        goto out;
    }
    if (!cJSON_IsObject(j)) {
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
    line_ctx lc = {ctx, file, line, ""};
    if (*fmt == QEIL_TASKS_AUTO) *fmt = detect(j);
    if (detected)
        snprintf(lc.note, sizeof lc.note, " [%s format, detected from line %d]",
                 qeil_tasks_format_name(*fmt), detected);
    else
        snprintf(lc.note, sizeof lc.note, " [%s format]", qeil_tasks_format_name(*fmt));
    t->line = line;
    switch (*fmt) {
    case QEIL_TASKS_GSM8K: st = parse_gsm8k(&lc, j, t); break;
    case QEIL_TASKS_ARC: st = parse_arc(&lc, j, t); break;
    default: st = parse_qeil(&lc, j, t); break;
    }
out:
    cJSON_Delete(j);
    return st;
}

qeil_status qeil_tasks_read(qeil_ctx *ctx, const char *file, uint32_t limit, qeil_tasks **out)
{
    return qeil_tasks_read_as(ctx, file, QEIL_TASKS_AUTO, limit, out);
}

qeil_status qeil_tasks_read_as(qeil_ctx *ctx, const char *file, qeil_tasks_format format,
                               uint32_t limit, qeil_tasks **out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_tasks_read_as: out is NULL");
    *out = NULL;
    if (!file) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_tasks_read_as: path is NULL");
    if (limit > QEIL_TASKS_MAX)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "limit: %u (allowed 0 = all, 1..%u)", limit,
                             QEIL_TASKS_MAX);
    if ((unsigned)format >= N_FORMATS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "format: %d (allowed 0..%u)", (int)format,
                             (unsigned)N_FORMATS - 1);
    const int detect_it = format == QEIL_TASKS_AUTO;
    FILE *f = fopen(file, "rb");
    if (!f) return qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: cannot open", file);
    char *buf = qeil_malloc(ctx, QEIL_TASKS_MAX_LINE + 2);
    qeil_tasks *ts = qeil_calloc(ctx, 1, sizeof *ts);
    uint32_t cap = 0, line = 0;
    qeil_status st = QEIL_ERR_NOMEM;
    if (ts) ts->ctx = ctx;
    int detected_at = 0; /* the line the format was detected from (0: given) */
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
        /* a UTF-8 byte-order mark (editors on Windows write one) */
        size_t b0 = line == 1 && len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
        size_t k = b0;
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
        if (detect_it && format == QEIL_TASKS_AUTO) detected_at = (int)line;
        st = task_parse(ctx, file, line, buf + b0, len - b0, &format, detected_at,
                        &ts->t[ts->n - 1]);
        if (st != QEIL_OK) goto out;
    }
    if (ferror(f)) {
        st = qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: read error", file);
        goto out;
    }
    ts->format = format;
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

/* ------------------------------------------------------------------------ */
/* Prompts, with few-shot exemplars                                          */
/* ------------------------------------------------------------------------ */

/* splitmix64's finaliser with its increment (as the runtime's sample seeds) */
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

qeil_status qeil_tasks_prompt(qeil_ctx *ctx, const qeil_task *t, uint32_t problem,
                              const qeil_tasks *shots, uint32_t n_shots, uint64_t seed,
                              char **out, uint32_t *shot_idx)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_tasks_prompt: out is NULL");
    *out = NULL;
    if (!t || !t->question)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_tasks_prompt: task is NULL");
    if (n_shots > QEIL_TASKS_MAX_SHOTS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "shots: %u (allowed 0..%u)", n_shots,
                             QEIL_TASKS_MAX_SHOTS);
    if (n_shots && !shots)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_tasks_prompt: %u shots and no shots file",
                             n_shots);
    uint32_t pick[QEIL_TASKS_MAX_SHOTS];
    if (n_shots) {
        /* the eligible exemplars: every task of the shots file whose
         * question is not this one (a train split may repeat a test
         * question; the test file itself may serve as the shots file) */
        uint32_t *el = qeil_malloc(ctx, sizeof *el * (shots->n ? shots->n : 1)), m = 0;
        if (!el) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "out of memory");
        for (uint32_t i = 0; i < shots->n; i++)
            if (strcmp(shots->t[i].question, t->question) != 0) el[m++] = i;
        if (m < n_shots) {
            qeil_free(ctx, el);
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "shots: %u exemplars wanted for the task of line %u, but only %u "
                                 "of the %u in the shots file have another question",
                                 n_shots, t->line, m, shots->n);
        }
        /* a partial Fisher-Yates shuffle from an RNG of (seed, problem)
         * only; the low word 0xFFFFFFFF is never a sample index, so this
         * stream is not one of the samples' (docs/eval.md "Seeds") */
        qeil_rng r;
        qeil_rng_seed(&r, seed ^ mix64(((uint64_t)problem << 32) | 0xFFFFFFFFu));
        for (uint32_t k = 0; k < n_shots; k++) {
            uint32_t x = k + (uint32_t)qeil_rng_below(&r, m - k), tmp = el[k];
            el[k] = el[x];
            el[x] = tmp;
            pick[k] = el[k];
        }
        qeil_free(ctx, el);
    }
    /* bounded: every string comes from one line of at most
     * QEIL_TASKS_MAX_LINE bytes, so this stays far from SIZE_MAX */
    size_t len = strlen(QEIL_TASK_PROMPT_PREFIX) + strlen(t->question) +
                 strlen(QEIL_TASK_PROMPT_SUFFIX);
    for (uint32_t k = 0; k < n_shots; k++) {
        const qeil_task *e = &shots->t[pick[k]];
        len += strlen(QEIL_TASK_PROMPT_PREFIX) + strlen(e->question) +
               strlen(QEIL_TASK_SHOT_MIDDLE) + strlen(e->solution) + strlen(QEIL_TASK_SHOT_END);
    }
    char *p = qeil_malloc(ctx, len + 1);
    if (!p) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "out of memory for a prompt of %zu bytes", len);
    size_t at = 0;
#define PUT(str)                                                                                   \
    do {                                                                                           \
        size_t n_ = strlen(str);                                                                   \
        memcpy(p + at, (str), n_);                                                                 \
        at += n_;                                                                                  \
    } while (0)
    for (uint32_t k = 0; k < n_shots; k++) {
        const qeil_task *e = &shots->t[pick[k]];
        PUT(QEIL_TASK_PROMPT_PREFIX);
        PUT(e->question);
        PUT(QEIL_TASK_SHOT_MIDDLE);
        PUT(e->solution);
        PUT(QEIL_TASK_SHOT_END);
        if (shot_idx) shot_idx[k] = pick[k];
    }
    PUT(QEIL_TASK_PROMPT_PREFIX);
    PUT(t->question);
    PUT(QEIL_TASK_PROMPT_SUFFIX);
#undef PUT
    p[at] = '\0';
    *out = p;
    return QEIL_OK;
}
