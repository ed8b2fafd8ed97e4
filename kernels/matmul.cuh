/*
 * matmul.cuh: the linear layer, out[N,OC] = inp[N,IC] @ weight[OC,IC]^T + bias, on cuBLAS and
 * cuBLASLt.
 *
 * cuBLAS is column-major; a row-major [R, K] matrix is the column-major [K, R] one. So the
 * forward out^T = W (op T) x inp^T, and the backward dinp^T = W^T x dout^T and
 * dweight^T = inp^T x dout (op T), with beta = 1 where a backward accumulates (the weight
 * gradients; matmul_backward's dinp, which the loss's two blocks share) and beta = 0 for
 * linear_backward's dinp, which has that one writer (backend.h): no zeroing pass before it,
 * and the GEMM does not read it.
 *
 * Two entry points (backend.h):
 * - matmul_*: everything fp32, cuBLAS SGEMM in strict fp32 (CUBLAS_DEFAULT_MATH never uses
 *   TF32), the bias by a kernel: the loss's similarity matrix in every precision.
 * - linear_*<io_t>: the towers' layers, on cuBLASLt with fp32 accumulation (CUBLAS_COMPUTE_32F,
 *   or _FAST_TF32 for --precision tf32's float layers). io_t = bf16 reads bf16 activations and
 *   weight copies; the forward writes bf16, the backward writes the fp32 gradients (C = D
 *   in fp32) after rounding the fp32 dout to bf16 in the backend's scratch.
 *   The forward adds the bias in the GEMM's epilogue (CUBLASLT_EPILOGUE_BIAS), to the fp32
 *   accumulator, so a biased output rounds once. cuBLASLt documents the bias vector as of D's
 *   type for float and bf16 outputs (fp32 bias vectors only for integer and fp8 kernels), so
 *   the bf16 forward reads a bf16 copy of the fp32 bias, made in the scratch (OC values): the
 *   bias rounds as the weights do, the output once.
 *   The bias gradient stays the deterministic column sum of the fp32 dout (reduce.cuh), not
 *   the BGRADB epilogue: that one overwrites (weight gradients accumulate), and it reduces the
 *   GEMM's B operand, which in bf16 is the rounded copy of dout.
 *
 * A cuBLASLt algorithm is chosen once per GEMM (shape, transposes, types, epilogue and the
 * pointers' alignments, which the heuristic needs) and kept with its descriptors in a table
 * (GEMM_LT_PLAN_SLOTS, launch_plan.h); a step creates nothing. The workspace is one buffer,
 * allocated with the scratch (gemm_lt_reserve). cuBLAS and cuBLASLt give the same bits run to
 * run on one GPU model with one stream and one algorithm, which is how the backend runs.
 */
#ifndef TNG_KERNELS_MATMUL_CUH
#define TNG_KERNELS_MATMUL_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <stdint.h>

#include "elementwise.cuh"
#include "reduce.cuh"

/* C = A op B + beta C (column-major, alpha 1), strict fp32 SGEMM, queued (cuda/queue.h) */
static inline void sgemm(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                         cudaStream_t stream) {
    tng_queue([&] { return tng_hash_values((const void *)cublasSgemm, ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc); },
              [=] {
                  const float one = 1.0f;
                  cublasCheck(cublasSetStream(handle, stream));
                  cublasCheck(cublasSgemm(handle, ta, tb, m, n, k, &one, A, lda, B, ldb, &beta, C, ldc));
              });
}

static inline void matmul_forward(cublasHandle_t handle, float *out, const float *inp,
                                  const float *weight, const float *bias, int N, int IC, int OC,
                                  cudaStream_t stream) {
    if (N == 0 || OC == 0)
        return;
    sgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, IC, weight, IC, inp, IC, 0.0f, out, OC, stream);
    if (bias)
        launch_elementwise(BiasAdd<float>{out, bias, (size_t)OC}, (size_t)N * OC, stream);
}

static inline void matmul_backward(cublasHandle_t handle, float *dinp, float *dweight, float *dbias,
                                   const float *dout, const float *inp, const float *weight, int N,
                                   int IC, int OC, cudaStream_t stream) {
    if (N == 0 || OC == 0 || IC == 0)
        return;
    if (dinp) /* dinp[N,IC] += dout[N,OC] @ weight[OC,IC] */
        sgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, IC, N, OC, weight, IC, dout, OC, 1.0f, dinp, IC, stream);
    if (dweight) /* dweight[OC,IC] += dout^T @ inp */
        sgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, IC, OC, N, inp, IC, dout, OC, 1.0f, dweight, IC, stream);
    colsum_accumulate<1>(dbias, (float *)NULL, StridedRows<float>{dout, (size_t)OC}, (size_t)N,
                         (size_t)OC, stream);
}

/* The towers' GEMM maths: strict fp32 products, or TF32 tensor cores (float layers only). */
typedef enum { GEMM_STRICT = 0, GEMM_TF32 = 1 } GemmMath;

template <typename T> static constexpr cudaDataType_t gemm_type(void) {
    return sizeof(T) == sizeof(float) ? CUDA_R_32F : CUDA_R_16BF;
}

/* What an algorithm is chosen for. All ints, compared with memcmp. */
struct GemmLtKey {
    int m, n, k, lda, ldb, ldd, trans_a, trans_b, ab_type, d_type, compute, epilogue;
    int align_a, align_b, align_d, align_bias;
};

struct GemmLtPlan {
    GemmLtKey key;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, d; /* C is D (in place) */
    cublasLtMatmulAlgo_t algo;
};

static inline cublasLtHandle_t gemm_lt_handle(void) {
    static cublasLtHandle_t handle;
    if (!handle)
        cublasCheck(cublasLtCreate(&handle));
    return handle;
}

static void *gemm_lt_workspace;

/* The workspace, once: Backend.reserve_scratch calls it, and so does the first GEMM where no
 * model planned (the kernel tests). */
static inline void gemm_lt_reserve(void) {
    if (!gemm_lt_workspace)
        cudaCheck(cudaMalloc(&gemm_lt_workspace, GEMM_LT_WORKSPACE_BYTES));
}

/* The largest power of two up to 256 that divides the address: what the heuristic may assume. */
static inline int gemm_lt_alignment(const void *p) {
    int align = 256;
    while (align > 1 && (uintptr_t)p % align)
        align /= 2;
    return align;
}

static inline void gemm_lt_set(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const void *value,
                               size_t bytes) {
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, attr, value, bytes));
}

/* The plan of `key`: found, or made (descriptors, layouts, the heuristic's first algorithm).
 * A full table replaces its oldest plan: the text tower's row count follows each batch's
 * longest caption, so a long run meets more shapes than the table holds; a replaced shape that
 * comes back is planned again, to the same algorithm. */
static inline GemmLtPlan *gemm_lt_plan(const GemmLtKey &key, const void *bias) {
    static GemmLtPlan plans[GEMM_LT_PLAN_SLOTS];
    static long made;
    int filled = made < GEMM_LT_PLAN_SLOTS ? (int)made : GEMM_LT_PLAN_SLOTS;
    for (int i = 0; i < filled; i++)
        if (memcmp(&plans[i].key, &key, sizeof key) == 0)
            return &plans[i];
    GemmLtPlan *p = &plans[made % GEMM_LT_PLAN_SLOTS];
    if (made >= GEMM_LT_PLAN_SLOTS) { /* the oldest goes */
        cublasCheck(cublasLtMatmulDescDestroy(p->desc));
        cublasCheck(cublasLtMatrixLayoutDestroy(p->a));
        cublasCheck(cublasLtMatrixLayoutDestroy(p->b));
        cublasCheck(cublasLtMatrixLayoutDestroy(p->d));
    }
    p->key = key;
    cublasCheck(cublasLtMatmulDescCreate(&p->desc, (cublasComputeType_t)key.compute, CUDA_R_32F));
    int32_t trans_a = key.trans_a, trans_b = key.trans_b, bias_type = key.d_type;
    uint32_t epilogue = (uint32_t)key.epilogue;
    gemm_lt_set(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof trans_a);
    gemm_lt_set(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b);
    gemm_lt_set(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
    if (bias) { /* of D's type; the pointer tells the heuristic its alignment */
        gemm_lt_set(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type);
        gemm_lt_set(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
    }
    cudaDataType_t ab_type = (cudaDataType_t)key.ab_type, d_type = (cudaDataType_t)key.d_type;
    int a_n = key.trans_a == CUBLAS_OP_N;
    int b_n = key.trans_b == CUBLAS_OP_N;
    cublasCheck(cublasLtMatrixLayoutCreate(&p->a, ab_type, a_n ? key.m : key.k, a_n ? key.k : key.m, key.lda));
    cublasCheck(cublasLtMatrixLayoutCreate(&p->b, ab_type, b_n ? key.k : key.n, b_n ? key.n : key.k, key.ldb));
    cublasCheck(cublasLtMatrixLayoutCreate(&p->d, d_type, key.m, key.n, key.ldd));
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t workspace = GEMM_LT_WORKSPACE_BYTES;
    uint32_t align[4] = {(uint32_t)key.align_a, (uint32_t)key.align_b, (uint32_t)key.align_d,
                         (uint32_t)key.align_d};
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                     sizeof workspace));
    const cublasLtMatmulPreferenceAttributes_t align_attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; i++)
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, align_attr[i], &align[i], sizeof align[i]));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(gemm_lt_handle(), p->desc, p->a, p->b, p->d, p->d,
                                                            pref, 1, &result, &found);
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    shapeCheck(status == CUBLAS_STATUS_SUCCESS && found == 1,
               "cuBLASLt has no algorithm for %dx%dx%d (trans %d%d, types %d->%d, epilogue %d; status %d)",
               key.m, key.n, key.k, key.trans_a, key.trans_b, key.ab_type, key.d_type, key.epilogue, (int)status);
    p->algo = result.algo;
    made++;
    return p;
}

/* D = A op B + beta D (column-major), the products summed in fp32; bias (of D's type, m values,
 * or NULL) added to the fp32 result in the epilogue, before D's one rounding. */
template <typename ab_t, typename d_t>
static void gemm_lt(GemmMath math, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                    const ab_t *A, int lda, const ab_t *B, int ldb, float beta, d_t *D, int ldd,
                    const d_t *bias, cudaStream_t stream) {
    gemm_lt_reserve();
    int tf32 = math == GEMM_TF32 && sizeof(ab_t) == sizeof(float);
    GemmLtKey key = {m, n, k, lda, ldb, ldd, (int)ta, (int)tb, (int)gemm_type<ab_t>(), (int)gemm_type<d_t>(),
                     (int)(tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F),
                     (int)(bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT),
                     gemm_lt_alignment(A), gemm_lt_alignment(B), gemm_lt_alignment(D),
                     bias ? gemm_lt_alignment(bias) : 0};
    GemmLtPlan *plan = gemm_lt_plan(key, bias);
    /* the bias pointer is set on the plan's descriptor when the GEMM is queued: a held GEMM
     * (cuda/queue.h) sets its own again */
    tng_queue([&] { return tng_hash_values((const void *)cublasLtMatmul, key, A, B, beta, D, bias); },
              [=] {
                  if (bias)
                      gemm_lt_set(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
                  const float one = 1.0f;
                  cublasCheck(cublasLtMatmul(gemm_lt_handle(), plan->desc, &one, A, plan->a, B, plan->b, &beta, D,
                                             plan->d, D, plan->d, &plan->algo, gemm_lt_workspace,
                                             GEMM_LT_WORKSPACE_BYTES, stream));
              });
}

/* out = inp @ weight^T + bias, the bias in the GEMM's epilogue (bf16: its bf16 copy) */
template <typename io_t>
void linear_forward(GemmMath math, io_t *out, const io_t *inp, const io_t *weight, const float *bias, int N,
                    int IC, int OC, cudaStream_t stream) {
    if (N == 0 || OC == 0)
        return;
    const io_t *bias_io = NULL;
    if constexpr (sizeof(io_t) == sizeof(float)) {
        bias_io = bias;
    } else if (bias) {
        io_t *copy = (io_t *)tng_cuda_scratch(sizeof(io_t) * OC);
        launch_elementwise(ToAct<io_t>{copy, bias}, (size_t)OC, stream);
        bias_io = copy;
    }
    gemm_lt(math, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, IC, weight, IC, inp, IC, 0.0f, out, OC, bias_io, stream);
}

/* pre = inp @ weight^T + bias (the epilogue's), out = act(pre) from the stored pre: QuickGELU
 * is no cuBLASLt epilogue, so the activation is one elementwise pass after the GEMM */
template <typename io_t>
void linear_activation_forward(GemmMath math, io_t *pre, io_t *out, const io_t *inp, const io_t *weight,
                               const float *bias, ActKind act, int N, int IC, int OC, cudaStream_t stream) {
    linear_forward<io_t>(math, pre, inp, weight, bias, N, IC, OC, stream);
    launch_elementwise(ActivationForward<io_t>{out, pre, act}, (size_t)N * OC, stream);
}

template <typename io_t>
void linear_backward(GemmMath math, float *dinp, float *dweight, float *dbias, const float *dout,
                     const io_t *inp, const io_t *weight, int N, int IC, int OC, cudaStream_t stream) {
    if (N == 0 || OC == 0 || IC == 0)
        return;
    /* dbias first: the column sum and the bf16 dout below share the scratch, in stream order */
    colsum_accumulate<1>(dbias, (float *)NULL, StridedRows<float>{dout, (size_t)OC}, (size_t)N, (size_t)OC,
                         stream);
    if (!dinp && !dweight)
        return;
    const io_t *dout_io;
    if constexpr (sizeof(io_t) == sizeof(float)) {
        dout_io = dout;
    } else {
        size_t n = (size_t)N * OC;
        io_t *copy = (io_t *)tng_cuda_scratch(sizeof(io_t) * n);
        launch_elementwise(ToAct<io_t>{copy, dout}, n, stream);
        dout_io = copy;
    }
    if (dinp) /* dinp[N,IC] = dout[N,OC] @ weight[OC,IC]: beta 0, dinp is not read */
        gemm_lt(math, CUBLAS_OP_N, CUBLAS_OP_N, IC, N, OC, weight, IC, dout_io, OC, 0.0f, dinp, IC,
                (const float *)NULL, stream);
    if (dweight) /* dweight[OC,IC] += dout^T @ inp */
        gemm_lt(math, CUBLAS_OP_N, CUBLAS_OP_T, IC, OC, N, inp, IC, dout_io, OC, 1.0f, dweight, IC,
                (const float *)NULL, stream);
}

#endif
