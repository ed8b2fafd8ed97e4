/*
 * cli.c: option tables and usage text from one CliOption array (cli.h).
 */
#include "util/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

struct option *cli_getopt_table(const CliOption *opts, int n) {
    struct option *table = callocCheck((size_t)n + 1, sizeof(struct option));
    for (int i = 0; i < n; i++) {
        table[i].name = opts[i].name;
        table[i].has_arg = opts[i].metavar ? required_argument : no_argument;
        table[i].val = CLI_OPTION_BASE + i;
    }
    return table;
}

void cli_usage(FILE *out, const char *prog, const char *synopsis, const char *summary,
               const CliOption *opts, int n) {
    fprintf(out, "usage: %s %s\n\n%s\n\noptions:\n", prog, synopsis, summary);
    int width = 0;
    for (int i = 0; i < n; i++) {
        int w = (int)strlen(opts[i].name) + (opts[i].metavar ? 1 + (int)strlen(opts[i].metavar) : 0);
        if (w > width) width = w;
    }
    for (int i = 0; i < n; i++) {
        char left[256];
        snprintf(left, sizeof left, "%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
                 opts[i].metavar ? opts[i].metavar : "");
        fprintf(out, "  --%-*s  %s\n", width, left, opts[i].help);
    }
}

long cli_long(const char *option, const char *value, long min, long max) {
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < min || v > max) {
        fprintf(stderr, "tng: --%s expects a whole number in [%ld, %ld], got '%s'\n", option, min,
                max, value);
        exit(2);
    }
    return v;
}

double cli_double(const char *option, const char *value, double min, double max) {
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !(v >= min && v <= max)) {
        fprintf(stderr, "tng: --%s expects a number in [%g, %g], got '%s'\n", option, min, max,
                value);
        exit(2);
    }
    return v;
}
