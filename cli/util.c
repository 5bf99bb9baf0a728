#include <time.h>
/* util.c — strict option values and error printing shared by the subcommands
 * (the option tables that use them: cli/opt.c). */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *term_dup(const char *s, int keep_nl);

/* "qeil CMD: MESSAGE" to stderr. A message quotes file data (a task id, a
 * GGUF key, a path): control bytes in it must not act on the terminal. */
static void diag(const char *cmd, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    char *clean = NULL;
    if (buf) {
        vsnprintf(buf, (size_t)n + 1, fmt, ap);
        clean = term_dup(buf, 1);
    }
    fprintf(stderr, "qeil %s: %s", cmd, clean ? clean : "(out of memory formatting a message)");
    free(clean);
    free(buf);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag(cmd, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'qeil %s --help'.\n", cmd);
    return CLI_USAGE;
}

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag(cmd, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAIL;
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

/* ------------------------------------------------------------------------ */
/* Text from files: valid UTF-8 for JSON, no control bytes on a terminal     */
/* ------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid:
 * overlong forms, surrogates, values above U+10FFFF and NUL are invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || n < len || c == 0) return 0;
    for (size_t k = 1; k < len; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    if (len == 1) return 1;
    uint32_t cp = c & (0x7Fu >> len);
    for (size_t k = 1; k < len; k++) cp = (cp << 6) | (p[k] & 0x3Fu);
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

char *cli_utf8_clean(const char *s, size_t n)
{
    if (n > (SIZE_MAX - 1) / 3) return NULL;
    char *o = malloc(3 * n + 1), *w = o;
    if (!o) return NULL;
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        size_t len = utf8_len(p, (size_t)(e - p));
        if (len) {
            memcpy(w, p, len);
            w += len;
            p += len;
        } else {
            memcpy(w, "\xEF\xBF\xBD", 3); /* U+FFFD for each bad byte */
            w += 3;
            p++;
        }
    }
    *w = '\0';
    return o;
}

/* malloc'd copy of s safe for a terminal (see cli_term); keep_nl keeps
 * '\n' and '\t' (multi-line diagnostics). NULL when out of memory. */
static char *term_dup(const char *s, int keep_nl)
{
    size_t n = strlen(s);
    if (n > (SIZE_MAX - 1) / 6) return NULL;
    char *o = malloc(6 * n + 1), *w = o;
    if (!o) return NULL;
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        size_t len = utf8_len(p, (size_t)(e - p));
        if (len == 1 && (*p < 0x20 || *p == 0x7F) && !(keep_nl && (*p == '\n' || *p == '\t'))) {
            w += sprintf(w, "\\x%02x", *p); /* ESC [31m shows, does not act */
            p++;
        } else if (len == 2 && p[0] == 0xC2 && p[1] < 0xA0) {
            w += sprintf(w, "\\u%04x", p[1]); /* C1 controls (U+0080..U+009F, CSI) */
            p += 2;
        } else if (len) {
            memcpy(w, p, len);
            w += len;
            p += len;
        } else {
            memcpy(w, "\xEF\xBF\xBD", 3);
            w += 3;
            p++;
        }
    }
    *w = '\0';
    return o;
}

const char *cli_term(const char *s)
{
    /* a small ring, so that one printf can take several cleaned strings;
     * the CLI is single-threaded */
    static char *ring[8];
    static unsigned next;
    if (!s) return "(null)";
    char *o = term_dup(s, 0);
    if (!o) return "?";
    free(ring[next]);
    ring[next] = o;
    next = (next + 1) % (sizeof ring / sizeof *ring);
    return o;
}

void cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s, *e = p + strlen(s);
    while (p < e) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) {
                fprintf(f, "\\u%04x", *p);
            } else {
                size_t len = utf8_len(p, (size_t)(e - p));
                if (len) fwrite(p, 1, len, f);
                else fputs("\xEF\xBF\xBD", f); /* JSON text is Unicode */
                p += len ? len : 1;
                continue;
            }
        }
        p++;
    }
    fputc('"', f);
}

int cli_json_print(const cJSON *j)
{
    char *s = cJSON_Print(j);
    if (!s) return -1;
    /* cJSON copies string bytes as they are; any byte that is not valid
     * UTF-8 sits inside a string literal (the syntax is ASCII), so making
     * the whole text valid UTF-8 makes every string valid and keeps the
     * document's structure */
    char *clean = cli_utf8_clean(s, strlen(s));
    free(s);
    if (!clean) return -1;
    puts(clean);
    free(clean);
    return 0;
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
                                                  : "a special file";
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

/* ------------------------------------------------------------------------ */
/* Measured energy                                                          */
/* ------------------------------------------------------------------------ */

/* A modeled number is never printed as measured: without a valid measure
 * the provenance is "n/a: <why>" and the numbers are null. */
void cli_meas_json(cJSON *parent, const char *key, int valid, double energy_J, double t_s,
                   uint64_t tokens, const char *prov, const char *covers)
{
    cJSON *o = cJSON_AddObjectToObject(parent, key);
    if (!o) return;
    char p[512];
    valid = valid && prov && isfinite(energy_J);
    if (valid) snprintf(p, sizeof p, "measured: %s", prov);
    else if (prov) snprintf(p, sizeof p, "n/a: %s did not read", prov);
    else snprintf(p, sizeof p, "n/a: %s", covers ? covers : "no sensor");
    cJSON_AddStringToObject(o, "provenance", p);
    if (prov && covers) cJSON_AddStringToObject(o, "covers", covers);
    if (valid) {
        cJSON_AddNumberToObject(o, "energy_J", energy_J);
        if (tokens) cJSON_AddNumberToObject(o, "J_per_token", energy_J / (double)tokens);
        else cJSON_AddNullToObject(o, "J_per_token");
        if (t_s > 0) cJSON_AddNumberToObject(o, "power_W", energy_J / t_s);
        else cJSON_AddNullToObject(o, "power_W");
        cJSON_AddNumberToObject(o, "t_s", t_s);
    } else {
        cJSON_AddNullToObject(o, "energy_J");
        cJSON_AddNullToObject(o, "J_per_token");
        cJSON_AddNullToObject(o, "power_W");
        cJSON_AddNullToObject(o, "t_s");
    }
}

void cli_meas_text(FILE *f, const char *label, int valid, double energy_J, double t_s,
                   uint64_t tokens, const char *prov, const char *covers)
{
    if (!(valid && prov && isfinite(energy_J))) {
        if (prov) fprintf(f, "%s measured: n/a (%s did not read)\n", label, prov);
        else fprintf(f, "%s measured: n/a (%s)\n", label, covers ? covers : "no sensor");
        return;
    }
    fprintf(f, "%s measured: %.4g J", label, energy_J);
    if (tokens) fprintf(f, ", %.4g J/token", energy_J / (double)tokens);
    if (t_s > 0) fprintf(f, ", %.4g W", energy_J / t_s);
    fprintf(f, " (%s)\n", prov);
}

double cli_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
