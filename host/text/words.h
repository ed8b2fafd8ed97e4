/*
 * words.h: the words of a caption as the TNG generator reads them: maximal runs of letters,
 * lower-cased, with where each one lies in the text.
 *
 * A byte >= 0x80 counts as a letter, so a word with non-ASCII letters stays whole ("café"
 * never yields "caf") and is marked as no lexicon word. Everything else (digits, punctuation,
 * white space, the apostrophe of "man's") separates words.
 */
#ifndef TNG_WORDS_H
#define TNG_WORDS_H

#include <stddef.h>

enum { WORD_MAX = 64 };

typedef struct {
    size_t start, end;    /* the word is text[start, end) */
    int plain;            /* 1: ASCII letters only and shorter than WORD_MAX: lower is set */
    char lower[WORD_MAX]; /* the word lower-cased, NUL-terminated (when plain) */
} Word;

/* The next word of text[0, len) at or after *at; returns 0 at the end. *at moves past it. */
int word_next(const char *text, size_t len, size_t *at, Word *w);

/* 1 when text[from, to) holds nothing but spaces, tabs and hyphens: two words so separated
 * are adjacent ("decker bus", "double-decker"), unlike "bus, car" or "man's hat". */
int words_adjacent(const char *text, size_t from, size_t to);

#endif
