/*
 * collective_nccl.cu: the NCCL transport of the collective layer (collective_nccl.h).
 *
 * The one design choice: NCCL runs on its own stream, and every collective is fenced by two
 * events, compute -> NCCL before it and NCCL -> compute after it. The compute stream is the
 * backend's legacy default stream, so the fences keep the ordering explicit even if the
 * backend later moves to a non-blocking stream, and a collective never reads a buffer a
 * kernel is still writing. The non-blocking all-reduce splits the two fences: start queues
 * the first (the NCCL stream waits for the kernels that wrote the layer's gradients) and
 * the sum, so the compute stream runs on into the earlier layers' backward; wait queues the
 * second, once for all of them (NCCL's stream runs them in order, so its last event covers
 * every sum before it).
 *
 * Every entry point reports to dist.c's hang watchdog (dist_collective_begin/end); since NCCL
 * calls only enqueue, a hang shows as a main thread that stops reporting (stuck in a copy
 * that waits for a collective), and the watchdog then calls ncclCommAbort from its thread.
 */
#include "cuda/collective_nccl.h"

#include <nccl.h>
#include <vector>

#include "cuda/cuda_common.h"
#include "cuda/local_rank.h" /* defines: launcher_local_rank, local_device */

static void nccl_check(ncclResult_t res, const char *what, const char *file, int line) {
    if (res == ncclSuccess)
        return;
    fprintf(stderr, "tng: NCCL error at %s:%d: %s: %s\n", file, line, what, ncclGetErrorString(res));
    exit(1); /* dist.c's atexit handler aborts the other ranks */
}
#define ncclCheck(call) nccl_check((call), #call, __FILE__, __LINE__)

typedef struct {
    ncclComm_t comm;
    cudaStream_t stream;
    cudaEvent_t compute_done, nccl_done;
} NcclState;

static const cudaStream_t compute_stream = 0; /* the backend's stream (backend_cuda.cu) */

static NcclState *state(const Dist *d) { return (NcclState *)d->device_state; }

static ncclDataType_t nccl_type(DistType type) {
    switch (type) {
    case DIST_F32: return ncclFloat32;
    case DIST_I32: return ncclInt32;
    case DIST_U64: return ncclUint64;
    default: return ncclUint8;
    }
}

static size_t type_size(DistType type) { return type == DIST_U64 ? 8 : type == DIST_BYTE ? 1 : 4; }

/* compute -> NCCL: the collective starts after every kernel queued before it */
static void begin(const Dist *d) {
    NcclState *s = state(d);
    cudaCheck(cudaEventRecord(s->compute_done, compute_stream));
    cudaCheck(cudaStreamWaitEvent(s->stream, s->compute_done, 0));
}

/* NCCL -> compute: kernels queued after it see its result */
static void end(const Dist *d) {
    NcclState *s = state(d);
    cudaCheck(cudaEventRecord(s->nccl_done, s->stream));
    cudaCheck(cudaStreamWaitEvent(compute_stream, s->nccl_done, 0));
}

static int equal_counts(const Dist *d, const int *counts) {
    for (int r = 1; r < d->world; r++)
        if (counts[r] != counts[0])
            return 0;
    return 1;
}

static void nccl_all_gather(const Dist *d, void *recv, const void *send, const int *counts,
                            DistType type) {
    NcclState *s = state(d);
    std::vector<int> offsets((size_t)d->world + 1);
    dist_offsets(d, counts, offsets.data());
    dist_collective_begin("all_gather");
    begin(d);
    if (equal_counts(d, counts)) {
        ncclCheck(ncclAllGather(send, recv, (size_t)counts[0], nccl_type(type), s->comm, s->stream));
    } else { /* every rank broadcasts its slice into place */
        ncclCheck(ncclGroupStart());
        for (int r = 0; r < d->world; r++)
            ncclCheck(ncclBroadcast(send, (char *)recv + (size_t)offsets[r] * type_size(type),
                                    (size_t)counts[r], nccl_type(type), r, s->comm, s->stream));
        ncclCheck(ncclGroupEnd());
    }
    end(d);
    dist_collective_end();
}

static void nccl_reduce_scatter(const Dist *d, float *recv, const float *send, const int *counts) {
    NcclState *s = state(d);
    std::vector<int> offsets((size_t)d->world + 1);
    dist_offsets(d, counts, offsets.data());
    dist_collective_begin("reduce_scatter");
    begin(d);
    if (equal_counts(d, counts)) {
        ncclCheck(ncclReduceScatter(send, recv, (size_t)counts[0], ncclFloat32, ncclSum, s->comm,
                                    s->stream));
    } else { /* one reduction per owner, each to its own rank */
        ncclCheck(ncclGroupStart());
        for (int r = 0; r < d->world; r++)
            ncclCheck(ncclReduce(send + offsets[r], recv, (size_t)counts[r], ncclFloat32, ncclSum, r,
                                 s->comm, s->stream));
        ncclCheck(ncclGroupEnd());
    }
    end(d);
    dist_collective_end();
}

static void nccl_all_reduce(const Dist *d, void *buf, size_t count, DistType type, DistReduce op) {
    NcclState *s = state(d);
    ncclRedOp_t nop = op == DIST_AVG ? ncclAvg : op == DIST_MAX ? ncclMax : ncclSum;
    dist_collective_begin("all_reduce");
    begin(d);
    ncclCheck(ncclAllReduce(buf, buf, count, nccl_type(type), nop, s->comm, s->stream));
    end(d);
    dist_collective_end();
}

static void nccl_broadcast(const Dist *d, void *buf, size_t count, DistType type, int root) {
    NcclState *s = state(d);
    dist_collective_begin("broadcast");
    begin(d);
    ncclCheck(ncclBroadcast(buf, buf, count, nccl_type(type), root, s->comm, s->stream));
    end(d);
    dist_collective_end();
}

/* compute -> NCCL, then the sum; the compute stream does not wait for it */
static void nccl_all_reduce_start(const Dist *d, float *buf, size_t count) {
    NcclState *s = state(d);
    dist_collective_begin("all_reduce_start");
    begin(d);
    ncclCheck(ncclAllReduce(buf, buf, count, ncclFloat32, ncclSum, s->comm, s->stream));
    dist_collective_end();
}

/* NCCL -> compute: kernels queued from now on see every started sum */
static void nccl_all_reduce_wait(const Dist *d) {
    dist_collective_begin("all_reduce_wait");
    end(d);
    dist_collective_end();
}

static const DistOps nccl_ops = {"nccl",          nccl_all_gather,        nccl_reduce_scatter,
                                 nccl_all_reduce, nccl_broadcast,         nccl_all_reduce_start,
                                 nccl_all_reduce_wait};

/* The watchdog's hooks (dist.h), on its thread: both calls are meant for that use. */
static int nccl_poll(const Dist *d, char *msg, size_t len) {
    ncclResult_t async = ncclSuccess;
    if (ncclCommGetAsyncError(state(d)->comm, &async) != ncclSuccess) return 0;
    if (async == ncclSuccess || async == ncclInProgress) return 0;
    snprintf(msg, len, "NCCL reports an asynchronous error: %s; aborting the job",
             ncclGetErrorString(async));
    return 1;
}

static void nccl_abort(const Dist *d) { ncclCommAbort(state(d)->comm); }

static void nccl_release(Dist *d) {
    NcclState *s = state(d);
    cudaCheck(cudaStreamSynchronize(s->stream));
    ncclCheck(ncclCommDestroy(s->comm));
    cudaCheck(cudaEventDestroy(s->compute_done));
    cudaCheck(cudaEventDestroy(s->nccl_done));
    cudaCheck(cudaStreamDestroy(s->stream));
    free(s);
    d->device_state = NULL;
    d->device = d->host;
    d->device_poll = NULL;
    d->device_abort = NULL;
}

void dist_attach_nccl(Dist *d) {
    int devices = 0;
    cudaCheck(cudaGetDeviceCount(&devices));
    if (devices < 1) {
        fprintf(stderr, "tng: rank %d: no GPU on this node\n", d->rank);
        exit(1);
    }
    int local_rank = launcher_local_rank(d->local_rank);
    int device = local_device(local_rank, devices);
    if (local_rank >= devices)
        fprintf(stderr, "tng: rank %d is local rank %d on a node with %d GPU(s): it shares GPU %d "
                        "(slower; start one rank per GPU)\n", d->rank, local_rank, devices, device);
    cudaCheck(cudaSetDevice(device));
    ncclUniqueId id;
    if (d->rank == 0)
        ncclCheck(ncclGetUniqueId(&id));
    d->host->broadcast(d, &id, sizeof id, DIST_BYTE, 0);
    NcclState *s = (NcclState *)calloc(1, sizeof(NcclState));
    if (!s) {
        fprintf(stderr, "tng: out of memory for the NCCL state\n");
        exit(1);
    }
    ncclCheck(ncclCommInitRank(&s->comm, d->world, id, d->rank));
    cudaCheck(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
    cudaCheck(cudaEventCreateWithFlags(&s->compute_done, cudaEventDisableTiming));
    cudaCheck(cudaEventCreateWithFlags(&s->nccl_done, cudaEventDisableTiming));
    d->device_state = s;
    d->device = &nccl_ops;
    d->device_release = nccl_release;
    d->device_poll = nccl_poll;
    d->device_abort = nccl_abort;
}
