/*
 * backend_cpu.c: the CPU backend's Backend table (backend_cpu()): host memory and the
 * float32 ops of this folder, one file per op family as in kernels/.
 *
 * Like every file here the Makefile compiles this one twice, but only the float32 build
 * holds the table: the Backend interface is float by definition, so the double build (the
 * finite-difference reference, reached through the _f64 names of ops_cpu.h) has nothing to
 * put in one and compiles to an empty object.
 */
#include "engine/backend.h" // defines: Backend, backend_cpu

#if !TNG_REAL_DOUBLE
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/ops_cpu.h" // declares: the _f32 ops
#include "util/common.h"        // defines: callocCheck

static void *cpu_alloc(size_t bytes) { return callocCheck(1, bytes); }
static void cpu_release(void *ptr) { free(ptr); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_zero(void *ptr, size_t bytes) { memset(ptr, 0, bytes); }

/* The table's form of sum_squares: into an accumulator (host memory here). */
static void accumulate_sum_squares(double *acc, const float *x, size_t n) { *acc += sum_squares_f32(x, n); }

static const Backend cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .release = cpu_release,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .zero = cpu_zero,
    .matmul_forward = matmul_forward_f32,
    .matmul_backward = matmul_backward_f32,
    .layernorm_forward = layernorm_forward_f32,
    .layernorm_backward = layernorm_backward_f32,
    .attention_forward = attention_forward_f32,
    .attention_backward = attention_backward_f32,
    .activation_forward = activation_forward_f32,
    .activation_backward = activation_backward_f32,
    .residual_forward = residual_forward_f32,
    .accumulate = accumulate_f32,
    .scale = scale_f32,
    .im2col_patches = im2col_patches_f32,
    .vision_embed_forward = vision_embed_forward_f32,
    .vision_embed_backward = vision_embed_backward_f32,
    .token_embed_forward = token_embed_forward_f32,
    .token_embed_backward = token_embed_backward_f32,
    .gather_rows = gather_rows_f32,
    .scatter_rows = scatter_rows_f32,
    .l2norm_forward = l2norm_forward_f32,
    .l2norm_backward = l2norm_backward_f32,
    .infonce_forward_backward = infonce_forward_backward_f32,
    .adamw_update = adamw_update_f32,
    .sum_squares = accumulate_sum_squares,
};

const Backend *backend_cpu(void) { return &cpu_backend; }
#endif
