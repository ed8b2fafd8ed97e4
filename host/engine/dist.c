/*
 * dist.c: the collective layer (dist.h) over MPI, and the one-process world.
 *
 * Built with TNG_HAVE_MPI (the Makefile defines it when it finds mpicc) this file speaks MPI
 * when mpirun started the process; otherwise, and always without TNG_HAVE_MPI, it is a world
 * of one whose collectives are copies. MPI calls take int counts, so the collectives on
 * size_t counts (all-reduce, broadcast: a whole gradient buffer) go in chunks of at most
 * INT_MAX elements. The hang watchdog (dist.h) lives here too: a handful of atomics the main
 * thread bumps, and a thread that reads them.
 */
#include "engine/dist.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/backend.h" // defines: Backend, backend_cpu
#include "util/common.h"

#ifdef TNG_HAVE_MPI
#include <mpi.h>
#endif

static size_t type_size(DistType type) {
    static const size_t sizes[] = {[DIST_F32] = 4, [DIST_I32] = 4, [DIST_U64] = 8, [DIST_BYTE] = 1};
    return sizes[type];
}

int dist_offsets(const Dist *d, const int *counts, int *offsets) {
    offsets[0] = 0;
    for (int r = 0; r < d->world; r++) offsets[r + 1] = offsets[r] + counts[r];
    return offsets[d->world];
}

uint64_t dist_hash(const void *data, size_t bytes) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* ----------------------------------------------------------------------------
 * The hang watchdog. The main thread only bumps atomics (a few per collective); the watchdog
 * thread notices when the count stops moving and measures the silence with its own clock. */

static struct {
    _Atomic uint64_t beats;       /* progress: bumped at each collective entry and exit */
    _Atomic(const char *) inside; /* the collective the main thread is in, or NULL */
    _Atomic long step;            /* the training step, -1 before the first */
    _Atomic int paused;           /* a legitimately long phase */
    const Dist *dist;
    double timeout;
    pthread_t thread;
    pthread_mutex_t lock; /* guards stop; wake interrupts the thread's sleep */
    pthread_cond_t wake;
    int stop, running;
} watch = {.step = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

void dist_collective_begin(const char *name) {
    atomic_store(&watch.inside, name);
    atomic_fetch_add(&watch.beats, 1);
}

void dist_collective_end(void) {
    atomic_store(&watch.inside, NULL);
    atomic_fetch_add(&watch.beats, 1);
}

void dist_watchdog_step(long step) {
    atomic_store(&watch.step, step);
    atomic_fetch_add(&watch.beats, 1);
}

void dist_watchdog_pause(int paused) {
    atomic_store(&watch.paused, paused);
    atomic_fetch_add(&watch.beats, 1);
}

/* Prints msg naming this rank, aborts the device transport and leaves. write(2) rather than
 * stdio: the main thread may hold stderr's lock, stuck in a write of its own. */
static TNG_NORETURN void watchdog_fire(const char *msg) {
    const Dist *d = watch.dist;
    char line[640];
    int len = snprintf(line, sizeof line, "tng: rank %d of %d: %s\n", d->rank, d->world, msg);
    if (len > (int)sizeof line - 1) len = (int)sizeof line - 1;
    if (write(STDERR_FILENO, line, (size_t)len) < 0) { /* nothing left to report it to */ }
    if (d->device_abort) d->device_abort(d);
    _exit(DIST_EXIT_HANG);
}

static void *watchdog_main(void *unused) {
    double tick = watch.timeout / 4 < 1 ? watch.timeout / 4 : 1;
    uint64_t seen = atomic_load(&watch.beats);
    double quiet_since = now_seconds();
    pthread_mutex_lock(&watch.lock);
    while (!watch.stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        double wake = (double)until.tv_sec + 1e-9 * (double)until.tv_nsec + tick;
        until.tv_sec = (time_t)wake;
        until.tv_nsec = (long)((wake - (double)until.tv_sec) * 1e9);
        pthread_cond_timedwait(&watch.wake, &watch.lock, &until);
        if (watch.stop) break;
        const Dist *d = watch.dist;
        char msg[512];
        if (d->device_poll && d->device_poll(d, msg, sizeof msg)) watchdog_fire(msg);
        uint64_t beats = atomic_load(&watch.beats);
        double now = now_seconds();
        if (beats != seen || atomic_load(&watch.paused)) {
            seen = beats;
            quiet_since = now;
            continue;
        }
        if (now - quiet_since < watch.timeout) continue;
        const char *inside = atomic_load(&watch.inside);
        long step = atomic_load(&watch.step);
        char when[64] = "before the first step";
        if (step >= 0) snprintf(when, sizeof when, "step %ld", step);
        if (inside)
            snprintf(msg, sizeof msg, "no progress for %.0f s inside %s (%s): a peer is stuck or "
                     "gone; aborting the job", now - quiet_since, inside, when);
        else
            snprintf(msg, sizeof msg, "no progress for %.0f s outside any collective (%s): this "
                     "rank is stuck; aborting the job", now - quiet_since, when);
        watchdog_fire(msg);
    }
    pthread_mutex_unlock(&watch.lock);
    return unused;
}

void dist_watchdog_start(Dist *d, double timeout_s) {
    if (timeout_s <= 0 || watch.running) return;
    watch.dist = d;
    watch.timeout = timeout_s;
    watch.stop = 0;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&watch.wake, &attr);
    pthread_condattr_destroy(&attr);
    /* signals stay with the main thread (tng_train's SIGINT/SIGTERM handling) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&watch.thread, NULL, watchdog_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) die("dist: cannot start the hang watchdog thread");
    watch.running = 1;
}

static void watchdog_stop(void) {
    if (!watch.running) return;
    pthread_mutex_lock(&watch.lock);
    watch.stop = 1;
    pthread_cond_signal(&watch.wake);
    pthread_mutex_unlock(&watch.lock);
    pthread_join(watch.thread, NULL);
    pthread_cond_destroy(&watch.wake);
    watch.running = 0;
}

/* ----------------------------------------------------------------------------
 * The world of one: every collective is the identity (host memory) */

static void single_all_gather(const Dist *d, void *recv, const void *send, const int *counts,
                              DistType type) {
    if (recv != send) memmove(recv, send, (size_t)counts[0] * type_size(type));
}

static void single_reduce_scatter(const Dist *d, float *recv, const float *send, const int *counts) {
    if (recv != send) memmove(recv, send, (size_t)counts[0] * sizeof(float));
}

static void single_all_reduce(const Dist *d, void *buf, size_t count, DistType type, DistReduce op) {}

static void single_broadcast(const Dist *d, void *buf, size_t count, DistType type, int root) {}

static void single_all_reduce_start(const Dist *d, float *buf, size_t count) {}

static void single_all_reduce_wait(const Dist *d) {}

static const DistOps single_ops = {.name = "single",
                                   .all_gather = single_all_gather,
                                   .reduce_scatter = single_reduce_scatter,
                                   .all_reduce = single_all_reduce,
                                   .broadcast = single_broadcast,
                                   .all_reduce_start = single_all_reduce_start,
                                   .all_reduce_wait = single_all_reduce_wait};

/* ----------------------------------------------------------------------------
 * MPI */

#ifdef TNG_HAVE_MPI
static int mpi_joined, mpi_finalized, mpi_rank, mpi_world;

static MPI_Datatype mpi_type(DistType type) {
    switch (type) {
    case DIST_F32: return MPI_FLOAT;
    case DIST_I32: return MPI_INT;
    case DIST_U64: return MPI_UINT64_T;
    default: return MPI_BYTE;
    }
}

struct DistQueue {
    MPI_Request *requests;
    int count, capacity;
};

/* The next piece of a size_t count that MPI's int count can carry. */
static int int_chunk(size_t count, size_t done) {
    return count - done > INT_MAX ? INT_MAX : (int)(count - done);
}

/* Displacements for the v-collectives, in elements. */
static int *mpi_displacements(const Dist *d, const int *counts) {
    int *offsets = mallocCheck(sizeof(int) * ((size_t)d->world + 1));
    dist_offsets(d, counts, offsets);
    return offsets;
}

static void mpi_all_gather(const Dist *d, void *recv, const void *send, const int *counts,
                           DistType type) {
    int *displs = mpi_displacements(d, counts);
    /* the own slice may already sit in place (the caller gathered into its own buffer) */
    const void *src = (const char *)recv + (size_t)displs[d->rank] * type_size(type) == send
                          ? MPI_IN_PLACE
                          : send;
    dist_collective_begin("all_gather");
    MPI_Allgatherv(src, counts[d->rank], mpi_type(type), recv, counts, displs, mpi_type(type),
                   MPI_COMM_WORLD);
    dist_collective_end();
    free(displs);
}

static void mpi_reduce_scatter(const Dist *d, float *recv, const float *send, const int *counts) {
    dist_collective_begin("reduce_scatter");
    MPI_Reduce_scatter(send, recv, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    dist_collective_end();
}

static void mpi_all_reduce(const Dist *d, void *buf, size_t count, DistType type, DistReduce op) {
    if (op == DIST_AVG && type != DIST_F32) die("dist: an average needs float data");
    MPI_Op mop = op == DIST_MAX ? MPI_MAX : MPI_SUM;
    dist_collective_begin("all_reduce");
    for (size_t done = 0; done < count;) {
        int chunk = int_chunk(count, done);
        char *at = (char *)buf + done * type_size(type);
        MPI_Allreduce(MPI_IN_PLACE, at, chunk, mpi_type(type), mop, MPI_COMM_WORLD);
        done += (size_t)chunk;
    }
    dist_collective_end();
    if (op == DIST_AVG) {
        float *x = buf, inv = 1.0f / (float)d->world;
        for (size_t i = 0; i < count; i++) x[i] *= inv;
    }
}

static void mpi_broadcast(const Dist *d, void *buf, size_t count, DistType type, int root) {
    dist_collective_begin("broadcast");
    for (size_t done = 0; done < count;) {
        int chunk = int_chunk(count, done);
        MPI_Bcast((char *)buf + done * type_size(type), chunk, mpi_type(type), root, MPI_COMM_WORLD);
        done += (size_t)chunk;
    }
    dist_collective_end();
}

/* MPI_Iallreduce per INT_MAX chunk. Open MPI's non-blocking collectives advance only inside
 * MPI calls, so each start also tests the queue: the model starts one per layer, which
 * moves the earlier layers' reductions along between layers. */
static void mpi_all_reduce_start(const Dist *d, float *buf, size_t count) {
    DistQueue *q = d->queue;
    dist_collective_begin("all_reduce_start");
    for (size_t done = 0; done < count;) {
        int chunk = int_chunk(count, done);
        if (q->count == q->capacity) {
            q->capacity = q->capacity ? 2 * q->capacity : 64;
            q->requests = reallocCheck(q->requests, sizeof(MPI_Request) * (size_t)q->capacity);
        }
        MPI_Iallreduce(MPI_IN_PLACE, buf + done, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                       &q->requests[q->count++]);
        done += (size_t)chunk;
    }
    int all_done = 0;
    MPI_Testall(q->count, q->requests, &all_done, MPI_STATUSES_IGNORE);
    if (all_done) q->count = 0;
    dist_collective_end();
}

static void mpi_all_reduce_wait(const Dist *d) {
    DistQueue *q = d->queue;
    dist_collective_begin("all_reduce_wait");
    MPI_Waitall(q->count, q->requests, MPI_STATUSES_IGNORE);
    q->count = 0;
    dist_collective_end();
}

static const DistOps mpi_ops = {.name = "mpi",
                                .all_gather = mpi_all_gather,
                                .reduce_scatter = mpi_reduce_scatter,
                                .all_reduce = mpi_all_reduce,
                                .broadcast = mpi_broadcast,
                                .all_reduce_start = mpi_all_reduce_start,
                                .all_reduce_wait = mpi_all_reduce_wait};

/* atexit: a rank leaving without dist_finalize takes the job down with it, so that no peer
 * waits in a collective for a rank that is gone. */
static void abort_unless_finalized(void) {
    if (!mpi_joined || mpi_finalized) return;
    fprintf(stderr, "tng: rank %d of %d is exiting before the end of the run: aborting all ranks\n",
            mpi_rank, mpi_world);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}
#endif

static int launched_by_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

Dist *dist_init(int *argc, char ***argv) {
    Dist *d = callocCheck(1, sizeof(Dist));
    d->world = d->local_world = 1;
    d->host = d->device = &single_ops;
    if (!launched_by_mpirun()) return d;
#ifdef TNG_HAVE_MPI
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (provided < MPI_THREAD_FUNNELED) die("dist: MPI lacks MPI_THREAD_FUNNELED support");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->world);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &d->local_rank);
    MPI_Comm_size(node, &d->local_world);
    MPI_Comm_free(&node);
    mpi_joined = 1;
    mpi_rank = d->rank;
    mpi_world = d->world;
    atexit(abort_unless_finalized);
    d->host = d->device = &mpi_ops;
    d->queue = callocCheck(1, sizeof(DistQueue));
#else
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (size && atoi(size) > 1)
        die("dist: started by mpirun with %s processes, but this build has no MPI (no mpicc was "
            "found at build time); rebuild with OpenMPI installed",
            size);
#endif
    return d;
}

/* cuda/collective_nccl.cu, when the program links it (weak: see engine/backend.c) */
extern void dist_attach_nccl(Dist *d) __attribute__((weak));

/* Under mpirun (even -np 1, which is how one GPU tests NCCL), a GPU backend's tensors travel
 * over NCCL; a single process started alone has no collectives to run. */
void dist_use_backend(Dist *d, const Backend *be) {
    if (d->host != &single_ops && be != backend_cpu() && dist_attach_nccl) dist_attach_nccl(d);
}

void dist_finalize(Dist *d) {
    watchdog_stop();
    if (d->device_release) d->device_release(d);
#ifdef TNG_HAVE_MPI
    if (d->queue) {
        if (d->queue->count) die("dist: %d all-reduces started but never waited for", d->queue->count);
        free(d->queue->requests);
        free(d->queue);
    }
    if (mpi_joined && !mpi_finalized) {
        MPI_Finalize();
        mpi_finalized = 1;
    }
#endif
    free(d);
}

void dist_barrier(const Dist *d) {
#ifdef TNG_HAVE_MPI
    if (d->world == 1) return;
    dist_collective_begin("barrier");
    MPI_Barrier(MPI_COMM_WORLD);
    dist_collective_end();
#endif
}

void dist_abort(const Dist *d, int code, const char *msg) {
    fprintf(stderr, "tng: rank %d of %d: %s\n", d->rank, d->world, msg);
    fflush(stderr);
#ifdef TNG_HAVE_MPI
    if (d->world > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

const char *dist_transport(void) {
#ifdef TNG_HAVE_MPI
    static char version[MPI_MAX_LIBRARY_VERSION_STRING + 8];
    if (!version[0]) {
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(lib, &len);
        lib[strcspn(lib, ",\n")] = '\0'; /* the first clause names the library and version */
        snprintf(version, sizeof version, "MPI (%s)", lib);
    }
    return version;
#else
    return "none: built without MPI";
#endif
}
