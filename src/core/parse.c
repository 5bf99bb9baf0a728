/* parse.c — strict number parsing: the whole string, in range, or an error
 * that names the field, the value and the allowed range. Never atoi. */
#include "qeil/qeil.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

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

qeil_status qeil_parse_f64(qeil_ctx *ctx, const char *field, const char *text,
                           double min, double max, double *out)
{
    if (!text || !*text || isspace((unsigned char)*text))
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: '%s' is not a number (allowed %g..%g)",
                             field, text ? text : "", min, max);
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0')
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: '%s' is not a number (allowed %g..%g)",
                             field, text, min, max);
    if (!isfinite(v) || errno == ERANGE || v < min || v > max)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: %s is out of range (allowed %g..%g)",
                             field, text, min, max);
    *out = v;
    return QEIL_OK;
}
