/*
 * tng_train: fine-tune (or pre-train) CLIP, the TNG-CLIP way or plainly.
 *
 *   tng_train [options]                     one process
 *   mpirun -np N tng_train [options]        data parallel: --batch is per rank
 *
 * The options are train/options.c's rows (tng_train --help lists them); the run is
 * train/trainer.h: the data, the model, the TNG producer thread, the loop, checkpoints and
 * validation. Exit status: 0, 2 for a wrong command line (or a run folder that refuses it: in
 * use, holding another run, or a --resume that changes the run), 130 after SIGINT and 143
 * after SIGTERM (with a checkpoint to --resume from), 1 for any other failure.
 */
#include "engine/backend.h" // defines: backend_select
#include "engine/dist.h"    // defines: Dist, dist_init, dist_use_backend, dist_barrier, dist_finalize
#include "train/options.h"  // defines: TrainOptions, train_options_parse, train_options_print
#include "train/trainer.h"  // defines: Trainer, trainer_open, trainer_run, trainer_close

int main(int argc, char **argv) {
    Dist *dist = dist_init(&argc, &argv);
    TrainOptions options;
    train_options_parse(&options, argc, argv);
    /* the GPU first (local rank % devices), then the collectives that run on it */
    options.be = backend_select((BackendChoice)options.backend_choice, (Precision)options.precision,
                                dist->local_rank, options.backend_desc, sizeof options.backend_desc);
    dist_use_backend(dist, options.be);
    if (dist->rank == 0) train_options_print(&options, dist, stderr);
    Trainer *trainer = trainer_open(&options, dist);
    int status = trainer_run(trainer);
    trainer_close(trainer);
    dist_barrier(dist); /* rank 0's checkpoint is complete before any rank reports success */
    dist_finalize(dist);
    return status;
}
