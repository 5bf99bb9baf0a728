/*
 * svg.h — a small SVG writer for the CLI's pictures (`qeil plan --svg`):
 * plain SVG 1.1 text, no plotting dependency. Coordinates in px; text is
 * XML-escaped; numbers printed with %g-style significant digits.
 */
#ifndef QEIL_CLI_SVG_H
#define QEIL_CLI_SVG_H

#include <stdio.h>

#include "qeil/qeil.h"

/* A linear or log axis mapping data [lo, hi] to pixels [p0, p1]. */
typedef struct {
    double lo, hi;
    double p0, p1;
    int log;      /* 1: log10 scale (lo > 0) */
    int no_ticks; /* 1: draw no ticks or labels on this axis (bar categories) */
} svg_axis;

/* An axis over the data range [lo, hi] (any order, may be equal): padded by
 * 5 %, log when hi/lo > 30 and both are positive. */
svg_axis svg_axis_fit(double lo, double hi, double p0, double p1);
double svg_map(const svg_axis *a, double v);

void svg_begin(FILE *f, int width, int height, const char *title);
void svg_end(FILE *f);
/* Text at (x, y); anchor "start", "middle" or "end"; printf-style. */
void svg_text(FILE *f, double x, double y, const char *anchor, int size, const char *fmt, ...)
    QEIL_PRINTF(6, 7);
/* Axes with ticks and labels for a plot box [x0, x1] × [y1, y0] (y grows
 * down in SVG: y0 is the bottom). */
void svg_axes(FILE *f, const svg_axis *ax, const svg_axis *ay, const char *xlabel,
              const char *ylabel);
/* A colour for t in [0, 1] on a perceptually ordered ramp (viridis stops):
 * writes "#rrggbb" into out[8]. */
void svg_ramp(double t, char out[8]);
/* A distinct categorical colour for index i ("#rrggbb"). */
const char *svg_category(int i);

#endif
