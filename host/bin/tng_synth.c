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
#include "synth/synth.h"  // defines: SynthConfig, synth_config_default, synth_write_world, synth_phrasings,
                          //          synth_world_caption_stats

typedef struct {
    SynthConfig cfg;
    const char *out;
} SynthArgs;

/* --phrasing: a comma-separated list of synth_phrasings names; "both" is std,alt (the
 * default) and "all" every set. */
static void parse_phrasing(const CliProgram *prog, const CliOption *opt, const char *value, void *args) {
    int *mask = cli_field(opt, args);
    if (strcmp(value, "both") == 0) {
        *mask = SYNTH_DEFAULT_PHRASINGS;
        return;
    }
    if (strcmp(value, "all") == 0) {
        *mask = (1 << SYNTH_N_PHRASINGS) - 1;
        return;
    }
    *mask = 0;
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, ",");
        char name[32];
        int index = -1;
        if (n < sizeof name) {
            memcpy(name, p, n);
            name[n] = '\0';
            index = synth_phrasing_index(name);
        }
        if (index < 0)
            cli_fail(prog, "--%s expects a comma-separated list of %s, %s and %s, or both (std,alt) or all; got '%s'",
                     opt->name, synth_phrasings[0].name, synth_phrasings[1].name, synth_phrasings[2].name, value);
        *mask |= 1 << index;
        p += n + (p[n] == ',');
    }
}

/* The caption statistics of the training split on stderr: how often "not mentioned = absent",
 * TNG's assumption, is wrong in this world. */
static void print_caption_stats(const SynthConfig *cfg) {
    SynthCaptionStats st;
    synth_world_caption_stats(cfg, SYNTH_TRAIN, &st);
    if (st.captions == 0) return;
    fprintf(stderr,
            "tng_synth: train captions: %.2f%% carry a negation clause; %.2f%% leave a present object unnamed "
            "(%.2f%% of objects unnamed); a kind a caption does not mention is present in %.3f%% of "
            "(caption, kind) pairs (%lld of %lld)\n",
            100.0 * st.negated / st.captions, 100.0 * st.partial / st.captions,
            100.0 * (st.objects - st.named) / st.objects, 100.0 * st.unmentioned_present / st.unmentioned,
            (long long)st.unmentioned_present, (long long)st.unmentioned);
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
    X(PHRASING, 'p', "phrasing", "SETS", "both", CLI_CUSTOM(cfg.phrasing_mask, int, parse_phrasing),         \
      "evaluation phrasings, comma-separated: std, alt, intemplate; both = std,alt; all")                    \
    X(NEGATIONS, 0, "caption-negations", "F", CLI_INITIAL, CLI_DOUBLE(cfg.caption_style.negations, 0, 1),    \
      "share of captions that get a true negation clause (pre-training-only templates)")                     \
    X(COVERAGE, 0, "caption-coverage", "P", CLI_INITIAL, CLI_DOUBLE(cfg.caption_style.coverage, 0, 1),       \
      "chance that a caption names each object (at least one is named), as COCO captions")                   \
    X(TWINS, 0, "twins", NULL, NULL, CLI_FLAG(cfg.twins, 1),                                                \
      "also a counterfactual twin of each training image: the scene plus one object of an absent kind")      \
    X(QUIET, 0, "quiet", NULL, NULL, CLI_FLAG(cfg.verbose, 0), "no progress lines")                          \
    X(HELP, 'h', "help", NULL, NULL, CLI_HELP, "show this help")

enum { SYNTH_OPTIONS(CLI_ENUM_ROW) N_OPTIONS };

#define CLI_ARGS SynthArgs
CLI_PROGRAM(SYNTH_OPTIONS, "tng_synth", "--out DIR [options]",
            "Writes the synthetic negation world: JPEG images, {train,val,test}.csv captions and,\n"
            "for val and test, NegBench-format mcq_*, retrieval_*, negated_retrieval_* and ccneg_*\n"
            "CSVs (the alt set's files end in _alt, the in-template set's in _intemplate). Prints how\n"
            "often a kind a training caption does not mention is present. --twins adds counterfactual\n"
            "twins to the training split and a twin column to train.csv. Same seed, same bytes.");

int main(int argc, char **argv) {
    SynthArgs args = {0};
    synth_config_default(&args.cfg);
    cli_parse(&PROGRAM, argc, argv, &args, NULL);
    if (!args.out) cli_fail(&PROGRAM, "--out DIR is required");
    const SynthConfig cfg = args.cfg;
    const char *out_dir = args.out;
    double t0 = now_seconds();
    synth_write_world(&cfg, out_dir);
    if (cfg.verbose) {
        fprintf(stderr, "tng_synth: wrote %lld images%s to %s in %.1f s\n",
                (long long)(cfg.n_images[0] + cfg.n_images[1] + cfg.n_images[2]),
                cfg.twins ? " and a twin of each training image" : "", out_dir, now_seconds() - t0);
        print_caption_stats(&cfg);
    }
    return 0;
}
