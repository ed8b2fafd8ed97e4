/*
 * clean.h: the text cleaning open_clip's tokenizer applies before it splits a text into
 * pieces (ftfy.fix_text, html.unescape twice, whitespace collapsed, str.lower()), plus the
 * UTF-8 and str.isspace() helpers the tokenizer's pre-tokeniser shares with it. Python's
 * definitions throughout: the point is the same ids as open_clip, so "clean" means what
 * Python and ftfy do, not what Unicode might recommend.
 */
#ifndef TNG_CLEAN_H
#define TNG_CLEAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Cleans text[0..len) (UTF-8; invalid bytes become U+FFFD) into UTF-8 with no terminator.
 * Returns buf when the result fits in buf_len bytes and needed no Unicode processing (plain
 * ASCII, the common caption), else a malloc'd buffer the caller frees (result != buf).
 * *out_len receives the cleaned length. */
uint8_t *text_clean(const uint8_t *text, size_t len, uint8_t *buf, size_t buf_len, size_t *out_len);

/* Decodes one code point from s[0..n), n >= 1. Ill-formed input yields U+FFFD and consumes
 * the maximal ill-formed prefix (at least one byte): the rule CPython's errors='replace'
 * follows. Returns the bytes consumed. */
size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *out);
/* Writes c as 1-4 UTF-8 bytes into out; returns how many. */
size_t utf8_encode(uint32_t c, uint8_t *out);
/* Python's str.isspace() for one code point. */
bool py_isspace(uint32_t c);

#endif
