/*
 * cli.h — shared pieces of the qeil command-line tool: subcommand entry
 * points, output formats, and strict option parsing helpers.
 *
 * Conventions (docs/cli.md): `--help` prints to stdout and exits 0; usage
 * errors exit 2; runtime failures exit 1; results go to stdout; diagnostics
 * and progress to stderr.
 */
#ifndef QEIL_CLI_H
#define QEIL_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "qeil/qeil.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef enum { CLI_OUT_TABLE = 0, CLI_OUT_JSON, CLI_OUT_CSV } cli_output;

/* The context a command runs with; its buffers come from its allocator
 * (cli/alloc.c: QEIL_TEST_ALLOC_FAIL=K fails allocations after K, for
 * out-of-memory tests). NULL when out of memory. */
qeil_ctx *cli_ctx_create(void);

/* Subcommands: each takes argv after the subcommand name (argv[0] is the
 * subcommand itself) and returns the process exit code. */
int cmd_plan(int argc, char **argv);
int cmd_platforms(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_eval(int argc, char **argv);

/* "qeil CMD: MESSAGE\nTry 'qeil CMD --help'." on stderr; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) QEIL_PRINTF(2, 3);
/* "qeil CMD: MESSAGE" on stderr; returns CLI_FAIL. */
int cli_fail(const char *cmd, const char *fmt, ...) QEIL_PRINTF(2, 3);

/* Is argv[i] the option `name`? If so and the option takes a value, store
 * it in *val (from "--name=v" or the next argument, advancing *i). Returns
 * 1 on a match, 0 on none, -1 when the value is missing (usage error
 * already printed). */
int cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name,
            const char *alias, const char **val);
int cli_flag(char **argv, int i, const char *name, const char *alias);

/* Parse --output VALUE (table|json|csv, or the subset in `allowed`, e.g.
 * "table|json"). Prints the usage error itself; returns 0 or CLI_USAGE. */
int cli_parse_output(const char *cmd, const char *val, const char *allowed, cli_output *out);

/* Strict numbers for options: print the error (field, value, range) and
 * return CLI_USAGE on failure, 0 on success. */
int cli_u64(const char *cmd, const char *opt, const char *val, uint64_t min, uint64_t max,
            uint64_t *out);
int cli_f64(const char *cmd, const char *opt, const char *val, double min, double max,
            double *out);
/* A float option in [lo, hi] with either end optionally open (`lo_open`,
 * `hi_open`; e.g. top-p in (0, 1]): the closed range is parsed strictly,
 * then an open end is rejected; `range` is the allowed range as the
 * message prints it. */
int cli_f32_range(const char *cmd, const char *opt, const char *val, double lo, double hi,
                  int lo_open, int hi_open, const char *range, float *out);

/* JSON string literal with escapes, to f. */
void cli_json_str(FILE *f, const char *s);

#endif /* QEIL_CLI_H */
