/*
 * dist.c: the collective layer (dist.h) over MPI, and the one-process world.
 *
 * Built with TNG_HAVE_MPI (the Makefile defines it when it finds mpicc) this file speaks MPI
 * when mpirun started the process; otherwise, and always without TNG_HAVE_MPI, it is a world
 * of one whose collectives are copies. MPI calls take int counts, so the collectives on
 * size_t counts (all-reduce, broadcast: a whole gradient buffer) go in chunks of at most
 * INT_MAX elements.
 */
#include "dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

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

static const DistOps single_ops = {.name = "single",
                                   .all_gather = single_all_gather,
                                   .reduce_scatter = single_reduce_scatter,
                                   .all_reduce = single_all_reduce,
                                   .broadcast = single_broadcast};

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
    MPI_Allgatherv(src, counts[d->rank], mpi_type(type), recv, counts, displs, mpi_type(type),
                   MPI_COMM_WORLD);
    free(displs);
}

static void mpi_reduce_scatter(const Dist *d, float *recv, const float *send, const int *counts) {
    MPI_Reduce_scatter(send, recv, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

static void mpi_all_reduce(const Dist *d, void *buf, size_t count, DistType type, DistReduce op) {
    if (op == DIST_AVG && type != DIST_F32) die("dist: an average needs float data");
    MPI_Op mop = op == DIST_MAX ? MPI_MAX : MPI_SUM;
    for (size_t done = 0; done < count;) {
        int chunk = count - done > INT_MAX ? INT_MAX : (int)(count - done);
        char *at = (char *)buf + done * type_size(type);
        MPI_Allreduce(MPI_IN_PLACE, at, chunk, mpi_type(type), mop, MPI_COMM_WORLD);
        done += (size_t)chunk;
    }
    if (op == DIST_AVG) {
        float *x = buf, inv = 1.0f / (float)d->world;
        for (size_t i = 0; i < count; i++) x[i] *= inv;
    }
}

static void mpi_broadcast(const Dist *d, void *buf, size_t count, DistType type, int root) {
    for (size_t done = 0; done < count;) {
        int chunk = count - done > INT_MAX ? INT_MAX : (int)(count - done);
        MPI_Bcast((char *)buf + done * type_size(type), chunk, mpi_type(type), root, MPI_COMM_WORLD);
        done += (size_t)chunk;
    }
}

static const DistOps mpi_ops = {.name = "mpi",
                                .all_gather = mpi_all_gather,
                                .reduce_scatter = mpi_reduce_scatter,
                                .all_reduce = mpi_all_reduce,
                                .broadcast = mpi_broadcast};

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
#else
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (size && atoi(size) > 1)
        die("dist: started by mpirun with %s processes, but this build has no MPI (no mpicc was "
            "found at build time); rebuild with OpenMPI installed",
            size);
#endif
    return d;
}

void dist_finalize(Dist *d) {
    if (d->device_release) d->device_release(d);
#ifdef TNG_HAVE_MPI
    if (mpi_joined && !mpi_finalized) {
        MPI_Finalize();
        mpi_finalized = 1;
    }
#endif
    free(d);
}

void dist_barrier(const Dist *d) {
#ifdef TNG_HAVE_MPI
    if (d->world > 1) MPI_Barrier(MPI_COMM_WORLD);
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
