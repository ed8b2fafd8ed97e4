/*
 * test_matmul.cu: the linear layer (kernels/matmul.cuh: cuBLAS SGEMM, the bias kernel, the
 * bias gradient's column sum) against the CPU op, forward and backward, with and without
 * bias, up to the K = 3072 of c_proj; the towers' linear layer of the tf32 and bf16
 * backends; and the linear layer with its activation fused into the bias epilogue.
 *
 * bf16: inp and weight are rounded to bf16 on both sides; the forward's bf16 output is
 * checked with check_bf16. The backward's dout is rounded too, so the kernel's own rounding of
 * dout to bf16 changes nothing: the fp32 gradients, accumulated into random prior values,
 * meet TOL. tf32 rounds GEMM inputs to 10 mantissa bits (2^-11 relative each) on a GPU, so
 * its tolerance is 2^-9 of the scale; the emulator does not round (tests/emu/README.md).
 */
#include "gpu_test_util.h" /* defines: Pair, cpu, gpu, check_scaled, TOL, gpu_test_init */
#include "kernels/launch_plan.h" /* defines: GEMM_LT_PLAN_SLOTS */

static void matmul_case(int N, int IC, int OC, int with_bias) {
    char what[96];
    Pair inp = pair_random((size_t)N * IC, 1.0), w = pair_random((size_t)OC * IC, 0.05);
    Pair bias = pair_random((size_t)OC, 1.0), out = pair_poisoned((size_t)N * OC);
    cpu->matmul_forward(out.host, inp.host, w.host, with_bias ? bias.host : NULL, N, IC, OC);
    gpu->matmul_forward(out.dev, inp.dev, w.dev, with_bias ? bias.dev : NULL, N, IC, OC);
    snprintf(what, sizeof what, "matmul_forward N=%d IC=%d OC=%d bias=%d", N, IC, OC, with_bias);
    check_scaled(what, out, TOL);

    Pair dout = pair_random((size_t)N * OC, 1.0);
    Pair dinp = pair_random((size_t)N * IC, 1.0), dw = pair_random((size_t)OC * IC, 1.0);
    Pair db = pair_random((size_t)OC, 1.0);
    cpu->matmul_backward(dinp.host, dw.host, with_bias ? db.host : NULL, dout.host, inp.host,
                         w.host, N, IC, OC);
    gpu->matmul_backward(dinp.dev, dw.dev, with_bias ? db.dev : NULL, dout.dev, inp.dev, w.dev, N,
                         IC, OC);
    snprintf(what, sizeof what, "matmul_backward dinp N=%d IC=%d OC=%d", N, IC, OC);
    check_scaled(what, dinp, TOL);
    snprintf(what, sizeof what, "matmul_backward dweight N=%d IC=%d OC=%d", N, IC, OC);
    check_scaled(what, dw, TOL);
    snprintf(what, sizeof what, "matmul_backward dbias N=%d IC=%d OC=%d", N, IC, OC);
    check_scaled(what, db, TOL);
    PAIRS_FREE(inp, w, bias, out, dout, dinp, dw, db);
}

/* The towers' float linear layer (cuBLASLt, the bias in its epilogue) of the fp32 table (strict
 * fp32: TOL) or the tf32 one. `offset` floats into each buffer moves inp, dout, the bias and the
 * outputs off cudaMalloc's alignment: the algorithm chosen for the aligned call must not be
 * reused for them (the emulator refuses pointers less aligned than the heuristic was told). */
static void linear_float_case(Precision precision, double tol, int N, int IC, int OC, int offset) {
    char what[96];
    const Backend *be = backend_cuda(precision);
    const char *name = precision == PRECISION_TF32 ? "tf32" : "fp32";
    Pair inp = pair_random((size_t)N * IC + offset, 1.0), w = pair_random((size_t)OC * IC, 0.05);
    Pair bias = pair_random((size_t)OC + offset, 1.0), out = pair_poisoned((size_t)N * OC + offset);
    cpu->linear_forward(out.host + offset, inp.host + offset, w.host, bias.host + offset, N, IC, OC);
    be->linear_forward(out.dev + offset, inp.dev + offset, w.dev, bias.dev + offset, N, IC, OC);
    for (int i = 0; i < offset; i++) /* the unused head: equal on both sides */
        out.host[i] = 0.0f;
    be->to_device(out.dev, out.host, sizeof(float) * offset);
    snprintf(what, sizeof what, "linear_forward %s N=%d IC=%d OC=%d offset %d", name, N, IC, OC, offset);
    check_scaled(what, out, tol);
    /* dinp is overwritten (poisoned: a missed element shows), dweight and dbias accumulate */
    Pair dout = pair_random((size_t)N * OC + offset, 1.0), dinp = pair_poisoned((size_t)N * IC + offset);
    Pair dw = pair_random((size_t)OC * IC, 1.0), db = pair_random((size_t)OC + offset, 1.0);
    for (int i = 0; i < offset; i++) /* the unused head: equal on both sides */
        dinp.host[i] = 0.0f;
    be->to_device(dinp.dev, dinp.host, sizeof(float) * offset);
    cpu->linear_backward(dinp.host + offset, dw.host, db.host + offset, dout.host + offset, inp.host + offset,
                         w.host, N, IC, OC);
    be->linear_backward(dinp.dev + offset, dw.dev, db.dev + offset, dout.dev + offset, inp.dev + offset, w.dev, N,
                        IC, OC);
    snprintf(what, sizeof what, "linear_backward %s dinp offset %d", name, offset);
    check_scaled(what, dinp, tol);
    snprintf(what, sizeof what, "linear_backward %s dweight offset %d", name, offset);
    check_scaled(what, dw, tol);
    snprintf(what, sizeof what, "linear_backward %s dbias offset %d", name, offset);
    check_scaled(what, db, TOL);
    PAIRS_FREE(inp, w, bias, out, dout, dinp, dw, db);
}

static void linear_bf16_case(int N, int IC, int OC, int with_bias) {
    char what[96];
    size_t n_out = (size_t)N * OC;
    Pair inp = pair_random((size_t)N * IC, 1.0), w = pair_random((size_t)OC * IC, 0.05);
    Pair bias = pair_random((size_t)OC, 1.0), out = pair_poisoned(n_out);
    __nv_bfloat16 *inp16 = pair_to_bf16(inp), *w16 = pair_to_bf16(w), *out16 = bf16_poisoned(n_out);
    cpu->matmul_forward(out.host, inp.host, w.host, with_bias ? bias.host : NULL, N, IC, OC);
    gpu16->linear_forward(out16, inp16, w16, with_bias ? bias.dev : NULL, N, IC, OC);
    snprintf(what, sizeof what, "linear_forward bf16 N=%d IC=%d OC=%d bias=%d", N, IC, OC, with_bias);
    check_bf16(what, out16, out.host, n_out);

    Pair dout = pair_random(n_out, 1.0), dinp = pair_poisoned((size_t)N * IC); /* overwritten */
    Pair dw = pair_random((size_t)OC * IC, 1.0), db = pair_random((size_t)OC, 1.0);
    cudaCheck(cudaFree(pair_to_bf16(dout))); /* the values rounded; the backend takes fp32 dout */
    cpu->linear_backward(dinp.host, dw.host, with_bias ? db.host : NULL, dout.host, inp.host, w.host, N, IC, OC);
    gpu16->linear_backward(dinp.dev, dw.dev, with_bias ? db.dev : NULL, dout.dev, inp16, w16, N, IC, OC);
    snprintf(what, sizeof what, "linear_backward bf16 dinp N=%d IC=%d OC=%d", N, IC, OC);
    check_scaled(what, dinp, TOL);
    snprintf(what, sizeof what, "linear_backward bf16 dweight N=%d IC=%d OC=%d", N, IC, OC);
    check_scaled(what, dw, TOL);
    snprintf(what, sizeof what, "linear_backward bf16 dbias N=%d IC=%d OC=%d", N, IC, OC);
    check_scaled(what, db, TOL);
    /* dinp alone (the first layer's dweight-only call has the mirror shape in the model) */
    gpu16->linear_backward(dinp.dev, NULL, NULL, dout.dev, inp16, w16, N, IC, OC);
    cpu->linear_backward(dinp.host, NULL, NULL, dout.host, inp.host, w.host, N, IC, OC);
    snprintf(what, sizeof what, "linear_backward bf16 dinp only N=%d IC=%d OC=%d", N, IC, OC);
    check_scaled(what, dinp, TOL);
    BF16_FREE(inp16, w16, out16);
    PAIRS_FREE(inp, w, bias, out, dout, dinp, dw, db);
}

/* linear_activation_forward against the CPU's linear then activation: pre and out of the fp32
 * table within TOL, of the bf16 table as check_bf16 (inputs rounded to bf16 on both sides). */
static void linear_activation_case(int N, int IC, int OC, int bf16) {
    char what[96];
    size_t n_out = (size_t)N * OC;
    Pair inp = pair_random((size_t)N * IC, 1.0), w = pair_random((size_t)OC * IC, 0.05);
    Pair bias = pair_random((size_t)OC, 1.0), pre = pair_poisoned(n_out), out = pair_poisoned(n_out);
    snprintf(what, sizeof what, "linear_activation_forward %s N=%d IC=%d OC=%d", bf16 ? "bf16" : "fp32", N, IC, OC);
    if (bf16) {
        __nv_bfloat16 *inp16 = pair_to_bf16(inp), *w16 = pair_to_bf16(w);
        __nv_bfloat16 *pre16 = bf16_poisoned(n_out), *out16 = bf16_poisoned(n_out);
        gpu16->linear_activation_forward(pre16, out16, inp16, w16, bias.dev, ACT_QUICK_GELU, N, IC, OC);
        cpu->linear_activation_forward(pre.host, out.host, inp.host, w.host, bias.host, ACT_QUICK_GELU, N, IC, OC);
        check_bf16(what, pre16, pre.host, n_out);
        check_bf16(what, out16, out.host, n_out);
        BF16_FREE(inp16, w16, pre16, out16);
    } else {
        gpu->linear_activation_forward(pre.dev, out.dev, inp.dev, w.dev, bias.dev, ACT_QUICK_GELU, N, IC, OC);
        cpu->linear_activation_forward(pre.host, out.host, inp.host, w.host, bias.host, ACT_QUICK_GELU, N, IC, OC);
        check_scaled(what, pre, TOL);
        check_scaled(what, out, TOL);
    }
    PAIRS_FREE(inp, w, bias, pre, out);
}

static void test_linear_precisions_and_fusion(void) {
    for (int bf16 = 0; bf16 <= 1; bf16++)
        linear_activation_case(quick ? 7 : 231, quick ? 40 : 512, quick ? 72 : 2048, bf16);
    for (int offset = 0; offset <= 1; offset++) {
        linear_float_case(PRECISION_FP32, TOL, 7, 40, 72, offset);
        linear_float_case(PRECISION_TF32, 1.0 / 512, 7, 40, 72, offset);
    }
    linear_bf16_case(7, 40, 72, 1);
    if (quick)
        return;
    linear_bf16_case(231, 512, 1536, 1);
    linear_bf16_case(1001, 768, 512, 0);
    linear_bf16_case(600, 3072, 768, 1);
}

/* More distinct GEMMs than the plan table holds (a long run's text lengths): the oldest plans
 * are replaced, and a shape planned, replaced and planned again still gives the CPU's result. */
static void test_more_shapes_than_plans(void) {
    enum { IC = 3, OC = 2 };
    Pair w = pair_random((size_t)OC * IC, 0.5), bias = pair_random(OC, 1.0);
    Pair inp = pair_random((size_t)(GEMM_LT_PLAN_SLOTS + 8) * IC, 1.0);
    Pair out = pair_poisoned((size_t)(GEMM_LT_PLAN_SLOTS + 8) * OC);
    char what[96];
    /* row counts 1, 2, ..., SLOTS + 8 are as many GEMM shapes; row count 1 comes back at the end */
    for (int rows = 1; rows <= GEMM_LT_PLAN_SLOTS + 9; rows++) {
        int N = rows <= GEMM_LT_PLAN_SLOTS + 8 ? rows : 1;
        gpu->linear_forward(out.dev, inp.dev, w.dev, bias.dev, N, IC, OC);
    }
    cpu->linear_forward(out.host, inp.host, w.host, bias.host, 1, IC, OC);
    Pair first = {out.host, out.dev, (size_t)OC}; /* the row the last call wrote */
    snprintf(what, sizeof what, "linear_forward N=1 after %d other shapes", GEMM_LT_PLAN_SLOTS + 8);
    check_scaled(what, first, TOL);
    PAIRS_FREE(w, bias, inp, out);
}

static void test_matmul(void) {
    matmul_case(7, 40, 72, 1);
    if (quick)
        return;
    matmul_case(231, 512, 1536, 1); /* 3 texts x 77 tokens into the qkv projection */
    matmul_case(1001, 768, 512, 0); /* the visual projection, no bias */
    matmul_case(600, 3072, 768, 1); /* c_proj: K = 3072 */
}

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_matmul);
    RUN_TEST(test_linear_precisions_and_fusion);
    RUN_TEST(test_more_shapes_than_plans);
    return test_summary();
}
