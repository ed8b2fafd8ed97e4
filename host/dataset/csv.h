/*
 * csv.h: an RFC 4180 reader over a buffer in memory, and a parser for Python list literals
 * of strings (NegBench's retrieval CSV stores each image's captions as `['a', "b's"]`).
 *
 * The reader is a pull parser: csv_next_row() returns one record at a time, its fields
 * NUL-terminated in a buffer the reader owns (valid until the next call). It accepts quoted
 * fields holding delimiters, doubled quotes and line breaks, LF or CRLF record ends, a UTF-8
 * byte order mark, and skips blank lines. Nothing here exits: malformed input returns -1 and
 * a message "source:line: what was expected, what was found", so the parser can be fuzzed.
 */
#ifndef TNG_CSV_H
#define TNG_CSV_H

#include <stddef.h>

typedef struct {
    const char *data;
    size_t size, pos;
    char delimiter;
    const char *source; /* file name for messages */
    int line;           /* 1-based line where the next record starts */
    int row_line;       /* line where the last returned record started */
    /* the last record: n_fields strings packed into text */
    char *text;
    size_t text_len, text_cap;
    size_t *field_starts;
    int n_fields, fields_cap;
    char **fields; /* n_fields pointers into text, rebuilt per record */
} CsvReader;

/* delimiter is ',' or '\t'. data need not be NUL-terminated; it must outlive the reader. */
void csv_init(CsvReader *r, const char *data, size_t size, char delimiter, const char *source);
/* Returns the field count (>= 1) of the next record, 0 at the end, -1 on malformed input. */
int csv_next_row(CsvReader *r, char *err, size_t err_len);
void csv_free(CsvReader *r);

/*
 * Parses a Python list literal of string literals: '[', zero or more 'x' or "x" separated
 * by commas (a trailing comma allowed), ']', with whitespace anywhere between tokens.
 * Escapes: \\ \' \" \n \t \r \a \b \f \v \ooo \xhh \uXXXX \UXXXXXXXX (as UTF-8) and a
 * backslash-newline continuation. Adjacent literals concatenate, as in Python.
 * On success *items is a malloc'd array of *count malloc'd strings (free with
 * csv_free_strings) and 0 is returned; on error -1 and a message naming the offset.
 */
int python_list_parse(const char *text, char ***items, int *count, char *err, size_t err_len);
void csv_free_strings(char **items, int count);

#endif
