/*
 * cudaemu.h: the CPU emulator of the CUDA programming model that the GPU tests run on
 * (tests/emu/README.md): kernels compile with a host C++ compiler and run here, with CUDA's
 * rules for barriers and warp operations checked.
 *
 * Each CUDA thread of a block is a fiber (cudaemu_fiber.h); blocks run one at a time, in
 * order (or reversed: EMU_BLOCK_ORDER=reverse). A fiber runs until it reaches a
 * synchronisation point (__syncthreads, a warp shuffle or vote, __syncwarp) or exits; the
 * scheduler then resolves:
 *   - a warp op completes when every lane named in its mask waits at the same op with the
 *     same mask; results are computed then, with CUDA's lane math for idx/up/down/xor and
 *     width (offsets and lane masks 0..31);
 *   - __syncthreads completes when every thread of the block waits at it.
 * Anything else is a kernel error: it aborts with file:line (a __syncthreads that some
 * threads exited before or reach at another call site, a shuffle whose mask names an exited
 * or absent lane or one waiting elsewhere, a read from a lane outside the mask, a mask that
 * omits the caller, deadlock). Threads between sync points run in thread order
 * (EMU_THREAD_ORDER=reverse flips it, which exposes missing barriers in the other direction).
 *
 * Dynamic shared memory is a fresh malloc of exactly the launch's bytes per block, filled
 * with 0xFF (NaN), so a sizing bug is an ASan heap-buffer-overflow and a read before write
 * is a NaN; cudaMalloc memory is filled the same way (cudaemu_runtime.h). Kernel pointer
 * arguments must lie in cudaMalloc memory. __trap() is an asynchronous fault, as on a GPU:
 * the launch succeeds and the next synchronising call returns the error, as does every call
 * after it (the error is sticky).
 *
 * Sanitizers: under -fsanitize=thread each CUDA thread is a TSan fiber; __syncthreads and
 * __syncwarp are the only happens-before edges between threads of a block (shuffles carry
 * values, not memory order), so a missing barrier on shared or global memory is a TSan
 * data race (the scope of compute-sanitizer's racecheck). Blocks are chained, so races
 * BETWEEN blocks are not reported: compare EMU_BLOCK_ORDER=reverse against forward for
 * those. Under -fsanitize=address the fiber switches are annotated (memcheck's scope).
 *
 * Kernels launch through EMU_LAUNCH and declare dynamic shared memory with
 * EMU_EXTERN_SHARED; the project's kernels reach both through the portable TNG_LAUNCH and
 * TNG_DYNAMIC_SMEM (kernels/common.cuh), which are <<<...>>> and extern __shared__ under
 * nvcc. Everything runs synchronously at the launch: streams and events order nothing.
 */
#ifndef CUDAEMU_H
#define CUDAEMU_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cudaemu_fiber.h"

/* ------------------------------------------------------------------ CUDA keywords */
#define __global__
#define __device__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __shared__ static /* blocks run one at a time: one copy serves them all */

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
static constexpr int warpSize = 32;

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorNotReady = 600,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureImplicit = 906,
} cudaError_t;
typedef struct emu_stream *cudaStream_t; /* every stream is the one in-order CPU */
typedef struct emu_event *cudaEvent_t;   /* every event has happened: work runs as it is queued */
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
};
enum cudaDeviceAttr { cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

namespace emu {

enum { READY, AT_BARRIER, AT_WARP, EXITED };
enum WarpOp { OP_SHFL_IDX, OP_SHFL_UP, OP_SHFL_DOWN, OP_SHFL_XOR, OP_BALLOT, OP_SYNCWARP, OP_GATHER };
static const char *const op_names[] = {"__shfl_sync",   "__shfl_up_sync", "__shfl_down_sync",
                                       "__shfl_xor_sync", "__ballot_sync",  "__syncwarp",
                                       "warp all-gather"};
static const size_t STACK_BYTES = 256 * 1024;
static const unsigned MAX_THREADS = 1024;

struct Thread {
    Context ctx;
    char *stack;
    dim3 tid;
    int state;
    /* the op it waits at */
    int op, arg, width;
    unsigned mask;
    uint64_t value, result;
    void *gather_dst; /* OP_GATHER: where the lane wants every lane's offer (value: its own) */
    const char *file;
    int line;
    unsigned bar_gen;
    int bar_pred;
    void *tsan_fiber;
};

struct State {
    Thread threads[MAX_THREADS];
    unsigned nthreads = 0;
    Thread *cur = nullptr;
    Context main_ctx;
    void *main_tsan_fiber = nullptr;
    const void *main_stack_bottom = nullptr;
    size_t main_stack_size = 0;
    dim3 block_idx, block_dim, grid_dim;
    void (*body)(void *) = nullptr;
    void *body_arg = nullptr;
    unsigned char *dyn_smem = nullptr;
    unsigned bar_gen = 0;
    int bar_result = 0;
    const char *launch_file = "?";
    int launch_line = 0;
    const char *kernel_name = "?";
    cudaError_t last_error = cudaSuccess; /* of the last failing call: cudaGetLastError */
    cudaError_t fault = cudaSuccess;      /* a kernel's __trap(): sticky, see trap_impl */
    std::map<uintptr_t, size_t> allocations; /* device allocations: start -> bytes */
    std::map<const void *, int> max_dyn_smem;  /* cudaFuncSetAttribute */
    char sync_objs[4 + 2 * 32]; /* TSan sync addresses: block start/end, barrier x2, warps */
    bool thread_reverse = false, block_reverse = false;
    size_t smem_optin = 227 * 1024;
    unsigned long long switches = 0, launches = 0, blocks = 0, threads_run = 0;
    std::map<uintptr_t, size_t> pinned; /* page-locked host allocations (cudaMallocHost) */
    /* What a host program's calls would cost on a GPU, for the tests to read (Counters below):
     * the calls that block the host until the device has caught up, the device allocations
     * and frees, and the GEMMs (cuBLAS calls; launches counts the kernels). */
    unsigned long long host_syncs = 0, device_allocs = 0, gemms = 0, graph_launches = 0, graph_instantiations = 0;
    /* Stream capture (cudaStreamBeginCapture): while `capturing`, the work queued on the
     * capturing stream is recorded here instead of run, and cudaGraphLaunch runs it in order.
     * A call that would wait or allocate invalidates the capture, as on a GPU. */
    bool capturing = false, capture_invalidated = false;
    std::vector<std::function<void()>> captured;
    pid_t fibers_pid = 0; /* the process that created the TSan fibers */
};

inline void print_stats();
inline State &st() {
    static State s;
    static bool init;
    if (!init) {
        init = true;
        if (getenv("EMU_STATS"))
            atexit(print_stats);
        const char *o = getenv("EMU_THREAD_ORDER");
        s.thread_reverse = o && !strcmp(o, "reverse");
        o = getenv("EMU_BLOCK_ORDER");
        s.block_reverse = o && !strcmp(o, "reverse");
        o = getenv("EMU_SMEM_OPTIN");
        if (o)
            s.smem_optin = (size_t)atol(o);
    }
    return s;
}

EMU_NO_TSAN inline Thread *self() { return st().cur; }
/* A call that blocks the host: counted; during a stream capture it is refused and invalidates
 * the capture, as on a GPU (cudaErrorStreamCaptureImplicit). */
inline cudaError_t blocking_call() {
    State &s = st();
    if (s.capturing) {
        s.capture_invalidated = true;
        return s.last_error = cudaErrorStreamCaptureImplicit;
    }
    s.host_syncs++;
    return cudaSuccess;
}
/* Work queued on a stream: recorded while capturing (true), else to run now (false). */
inline bool record(std::function<void()> work) {
    if (!st().capturing)
        return false;
    st().captured.push_back(std::move(work));
    return true;
}
inline void print_stats() {
    fprintf(stderr, "cudaemu: %llu launches, %llu blocks, %llu threads, %llu fiber switches\n",
            st().launches, st().blocks, st().threads_run, st().switches);
}

[[noreturn]] inline void kernel_error(const char *detail_file, int detail_line, const char *msg) {
    State &s = st();
    fprintf(stderr,
            "cudaemu: kernel error in %s (launched at %s:%d), block (%u,%u,%u): %s\n"
            "cudaemu:   at %s:%d\n",
            s.kernel_name, s.launch_file, s.launch_line, s.block_idx.x, s.block_idx.y,
            s.block_idx.z, msg, detail_file ? detail_file : "?", detail_line);
    abort();
}

/* ------------------------------------------------------------------ fiber switching */
EMU_NO_TSAN inline void switch_to_thread(Thread *t) {
    State &s = st();
    s.cur = t;
    s.switches++;
#ifdef EMU_TSAN
    __tsan_switch_to_fiber(t->tsan_fiber, 1 /* no_sync: barriers are the only edges */);
#endif
#ifdef EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, t->stack, STACK_BYTES);
#endif
    ctx_switch(&s.main_ctx, &t->ctx);
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    s.cur = nullptr;
}

/* called on the fiber: back to the scheduler */
EMU_NO_TSAN inline void yield_to_main() {
    State &s = st();
    Thread *t = s.cur;
#ifdef EMU_TSAN
    __tsan_switch_to_fiber(s.main_tsan_fiber, 1);
#endif
#ifdef EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(t->state == EXITED ? nullptr : &fake, s.main_stack_bottom,
                                   s.main_stack_size);
#endif
    ctx_switch(&t->ctx, &s.main_ctx);
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

EMU_NO_TSAN inline void fiber_entry() {
    State &s = st();
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &s.main_stack_bottom, &s.main_stack_size);
#endif
#ifdef EMU_TSAN
    __tsan_acquire(&s.sync_objs[0]); /* everything before the block */
#endif
    s.body(s.body_arg);
    Thread *t = s.cur;
#ifdef EMU_TSAN
    __tsan_release(&s.sync_objs[1]); /* the block's end */
#endif
    t->state = EXITED;
    yield_to_main();
    abort(); /* never resumed */
}

/* ------------------------------------------------------------------ thread-side sync */
/* The calling thread, now waiting (state AT_BARRIER or AT_WARP) at a sync point at file:line. */
EMU_NO_TSAN inline Thread *arrive(int state, const char *file, int line, const char *what) {
    Thread *t = st().cur;
    if (!t)
        kernel_error(file, line, what);
    t->state = state;
    t->file = file;
    t->line = line;
    return t;
}

EMU_NO_TSAN inline int syncthreads_impl(const char *file, int line, int pred = 0) {
    State &s = st();
    Thread *t = arrive(AT_BARRIER, file, line, "__syncthreads outside a kernel");
    t->bar_gen = s.bar_gen;
    t->bar_pred = pred;
#ifdef EMU_TSAN
    __tsan_release(&s.sync_objs[2 + (t->bar_gen & 1)]);
#endif
    yield_to_main();
#ifdef EMU_TSAN
    __tsan_acquire(&s.sync_objs[2 + (t->bar_gen & 1)]);
#endif
    return s.bar_result;
}

EMU_NO_TSAN inline uint64_t warp_op(int op, unsigned mask, uint64_t value, int arg, int width,
                                    const char *file, int line) {
    State &s = st();
    Thread *t = arrive(AT_WARP, file, line, "warp op outside a kernel");
    t->op = op;
    t->mask = mask;
    t->value = value;
    t->arg = arg;
    t->width = width;
    unsigned flat = (unsigned)(t - s.threads);
#ifdef EMU_TSAN
    if (op == OP_SYNCWARP)
        __tsan_release(&s.sync_objs[4 + 2 * ((flat / 32) % 32)]);
#endif
    yield_to_main();
#ifdef EMU_TSAN
    if (op == OP_SYNCWARP)
        __tsan_acquire(&s.sync_objs[4 + 2 * ((flat / 32) % 32)]);
#endif
    (void)flat;
    return t->result;
}

template <typename T> inline uint64_t to_bits(T v) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof(T));
    return b;
}
template <typename T> inline T from_bits(uint64_t b) {
    T v;
    memcpy(&v, &b, sizeof(T));
    return v;
}

/* ------------------------------------------------------------------ scheduler */
inline void fail_at(Thread *t, const char *msg) {
    kernel_error(t->file, t->line, msg);
}

/* Completes the warp ops whose whole mask is waiting; returns whether any completed. */
EMU_NO_TSAN inline bool resolve_warps() {
    State &s = st();
    bool any = false;
    char msg[512];
    for (unsigned w0 = 0; w0 < s.nthreads; w0 += 32) {
        unsigned lanes = std::min(32u, s.nthreads - w0);
        for (unsigned l = 0; l < lanes; l++) {
            Thread *t = &s.threads[w0 + l];
            if (t->state != AT_WARP)
                continue;
            unsigned mask = t->mask;
            if (!(mask & (1u << l))) {
                snprintf(msg, sizeof msg, "%s by lane %u with mask 0x%08x that omits it",
                         op_names[t->op], l, mask);
                fail_at(t, msg);
            }
            bool complete = true;
            for (unsigned m = 0; m < 32; m++) {
                if (!(mask & (1u << m)))
                    continue;
                if (m >= lanes) {
                    snprintf(msg, sizeof msg,
                             "%s mask 0x%08x names lane %u, which the block does not have "
                             "(blockDim %u threads)",
                             op_names[t->op], mask, m, s.nthreads);
                    fail_at(t, msg);
                }
                Thread *u = &s.threads[w0 + m];
                if (u->state == EXITED) {
                    snprintf(msg, sizeof msg, "%s mask 0x%08x names lane %u, which has exited",
                             op_names[t->op], mask, m);
                    fail_at(t, msg);
                }
                if (u->state == AT_WARP &&
                    (u->op != t->op || u->mask != mask || u->width != t->width ||
                     (t->op == OP_GATHER && u->arg != t->arg))) {
                    snprintf(msg, sizeof msg,
                             "lanes of one mask in different warp ops: lane %u in %s (mask "
                             "0x%08x) at %s:%d, lane %u in %s (mask 0x%08x)",
                             l, op_names[t->op], mask, t->file, t->line, m, op_names[u->op],
                             u->mask);
                    fail_at(u, msg);
                }
                if (u->state != AT_WARP)
                    complete = false; /* at a block barrier: reported as a deadlock later */
            }
            if (!complete)
                continue;
            int width = t->width;
            if (width < 1 || width > 32 || (width & (width - 1))) {
                snprintf(msg, sizeof msg, "%s width %d is not a power of 2 up to 32",
                         op_names[t->op], width);
                fail_at(t, msg);
            }
            uint64_t ballot = 0;
            for (unsigned m = 0; m < 32; m++)
                if ((mask & (1u << m)) && s.threads[w0 + m].value)
                    ballot |= 1u << m;
            for (unsigned m = 0; m < 32; m++) {
                if (!(mask & (1u << m)))
                    continue;
                Thread *u = &s.threads[w0 + m];
                unsigned base = m / width * width, src = m;
                switch (u->op) {
                case OP_SHFL_IDX:
                    src = base + ((unsigned)u->arg % width);
                    break;
                case OP_SHFL_UP:
                    src = (int)(m - base) >= u->arg ? m - u->arg : m;
                    break;
                case OP_SHFL_DOWN:
                    src = m - base + u->arg < (unsigned)width ? m + u->arg : m;
                    break;
                case OP_SHFL_XOR:
                    src = m ^ (unsigned)u->arg;
                    if (src >= base + width || src >= 32)
                        src = m;
                    break;
                default:
                    break;
                }
                if (u->op <= OP_SHFL_XOR) {
                    if (!(mask & (1u << src))) {
                        snprintf(msg, sizeof msg,
                                 "%s: lane %u reads lane %u, which is not in mask 0x%08x "
                                 "(undefined value on a GPU)",
                                 op_names[u->op], m, src, mask);
                        fail_at(u, msg);
                    }
                    u->result = s.threads[w0 + src].value;
                } else if (u->op == OP_GATHER) {
                    /* byte by byte: a memcpy here would be TSan-instrumented (its interceptor) */
                    unsigned char *dst = (unsigned char *)u->gather_dst;
                    for (unsigned n = 0; n < 32; n++) {
                        if (!(mask & (1u << n)))
                            continue;
                        const unsigned char *src_bytes =
                            (const unsigned char *)(uintptr_t)s.threads[w0 + n].value;
                        for (int k = 0; k < u->arg; k++)
                            dst[(size_t)n * u->arg + k] = src_bytes[k];
                    }
                } else {
                    u->result = ballot;
                }
                u->state = READY;
            }
            any = true;
        }
    }
    return any;
}

EMU_NO_TSAN inline bool resolve_barrier() {
    State &s = st();
    unsigned live = 0, waiting = 0, exited = 0;
    Thread *first = nullptr;
    for (unsigned i = 0; i < s.nthreads; i++) {
        Thread *t = &s.threads[i];
        if (t->state == EXITED) {
            exited++;
            continue;
        }
        live++;
        if (t->state == AT_BARRIER) {
            waiting++;
            if (!first)
                first = t;
        }
    }
    if (!waiting || waiting != live)
        return false;
    char msg[512];
    if (exited) {
        snprintf(msg, sizeof msg,
                 "__syncthreads reached by %u threads after %u threads of the block exited "
                 "(divergent barrier: undefined behaviour, a hang on some GPUs)",
                 waiting, exited);
        fail_at(first, msg);
    }
    int count = 0;
    for (unsigned i = 0; i < s.nthreads; i++) {
        Thread *t = &s.threads[i];
        if (t->state != AT_BARRIER)
            continue;
        if (t->line != first->line || strcmp(t->file, first->file) != 0) {
            snprintf(msg, sizeof msg,
                     "__syncthreads at different call sites: thread %u at %s:%d, thread %u at "
                     "%s:%d",
                     (unsigned)(first - s.threads), first->file, first->line, i, t->file,
                     t->line);
            fail_at(t, msg);
        }
        count += t->bar_pred != 0;
    }
    s.bar_result = count;
    s.bar_gen++;
    for (unsigned i = 0; i < s.nthreads; i++)
        if (s.threads[i].state == AT_BARRIER)
            s.threads[i].state = READY;
    return true;
}

[[noreturn]] inline void report_deadlock() {
    State &s = st();
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "deadlock: no thread can proceed;");
    for (unsigned i = 0; i < s.nthreads && n < 900; i++) {
        Thread *t = &s.threads[i];
        if (t->state == AT_BARRIER && (i == 0 || s.threads[i - 1].state != AT_BARRIER))
            n += snprintf(msg + n, sizeof msg - n, " thread %u at __syncthreads %s:%d;", i,
                          t->file, t->line);
        if (t->state == AT_WARP && (i % 32 == 0 || s.threads[i - 1].state != AT_WARP))
            n += snprintf(msg + n, sizeof msg - n, " thread %u in %s (mask 0x%08x) %s:%d;", i,
                          op_names[t->op], t->mask, t->file, t->line);
    }
    kernel_error(nullptr, 0, msg);
}

EMU_NO_TSAN inline void run_block() {
    State &s = st();
    unsigned n = s.nthreads;
#ifdef EMU_TSAN
    s.main_tsan_fiber = __tsan_get_current_fiber();
    __tsan_release(&s.sync_objs[0]);
#endif
#ifdef EMU_TSAN
    /* a forked child makes fibers of its own: TSan loses the order between those it inherits */
    if (s.fibers_pid != getpid()) {
        for (unsigned i = 0; i < MAX_THREADS; i++)
            s.threads[i].tsan_fiber = nullptr;
        s.fibers_pid = getpid();
    }
#endif
    for (unsigned i = 0; i < n; i++) {
        Thread *t = &s.threads[i];
        if (!t->stack)
            t->stack = (char *)malloc(STACK_BYTES);
#ifdef EMU_TSAN
        if (!t->tsan_fiber)
            t->tsan_fiber = __tsan_create_fiber(0);
#endif
        t->tid = dim3(i % s.block_dim.x, i / s.block_dim.x % s.block_dim.y,
                      i / (s.block_dim.x * s.block_dim.y));
        t->state = READY;
        ctx_make(&t->ctx, t->stack, STACK_BYTES, fiber_entry);
    }
    for (;;) {
        for (unsigned k = 0; k < n && !s.fault; k++) {
            Thread *t = &s.threads[s.thread_reverse ? n - 1 - k : k];
            if (t->state == READY)
                switch_to_thread(t);
        }
        if (s.fault)
            return; /* a __trap(): the other threads are abandoned where they stand */
        bool all_exited = true;
        for (unsigned i = 0; i < n; i++)
            all_exited &= s.threads[i].state == EXITED;
        if (all_exited)
            break;
        if (resolve_warps())
            continue;
        if (resolve_barrier())
            continue;
        report_deadlock();
    }
#ifdef EMU_TSAN
    __tsan_acquire(&s.sync_objs[1]);
#endif
}

/* ------------------------------------------------------------------ launch */
inline bool is_device_range(const void *p, size_t bytes) {
    State &s = st();
    uintptr_t a = (uintptr_t)p;
    auto it = s.allocations.upper_bound(a);
    if (it == s.allocations.begin())
        return false;
    --it;
    return a >= it->first && a + bytes <= it->first + it->second + (bytes == 0);
}

template <typename T> inline void check_arg(const T &v, int index) {
    if constexpr (std::is_pointer_v<T>) {
        if (v && !is_device_range((const void *)v, 0)) {
            State &s = st();
            fprintf(stderr,
                    "cudaemu: launch of %s at %s:%d: argument %d (%p) is not in device memory "
                    "(cudaMalloc)\n",
                    s.kernel_name, s.launch_file, s.launch_line, index, (const void *)v);
            abort();
        }
    }
}

/* kernel: a callable that runs the kernel on its arguments; key: the kernel's address, under
 * which cudaFuncSetAttribute recorded its shared-memory allowance. Returns what the launch
 * itself returns on a GPU: a configuration error, or success (a fault inside the kernel is
 * reported later, by the next synchronising call). */
template <typename F, typename... Args>
cudaError_t launch(const char *file, int line, const char *name, F kernel, const void *key,
                   dim3 grid, dim3 block, size_t smem, cudaStream_t, Args... args) {
    State &s = st();
    if (s.fault)
        return s.last_error = s.fault;
    s.launch_file = file;
    s.launch_line = line;
    s.kernel_name = name;
    unsigned long long nthreads = (unsigned long long)block.x * block.y * block.z;
    if (!grid.x || !grid.y || !grid.z || !nthreads || nthreads > MAX_THREADS || block.x > 1024 ||
        block.y > 1024 || block.z > 64 || grid.y > 65535 || grid.z > 65535 ||
        grid.x > 2147483647u) {
        fprintf(stderr, "cudaemu: launch of %s at %s:%d: invalid configuration grid (%u,%u,%u) "
                        "block (%u,%u,%u)\n", name, file, line, grid.x, grid.y, grid.z, block.x,
                block.y, block.z);
        return s.last_error = cudaErrorInvalidConfiguration;
    }
    size_t allowed = 48 * 1024;
    auto it = s.max_dyn_smem.find(key);
    if (it != s.max_dyn_smem.end())
        allowed = (size_t)it->second;
    if (smem > allowed) {
        fprintf(stderr, "cudaemu: launch of %s at %s:%d: %zu bytes of dynamic shared memory > "
                        "%zu allowed (cudaFuncSetAttribute MaxDynamicSharedMemorySize)\n",
                name, file, line, smem, allowed);
        return s.last_error = cudaErrorInvalidValue;
    }
    int index = 0;
    (check_arg(args, index++), ...);
    if (s.capturing) { /* recorded with its arguments' values, launched by cudaGraphLaunch */
        s.captured.push_back([=]() { launch(file, line, name, kernel, key, grid, block, smem, nullptr, args...); });
        return cudaSuccess;
    }
    auto tuple = std::make_tuple(args...);
    auto body = [&]() { std::apply([&](auto... a) { kernel(a...); }, tuple); };
    s.body = [](void *p) { (*(decltype(body) *)p)(); };
    s.body_arg = &body;
    s.grid_dim = grid;
    s.block_dim = block;
    s.nthreads = (unsigned)nthreads;
    unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
    s.launches++;
    s.blocks += blocks;
    s.threads_run += blocks * nthreads;
    for (unsigned long long k = 0; k < blocks && !s.fault; k++) {
        unsigned long long b = s.block_reverse ? blocks - 1 - k : k;
        s.block_idx = dim3((unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y),
                           (unsigned)(b / ((unsigned long long)grid.x * grid.y)));
        s.dyn_smem = (unsigned char *)malloc(smem ? smem : 1);
        memset(s.dyn_smem, 0xff, smem);
        run_block();
        free(s.dyn_smem);
        s.dyn_smem = nullptr;
    }
    return cudaSuccess;
}

} // namespace emu

/* ------------------------------------------------------------------ built-in variables */
#define threadIdx (::emu::self()->tid)
#define blockIdx (::emu::st().block_idx)
#define blockDim (::emu::st().block_dim)
#define gridDim (::emu::st().grid_dim)

/* The launch k<<<grid, block, smem, stream>>>(args...): k is one function (a template's
 * arguments written out) or a pointer to one; its address keys its cudaFuncSetAttribute
 * allowance. */
#define EMU_LAUNCH(k, grid, block, smem, stream, ...)                                              \
    ::emu::launch(__FILE__, __LINE__, #k, [=](auto... emu_args) { k(emu_args...); },              \
                  (const void *)(k), dim3(grid), dim3(block), (size_t)(smem), stream,              \
                  ##__VA_ARGS__)
#define EMU_EXTERN_SHARED(type, name) type *name = (type *)(void *)::emu::st().dyn_smem

/* ------------------------------------------------------------------ device intrinsics */
#define __syncthreads() ((void)::emu::syncthreads_impl(__FILE__, __LINE__))
#define __syncthreads_count(p) ::emu::syncthreads_impl(__FILE__, __LINE__, (p))
#define __syncwarp(...) ::emu::syncwarp_impl(__FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_sync(...) ::emu::shfl_impl(::emu::OP_SHFL_IDX, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ::emu::shfl_impl(::emu::OP_SHFL_UP, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) ::emu::shfl_impl(::emu::OP_SHFL_DOWN, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) ::emu::shfl_impl(::emu::OP_SHFL_XOR, __FILE__, __LINE__, __VA_ARGS__)
#define __ballot_sync(mask, pred) ::emu::ballot_impl(__FILE__, __LINE__, (mask), (pred))
#define __any_sync(mask, pred) (::emu::ballot_impl(__FILE__, __LINE__, (mask), (pred)) != 0)
#define __all_sync(mask, pred) \
    (::emu::ballot_impl(__FILE__, __LINE__, (mask), (pred)) == (unsigned)(mask))
/* No CUDA counterpart: the warp-collective operations that exist only as PTX (mma) are
 * emulated with it (kernels/mma.cuh). Every lane of mask offers `bytes` bytes at `mine` and
 * gets every lane's offer, lane n's at all + n * bytes (lanes outside the mask: untouched).
 * A warp op like the shuffles: every lane of the mask must reach it, with the same mask and
 * the same byte count. */
#define EMU_WARP_ALL_GATHER(mask, mine, all, bytes) \
    ::emu::all_gather_impl(__FILE__, __LINE__, (mask), (mine), (all), (bytes))

namespace emu {
template <typename T>
inline T shfl_impl(int op, const char *file, int line, unsigned mask, T v, int arg,
                   int width = warpSize) {
    return from_bits<T>(warp_op(op, mask, to_bits(v), arg, width, file, line));
}
inline void syncwarp_impl(const char *file, int line, unsigned mask = 0xffffffffu) {
    warp_op(OP_SYNCWARP, mask, 0, 0, 32, file, line);
}
inline unsigned ballot_impl(const char *file, int line, unsigned mask, int pred) {
    return (unsigned)warp_op(OP_BALLOT, mask, pred != 0, 0, 32, file, line);
}
EMU_NO_TSAN inline void all_gather_impl(const char *file, int line, unsigned mask, const void *mine, void *all,
                                        int bytes) {
    if (st().cur)
        st().cur->gather_dst = all; /* (outside a kernel warp_op reports the error) */
    warp_op(OP_GATHER, mask, (uint64_t)(uintptr_t)mine, bytes, 32, file, line);
}

/* __trap(): the grid stops (no other thread of it runs on) and the launch has failed. As on
 * a GPU the failure is asynchronous: the launch returned success, the next synchronising
 * call returns cudaErrorLaunchFailure, and so does every runtime call after it. */
[[noreturn]] EMU_NO_TSAN inline void trap_impl(const char *file, int line) {
    State &s = st();
    Thread *t = s.cur;
    if (!t)
        kernel_error(file, line, "__trap outside a kernel");
    fprintf(stderr, "cudaemu: __trap() in %s (launched at %s:%d), block (%u,%u,%u) thread "
                    "(%u,%u,%u) at %s:%d\n", s.kernel_name, s.launch_file, s.launch_line,
            s.block_idx.x, s.block_idx.y, s.block_idx.z, t->tid.x, t->tid.y, t->tid.z, file, line);
    s.fault = cudaErrorLaunchFailure;
    t->state = EXITED;
    yield_to_main();
    abort(); /* never resumed */
}
} // namespace emu
#define __trap() ::emu::trap_impl(__FILE__, __LINE__)

#endif
