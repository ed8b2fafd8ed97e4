/* cublasLt.h for the CPU emulator (tests/emu/README.md): the part of cuBLASLt the backend's
 * linear layers use (kernels/matmul.cuh), with the documented semantics:
 *   D = alpha op(A) op(B) + beta C, then + bias[row] (epilogue BIAS: one value per row of
 *   the column-major D), rounded once to D's type,
 * every matrix column-major with the layout's rows, columns and leading dimension, the
 * products summed in fp32 (CUBLAS_COMPUTE_32F; _FAST_TF32 rounds nothing here). The bias is
 * of D's type, as the cuBLASLt header documents for float and bf16 outputs.
 *
 * What it checks, as the real library would refuse or misbehave: the layouts' dimensions
 * against the transposes (op(A) m x k, op(B) k x n, C and D m x n and alike), the type
 * combination (A and B alike: fp32 with an fp32 D, or bf16 with a bf16 or fp32 D), attribute
 * sizes and values, every matrix, the bias and the workspace in device memory over their
 * whole extent, and that the algorithm came from cublasLtMatmulAlgoGetHeuristic for this
 * problem and for pointers at least as aligned as the preference (and the bias pointer at
 * query time) said. What it does not emulate (other epilogues, attributes, types, batches)
 * is refused with a message naming it. */
#pragma once
#include <stdint.h>
#include <stdio.h>

#include <vector>

#include "cublas_v2.h"

typedef struct cublasLtContext *cublasLtHandle_t;

typedef enum {
    CUBLASLT_MATMUL_DESC_TRANSA = 3,
    CUBLASLT_MATMUL_DESC_TRANSB = 4,
    CUBLASLT_MATMUL_DESC_EPILOGUE = 7,
    CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,
    CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = 26
} cublasLtMatmulDescAttributes_t;

typedef enum { CUBLASLT_EPILOGUE_DEFAULT = 1, CUBLASLT_EPILOGUE_BIAS = 4 } cublasLtEpilogue_t;

typedef enum {
    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8
} cublasLtMatmulPreferenceAttributes_t;

typedef struct {
    uint64_t data[8];
} cublasLtMatmulAlgo_t;

typedef struct {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
} cublasLtMatmulHeuristicResult_t;

struct EmuLtMatmulDesc {
    cublasComputeType_t compute;
    int32_t transa, transb;
    uint32_t epilogue;
    const void *bias;
    int32_t bias_type; /* -1: D's type (the library's default) */
};
typedef EmuLtMatmulDesc *cublasLtMatmulDesc_t;

struct EmuLtLayout {
    cudaDataType_t type;
    uint64_t rows, cols;
    int64_t ld;
};
typedef EmuLtLayout *cublasLtMatrixLayout_t;

struct EmuLtPreference {
    uint64_t max_workspace;
    uint32_t align[4]; /* A, B, C, D; the library's default is 256 bytes */
};
typedef EmuLtPreference *cublasLtMatmulPreference_t;

static inline cublasStatus_t emu_lt_refuse(const char *what, long value) {
    fprintf(stderr, "cudaemu: cuBLASLt: %s (%ld) is not emulated (tests/emu/include/cublasLt.h)\n", what, value);
    return CUBLAS_STATUS_NOT_SUPPORTED;
}

/* The largest power of two, up to 256, that divides the address. */
static inline uint32_t emu_lt_alignment(const void *p) {
    uint32_t align = 256;
    while (align > 1 && (uintptr_t)p % align)
        align /= 2;
    return align;
}

static inline size_t emu_lt_type_bytes(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }

static inline cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle) {
    *handle = (cublasLtHandle_t)1;
    return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc, cublasComputeType_t compute,
                                                      cudaDataType_t scale) {
    if (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32)
        return emu_lt_refuse("compute type", compute);
    if (scale != CUDA_R_32F)
        return emu_lt_refuse("scale type", scale);
    *desc = new EmuLtMatmulDesc{compute, CUBLAS_OP_N, CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT, NULL, -1};
    return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                                            cublasLtMatmulDescAttributes_t attr, const void *buf,
                                                            size_t bytes) {
    int32_t v32 = 0;
    if (bytes == sizeof v32)
        memcpy(&v32, buf, sizeof v32);
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB:
        if (bytes != sizeof(int32_t) || (v32 != CUBLAS_OP_N && v32 != CUBLAS_OP_T))
            return CUBLAS_STATUS_INVALID_VALUE;
        (attr == CUBLASLT_MATMUL_DESC_TRANSA ? desc->transa : desc->transb) = v32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        if (bytes != sizeof(uint32_t))
            return CUBLAS_STATUS_INVALID_VALUE;
        if (v32 != CUBLASLT_EPILOGUE_DEFAULT && v32 != CUBLASLT_EPILOGUE_BIAS)
            return emu_lt_refuse("epilogue", v32);
        desc->epilogue = (uint32_t)v32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        if (bytes != sizeof(void *))
            return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&desc->bias, buf, sizeof(void *));
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        if (bytes != sizeof(int32_t))
            return CUBLAS_STATUS_INVALID_VALUE;
        desc->bias_type = v32;
        return CUBLAS_STATUS_SUCCESS;
    }
    return emu_lt_refuse("matmul descriptor attribute", attr);
}

static inline cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType_t type,
                                                        uint64_t rows, uint64_t cols, int64_t ld) {
    if (type != CUDA_R_32F && type != CUDA_R_16BF)
        return emu_lt_refuse("matrix type", type);
    if (ld < (int64_t)(rows > 1 ? rows : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    *layout = new EmuLtLayout{type, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
    delete layout;
    return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
    delete desc;
    return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
    *pref = new EmuLtPreference{0, {256, 256, 256, 256}};
    return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    delete pref;
    return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                                  cublasLtMatmulPreferenceAttributes_t attr,
                                                                  const void *buf, size_t bytes) {
    if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
        if (bytes != sizeof(uint64_t))
            return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&pref->max_workspace, buf, bytes);
        return CUBLAS_STATUS_SUCCESS;
    }
    if (attr >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && attr <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES) {
        uint32_t align;
        if (bytes != sizeof align)
            return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&align, buf, bytes);
        if (align == 0 || (align & (align - 1)))
            return CUBLAS_STATUS_INVALID_VALUE;
        pref->align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES] = align;
        return CUBLAS_STATUS_SUCCESS;
    }
    return emu_lt_refuse("preference attribute", attr);
}

/* The problem a descriptor and four layouts state, checked; m, n, k out. */
static inline cublasStatus_t emu_lt_problem(cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                                            cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                            cublasLtMatrixLayout_t d, uint64_t *m, uint64_t *n, uint64_t *k) {
    *m = d->rows;
    *n = d->cols;
    *k = desc->transa == CUBLAS_OP_N ? a->cols : a->rows;
    uint64_t a_rows = desc->transa == CUBLAS_OP_N ? a->rows : a->cols;
    uint64_t b_rows = desc->transb == CUBLAS_OP_N ? b->rows : b->cols;
    uint64_t b_cols = desc->transb == CUBLAS_OP_N ? b->cols : b->rows;
    if (a_rows != *m || b_rows != *k || b_cols != *n || c->rows != d->rows || c->cols != d->cols ||
        c->ld != d->ld || c->type != d->type) {
        fprintf(stderr, "cudaemu: cuBLASLt: op(A) %llux%llu, op(B) %llux%llu, C %llux%llu, D %llux%llu do not "
                        "make a GEMM (C like D)\n", (unsigned long long)a_rows, (unsigned long long)*k,
                (unsigned long long)b_rows, (unsigned long long)b_cols, (unsigned long long)c->rows,
                (unsigned long long)c->cols, (unsigned long long)d->rows, (unsigned long long)d->cols);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (a->type != b->type || (a->type == CUDA_R_32F && d->type != CUDA_R_32F))
        return emu_lt_refuse("type combination (A, B, D)", (long)a->type * 10000 + b->type * 100 + d->type);
    if (desc->compute == CUBLAS_COMPUTE_32F_FAST_TF32 && a->type != CUDA_R_32F)
        return emu_lt_refuse("TF32 compute on inputs of type", a->type);
    if (desc->epilogue == CUBLASLT_EPILOGUE_BIAS) {
        int32_t bias_type = desc->bias_type < 0 ? (int32_t)d->type : desc->bias_type;
        if (bias_type != (int32_t)d->type) {
            fprintf(stderr, "cudaemu: cuBLASLt: a bias of type %d on a D of type %d: the documented bias type for "
                            "float and bf16 outputs is D's\n", (int)bias_type, (int)d->type);
            return CUBLAS_STATUS_NOT_SUPPORTED;
        }
        if (!desc->bias) {
            fprintf(stderr, "cudaemu: cuBLASLt: epilogue BIAS without CUBLASLT_MATMUL_DESC_BIAS_POINTER\n");
            return CUBLAS_STATUS_INVALID_VALUE;
        }
    }
    return CUBLAS_STATUS_SUCCESS;
}

/* An algorithm is the problem and the alignments it was chosen for: data[0] marks it. */
#define EMU_LT_ALGO_MARK 0x4c74416c676fULL

static inline cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t desc,
                                                            cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                            cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                                            cublasLtMatmulPreference_t pref, int requested,
                                                            cublasLtMatmulHeuristicResult_t results[],
                                                            int *returned) {
    *returned = 0;
    if (requested < 1)
        return CUBLAS_STATUS_INVALID_VALUE;
    uint64_t m, n, k;
    cublasStatus_t status = emu_lt_problem(desc, a, b, c, d, &m, &n, &k);
    if (status != CUBLAS_STATUS_SUCCESS)
        return status;
    cublasLtMatmulHeuristicResult_t r;
    memset(&r, 0, sizeof r);
    uint64_t *data = r.algo.data;
    data[0] = EMU_LT_ALGO_MARK;
    data[1] = m;
    data[2] = n;
    data[3] = k;
    data[4] = desc->epilogue;
    data[5] = (uint64_t)pref->align[0] | (uint64_t)pref->align[1] << 16 | (uint64_t)pref->align[2] << 32 |
              (uint64_t)pref->align[3] << 48;
    data[6] = desc->epilogue == CUBLASLT_EPILOGUE_BIAS ? emu_lt_alignment(desc->bias) : 1;
    r.workspaceSize = 0; /* none needed here; the real library asks for up to the preference */
    r.state = CUBLAS_STATUS_SUCCESS;
    r.wavesCount = 1.0f;
    results[0] = r;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

/* The matrix's extent in bytes: its last column ends at row `rows` */
static inline size_t emu_lt_extent(cublasLtMatrixLayout_t l) {
    return l->cols ? emu_lt_type_bytes(l->type) * ((size_t)l->ld * (l->cols - 1) + l->rows) : 0;
}

static inline bool emu_lt_in_device(const char *what, const void *p, size_t bytes) {
    if (emu::is_device_range(p, bytes))
        return true;
    fprintf(stderr, "cudaemu: cublasLtMatmul: %s (%p, %zu bytes) is not in device memory\n", what, p, bytes);
    return false;
}

static inline cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void *alpha,
                                            const void *A, cublasLtMatrixLayout_t a, const void *B,
                                            cublasLtMatrixLayout_t b, const void *beta, const void *C,
                                            cublasLtMatrixLayout_t c, void *D, cublasLtMatrixLayout_t d,
                                            const cublasLtMatmulAlgo_t *algo, void *workspace,
                                            size_t workspace_bytes, cudaStream_t stream) {
    uint64_t m, n, k;
    cublasStatus_t status = emu_lt_problem(desc, a, b, c, d, &m, &n, &k);
    if (status != CUBLAS_STATUS_SUCCESS)
        return status;
    const uint64_t *data = algo ? algo->data : NULL;
    if (!data || data[0] != EMU_LT_ALGO_MARK || data[1] != m || data[2] != n || data[3] != k ||
        data[4] != desc->epilogue) {
        fprintf(stderr, "cudaemu: cublasLtMatmul: the algorithm was not chosen for this problem\n");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    const void *ptrs[4] = {A, B, C, D};
    for (int i = 0; i < 4; i++)
        if (emu_lt_alignment(ptrs[i]) < ((data[5] >> (16 * i)) & 0xffff)) {
            fprintf(stderr, "cudaemu: cublasLtMatmul: matrix %c at %p is less aligned than the heuristic was told\n",
                    "ABCD"[i], ptrs[i]);
            return CUBLAS_STATUS_INVALID_VALUE;
        }
    bool bias = desc->epilogue == CUBLASLT_EPILOGUE_BIAS;
    if (bias && emu_lt_alignment(desc->bias) < data[6]) {
        fprintf(stderr, "cudaemu: cublasLtMatmul: the bias at %p is less aligned than at the heuristic's query\n",
                desc->bias);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (!emu_lt_in_device("A", A, emu_lt_extent(a)) || !emu_lt_in_device("B", B, emu_lt_extent(b)) ||
        !emu_lt_in_device("C", C, emu_lt_extent(c)) || !emu_lt_in_device("D", D, emu_lt_extent(d)) ||
        (bias && !emu_lt_in_device("bias", desc->bias, emu_lt_type_bytes(d->type) * m)) ||
        (workspace_bytes && !emu_lt_in_device("workspace", workspace, workspace_bytes)))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0)
        return CUBLAS_STATUS_SUCCESS;
    float al = *(const float *)alpha, be = *(const float *)beta;
    /* a capture keeps the scalars', the descriptors' and the algorithm's values, as a captured
     * GEMM keeps its launch parameters whatever happens to them later */
    if (emu::record([=, desc_v = *desc, a_v = *a, b_v = *b, c_v = *c, d_v = *d, algo_v = *algo]() mutable {
            cublasLtMatmul(handle, &desc_v, &al, A, &a_v, B, &b_v, &be, C, &c_v, D, &d_v, &algo_v, workspace,
                           workspace_bytes, stream);
        }))
        return CUBLAS_STATUS_SUCCESS;
    emu::st().gemms++;
    std::vector<float> av = emu_widen(A, a->type, (int)a->rows, (int)a->cols, (int)a->ld);
    std::vector<float> bv = emu_widen(B, b->type, (int)b->rows, (int)b->cols, (int)b->ld);
    /* beta == 0: C is not read (it may hold NaN), as in BLAS */
    std::vector<float> dv = be != 0.0f ? emu_widen(C, c->type, (int)m, (int)n, (int)c->ld)
                                       : std::vector<float>((size_t)d->ld * n, 0.0f);
    cblas_sgemm(CblasColMajor, desc->transa == CUBLAS_OP_T ? CblasTrans : CblasNoTrans,
                desc->transb == CUBLAS_OP_T ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, al, av.data(),
                (int)a->ld, bv.data(), (int)b->ld, be, dv.data(), (int)d->ld);
    std::vector<float> biasv = bias ? emu_widen(desc->bias, d->type, (int)m, 1, (int)m) : std::vector<float>();
    for (uint64_t col = 0; col < n; col++)
        for (uint64_t row = 0; row < m; row++) {
            size_t i = (size_t)col * d->ld + row;
            float v = bias ? dv[i] + biasv[row] : dv[i];
            if (d->type == CUDA_R_32F)
                ((float *)D)[i] = v;
            else
                ((__nv_bfloat16 *)D)[i] = __float2bfloat16_rn(v);
        }
    return CUBLAS_STATUS_SUCCESS;
}
