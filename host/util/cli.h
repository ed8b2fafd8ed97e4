/*
 * cli.h: command-line options as data, one row per option.
 *
 * A program lists its options once, as X-macro rows:
 *
 *   #define EVAL_OPTIONS(X)                                                                  \
 *       X(BATCH, 0, "batch", "N", "64", CLI_INT(batch, 1, 4096), "texts per forward pass")  \
 *       X(QUIET, 0, "quiet", NULL, NULL, CLI_FLAG(quiet, 1), "no progress lines")
 *
 *   X(ID, SHORT, NAME, METAVAR, DEFAULT, TYPE, HELP)
 *     ID       the option's enum name: CLI_ENUM_ROW makes OPT_BATCH, ... from the rows
 *     SHORT    a one-letter alias ('o' for -o), or 0
 *     NAME     the long name, --NAME
 *     METAVAR  the value's name in --help, NULL for an option without a value
 *     DEFAULT  the default as it would be typed: parsed into the field like a given value
 *              (so it passes the same checks) and shown by --help as "(default DEFAULT)";
 *              NULL: none; CLI_INITIAL: the value the field already holds (a library's own
 *              default, e.g. synth_config_default), formatted for --help
 *     TYPE     where the value goes and how it is checked (the CLI_* specs below)
 *     HELP     one line, without the default
 *
 * Then, with CLI_ARGS defined as the program's options struct (each TYPE names a field of it,
 * checked at compile time to have the type the spec writes):
 *
 *   enum { EVAL_OPTIONS(CLI_ENUM_ROW) N_OPTIONS };  // OPT_BATCH, ...: ids for seen[] and parsers
 *   #define CLI_ARGS EvalArgs
 *   CLI_PROGRAM(EVAL_OPTIONS, "tng_eval", "--model DIR ...", "Evaluates ...");
 *
 * CLI_PROGRAM makes the CliOption array OPTIONS and the CliProgram PROGRAM. The getopt table,
 * the usage text and the defaults all come from that one array, so --help cannot disagree
 * with the parser, and nothing is matched by position.
 */
#ifndef TNG_CLI_H
#define TNG_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    CLI_TYPE_HELP,   /* no value: prints the usage on stdout and exits 0 */
    CLI_TYPE_FLAG,   /* no value: int field = set_to */
    CLI_TYPE_STRING, /* const char * field = the value */
    CLI_TYPE_INT,    /* int field: a whole number in [min, max] */
    CLI_TYPE_LONG,   /* long field: a whole number in [min, max] */
    CLI_TYPE_U64,    /* uint64_t field: a whole number in [0, umax] */
    CLI_TYPE_FLOAT,  /* float field: a number in [fmin, fmax] */
    CLI_TYPE_DOUBLE, /* double field: a number in [fmin, fmax] */
    CLI_TYPE_CHOICE, /* int or enum field: the index of the value in choices */
    CLI_TYPE_CUSTOM, /* parse() does the work */
} CliType;

typedef struct CliOption CliOption;
typedef struct CliProgram CliProgram;
/* A custom option's parser: stores value into args, the whole options struct, or reports a
 * bad value with cli_fail (cli_number helps). */
typedef void (*CliParseFn)(const CliProgram *prog, const CliOption *opt, const char *value, void *args);

struct CliOption {
    int id;              /* OPT_<ID> */
    char short_name;     /* 0: none */
    const char *name;    /* without the dashes */
    const char *metavar; /* NULL: takes no value */
    const char *default_text;
    const char *help;
    CliType type;
    size_t offset; /* of the field in the options struct */
    int set_to;    /* CLI_FLAG */
    long long min, max;
    uint64_t umax;
    double fmin, fmax;
    const char *const *choices;
    int n_choices;
    CliParseFn parse;
};

/* DEFAULT: the field's value before parsing, shown formatted (see above). */
extern const char cli_initial[];
#define CLI_INITIAL cli_initial

/* The field of the options struct CLI_ARGS; a compile error unless its type is one listed. */
#define CLI_FIELD(field, ...) \
    (offsetof(CLI_ARGS, field) + _Generic(((CLI_ARGS *)0)->field, __VA_ARGS__))

#define CLI_HELP .type = CLI_TYPE_HELP
#define CLI_FLAG(field, value) .type = CLI_TYPE_FLAG, .offset = CLI_FIELD(field, int: 0), .set_to = (value)
#define CLI_STRING(field) .type = CLI_TYPE_STRING, .offset = CLI_FIELD(field, const char *: 0)
#define CLI_INT(field, lo, hi) .type = CLI_TYPE_INT, .offset = CLI_FIELD(field, int: 0), .min = (lo), .max = (hi)
#define CLI_LONG(field, lo, hi) .type = CLI_TYPE_LONG, .offset = CLI_FIELD(field, long: 0), .min = (lo), .max = (hi)
#define CLI_U64(field, hi) .type = CLI_TYPE_U64, .offset = CLI_FIELD(field, uint64_t: 0), .umax = (hi)
#define CLI_FLOAT(field, lo, hi) .type = CLI_TYPE_FLOAT, .offset = CLI_FIELD(field, float: 0), .fmin = (lo), .fmax = (hi)
#define CLI_DOUBLE(field, lo, hi) .type = CLI_TYPE_DOUBLE, .offset = CLI_FIELD(field, double: 0), .fmin = (lo), .fmax = (hi)
/* names: an array of strings (not a pointer), so its length is known here */
#define CLI_CHOICE(field, names)                                                       \
    .type = CLI_TYPE_CHOICE, .offset = CLI_FIELD(field, int: 0, unsigned int: 0),      \
    .choices = (names), .n_choices = (int)(sizeof(names) / sizeof((names)[0]))
/* fn stores the value into the field (of type ctype; cli_field finds it) or anywhere else in
 * the struct; a custom row's default is shown only as written (not CLI_INITIAL) */
#define CLI_CUSTOM(field, ctype, fn) .type = CLI_TYPE_CUSTOM, .offset = CLI_FIELD(field, ctype: 0), .parse = (fn)

/* The rows' expansions: the enum of option ids, and the CliOption array. */
#define CLI_ENUM_ROW(id_, short_name_, name_, metavar_, default_text_, type_, help_) OPT_##id_,
#define CLI_TABLE_ROW(id_, short_name_, name_, metavar_, default_text_, type_, help_)         \
    {.id = OPT_##id_, .short_name = (short_name_), .name = (name_), .metavar = (metavar_), \
     .default_text = (default_text_), .help = (help_), type_},

struct CliProgram {
    const char *name;     /* the program, as messages and --help name it */
    const char *synopsis; /* what follows the name in "usage: NAME SYNOPSIS" */
    const char *summary;  /* a paragraph for --help */
    const CliOption *options;
    int n_options;
};

/* The static OPTIONS array and CliProgram PROGRAM of the rows (see the top of this file). */
#define CLI_PROGRAM(rows, name_, synopsis_, summary_)                                            \
    static const CliOption OPTIONS[] = {rows(CLI_TABLE_ROW)};                                    \
    static const CliProgram PROGRAM = {.name = (name_), .synopsis = (synopsis_),                  \
                                       .summary = (summary_), .options = OPTIONS,                 \
                                       .n_options = (int)(sizeof OPTIONS / sizeof OPTIONS[0])}

/* Sets every row's default in args, then parses argv (getopt_long, long and short forms) into
 * it. --help prints the usage (each option with its default) and exits 0; an unknown option, a
 * bad value or an argument that is no option prints a message naming it and exits 2. seen,
 * when not NULL, is an array of n_options counts: how often each option was given. */
void cli_parse(const CliProgram *prog, int argc, char **argv, void *args, int *seen);

/* Reports a wrong command line: "NAME: message (see NAME --help)" on stderr, exit 2. */
_Noreturn void cli_fail(const CliProgram *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The row's field inside args. */
void *cli_field(const CliOption *opt, void *args);

/* For custom parsers: a number in [min, max], or exit 2 naming the option and the range. */
double cli_number(const CliProgram *prog, const CliOption *opt, const char *value, double min,
                  double max);

#endif
