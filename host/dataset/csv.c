/*
 * csv.c: the RFC 4180 pull reader and the Python list literal parser declared in csv.h.
 *
 * Both walk their input once with a cursor and copy decoded bytes into a growing buffer;
 * neither allocates per field. Every error names where it happened, because the files they
 * read (NegBench CSVs, generated datasets) are large and a bare "parse error" is useless.
 */
#include "dataset/csv.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: mallocCheck, reallocCheck

/* ----------------------------------------------------------------------------
 * CSV */

void csv_init(CsvReader *r, const char *data, size_t size, char delimiter, const char *source) {
    memset(r, 0, sizeof *r);
    r->data = data;
    r->size = size;
    r->delimiter = delimiter;
    r->source = source ? source : "<csv>";
    r->line = 1;
    if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) r->pos = 3; /* UTF-8 BOM */
}

void csv_free(CsvReader *r) {
    free(r->text);
    free(r->field_starts);
    free(r->fields);
    memset(r, 0, sizeof *r);
}

static void csv_append(CsvReader *r, char c) {
    if (r->text_len + 1 >= r->text_cap) {
        r->text_cap = r->text_cap ? 2 * r->text_cap : 256;
        r->text = reallocCheck(r->text, r->text_cap);
    }
    r->text[r->text_len++] = c;
}

static void csv_start_field(CsvReader *r) {
    if (r->n_fields == r->fields_cap) {
        r->fields_cap = r->fields_cap ? 2 * r->fields_cap : 16;
        r->field_starts = reallocCheck(r->field_starts, sizeof(size_t) * r->fields_cap);
        r->fields = reallocCheck(r->fields, sizeof(char *) * r->fields_cap);
    }
    r->field_starts[r->n_fields++] = r->text_len;
}

/* Length of the record terminator at pos (LF or CRLF), 0 if there is none. */
static int csv_line_end(const CsvReader *r, size_t pos) {
    if (pos < r->size && r->data[pos] == '\n') return 1;
    if (pos + 1 < r->size && r->data[pos] == '\r' && r->data[pos + 1] == '\n') return 2;
    if (pos + 1 == r->size && r->data[pos] == '\r') return 1; /* a final bare CR */
    return 0;
}

static int csv_error(const CsvReader *r, int line, char *err, size_t err_len, const char *fmt, ...) {
    int n = snprintf(err, err_len, "%s:%d: ", r->source, line);
    if (n < 0 || (size_t)n >= err_len) return -1;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err + n, err_len - (size_t)n, fmt, args);
    va_end(args);
    return -1;
}

/* A printable description of the byte at pos, for "found ..." in messages. */
static void describe_byte(char *out, size_t len, unsigned char c) {
    if (c >= 0x20 && c < 0x7f) snprintf(out, len, "'%c'", c);
    else snprintf(out, len, "byte 0x%02x", c);
}

int csv_next_row(CsvReader *r, char *err, size_t err_len) {
    for (int end; r->pos < r->size && (end = csv_line_end(r, r->pos)) > 0;) { /* blank lines */
        r->pos += (size_t)end;
        r->line++;
    }
    if (r->pos >= r->size) return 0;
    r->row_line = r->line;
    r->text_len = 0;
    r->n_fields = 0;
    for (;;) {
        csv_start_field(r);
        /* a delimiter may end the data: the last field is then empty */
        if (r->pos < r->size && r->data[r->pos] == '"') {
            int quote_line = r->line;
            r->pos++;
            for (;;) {
                if (r->pos >= r->size)
                    return csv_error(r, quote_line, err, err_len,
                                     "quoted field never closed (expected '\"' before end of file)");
                char c = r->data[r->pos];
                if (c == '"') {
                    if (r->pos + 1 < r->size && r->data[r->pos + 1] == '"') {
                        csv_append(r, '"');
                        r->pos += 2;
                        continue;
                    }
                    r->pos++;
                    break;
                }
                if (c == 0) return csv_error(r, r->line, err, err_len, "NUL byte inside a field");
                if (c == '\n') r->line++;
                csv_append(r, c);
                r->pos++;
            }
            int end = csv_line_end(r, r->pos);
            if (r->pos < r->size && !end && r->data[r->pos] != r->delimiter) {
                char found[16];
                describe_byte(found, sizeof found, (unsigned char)r->data[r->pos]);
                return csv_error(r, r->line, err, err_len,
                                 "expected a delimiter or end of line after a closing quote, "
                                 "found %s", found);
            }
        } else {
            while (r->pos < r->size && r->data[r->pos] != r->delimiter && !csv_line_end(r, r->pos)) {
                if (r->data[r->pos] == 0)
                    return csv_error(r, r->line, err, err_len, "NUL byte inside a field");
                csv_append(r, r->data[r->pos++]);
            }
        }
        csv_append(r, 0);
        if (r->pos >= r->size) break;
        if (r->data[r->pos] == r->delimiter) {
            r->pos++;
            continue;
        }
        r->pos += (size_t)csv_line_end(r, r->pos);
        r->line++;
        break;
    }
    for (int i = 0; i < r->n_fields; i++) r->fields[i] = r->text + r->field_starts[i];
    return r->n_fields;
}

/* ----------------------------------------------------------------------------
 * Python list literals */

typedef struct {
    const char *text;
    size_t pos;
    char *buf;
    size_t len, cap;
} PyCursor;

static void py_append(PyCursor *c, char ch) {
    if (c->len + 1 >= c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->buf = reallocCheck(c->buf, c->cap);
    }
    c->buf[c->len++] = ch;
}

static void py_append_utf8(PyCursor *c, uint32_t cp) {
    if (cp < 0x80) {
        py_append(c, (char)cp);
    } else if (cp < 0x800) {
        py_append(c, (char)(0xC0 | (cp >> 6)));
        py_append(c, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        py_append(c, (char)(0xE0 | (cp >> 12)));
        py_append(c, (char)(0x80 | ((cp >> 6) & 0x3F)));
        py_append(c, (char)(0x80 | (cp & 0x3F)));
    } else {
        py_append(c, (char)(0xF0 | (cp >> 18)));
        py_append(c, (char)(0x80 | ((cp >> 12) & 0x3F)));
        py_append(c, (char)(0x80 | ((cp >> 6) & 0x3F)));
        py_append(c, (char)(0x80 | (cp & 0x3F)));
    }
}

static void py_skip_space(PyCursor *c) {
    while (c->text[c->pos] == ' ' || c->text[c->pos] == '\t' || c->text[c->pos] == '\n' ||
           c->text[c->pos] == '\r')
        c->pos++;
}

static int hex_value(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Reads exactly `digits` hex digits into *value. Returns 0, or -1 if one is missing. */
static int py_read_hex(PyCursor *c, int digits, uint32_t *value) {
    *value = 0;
    for (int i = 0; i < digits; i++) {
        int h = hex_value(c->text[c->pos]);
        if (h < 0) return -1;
        *value = *value * 16 + (uint32_t)h;
        c->pos++;
    }
    return 0;
}

/* Decodes one escape after the backslash. Returns 0, or -1 with err set. */
static int py_escape(PyCursor *c, char *err, size_t err_len) {
    size_t at = c->pos - 1;
    char e = c->text[c->pos++];
    static const char simple_from[] = "\\'\"ntrabfv";
    static const char simple_to[] = "\\'\"\n\t\r\a\b\f\v";
    const char *hit = e ? strchr(simple_from, e) : NULL;
    if (hit) {
        py_append(c, simple_to[hit - simple_from]);
        return 0;
    }
    if (e == '\n') return 0; /* line continuation */
    if (e >= '0' && e <= '7') {
        uint32_t v = (uint32_t)(e - '0');
        for (int i = 0; i < 2 && c->text[c->pos] >= '0' && c->text[c->pos] <= '7'; i++)
            v = v * 8 + (uint32_t)(c->text[c->pos++] - '0');
        if (v == 0) {
            snprintf(err, err_len, "offset %zu: escape gives a NUL character", at);
            return -1;
        }
        py_append_utf8(c, v);
        return 0;
    }
    int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    uint32_t v;
    if (digits && py_read_hex(c, digits, &v) == 0) {
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
            snprintf(err, err_len, "offset %zu: escape gives U+%X, not a valid code point", at, v);
            return -1;
        }
        if (v == 0) {
            snprintf(err, err_len, "offset %zu: escape gives a NUL character", at);
            return -1;
        }
        py_append_utf8(c, v);
        return 0;
    }
    if (digits) {
        snprintf(err, err_len, "offset %zu: \\%c expects %d hex digits", at, e, digits);
        return -1;
    }
    /* Python keeps an unknown escape as written */
    if (e == 0) {
        snprintf(err, err_len, "offset %zu: backslash at end of input", at);
        return -1;
    }
    py_append(c, '\\');
    py_append(c, e);
    return 0;
}

/* Reads one string literal (and any adjacent ones) into c->buf. */
static int py_string(PyCursor *c, char *err, size_t err_len) {
    c->len = 0;
    while (c->text[c->pos] == '\'' || c->text[c->pos] == '"') {
        char quote = c->text[c->pos];
        size_t start = c->pos++;
        for (;;) {
            char ch = c->text[c->pos];
            if (ch == 0 || ch == '\n') {
                snprintf(err, err_len, "offset %zu: string literal never closed (expected %c)",
                         start, quote);
                return -1;
            }
            c->pos++;
            if (ch == quote) break;
            if (ch == '\\') {
                if (py_escape(c, err, err_len) != 0) return -1;
            } else {
                py_append(c, ch);
            }
        }
        py_skip_space(c);
    }
    py_append(c, 0);
    return 0;
}

void csv_free_strings(char **items, int count) {
    for (int i = 0; i < count; i++) free(items[i]);
    free(items);
}

int python_list_parse(const char *text, char ***items, int *count, char *err, size_t err_len) {
    PyCursor c = {.text = text};
    char **list = NULL;
    int n = 0, cap = 0;
    *items = NULL;
    *count = 0;
    py_skip_space(&c);
    if (text[c.pos] != '[') {
        snprintf(err, err_len, "offset %zu: expected '[' to open a list, found %s", c.pos,
                 text[c.pos] ? "another character" : "end of text");
        goto fail;
    }
    c.pos++;
    for (;;) {
        py_skip_space(&c);
        if (text[c.pos] == ']') break;
        if (text[c.pos] != '\'' && text[c.pos] != '"') {
            snprintf(err, err_len, "offset %zu: expected a quoted string or ']', found %s", c.pos,
                     text[c.pos] ? "another character" : "end of text");
            goto fail;
        }
        if (py_string(&c, err, err_len) != 0) goto fail;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            list = reallocCheck(list, sizeof(char *) * cap);
        }
        list[n++] = strdupCheck(c.buf);
        if (text[c.pos] == ',') {
            c.pos++;
            continue;
        }
        if (text[c.pos] != ']') {
            snprintf(err, err_len, "offset %zu: expected ',' or ']' after a string", c.pos);
            goto fail;
        }
        break;
    }
    c.pos++;
    py_skip_space(&c);
    if (text[c.pos] != 0) {
        snprintf(err, err_len, "offset %zu: unexpected text after the closing ']'", c.pos);
        goto fail;
    }
    free(c.buf);
    *items = list;
    *count = n;
    return 0;
fail:
    free(c.buf);
    csv_free_strings(list, n);
    return -1;
}
