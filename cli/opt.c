/* opt.c — the one option parser and help printer of the subcommands
 * (cli/opt.h). */
#include "opt.h"

#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The column the help text starts in, and the widest left part that still
 * shares its line with the text (a longer one puts the text below). */
#define HELP_MAX_COL 26

static void *at(void *o, size_t off) { return (char *)o + off; }

static void store_uint(void *dst, size_t size, uint64_t v)
{
    switch (size) {
    case 1: { uint8_t x = (uint8_t)v; memcpy(dst, &x, 1); break; }
    case 2: { uint16_t x = (uint16_t)v; memcpy(dst, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(dst, &x, 4); break; }
    case 8: memcpy(dst, &v, 8); break;
    default: abort(); /* a table entry with a destination of another size */
    }
}

static void store_int(void *dst, int v) { memcpy(dst, &v, sizeof v); }

/* Index of val among the '|'-separated names, -1 if none. */
static int choice_index(const char *names, const char *val)
{
    size_t n = strlen(val);
    int k = 0;
    for (const char *p = names;; k++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, val, n) == 0) return k;
        if (!bar) return -1;
        p = bar + 1;
    }
}

/* The destination's size for each kind (0: any; U64/ENUM: 1, 2, 4 or 8,
 * store_uint checks): a table row pointing a double at a float field is a
 * bug in the table, not in the input. */
static void check_row(const cli_optdef *d)
{
    size_t want = d->kind == CLI_OPT_FLAG     ? sizeof(int)
                  : d->kind == CLI_OPT_STR    ? sizeof(const char *)
                  : d->kind == CLI_OPT_F64    ? sizeof(double)
                  : d->kind == CLI_OPT_F32    ? sizeof(float)
                  : d->kind == CLI_OPT_OUTPUT ? sizeof(cli_output)
                                              : 0;
    if (want && d->size != want) abort();
    if (d->kind == CLI_OPT_LIST && d->size != d->umax * sizeof(const char *)) abort();
}

/* Read the value of option d (typed as `opt`) into o. */
static int take(const char *cmd, const cli_optdef *d, const char *opt, const char *val, void *o)
{
    check_row(d);
    void *dst = at(o, d->off);
    uint64_t u;
    double x;
    switch (d->kind) {
    case CLI_OPT_FLAG:
        store_int(dst, 1);
        return 0;
    case CLI_OPT_STR:
        if ((d->flags & CLI_OPT_NONEMPTY) && !val[0])
            return cli_usage_error(cmd, "%s: empty value (give a %s)", opt, d->metavar);
        memcpy(dst, &val, sizeof val);
        return 0;
    case CLI_OPT_U64:
        if (cli_u64(cmd, opt, val, d->umin, d->umax, &u)) return CLI_USAGE;
        store_uint(dst, d->size, u);
        return 0;
    case CLI_OPT_F64:
        if (cli_f64(cmd, opt, val, d->fmin, d->fmax, &x)) return CLI_USAGE;
        if (((d->flags & CLI_OPT_LO_OPEN) && x == d->fmin) ||
            ((d->flags & CLI_OPT_HI_OPEN) && x == d->fmax))
            return cli_usage_error(cmd, "%s: %s is out of range (allowed %s)", opt, val,
                                   d->choices);
        memcpy(dst, &x, sizeof x);
        return 0;
    case CLI_OPT_F32: {
        float f;
        if (cli_f32_range(cmd, opt, val, d->fmin, d->fmax, !!(d->flags & CLI_OPT_LO_OPEN),
                          !!(d->flags & CLI_OPT_HI_OPEN), d->choices, &f))
            return CLI_USAGE;
        memcpy(dst, &f, sizeof f);
        return 0;
    }
    case CLI_OPT_ENUM: {
        int k = choice_index(d->choices, val);
        if (k < 0) return cli_usage_error(cmd, "%s: '%s' is not one of %s", opt, val, d->choices);
        store_uint(dst, d->size, (uint64_t)k);
        return 0;
    }
    case CLI_OPT_OUTPUT: {
        cli_output out;
        if (cli_parse_output(cmd, val, d->choices, &out)) return CLI_USAGE;
        memcpy(dst, &out, sizeof out);
        return 0;
    }
    case CLI_OPT_LIST: {
        int n;
        memcpy(&n, at(o, d->aux), sizeof n);
        if ((uint64_t)n >= d->umax)
            return cli_usage_error(cmd, "%s: at most %llu %s", opt, (unsigned long long)d->umax,
                                   d->choices);
        memcpy((char *)dst + (size_t)n * sizeof val, &val, sizeof val);
        store_int(at(o, d->aux), n + 1);
        return 0;
    }
    case CLI_OPT_FN:
        return d->fn(cmd, opt, val, o);
    }
    abort();
}

static int takes_value(const cli_optdef *d)
{
    return d->kind != CLI_OPT_FLAG && !(d->kind == CLI_OPT_FN && (d->flags & CLI_OPT_NOVALUE));
}

int cli_opt_parse(const cli_command *c, int argc, char **argv, void *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_opt_help(c, stdout);
            return CLI_OPT_HELP;
        }
        const cli_optdef *d = NULL;
        const char *val = NULL, *eq = NULL;
        for (size_t k = 0; k < c->n_opts && !d; k++) {
            const cli_optdef *e = &c->opts[k];
            size_t n = strlen(e->name);
            if (strcmp(a, e->name) == 0 || (e->alias && strcmp(a, e->alias) == 0))
                d = e;
            else if (takes_value(e) && strncmp(a, e->name, n) == 0 && a[n] == '=')
                d = e, eq = a + n + 1;
        }
        if (!d) {
            if (a[0] == '-' && a[1] != '\0') return cli_usage_error(c->name, "unknown option '%s'", a);
            if (!c->positional) return cli_usage_error(c->name, "unexpected argument '%s'", a);
            if (c->positional(c->name, a, o)) return CLI_USAGE;
            continue;
        }
        /* the option for messages: as typed, and an alias with its long
         * name ("-n (--n-predict)"), so that either spelling finds it */
        char opt[96];
        if (!eq && d->alias && strcmp(a, d->alias) == 0)
            snprintf(opt, sizeof opt, "%s (%s)", d->alias, d->name);
        else
            snprintf(opt, sizeof opt, "%s", d->name);
        if (takes_value(d)) {
            if (eq) val = eq;
            else if (i + 1 < argc) val = argv[++i];
            else return cli_usage_error(c->name, "option %s needs a value", a);
        }
        if (take(c->name, d, opt, val, o)) return CLI_USAGE;
        if (d->given) store_int(at(o, d->given - 1), 1);
    }
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* Help                                                                      */
/* ------------------------------------------------------------------------ */

/* "-m, --model FILE" into buf; its length. */
static size_t left_part(const cli_optdef *d, char *buf, size_t n)
{
    int k = snprintf(buf, n, "%s%s%s%s%s", d->alias ? d->alias : "", d->alias ? ", " : "",
                     d->name, d->metavar && takes_value(d) ? " " : "",
                     d->metavar && takes_value(d) ? d->metavar : "");
    return k < 0 ? 0 : (size_t)k < n ? (size_t)k : n - 1;
}

static void help_row(FILE *f, const char *left, size_t len, int col, const char *text)
{
    fprintf(f, "  %s", left);
    if (len + 2 > (size_t)col) fprintf(f, "\n%*s", col + 2, "");
    else fprintf(f, "%*s", col - (int)len, "");
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(f, "%.*s\n", (int)l, p);
        if (!nl) break;
        p = nl + 1;
        if (*p) fprintf(f, "%*s", col + 2, "");
    }
}

void cli_opt_help(const cli_command *c, FILE *f)
{
    char buf[128];
    size_t w = strlen("-h, --help");
    for (size_t k = 0; k < c->n_opts; k++) {
        size_t len = left_part(&c->opts[k], buf, sizeof buf);
        if (len + 2 <= HELP_MAX_COL && len > w) w = len;
    }
    int col = (int)w + 2;
    fputs(c->intro, f);
    fputs("\noptions:\n", f);
    for (size_t k = 0; k < c->n_opts; k++) {
        size_t len = left_part(&c->opts[k], buf, sizeof buf);
        help_row(f, buf, len, col, c->opts[k].help);
    }
    help_row(f, "-h, --help", strlen("-h, --help"), col, "this help");
    if (c->epilog) {
        fputc('\n', f);
        fputs(c->epilog, f);
    }
}
