/* answer.c — final-answer extraction and normalisation (GSM8K-style numbers,
 * ARC-style letters) and the word 4-gram repetition ratio ARDE uses to spot
 * degenerate samples. Pure functions over a byte range; no allocation.
 *
 * Everything here reads at most `len` bytes of the text: the extractor never
 * relies on a NUL terminator. docs/selection.md lists the rules with
 * examples; tests/test_select.c holds the table. */
#include "qeil/select.h"

#include <string.h>
#include "core/util.h"

/* ------------------------------------------------------------------------ */
/* Byte classes (ASCII only: locale-independent on purpose)                 */
/* ------------------------------------------------------------------------ */

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(unsigned char c) { return is_digit(c) || is_alpha(c); }
static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static int is_hspace(unsigned char c) { return c == ' ' || c == '\t'; }
static unsigned char to_lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }
static unsigned char to_upper(unsigned char c) { return (c >= 'a' && c <= 'z') ? (unsigned char)(c - 32) : c; }

/* Choice letters A–H: ARC uses A–E, 8 leaves room for larger option sets;
 * 'I' is left out because the pronoun "I" would read as an answer. */
static int is_choice_letter(unsigned char c)
{
    c = to_upper(c);
    return c >= 'A' && c <= 'H';
}

/* Case-insensitive match of the ASCII word w at s[i..). */
static int match_ci(const char *s, size_t len, size_t i, const char *w)
{
    size_t n = strlen(w);
    if (i > len || len - i < n) return 0;
    for (size_t k = 0; k < n; k++)
        if (to_lower((unsigned char)s[i + k]) != (unsigned char)w[k]) return 0;
    return 1;
}

/* End of the line that contains position i (index of '\n' or len). */
static size_t line_end(const char *s, size_t len, size_t i)
{
    while (i < len && s[i] != '\n') i++;
    return i;
}

static size_t skip_space(const char *s, size_t len, size_t i)
{
    while (i < len && is_space((unsigned char)s[i])) i++;
    return i;
}

/* ------------------------------------------------------------------------ */
/* Numbers: scan one token and write its canonical form                      */
/* ------------------------------------------------------------------------ */

/* Digits kept per number part. Beyond this a "number" is not an answer (an
 * ID, a hash); keeping the canonical text well inside QEIL_ANSWER_MAX. */
#define NUM_MAX_DIGITS 40

typedef struct {
    size_t start, end; /* span in the text, sign included */
    char text[QEIL_ANSWER_MAX];
} num_tok;

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Append one char; 0 when it does not fit (then the token is no answer). */
static int put(char *buf, size_t *n, char c)
{
    if (*n + 1 >= QEIL_ANSWER_MAX) return 0;
    buf[(*n)++] = c;
    buf[*n] = '\0';
    return 1;
}

static int put_u64(char *buf, size_t *n, uint64_t v)
{
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        if (!put(buf, n, tmp[--k])) return 0;
    return 1;
}

/* Canonical decimal from digit strings: int part without leading zeros (at
 * least "0"), fraction without trailing zeros, '-' only when non-zero. */
static int canon_decimal(int neg, const char *ip, size_t ni, const char *fp, size_t nf, char *out)
{
    while (ni > 1 && ip[0] == '0') ip++, ni--;
    while (nf > 0 && fp[nf - 1] == '0') nf--;
    int zero = (ni == 1 && ip[0] == '0' && nf == 0);
    size_t n = 0;
    out[0] = '\0';
    if (neg && !zero && !put(out, &n, '-')) return 0;
    for (size_t k = 0; k < ni; k++)
        if (!put(out, &n, ip[k])) return 0;
    if (nf) {
        if (!put(out, &n, '.')) return 0;
        for (size_t k = 0; k < nf; k++)
            if (!put(out, &n, fp[k])) return 0;
    }
    return 1;
}

/* Canonical form of the fraction p/q (q > 0): reduced; written as a decimal
 * when the expansion terminates (q = 2^a·5^b) and fits, else "p/q". */
static int canon_fraction(int neg, uint64_t p, uint64_t q, char *out)
{
    uint64_t g = gcd_u64(p, q);
    if (g > 1) p /= g, q /= g;
    size_t n = 0;
    out[0] = '\0';
    if (p == 0) return put(out, &n, '0');
    uint64_t r = q;
    while (r % 2 == 0) r /= 2;
    while (r % 5 == 0) r /= 5;
    if (r == 1) {
        /* terminating: long division; rem < q <= 1e18, so rem*10 < 2^64 */
        uint64_t rem = p % q;
        int ok = (!neg || put(out, &n, '-')) && put_u64(out, &n, p / q);
        if (ok && rem) ok = put(out, &n, '.');
        while (ok && rem) {
            rem *= 10;
            ok = put(out, &n, (char)('0' + rem / q));
            rem %= q;
        }
        if (ok) return 1;
        n = 0; /* too long as a decimal: write p/q */
        out[0] = '\0';
    }
    return (!neg || put(out, &n, '-')) && put_u64(out, &n, p) && put(out, &n, '/') &&
           put_u64(out, &n, q);
}

/* Parse a run of at most 18 digits (fits uint64 with room for the gcd). */
static int digits_u64(const char *d, size_t nd, uint64_t *v)
{
    if (nd == 0 || nd > 18) return 0;
    uint64_t x = 0;
    for (size_t k = 0; k < nd; k++) x = x * 10 + (uint64_t)(d[k] - '0');
    *v = x;
    return 1;
}

/* Try to read a number whose first digit (or '.' before a digit) is at i.
 * lo bounds the look-back for a sign. On success fills t and returns 1;
 * t->end is one past the token. Returns 0 (t->end still advanced past the
 * digits) when the token is too long to be an answer. */
static int scan_number_at(const char *s, size_t len, size_t lo, size_t i, num_tok *t)
{
    char ip[NUM_MAX_DIGITS * 2], fp[NUM_MAX_DIGITS];
    size_t ni = 0, nf = 0, j = i;
    int ok = 1, grouped = 0;

    /* integer part, with thousands separators "1,234,567": a comma counts
     * only when exactly three digits follow it ("12,34" is two numbers) */
    while (j < len && is_digit((unsigned char)s[j])) {
        if (ni < sizeof ip) ip[ni++] = s[j];
        else ok = 0;
        j++;
    }
    while (ni > 0 && j + 3 < len && s[j] == ',' && is_digit((unsigned char)s[j + 1]) &&
           is_digit((unsigned char)s[j + 2]) && is_digit((unsigned char)s[j + 3]) &&
           (j + 4 >= len || !is_digit((unsigned char)s[j + 4]))) {
        for (int k = 1; k <= 3; k++) {
            if (ni < sizeof ip) ip[ni++] = s[j + (size_t)k];
            else ok = 0;
        }
        grouped = 1;
        j += 4;
    }
    if (ni == 0) ip[ni++] = '0'; /* ".5" */
    /* decimals: '.' followed by a digit ("42." is 42 and a full stop) */
    if (j + 1 < len && s[j] == '.' && is_digit((unsigned char)s[j + 1])) {
        j++;
        while (j < len && is_digit((unsigned char)s[j])) {
            if (nf < sizeof fp) fp[nf++] = s[j];
            else ok = 0;
            j++;
        }
    }

    /* sign: '-', '+' or U+2212 right before the digits (a '$' may sit in
     * between: "-$5"), and not glued to a word or number before it ("10-3"
     * is a subtraction, "x-4" an expression) */
    int neg = 0;
    size_t k = i;
    if (k > lo && s[k - 1] == '$') k--;
    size_t st = k; /* the span includes a '$' */
    if (k > lo && (s[k - 1] == '-' || s[k - 1] == '+')) {
        if (k - 1 == lo || !is_alnum((unsigned char)s[k - 2])) {
            neg = s[k - 1] == '-';
            st = k - 1;
        }
    } else if (k >= lo + 3 && (unsigned char)s[k - 3] == 0xE2 && (unsigned char)s[k - 2] == 0x88 &&
               (unsigned char)s[k - 1] == 0x92) {
        if (k - 3 == lo || !is_alnum((unsigned char)s[k - 4])) {
            neg = 1;
            st = k - 3;
        }
    }
    t->start = st;

    /* fraction "p/q": plain integers on both sides */
    if (ok && nf == 0 && !grouped && j + 1 < len && s[j] == '/' && is_digit((unsigned char)s[j + 1])) {
        size_t q0 = j + 1, q1 = q0;
        while (q1 < len && is_digit((unsigned char)s[q1])) q1++;
        int q_dot = q1 + 1 < len && s[q1] == '.' && is_digit((unsigned char)s[q1 + 1]);
        uint64_t p, q;
        if (!q_dot && digits_u64(ip, ni, &p) && digits_u64(s + q0, q1 - q0, &q) && q > 0) {
            t->end = q1;
            return canon_fraction(neg, p, q, t->text);
        }
    }
    t->end = j;
    if (!ok || ni > NUM_MAX_DIGITS) return 0;
    return canon_decimal(neg, ip, ni, fp, nf, t->text);
}

/* Does a number token start at i (digit, or '.' + digit not after a digit)? */
static int number_starts(const char *s, size_t len, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    if (is_digit(c)) return 1;
    return c == '.' && i + 1 < len && is_digit((unsigned char)s[i + 1]) &&
           (i == 0 || !is_digit((unsigned char)s[i - 1]));
}

/* First (want_last = 0) or last number token in [lo, hi). */
static int find_number(const char *s, size_t len, size_t lo, size_t hi, int want_last, num_tok *out)
{
    int found = 0;
    size_t i = lo;
    if (hi > len) hi = len;
    while (i < hi) {
        if (number_starts(s, hi, i)) {
            num_tok t;
            if (scan_number_at(s, hi, lo, i, &t)) {
                *out = t;
                found = 1;
                if (!want_last) return 1;
            }
            i = t.end > i ? t.end : i + 1;
        } else {
            i++;
        }
    }
    return found;
}

/* A number that starts at i after optional '$' / sign (nothing else). */
static int number_right_here(const char *s, size_t len, size_t i, size_t hi, num_tok *out)
{
    size_t lo = i;
    if (i < hi && (s[i] == '-' || s[i] == '+')) i++;
    else if (i + 2 < hi && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x88 &&
             (unsigned char)s[i + 2] == 0x92)
        i += 3;
    if (i < hi && s[i] == '$') i++;
    if (i >= hi || !number_starts(s, hi, i)) return 0;
    (void)len;
    return scan_number_at(s, hi, lo, i, out);
}

/* ------------------------------------------------------------------------ */
/* Numeric extraction rules                                                  */
/* ------------------------------------------------------------------------ */

/* Rule 1: the first "####" immediately followed (spaces allowed) by a
 * number. The first, not the last: a model trained on GSM8K's format ends
 * its solution with one "#### N" line and may then run on into a made-up
 * next problem with its own marker. "#### Step 1" (a markdown heading) is
 * skipped because no number follows at once. */
static int rule_hash_num(const char *s, size_t len, num_tok *t)
{
    for (size_t i = 0; i + 4 <= len; i++) {
        if (memcmp(s + i, "####", 4) != 0) continue;
        size_t j = i + 4;
        while (j < len && s[j] == '#') j++; /* "#####" is one marker */
        j = skip_space(s, len, j);
        if (number_right_here(s, len, j, line_end(s, len, j), t)) return 1;
        i = j > i ? j - 1 : i;
    }
    return 0;
}

/* Rule 2: the last "\boxed{...}" holding a number (first number inside). */
static int rule_boxed(const char *s, size_t len, num_tok *t)
{
    static const char key[] = "\\boxed{";
    const size_t nk = sizeof key - 1;
    for (size_t i = len >= nk ? len - nk + 1 : 0; i-- > 0;) {
        if (memcmp(s + i, key, nk) != 0) continue;
        size_t a = i + nk, b = a;
        while (b < len && s[b] != '}' && b - a < 64) b++;
        if (find_number(s, len, a, b, 0, t)) return 1;
    }
    return 0;
}

/* The connectors that may follow "answer": "is", ":", "=", ... Returns the
 * index after the connector, or 0 when none matches. */
static size_t answer_connector(const char *s, size_t len, size_t j)
{
    static const char *const conn[] = {":", "=", "is", "was", "would be", "will be", "should be",
                                       "equals"};
    while (j < len && (is_hspace((unsigned char)s[j]) || s[j] == '*' || s[j] == '"')) j++;
    for (size_t c = 0; c < sizeof conn / sizeof conn[0]; c++) {
        size_t n = strlen(conn[c]);
        if (!match_ci(s, len, j, conn[c])) continue;
        /* word connectors must end at a word boundary ("island" is not "is") */
        if (is_alpha((unsigned char)conn[c][0]) && j + n < len && is_alnum((unsigned char)s[j + n]))
            continue;
        return j + n;
    }
    return 0;
}

/* Does a keyword match at i as a word start ("answer" in "Answer", not in
 * "reanswer")? */
static int word_at(const char *s, size_t len, size_t i, const char *w)
{
    return match_ci(s, len, i, w) && (i == 0 || !is_alpha((unsigned char)s[i - 1]));
}

/* Rule 3: the last "answer <connector>" followed, within the same line and
 * 48 bytes, by a number: "The answer is 42", "Answer: -3.5", "final answer
 * is $1,234.". A connector is required so that "the answer to part 1 is 5"
 * does not yield 1. */
static int rule_answer_num(const char *s, size_t len, num_tok *t)
{
    for (size_t i = len >= 6 ? len - 6 + 1 : 0; i-- > 0;) {
        if (!word_at(s, len, i, "answer")) continue;
        size_t j = answer_connector(s, len, i + 6);
        if (!j) continue;
        size_t hi = line_end(s, len, j);
        if (hi > j + 48) hi = j + 48;
        if (find_number(s, len, j, hi, 0, t)) return 1;
    }
    return 0;
}

/* Rule 4: on the last non-empty line, the number right after its last '='
 * ("Total = 1,234 in 2 days" gives 1234, not 2). */
static int rule_last_equals(const char *s, size_t len, num_tok *t)
{
    size_t e = len;
    while (e > 0 && is_space((unsigned char)s[e - 1])) e--;
    size_t b = e;
    while (b > 0 && s[b - 1] != '\n') b--;
    for (size_t i = e; i-- > b;) {
        if (s[i] != '=') continue;
        size_t j = i + 1;
        while (j < e && is_hspace((unsigned char)s[j])) j++;
        if (number_right_here(s, len, j, e, t)) return 1;
    }
    return 0;
}

static int extract_numeric(const char *s, size_t len, char *out)
{
    num_tok t;
    if (rule_hash_num(s, len, &t) || rule_boxed(s, len, &t) || rule_answer_num(s, len, &t) ||
        rule_last_equals(s, len, &t) || find_number(s, len, 0, len, 1, &t)) {
        memcpy(out, t.text, sizeof t.text);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Choice extraction rules                                                   */
/* ------------------------------------------------------------------------ */

/* A letter token at i: optional '(' or '[', a letter A–H, optional ')' or
 * ']', then not a letter or digit. A lowercase letter counts only when
 * bracketed or followed by punctuation / end of line — "the answer is a
 * dog" is not (A). */
static int letter_token(const char *s, size_t len, size_t i, char *out)
{
    int open = 0;
    if (i < len && (s[i] == '(' || s[i] == '[')) open = 1, i++;
    if (i >= len || !is_choice_letter((unsigned char)s[i])) return 0;
    unsigned char c = (unsigned char)s[i++];
    int closed = 0;
    if (i < len && (s[i] == ')' || s[i] == ']')) closed = 1, i++;
    if (open && !closed) return 0;
    if (i < len && is_alnum((unsigned char)s[i])) return 0;
    if (c >= 'a' && !open && i < len && !strchr(".,;:!?)\n\r*\"'", s[i])) return 0;
    out[0] = (char)to_upper(c);
    out[1] = '\0';
    return 1;
}

static int rule_hash_choice(const char *s, size_t len, char *out)
{
    for (size_t i = 0; i + 4 <= len; i++) {
        if (memcmp(s + i, "####", 4) != 0) continue;
        size_t j = i + 4;
        while (j < len && s[j] == '#') j++;
        j = skip_space(s, len, j);
        if (letter_token(s, len, j, out)) return 1;
        i = j > i ? j - 1 : i;
    }
    return 0;
}

/* The last "answer/option/choice <connector> [option|choice|letter] X". */
static int rule_answer_choice(const char *s, size_t len, char *out)
{
    static const char *const keys[] = {"answer", "option", "choice"};
    static const char *const fill[] = {"option", "choice", "letter"};
    for (size_t i = len; i-- > 0;) {
        size_t kn = 0;
        for (size_t k = 0; k < 3 && !kn; k++)
            if (word_at(s, len, i, keys[k])) kn = strlen(keys[k]);
        if (!kn) continue;
        size_t j = answer_connector(s, len, i + kn);
        if (!j) continue;
        while (j < len && (is_hspace((unsigned char)s[j]) || s[j] == '*' || s[j] == ':')) j++;
        for (size_t f = 0; f < 3; f++) {
            size_t n = strlen(fill[f]);
            if (match_ci(s, len, j, fill[f]) && (j + n >= len || !is_alpha((unsigned char)s[j + n]))) {
                j += n;
                while (j < len && (is_hspace((unsigned char)s[j]) || s[j] == ':')) j++;
                break;
            }
        }
        if (letter_token(s, len, j, out)) return 1;
    }
    return 0;
}

/* The last line that is only a letter: "B", "(B)", "B.", "**B**". */
static int rule_lone_letter(const char *s, size_t len, char *out)
{
    size_t e = len;
    while (e > 0) {
        size_t b = e;
        while (b > 0 && s[b - 1] != '\n') b--;
        size_t x = b, y = e;
        while (x < y && (is_space((unsigned char)s[x]) || s[x] == '*')) x++;
        while (y > x && (is_space((unsigned char)s[y - 1]) || s[y - 1] == '*' || s[y - 1] == '.'))
            y--;
        size_t n = y - x;
        const char *p = s + x;
        unsigned char c = 0;
        if (n == 1) c = (unsigned char)p[0];
        else if (n == 2 && p[1] == ')') c = (unsigned char)p[0];
        else if (n == 3 && (p[0] == '(' || p[0] == '[') && (p[2] == ')' || p[2] == ']'))
            c = (unsigned char)p[1];
        if (c && is_choice_letter(c)) {
            out[0] = (char)to_upper(c);
            out[1] = '\0';
            return 1;
        }
        e = b > 0 ? b - 1 : 0;
    }
    return 0;
}

static int extract_choice(const char *s, size_t len, char *out)
{
    return rule_hash_choice(s, len, out) || rule_answer_choice(s, len, out) ||
           rule_lone_letter(s, len, out);
}

/* ------------------------------------------------------------------------ */
/* Public                                                                    */
/* ------------------------------------------------------------------------ */

const char *qeil_answer_mode_name(qeil_answer_mode m)
{
    switch (m) {
    case QEIL_ANSWER_NUMERIC: return "numeric";
    case QEIL_ANSWER_CHOICE: return "choice";
    }
    return "?";
}

qeil_status qeil_answer_extract(qeil_ctx *ctx, qeil_answer_mode mode, const char *text, size_t len,
                                qeil_answer *out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "answer_extract: out is NULL");
    memset(out, 0, sizeof *out);
    if (!text && len) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "answer_extract: text is NULL, len %zu", len);
    if (mode != QEIL_ANSWER_NUMERIC && mode != QEIL_ANSWER_CHOICE)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "mode: %d is not numeric (0) or choice (1)", (int)mode);
    if (len > QEIL_ANSWER_MAX_TEXT)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "text_len: %zu bytes is outside 0..%u", len,
                             (unsigned)QEIL_ANSWER_MAX_TEXT);
    if (!len) return QEIL_OK;
    out->has = mode == QEIL_ANSWER_NUMERIC ? extract_numeric(text, len, out->text)
                                           : extract_choice(text, len, out->text);
    if (!out->has) out->text[0] = '\0';
    return QEIL_OK;
}

qeil_status qeil_answer_normalize(qeil_ctx *ctx, qeil_answer_mode mode, const char *ref,
                                  qeil_answer *out)
{
    if (!out || !ref) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "answer_normalize: NULL argument");
    memset(out, 0, sizeof *out);
    size_t len = strnlen(ref, QEIL_ANSWER_MAX_TEXT + 1);
    if (len > QEIL_ANSWER_MAX_TEXT)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "reference answer: longer than %u bytes",
                             (unsigned)QEIL_ANSWER_MAX_TEXT);
    size_t b = 0, e = len;
    while (b < e && is_space((unsigned char)ref[b])) b++;
    while (e > b && is_space((unsigned char)ref[e - 1])) e--;
    if (mode == QEIL_ANSWER_NUMERIC) {
        num_tok t;
        if (number_right_here(ref, e, b, e, &t) && t.start == b && t.end == e) {
            out->has = 1;
            memcpy(out->text, t.text, sizeof t.text);
            return QEIL_OK;
        }
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "reference answer: '%.*s' is not one number",
                             (int)(e - b > 64 ? 64 : e - b), ref + b);
    }
    if (mode == QEIL_ANSWER_CHOICE) {
        char c[2];
        size_t n = e - b;
        if ((n == 1 || n == 3) && letter_token(ref, e, b, c) &&
            (n == 1 || ref[b] == '(' || ref[b] == '[')) {
            out->has = 1;
            out->text[0] = c[0];
            out->text[1] = '\0';
            return QEIL_OK;
        }
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "reference answer: '%.*s' is not one letter A-H",
                             (int)(n > 64 ? 64 : n), ref + b);
    }
    return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "mode: %d is not numeric (0) or choice (1)", (int)mode);
}

int qeil_answer_equal(const qeil_answer *a, const qeil_answer *b)
{
    return a && b && a->has && b->has && strcmp(a->text, b->text) == 0;
}

/* ------------------------------------------------------------------------ */
/* Repetition                                                                */
/* ------------------------------------------------------------------------ */

/* 2048 words → at most 2045 4-grams in 4096 slots: load ≤ 0.5, so linear
 * probing stays short. Degenerate loops show up within the first 2048 words
 * (a sample of a small model that loops does so long before that). */
#define REP_MAX_WORDS 2048

static uint64_t mix64(uint64_t x)
{
    /* splitmix64 finaliser: spreads word hashes over the table */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

double qeil_answer_repetition(const char *text, size_t len, uint64_t *scratch)
{
    uint64_t local[QEIL_SELECT_NGRAM_SLOTS];
    uint64_t *set = scratch ? scratch : local;
    if (!text) return 0.0;
    memset(set, 0, sizeof(uint64_t) * QEIL_SELECT_NGRAM_SLOTS);
    uint64_t w[4] = {0, 0, 0, 0};
    size_t n_words = 0, n_grams = 0, n_rep = 0, i = 0;
    while (i < len && n_words < REP_MAX_WORDS) {
        while (i < len && is_space((unsigned char)text[i])) i++;
        if (i >= len) break;
        uint64_t h = QEIL_FNV1A_BASIS; /* FNV-1a of the word, as it is scanned */
        while (i < len && !is_space((unsigned char)text[i]))
            h = qeil_fnv1a_step(h, (unsigned char)text[i++]);
        w[0] = w[1], w[1] = w[2], w[2] = w[3], w[3] = h;
        if (++n_words < 4) continue;
        uint64_t g = mix64(w[0] ^ mix64(w[1] ^ mix64(w[2] ^ mix64(w[3]))));
        if (!g) g = 1; /* 0 marks an empty slot */
        n_grams++;
        size_t slot = (size_t)(g & (QEIL_SELECT_NGRAM_SLOTS - 1));
        for (;;) {
            if (set[slot] == g) {
                n_rep++;
                break;
            }
            if (!set[slot]) {
                set[slot] = g;
                break;
            }
            slot = (slot + 1) & (QEIL_SELECT_NGRAM_SLOTS - 1);
        }
    }
    /* Fewer than 8 4-grams (11 words) is too little text to call a loop. */
    if (n_grams < 8) return 0.0;
    return (double)n_rep / (double)n_grams;
}
