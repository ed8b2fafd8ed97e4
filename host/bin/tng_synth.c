/*
 * tng_synth: writes the synthetic negation world (images, captions, NegBench-style evaluation
 * sets) that lets the whole pipeline run and be scored exactly on a CPU with no dataset.
 *
 * The defaults (5000 train, 500 val, 1000 test images of 64x64, 5 captions each) are sized for
 * the CPU demo: 25,000 training pairs are ~200 steps per epoch at batch 128, and the 1000 test
 * images give 3000 MCQ questions (one per type per image), so a type's accuracy carries about
 * +-1.6 points of binomial standard error near 50%. The whole world takes a few seconds on one
 * core (see bench/RESULTS.md). The layout and formats are described in host/synth.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cli.h"    // defines: CliOption, CliProgram, cli_parse, cli_fail, CLI_* row specs
#include "util/common.h" // defines: now_seconds
#include "synth/synth.h"  // defines: SynthConfig, synth_config_default, synth_write_world, synth_phrasings

typedef struct {
    SynthConfig cfg;
    const char *out;
} SynthArgs;

/* --phrasing: one of synth_phrasings by name, or both */
static void parse_phrasing(const CliProgram *prog, const CliOption *opt, const char *value, void *args) {
    int *mask = cli_field(opt, args);
    if (strcmp(value, "both") == 0) *mask = (1 << SYNTH_N_PHRASINGS) - 1;
    else if (strcmp(value, synth_phrasings[0].name) == 0) *mask = 1;
    else if (strcmp(value, synth_phrasings[1].name) == 0) *mask = 2;
    else cli_fail(prog, "--%s expects %s, %s or both, got '%s'", opt->name, synth_phrasings[0].name,
                  synth_phrasings[1].name, value);
}

/* X(ID, SHORT, NAME, METAVAR, DEFAULT, TYPE, HELP): see util/cli.h. The defaults are the
 * library's (synth_config_default). */
#define SYNTH_OPTIONS(X)                                                                                     \
    X(OUT, 'o', "out", "DIR", NULL, CLI_STRING(out),                                                         \
      "output folder (created if missing; files are overwritten)")                                           \
    X(SEED, 's', "seed", "S", CLI_INITIAL, CLI_U64(cfg.seed, UINT64_MAX),                                    \
      "world seed, a 64-bit unsigned integer")                                                               \
    X(SIZE, 'W', "size", "W", CLI_INITIAL, CLI_INT(cfg.size, 8, 4096), "image side in pixels")               \
    X(TRAIN, 0, "train", "N", CLI_INITIAL, CLI_LONG(cfg.n_images[SYNTH_TRAIN], 0, 100000000),                \
      "training images")                                                                                     \
    X(VAL, 0, "val", "N", CLI_INITIAL, CLI_LONG(cfg.n_images[SYNTH_VAL], 0, 100000000), "validation images") \
    X(TEST, 0, "test", "N", CLI_INITIAL, CLI_LONG(cfg.n_images[SYNTH_TEST], 0, 100000000), "test images")    \
    X(CAPTIONS, 'c', "captions", "K", CLI_INITIAL, CLI_INT(cfg.n_captions, 1, 64), "captions per image")     \
    X(QUALITY, 'q', "quality", "Q", CLI_INITIAL, CLI_INT(cfg.quality, 1, 100), "JPEG quality")               \
    X(PHRASING, 'p', "phrasing", "SET", "both", CLI_CUSTOM(cfg.phrasing_mask, int, parse_phrasing),          \
      "evaluation phrasings: std, alt or both")                                                              \
    X(QUIET, 0, "quiet", NULL, NULL, CLI_FLAG(cfg.verbose, 0), "no progress lines")                          \
    X(HELP, 'h', "help", NULL, NULL, CLI_HELP, "show this help")

enum { SYNTH_OPTIONS(CLI_ENUM_ROW) N_OPTIONS };

#define CLI_ARGS SynthArgs
CLI_PROGRAM(SYNTH_OPTIONS, "tng_synth", "--out DIR [options]",
            "Writes the synthetic negation world: JPEG images, {train,val,test}.csv captions and,\n"
            "for val and test, NegBench-format mcq_*, retrieval_*, negated_retrieval_* and ccneg_*\n"
            "CSVs (the alt phrasing set's files end in _alt). Same seed, same bytes.");

int main(int argc, char **argv) {
    SynthArgs args = {0};
    synth_config_default(&args.cfg);
    cli_parse(&PROGRAM, argc, argv, &args, NULL);
    if (!args.out) cli_fail(&PROGRAM, "--out DIR is required");
    const SynthConfig cfg = args.cfg;
    const char *out_dir = args.out;
    double t0 = now_seconds();
    synth_write_world(&cfg, out_dir);
    if (cfg.verbose)
        fprintf(stderr, "tng_synth: wrote %lld images to %s in %.1f s\n",
                (long long)(cfg.n_images[0] + cfg.n_images[1] + cfg.n_images[2]), out_dir, now_seconds() - t0);
    return 0;
}
