/* alloc.c — the context a command runs with. Its buffers come from this
 * context's allocator (qeil_malloc(ctx, ...)), like the library's, so one
 * hook sees all of a run's memory.
 *
 * QEIL_TEST_ALLOC_FAIL=K (for tests only) makes that hook fail every
 * allocation after the first K: tests/test_engine_cli.c runs whole commands
 * with K = 0, 1, 2, ... and checks that each fails cleanly (exit 1, a
 * message, no sanitizer report: no crash, no leak) until one succeeds. */
#include <stdlib.h>

#include "cli.h"
#include "qeil/qeil.h"

static unsigned long long alloc_budget, alloc_used;

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
    return qeil_ctx_create(&p);
}
