/*
 * test_emu_warp.cu: the emulator's warp operations and barriers (tests/emu/include/cudaemu.h)
 * against CUDA's rules: the lane each shuffle reads for every width and offset, the votes,
 * what a barrier orders (and what a missing one looks like in each thread order, and to
 * ThreadSanitizer in the tsan build), and every kernel error the emulator reports.
 *
 * The expected lanes come from the CUDA C++ Programming Guide's description of the
 * shuffles, written independently of the emulator's arithmetic: lanes form groups of
 * `width`; __shfl_sync reads lane srcLane mod width of the caller's group; __shfl_up_sync and
 * __shfl_down_sync read delta lanes below or above and keep their own value past the group's
 * edge; __shfl_xor_sync reads lane ^ laneMask, and keeps its own value when that lane lies
 * in a later group (an earlier group's lane is read).
 */
#include "emu_test.h" /* defines: expect_child, device_floats, host_copy, TNG_LAUNCH */

enum { SHFL_IDX, SHFL_UP, SHFL_DOWN, SHFL_XOR };
static const char *const shfl_names[] = {"idx", "up", "down", "xor"};

/* out[t] = the value thread t read; every lane offers 1000 + its thread index. 64 threads:
 * two warps, so that lane and thread index differ. */
static __global__ void shuffle_kernel(float *out, int op, int arg, int width) {
    float v = 1000.0f + threadIdx.x, got = 0.0f;
    switch (op) {
    case SHFL_IDX: got = __shfl_sync(0xffffffffu, v, arg, width); break;
    case SHFL_UP: got = __shfl_up_sync(0xffffffffu, v, (unsigned)arg, width); break;
    case SHFL_DOWN: got = __shfl_down_sync(0xffffffffu, v, (unsigned)arg, width); break;
    default: got = __shfl_xor_sync(0xffffffffu, v, arg, width); break;
    }
    out[threadIdx.x] = got;
}

/* The lane the Programming Guide says lane `lane` reads. */
static int expected_source(int op, int lane, int arg, int width) {
    int group = lane / width * width, in_group = lane % width;
    switch (op) {
    case SHFL_IDX: return group + ((arg % width) + width) % width;
    case SHFL_UP: return in_group >= arg ? lane - arg : lane;
    case SHFL_DOWN: return in_group + arg < width ? lane + arg : lane;
    default: return (lane ^ arg) < group + width ? lane ^ arg : lane;
    }
}

static void test_shuffle_lane_math(void) {
    const int widths[] = {1, 2, 4, 8, 16, 32};
    const int args[4][8] = {{0, 1, 5, 15, 31, -1, -7, 37},
                            {0, 1, 2, 3, 7, 8, 16, 31},
                            {0, 1, 2, 3, 7, 8, 16, 31},
                            {0, 1, 2, 3, 5, 8, 16, 31}};
    float *out = device_floats(64, NAN);
    int bad = 0;
    for (int op = SHFL_IDX; op <= SHFL_XOR; op++)
        for (int w = 0; w < 6; w++)
            for (int a = 0; a < 8; a++) {
                TNG_LAUNCH(shuffle_kernel, 1, 64, 0, 0, out, op, args[op][a], widths[w]);
                float *got = host_copy(out, 64);
                for (int t = 0; t < 64; t++) {
                    int want = t / 32 * 32 + expected_source(op, t % 32, args[op][a], widths[w]);
                    if (got[t] != 1000.0f + want && bad++ < 5)
                        CHECK(0, "%s width %d arg %d: thread %d read %g, want thread %d",
                              shfl_names[op], widths[w], args[op][a], t, got[t], want);
                }
                free(got);
            }
    CHECK(bad == 0, "%d wrong lanes in all", bad);
    cudaCheck(cudaFree(out));
}

/* A 64-bit value crosses whole, and a mask of half a warp serves that half alone. */
static __global__ void wide_and_partial_kernel(double *wide, float *half) {
    unsigned lane = threadIdx.x % 32;
    wide[lane] = __shfl_down_sync(0xffffffffu, 1e300 * (lane + 1), 1);
    if (lane < 16)
        half[lane] = __shfl_xor_sync(0x0000ffffu, (float)lane, 1, 16);
}

static void test_shuffle_of_doubles_and_partial_masks(void) {
    double *wide = NULL;
    cudaCheck(cudaMalloc(&wide, sizeof(double) * 32));
    float *half = device_floats(16, NAN);
    TNG_LAUNCH(wide_and_partial_kernel, 1, 32, 0, 0, wide, half);
    double got_wide[32];
    cudaCheck(cudaMemcpy(got_wide, wide, sizeof got_wide, cudaMemcpyDeviceToHost));
    float *got_half = host_copy(half, 16);
    for (int l = 0; l < 32; l++)
        CHECK(got_wide[l] == 1e300 * (l < 31 ? l + 2 : 32), "double lane %d: %g", l, got_wide[l]);
    for (int l = 0; l < 16; l++)
        CHECK(got_half[l] == (float)(l ^ 1), "half-warp lane %d: %g", l, got_half[l]);
    free(got_half);
    cudaCheck(cudaFree(wide));
    cudaCheck(cudaFree(half));
}

/* out[t] = {ballot, any, all, syncthreads_count} of the predicate "lane is odd" (64 threads) */
static __global__ void vote_kernel(float *out) {
    int odd = threadIdx.x % 2;
    unsigned ballot = __ballot_sync(0xffffffffu, odd);
    out[threadIdx.x * 4 + 0] = (float)ballot;
    out[threadIdx.x * 4 + 1] = (float)__any_sync(0xffffffffu, odd);
    out[threadIdx.x * 4 + 2] = (float)__all_sync(0xffffffffu, odd);
    out[threadIdx.x * 4 + 3] = (float)__syncthreads_count(odd);
}

static void test_votes(void) {
    float *out = device_floats(64 * 4, NAN);
    TNG_LAUNCH(vote_kernel, 1, 64, 0, 0, out);
    float *got = host_copy(out, 64 * 4);
    for (int t = 0; t < 64; t++) {
        CHECK(got[t * 4] == (float)0xaaaaaaaau, "ballot of thread %d: %g", t, got[t * 4]);
        CHECK(got[t * 4 + 1] == 1.0f && got[t * 4 + 2] == 0.0f, "any/all of thread %d", t);
        CHECK(got[t * 4 + 3] == 32.0f, "__syncthreads_count of thread %d: %g", t, got[t * 4 + 3]);
    }
    free(got);
    cudaCheck(cudaFree(out));
}

/* Every thread writes its slot of shared memory, then reads its neighbour's: after a barrier
 * (with_barrier) the value, without one whatever the order leaves. */
static __global__ void neighbour_kernel(float *out, int with_barrier) {
    TNG_DYNAMIC_SMEM(float, slots);
    int t = threadIdx.x, n = blockDim.x;
    slots[t] = (float)t;
    if (with_barrier)
        __syncthreads();
    out[t] = slots[(t + 1) % n];
}

/* How many threads read their neighbour's value, in the given thread order. */
static int neighbours_seen(int with_barrier, bool reverse) {
    const int n = 64;
    float *out = device_floats(n, NAN);
    emu::st().thread_reverse = reverse;
    TNG_LAUNCH(neighbour_kernel, 1, n, sizeof(float) * n, 0, out, with_barrier);
    emu::st().thread_reverse = false;
    float *got = host_copy(out, n);
    int seen = 0;
    for (int t = 0; t < n; t++)
        seen += got[t] == (float)((t + 1) % n);
    free(got);
    cudaCheck(cudaFree(out));
    return seen;
}

/* A barrier orders shared memory in both thread orders. */
static void test_barrier_orders_memory(void) {
    CHECK(neighbours_seen(1, false) == 64 && neighbours_seen(1, true) == 64, "with a barrier");
}

/* Without the barrier: forward, thread t runs to its end before t+1 writes, so only the last
 * thread (reading thread 0) sees a value; reverse, every thread but thread 63, whose
 * neighbour runs last. Each order leaves other threads reading the NaN poison: which is why
 * `make test` runs both. Exits 0 when the counts are those. */
static void run_without_barrier(void) {
    int forward = neighbours_seen(0, false), reverse = neighbours_seen(0, true);
    fprintf(stderr, "seen forward %d reverse %d\n", forward, reverse);
    exit(forward == 1 && reverse == 63 ? 0 : 1);
}
static void run_with_barrier(void) { exit(neighbours_seen(1, false) == 64 ? 0 : 1); }

/* This program again, fresh, with one argument (main): under ThreadSanitizer a forked child
 * checks nothing (TSan stands down in a child forked from a threaded process, and fibers
 * count as threads). */
static void exec_self(void *mode) {
    execl("/proc/self/exe", "test_emu_warp", (const char *)mode, (char *)NULL);
    _exit(127);
}

/* In a fresh process, since under ThreadSanitizer (the tsan build) the race is reported:
 * there every CUDA thread is a fiber and only barriers order them, so the missing barrier
 * must be a reported data race and the barrier must silence it. */
static void test_missing_barrier_shows(void) {
    ChildEnd racy = run_in_child(exec_self, (void *)"without-barrier");
#ifdef EMU_TSAN /* (TSan's exit status, 66 after a report, replaces the child's) */
    CHECK(child_said(&racy, "ThreadSanitizer: data race"), "no race reported:\n%s", racy.message);
#else
    CHECK(racy.exited && racy.code == 0, "without a barrier: %s", racy.message);
#endif
    ChildEnd clean = run_in_child(exec_self, (void *)"with-barrier");
    CHECK(clean.exited && clean.code == 0 && !child_said(&clean, "ThreadSanitizer"),
          "with a barrier: %s", clean.message);
}

/* ---------------------------------------------------------------- kernel errors */

static __global__ void exit_before_barrier_kernel() {
    if (threadIdx.x < 16)
        return;
    __syncthreads();
}
static __global__ void two_barriers_kernel() {
    if (threadIdx.x % 2)
        __syncthreads();
    else
        __syncthreads();
}
static __global__ void mask_without_caller_kernel() {
    (void)__shfl_sync(threadIdx.x == 0 ? 0x2u : 0xffffffffu, 1.0f, 0);
}
static __global__ void full_mask_kernel() { (void)__shfl_xor_sync(0xffffffffu, 1.0f, 1); }
static __global__ void exited_lane_kernel() {
    if (threadIdx.x >= 16)
        return;
    (void)__shfl_xor_sync(0xffffffffu, 1.0f, 1);
}
static __global__ void mixed_ops_kernel() {
    if (threadIdx.x % 2)
        (void)__shfl_down_sync(0xffffffffu, 1.0f, 1);
    else
        (void)__shfl_xor_sync(0xffffffffu, 1.0f, 1);
}
static __global__ void width_three_kernel() { (void)__shfl_sync(0xffffffffu, 1.0f, 0, 3); }
static __global__ void read_outside_mask_kernel() {
    if (threadIdx.x < 16)
        (void)__shfl_sync(0x0000ffffu, 1.0f, 20);
}
static __global__ void deadlock_kernel() {
    if (threadIdx.x == 0)
        (void)__shfl_sync(0x3u, 1.0f, 1);
    else
        __syncthreads();
}
static __global__ void write_kernel(float *out) { out[threadIdx.x] = 1.0f; }

typedef struct {
    void (*kernel)();
    unsigned threads;
} ErrorCase;

static void launch_error_case(void *arg) {
    const ErrorCase *c = (const ErrorCase *)arg;
    void (*kernel)() = c->kernel;
    EMU_LAUNCH(kernel, 1, c->threads, 0, 0);
}
static void launch_with_host_pointer(void *unused) {
    float host[32];
    TNG_LAUNCH(write_kernel, 1, 32, 0, 0, host);
}
static void barrier_outside_kernel(void *unused) { __syncthreads(); }
static void shuffle_outside_kernel(void *unused) { (void)__shfl_sync(0xffffffffu, 1.0f, 0); }

static void test_kernel_errors(void) {
    static const ErrorCase divergent = {exit_before_barrier_kernel, 32},
                           two_barriers = {two_barriers_kernel, 32},
                           no_caller = {mask_without_caller_kernel, 32},
                           absent = {full_mask_kernel, 16}, exited = {exited_lane_kernel, 32},
                           mixed = {mixed_ops_kernel, 32}, width = {width_three_kernel, 32},
                           outside = {read_outside_mask_kernel, 32},
                           deadlock = {deadlock_kernel, 32};
    const ChildCase cases[] = {
        {"divergent barrier", launch_error_case, (void *)&divergent, ENDS_BY_ABORT,
         "after 16 threads of the block exited"},
        {"two barriers", launch_error_case, (void *)&two_barriers, ENDS_BY_ABORT,
         "__syncthreads at different call sites"},
        {"mask without the caller", launch_error_case, (void *)&no_caller, ENDS_BY_ABORT,
         "that omits it"},
        {"absent lane", launch_error_case, (void *)&absent, ENDS_BY_ABORT,
         "which the block does not have"},
        {"exited lane", launch_error_case, (void *)&exited, ENDS_BY_ABORT, "which has exited"},
        {"different ops, one mask", launch_error_case, (void *)&mixed, ENDS_BY_ABORT,
         "lanes of one mask in different warp ops"},
        {"width 3", launch_error_case, (void *)&width, ENDS_BY_ABORT,
         "width 3 is not a power of 2"},
        {"read outside the mask", launch_error_case, (void *)&outside, ENDS_BY_ABORT,
         "which is not in mask 0x0000ffff"},
        {"deadlock", launch_error_case, (void *)&deadlock, ENDS_BY_ABORT,
         "deadlock: no thread can proceed"},
        /* the report names the line in the kernel */
        {"error location", launch_error_case, (void *)&divergent, ENDS_BY_ABORT,
         "test_emu_warp.cu:"},
        {"host pointer", launch_with_host_pointer, NULL, ENDS_BY_ABORT,
         "is not in device memory"},
        {"barrier outside a kernel", barrier_outside_kernel, NULL, ENDS_BY_ABORT,
         "__syncthreads outside a kernel"},
        {"shuffle outside a kernel", shuffle_outside_kernel, NULL, ENDS_BY_ABORT,
         "warp op outside a kernel"},
    };
    expect_children(cases, sizeof cases / sizeof *cases);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "without-barrier") == 0)
        run_without_barrier();
    if (argc > 1 && strcmp(argv[1], "with-barrier") == 0)
        run_with_barrier();
    RUN_TEST(test_shuffle_lane_math);
    RUN_TEST(test_shuffle_of_doubles_and_partial_masks);
    RUN_TEST(test_votes);
    RUN_TEST(test_barrier_orders_memory);
    RUN_TEST(test_missing_barrier_shows);
    RUN_TEST(test_kernel_errors);
    return test_summary();
}
