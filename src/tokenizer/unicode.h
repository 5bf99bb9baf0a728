/*
 * unicode.h — the little Unicode the tokenizer needs (internal): strict
 * UTF-8 decoding (invalid bytes come back one at a time, so text is never
 * rejected) and the general-category classes the pre-tokenizer regexes use
 * (\p{L}, \p{N}, \s). Tables: src/tokenizer/unicode.c; coverage: docs/tokenizer.md.
 */
#ifndef QEIL_ENGINE_UNICODE_H
#define QEIL_ENGINE_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Code point reported for a byte that does not start a valid UTF-8 sequence. */
#define QEIL_UTF8_INVALID 0xFFFFFFFFu

/* Decode the character at s[0..n). Returns the bytes it takes (1..4; 0 when
 * n == 0). A byte that does not start a well-formed sequence (bad lead or
 * continuation byte, overlong form, surrogate, above U+10FFFF, truncated)
 * takes 1 byte and gives *cp = QEIL_UTF8_INVALID. */
size_t qeil_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Encode cp (<= U+10FFFF) into out; returns the length (1..4), 0 if cp is
 * out of range. Surrogates are encoded as-is (the caller never asks). */
size_t qeil_utf8_encode(uint32_t cp, uint8_t out[4]);

typedef enum {
    QEIL_UCAT_OTHER = 0, /* everything else: P, S, M, C, Z other than \s, invalid bytes */
    QEIL_UCAT_LETTER,    /* \p{L}: Lu Ll Lt Lm Lo */
    QEIL_UCAT_NUMBER,    /* \p{N}: Nd Nl No */
    QEIL_UCAT_SPACE      /* \s: the Unicode White_Space property */
} qeil_ucat;

qeil_ucat qeil_unicode_category(uint32_t cp);

#endif /* QEIL_ENGINE_UNICODE_H */
