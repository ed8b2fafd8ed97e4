/*
 * cli.c: parsing, defaults and --help from one CliOption array (cli.h).
 *
 * A default goes through the very parser a typed value goes through, so a default that the
 * option would refuse is caught the first time the program runs, not silently used.
 */
#include "util/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: die, callocCheck, mallocCheck

const char cli_initial[] = "(the field's initial value)";

/* getopt_long returns this plus the row's index for an option without a short name. */
enum { LONG_ONLY_BASE = 1000, SHOWN_DEFAULT = 64 };

void *cli_field(const CliOption *opt, void *args) { return (char *)args + opt->offset; }

void cli_fail(const CliProgram *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see %s --help)\n", prog->name);
    va_end(ap);
    exit(2);
}

/* The index of value among the row's choices, or exit 2 listing them. */
static int choice(const CliProgram *prog, const CliOption *opt, const char *value) {
    for (int i = 0; i < opt->n_choices; i++)
        if (strcmp(value, opt->choices[i]) == 0) return i;
    fprintf(stderr, "%s: --%s does not accept '%s'; choose one of:", prog->name, opt->name, value);
    for (int i = 0; i < opt->n_choices; i++) fprintf(stderr, " %s", opt->choices[i]);
    fprintf(stderr, "\n");
    exit(2);
}

double cli_number(const CliProgram *prog, const CliOption *opt, const char *value, double min,
                  double max) {
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !(v >= min && v <= max))
        cli_fail(prog, "--%s expects a number in [%g, %g], got '%s'", opt->name, min, max, value);
    return v;
}

static long long whole_number(const CliProgram *prog, const CliOption *opt, const char *value) {
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || v < opt->min || v > opt->max)
        cli_fail(prog, "--%s expects a whole number in [%lld, %lld], got '%s'", opt->name, opt->min,
                 opt->max, value);
    return v;
}

static uint64_t unsigned_number(const CliProgram *prog, const CliOption *opt, const char *value) {
    char *end;
    errno = 0;
    const char *digits = value + strspn(value, " \t");
    uint64_t v = strtoull(value, &end, 10); /* strtoull would take "-1" as 2^64 - 1 */
    if (errno || end == value || *end || *digits == '-' || v > opt->umax)
        cli_fail(prog, "--%s expects a whole number in [0, %" PRIu64 "], got '%s'", opt->name,
                 opt->umax, value);
    return v;
}

/* Stores one option's value (the default or the command line's) into args. */
static void set_value(const CliProgram *prog, const CliOption *opt, const char *value, void *args) {
    void *field = cli_field(opt, args);
    switch (opt->type) {
    case CLI_TYPE_FLAG: *(int *)field = opt->set_to; break;
    case CLI_TYPE_STRING: *(const char **)field = value; break;
    case CLI_TYPE_INT: *(int *)field = (int)whole_number(prog, opt, value); break;
    case CLI_TYPE_LONG: *(long *)field = (long)whole_number(prog, opt, value); break;
    case CLI_TYPE_U64: *(uint64_t *)field = unsigned_number(prog, opt, value); break;
    case CLI_TYPE_FLOAT: *(float *)field = (float)cli_number(prog, opt, value, opt->fmin, opt->fmax); break;
    case CLI_TYPE_DOUBLE: *(double *)field = cli_number(prog, opt, value, opt->fmin, opt->fmax); break;
    case CLI_TYPE_CHOICE: *(int *)field = choice(prog, opt, value); break;
    case CLI_TYPE_CUSTOM: opt->parse(prog, opt, value, args); break;
    case CLI_TYPE_HELP: break; /* handled by the caller */
    }
}

/* The default --help shows for a row (into out[SHOWN_DEFAULT]), "" for none. */
static void shown_default(const CliOption *opt, void *args, char *out) {
    out[0] = 0;
    if (!opt->default_text) return;
    if (opt->default_text != cli_initial) {
        snprintf(out, SHOWN_DEFAULT, "%s", opt->default_text);
        return;
    }
    void *field = cli_field(opt, args);
    switch (opt->type) {
    case CLI_TYPE_STRING:
        if (*(const char **)field) snprintf(out, SHOWN_DEFAULT, "%s", *(const char **)field);
        break;
    case CLI_TYPE_INT: snprintf(out, SHOWN_DEFAULT, "%d", *(int *)field); break;
    case CLI_TYPE_LONG: snprintf(out, SHOWN_DEFAULT, "%ld", *(long *)field); break;
    case CLI_TYPE_U64: snprintf(out, SHOWN_DEFAULT, "%" PRIu64, *(uint64_t *)field); break;
    case CLI_TYPE_FLOAT: snprintf(out, SHOWN_DEFAULT, "%g", (double)*(float *)field); break;
    case CLI_TYPE_DOUBLE: snprintf(out, SHOWN_DEFAULT, "%g", *(double *)field); break;
    case CLI_TYPE_CHOICE: {
        int k = *(int *)field;
        if (k < 0 || k >= opt->n_choices) die("cli: --%s starts at choice %d of %d", opt->name, k, opt->n_choices);
        snprintf(out, SHOWN_DEFAULT, "%s", opt->choices[k]);
        break;
    }
    default: die("cli: --%s cannot show its initial value as a default", opt->name);
    }
}

/* "-o, --out DIR" (or "--out DIR", indented to line up with the short forms when there are). */
static void option_label(const CliOption *opt, int any_short, char *out, size_t len) {
    char alias[8] = "";
    if (opt->short_name) snprintf(alias, sizeof alias, "-%c, ", opt->short_name);
    else if (any_short) snprintf(alias, sizeof alias, "    ");
    snprintf(out, len, "%s--%s%s%s", alias, opt->name, opt->metavar ? " " : "",
             opt->metavar ? opt->metavar : "");
}

static void print_usage(const CliProgram *prog, char (*shown)[SHOWN_DEFAULT], FILE *out) {
    fprintf(out, "usage: %s %s\n\n%s\n\noptions:\n", prog->name, prog->synopsis, prog->summary);
    int any_short = 0, width = 0;
    for (int i = 0; i < prog->n_options; i++) any_short |= prog->options[i].short_name != 0;
    char label[256];
    for (int i = 0; i < prog->n_options; i++) {
        option_label(&prog->options[i], any_short, label, sizeof label);
        if ((int)strlen(label) > width) width = (int)strlen(label);
    }
    for (int i = 0; i < prog->n_options; i++) {
        option_label(&prog->options[i], any_short, label, sizeof label);
        fprintf(out, "  %-*s  %s", width, label, prog->options[i].help);
        if (shown[i][0]) fprintf(out, " (default %s)", shown[i]);
        fputc('\n', out);
    }
}

void cli_parse(const CliProgram *prog, int argc, char **argv, void *args, int *seen) {
    int n = prog->n_options;
    char (*shown)[SHOWN_DEFAULT] = mallocCheck(sizeof(*shown) * (size_t)n);
    struct option *table = callocCheck((size_t)n + 1, sizeof(struct option));
    char *short_names = mallocCheck(2 * (size_t)n + 1), *s = short_names;
    for (int i = 0; i < n; i++) {
        const CliOption *opt = &prog->options[i];
        if (opt->id != i) die("cli: %s's option --%s is row %d but has id %d", prog->name, opt->name, i, opt->id);
        if (!opt->metavar != (opt->type == CLI_TYPE_FLAG || opt->type == CLI_TYPE_HELP))
            die("cli: --%s: only flags and --help take no value", opt->name);
        if (opt->default_text && opt->default_text != cli_initial) set_value(prog, opt, opt->default_text, args);
        shown_default(opt, args, shown[i]);
        table[i] = (struct option){opt->name, opt->metavar ? required_argument : no_argument, NULL,
                                   opt->short_name ? opt->short_name : LONG_ONLY_BASE + i};
        if (opt->short_name) {
            *s++ = opt->short_name;
            if (opt->metavar) *s++ = ':';
        }
        if (seen) seen[i] = 0;
    }
    *s = 0;
    for (int code; (code = getopt_long(argc, argv, short_names, table, NULL)) != -1;) {
        int i = code >= LONG_ONLY_BASE ? code - LONG_ONLY_BASE : -1;
        for (int k = 0; k < n && i < 0; k++)
            if (code == prog->options[k].short_name) i = k;
        if (i < 0) { /* getopt has named the problem */
            print_usage(prog, shown, stderr);
            exit(2);
        }
        if (prog->options[i].type == CLI_TYPE_HELP) {
            print_usage(prog, shown, stdout);
            exit(0);
        }
        set_value(prog, &prog->options[i], optarg, args);
        if (seen) seen[i]++;
    }
    if (optind < argc) cli_fail(prog, "unexpected argument '%s'", argv[optind]);
    free(shown);
    free(table);
    free(short_names);
}
