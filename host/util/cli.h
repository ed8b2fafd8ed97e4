/*
 * cli.h: command-line options described once, as data. The getopt_long table and the
 * --help text are both generated from the same CliOption array, so the usage text cannot
 * disagree with the parser (one of llm.c's faults).
 */
#ifndef TNG_CLI_H
#define TNG_CLI_H

#include <getopt.h>
#include <stdio.h>

typedef struct {
    const char *name;    /* long option name, without the dashes */
    const char *metavar; /* NULL for a flag without a value */
    const char *help;    /* one line; mention the default */
} CliOption;

/* getopt_long returns CLI_OPTION_BASE + the option's index in the array. */
#define CLI_OPTION_BASE 1000

/* A getopt_long table for opts[0..n) (malloc'd, terminated; free it). */
struct option *cli_getopt_table(const CliOption *opts, int n);

/* Prints "usage: PROG SYNOPSIS", the summary, then one aligned line per option. */
void cli_usage(FILE *out, const char *prog, const char *synopsis, const char *summary,
               const CliOption *opts, int n);

/* Parses a whole decimal or floating value of an option, or exits 2 naming the option. */
long cli_long(const char *option, const char *value, long min, long max);
double cli_double(const char *option, const char *value, double min, double max);

#endif
