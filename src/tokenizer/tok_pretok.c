/*
 * tok_pretok.c — the pre-tokenizer splits of byte-level BPE models, written
 * as small hand state machines instead of a regex engine. Each function
 * returns where the regex match starting at position i ends, reproducing a
 * backtracking engine (PCRE, Oniguruma, Python re): alternatives are tried
 * in order, quantifiers are greedy and give back characters only when a
 * later part fails. The regexes, and why each branch below stands for which
 * alternative, are spelled out in docs/tokenizer.md.
 *
 * Invalid UTF-8 bytes are single "other" characters, so every byte of the
 * input belongs to exactly one piece and the pieces concatenate back to the
 * input.
 */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

/* The character at s[i]: code point, length in bytes, category. Past the
 * end: len 0 and category -1, which matches no class. */
typedef struct {
    uint32_t cp;
    size_t len;
    int cat;
} uchar;

static uchar char_at(const uint8_t *s, size_t n, size_t i)
{
    uchar c = {0, 0, -1};
    if (i >= n) return c;
    c.len = qeil_utf8_decode(s + i, n - i, &c.cp);
    c.cat = (int)qeil_unicode_category(c.cp);
    return c;
}

/* End of the run of characters of category cat starting at i. */
static size_t run_of(const uint8_t *s, size_t n, size_t i, int cat)
{
    for (;;) {
        uchar c = char_at(s, n, i);
        if (c.cat != cat) return i;
        i += c.len;
    }
}

/* 's|'t|'re|'ve|'m|'ll|'d at i (s[i] is the apostrophe): length or 0.
 * icase: the (?i:...) of Llama-3/Qwen2, ASCII case folding only. */
static size_t contraction(const uint8_t *s, size_t n, size_t i, int icase)
{
    if (i + 1 >= n) return 0;
    uint8_t a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
    if (icase) {
        if (a >= 'A' && a <= 'Z') a = (uint8_t)(a + 32);
        if (b >= 'A' && b <= 'Z') b = (uint8_t)(b + 32);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* \s+(?!\S)|\s+ at i (s[i] is white space). The greedy \s+ takes the whole
 * run; if a non-space follows, the look-ahead makes it give back the last
 * white-space character (which then leads the next piece, e.g. " world"),
 * unless that would leave nothing, when plain \s+ takes the run. */
static size_t space_run(const uint8_t *s, size_t n, size_t i)
{
    size_t e = i, last = i;
    for (;;) {
        uchar c = char_at(s, n, e);
        if (c.cat != QEIL_UCAT_SPACE) break;
        last = e;
        e += c.len;
    }
    if (e >= n) return n;
    return last > i ? last : e;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t next_gpt2(const uint8_t *s, size_t n, size_t i)
{
    uchar c = char_at(s, n, i);
    if (c.cp == '\'') {
        size_t k = contraction(s, n, i, 0);
        if (k) return i + k;
    }
    /* " ?X+" for X = letter, number, other: an optional ASCII space, then a
     * run of one class; the class is that of the first non-space char. */
    size_t j = i;
    uchar d = c;
    if (c.cp == ' ') {
        uchar nx = char_at(s, n, i + 1);
        if (nx.cat == QEIL_UCAT_LETTER || nx.cat == QEIL_UCAT_NUMBER || nx.cat == QEIL_UCAT_OTHER) {
            j = i + 1;
            d = nx;
        }
    }
    if (d.cat != QEIL_UCAT_SPACE) return run_of(s, n, j, d.cat);
    return space_run(s, n, i);
}

/* Llama-3 (max_digits 3) and Qwen2 (max_digits 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t next_llama3(const uint8_t *s, size_t n, size_t i, int max_digits)
{
    uchar c = char_at(s, n, i);
    if (c.cp == '\'') {
        size_t k = contraction(s, n, i, 1);
        if (k) return i + k;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (c.cat == QEIL_UCAT_LETTER) return run_of(s, n, i, QEIL_UCAT_LETTER);
    if (c.cp != '\r' && c.cp != '\n' && c.cat != QEIL_UCAT_NUMBER) {
        uchar nx = char_at(s, n, i + c.len);
        if (nx.cat == QEIL_UCAT_LETTER) return run_of(s, n, i + c.len, QEIL_UCAT_LETTER);
    }
    /* \p{N}{1,D} */
    if (c.cat == QEIL_UCAT_NUMBER) {
        size_t j = i;
        for (int k = 0; k < max_digits; k++) {
            uchar d = char_at(s, n, j);
            if (d.cat != QEIL_UCAT_NUMBER) break;
            j += d.len;
        }
        return j;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t j = i;
    if (c.cp == ' ' && char_at(s, n, i + 1).cat == QEIL_UCAT_OTHER) j = i + 1;
    if (char_at(s, n, j).cat == QEIL_UCAT_OTHER) {
        j = run_of(s, n, j, QEIL_UCAT_OTHER);
        while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    /* Only white space is left. \s*[\r\n]+: \s* backs off from the end of
     * the run to its last \r or \n, which [\r\n]+ then takes (the run holds
     * no \r\n after it, so the match ends just past it). */
    size_t e = i, nl = n;
    for (;;) {
        uchar d = char_at(s, n, e);
        if (d.cat != QEIL_UCAT_SPACE) break;
        if (d.cp == '\r' || d.cp == '\n') nl = e;
        e += d.len;
    }
    if (nl != n) return nl + 1;
    return space_run(s, n, i);
}

size_t qeil_pretok_next(qeil_pretok pre, const uint8_t *s, size_t n, size_t i)
{
    if (i >= n) return n;
    switch (pre) {
    case QEIL_PRE_LLAMA3: return next_llama3(s, n, i, 3);
    case QEIL_PRE_QWEN2: return next_llama3(s, n, i, 1);
    case QEIL_PRE_GPT2:
    default: return next_gpt2(s, n, i);
    }
}
