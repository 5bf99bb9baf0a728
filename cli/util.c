/* util.c — option parsing and error printing shared by the subcommands. */
#include "cli.h"

#include <float.h>
#include <math.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ------------------------------------------------------------------------ */
/* Output files                                                              */
/* ------------------------------------------------------------------------ */

/* Is the directory holding `path` there and writable (the writers create
 * their temporary file next to the target, then rename it)? */
static int check_parent_dir(const char *cmd, const char *opt, const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == path ? strdup("/")
                : slash        ? strndup(path, (size_t)(slash - path))
                               : strdup(".");
    if (!dir) return cli_fail(cmd, "out of memory");
    struct stat sb;
    int rc = CLI_OK;
    if (stat(dir, &sb) != 0)
        rc = cli_fail(cmd, "%s %s: directory '%s': %s", opt, path, dir, strerror(errno));
    else if (!S_ISDIR(sb.st_mode))
        rc = cli_fail(cmd, "%s %s: '%s' is not a directory", opt, path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        rc = cli_fail(cmd, "%s %s: cannot write in directory '%s': %s", opt, path, dir,
                      strerror(errno));
    free(dir);
    return rc;
}

int cli_out_path(const char *cmd, const char *opt, const char *path, char **target)
{
    *target = NULL;
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno != ENOENT) return cli_fail(cmd, "%s %s: %s", opt, path, strerror(errno));
        int rc = check_parent_dir(cmd, opt, path);
        if (rc != CLI_OK) return rc;
        *target = strdup(path);
        return *target ? CLI_OK : cli_fail(cmd, "out of memory");
    }
    char *real = NULL;
    if (S_ISLNK(sb.st_mode)) {
        /* a link stays a link: the new file goes to what it points to */
        real = realpath(path, NULL);
        if (!real)
            return cli_fail(cmd, "%s %s: a symbolic link whose target cannot be resolved (%s); "
                                 "give the target file itself",
                            opt, path, strerror(errno));
        if (stat(real, &sb) != 0) {
            int rc = cli_fail(cmd, "%s %s: link target '%s': %s", opt, path, real,
                              strerror(errno));
            free(real);
            return rc;
        }
    }
    if (!S_ISREG(sb.st_mode)) {
        const char *what = S_ISDIR(sb.st_mode)    ? "a directory"
                           : S_ISCHR(sb.st_mode)  ? "a character device"
                           : S_ISBLK(sb.st_mode)  ? "a block device"
                           : S_ISFIFO(sb.st_mode) ? "a FIFO"
                           : S_ISSOCK(sb.st_mode) ? "a socket"
                                                  : "not a regular file";
        int rc = real ? cli_fail(cmd, "%s %s: the link's target '%s' is %s, not a regular file",
                                 opt, path, real, what)
                      : cli_fail(cmd, "%s %s: is %s, not a regular file (qeil writes a new file "
                                      "and renames it over the old one, which would replace it)",
                                 opt, path, what);
        free(real);
        return rc;
    }
    const char *dest = real ? real : path;
    int rc = check_parent_dir(cmd, opt, dest);
    if (rc != CLI_OK) {
        free(real);
        return rc;
    }
    *target = real ? real : strdup(path);
    return *target ? CLI_OK : cli_fail(cmd, "out of memory");
}
