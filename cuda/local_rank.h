/*
 * local_rank.h: which GPU a process of a data-parallel job takes (collective_nccl.cu), as
 * plain C so that tests/test_local_rank.c checks it without a GPU.
 *
 * The launcher tells each process its rank among the processes on its node: Open MPI's mpirun
 * in OMPI_COMM_WORLD_LOCAL_RANK, MPICH and Intel MPI in MPI_LOCALRANKID, Slurm's srun in
 * SLURM_LOCALID, torchrun-style launchers in LOCAL_RANK; without any of them the caller's own
 * count (MPI's node communicator) stands. The process takes GPU local_rank % devices, so a
 * node started with more processes than GPUs shares them out instead of stopping the extra
 * processes.
 */
#ifndef TNG_CUDA_LOCAL_RANK_H
#define TNG_CUDA_LOCAL_RANK_H

#include <limits.h>
#include <stdlib.h>

/* The first launcher variable that holds a rank (a whole number >= 0), else fallback. */
static inline int launcher_local_rank(int fallback) {
    static const char *const names[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                                        "SLURM_LOCALID", "LOCAL_RANK"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *value = getenv(names[i]);
        if (!value || !*value)
            continue;
        char *end = NULL;
        long rank = strtol(value, &end, 10);
        if (*end == '\0' && rank >= 0 && rank <= INT_MAX)
            return (int)rank;
    }
    return fallback;
}

/* The GPU of local rank `local_rank` on a node with `devices` GPUs (at least 1). */
static inline int local_device(int local_rank, int devices) { return local_rank % devices; }

#endif
