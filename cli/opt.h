/*
 * opt.h — one option table per command, one parser and one help printer for
 * them all (docs/cli.md, "For contributors").
 *
 * A command keeps its options in a struct and describes each option once:
 *
 *     typedef struct { const char *model; uint32_t n; int json, seed_given; } gen_opts;
 *     static const cli_optdef gen_table[] = {
 *         {CLI_STR("--model", "-m", "FILE", "GGUF model (required)", gen_opts, model)},
 *         {CLI_U64("--n-predict", "-n", "N", "tokens to generate (default 64)", gen_opts, n,
 *                  1, 65536)},
 *         {CLI_ENUM("--output", NULL, "FMT", "text|json (default text)", gen_opts, json,
 *                   "text|json")},
 *     };
 *     static const cli_command gen_cmd = {
 *         "generate", "usage: qeil generate -m FILE [options]\n\nGenerate text.\n",
 *         gen_table, CLI_NOPTS(gen_table), "examples:\n  qeil generate -m m.gguf\n", NULL};
 *
 *     gen_opts o = {.n = 64};
 *     int rc = cli_opt_parse(&gen_cmd, argc, argv, &o);
 *     if (rc == CLI_OPT_HELP) return CLI_OK;   // --help printed to stdout
 *     if (rc != CLI_OK) return rc;             // usage error printed, CLI_USAGE
 *     // cross-option checks here
 *
 * The parser takes `--name VALUE`, `--name=VALUE` and `-a VALUE` (the
 * alias); a flag takes no value. An option given twice keeps the last value,
 * except a CLI_LIST one, which collects each. Every value is checked as it is
 * read, and a bad one is a usage error naming the option (an alias with
 * its long name), the value and what is allowed ("-n (--n-predict): 0 is
 * out of range (allowed 1..65536)"); an argument starting with '-' that is no option is "unknown
 * option 'X'"; any other argument goes to the command's positional callback
 * or is "unexpected argument 'X'". `--help`/`-h` prints the help generated
 * from the table: the command's intro, "options:" with one entry per row
 * (and -h, --help), then its epilog.
 */
#ifndef QEIL_CLI_OPT_H
#define QEIL_CLI_OPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    CLI_OPT_FLAG,   /* no value: the int destination becomes 1 */
    CLI_OPT_STR,    /* const char *, borrowed from argv */
    CLI_OPT_U64,    /* an unsigned integer in [umin, umax], stored in 1, 2, 4 or 8 bytes */
    CLI_OPT_F64,    /* a double in [fmin, fmax]; CLI_OPT_LO_OPEN / HI_OPEN exclude an end */
    CLI_OPT_F32,    /* a float, likewise, and no nonzero value below FLT_MIN */
    CLI_OPT_ENUM,   /* one of "a|b|c" (choices): its index, stored like a U64 */
    CLI_OPT_OUTPUT, /* cli_output, one of choices (a subset of table|json|csv) */
    CLI_OPT_LIST,   /* repeatable: const char *dest[umax], the count in the int at aux */
    CLI_OPT_FN      /* the callback parses and stores the value (flag: val is NULL) */
} cli_opt_kind;

enum {
    CLI_OPT_LO_OPEN = 1u << 0,  /* F64/F32: the lower end is excluded */
    CLI_OPT_HI_OPEN = 1u << 1,  /* F64/F32: the upper end is excluded */
    CLI_OPT_NONEMPTY = 1u << 2, /* STR: an empty value is an error */
    CLI_OPT_NOVALUE = 1u << 3,  /* FN: a flag (the callback gets val NULL) */
};

/* A callback for the odd option: parse `val` (typed as option `opt`) into
 * the command's options struct `o`; print the usage error itself
 * (cli_usage_error) and return CLI_USAGE, or return 0. */
typedef int (*cli_opt_fn)(const char *cmd, const char *opt, const char *val, void *o);

typedef struct {
    const char *name;    /* "--model" */
    const char *alias;   /* "-m", or NULL */
    const char *metavar; /* "FILE" in the help; NULL for a flag */
    const char *help;    /* the help text; '\n' starts a new line in the column */
    cli_opt_kind kind;
    unsigned flags;      /* CLI_OPT_* above */
    size_t off, size;    /* the destination in the options struct */
    size_t given;        /* offset + 1 of an int set to 1 when the option is given; 0: none */
    size_t aux;          /* LIST: offset of the int count */
    uint64_t umin, umax; /* U64 range; LIST: the most values */
    double fmin, fmax;   /* F64/F32 range */
    const char *choices; /* ENUM/OUTPUT: "a|b|c"; F64/F32 with an open end: the range as
                          * printed ("(0, 1]"); LIST: what one value is, for "at most N units" */
    cli_opt_fn fn;       /* FN */
} cli_optdef;

/* Entries (T: the options struct, m: its member), each inside braces, so
 * that a field the macro leaves alone can follow:
 *     {CLI_U64("--seed", NULL, "S", "seed", T, seed, 0, UINT64_MAX),
 *      .given = CLI_GIVEN(T, seed_given)} */
#define CLI_AT_(T, m) .off = offsetof(T, m), .size = sizeof(((T *)0)->m)
#define CLI_GIVEN(T, m) (offsetof(T, m) + 1)
#define CLI_FLAG(nm, al, hp, T, m) .name = nm, .alias = al, .help = hp, .kind = CLI_OPT_FLAG, CLI_AT_(T, m)
#define CLI_STR(nm, al, mv, hp, T, m)                                                            \
    .name = nm, .alias = al, .metavar = mv, .help = hp, .kind = CLI_OPT_STR, CLI_AT_(T, m)
#define CLI_U64(nm, al, mv, hp, T, m, lo, hi)                                                    \
    .name = nm, .alias = al, .metavar = mv, .help = hp, .kind = CLI_OPT_U64, CLI_AT_(T, m),   \
     .umin = (lo), .umax = (hi)
#define CLI_F64(nm, al, mv, hp, T, m, lo, hi)                                                    \
    .name = nm, .alias = al, .metavar = mv, .help = hp, .kind = CLI_OPT_F64, CLI_AT_(T, m),   \
     .fmin = (lo), .fmax = (hi)
/* an open end: fl is CLI_OPT_LO_OPEN and/or CLI_OPT_HI_OPEN, range "(0, 1]" */
#define CLI_F64_OPEN(nm, al, mv, hp, T, m, lo, hi, fl, range)                                    \
    .name = nm, .alias = al, .metavar = mv, .help = hp, .kind = CLI_OPT_F64, CLI_AT_(T, m),   \
     .fmin = (lo), .fmax = (hi), .flags = (fl), .choices = range
#define CLI_F32(nm, al, mv, hp, T, m, lo, hi, fl, range)                                         \
    .name = nm, .alias = al, .metavar = mv, .help = hp, .kind = CLI_OPT_F32, CLI_AT_(T, m),   \
     .fmin = (lo), .fmax = (hi), .flags = (fl), .choices = range
#define CLI_ENUM(nm, al, mv, hp, T, m, names)                                                    \
    .name = nm, .alias = al, .metavar = mv, .help = hp, .kind = CLI_OPT_ENUM, CLI_AT_(T, m),  \
     .choices = names
#define CLI_OUTPUT(hp, T, m, allowed)                                                            \
    .name = "--output", .metavar = "FMT", .help = hp, .kind = CLI_OPT_OUTPUT, CLI_AT_(T, m),   \
     .choices = allowed
#define CLI_LIST(nm, al, mv, hp, T, arr, count, what)                                            \
    .name = nm, .alias = al, .metavar = mv, .help = hp, .kind = CLI_OPT_LIST, CLI_AT_(T, arr), \
     .aux = offsetof(T, count), .umax = sizeof(((T *)0)->arr) / sizeof(((T *)0)->arr[0]),       \
     .choices = what
#define CLI_FN(nm, al, mv, hp, f) .name = nm, .alias = al, .metavar = mv, .help = hp, .kind = CLI_OPT_FN, .fn = f
#define CLI_NOPTS(table) (sizeof(table) / sizeof((table)[0]))

typedef struct {
    const char *name;              /* "plan": for messages */
    const char *intro;             /* the help before "options:" (usage line, what it does) */
    const cli_optdef *opts;
    size_t n_opts;
    const char *epilog;            /* the help after the options (examples); may be NULL */
    /* an argument that is not an option (NULL: "unexpected argument"):
     * store it in o, or print a usage error and return CLI_USAGE */
    int (*positional)(const char *cmd, const char *arg, void *o);
} cli_command;

/* cli_opt_parse's answer besides CLI_OK and CLI_USAGE: --help was printed. */
enum { CLI_OPT_HELP = -1 };

/* Parse argv[1..argc) (argv[0] is the command name) into the options
 * struct o; CLI_OK, CLI_USAGE (the error printed) or CLI_OPT_HELP. */
int cli_opt_parse(const cli_command *c, int argc, char **argv, void *o);

/* The help of command c (its intro, the option table, its epilog) to f. */
void cli_opt_help(const cli_command *c, FILE *f);

#endif /* QEIL_CLI_OPT_H */
