/*
 * test_emu_cublaslt.cu: the emulator's cuBLASLt (tests/emu/include/cublasLt.h) against a plain
 * triple loop: column-major layouts under every pair of transposes, fp32 and bf16 inputs, fp32
 * and bf16 outputs, beta 0 (C never read: it stays NaN) and 1, and the BIAS epilogue, whose bf16
 * output must round once (round(acc + bias)), which differs from the unfused "round, add the
 * bias, round" on inputs built to make it differ; then each refusal (undocumented bias type,
 * an epilogue it does not emulate, shapes that make no GEMM, host memory, an algorithm chosen
 * for another problem or for better-aligned pointers) in a child that must say why; and a GEMM
 * under a stream capture, which runs only when the graph is launched, as it was captured.
 *
 * Inputs are small dyadic numbers (multiples of 1/16 and 1/256), so every product and sum is
 * exact in fp32 and in double: the loop's result is exact, the comparisons bit for bit.
 */
#include <cublasLt.h>

#include "emu_test.h" /* defines: expect_children, ChildCase, CHECK, RUN_TEST */

static unsigned lt_state = 20261206u;

/* i/16 for i in [-64, 64]: 7 significant bits, exact in bf16 */
static float lt_small(void) {
    lt_state = lt_state * 1664525u + 1013904223u;
    return (float)((int)(lt_state >> 9) % 129 - 64) / 16.0f;
}

/* One GEMM: its problem, host values (as floats) and device copies in the stated types. */
struct LtGemm {
    int m, n, k, ta, tb;
    cudaDataType_t ab, d;
    int bias; /* 1: the BIAS epilogue, the bias in D's type */
    float beta;
    std::vector<float> a, b, c, bias_v;
    void *A, *B, *D, *Bias;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulAlgo_t algo;
};

static float lt_round(float v, cudaDataType_t t) {
    return t == CUDA_R_32F ? v : __bfloat162float(__float2bfloat16_rn(v));
}

/* n host values rounded to type t, copied to new device memory in type t */
static void *lt_device(std::vector<float> &v, cudaDataType_t t) {
    size_t bytes = emu_lt_type_bytes(t) * (v.size() ? v.size() : 1);
    void *dev = NULL;
    cudaCheck(cudaMalloc(&dev, bytes));
    std::vector<__nv_bfloat16> half(v.size());
    for (size_t i = 0; i < v.size(); i++) {
        v[i] = lt_round(v[i], t);
        half[i] = __float2bfloat16_rn(v[i]);
    }
    cudaCheck(cudaMemcpy(dev, t == CUDA_R_32F ? (const void *)v.data() : (const void *)half.data(),
                         emu_lt_type_bytes(t) * v.size(), cudaMemcpyHostToDevice));
    return dev;
}

static std::vector<float> lt_values(size_t n, float scale) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++)
        v[i] = lt_small() * scale;
    return v;
}

/* The operands, random; D holds C's values when beta != 0 and NaN otherwise. */
static LtGemm lt_gemm(int m, int n, int k, int ta, int tb, cudaDataType_t ab, cudaDataType_t d, int bias,
                      float beta) {
    LtGemm g;
    g.m = m, g.n = n, g.k = k, g.ta = ta, g.tb = tb, g.ab = ab, g.d = d, g.bias = bias, g.beta = beta;
    g.a = lt_values((size_t)m * k, 1.0f);
    g.b = lt_values((size_t)k * n, 1.0f);
    g.c = lt_values((size_t)m * n, 4.0f);
    g.bias_v = lt_values((size_t)m, 4.0f);
    g.A = lt_device(g.a, ab);
    g.B = lt_device(g.b, ab);
    g.Bias = lt_device(g.bias_v, d);
    if (beta != 0.0f) {
        g.D = lt_device(g.c, d);
    } else {
        cudaCheck(cudaMalloc(&g.D, emu_lt_type_bytes(d) * m * n)); /* NaN: must not be read */
    }
    cublasCheck(cublasLtMatmulDescCreate(&g.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    int32_t t_a = ta, t_b = tb;
    uint32_t epilogue = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    cublasCheck(cublasLtMatmulDescSetAttribute(g.desc, CUBLASLT_MATMUL_DESC_TRANSA, &t_a, sizeof t_a));
    cublasCheck(cublasLtMatmulDescSetAttribute(g.desc, CUBLASLT_MATMUL_DESC_TRANSB, &t_b, sizeof t_b));
    cublasCheck(cublasLtMatmulDescSetAttribute(g.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
    if (bias)
        cublasCheck(cublasLtMatmulDescSetAttribute(g.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.Bias,
                                                   sizeof g.Bias));
    /* the stored matrices: A is m x k (or k x m, transposed), B k x n (or n x k) */
    cublasCheck(cublasLtMatrixLayoutCreate(&g.la, ab, ta ? k : m, ta ? m : k, ta ? k : m));
    cublasCheck(cublasLtMatrixLayoutCreate(&g.lb, ab, tb ? n : k, tb ? k : n, tb ? n : k));
    cublasCheck(cublasLtMatrixLayoutCreate(&g.ld, d, m, n, m));
    return g;
}

static cublasStatus_t lt_choose(LtGemm &g) {
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    uint32_t align = 4; /* cudaMalloc here is malloc's 16 bytes; the tests move pointers by 4 */
    for (int attr = CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES; attr <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES;
         attr++)
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, (cublasLtMatmulPreferenceAttributes_t)attr, &align,
                                                         sizeof align));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic((cublasLtHandle_t)1, g.desc, g.la, g.lb, g.ld, g.ld, pref,
                                                            1, &result, &found);
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    g.algo = result.algo;
    return status != CUBLAS_STATUS_SUCCESS ? status : found == 1 ? status : CUBLAS_STATUS_NOT_SUPPORTED;
}

static cublasStatus_t lt_run(LtGemm &g) {
    const float one = 1.0f;
    return cublasLtMatmul((cublasLtHandle_t)1, g.desc, &one, g.A, g.la, g.B, g.lb, &g.beta, g.D, g.ld, g.D, g.ld,
                          &g.algo, NULL, 0, 0);
}

/* op(X)[row, col] of a column-major stored matrix with `rows` rows, transposed or not */
static float lt_at(const std::vector<float> &x, int trans, int stored_rows, int row, int col) {
    return trans ? x[(size_t)row * stored_rows + col] : x[(size_t)col * stored_rows + row];
}

/* The exact accumulator of element (row, col) plus beta C */
static double lt_acc(const LtGemm &g, int row, int col) {
    double acc = 0.0;
    for (int p = 0; p < g.k; p++)
        acc += (double)lt_at(g.a, g.ta, g.ta ? g.k : g.m, row, p) * lt_at(g.b, g.tb, g.tb ? g.n : g.k, p, col);
    return acc + (g.beta != 0.0f ? (double)g.beta * g.c[(size_t)col * g.m + row] : 0.0);
}

static float lt_result(const LtGemm &g, size_t i) {
    if (g.d == CUDA_R_32F) {
        float v = 0.0f;
        cudaCheck(cudaMemcpy(&v, (const float *)g.D + i, sizeof v, cudaMemcpyDeviceToHost));
        return v;
    }
    __nv_bfloat16 h = {0};
    cudaCheck(cudaMemcpy(&h, (const __nv_bfloat16 *)g.D + i, sizeof h, cudaMemcpyDeviceToHost));
    return __bfloat162float(h);
}

/* Every element is round(acc + bias), bit for bit; returns how many differ from the unfused
 * round(round(acc) + bias). */
static int lt_check(const char *what, LtGemm &g) {
    CHECK(lt_choose(g) == CUBLAS_STATUS_SUCCESS && lt_run(g) == CUBLAS_STATUS_SUCCESS, "%s: refused", what);
    int wrong = 0, unfused_differs = 0;
    for (int col = 0; col < g.n; col++)
        for (int row = 0; row < g.m; row++) {
            size_t i = (size_t)col * g.m + row;
            float acc = (float)lt_acc(g, row, col), bias = g.bias ? g.bias_v[row] : 0.0f;
            float want = lt_round(acc + bias, g.d), got = lt_result(g, i);
            wrong += memcmp(&want, &got, sizeof want) != 0;
            unfused_differs += lt_round(lt_round(acc, g.d) + bias, g.d) != want;
        }
    CHECK(wrong == 0, "%s: %d of %d elements differ from the loop", what, wrong, g.m * g.n);
    cudaCheck(cudaFree(g.A));
    cudaCheck(cudaFree(g.B));
    cudaCheck(cudaFree(g.D));
    cudaCheck(cudaFree(g.Bias));
    return unfused_differs;
}

static void test_lt_against_loop(void) {
    char what[96];
    const cudaDataType_t types[3][2] = {{CUDA_R_32F, CUDA_R_32F}, {CUDA_R_16BF, CUDA_R_32F}, {CUDA_R_16BF, CUDA_R_16BF}};
    for (int t = 0; t < 3; t++)
        for (int ta = 0; ta <= 1; ta++)
            for (int tb = 0; tb <= 1; tb++)
                for (int bias = 0; bias <= 1; bias++) {
                    float beta = bias ? 0.0f : 1.0f; /* the backend's two uses */
                    snprintf(what, sizeof what, "types %d->%d trans %d%d bias %d", types[t][0], types[t][1], ta,
                             tb, bias);
                    LtGemm g = lt_gemm(13, 7, 33, ta, tb, types[t][0], types[t][1], bias, beta);
                    lt_check(what, g);
                }
}

/* bf16 D with the bias epilogue: one rounding. The accumulators here carry more bits than bf16
 * holds and the bias cancels their leading part, so rounding first loses what the fused sum
 * keeps: many elements must differ from the unfused pair. */
static void test_lt_bias_rounds_once(void) {
    LtGemm g = lt_gemm(64, 16, 48, 1, 0, CUDA_R_16BF, CUDA_R_16BF, 1, 0.0f);
    for (int row = 0; row < g.m; row++) /* bias = -round(the column-0 accumulator) + a small part */
        g.bias_v[row] = lt_round(-(float)lt_acc(g, row, 0) + lt_small() / 256.0f, CUDA_R_16BF);
    std::vector<float> bias = g.bias_v;
    cudaCheck(cudaFree(g.Bias));
    g.Bias = lt_device(bias, CUDA_R_16BF);
    g.bias_v = bias;
    cublasCheck(cublasLtMatmulDescSetAttribute(g.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.Bias, sizeof g.Bias));
    int differs = lt_check("bf16 bias epilogue", g);
    CHECK(differs >= 8, "only %d of %d elements tell one rounding from two", differs, g.m * g.n);
}

/* ---------------------------------------------------------------- refusals, in children */

static void refuse_fp32_bias_on_bf16(void *) {
    LtGemm g = lt_gemm(8, 4, 8, 0, 0, CUDA_R_16BF, CUDA_R_16BF, 1, 0.0f);
    int32_t type = CUDA_R_32F;
    cublasCheck(cublasLtMatmulDescSetAttribute(g.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &type, sizeof type));
    exit(lt_choose(g));
}

static void refuse_bgradb(void *) {
    cublasLtMatmulDesc_t desc;
    cublasCheck(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    uint32_t epilogue = 512; /* CUBLASLT_EPILOGUE_BGRADB */
    exit(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
}

static void refuse_mismatched_shapes(void *) {
    LtGemm g = lt_gemm(8, 4, 8, 0, 0, CUDA_R_32F, CUDA_R_32F, 0, 1.0f);
    cublasCheck(cublasLtMatrixLayoutCreate(&g.lb, CUDA_R_32F, 9, 4, 9)); /* k = 9 against A's 8 */
    exit(lt_choose(g));
}

static void refuse_host_matrix(void *) {
    LtGemm g = lt_gemm(8, 4, 8, 0, 0, CUDA_R_32F, CUDA_R_32F, 0, 1.0f);
    cublasCheck(lt_choose(g));
    g.A = g.a.data();
    exit(lt_run(g));
}

static void refuse_foreign_algorithm(void *) {
    LtGemm g = lt_gemm(8, 4, 8, 0, 0, CUDA_R_32F, CUDA_R_32F, 0, 1.0f);
    LtGemm other = lt_gemm(8, 5, 8, 0, 0, CUDA_R_32F, CUDA_R_32F, 0, 1.0f);
    cublasCheck(lt_choose(other));
    g.algo = other.algo;
    exit(lt_run(g));
}

static void refuse_less_aligned_bias(void *) {
    LtGemm g = lt_gemm(8, 4, 8, 0, 0, CUDA_R_32F, CUDA_R_32F, 1, 0.0f);
    cublasCheck(lt_choose(g)); /* the bias at cudaMalloc's alignment */
    const void *moved = (const char *)g.Bias + 4; /* checked before the extent, which it overruns */
    cublasCheck(cublasLtMatmulDescSetAttribute(g.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &moved, sizeof moved));
    exit(lt_run(g));
}

static void test_lt_refusals(void) {
    const ChildCase cases[] = {
        {"fp32 bias on a bf16 D", refuse_fp32_bias_on_bf16, NULL, CUBLAS_STATUS_NOT_SUPPORTED,
         "the documented bias type for float and bf16 outputs is D's"},
        {"BGRADB", refuse_bgradb, NULL, CUBLAS_STATUS_NOT_SUPPORTED, "epilogue (512) is not emulated"},
        {"k of A and B differ", refuse_mismatched_shapes, NULL, CUBLAS_STATUS_INVALID_VALUE, "do not make a GEMM"},
        {"A in host memory", refuse_host_matrix, NULL, CUBLAS_STATUS_INVALID_VALUE, "A (0x"},
        {"another problem's algorithm", refuse_foreign_algorithm, NULL, CUBLAS_STATUS_INVALID_VALUE,
         "not chosen for this problem"},
        {"a bias less aligned than at the query", refuse_less_aligned_bias, NULL, CUBLAS_STATUS_INVALID_VALUE,
         "less aligned than at the heuristic's query"},
    };
    expect_children(cases, sizeof cases / sizeof *cases);
}

/* Under a stream capture the GEMM runs only at cudaGraphLaunch, with the scalars and the
 * descriptors it was captured with: beta and the descriptor changed after the capture change
 * nothing, and the replay is the loop's bits. */
static void test_lt_captured(void) {
    LtGemm g = lt_gemm(12, 7, 9, 0, 1, CUDA_R_16BF, CUDA_R_16BF, 1, 1.0f);
    CHECK(lt_choose(g) == CUBLAS_STATUS_SUCCESS, "heuristic");
    cudaStream_t stream;
    cudaCheck(cudaStreamCreate(&stream));
    std::vector<float> before((size_t)g.m * g.n);
    for (size_t i = 0; i < before.size(); i++)
        before[i] = lt_result(g, i);
    const float one = 1.0f;
    float beta = 1.0f;
    cudaCheck(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    CHECK(cublasLtMatmul((cublasLtHandle_t)1, g.desc, &one, g.A, g.la, g.B, g.lb, &beta, g.D, g.ld, g.D, g.ld,
                         &g.algo, NULL, 0, stream) == CUBLAS_STATUS_SUCCESS, "captured call refused");
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    cudaCheck(cudaStreamEndCapture(stream, &graph));
    cudaCheck(cudaGraphInstantiate(&exec, graph, 0));
    int ran = 0;
    for (size_t i = 0; i < before.size(); i++) {
        float now = lt_result(g, i);
        ran += memcmp(&before[i], &now, sizeof now) != 0;
    }
    CHECK(ran == 0, "the capture ran the GEMM: %d elements changed", ran);
    beta = 0.0f; /* read at the capture, not now */
    uint32_t plain = CUBLASLT_EPILOGUE_DEFAULT;
    cublasCheck(cublasLtMatmulDescSetAttribute(g.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &plain, sizeof plain));
    cudaCheck(cudaGraphLaunch(exec, stream));
    cudaCheck(cudaStreamSynchronize(stream));
    int wrong = 0;
    for (int col = 0; col < g.n; col++)
        for (int row = 0; row < g.m; row++) {
            float want = lt_round((float)lt_acc(g, row, col) + g.bias_v[row], g.d);
            float got = lt_result(g, (size_t)col * g.m + row);
            wrong += memcmp(&want, &got, sizeof want) != 0;
        }
    CHECK(wrong == 0, "%d of %d replayed elements differ from the captured GEMM's loop", wrong, g.m * g.n);
    cudaGraphExecDestroy(exec), cudaGraphDestroy(graph), cudaStreamDestroy(stream);
    cudaCheck(cudaFree(g.A)), cudaCheck(cudaFree(g.B)), cudaCheck(cudaFree(g.D)), cudaCheck(cudaFree(g.Bias));
}

int main(void) {
    RUN_TEST(test_lt_against_loop);
    RUN_TEST(test_lt_bias_rounds_once);
    RUN_TEST(test_lt_refusals);
    RUN_TEST(test_lt_captured);
    return test_summary();
}
