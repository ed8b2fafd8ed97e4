/*
 * words.c: caption words (words.h).
 */
#include "text/words.h"

#include <ctype.h>

static int letter(unsigned char c) { return isalpha(c) || c >= 0x80; }

int word_next(const char *text, size_t len, size_t *at, Word *w) {
    size_t i = *at;
    while (i < len && !letter((unsigned char)text[i])) i++;
    if (i == len) {
        *at = i;
        return 0;
    }
    w->start = i;
    w->plain = 1;
    size_t n = 0;
    for (; i < len && letter((unsigned char)text[i]); i++, n++) {
        if ((unsigned char)text[i] >= 0x80) w->plain = 0;
        else if (n < WORD_MAX - 1) w->lower[n] = (char)tolower((unsigned char)text[i]);
    }
    if (n >= WORD_MAX) w->plain = 0;
    w->lower[w->plain ? n : 0] = '\0';
    w->end = i;
    *at = i;
    return 1;
}

int words_adjacent(const char *text, size_t from, size_t to) {
    for (size_t i = from; i < to; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '-') return 0;
    return 1;
}
