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
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: now_seconds
#include "synth/synth.h"  // defines: SynthConfig, synth_config_default, synth_write_world, synth_phrasings

static void usage(FILE *out) {
    SynthConfig d;
    synth_config_default(&d);
    fprintf(out,
            "usage: tng_synth --out DIR [options]\n"
            "Writes the synthetic negation world: JPEG images, {train,val,test}.csv captions and,\n"
            "for val and test, NegBench-format mcq_*, retrieval_*, negated_retrieval_* and ccneg_*\n"
            "CSVs (the alt phrasing set's files end in _alt). Same seed, same bytes.\n"
            "  -o, --out DIR         output folder (created if missing; files are overwritten)\n"
            "  -s, --seed S          world seed, a 64-bit unsigned integer (default %llu)\n"
            "  -W, --size W          image side in pixels, 8..4096 (default %d)\n"
            "      --train N         training images (default %lld)\n"
            "      --val N           validation images (default %lld)\n"
            "      --test N          test images (default %lld)\n"
            "  -c, --captions K      captions per image, 1..64 (default %d)\n"
            "  -q, --quality Q       JPEG quality, 1..100 (default %d)\n"
            "  -p, --phrasing SET    evaluation phrasings: std, alt or both (default both)\n"
            "      --quiet           no progress lines\n"
            "  -h, --help            show this help\n",
            (unsigned long long)d.seed, d.size, (long long)d.n_images[SYNTH_TRAIN],
            (long long)d.n_images[SYNTH_VAL], (long long)d.n_images[SYNTH_TEST], d.n_captions,
            d.quality);
}

/* An integer option in [lo, hi], or exit 2 with a message naming the option. */
static long long parse_int(const char *name, const char *text, long long lo, long long hi) {
    char *end;
    long long v = strtoll(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "tng_synth: --%s expects an integer in [%lld, %lld], got '%s'\n", name, lo, hi, text);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    enum { OPT_TRAIN = 1000, OPT_VAL, OPT_TEST, OPT_QUIET };
    static const struct option options[] = {
        {"out", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 's'},
        {"size", required_argument, NULL, 'W'},
        {"train", required_argument, NULL, OPT_TRAIN},
        {"val", required_argument, NULL, OPT_VAL},
        {"test", required_argument, NULL, OPT_TEST},
        {"captions", required_argument, NULL, 'c'},
        {"quality", required_argument, NULL, 'q'},
        {"phrasing", required_argument, NULL, 'p'},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    SynthConfig cfg;
    synth_config_default(&cfg);
    const char *out_dir = NULL;
    for (int opt; (opt = getopt_long(argc, argv, "o:s:W:c:q:p:h", options, NULL)) != -1;) {
        switch (opt) {
        case 'o': out_dir = optarg; break;
        case 's': {
            char *end;
            cfg.seed = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *optarg == '-' || *end != '\0') {
                fprintf(stderr, "tng_synth: --seed expects an unsigned integer, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'W': cfg.size = (int)parse_int("size", optarg, 8, 4096); break;
        case OPT_TRAIN: cfg.n_images[SYNTH_TRAIN] = parse_int("train", optarg, 0, 100000000); break;
        case OPT_VAL: cfg.n_images[SYNTH_VAL] = parse_int("val", optarg, 0, 100000000); break;
        case OPT_TEST: cfg.n_images[SYNTH_TEST] = parse_int("test", optarg, 0, 100000000); break;
        case 'c': cfg.n_captions = (int)parse_int("captions", optarg, 1, 64); break;
        case 'q': cfg.quality = (int)parse_int("quality", optarg, 1, 100); break;
        case 'p':
            if (strcmp(optarg, "both") == 0) cfg.phrasing_mask = (1 << SYNTH_N_PHRASINGS) - 1;
            else if (strcmp(optarg, synth_phrasings[0].name) == 0) cfg.phrasing_mask = 1;
            else if (strcmp(optarg, synth_phrasings[1].name) == 0) cfg.phrasing_mask = 2;
            else {
                fprintf(stderr, "tng_synth: --phrasing expects std, alt or both, got '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_QUIET: cfg.verbose = 0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tng_synth: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!out_dir) {
        fprintf(stderr, "tng_synth: --out DIR is required\n");
        usage(stderr);
        return 2;
    }
    double t0 = now_seconds();
    synth_write_world(&cfg, out_dir);
    if (cfg.verbose)
        fprintf(stderr, "tng_synth: wrote %lld images to %s in %.1f s\n",
                (long long)(cfg.n_images[0] + cfg.n_images[1] + cfg.n_images[2]), out_dir, now_seconds() - t0);
    return 0;
}
