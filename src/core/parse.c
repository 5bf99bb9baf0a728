/* parse.c — strict number parsing: the whole string, in range, or an error
 * that names the field, the value and the allowed range. Never atoi. */
#include "qeil/qeil.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

qeil_status qeil_parse_u64(qeil_ctx *ctx, const char *field, const char *text,
                           uint64_t min, uint64_t max, uint64_t *out)
{
    if (!text || !*text || isspace((unsigned char)*text) || *text == '-' || *text == '+')
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "%s: '%s' is not a non-negative integer (allowed %llu..%llu)",
                             field, text ? text : "", (unsigned long long)min,
                             (unsigned long long)max);
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end != '\0')
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "%s: '%s' is not a non-negative integer (allowed %llu..%llu)",
                             field, text, (unsigned long long)min, (unsigned long long)max);
    if (errno == ERANGE || v < min || v > max)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: %s is out of range (allowed %llu..%llu)",
                             field, text, (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)v;
    return QEIL_OK;
}

/* Is all of s a plain decimal number: -?D*(.D*)?([eE][+-]?D+)? with at
 * least one mantissa digit? strtod alone also takes a leading '+', hex
 * ("0x10", "0x1p4"), "inf", "nan" and leading blanks, none of which the
 * integer options accept: the two kinds of option are equally strict. */
static int is_decimal(const char *s)
{
    int digits = 0;
    if (*s == '-') s++;
    for (; isdigit((unsigned char)*s); s++) digits++;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++) digits++;
    if (!digits) return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!isdigit((unsigned char)*s)) return 0;
        while (isdigit((unsigned char)*s)) s++;
    }
    return *s == '\0';
}

qeil_status qeil_parse_f64(qeil_ctx *ctx, const char *field, const char *text,
                           double min, double max, double *out)
{
    if (!text || !is_decimal(text))
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "%s: '%s' is not a decimal number (allowed %g..%g)", field,
                             text ? text : "", min, max);
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0')
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "%s: '%s' is not a decimal number (allowed %g..%g)", field, text,
                             min, max);
    /* strtod flags a nonzero value below DBL_MIN with ERANGE and returns a
     * subnormal or 0: the text is in range, it is just not representable
     * without losing it (1e-320 would silently become 0 or a few bits). */
    if (errno == ERANGE && fabs(v) <= DBL_MIN)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "%s: %s is too small to represent (a nonzero value must be at "
                             "least %g in magnitude; allowed %g..%g)",
                             field, text, DBL_MIN, min, max);
    if (!isfinite(v) || errno == ERANGE || v < min || v > max)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: %s is out of range (allowed %g..%g)",
                             field, text, min, max);
    *out = v;
    return QEIL_OK;
}

/* Inside a string literal, a backslash escapes the next character, so the
 * scan steps over it: "\\u0000" is a backslash and "u0000", not a NUL. */
size_t qeil_json_find_nul(const char *json, size_t len)
{
    int in_str = 0;
    for (size_t i = 0; json && i < len; i++) {
        char c = json[i];
        if (!in_str) {
            in_str = c == '"';
        } else if (c == '"') {
            in_str = 0;
        } else if (c == '\\') {
            if (i + 5 < len && json[i + 1] == 'u' && memcmp(json + i + 2, "0000", 4) == 0)
                return i;
            i++;
        }
    }
    return len;
}
