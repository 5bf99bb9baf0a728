/*
 * cli_harness.h — run the qeil binary of the same build directory and
 * capture what it says, for the end-to-end CLI suites (tests/test_*_cli.c,
 * tests/test_cli.c). One test file is one program, so everything here is
 * static; define CLI_HARNESS_TMPDIR (a mkdtemp template) first:
 *
 *     #define CLI_HARNESS_TMPDIR "/tmp/qeil-foo-XXXXXX"
 *     #include "cli_harness.h"
 *
 *     TEST(help) { CHECK_RUN(qeilf("plan --help"), 0); CHECK_CONTAINS(out_text, "--seed"); }
 *     int main(int argc, char **argv) {
 *         (void)argc;
 *         if (cli_harness_init(argv[0]) != 0) return 1;
 *         RUN(help);
 *         cli_harness_done();
 *         return test_summary("foo");
 *     }
 *
 * The qeil binary is argv[0]/../qeil (build/tests/test_x -> build/qeil),
 * made absolute so that a test may change directory. Commands run it as
 * qeil_cmd: the binary behind $QEIL_TEST_RUNNER when that is set (tests/run.sh
 * exports it; e.g. "qemu-aarch64-static -L / -cpu max" for the aarch64
 * build, which then runs without binfmt_misc), the binary alone otherwise;
 * a test writing its own command line uses qeil_cmd too. Every run writes
 * stdout and stderr to files in tmpdir and reads them back into out_text
 * and err_text (NUL-terminated; out_len is stdout's length); a sanitizer
 * report on stderr fails the current test, since it exits 1 like a clean
 * failure would.
 */
#ifndef QEIL_CLI_HARNESS_H
#define QEIL_CLI_HARNESS_H

#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qeil/qeil.h"
#include "test.h"

#ifndef CLI_HARNESS_TMPDIR
#error "define CLI_HARNESS_TMPDIR (\"/tmp/qeil-NAME-XXXXXX\") before including cli_harness.h"
#endif

static char qeil_bin[4096];  /* the qeil binary under test (its path) */
static char qeil_cmd[8192];  /* how a command line runs it: "$QEIL_TEST_RUNNER qeil_bin" */
static char test_dir[4096];  /* the directory of this test binary (absolute) */
static char tmpdir[] = CLI_HARNESS_TMPDIR;
static char *out_text, *err_text; /* the last run's stdout and stderr */
static size_t out_len;

/* The whole file at path, NUL-terminated, malloc'd (*len: its length, may
 * be NULL); NULL when it cannot be read. */
static inline char *slurp_len(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)(n < 0 ? 0 : n) + 1);
    size_t got = s ? fread(s, 1, (size_t)(n < 0 ? 0 : n), f) : 0;
    if (s) s[got] = '\0';
    if (len) *len = got;
    fclose(f);
    return s;
}

static inline char *slurp(const char *path) { return slurp_len(path, NULL); }

/* Run `ENV qeil ARGS <INPUT` (env NULL or "": none; input NULL: stdin from
 * /dev/null, else the text as stdin); returns the exit code, -1 when the
 * process did not exit normally. */
static inline int cli_harness_run(const char *env, const char *input, const char *args)
{
    char in[4200], cmd[24576], p[4200];
    snprintf(in, sizeof in, "/dev/null");
    if (input) {
        snprintf(in, sizeof in, "%s/in", tmpdir);
        FILE *f = fopen(in, "wb");
        if (f) {
            fputs(input, f);
            fclose(f);
        }
    }
    snprintf(cmd, sizeof cmd, "%s %s %s >%s/out 2>%s/err <%s", env ? env : "", qeil_cmd, args,
             tmpdir, tmpdir, in);
    int st = system(cmd);
    free(out_text);
    free(err_text);
    snprintf(p, sizeof p, "%s/out", tmpdir);
    out_text = slurp_len(p, &out_len);
    snprintf(p, sizeof p, "%s/err", tmpdir);
    err_text = slurp(p);
    /* a sanitizer report exits 1 too: never let it pass as a clean failure */
    if (err_text && (strstr(err_text, "Sanitizer") || strstr(err_text, "runtime error:")))
        TEST_FAIL_("sanitizer report from 'qeil %s':\n%s", args, err_text);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

/* `qeil ARGS` */
static inline int qeil(const char *args) { return cli_harness_run(NULL, NULL, args); }

#define CLI_HARNESS_FMT_(buf, fmt)                                                             \
    do {                                                                                       \
        va_list ap;                                                                            \
        va_start(ap, fmt);                                                                     \
        vsnprintf(buf, sizeof buf, fmt, ap);                                                   \
        va_end(ap);                                                                            \
    } while (0)

/* `qeil ARGS` with printf-style arguments */
static inline int qeilf(const char *fmt, ...) QEIL_PRINTF(1, 2);
static inline int qeilf(const char *fmt, ...)
{
    char args[6000];
    CLI_HARNESS_FMT_(args, fmt);
    return cli_harness_run(NULL, NULL, args);
}

/* `ENV qeil ARGS` (env may be "") */
static inline int qeil_env(const char *env, const char *fmt, ...) QEIL_PRINTF(2, 3);
static inline int qeil_env(const char *env, const char *fmt, ...)
{
    char args[6000];
    CLI_HARNESS_FMT_(args, fmt);
    return cli_harness_run(env, NULL, args);
}

/* `qeil ARGS` with INPUT on stdin (NULL: /dev/null) */
static inline int qeil_in(const char *input, const char *fmt, ...) QEIL_PRINTF(2, 3);
static inline int qeil_in(const char *input, const char *fmt, ...)
{
    char args[6000];
    CLI_HARNESS_FMT_(args, fmt);
    return cli_harness_run(NULL, input, args);
}

/* An exit code, and on a mismatch what the command said. */
#define CHECK_RUN(rc, want)                                                                    \
    do {                                                                                       \
        int r_ = (rc);                                                                         \
        CHECK_EQ_INT(r_, want);                                                                \
        if (r_ != (want)) printf("  stderr: %s\n", err_text ? err_text : "(none)");           \
    } while (0)

/* Strict UTF-8 (no overlong forms, surrogates or values above U+10FFFF):
 * what a JSON parser other than cJSON demands of a command's output. */
static inline int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!n) return 0;
        for (size_t k = 1; k < n; k++)
            if ((p[k] & 0xC0) != 0x80) return 0;
        if (n == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))) return 0;
        if (n == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))) return 0;
        p += n;
    }
    return 1;
}

/* The emulator that runs this build's binaries (tests/run.sh's
 * QEIL_TEST_RUNNER, e.g. "qemu-aarch64-static -L / -cpu max"), NULL when
 * they run natively. */
static inline const char *cli_harness_runner(void)
{
    const char *r = getenv("QEIL_TEST_RUNNER");
    return r && r[0] ? r : NULL;
}

/* The step of a sweep that runs qeil once per case (every allocation
 * failing in turn, ...): 1 natively; under an emulator, where each run
 * costs a fresh emulator (~0.3 s before qeil does anything) and its work
 * 10-30x, CLI_HARNESS_EMU_STRIDE: the sweep takes every such case (0, S,
 * 2S, ...) and says so in its line. */
#define CLI_HARNESS_EMU_STRIDE 5
static inline int cli_harness_stride(void) { return cli_harness_runner() ? CLI_HARNESS_EMU_STRIDE : 1; }

/* qeil_bin, qeil_cmd, test_dir and tmpdir from argv[0]; prints "FAIL setup: ..." and
 * returns -1 when there is no qeil binary or no temporary directory. */
static inline int cli_harness_init(const char *argv0)
{
    char self[2048], cwd[2048] = "."; /* test_dir holds both */
    snprintf(self, sizeof self, "%s", argv0);
    const char *dir = dirname(self);
    if (dir[0] != '/' && !getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
    snprintf(test_dir, sizeof test_dir, "%s%s%s", dir[0] == '/' ? "" : cwd,
             dir[0] == '/' ? "" : "/", dir);
    snprintf(qeil_bin, sizeof qeil_bin, "%.4080s/../qeil", test_dir);
    const char *runner = cli_harness_runner();
    snprintf(qeil_cmd, sizeof qeil_cmd, "%.4000s%s%s", runner ? runner : "", runner ? " " : "",
             qeil_bin);
    if (access(qeil_bin, X_OK) != 0 || !mkdtemp(tmpdir)) {
        printf("FAIL setup: no qeil binary at %s or no temp dir\n", qeil_bin);
        return -1;
    }
    return 0;
}

/* Remove tmpdir and free the last run's output. */
static inline void cli_harness_done(void)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    free(out_text);
    free(err_text);
    out_text = err_text = NULL;
}

#endif /* QEIL_CLI_HARNESS_H */
