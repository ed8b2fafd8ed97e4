/*
 * queue.h: the one door through which the CUDA backend queues work on its stream, so that a
 * training step can be replayed from a graph without being captured again (C++ only).
 *
 * Every kernel launch (TNG_LAUNCH, kernels/common.cuh), GEMM (kernels/matmul.cuh), upload and
 * memset (cuda/backend_cuda.cu) goes through tng_queue(describe, op): `op` queues the work and
 * `describe` returns a 64-bit hash of what it queues (the kernel or call, its launch geometry
 * and every argument's bytes: pointers, shapes, scalars). Outside a graph step the op simply
 * runs and nothing is hashed. Inside one (Backend.graph_begin .. graph_launch) the backend
 * (tng_queue_step, backend_cuda.cu) keeps the step's list of hashes and either
 * - captures the ops into a new graph as they come, or
 * - holds them (queues nothing) while the list so far equals that of a graph it already has:
 *   if the whole step matches, that graph is launched as it is (no capture, no instantiation;
 *   the uploads' bytes, written to the same places of the pinned ring, are what changed);
 *   at the first op that matches no graph, a capture begins, the held ops are queued into it
 *   in order, and the step goes on as a capture.
 * So a replay happens only when the step would have captured exactly the same work, which is
 * what makes it safe: a value that differs between steps (the learning rate, a shape) must
 * either be data in device memory (uploaded) or it makes its own graph.
 */
#ifndef TNG_CUDA_QUEUE_H
#define TNG_CUDA_QUEUE_H

#include <stdint.h>
#include <string.h>

#include <functional>

#include <cuda_runtime.h>

/* Nonzero while a graph step is being built (backend_cuda.cu); read on every queued op. */
extern int tng_queue_hashing;
/* Takes the op of a graph step with its hash: runs it now (a capture), or holds it. */
void tng_queue_step(uint64_t hash, std::function<void()> op);

/* FNV-1a over bytes, continuing from h. */
static inline uint64_t tng_hash_bytes(uint64_t h, const void *bytes, size_t n) {
    const unsigned char *p = (const unsigned char *)bytes;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
static const uint64_t TNG_HASH_SEED = 0xcbf29ce484222325ull;

/* A value's bytes into the hash; a struct's padding is cleared first (GCC's and Clang's
 * __builtin_clear_padding), so that only its members count. */
template <typename Value> static inline uint64_t tng_hash_value(uint64_t h, const Value &value) {
    Value copy = value;
    __builtin_clear_padding(&copy);
    return tng_hash_bytes(h, &copy, sizeof copy);
}

/* The hash of values, each by its bytes (a dim3, a pointer, an int, a struct...). */
template <typename... Values> static inline uint64_t tng_hash_values(const Values &...values) {
    uint64_t h = TNG_HASH_SEED;
    ((h = tng_hash_value(h, values)), ...);
    return h;
}

template <typename Describe, typename Op> static inline void tng_queue(Describe describe, Op op) {
    if (tng_queue_hashing)
        tng_queue_step(describe(), op);
    else
        op();
}

/* A kernel launch: launch(grid, block, smem, stream, args...) queues it; fn names it. The
 * arguments are evaluated once, here, and kept by value by a held op. */
template <typename Launch, typename... Args>
static inline void tng_queue_launch(const void *fn, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                                    Launch launch, Args... args) {
    tng_queue([&] { return tng_hash_values(fn, grid, block, smem, stream, args...); },
              [=] { launch(grid, block, smem, stream, args...); });
}

#endif
