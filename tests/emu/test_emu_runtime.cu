/*
 * test_emu_runtime.cu: the emulator's memory, launches and numbers
 * (tests/emu/include/cudaemu_runtime.h, cuda_bf16.h): NaN-poisoned device and shared
 * memory, the 48 KB dynamic shared-memory rule and its opt-in, refused launches and copies,
 * the bf16 conversions against an independent bit-level reference, the rounded arithmetic
 * intrinsics, a kernel's fault: asynchronous and sticky as on a GPU, and reported by the
 * project's kernel_check naming the kernel only with TNG_CUDA_SYNC=1; the count of the calls
 * that would block the host on a GPU (emu_counters); and stream capture and graph replay.
 */
#include "emu_test.h" /* defines: expect_child, device_floats, host_copy, TNG_LAUNCH */

/* ---------------------------------------------------------------- poisoned memory */

/* out[block][t] = shared memory as the block found it; then the block writes it (a later
 * block must not see that: its shared memory is fresh) */
static __global__ void read_fresh_smem_kernel(float *out) {
    TNG_DYNAMIC_SMEM(float, smem);
    out[blockIdx.x * blockDim.x + threadIdx.x] = smem[threadIdx.x];
    __syncthreads();
    smem[threadIdx.x] = 1.0f;
}

static void test_nan_poisoned_memory(void) {
    const int threads = 32, blocks = 3;
    float *fresh = device_floats(threads, NAN);
    float *got = host_copy(fresh, threads);
    int nans = 0;
    for (int i = 0; i < threads; i++)
        nans += isnan(got[i]);
    CHECK(nans == threads, "cudaMalloc memory: %d of %d floats NaN", nans, threads);
    free(got);
    __nv_bfloat16 *half = NULL;
    cudaCheck(cudaMalloc(&half, sizeof(__nv_bfloat16)));
    __nv_bfloat16 h;
    cudaCheck(cudaMemcpy(&h, half, sizeof h, cudaMemcpyDeviceToHost));
    CHECK(isnan(__bfloat162float(h)), "cudaMalloc memory as bf16: 0x%04x", h.x);

    float *out = device_floats(threads * blocks, 0.0f);
    TNG_LAUNCH(read_fresh_smem_kernel, blocks, threads, sizeof(float) * threads, 0, out);
    got = host_copy(out, threads * blocks);
    nans = 0;
    for (int i = 0; i < threads * blocks; i++)
        nans += isnan(got[i]);
    CHECK(nans == threads * blocks, "shared memory: %d of %d reads NaN", nans, threads * blocks);
    free(got);
    cudaCheck(cudaFree(fresh));
    cudaCheck(cudaFree(half));
    cudaCheck(cudaFree(out));
}

/* ---------------------------------------------------------------- shared memory opt-in */

static __global__ void smem_kernel(float *out) {
    TNG_DYNAMIC_SMEM(float, smem);
    smem[threadIdx.x] = 2.0f;
    out[threadIdx.x] = smem[threadIdx.x];
}
static __global__ void other_smem_kernel(float *out) {
    TNG_DYNAMIC_SMEM(float, smem);
    smem[threadIdx.x] = 3.0f;
    out[threadIdx.x] = smem[threadIdx.x];
}

/* whether a launch of `kernel` with `bytes` of dynamic shared memory ran */
static bool launched(void (*kernel)(float *), size_t bytes, float *out) {
    cudaCheck(cudaMemset(out, 0xff, sizeof(float) * 32));
    cudaError_t launch = EMU_LAUNCH(kernel, 1, 32, bytes, 0, out);
    cudaError_t last = cudaGetLastError();
    float *got = host_copy(out, 32);
    bool ran = !isnan(got[0]);
    free(got);
    CHECK((launch == cudaSuccess) == ran && last == launch, "launch %d, last %d, ran %d",
          (int)launch, (int)last, (int)ran);
    return launch == cudaSuccess;
}

/* Above 48 KB a kernel needs its own cudaFuncSetAttribute, up to the device's opt-in limit
 * (227 KB; EMU_SMEM_OPTIN lowers it). Refused launches print why: in a child. */
static void smem_rule(void *unused) {
    const size_t kb = 1024;
    emu::st().smem_optin = 227 * kb; /* sm_90's, whatever EMU_SMEM_OPTIN this run has */
    float *out = device_floats(32, NAN);
    int ok = launched(smem_kernel, 48 * kb, out) && !launched(smem_kernel, 48 * kb + 4, out);
    ok &= cudaFuncSetAttribute(smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)(100 * kb)) == cudaSuccess;
    ok &= launched(smem_kernel, 100 * kb, out) && !launched(smem_kernel, 100 * kb + 4, out);
    ok &= !launched(other_smem_kernel, 48 * kb + 4, out); /* the allowance is per kernel */
    ok &= cudaFuncSetAttribute(smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)(227 * kb + 4)) == cudaErrorInvalidValue;
    (void)cudaGetLastError();
    int optin = 0;
    emu::st().smem_optin = 48 * kb; /* what EMU_SMEM_OPTIN=49152 sets */
    ok &= cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0) ==
              cudaSuccess &&
          optin == (int)(48 * kb);
    ok &= cudaFuncSetAttribute(other_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)(64 * kb)) == cudaErrorInvalidValue;
    exit(ok && harness_current_failed == 0 ? 0 : 1);
}

static void test_shared_memory_optin(void) {
    expect_child("48 KB rule", smem_rule, NULL, 0,
                 "49156 bytes of dynamic shared memory > 49152 allowed");
}

/* ---------------------------------------------------------------- refused calls */

static __global__ void empty_kernel(float *out) {}

static void launch_empty_grid(void *unused) {
    float *out = device_floats(1, NAN);
    exit(EMU_LAUNCH(empty_kernel, 0, 32, 0, 0, out));
}
static void launch_too_many_threads(void *unused) {
    float *out = device_floats(1, NAN);
    exit(EMU_LAUNCH(empty_kernel, 1, 1025, 0, 0, out));
}
static void copy_to_host_memory(void *unused) {
    float src = 1.0f, dst = 0.0f;
    exit(cudaMemcpy(&dst, &src, sizeof dst, cudaMemcpyHostToDevice));
}
static void copy_past_the_end(void *unused) {
    float *dev = device_floats(4, NAN), host[8] = {0};
    exit(cudaMemcpy(host, dev, sizeof host, cudaMemcpyDeviceToHost));
}
static void set_host_memory(void *unused) {
    float host[4];
    exit(cudaMemset(host, 0, sizeof host));
}
static void free_host_memory(void *unused) {
    float host[4];
    exit(cudaFree(host) == cudaErrorInvalidDevicePointer ? 0 : 1);
}
static void gemm_on_host_memory(void *unused) {
    float a[4] = {1, 2, 3, 4}, c[4];
    const float one = 1.0f, zero = 0.0f;
    float *dev = device_floats(4, 1.0f);
    cublasHandle_t handle;
    cublasCreate(&handle);
    exit(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, a, 2, dev, 2, &zero, c, 2));
}

static void test_refused_calls(void) {
    const ChildCase cases[] = {
        {"empty grid", launch_empty_grid, NULL, cudaErrorInvalidConfiguration,
         "invalid configuration grid (0,1,1) block (32,1,1)"},
        {"1025 threads", launch_too_many_threads, NULL, cudaErrorInvalidConfiguration,
         "invalid configuration"},
        {"copy to host memory", copy_to_host_memory, NULL, cudaErrorInvalidValue,
         "dst is not a device range"},
        {"copy past the end", copy_past_the_end, NULL, cudaErrorInvalidValue,
         "src is not a device range"},
        {"memset of host memory", set_host_memory, NULL, cudaErrorInvalidValue,
         "not a device range"},
        {"free of host memory", free_host_memory, NULL, 0, ""},
        {"SGEMM on host memory", gemm_on_host_memory, NULL, CUBLAS_STATUS_INVALID_VALUE,
         "cublasSgemm on a matrix outside device memory"},
    };
    expect_children(cases, sizeof cases / sizeof *cases);
}

/* ---------------------------------------------------------------- bf16 */

/* float -> bf16 by its definition, independently of the emulator's carry trick: the two bf16
 * values around x (its upper half, truncated, and the next one up in magnitude), whichever
 * is nearer, the one with an even last bit on a tie; past the largest finite value the next
 * one up is infinity, taken as 2^128 for the distance (IEEE's overflow threshold). Every
 * NaN becomes the canonical 0x7FFF, as CUDA's conversion returns. */
static uint16_t reference_bf16(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if (isnan(x))
        return 0x7fff;
    if (isinf(x))
        return (uint16_t)(bits >> 16);
    uint16_t low = (uint16_t)(bits >> 16), high = (uint16_t)(low + 1);
    uint32_t low_bits = (uint32_t)low << 16, high_bits = (uint32_t)high << 16;
    float low_value, high_value;
    memcpy(&low_value, &low_bits, 4);
    memcpy(&high_value, &high_bits, 4);
    double high_magnitude = isinf(high_value) ? ldexp(1.0, 128) : fabs((double)high_value);
    double below = fabs((double)x) - fabs((double)low_value); /* exact in double */
    double above = high_magnitude - fabs((double)x);
    if (below < above)
        return low;
    if (above < below)
        return high;
    return (low & 1) ? high : low;
}

static void test_bf16_conversions(void) {
    /* every upper half, with the lower halves that matter: exact, just above, just below a
     * tie, the tie, just above it, the top, and two arbitrary ones */
    const uint16_t lows[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff, 0x1234, 0xc3a5};
    long bad = 0;
    for (uint32_t upper = 0; upper <= 0xffff; upper++) {
        uint32_t as_bf16 = upper << 16;
        float back;
        memcpy(&back, &as_bf16, 4);
        __nv_bfloat16 h = {(uint16_t)upper};
        float widened = __bfloat162float(h);
        if (memcmp(&widened, &back, 4) != 0 && bad++ < 5)
            CHECK(0, "bf16 0x%04x widens to %a", upper, widened);
        for (size_t k = 0; k < sizeof lows / sizeof *lows; k++) {
            uint32_t bits = upper << 16 | lows[k];
            float x;
            memcpy(&x, &bits, 4);
            uint16_t got = __float2bfloat16_rn(x).x, want = reference_bf16(x);
            if (got != want && bad++ < 5)
                CHECK(0, "float 0x%08x -> bf16 0x%04x, want 0x%04x", bits, got, want);
        }
    }
    CHECK(bad == 0, "%ld conversions wrong", bad);
    /* the cases by name, with the values worked out by hand */
    const struct {
        uint32_t in;
        uint16_t out;
        const char *what;
    } named[] = {
        {0x3f800000, 0x3f80, "1"},
        {0x3f808000, 0x3f80, "1 + 2^-8: a tie, to the even 1"},
        {0x3f818000, 0x3f82, "1 + 3 2^-8: a tie, to the even 1 + 2^-6"},
        {0x3f808001, 0x3f81, "just past the tie"},
        {0x80000000, 0x8000, "-0"},
        {0x00000001, 0x0000, "the smallest float subnormal: to 0"},
        {0x00010000, 0x0001, "the smallest bf16 subnormal"},
        {0x00018000, 0x0002, "a subnormal tie, to even"},
        {0x7f7fffff, 0x7f80, "FLT_MAX: past the largest bf16 by more than half an ulp: inf"},
        {0x7f7f7fff, 0x7f7f, "just below the overflow threshold"},
        {0xff800000, 0xff80, "-inf"},
        {0x7fc00000, 0x7fff, "quiet NaN"},
        {0xff800001, 0x7fff, "a negative signalling NaN"},
        {0x7f800001, 0x7fff, "a NaN whose upper half reads as inf"},
    };
    for (size_t k = 0; k < sizeof named / sizeof *named; k++) {
        float x;
        memcpy(&x, &named[k].in, 4);
        uint16_t got = __float2bfloat16_rn(x).x;
        CHECK(got == named[k].out && reference_bf16(x) == named[k].out,
              "%s: 0x%08x -> 0x%04x (reference 0x%04x), want 0x%04x", named[k].what, named[k].in,
              got, reference_bf16(x), named[k].out);
    }
}

/* The kernels' own conversions (load_f32, store_as in kernels/common.cuh), in a kernel. */
static __global__ void bf16_round_trip_kernel(__nv_bfloat16 *out, float *back, const float *in) {
    out[threadIdx.x] = store_as<__nv_bfloat16>(in[threadIdx.x]);
    back[threadIdx.x] = load_f32(out[threadIdx.x]);
}

static void test_bf16_in_a_kernel(void) {
    const float values[8] = {1.0f, 1.00390625f, -3.14159f, 65504.0f, 1e-40f, -0.0f, INFINITY, NAN};
    float *in = device_floats(8, NAN), *back = device_floats(8, NAN);
    cudaCheck(cudaMemcpy(in, values, sizeof values, cudaMemcpyHostToDevice));
    __nv_bfloat16 *out = NULL;
    cudaCheck(cudaMalloc(&out, sizeof(__nv_bfloat16) * 8));
    TNG_LAUNCH(bf16_round_trip_kernel, 1, 8, 0, 0, out, back, in);
    __nv_bfloat16 got[8];
    cudaCheck(cudaMemcpy(got, out, sizeof got, cudaMemcpyDeviceToHost));
    float *got_back = host_copy(back, 8);
    for (int i = 0; i < 8; i++) {
        uint32_t widened = (uint32_t)reference_bf16(values[i]) << 16, back_bits;
        memcpy(&back_bits, &got_back[i], 4);
        CHECK(got[i].x == reference_bf16(values[i]) && back_bits == widened,
              "%g: bf16 0x%04x, back 0x%08x", values[i], got[i].x, back_bits);
    }
    free(got_back);
    cudaCheck(cudaFree(in));
    cudaCheck(cudaFree(back));
    cudaCheck(cudaFree(out));
}

/* ---------------------------------------------------------------- arithmetic intrinsics, min */

/* volatile: each operation rounded on its own, whatever the compiler would fuse */
static float rounded(float a, char op, float b) {
    volatile float x = a, y = b, r;
    switch (op) {
    case '+': r = x + y; break;
    case '-': r = x - y; break;
    case '*': r = x * y; break;
    default: r = x / y; break;
    }
    return r;
}

static void test_rounded_intrinsics(void) {
    const float a[] = {1.5f, -0.1f, 3e38f, 1e-30f, 7.0f}, b[] = {2.25f, 3.0f, 10.0f, 1e-20f, 3.0f};
    for (int i = 0; i < 5; i++) {
        CHECK(__fadd_rn(a[i], b[i]) == rounded(a[i], '+', b[i]), "__fadd_rn %g %g", a[i], b[i]);
        CHECK(__fsub_rn(a[i], b[i]) == rounded(a[i], '-', b[i]), "__fsub_rn %g %g", a[i], b[i]);
        CHECK(__fmul_rn(a[i], b[i]) == rounded(a[i], '*', b[i]), "__fmul_rn %g %g", a[i], b[i]);
        CHECK(__fdiv_rn(a[i], b[i]) == rounded(a[i], '/', b[i]), "__fdiv_rn %g %g", a[i], b[i]);
    }
    CHECK(__fsqrt_rn(2.0f) == sqrtf(2.0f), "__fsqrt_rn");
    CHECK(min(3, -2) == -2 && min(-7, 5) == -7 && min(4, 4) == 4, "min on ints");
    /* a*b + c where one fused multiply-add differs from two roundings: (1 + 2^-12)^2 is
     * 1 + 2^-11 + 2^-24, whose 2^-24 is half a float ulp at 1, a tie rounded away (to even) */
    float x = 1.0f + ldexpf(1.0f, -12), c = -(1.0f + ldexpf(1.0f, -11));
    float two_roundings = __fadd_rn(__fmul_rn(x, x), c);
    CHECK(two_roundings == 0.0f && fmaf(x, x, c) == ldexpf(1.0f, -24),
          "__fadd_rn(__fmul_rn) %a, fmaf %a: the intrinsics were contracted", two_roundings,
          fmaf(x, x, c));
}

/* ---------------------------------------------------------------- faults */

/* Block 1's thread 0 traps; out[block] is written by thread 0 of every block that ran. */
static __global__ void trap_kernel(float *out) {
    if (blockIdx.x == 1 && threadIdx.x == 0)
        __trap();
    __syncthreads();
    if (threadIdx.x == 0)
        out[blockIdx.x] = 1.0f;
}

/* The fault is asynchronous (the launch and cudaGetLastError succeed), stops the grid, and is
 * sticky (every later call returns it). Exits with the number of expectations broken. */
static void trap_then_calls(void *unused) {
    float *out = device_floats(4, 0.0f);
    int broken = 0;
    broken += EMU_LAUNCH(trap_kernel, 4, 32, 0, 0, out) != cudaSuccess;
    broken += cudaGetLastError() != cudaSuccess;
    broken += cudaDeviceSynchronize() != cudaErrorLaunchFailure;
    /* device memory is host memory here: block 0 ran, block 1 stopped, 2 and 3 never ran */
    broken += !(out[0] == 1.0f && out[1] == 0.0f && out[2] == 0.0f && out[3] == 0.0f);
    float *more = NULL, host[4];
    broken += cudaMalloc(&more, 4) != cudaErrorLaunchFailure;
    broken += cudaMemcpy(host, out, 4, cudaMemcpyDeviceToHost) != cudaErrorLaunchFailure;
    broken += cudaStreamSynchronize(0) != cudaErrorLaunchFailure;
    broken += EMU_LAUNCH(trap_kernel, 1, 32, 0, 0, out) != cudaErrorLaunchFailure;
    exit(broken);
}

static void test_trap_is_asynchronous_and_sticky(void) {
    expect_child("__trap", trap_then_calls, NULL, 0, "__trap() in trap_kernel");
}

/* The project's launch check (TNG_LAUNCH -> kernel_check, cuda/cuda_common.h); the *_LINE
 * constants are the lines of the launches below them. */
enum { TRAP_LAUNCH_LINE = __LINE__ + 3 };
static void trap_then_sync(void *unused) {
    float *out = device_floats(4, 0.0f);
    TNG_LAUNCH(trap_kernel, 4, 32, 0, 0, out);
    cudaCheck(cudaDeviceSynchronize());
}
static void trap_then_sync_default(void *unused) {
    unsetenv("TNG_CUDA_SYNC");
    trap_then_sync(NULL);
}
static void trap_then_sync_debug(void *unused) {
    setenv("TNG_CUDA_SYNC", "1", 1);
    trap_then_sync(NULL);
}
enum { EMPTY_LAUNCH_LINE = __LINE__ + 3 };
static void launch_empty_grid_checked(void *unused) {
    float *out = device_floats(1, NAN);
    TNG_LAUNCH(empty_kernel, 0, 32, 0, 0, out);
}

static void test_kernel_check_names_the_kernel(void) {
    char want[160];
    /* by default the fault surfaces at the next synchronising call, which names no kernel */
    ChildEnd plain = run_in_child(trap_then_sync_default, NULL);
    CHECK(plain.exited && plain.code == 1 &&
              child_said(&plain, "cudaDeviceSynchronize(): unspecified launch failure") &&
              !child_said(&plain, "tng: CUDA error in kernel"),
          "without TNG_CUDA_SYNC:\n%s", plain.message);
    /* TNG_CUDA_SYNC=1: at the launch, naming the kernel and where it was launched */
    snprintf(want, sizeof want,
             "tng: CUDA error in kernel trap_kernel launched at %s:%d, at its run "
             "(TNG_CUDA_SYNC): unspecified launch failure",
             __FILE__, (int)TRAP_LAUNCH_LINE);
    expect_child("with TNG_CUDA_SYNC=1", trap_then_sync_debug, NULL, 1, want);
    /* a refused launch is named in either mode */
    snprintf(want, sizeof want,
             "tng: CUDA error in kernel empty_kernel launched at %s:%d, at its launch: invalid "
             "configuration argument",
             __FILE__, (int)EMPTY_LAUNCH_LINE);
    expect_child("refused launch", launch_empty_grid_checked, NULL, 1, want);
}

/* ---------------------------------------------------------------- what would block the host */

static __global__ void nothing_kernel(float *x) { x[threadIdx.x] += 0.0f; }

/* Each call that blocks the host on a GPU counts one host synchronisation, and nothing else
 * does: cudaMemcpy between host and device (not device to device), cudaMemcpyAsync with a
 * pageable host side (not from cudaMallocHost), the frees and the synchronisations; launches,
 * memsets, event records and queries count none. Device allocations are counted apart. */
static void test_host_sync_counts(void) {
    float *dev = device_floats(64, 1.0f), *other = device_floats(64, 2.0f), pageable[64] = {0}, *pinned = NULL;
    CHECK(cudaMallocHost((void **)&pinned, sizeof(float) * 64) == cudaSuccess, "cudaMallocHost");
    cudaEvent_t event;
    CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming) == cudaSuccess, "cudaEventCreateWithFlags");
    struct {
        const char *what;
        int syncs;
        cudaError_t (*call)(float *dev, float *other, float *pageable, float *pinned, cudaEvent_t event);
    } cases[] = {
        {"cudaMemcpy to the device", 1,
         [](float *d, float *, float *h, float *, cudaEvent_t) { return cudaMemcpy(d, h, 256, cudaMemcpyHostToDevice); }},
        {"cudaMemcpy to the host", 1,
         [](float *d, float *, float *h, float *, cudaEvent_t) { return cudaMemcpy(h, d, 256, cudaMemcpyDeviceToHost); }},
        {"cudaMemcpy device to device", 0,
         [](float *d, float *o, float *, float *, cudaEvent_t) { return cudaMemcpy(o, d, 256, cudaMemcpyDeviceToDevice); }},
        {"cudaMemcpyAsync from pageable memory", 1,
         [](float *d, float *, float *h, float *, cudaEvent_t) {
             return cudaMemcpyAsync(d, h, 256, cudaMemcpyHostToDevice, 0);
         }},
        {"cudaMemcpyAsync to pageable memory", 1,
         [](float *d, float *, float *h, float *, cudaEvent_t) {
             return cudaMemcpyAsync(h, d, 256, cudaMemcpyDeviceToHost, 0);
         }},
        {"cudaMemcpyAsync from pinned memory", 0,
         [](float *d, float *, float *, float *p, cudaEvent_t) {
             return cudaMemcpyAsync(d, p, 256, cudaMemcpyHostToDevice, 0);
         }},
        {"cudaMemcpyAsync past the end of pinned memory", 1,
         [](float *d, float *, float *, float *p, cudaEvent_t) {
             return cudaMemcpyAsync(d, p + 1, 256, cudaMemcpyHostToDevice, 0);
         }},
        {"cudaMemsetAsync", 0, [](float *d, float *, float *, float *, cudaEvent_t) { return cudaMemsetAsync(d, 0, 256, 0); }},
        {"a launch", 0,
         [](float *d, float *, float *, float *, cudaEvent_t) {
             TNG_LAUNCH(nothing_kernel, 1, 64, 0, 0, d);
             return cudaGetLastError();
         }},
        {"cudaEventRecord and cudaEventQuery", 0,
         [](float *, float *, float *, float *, cudaEvent_t e) {
             cudaError_t err = cudaEventRecord(e, 0);
             return err ? err : cudaEventQuery(e);
         }},
        {"cudaEventSynchronize", 1, [](float *, float *, float *, float *, cudaEvent_t e) { return cudaEventSynchronize(e); }},
        {"cudaStreamSynchronize", 1, [](float *, float *, float *, float *, cudaEvent_t) { return cudaStreamSynchronize(0); }},
        {"cudaDeviceSynchronize", 1, [](float *, float *, float *, float *, cudaEvent_t) { return cudaDeviceSynchronize(); }},
    };
    for (const auto &c : cases) {
        EmuCounters before = emu_counters();
        CHECK(c.call(dev, other, pageable, pinned, event) == cudaSuccess, "%s failed", c.what);
        unsigned long long syncs = emu_counters().host_syncs - before.host_syncs;
        CHECK(syncs == (unsigned long long)c.syncs, "%s: %llu host synchronisations counted, want %d", c.what, syncs,
              c.syncs);
    }
    EmuCounters before = emu_counters();
    float *fresh = NULL;
    CHECK(cudaMalloc(&fresh, 4) == cudaSuccess && cudaFree(fresh) == cudaSuccess && cudaFreeHost(pinned) == cudaSuccess,
          "cudaMalloc, cudaFree, cudaFreeHost");
    EmuCounters after = emu_counters();
    CHECK(after.device_allocs - before.device_allocs == 1 && after.host_syncs - before.host_syncs == 2,
          "an allocation and two frees: %llu allocations, %llu synchronisations counted",
          after.device_allocs - before.device_allocs, after.host_syncs - before.host_syncs);
    cudaEventDestroy(event);
    cudaFree(dev), cudaFree(other);
}

/* ---------------------------------------------------------------- stream capture */

static __global__ void add_kernel(float *x, const float *y) { x[threadIdx.x] += y[threadIdx.x]; }

/* The work a graph holds: a copy from pinned memory, a kernel, a memset, a GEMM (alpha given by
 * the host), on buffers x, y [16] and c [16] (4 x 4). */
static void graph_work(cudaStream_t stream, float *x, float *y, float *c, const float *pinned, float alpha) {
    static cublasHandle_t handle;
    if (!handle)
        cublasCheck(cublasCreate(&handle));
    const float beta = 0.0f;
    cudaCheck(cudaMemcpyAsync(y, pinned, sizeof(float) * 16, cudaMemcpyHostToDevice, stream));
    TNG_LAUNCH(add_kernel, 1, 16, 0, stream, x, y);
    cudaCheck(cudaMemsetAsync(y, 0, sizeof(float) * 16, stream));
    cublasCheck(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &alpha, x, 4, x, 4, &beta, c, 4));
}

/* A capture records and runs nothing; each cudaGraphLaunch replays the work in order, with the
 * values its kernel arguments and GEMM scalars had when captured and what pinned memory holds at
 * the launch: two launches give the bits of the same work run twice. A blocking call during the
 * capture is refused and invalidates it; the legacy stream cannot be captured. */
static void test_stream_capture(void) {
    float *pinned = NULL;
    CHECK(cudaMallocHost((void **)&pinned, sizeof(float) * 16) == cudaSuccess, "cudaMallocHost");
    for (int i = 0; i < 16; i++)
        pinned[i] = 0.25f * (float)i - 1.0f;
    float *eager[3] = {device_floats(16, 0.5f), device_floats(16, NAN), device_floats(16, NAN)};
    float *graph[3] = {device_floats(16, 0.5f), device_floats(16, NAN), device_floats(16, NAN)};
    cudaStream_t stream;
    cudaCheck(cudaStreamCreate(&stream));
    EmuCounters before = emu_counters();
    CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess, "begin capture");
    graph_work(stream, graph[0], graph[1], graph[2], pinned, 0.5f);
    cudaGraph_t g = NULL;
    cudaGraphExec_t exec = NULL;
    CHECK(cudaStreamEndCapture(stream, &g) == cudaSuccess && g, "end capture");
    CHECK(cudaGraphInstantiate(&exec, g, 0) == cudaSuccess, "instantiate");
    EmuCounters captured = emu_counters();
    float *x = host_copy(graph[0], 16);
    CHECK(x[0] == 0.5f && x[15] == 0.5f && captured.launches == before.launches && captured.gemms == before.gemms,
          "the capture ran work: x[0] %g, %llu launches, %llu GEMMs", x[0], captured.launches - before.launches,
          captured.gemms - before.gemms);
    free(x);
    for (int i = 0; i < 16; i++) /* after the capture: the launches read it */
        pinned[i] = 0.5f * (float)i - 3.0f;
    for (int run = 0; run < 2; run++) {
        graph_work(0, eager[0], eager[1], eager[2], pinned, 0.5f);
        CHECK(cudaGraphLaunch(exec, stream) == cudaSuccess, "graph launch %d", run);
    }
    EmuCounters launched = emu_counters();
    CHECK(launched.graph_launches - captured.graph_launches == 2, "graph launches counted");
    for (int b = 0; b < 3; b++) {
        float *want = host_copy(eager[b], 16), *got = host_copy(graph[b], 16);
        CHECK(memcmp(want, got, sizeof(float) * 16) == 0, "buffer %d: the replays differ from the same work run twice", b);
        free(want), free(got);
    }
    /* a blocking call inside a capture */
    float host[16];
    CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess, "second capture");
    CHECK(cudaMemcpy(host, graph[0], sizeof host, cudaMemcpyDeviceToHost) == cudaErrorStreamCaptureImplicit,
          "a synchronous copy during a capture is refused");
    cudaGraph_t broken = NULL;
    CHECK(cudaStreamEndCapture(stream, &broken) == cudaErrorStreamCaptureInvalidated && !broken,
          "the capture is invalidated");
    CHECK(cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal) == cudaErrorStreamCaptureUnsupported,
          "the legacy stream is refused");
    cudaGetLastError(); /* the refusals' last error, which the next launch check would read */
    cudaGraphExecDestroy(exec), cudaGraphDestroy(g), cudaStreamDestroy(stream);
    for (int b = 0; b < 3; b++)
        cudaFree(eager[b]), cudaFree(graph[b]);
    cudaFreeHost(pinned);
}

int main(void) {
    RUN_TEST(test_nan_poisoned_memory);
    RUN_TEST(test_shared_memory_optin);
    RUN_TEST(test_refused_calls);
    RUN_TEST(test_bf16_conversions);
    RUN_TEST(test_bf16_in_a_kernel);
    RUN_TEST(test_rounded_intrinsics);
    RUN_TEST(test_trap_is_asynchronous_and_sticky);
    RUN_TEST(test_kernel_check_names_the_kernel);
    RUN_TEST(test_host_sync_counts);
    RUN_TEST(test_stream_capture);
    return test_summary();
}
