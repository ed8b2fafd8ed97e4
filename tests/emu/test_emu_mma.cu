/*
 * test_emu_mma.cu: the emulated tensor-core mma (kernels/mma.cuh) against a plain matrix
 * product, every lane's fragment checked; the fragment helpers the attention kernels use;
 * and the warp rule (all 32 lanes must reach the mma) enforced like the shuffles'.
 *
 * The lanes' elements come from the PTX ISA's description of the m16n8k16 fragments,
 * written here element by element independently of mma.cuh's own arithmetic: with
 * g = lane / 4 and t = lane % 4, A element i (0..7, two per register, lower half first) sits
 * at row g + 8 [i in 2,3,6,7], column 2t + (i & 1) + 8 [i >= 4]; B element i (0..3) at row
 * 2t + (i & 1) + 8 [i >= 2], column g; C/D element i (0..3) at row g + 8 [i >= 2], column
 * 2t + (i & 1). Each lane writes its four outputs where that layout puts them; the whole D
 * is then compared with C + A B computed in double, so a lane holding the wrong element, or
 * two lanes writing one place (the other stays NaN), shows.
 *
 * Tolerance: each of the 16 products of two bf16 values is exact in fp32, and the emulator
 * adds them one at a time in fp32: at most 17 roundings of 2^-24 of the running sum, so
 * |D - exact| <= 17 2^-24 (|C| + sum |A B|), held to 2^-19 of that sum.
 */
#include "emu_test.h"     /* defines: expect_children, device_floats, host_copy, TNG_LAUNCH */
#include "kernels/mma.cuh" /* defines: mma_bf16_m16n8k16, load_frag_a, load_frag_b_nk, ... */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
/* uniform in [-2, 2), rounded to bf16 (the inputs are bf16 on both sides) */
static float random_bf16_value(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    float u = (float)((rng_state >> 40) & 0xffffff) / 16777216.0f * 4.0f - 2.0f;
    return __bfloat162float(__float2bfloat16_rn(u));
}

static __nv_bfloat16 *device_bf16(const float *host, size_t n) {
    __nv_bfloat16 *staged = (__nv_bfloat16 *)malloc(sizeof(__nv_bfloat16) * n), *dev = NULL;
    for (size_t i = 0; i < n; i++)
        staged[i] = __float2bfloat16_rn(host[i]);
    cudaCheck(cudaMalloc(&dev, sizeof(__nv_bfloat16) * n));
    cudaCheck(cudaMemcpy(dev, staged, sizeof(__nv_bfloat16) * n, cudaMemcpyHostToDevice));
    free(staged);
    return dev;
}

/* bf16 of `a` in the lower half, of `b` in the upper */
static __device__ uint32_t two_bf16(__nv_bfloat16 lo, __nv_bfloat16 hi) {
    uint16_t l, h;
    memcpy(&l, &lo, 2);
    memcpy(&h, &hi, 2);
    return (uint32_t)l | ((uint32_t)h << 16);
}

/* d = a b + c for a [16][16], b [16][8] (k x n), c and d [16][8], all row-major; each warp of
 * the block computes it once, into its own d (d + 128 warp), with fragments built by the
 * layout in the header comment. */
static __global__ void mma_layout_kernel(float *d, const __nv_bfloat16 *a, const __nv_bfloat16 *b,
                                         const float *c) {
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    uint32_t fa[4], fb[2];
    float fc[4];
    for (int r = 0; r < 4; r++) {
        __nv_bfloat16 e[2];
        for (int half = 0; half < 2; half++) {
            int i = 2 * r + half;
            int row = g + ((i == 2 || i == 3 || i == 6 || i == 7) ? 8 : 0);
            int col = 2 * t + (i & 1) + (i >= 4 ? 8 : 0);
            e[half] = a[row * 16 + col];
        }
        fa[r] = two_bf16(e[0], e[1]);
    }
    for (int r = 0; r < 2; r++) {
        __nv_bfloat16 e[2];
        for (int half = 0; half < 2; half++) {
            int i = 2 * r + half;
            e[half] = b[(2 * t + (i & 1) + (i >= 2 ? 8 : 0)) * 8 + g];
        }
        fb[r] = two_bf16(e[0], e[1]);
    }
    for (int i = 0; i < 4; i++)
        fc[i] = c[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + (i & 1)];
    mma_bf16_m16n8k16(fc, fa, fb);
    float *dw = d + 128 * (threadIdx.x / 32);
    for (int i = 0; i < 4; i++)
        dw[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + (i & 1)] = fc[i];
}

/* The same product through the helpers: A by load_frag_a, B once by load_frag_b_kn from its
 * row-major [k][n] copy (d0) and once by load_frag_b_nk from its transpose [n][k] (d1). */
static __global__ void mma_helpers_kernel(float *d0, float *d1, const __nv_bfloat16 *a,
                                          const __nv_bfloat16 *b, const __nv_bfloat16 *bt,
                                          const float *c) {
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    uint32_t fa[4], fb[2];
    float acc[2][4];
    load_frag_a(fa, a, 16);
    for (int which = 0; which < 2; which++) {
        for (int i = 0; i < 4; i++)
            acc[which][i] = c[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + (i & 1)];
        if (which == 0)
            load_frag_b_kn(fb, b, 8);
        else
            load_frag_b_nk(fb, bt, 16);
        mma_bf16_m16n8k16(acc[which], fa, fb);
    }
    for (int i = 0; i < 4; i++) {
        int at = (g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + (i & 1);
        d0[at] = acc[0][i];
        d1[at] = acc[1][i];
    }
}

/* e = bf16(a [b0 b1]) b2: the C fragments of a b0 and a b1 (two 8-column tiles) become the A
 * fragment of the 16x16 product through frag_a_from_c */
static __global__ void mma_chain_kernel(float *e, const __nv_bfloat16 *a, const __nv_bfloat16 *b01,
                                        const __nv_bfloat16 *b2) {
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    uint32_t fa[4], fb[2], fp[4];
    float left[4] = {0, 0, 0, 0}, right[4] = {0, 0, 0, 0}, out[4] = {0, 0, 0, 0};
    load_frag_a(fa, a, 16);
    load_frag_b_kn(fb, b01, 16);
    mma_bf16_m16n8k16(left, fa, fb);
    load_frag_b_kn(fb, b01 + 8, 16);
    mma_bf16_m16n8k16(right, fa, fb);
    frag_a_from_c(fp, left, right);
    load_frag_b_kn(fb, b2, 8);
    mma_bf16_m16n8k16(out, fp, fb);
    for (int i = 0; i < 4; i++)
        e[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + (i & 1)] = out[i];
}

/* got [16][8] against c + a b in double (a [16][16], b [16][8] row-major) */
static int check_product(const char *what, const float *got, const float *a, const float *b,
                         const float *c) {
    int bad = 0;
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 8; n++) {
            double exact = c ? c[r * 8 + n] : 0, size = c ? fabs(c[r * 8 + n]) : 0;
            for (int k = 0; k < 16; k++) {
                exact += (double)a[r * 16 + k] * b[k * 8 + n];
                size += fabs((double)a[r * 16 + k] * b[k * 8 + n]);
            }
            double err = fabs(got[r * 8 + n] - exact);
            if (!(err <= ldexp(size, -19)) && bad++ < 4)
                CHECK(0, "%s: D[%d][%d] = %.9g, want %.9g (lane %d)", what, r, n, got[r * 8 + n],
                      exact, 4 * (r % 8) + n / 2);
        }
    return bad == 0;
}

static void test_mma_layout_and_helpers(void) {
    for (int trial = 0; trial < 8; trial++) {
        float a[256], b[128], bt[128], c[128];
        for (int i = 0; i < 256; i++)
            a[i] = random_bf16_value();
        for (int i = 0; i < 128; i++) {
            b[i] = random_bf16_value();
            c[i] = random_bf16_value() * 4; /* fp32, any value */
        }
        for (int k = 0; k < 16; k++)
            for (int n = 0; n < 8; n++)
                bt[n * 16 + k] = b[k * 8 + n];
        __nv_bfloat16 *a_dev = device_bf16(a, 256), *b_dev = device_bf16(b, 128);
        __nv_bfloat16 *bt_dev = device_bf16(bt, 128);
        float *c_dev = device_floats(128, NAN), *d_dev = device_floats(256, NAN);
        float *d0_dev = device_floats(128, NAN), *d1_dev = device_floats(128, NAN);
        cudaCheck(cudaMemcpy(c_dev, c, sizeof c, cudaMemcpyHostToDevice));
        /* two warps: lane and thread index differ in the second */
        TNG_LAUNCH(mma_layout_kernel, 1, 64, 0, 0, d_dev, a_dev, b_dev, c_dev);
        TNG_LAUNCH(mma_helpers_kernel, 1, 32, 0, 0, d0_dev, d1_dev, a_dev, b_dev, bt_dev, c_dev);
        float *d = host_copy(d_dev, 256), *d0 = host_copy(d0_dev, 128), *d1 = host_copy(d1_dev, 128);
        check_product("layout, warp 0", d, a, b, c);
        check_product("layout, warp 1", d + 128, a, b, c);
        check_product("load_frag_a + load_frag_b_kn", d0, a, b, c);
        check_product("load_frag_a + load_frag_b_nk", d1, a, b, c);
        free(d), free(d0), free(d1);
        cudaCheck(cudaFree(a_dev));
        cudaCheck(cudaFree(b_dev));
        cudaCheck(cudaFree(bt_dev));
        cudaCheck(cudaFree(c_dev));
        cudaCheck(cudaFree(d_dev));
        cudaCheck(cudaFree(d0_dev));
        cudaCheck(cudaFree(d1_dev));
    }
}

static void test_mma_chain(void) {
    float a[256], b01[256], b2[128], p[256];
    for (int i = 0; i < 256; i++)
        a[i] = random_bf16_value(), b01[i] = random_bf16_value();
    for (int i = 0; i < 128; i++)
        b2[i] = random_bf16_value();
    __nv_bfloat16 *a_dev = device_bf16(a, 256), *b01_dev = device_bf16(b01, 256);
    __nv_bfloat16 *b2_dev = device_bf16(b2, 128);
    float *e_dev = device_floats(128, NAN);
    TNG_LAUNCH(mma_chain_kernel, 1, 32, 0, 0, e_dev, a_dev, b01_dev, b2_dev);
    float *e = host_copy(e_dev, 128);
    /* the intermediate a [b0 b1] rounded to bf16, as frag_a_from_c rounds it: an fp32 sum a
       few ulp off may round to the neighbouring bf16, 2^-8 relative, so the chain is held to
       2^-7 of its scale, which a wrong element (of the full size) still fails */
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 16; n++) {
            double s = 0;
            for (int k = 0; k < 16; k++)
                s += (double)a[r * 16 + k] * b01[k * 16 + n];
            p[r * 16 + n] = __bfloat162float(__float2bfloat16_rn((float)s));
        }
    double scale = 0, worst = 0;
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 8; n++) {
            double exact = 0, size = 0;
            for (int k = 0; k < 16; k++) {
                exact += (double)p[r * 16 + k] * b2[k * 8 + n];
                size += fabs((double)p[r * 16 + k] * b2[k * 8 + n]);
            }
            scale = fmax(scale, size);
            worst = fmax(worst, fabs(e[r * 8 + n] - exact)); /* NaN: fails below */
            if (isnan(e[r * 8 + n]))
                worst = INFINITY;
        }
    CHECK(worst <= scale / 128, "chained product off by %g (scale %g)", worst, scale);
    free(e);
    cudaCheck(cudaFree(a_dev));
    cudaCheck(cudaFree(b01_dev));
    cudaCheck(cudaFree(b2_dev));
    cudaCheck(cudaFree(e_dev));
}

/* The warp rule: a lane that exited, or one waiting at another warp op, is a kernel error */
static __global__ void mma_lane_exited_kernel() {
    if (threadIdx.x == 31)
        return;
    uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
    float d[4] = {0, 0, 0, 0};
    mma_bf16_m16n8k16(d, a, b);
}
static __global__ void mma_beside_shuffle_kernel() {
    uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
    float d[4] = {0, 0, 0, 0};
    if (threadIdx.x < 16)
        mma_bf16_m16n8k16(d, a, b);
    else
        (void)__shfl_xor_sync(0xffffffffu, 1.0f, 1);
}
static __global__ void mma_half_warp_kernel() {
    uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
    float d[4] = {0, 0, 0, 0};
    mma_bf16_m16n8k16(d, a, b);
}

static void launch_kernel(void *arg) {
    void (*kernel)() = (void (*)())arg;
    EMU_LAUNCH(kernel, 1, 32, 0, 0);
}
static void launch_half_warp(void *unused) { EMU_LAUNCH(mma_half_warp_kernel, 1, 16, 0, 0); }

static void test_mma_warp_rule(void) {
    const ChildCase cases[] = {
        {"mma with an exited lane", launch_kernel, (void *)mma_lane_exited_kernel, ENDS_BY_ABORT,
         "warp all-gather mask 0xffffffff names lane 31, which has exited"},
        {"mma beside a shuffle", launch_kernel, (void *)mma_beside_shuffle_kernel, ENDS_BY_ABORT,
         "lanes of one mask in different warp ops"},
        {"mma in a 16-thread block", launch_half_warp, NULL, ENDS_BY_ABORT,
         "which the block does not have"},
    };
    expect_children(cases, sizeof cases / sizeof *cases);
}

int main(void) {
    RUN_TEST(test_mma_layout_and_helpers);
    RUN_TEST(test_mma_chain);
    RUN_TEST(test_mma_warp_rule);
    return test_summary();
}
