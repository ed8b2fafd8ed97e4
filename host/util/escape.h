/*
 * escape.h: writing arbitrary text as one TSV field or one JSON string.
 *
 * User text (a caption, a --text argument) may hold tabs, newlines and backslashes, which
 * would add fields or lines to tab-separated output. TSV fields are escaped the way
 * PostgreSQL's text COPY format and the "linear TSV" convention do: \t, \n, \r and \\ for a
 * tab, newline, carriage return and backslash, everything else as is; so one input is always
 * one field on one line, and the original is recovered by undoing those four escapes.
 * JSON strings follow RFC 8259: ", \ and control characters escaped, UTF-8 passed through.
 */
#ifndef TNG_ESCAPE_H
#define TNG_ESCAPE_H

#include <stdio.h>

/* s as one TSV field (no surrounding tab). */
void tsv_write_field(FILE *out, const char *s);
/* s as one JSON string, quotes included. */
void json_write_string(FILE *out, const char *s);

#endif
