/*
 * probe_svg.h — `qeil probe --svg FILE`: the roofline of each compute unit
 * of a platform (attainable ops/s against arithmetic intensity, log-log: one
 * roof per data type the unit computes in, and its bandwidth slope), with a
 * model's prefill and decode points on it when -m MODEL is given.
 *
 * The platform is the one just measured, or with --platform NAME|FILE an
 * existing profile, drawn without measuring anything. cmd_probe.c calls:
 *
 *     probe_svg sv;  (its options filled by cmd_probe.c's option table)
 *     ... after parsing:      rc = probe_svg_begin(CMD, argc, argv, &sv, &done);
 *                             if (rc != CLI_OK || done) return rc;
 *     ... after measuring:    probe_svg_write(CMD, &sv, &pf);
 *
 * Method and layout: docs/probe.md, "Roofline picture".
 */
#ifndef QEIL_CLI_PROBE_SVG_H
#define QEIL_CLI_PROBE_SVG_H

#include <stdint.h>
#include <stdio.h>

#include "qeil/device.h"

typedef struct {
    /* options */
    const char *svg;      /* --svg FILE */
    const char *platform; /* --platform NAME|FILE: draw it, measure nothing */
    const char *model;    /* -m, --model NAME|FILE */
    uint32_t prompt_tokens, gen_tokens;
    int p_given, n_given;
    /* filled by probe_svg_begin */
    char target[4096];          /* the file written (a link resolved) */
    int have_model;
    char model_name[QEIL_NAME_MAX];
    uint32_t P, N;              /* the workload drawn */
    double mean_ctx;            /* decode's mean context c̄ */
    qeil_dtype dtype;           /* the type the model computes in (its largest unit's) */
    double pf_flops, pf_bytes;  /* the whole prefill of P tokens */
    double dc_flops, dc_bytes;  /* one decode step of one sequence at c̄ */
} probe_svg;

/* After the option loop: checks the combination (the model options need
 * --svg; --platform refuses every option of the measurement), the SVG's
 * path, loads the model and builds its workload, all before any
 * measuring. With --platform it then draws the profile, prints a roofline
 * table and sets *done. Returns CLI_OK, CLI_USAGE or CLI_FAIL (printed). */
int probe_svg_begin(const char *cmd, int argc, char **argv, probe_svg *s, int *done);

/* Draw pf to s->svg (nothing when --svg was not given): CLI_OK, or
 * CLI_FAIL after printing why. Says where it wrote on stderr. */
int probe_svg_write(const char *cmd, const probe_svg *s, const qeil_platform *pf);

#endif
