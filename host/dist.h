/*
 * dist.h: the collective layer of data-parallel training: rank, world size, and the five
 * collectives the engine needs (all-gather, reduce-scatter, all-reduce, broadcast, barrier).
 *
 * Key design choices:
 * - Two tables of the same collectives: `host` works on host memory (MPI; the metadata,
 *   loss statistics, hashes, flags) and `device` on backend memory (the features and
 *   gradients). For the CPU backend both are MPI; the CUDA backend swaps in NCCL on its own
 *   stream (cuda/collective_nccl.h). The model calls only `device` for tensors, so it never
 *   knows which transport it has.
 * - Counts are ELEMENTS of the given type, never bytes, and may differ per rank (the last
 *   batch of an epoch, or a batch that lost an unreadable image, is shorter).
 * - Launched by mpirun (OMPI_COMM_WORLD_SIZE / PMI_SIZE / PMIX_RANK in the environment) the
 *   program joins MPI; started alone it is one process of a world of one and never touches
 *   MPI. Built without MPI (no mpicc found) dist.c compiles to that one-process world only.
 * - Failure: every MPI error aborts the job. A rank that exits without dist_finalize (die(),
 *   exit(2), a failed check) prints its rank and calls MPI_Abort from an atexit handler, so
 *   its peers never wait forever in a collective.
 */
#ifndef TNG_DIST_H
#define TNG_DIST_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DIST_F32 = 0, DIST_I32 = 1, DIST_U64 = 2, DIST_BYTE = 3 } DistType;
typedef enum { DIST_SUM = 0, DIST_AVG = 1, DIST_MAX = 2 } DistReduce;

typedef struct Dist Dist;

typedef struct {
    const char *name; /* "mpi", "nccl" or "single" */
    /* recv = the ranks' send buffers one after another (rank order); rank r sends counts[r]
     * elements. recv holds sum(counts) elements. */
    void (*all_gather)(const Dist *d, void *recv, const void *send, const int *counts,
                       DistType type);
    /* send holds sum(counts) elements in rank order; recv[counts[rank]] gets the sum over all
     * ranks of the slice that belongs to this rank (float only: gradients). */
    void (*reduce_scatter)(const Dist *d, float *recv, const float *send, const int *counts);
    /* buf[count] in place; DIST_AVG only for DIST_F32. */
    void (*all_reduce)(const Dist *d, void *buf, size_t count, DistType type, DistReduce op);
    void (*broadcast)(const Dist *d, void *buf, size_t count, DistType type, int root);
} DistOps;

struct Dist {
    int rank, world;
    int local_rank, local_world; /* on this node (MPI_COMM_TYPE_SHARED): picks the GPU */
    const DistOps *host;         /* host memory */
    const DistOps *device;       /* backend memory: host's for the CPU backend, or NCCL */
    void *device_state;          /* owned by the device transport (NCCL communicator, stream) */
    void (*device_release)(Dist *d);
};

/* Joins MPI when launched by mpirun (MPI_Init_thread, FUNNELED: only the main thread calls
 * collectives), else returns a world of one. Call first thing in main. */
Dist *dist_init(int *argc, char ***argv);
/* Leaves MPI cleanly (all ranks must call it) and frees d. */
void dist_finalize(Dist *d);
void dist_barrier(const Dist *d);
/* Ends the whole job with `code` (MPI_Abort), after printing msg naming this rank. */
__attribute__((noreturn)) void dist_abort(const Dist *d, int code, const char *msg);
/* "MPI (Open MPI v4.1.4, ...)" or "none: built without MPI". */
const char *dist_transport(void);

/* Offsets of a counts array: offsets[r] = counts[0] + ... + counts[r-1], offsets[world] =
 * the total. offsets holds world + 1 ints. Returns the total. */
int dist_offsets(const Dist *d, const int *counts, int *offsets);

/* 64-bit FNV-1a of bytes: the weight fingerprint --check-sync compares across ranks. */
uint64_t dist_hash(const void *data, size_t bytes);

#endif
