/*
 * caption_lines.h: captions given one per line (tng_negate's standard input) read as a
 * dataset: one item per caption line, so the rest of the pipeline (loader, TNG) treats them
 * like any dataset's images.
 *
 * A line ends at '\n'; a '\r' before it (a CRLF file) and a UTF-8 byte order mark at the start
 * of the text are dropped; a last line without '\n' counts. A blank line (nothing but white
 * space) is no caption and is skipped. Each item's source id and image path are its line
 * number, counted from 1 over every line, so an id always names the line it came from. A NUL
 * byte inside a line is an error: a caption is a C string and would silently lose its rest.
 */
#ifndef TNG_CAPTION_LINES_H
#define TNG_CAPTION_LINES_H

#include <stddef.h>

#include "dataset/dataset.h" // defines: Dataset, dataset_push_item

/* Appends one item per caption line of text[0..len) to ds (start from a zeroed Dataset).
 * source names the input in messages. Returns 0, or -1 with a message naming the line. */
int caption_lines_parse(const char *text, size_t len, const char *source, Dataset *ds, char *err,
                        size_t err_len);

#endif
