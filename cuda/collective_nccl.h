/*
 * collective_nccl.h: NCCL as the `device` transport of a Dist (host/dist.h), for the CUDA
 * backend under mpirun.
 *
 * dist_attach_nccl picks GPU local_rank % devices (cudaSetDevice; the local rank as the
 * launcher tells it, cuda/local_rank.h), lets rank 0 create the NCCL unique id, sends it to
 * every rank with the Dist's host (MPI) broadcast and joins the communicator
 * (ncclCommInitRank). From then on d->device runs every collective on a dedicated NCCL
 * stream, ordered after the compute (legacy default) stream by an event and before it by
 * another, so the model needs no synchronisation of its own. Counts are elements, as in
 * dist.h; a per-rank count that differs between ranks becomes a group of per-root
 * broadcasts (all-gather) or reductions (reduce-scatter), NCCL's own versions needing equal
 * counts. all_reduce_start leaves the compute stream free to run on until all_reduce_wait.
 * The hang watchdog polls ncclCommGetAsyncError and calls ncclCommAbort (d->device_poll,
 * d->device_abort). dist_finalize releases the communicator.
 */
#ifndef TNG_COLLECTIVE_NCCL_H
#define TNG_COLLECTIVE_NCCL_H

#ifdef __cplusplus
extern "C" {
#endif

#include "engine/dist.h"

void dist_attach_nccl(Dist *d);

#ifdef __cplusplus
}
#endif

#endif
