/*
 * words.c: caption words (words.h).
 */
#include "text/words.h"

#include <ctype.h>

static int letter(unsigned char c) { return isalpha(c) || c >= 0x80; }

int word_next(const char *text, size_t *at, Word *w) {
    size_t i = *at;
    while (text[i] && !letter((unsigned char)text[i])) i++;
    if (!text[i]) {
        *at = i;
        return 0;
    }
    w->start = i;
    w->plain = 1;
    size_t len = 0;
    for (; text[i] && letter((unsigned char)text[i]); i++, len++) {
        if ((unsigned char)text[i] >= 0x80) w->plain = 0;
        else if (len < WORD_MAX - 1) w->lower[len] = (char)tolower((unsigned char)text[i]);
    }
    if (len >= WORD_MAX) w->plain = 0;
    w->lower[w->plain ? len : 0] = '\0';
    w->end = i;
    *at = i;
    return 1;
}

int words_adjacent(const char *text, size_t from, size_t to) {
    for (size_t i = from; i < to; i++)
        if (text[i] != ' ' && text[i] != '\t') return 0;
    return 1;
}
