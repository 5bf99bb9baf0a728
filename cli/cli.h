/*
 * cli.h — shared pieces of the qeil command-line tool: subcommand entry
 * points, output formats, and the strict value parsers the option tables (cli/opt.h) use.
 *
 * Conventions (docs/cli.md): `--help` prints to stdout and exits 0; usage
 * errors exit 2; runtime failures exit 1; results go to stdout; diagnostics
 * and progress to stderr. Options: cli/opt.h.
 */
#ifndef QEIL_CLI_H
#define QEIL_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "qeil/qeil.h"
#include "qeil/runtime.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef enum { CLI_OUT_TABLE = 0, CLI_OUT_JSON, CLI_OUT_CSV } cli_output;

/* The context a command runs with; its buffers come from its allocator
 * (cli/alloc.c: QEIL_TEST_ALLOC_FAIL=K fails allocations after K, for
 * out-of-memory tests). NULL when out of memory. */
qeil_ctx *cli_ctx_create(void);

/* How much of the library's log reaches stderr (global options, before the
 * command name: -q quiet, default warnings, -v information, -v -v debug).
 * main() calls cli_log_setup once, before the command runs; every context
 * from cli_ctx_create then logs at that level, its lines prefixed
 * "qeil CMD: warning: " (or info/debug). */
enum { CLI_LOG_QUIET = 0, CLI_LOG_WARN, CLI_LOG_INFO, CLI_LOG_DEBUG };
void cli_log_setup(const char *cmd, int verbosity);

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
int cmd_sensors(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_thermal_sim(int argc, char **argv);

/* --placement SPEC (NULL: nothing to do) on an open engine: a bad spec is a
 * usage error (CLI_USAGE), a device that cannot take it a failure
 * (CLI_FAIL); both print the message. cli/placement.c. */
struct qeil_engine;
int cli_placement(const char *cmd, qeil_ctx *ctx, struct qeil_engine *e, const char *spec);
/* The same check before a runtime opens the model (generate, eval): a
 * malformed SPEC for MODEL's blocks prints a usage error and returns
 * CLI_USAGE; CLI_OK otherwise (an unreadable model included: the runtime
 * reports that). */
int cli_placement_check(const char *cmd, qeil_ctx *ctx, const char *model, const char *spec);

/* Plans as placements (cli/plan_exec.c, docs/cli.md "Running a plan"):
 *   cli_plan_read: the plan of a `qeil plan --output json` file (its
 *     recommended front plan, or one plan object) on platform pf for a model
 *     of n_units work units; prints the error and returns -1 on failure.
 *   cli_plan_spec: --plan FILE|auto for MODEL into a placement spec
 *     ("prefill=SPEC;decode=SPEC", or one SPEC when the phases agree) and a
 *     line saying where it came from. FILE's platform: --platform
 *     (`platform`, may be NULL), else its name in the catalog (whose units
 *     stand for no local device: refused naming the unit). auto: PGSAM's
 *     knee plan on `platform`, or on a quick in-process probe (said on
 *     stderr). Prints errors; returns CLI_OK, CLI_USAGE or CLI_FAIL.
 *   cli_placement_json / cli_transfers_json / cli_transfers_text: the
 *     "placement" object (each phase's map, the spec, its source) and the
 *     engine's "transfers" (qeil_engine_transfer_stats). */
struct cJSON;
int cli_plan_read(const char *cmd, const char *path, const qeil_platform *pf, uint32_t n_units,
                  qeil_assignment *a);
int cli_plan_spec(const char *cmd, qeil_ctx *ctx, const char *plan, const char *platform,
                  const char *model, char *spec, size_t cap, char *source, size_t scap);
void cli_placement_json(struct cJSON *parent, const char *spec, const char *source,
                        const uint8_t *pf, const uint8_t *dc, uint32_t n_units);
void cli_transfers_json(struct cJSON *parent, const qeil_engine_transfers *x);
void cli_transfers_text(FILE *f, const qeil_engine_transfers *x);

/* Faults and recovery (cli/recover.c): QEIL_FAULT=DEVICE:KIND:N from the
 * environment (unset or empty: *set = 0; malformed: a usage error naming
 * it, CLI_USAGE); a request's recoveries as the JSON array "recoveries" of
 * parent, or one line each to f. */
struct cJSON;
int cli_fault_env(const char *cmd, qeil_ctx *ctx, qeil_fault *f, int *set);
void cli_recoveries_json(struct cJSON *parent, const qeil_runtime_recovery *r, uint32_t n);
void cli_recoveries_text(FILE *f, const char *prefix, const qeil_runtime_recovery *r, uint32_t n);

/* Seconds on CLOCK_MONOTONIC (the CLI's one clock; the library has its own
 * in src/core/util.h, which the CLI does not see). */
double cli_now_s(void);

/* "qeil CMD: MESSAGE\nTry 'qeil CMD --help'." on stderr; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) QEIL_PRINTF(2, 3);
/* "qeil CMD: MESSAGE" on stderr; returns CLI_FAIL. */
int cli_fail(const char *cmd, const char *fmt, ...) QEIL_PRINTF(2, 3);

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

/* Check an output file named by option `opt` before any work is done:
 * its directory must exist and be writable, and an existing `path` must be
 * a regular file. A symbolic link is followed: *target is the resolved
 * regular file it points to (the link itself stays), else `path`. The
 * writers (temp file + rename) then never turn a device node, a FIFO or a
 * link into a regular file. On success *target is malloc'd (free it);
 * on failure prints "qeil CMD: ..." and returns CLI_FAIL. */
int cli_out_path(const char *cmd, const char *opt, const char *path, char **target);

/* Text from files (a GGUF's general.name, a task id, a path) is bytes:
 *   cli_utf8_clean: a valid UTF-8 copy of s[0..n), each invalid byte (and
 *     NUL) replaced by U+FFFD; malloc'd, NULL when out of memory.
 *   cli_term: s for a terminal: invalid UTF-8 as U+FFFD, and control
 *     characters (C0, DEL, C1: an ESC or CSI would act on the terminal)
 *     shown as \xNN / \u00NN; the result stays valid for 8 more calls.
 *   cli_json_str: a JSON string literal of s to f (escapes, U+FFFD).
 *   cli_json_print: the document j to stdout with a newline, every string
 *     valid UTF-8 (U+FFFD); -1 when out of memory. Every --output json
 *     built with cJSON prints through it. */
struct cJSON;
char *cli_utf8_clean(const char *s, size_t n);
const char *cli_term(const char *s);
void cli_json_str(FILE *f, const char *s);
int cli_json_print(const struct cJSON *j);

/* Measured energy beside the modeled figures (docs/cli.md "Measured
 * energy"). prov is the meter's provenance (NULL: none), covers what it
 * covers or why there is none.
 *   cli_meas_json: object KEY in parent: {"provenance": "measured:
 *     rapl-package" | "n/a: <why>", "covers", "energy_J", "J_per_token",
 *     "power_W", "t_s"} (numbers null when not measured).
 *   cli_meas_text: one line "LABEL measured: X J, Y J/token, Z W
 *     (rapl-package)" or "LABEL measured: n/a (<why>)" to f.
 * tokens 0: no J/token. */
void cli_meas_json(struct cJSON *parent, const char *key, int valid, double energy_J,
                   double t_s, uint64_t tokens, const char *prov, const char *covers);
void cli_meas_text(FILE *f, const char *label, int valid, double energy_J, double t_s,
                   uint64_t tokens, const char *prov, const char *covers);

/* The thermal guard's report (cli/guard_report.c), accumulated over the
 * requests of a run: init, add after each request (request: its index in
 * the JSON actions, -1 for none), then cli_guard_json (object "guard" in
 * parent: active, reason, readings, max_temp_C, actions, throttle_events
 * or null) or cli_guard_text (one line), then free. */
struct qeil_runtime;
typedef struct {
    int active;
    const char *reason; /* borrowed from the runtime: print before freeing it */
    uint32_t requests, readings;
    double max_temp_C;
    int throttle_known;
    uint64_t throttle_events, n_actions;
    struct cJSON *actions;
} cli_guard_acc;
void cli_guard_acc_init(cli_guard_acc *a);
void cli_guard_acc_add(cli_guard_acc *a, const struct qeil_runtime *rt, long request);
void cli_guard_json(struct cJSON *parent, cli_guard_acc *a);
void cli_guard_text(FILE *f, const cli_guard_acc *a);
void cli_guard_acc_free(cli_guard_acc *a);
#endif /* QEIL_CLI_H */
