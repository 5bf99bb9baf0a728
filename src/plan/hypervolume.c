/* hypervolume.c — exact hypervolume of a 3-objective point set.
 *
 * Dimension sweep (the 3-D case of Fonseca, Paquete & López-Ibáñez, 2006,
 * written from the idea, not their code): sort the points by the third
 * objective; between consecutive distinct values z_k < z_{k+1} the dominated
 * region's cross-section is the 2-D region dominated by the points with
 * z <= z_k, a staircase whose area is a sum of rectangles. Volume =
 * Σ_k area_k · (z_{k+1} − z_k), with z after the last point = ref[2].
 * The staircase is kept sorted by the first objective, so each insertion is
 * O(n) and the whole computation O(n²) time, O(n) memory. */
#include "qeil/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double x, y, z;
} pt3;

/* Total order (z, then x, then y): qsort's result is then fully determined. */
static int cmp_z(const void *pa, const void *pb)
{
    const pt3 *a = pa, *b = pb;
    if (a->z != b->z) return a->z < b->z ? -1 : 1;
    if (a->x != b->x) return a->x < b->x ? -1 : 1;
    if (a->y != b->y) return a->y < b->y ? -1 : 1;
    return 0;
}

/* Staircase: xs ascending, ys strictly descending; m entries. Insert (x, y)
 * unless a step already weakly dominates it; drop the steps it dominates. */
static size_t stair_insert(double *xs, double *ys, size_t m, double x, double y)
{
    /* k = number of steps with xs <= x; the last of them has the lowest y
     * among them, so it alone decides whether (x, y) is dominated. */
    size_t k = 0;
    while (k < m && xs[k] <= x) k++;
    if (k > 0 && ys[k - 1] <= y) return m;
    /* Steps from k on have xs > x; the leading ones with ys >= y are now
     * dominated by (x, y). */
    size_t e = k;
    while (e < m && ys[e] >= y) e++;
    size_t removed = e - k;
    if (removed == 0) {
        memmove(xs + k + 1, xs + k, (m - k) * sizeof *xs);
        memmove(ys + k + 1, ys + k, (m - k) * sizeof *ys);
        m++;
    } else if (removed > 1) {
        memmove(xs + k + 1, xs + e, (m - e) * sizeof *xs);
        memmove(ys + k + 1, ys + e, (m - e) * sizeof *ys);
        m -= removed - 1;
    }
    xs[k] = x;
    ys[k] = y;
    return m;
}

static double stair_area(const double *xs, const double *ys, size_t m, double rx, double ry)
{
    double area = 0.0;
    for (size_t k = 0; k < m; k++) {
        double next = k + 1 < m ? xs[k + 1] : rx;
        area += (next - xs[k]) * (ry - ys[k]);
    }
    return area;
}

double qeil_hypervolume3(qeil_ctx *ctx, const double (*pts)[3], size_t n, const double ref[3])
{
    if (n == 0 || !pts || !ref) return 0.0;
    pt3 *p = qeil_calloc(ctx, n, sizeof *p);
    double *xs = qeil_calloc(ctx, n, sizeof *xs);
    double *ys = qeil_calloc(ctx, n, sizeof *ys);
    if (!p || !xs || !ys) {
        qeil_free(ctx, p);
        qeil_free(ctx, xs);
        qeil_free(ctx, ys);
        /* documented: only when memory is exhausted */
        qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "hypervolume: out of memory for %zu points", n);
        return NAN;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        /* "!(a < b)" also drops NaN coordinates */
        if (!(pts[i][0] < ref[0]) || !(pts[i][1] < ref[1]) || !(pts[i][2] < ref[2])) continue;
        if (!isfinite(pts[i][0]) || !isfinite(pts[i][1]) || !isfinite(pts[i][2])) continue;
        p[m].x = pts[i][0];
        p[m].y = pts[i][1];
        p[m].z = pts[i][2];
        m++;
    }
    qsort(p, m, sizeof *p, cmp_z);

    double vol = 0.0;
    size_t steps = 0;
    for (size_t i = 0; i < m;) {
        double z = p[i].z;
        for (; i < m && p[i].z == z; i++) steps = stair_insert(xs, ys, steps, p[i].x, p[i].y);
        double znext = i < m ? p[i].z : ref[2];
        vol += stair_area(xs, ys, steps, ref[0], ref[1]) * (znext - z);
    }
    qeil_free(ctx, p);
    qeil_free(ctx, xs);
    qeil_free(ctx, ys);
    return vol;
}
