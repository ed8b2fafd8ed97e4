/*
 * synth_words.h: the word test the synthetic-world tests read captions with, written apart
 * from the generator so it can judge it.
 */
#ifndef TNG_TEST_SYNTH_WORDS_H
#define TNG_TEST_SYNTH_WORDS_H

#include <ctype.h>
#include <string.h>

/* 1 when text holds word as a whole word, in any case ("Ball," holds "ball"; "balloon" does
 * not). */
static inline int has_word(const char *text, const char *word) {
    size_t n = strlen(word);
    for (const char *p = text; (p = strcasestr(p, word)); p++) {
        int start = p == text || !isalpha((unsigned char)p[-1]);
        if (start && !isalpha((unsigned char)p[n])) return 1;
    }
    return 0;
}

#endif
