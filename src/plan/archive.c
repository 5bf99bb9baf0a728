/* archive.c — the bounded Pareto archive with crowding-distance truncation.
 *
 * Members are kept in insertion order except that a removal moves the last
 * member into the freed slot (O(1) instead of shifting ~140 KB). Both rules
 * are deterministic, so the same insertions always give the same archive. */
#include "plan/archive.h"

#include <math.h>
#include <string.h>

qeil_status qeil_archive_init(qeil_ctx *ctx, qeil_archive *ar, size_t cap)
{
    memset(ar, 0, sizeof *ar);
    ar->ctx = ctx;
    ar->cap = cap;
    ar->slots = cap ? cap + 1 : 64; /* +1: a newcomer sits there until truncation */
    ar->m = qeil_calloc(ctx, ar->slots, sizeof *ar->m);
    ar->crowd = qeil_calloc(ctx, ar->slots, sizeof *ar->crowd);
    ar->key = qeil_calloc(ctx, ar->slots, sizeof *ar->key);
    ar->order = qeil_calloc(ctx, ar->slots, sizeof *ar->order);
    ar->tmp = qeil_calloc(ctx, ar->slots, sizeof *ar->tmp);
    if (!ar->m || !ar->crowd || !ar->key || !ar->order || !ar->tmp) {
        qeil_archive_free(ar);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "plan archive: out of memory (%zu slots)",
                             cap ? cap + 1 : (size_t)64);
    }
    return QEIL_OK;
}

void qeil_archive_free(qeil_archive *ar)
{
    if (!ar) return;
    qeil_free(ar->ctx, ar->m);
    qeil_free(ar->ctx, ar->crowd);
    qeil_free(ar->ctx, ar->key);
    qeil_free(ar->ctx, ar->order);
    qeil_free(ar->ctx, ar->tmp);
    ar->m = NULL;
    ar->crowd = ar->key = NULL;
    ar->order = ar->tmp = NULL;
    ar->n = ar->slots = 0;
}

int qeil_dominates(const double a[QEIL_NOBJ], const double b[QEIL_NOBJ])
{
    int strict = 0;
    for (int j = 0; j < QEIL_NOBJ; j++) {
        if (a[j] > b[j]) return 0;
        if (a[j] < b[j]) strict = 1;
    }
    return strict;
}

static int weakly_dominates(const double a[QEIL_NOBJ], const double b[QEIL_NOBJ])
{
    for (int j = 0; j < QEIL_NOBJ; j++)
        if (a[j] > b[j]) return 0;
    return 1;
}

static void remove_at(qeil_archive *ar, size_t i)
{
    ar->n--;
    if (i != ar->n) ar->m[i] = ar->m[ar->n];
}

/* Unbounded archives double their storage; never called for bounded ones. */
static int grow(qeil_archive *ar)
{
    if (ar->slots > SIZE_MAX / 2 / sizeof *ar->m) return -1;
    size_t ns = ar->slots * 2;
    qeil_archive_entry *m = qeil_realloc(ar->ctx, ar->m, ns * sizeof *m);
    if (!m) return -1;
    ar->m = m;
    double *c = qeil_realloc(ar->ctx, ar->crowd, ns * sizeof *c);
    if (!c) return -1;
    ar->crowd = c;
    double *k = qeil_realloc(ar->ctx, ar->key, ns * sizeof *k);
    if (!k) return -1;
    ar->key = k;
    size_t *o = qeil_realloc(ar->ctx, ar->order, ns * sizeof *o);
    if (!o) return -1;
    ar->order = o;
    size_t *t = qeil_realloc(ar->ctx, ar->tmp, ns * sizeof *t);
    if (!t) return -1;
    ar->tmp = t;
    ar->slots = ns;
    return 0;
}

int qeil_archive_insert(qeil_archive *ar, const double f[QEIL_NOBJ], const qeil_assignment *a)
{
    for (int j = 0; j < QEIL_NOBJ; j++)
        if (!isfinite(f[j])) return 0;
    for (size_t i = 0; i < ar->n; i++)
        if (weakly_dominates(ar->m[i].f, f)) return 0; /* dominated or duplicate */
    /* The newcomer is not weakly dominated by any member, so f <= member
     * implies f != member: it strictly dominates those. */
    for (size_t i = 0; i < ar->n;) {
        if (weakly_dominates(f, ar->m[i].f)) remove_at(ar, i);
        else i++;
    }
    if (ar->n == ar->slots && grow(ar) != 0) return -1;
    qeil_archive_entry *e = &ar->m[ar->n++];
    memcpy(e->f, f, sizeof e->f);
    e->a = *a;
    if (ar->cap == 0 || ar->n <= ar->cap) return 1;

    /* Full: drop the most crowded member (smallest crowding distance; the
     * first in member order on ties). Boundary members have infinite
     * distance, so the extremes of every objective survive. */
    qeil_archive_crowding(ar);
    size_t worst = 0;
    for (size_t i = 1; i < ar->n; i++)
        if (ar->crowd[i] < ar->crowd[worst]) worst = i;
    size_t newcomer = ar->n - 1;
    remove_at(ar, worst);
    return worst == newcomer ? 0 : 1;
}

/* ---- sorting (no qsort: it has no context argument and is not stable) ---- */

static void merge_pass(size_t *dst, const size_t *src, size_t lo, size_t mid, size_t hi,
                       const double *key)
{
    size_t i = lo, j = mid, k = lo;
    while (i < mid && j < hi) {
        /* "<=" keeps equal keys in their original order (stability) */
        if (key[src[i]] <= key[src[j]]) dst[k++] = src[i++];
        else dst[k++] = src[j++];
    }
    while (i < mid) dst[k++] = src[i++];
    while (j < hi) dst[k++] = src[j++];
}

void qeil_sort_idx(size_t *idx, size_t *tmp, size_t n, const double *key)
{
    /* bottom-up merge sort, ping-ponging between idx and tmp */
    size_t *a = idx, *b = tmp;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n;
            size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
            merge_pass(b, a, lo, mid, hi, key);
        }
        size_t *t = a;
        a = b;
        b = t;
    }
    if (a != idx) memcpy(idx, a, n * sizeof *idx);
}

void qeil_archive_crowding(qeil_archive *ar)
{
    size_t n = ar->n;
    for (size_t i = 0; i < n; i++) ar->crowd[i] = 0.0;
    if (n == 0) return;
    for (int j = 0; j < QEIL_NOBJ; j++) {
        for (size_t i = 0; i < n; i++) {
            ar->order[i] = i;
            ar->key[i] = ar->m[i].f[j];
        }
        qeil_sort_idx(ar->order, ar->tmp, n, ar->key);
        double lo = ar->m[ar->order[0]].f[j], hi = ar->m[ar->order[n - 1]].f[j];
        double range = hi - lo;
        if (!(range > 0.0)) continue; /* all equal here: no information */
        ar->crowd[ar->order[0]] = INFINITY;
        ar->crowd[ar->order[n - 1]] = INFINITY;
        for (size_t k = 1; k + 1 < n; k++) {
            size_t i = ar->order[k];
            if (isinf(ar->crowd[i])) continue;
            ar->crowd[i] += (ar->m[ar->order[k + 1]].f[j] - ar->m[ar->order[k - 1]].f[j]) / range;
        }
    }
}
