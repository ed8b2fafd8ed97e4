/*
 * caption_lines.c: one caption per line as a dataset (caption_lines.h).
 */
#include "dataset/caption_lines.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: mallocCheck, set_error_in

static int blank(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

int caption_lines_parse(const char *text, size_t len, const char *source, Dataset *ds, char *err,
                        size_t err_len) {
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) text += 3, len -= 3;
    char *caption = NULL;
    size_t capacity = 0;
    long line = 0;
    for (size_t start = 0; start < len;) {
        line++;
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - start;
        if (n > 0 && text[start + n - 1] == '\r') n--;
        if (memchr(text + start, '\0', n)) {
            free(caption);
            return set_error_in(err, err_len, source, "line %ld holds a NUL byte; expected a caption of text", line);
        }
        if (!blank(text + start, n)) {
            if (n + 1 > capacity) caption = reallocCheck(caption, capacity = 2 * (n + 1));
            memcpy(caption, text + start, n);
            caption[n] = '\0';
            char id[32];
            snprintf(id, sizeof id, "%ld", line);
            dataset_item_add_caption(dataset_push_item(ds, id, id), caption);
        }
        start = end + 1;
    }
    free(caption);
    return 0;
}
