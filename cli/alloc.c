/* alloc.c — the context a command runs with: its allocator and its log hook.
 *
 * Buffers come from this context's allocator (qeil_malloc(ctx, ...)), like
 * the library's, so one hook sees all of a run's memory.
 * QEIL_TEST_ALLOC_FAIL=K (for tests only) makes that hook fail every
 * allocation after the first K: tests/test_engine_cli.c runs whole commands
 * with K = 0, 1, 2, ... and checks that each fails cleanly (exit 1, a
 * message, no sanitizer report: no crash, no leak) until one succeeds.
 *
 * The library's warnings (and, with the global -v, its information lines)
 * reach the user on stderr through the one log hook set here, as
 * "qeil CMD: warning: MESSAGE". Errors are not printed by the hook: a
 * command reports the failure it stops on itself (cli_fail with
 * qeil_ctx_errmsg), and a failure the library recovers from is no error
 * of the run. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "qeil/qeil.h"

static unsigned long long alloc_budget, alloc_used;

/* Set once by main() from the global options, before the command runs. */
static int log_verbosity = CLI_LOG_WARN;
static const char *log_cmd = "";

void cli_log_setup(const char *cmd, int verbosity)
{
    log_cmd = cmd ? cmd : "";
    log_verbosity = verbosity;
}

static void *failing_realloc(void *user, void *ptr, size_t size)
{
    (void)user;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    if (alloc_used >= alloc_budget) return NULL;
    alloc_used++;
    return realloc(ptr, size);
}

static void stderr_log(void *user, qeil_log_level level, const char *msg)
{
    (void)user;
    const char *what = level == QEIL_LOG_WARN ? "warning" : level == QEIL_LOG_INFO ? "info" : "debug";
    if (level == QEIL_LOG_ERROR) return; /* the command reports its own failure */
    fprintf(stderr, "qeil%s%s: %s: %s\n", *log_cmd ? " " : "", log_cmd, what, cli_term(msg));
}

qeil_ctx *cli_ctx_create(void)
{
    qeil_ctx_params p = qeil_ctx_default_params();
    const char *k = getenv("QEIL_TEST_ALLOC_FAIL");
    uint64_t budget;
    if (k && *k && qeil_parse_u64(NULL, "QEIL_TEST_ALLOC_FAIL", k, 0, UINT64_MAX, &budget) == QEIL_OK) {
        alloc_budget = budget;
        alloc_used = 0;
        p.realloc = failing_realloc;
    }
    if (log_verbosity != CLI_LOG_QUIET) {
        p.log = stderr_log;
        p.log_level = log_verbosity == CLI_LOG_WARN   ? QEIL_LOG_WARN
                      : log_verbosity == CLI_LOG_INFO ? QEIL_LOG_INFO
                                                      : QEIL_LOG_DEBUG;
    }
    return qeil_ctx_create(&p);
}
