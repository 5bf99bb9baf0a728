/* util.c — option parsing and error printing shared by the subcommands. */
#include "cli.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "qeil %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'qeil %s --help'.\n", cmd);
    return CLI_USAGE;
}

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "qeil %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAIL;
}

int cli_flag(char **argv, int i, const char *name, const char *alias)
{
    return strcmp(argv[i], name) == 0 || (alias && strcmp(argv[i], alias) == 0);
}

int cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name,
            const char *alias, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (!cli_flag(argv, *i, name, alias)) return 0;
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "option %s needs a value", a);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

int cli_parse_output(const char *cmd, const char *val, const char *allowed, cli_output *out)
{
    static const char *names[] = {"table", "json", "csv"};
    if (!allowed) allowed = "table|json|csv";
    for (int k = 0; k < 3; k++) {
        if (strcmp(val, names[k]) != 0) continue;
        /* accept only names listed in `allowed` */
        const char *p = strstr(allowed, names[k]);
        if (!p) break;
        *out = (cli_output)k;
        return 0;
    }
    return cli_usage_error(cmd, "--output: '%s' is not one of %s", val, allowed);
}

int cli_u64(const char *cmd, const char *opt, const char *val, uint64_t min, uint64_t max,
            uint64_t *out)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    if (!ctx) return cli_fail(cmd, "out of memory");
    qeil_status st = qeil_parse_u64(ctx, opt, val, min, max, out);
    int rc = st == QEIL_OK ? 0 : cli_usage_error(cmd, "%s", qeil_ctx_errmsg(ctx));
    qeil_ctx_free(ctx);
    return rc;
}

int cli_f64(const char *cmd, const char *opt, const char *val, double min, double max,
            double *out)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    if (!ctx) return cli_fail(cmd, "out of memory");
    qeil_status st = qeil_parse_f64(ctx, opt, val, min, max, out);
    int rc = st == QEIL_OK ? 0 : cli_usage_error(cmd, "%s", qeil_ctx_errmsg(ctx));
    qeil_ctx_free(ctx);
    return rc;
}

int cli_f32_range(const char *cmd, const char *opt, const char *val, double lo, double hi,
                  int lo_open, int hi_open, const char *range, float *out)
{
    double x;
    if (cli_f64(cmd, opt, val, lo, hi, &x)) return CLI_USAGE;
    if ((lo_open && x == lo) || (hi_open && x == hi))
        return cli_usage_error(cmd, "%s: %s is out of range (allowed %s)", opt, val, range);
    /* a nonzero value below FLT_MIN would become a float subnormal or 0
     * (--top-p 1e-300 turned into an invalid 0 the sampler then named) */
    if (x != 0 && fabs(x) < FLT_MIN)
        return cli_usage_error(cmd,
                               "%s: %s is too small to represent (a nonzero value must be at "
                               "least %g; allowed %s)",
                               opt, val, FLT_MIN, range);
    *out = (float)x;
    return 0;
}

void cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}
