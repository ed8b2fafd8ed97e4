/*
 * options.h: everything a training run is told, as one struct, and the command line that fills
 * it (tng_train's options, one row each in options.c).
 *
 * Adding an option: a field here and a row in options.c (name, value, default, help); checks
 * that involve several options go in train_options_parse after the rows are applied. A named
 * recipe (--recipe, train/recipe.h) fills in the options the command line leaves out.
 */
#ifndef TNG_TRAIN_OPTIONS_H
#define TNG_TRAIN_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "engine/backend.h" // defines: Backend, BackendChoice
#include "engine/dist.h"    // defines: Dist
#include "engine/optim.h" // defines: OptimConfig, Schedule
#include "tng/batch.h"    // defines: TngI2tTarget

typedef struct {
    int recipe;                  /* --recipe: an index of train_recipes, -1 for none */
    uint64_t recipe_overridden;  /* bit k: the command line decided the recipe's k-th setting */
    /* model and data */
    const char *config;     /* preset name, used without --init */
    const char *init;       /* HF directory, tng checkpoint or run, or NULL */
    const char *data, *format, *image_root;
    int captions_all;       /* 1: every (image, caption) pair per epoch */
    int text_groups;        /* K: the text tower's length groups (engine/model.h, SeqGroups) */
    int hard_batches;       /* G: batches of neighbour groups of G (dataset/neighbours.h); 0 off */
    int twin_batches;       /* 1: each image in its counterfactual twin's batch (the CSV's twin column) */
    int fast_decode;
    /* TNG */
    int tng;
    int neg_per_image;      /* M */
    double tng_ratio;       /* fraction of steps that use the TNG texts (the rest: originals only) */
    int contradictions;     /* C */
    int standalone;         /* S: standalone negations per image (tng/generator.h) */
    float contradiction_weight;
    float mcq_loss;         /* W: the MCQ loss's weight (engine/mcq_loss.h); 0 = off */
    int released;           /* --tng-compat released */
    int tng_global;         /* --tng-scope global */
    TngI2tTarget i2t;
    /* loss and optimizer */
    float temperature;      /* 0 = learned */
    int freeze;             /* 0 vision, 1 text, 2 none; read train_vision and train_text */
    int train_vision, train_text;
    OptimConfig optim;      /* total_steps is set by the trainer */
    int batch, accum, epochs;
    long steps;             /* 0: --epochs decides */
    uint64_t seed;
    /* the run */
    int backend_choice;     /* BackendChoice: --backend */
    int precision;          /* Precision: --precision */
    const Backend *be;      /* the backend it resolved to (tng_train's main, before the run) */
    char backend_desc[256]; /* that backend in words, for the settings block */
    const char *out, *val_mcq;
    long checkpoint_every, eval_every, log_every;
    long log_texts;         /* micro-batches whose texts go to texts.jsonl; 0 = none */
    int resume, threads, max_nonfinite;
    const char *resume_changed; /* comma-separated options --resume may change, or NULL */
    int overwrite;              /* delete an earlier run in --out first */
    long check_sync;
    double hang_timeout;    /* seconds; 0 = no watchdog */
    int cuda_graphs;        /* 1: one process on CUDA launches each step as one graph */
} TrainOptions;

/* The options that define a run, with their values as text: what a checkpoint records and
 * --resume compares. One pair per option row not marked MAY_CHANGE in options.c, plus
 * "ranks", the number of processes (mpirun -np), which --batch is per. */
enum { RUN_IDENTITY_MAX = 64 };
#define RUN_IDENTITY_RANKS "ranks"
typedef struct {
    int n;
    const char *names[RUN_IDENTITY_MAX]; /* option names without the dashes */
    char *values[RUN_IDENTITY_MAX];      /* malloc'd; "" for an option not given a value */
} RunIdentity;

/* Fills id from o (free it with run_identity_free). */
void train_options_identity(const TrainOptions *o, int world, RunIdentity *id);
void run_identity_free(RunIdentity *id);

/* Fills o from the defaults and argv; --help, and any mistake (exit 2, with a message), end
 * the process. */
void train_options_parse(TrainOptions *o, int argc, char **argv);

/* The settings block the log starts with. */
void train_options_print(const TrainOptions *o, const Dist *d, FILE *out);

#endif
