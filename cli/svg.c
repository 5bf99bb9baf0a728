/* svg.c — the CLI's SVG writer (svg.h). */
#include "svg.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            /* control bytes are not allowed in XML 1.0 text */
            if ((unsigned char)*s < 0x20 && *s != '\t') fputc('?', f);
            else fputc(*s, f);
        }
    }
}

svg_axis svg_axis_fit(double lo, double hi, double p0, double p1)
{
    svg_axis a;
    if (!(lo <= hi)) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    a.log = lo > 0 && hi / lo > 30.0;
    if (a.log) {
        a.lo = lo / 1.3;
        a.hi = hi * 1.3;
    } else {
        double span = hi - lo;
        if (span <= 0) span = fabs(hi) > 0 ? fabs(hi) * 0.2 : 1.0;
        a.lo = lo - 0.05 * span;
        a.hi = hi + 0.05 * span;
        if (lo >= 0 && a.lo < 0) a.lo = 0;
    }
    a.p0 = p0;
    a.p1 = p1;
    a.no_ticks = 0;
    return a;
}

double svg_map(const svg_axis *a, double v)
{
    double t;
    if (a->log) t = (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    else t = (v - a->lo) / (a->hi - a->lo);
    if (!isfinite(t)) t = 0;
    return a->p0 + t * (a->p1 - a->p0);
}

void svg_begin(FILE *f, int width, int height, const char *title)
{
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n"
            "<title>",
            width, height, width, height);
    put_escaped(f, title);
    fprintf(f, "</title>\n<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", width, height);
}

void svg_end(FILE *f) { fputs("</svg>\n", f); }

void svg_text(FILE *f, double x, double y, const char *anchor, int size, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\" fill=\"#222\">", x, y,
            anchor, size);
    put_escaped(f, buf);
    fputs("</text>\n", f);
}

/* Tick values: 1-2-5 steps on a linear axis, powers of ten (and 2, 5
 * between when few) on a log axis. */
static int ticks(const svg_axis *a, double *t, int max)
{
    int n = 0;
    if (a->log) {
        int e0 = (int)floor(log10(a->lo)), e1 = (int)ceil(log10(a->hi));
        int few = e1 - e0 <= 2;
        for (int e = e0; e <= e1 && n < max; e++)
            for (int m = 1; m <= 5 && n < max; m += (few ? (m == 1 ? 1 : 3) : 10)) {
                double v = m * pow(10.0, e);
                if (v >= a->lo && v <= a->hi) t[n++] = v;
            }
        return n;
    }
    double span = a->hi - a->lo, raw = span / 5.0;
    double mag = pow(10.0, floor(log10(raw))), step = mag;
    if (raw / mag > 5) step = 10 * mag;
    else if (raw / mag > 2) step = 5 * mag;
    else if (raw / mag > 1) step = 2 * mag;
    for (double v = ceil(a->lo / step) * step; v <= a->hi + 1e-9 * span && n < max; v += step)
        t[n++] = fabs(v) < 1e-12 * span ? 0.0 : v;
    return n;
}

void svg_axes(FILE *f, const svg_axis *ax, const svg_axis *ay, const char *xlabel, const char *ylabel)
{
    double x0 = ax->p0, x1 = ax->p1, y0 = ay->p0, y1 = ay->p1;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
               "stroke=\"#888\"/>\n",
            x0, y1, x1 - x0, y0 - y1);
    double t[32];
    int n = ax->no_ticks ? 0 : ticks(ax, t, 32);
    for (int i = 0; i < n; i++) {
        double x = svg_map(ax, t[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", x, y1, x, y0);
        svg_text(f, x, y0 + 14, "middle", 10, "%g", t[i]);
    }
    n = ay->no_ticks ? 0 : ticks(ay, t, 32);
    for (int i = 0; i < n; i++) {
        double y = svg_map(ay, t[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", x0, y, x1, y);
        svg_text(f, x0 - 4, y + 3, "end", 10, "%g", t[i]);
    }
    svg_text(f, (x0 + x1) / 2, y0 + 30, "middle", 12, "%s%s", xlabel, ax->log ? " (log)" : "");
    fprintf(f, "<g transform=\"translate(%.1f %.1f) rotate(-90)\">", x0 - 44, (y0 + y1) / 2);
    svg_text(f, 0, 0, "middle", 12, "%s%s", ylabel, ay->log ? " (log)" : "");
    fputs("</g>\n", f);
}

void svg_ramp(double t, char out[8])
{
    /* viridis at 0, 0.25, 0.5, 0.75, 1 (matplotlib's table) */
    static const unsigned char stop[5][3] = {
        {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    double x = t * 4;
    int i = (int)x;
    if (i > 3) i = 3;
    double w = x - i;
    unsigned char c[3];
    for (int k = 0; k < 3; k++) c[k] = (unsigned char)lround(stop[i][k] * (1 - w) + stop[i + 1][k] * w);
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

const char *svg_category(int i)
{
    /* Okabe–Ito colour-blind-safe palette */
    static const char *const c[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                    "#56B4E9", "#D55E00", "#F0E442", "#000000"};
    return c[(unsigned)i % (sizeof c / sizeof c[0])];
}
