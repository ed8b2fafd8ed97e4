/*
 * trainer.h: one training run, from the options to the last checkpoint.
 *
 * A caption travels one road: loader -> TNG producer thread -> tokenizer -> text tower ->
 * InfoNCE -> AdamW (train/lookahead.h holds the part before the step). With --tng on, every
 * image gets M negation texts besides its caption (and C contradictions), laid out and
 * targeted as tng/batch.h says.
 *
 * Image embeddings for TNG: with the vision tower frozen they never change, so they are
 * computed once per image (dataset/embed_cache.h) and the vision tower is not run in training
 * at all.
 *
 * A run directory holds metrics.jsonl (one JSON line per step and per validation), the
 * checkpoints (io/train_state.h) and the image-embedding cache. SIGINT/SIGTERM write a
 * checkpoint and end the run; a second signal exits at once. --resume continues bit-exactly.
 *
 * Data parallel (engine/dist.h): --batch is per rank, every rank reads a disjoint share of
 * each epoch, and the loss is the exact loss of the N batches as one (ClipTrainConfig.dist).
 * Rank 0 alone resolves the model and the resume point and broadcasts them, and alone logs,
 * validates and writes checkpoints. Every decision that changes the control flow (stop on a
 * signal, skip a non-finite step) is taken from values all ranks share, so they stay in step.
 */
#ifndef TNG_TRAINER_H
#define TNG_TRAINER_H

#include "engine/dist.h"   // defines: Dist
#include "train/options.h" // defines: TrainOptions

typedef struct Trainer Trainer;

/* Loads the data and the model (or the run to resume), fills the image-embedding cache and
 * starts the threads; dies with a message on any problem (exit 2 for a wrong command line). */
Trainer *trainer_open(const TrainOptions *opt, Dist *dist);
/* Trains to the end (or to a signal), writes the final checkpoint and validation. Returns the
 * exit status: 0, or 130 when a signal stopped it. */
int trainer_run(Trainer *t);
void trainer_close(Trainer *t);

#endif
