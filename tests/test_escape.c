/*
 * test_escape.c: TSV fields and JSON strings of hostile text stay one field on one line and
 * round-trip: the TSV escapes are undone by a reference decoder, the JSON strings are parsed
 * back with cJSON (an independent parser).
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util/escape.h" // defines: tsv_write_field, json_write_string

static const char *const SAMPLES[] = {
    "a plain caption", "tab\there", "new\nline", "cr\r\nlf", "back\\slash \\t not a tab",
    "\"quoted\" and 'single'", "ctrl \x01\x1f end", "UTF-8: caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x90\x95", "",
};
enum { N_SAMPLES = sizeof SAMPLES / sizeof *SAMPLES };

/* Writes through f into a string (the caller frees it). */
static char *capture(void (*f)(FILE *, const char *), const char *s) {
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    f(out, s);
    fclose(out);
    return buf;
}

/* The reference decoder of the four TSV escapes. */
static void tsv_unescape(const char *in, char *out) {
    for (; *in; in++) {
        if (*in != '\\') {
            *out++ = *in;
            continue;
        }
        in++;
        *out++ = *in == 't' ? '\t' : *in == 'n' ? '\n' : *in == 'r' ? '\r' : *in;
    }
    *out = '\0';
}

static void test_tsv_one_field_round_trip(void) {
    for (int i = 0; i < N_SAMPLES; i++) {
        char *field = capture(tsv_write_field, SAMPLES[i]);
        CHECK(!strpbrk(field, "\t\n\r"), "sample %d: a raw tab or line break in '%s'", i, field);
        char *back = malloc(strlen(field) + 1);
        tsv_unescape(field, back);
        CHECK(strcmp(back, SAMPLES[i]) == 0, "sample %d: '%s' decodes to '%s'", i, field, back);
        free(back);
        free(field);
    }
}

static void test_json_parses_back(void) {
    for (int i = 0; i < N_SAMPLES; i++) {
        char *text = capture(json_write_string, SAMPLES[i]);
        CHECK(!strpbrk(text, "\n\r\t"), "sample %d: a raw control character in %s", i, text);
        cJSON *json = cJSON_Parse(text);
        CHECK(json && cJSON_IsString(json) && strcmp(json->valuestring, SAMPLES[i]) == 0,
              "sample %d: %s does not parse back", i, text);
        cJSON_Delete(json);
        free(text);
    }
}

int main(void) {
    RUN_TEST(test_tsv_one_field_round_trip);
    RUN_TEST(test_json_parses_back);
    return test_summary();
}
