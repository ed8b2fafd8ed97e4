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
 * - Hangs: a rank that is alive but stuck (a peer in SIGSTOP, a deadlock, a hung network)
 *   raises no error at all, so an optional watchdog thread ends the process when the main
 *   thread has made no progress for a timeout (dist_watchdog_start, below). It exits with
 *   _exit, the one way out that is legal from a second thread under MPI_THREAD_FUNNELED;
 *   mpirun then takes the other ranks down (they see a rank exit non-zero).
 * - Gradients: all_reduce_start queues a non-blocking sum and all_reduce_wait completes every
 *   queued one, so the model can send a layer's gradients while it computes the backward of
 *   the layers before it (model.h, clip_backward_last).
 */
#ifndef TNG_DIST_H
#define TNG_DIST_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DIST_F32 = 0, DIST_I32 = 1, DIST_U64 = 2, DIST_BYTE = 3 } DistType;
typedef enum { DIST_SUM = 0, DIST_AVG = 1, DIST_MAX = 2 } DistReduce;

typedef struct Dist Dist;
typedef struct Backend Backend;

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
    /* Non-blocking all-reduce (SUM, float) of buf[count] in place: queued now, complete after
     * all_reduce_wait. Until then the buffer belongs to the transport: nothing may read or
     * write it. Every rank queues the same reductions in the same order. Starting one also
     * lets the ones queued before it progress (MPI's progress is driven by MPI calls). */
    void (*all_reduce_start)(const Dist *d, float *buf, size_t count);
    /* Completes every queued all_reduce_start; afterwards the buffers hold the sums. */
    void (*all_reduce_wait)(const Dist *d);
} DistOps;

typedef struct DistQueue DistQueue; /* the MPI transport's reductions in flight */

struct Dist {
    int rank, world;
    int local_rank, local_world; /* on this node (MPI_COMM_TYPE_SHARED): picks the GPU */
    const DistOps *host;         /* host memory */
    const DistOps *device;       /* backend memory: host's for the CPU backend, or NCCL */
    void *device_state;          /* owned by the device transport (NCCL communicator, stream) */
    void (*device_release)(Dist *d);
    /* The hang watchdog's hooks into the device transport, called from the watchdog thread
     * (NULL for MPI): device_poll returns 1 and fills msg when the transport reports an
     * asynchronous error; device_abort tears the transport down so that no kernel waits
     * forever (ncclCommAbort, which NCCL allows from another thread). */
    int (*device_poll)(const Dist *d, char *msg, size_t len);
    void (*device_abort)(const Dist *d);
    DistQueue *queue; /* all_reduce_start's requests (MPI) */
};

/* Joins MPI when launched by mpirun (MPI_Init_thread, FUNNELED: only the main thread calls
 * collectives), else returns a world of one. Call first thing in main. */
Dist *dist_init(int *argc, char ***argv);
/* The backend the model runs on: with a GPU backend under mpirun (any number of ranks), the
 * device collectives go over NCCL (cuda/collective_nccl.h) when the program is linked with it;
 * MPI then carries only host metadata and bootstraps NCCL's id. A GPU backend without NCCL keeps
 * MPI, which is right only where backend memory is host memory (the CUDA emulator's). */
void dist_use_backend(Dist *d, const Backend *be);
/* Leaves MPI cleanly (all ranks must call it) and frees d. */
void dist_finalize(Dist *d);
void dist_barrier(const Dist *d);
/* Ends the whole job with `code` (MPI_Abort), after printing msg naming this rank. */
__attribute__((noreturn)) void dist_abort(const Dist *d, int code, const char *msg);
/* "MPI (Open MPI v4.1.4, ...)" or "none: built without MPI". */
const char *dist_transport(void);

/* ----------------------------------------------------------------------------
 * The hang watchdog
 *
 * The main thread reports progress (dist_collective_begin/end around every collective, which
 * the transports call themselves, and dist_watchdog_step once per training step); a watchdog
 * thread looks once a second (or every timeout / 4, if shorter). When no progress came for
 * `timeout_s` seconds, it prints one line naming this rank, the collective it is stuck in
 * and the step, e.g.
 *   tng: rank 0 of 2: no progress for 30 s inside all_reduce (step 12): a peer is stuck or
 *   gone; aborting the job
 * calls the device transport's abort hook, and exits with DIST_EXIT_HANG. The watchdog also
 * polls the device transport for asynchronous errors (NCCL) and aborts on one.
 *
 * Legitimately long phases are declared with dist_watchdog_pause: tng_train starts the
 * watchdog only after the setup (rank 0 loading a checkpoint, the frozen tower's image
 * embeddings) and pauses it on every rank while rank 0 writes a checkpoint or validates, the
 * others waiting for it at a barrier (rank 0 resumes before that barrier, so it still
 * watches it). The price: a rank 0 that hangs inside its own checkpoint or validation is not
 * caught (one that dies still is, by mpirun). Checkpoints stay safe: every file is written
 * to a temporary and renamed, and `latest` switches only after the whole checkpoint is
 * complete, so an exit at any instant leaves `latest` naming a complete checkpoint. */

/* the exit status of a hang: EX_TEMPFAIL of sysexits.h, since resuming is the remedy */
enum { DIST_EXIT_HANG = 75 };

/* Starts the watchdog thread (timeout_s > 0; tng_train starts it only when world > 1, where
 * a peer can hang a collective). Stopped by dist_finalize. Call from the main thread. */
void dist_watchdog_start(Dist *d, double timeout_s);
/* A training step begins: progress, and the step the hang message names. */
void dist_watchdog_step(long step);
/* 1: a legitimately long phase begins (no progress is expected); 0: it ended. */
void dist_watchdog_pause(int paused);
/* The main thread enters / leaves collective `name` (a string literal): progress both. */
void dist_collective_begin(const char *name);
void dist_collective_end(void);

/* Offsets of a counts array: offsets[r] = counts[0] + ... + counts[r-1], offsets[world] =
 * the total. offsets holds world + 1 ints. Returns the total. */
int dist_offsets(const Dist *d, const int *counts, int *offsets);

/* 64-bit FNV-1a of bytes: the weight fingerprint --check-sync compares across ranks. */
uint64_t dist_hash(const void *data, size_t bytes);

#endif
