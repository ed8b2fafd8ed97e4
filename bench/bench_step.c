/*
 * bench_step.c: the engine's training step: time, achieved GFLOP/s (MFU with --peak-tflops),
 * memory allocated, and on the CPU how much of the step is GEMM and at what rate, for a named
 * config, batch and texts per image, on the CPU or (built with CUDA) the GPU in any precision;
 * with --profile (CPU), every op's share of the step: calls, ms, bytes moved, GB/s against the
 * machine's memory bandwidth measured in the same run.
 *
 * FLOPs and bytes are counted, not sampled: the benchmark runs the model on a copy of the
 * backend's table whose every entry is wrapped to count the work each call does (GEMMs: 2 N IC
 * OC per product; attention: 4 B T^2 C forward, halved where causal, 2.5 times that backward,
 * which recomputes the scores) and the time it takes (one clock read before and after each
 * call; meaningful on the CPU only, where the ops are synchronous). The ops themselves run
 * unchanged. Each step ends by reading one value back, so a GPU's step time includes all of
 * its kernels.
 * --cpu-time reads the process's CPU time instead of the wall clock: with OMP_NUM_THREADS=1
 * that counts only the time the step itself ran, the steadier measure on a machine shared
 * with other jobs (with more threads it also counts their waiting at barriers).
 *
 *   build/bench/bench_step --config tiny --batch 64 [--steps 10] [--caption-tokens 16]
 *                          [--min-caption-tokens 8] [--text-groups 3]
 *                          [--full-context] [--freeze-vision] [--profile] [--sgemm-peak]
 *   build/bench/bench_step --backend cuda --precision bf16 --config vit-b-32 --batch 256
 *                          --cached-features --texts-per-image 3 --peak-tflops 989 [--cuda-graphs]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <math.h>

#include "engine/backend.h" // defines: backend_select, precision_names
#include "engine/model.h"
#include "util/common.h"
#include "engine/optim.h"
#include "util/rng.h"

/* ---------------------------------------------------------------------------------------- */
/* per-op profile: every entry of the table wrapped to count calls, time and bytes */

static const Backend *inner; /* the backend whose ops the wrappers call and count */
static double allocated_bytes; /* everything the model and the loss allocated */

/* The minimum traffic of each op: every tensor it reads or writes, once (an accumulated
   output counts twice, read and written); float32. A reference for GB/s, not a measurement
   of the caches. */
enum {
    P_MATMUL_FWD, P_MATMUL_BWD, P_LINEAR_FWD, P_LINEAR_BWD, P_LINEAR_ACT_FWD, P_LN_FWD, P_LN_BWD,
    P_RES_LN_FWD, P_ATTN_FWD, P_ATTN_BWD, P_ACT_FWD, P_ACT_BWD,
    P_RESIDUAL, P_ACCUMULATE, P_SCALE, P_IM2COL, P_VEMBED_FWD, P_VEMBED_BWD, P_TEMBED_FWD,
    P_TEMBED_BWD, P_GATHER, P_SCATTER, P_L2_FWD, P_L2_BWD, P_INFONCE, P_ADAMW, P_SUMSQ, P_ZERO,
    P_COUNT
};
static const char *const op_names[P_COUNT] = {
    "matmul_forward", "matmul_backward", "linear_forward", "linear_backward", "linear_activation_forward",
    "layernorm_forward",
    "layernorm_backward", "residual_layernorm_forward",
    "attention_forward", "attention_backward", "activation_forward", "activation_backward",
    "residual_forward", "accumulate", "scale", "im2col_patches", "vision_embed_forward",
    "vision_embed_backward", "token_embed_forward", "token_embed_backward", "gather_rows",
    "scatter_rows", "l2norm_forward", "l2norm_backward", "infonce_forward_backward",
    "adamw_step", "sum_squares", "zero"};
static struct {
    long calls;
    double seconds, bytes, flops;
} prof[P_COUNT];

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
/* the clock every time in this program is read from: wall (now_seconds) or --cpu-time */
static double (*clock_seconds)(void) = now_seconds;

static void account(int op, double t0, double floats, double flops) {
    prof[op].seconds += clock_seconds() - t0;
    prof[op].calls++;
    prof[op].bytes += 4.0 * floats;
    prof[op].flops += flops;
}

static double matmul_forward_floats(int N, int IC, int OC) {
    return (double)N * IC + (double)OC * IC + OC + (double)N * OC;
}
static void matmul_backward_cost(const float *dinp, const float *dweight, const float *dbias, int N, int IC,
                                 int OC, double *floats, double *flops) {
    *floats = (double)N * OC, *flops = 0;
    if (dinp) *floats += (double)OC * IC + 2.0 * N * IC, *flops += 2.0 * N * IC * OC;
    if (dweight) *floats += (double)N * IC + 2.0 * OC * IC, *flops += 2.0 * N * IC * OC;
    if (dbias) *floats += 2.0 * OC;
}
static void p_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                             int N, int IC, int OC) {
    double t0 = clock_seconds();
    inner->matmul_forward(out, inp, weight, bias, N, IC, OC);
    account(P_MATMUL_FWD, t0, matmul_forward_floats(N, IC, OC), 2.0 * N * IC * OC);
}
static void p_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, int N, int IC, int OC) {
    double t0 = clock_seconds(), floats, flops;
    inner->matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC);
    matmul_backward_cost(dinp, dweight, dbias, N, IC, OC, &floats, &flops);
    account(P_MATMUL_BWD, t0, floats, flops);
}
static void p_linear_forward(Act *out, const Act *inp, const Act *weight, const float *bias, int N, int IC,
                             int OC) {
    double t0 = clock_seconds();
    inner->linear_forward(out, inp, weight, bias, N, IC, OC);
    account(P_LINEAR_FWD, t0, matmul_forward_floats(N, IC, OC), 2.0 * N * IC * OC);
}
static void p_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const Act *inp,
                              const Act *weight, int N, int IC, int OC) {
    double t0 = clock_seconds(), floats, flops;
    inner->linear_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC);
    matmul_backward_cost(dinp, dweight, dbias, N, IC, OC, &floats, &flops);
    account(P_LINEAR_BWD, t0, floats, flops);
}
static void p_linear_activation_forward(Act *pre, Act *out, const Act *inp, const Act *weight, const float *bias,
                                        ActKind act, int N, int IC, int OC) {
    double t0 = clock_seconds();
    inner->linear_activation_forward(pre, out, inp, weight, bias, act, N, IC, OC);
    account(P_LINEAR_ACT_FWD, t0, matmul_forward_floats(N, IC, OC) + 2.0 * N * OC, 2.0 * N * IC * OC);
}
static void p_layernorm_forward(Act *out, float *mean, float *rstd, const Act *inp,
                                const float *weight, const float *bias, int N, int C) {
    double t0 = clock_seconds();
    inner->layernorm_forward(out, mean, rstd, inp, weight, bias, N, C);
    account(P_LN_FWD, t0, 2.0 * N * C + 2.0 * C + 2.0 * N, 0);
}
static void p_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const Act *inp, const float *weight, const float *mean,
                                 const float *rstd, int N, int C) {
    double t0 = clock_seconds();
    inner->layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    account(P_LN_BWD, t0, 2.0 * N * C + 2.0 * N + C + (dinp ? 2.0 * N * C : 0) + 4.0 * C, 0);
}
static void p_residual_layernorm_forward(Act *residual, Act *out, float *mean, float *rstd, const Act *a,
                                         const Act *b, const float *weight, const float *bias, int N, int C) {
    double t0 = clock_seconds();
    inner->residual_layernorm_forward(residual, out, mean, rstd, a, b, weight, bias, N, C);
    account(P_RES_LN_FWD, t0, 4.0 * N * C + 2.0 * C + 2.0 * N, 0);
}
/* q.k and P.v: 2 multiply-adds per (query, key, channel); causal rows see half the keys */
static double attention_flops(int B, int T, int C, int causal) {
    double pairs = causal ? 0.5 * T * (T + 1) : (double)T * T;
    return 4.0 * B * pairs * C;
}
static void p_attention_forward(Act *out, float *lse, const Act *qkv, int B, int T, int C,
                                int NH, int causal) {
    double t0 = clock_seconds();
    inner->attention_forward(out, lse, qkv, B, T, C, NH, causal);
    account(P_ATTN_FWD, t0, 4.0 * B * T * C + (double)B * NH * T, attention_flops(B, T, C, causal));
}
/* reads dout, qkv, out and lse, updates dqkv; five products: q.k again, dout.v, P^T dout,
   dS.k and dS^T q */
static void p_attention_backward(float *dqkv, const float *dout, const Act *qkv, const Act *out,
                                 const float *lse, int B, int T, int C, int NH, int causal) {
    double t0 = clock_seconds();
    inner->attention_backward(dqkv, dout, qkv, out, lse, B, T, C, NH, causal);
    account(P_ATTN_BWD, t0, 11.0 * B * T * C + (double)B * NH * T, 2.5 * attention_flops(B, T, C, causal));
}
static void p_activation_forward(Act *out, const Act *inp, size_t n, ActKind act) {
    double t0 = clock_seconds();
    inner->activation_forward(out, inp, n, act);
    account(P_ACT_FWD, t0, 2.0 * n, 0);
}
static void p_activation_backward(float *dinp, float *dbias, const Act *inp, const float *dout, int N, int C,
                                  ActKind act) {
    double t0 = clock_seconds();
    inner->activation_backward(dinp, dbias, inp, dout, N, C, act);
    account(P_ACT_BWD, t0, 3.0 * N * C + (dbias ? 2.0 * C : 0), 0);
}
static void p_residual_forward(Act *out, const Act *a, const Act *b, size_t n) {
    double t0 = clock_seconds();
    inner->residual_forward(out, a, b, n);
    account(P_RESIDUAL, t0, 3.0 * n, 0);
}
static void p_accumulate(float *dst, const float *src, size_t n) {
    double t0 = clock_seconds();
    inner->accumulate(dst, src, n);
    account(P_ACCUMULATE, t0, 3.0 * n, 0);
}
static void p_scale(float *x, float factor, size_t n) {
    double t0 = clock_seconds();
    inner->scale(x, factor, n);
    account(P_SCALE, t0, 2.0 * n, 0);
}
static void p_im2col_patches(Act *patches, const float *images, int B, int H, int W, int P) {
    double t0 = clock_seconds();
    inner->im2col_patches(patches, images, B, H, W, P);
    account(P_IM2COL, t0, 2.0 * B * 3 * H * W, 0);
}
static void p_vision_embed_forward(Act *x, const Act *patch_out, const float *class_emb,
                                   const float *pos, int B, int NP, int C) {
    double t0 = clock_seconds();
    inner->vision_embed_forward(x, patch_out, class_emb, pos, B, NP, C);
    account(P_VEMBED_FWD, t0, (double)B * NP * C + (NP + 2.0) * C + (double)B * (NP + 1) * C, 0);
}
static void p_vision_embed_backward(float *dpatch_out, float *dclass_emb, float *dpos,
                                    const float *dx, int B, int NP, int C) {
    double t0 = clock_seconds();
    inner->vision_embed_backward(dpatch_out, dclass_emb, dpos, dx, B, NP, C);
    account(P_VEMBED_BWD, t0, (double)B * (NP + 1) * C + (dpatch_out ? 2.0 * B * NP * C : 0) +
                                  2.0 * (NP + 2) * C, 0);
}
static void p_token_embed_forward(Act *x, const int *ids, const float *tok_emb, const float *pos,
                                  int B, int T, int C) {
    double t0 = clock_seconds();
    inner->token_embed_forward(x, ids, tok_emb, pos, B, T, C);
    account(P_TEMBED_FWD, t0, 2.0 * B * T * C + (double)T * C + (double)B * T, 0);
}
static void p_token_embed_backward(float *dtok_emb, float *dpos, const float *dx, const int *ids,
                                   int B, int T, int C) {
    double t0 = clock_seconds();
    inner->token_embed_backward(dtok_emb, dpos, dx, ids, B, T, C);
    account(P_TEMBED_BWD, t0, (double)B * T * C + (dtok_emb ? 2.0 * B * T * C : 0) +
                                  (dpos ? 2.0 * T * C : 0) + (double)B * T, 0);
}
static void p_gather_rows(Act *out, const Act *x, const int *rows, int B, int T, int C) {
    double t0 = clock_seconds();
    inner->gather_rows(out, x, rows, B, T, C);
    account(P_GATHER, t0, 2.0 * B * C, 0);
}
static void p_scatter_rows(float *dx, const float *dout, const int *rows, int B, int T, int C) {
    double t0 = clock_seconds();
    inner->scatter_rows(dx, dout, rows, B, T, C);
    account(P_SCATTER, t0, 3.0 * B * C, 0);
}
static void p_l2norm_forward(float *out, float *norm, const Act *inp, int N, int C) {
    double t0 = clock_seconds();
    inner->l2norm_forward(out, norm, inp, N, C);
    account(P_L2_FWD, t0, 2.0 * N * C + N, 0);
}
static void p_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norm,
                              int N, int C) {
    double t0 = clock_seconds();
    inner->l2norm_backward(dinp, dout, out, norm, N, C);
    account(P_L2_BWD, t0, 4.0 * N * C + N, 0);
}
static void p_infonce(float *dcos, float *stats, const float *cos, const int *txt2img,
                      const int *i2t_target, const float *logit_scale, float fixed_scale, int Ni, int Nt,
                      const InfonceTerms *terms) {
    double t0 = clock_seconds();
    inner->infonce_forward_backward(dcos, stats, cos, txt2img, i2t_target, logit_scale, fixed_scale, Ni, Nt, terms);
    account(P_INFONCE, t0, 2.0 * Ni * Nt + Ni + Nt, 0);
}
static void p_adamw_step(float *params, float *grads, float *m, float *v, Act *params_act, const AdamWTensor *tensors,
                         int count, size_t total, const AdamWStep *hp) {
    double t0 = clock_seconds();
    inner->adamw_step(params, grads, m, v, params_act, tensors, count, total, hp);
    account(P_ADAMW, t0, 8.0 * total, 0); /* param, m, v read and written, grad read and zeroed */
}
static void p_sum_squares(double *acc, const float *x, size_t n) {
    double t0 = clock_seconds();
    inner->sum_squares(acc, x, n);
    account(P_SUMSQ, t0, (double)n, 0);
}
static void p_zero(void *ptr, size_t bytes) {
    double t0 = clock_seconds();
    inner->zero(ptr, bytes);
    account(P_ZERO, t0, bytes / 4.0, 0);
}

static void *p_alloc(size_t bytes) {
    allocated_bytes += (double)bytes;
    return inner->alloc(bytes);
}

static void profile_table(Backend *t) {
    t->alloc = p_alloc;
    t->matmul_forward = p_matmul_forward, t->matmul_backward = p_matmul_backward;
    t->linear_forward = p_linear_forward, t->linear_backward = p_linear_backward;
    t->linear_activation_forward = p_linear_activation_forward;
    t->layernorm_forward = p_layernorm_forward, t->layernorm_backward = p_layernorm_backward;
    t->residual_layernorm_forward = p_residual_layernorm_forward;
    t->attention_forward = p_attention_forward, t->attention_backward = p_attention_backward;
    t->activation_forward = p_activation_forward, t->activation_backward = p_activation_backward;
    t->residual_forward = p_residual_forward, t->accumulate = p_accumulate, t->scale = p_scale;
    t->im2col_patches = p_im2col_patches;
    t->vision_embed_forward = p_vision_embed_forward, t->vision_embed_backward = p_vision_embed_backward;
    t->token_embed_forward = p_token_embed_forward, t->token_embed_backward = p_token_embed_backward;
    t->gather_rows = p_gather_rows, t->scatter_rows = p_scatter_rows;
    t->l2norm_forward = p_l2norm_forward, t->l2norm_backward = p_l2norm_backward;
    t->infonce_forward_backward = p_infonce;
    t->adamw_step = p_adamw_step, t->sum_squares = p_sum_squares, t->zero = p_zero;
}

static double sgemm_gflops(int n, int reps) {
    float *a = mallocCheck(sizeof(float) * (size_t)n * n), *b = mallocCheck(sizeof(float) * (size_t)n * n);
    float *c = mallocCheck(sizeof(float) * (size_t)n * n);
    Rng rng;
    rng_seed(&rng, 1);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)rng_normal(&rng), b[i] = (float)rng_normal(&rng);
    backend_cpu()->matmul_forward(c, a, b, NULL, n, n, n); /* warm-up */
    double t0 = now_seconds();
    for (int r = 0; r < reps; r++) backend_cpu()->matmul_forward(c, a, b, NULL, n, n, n);
    double seconds = now_seconds() - t0;
    free(a), free(b), free(c);
    return 2.0 * n * n * n * reps / seconds / 1e9;
}

/* STREAM's triad a = b + s * c on 3 arrays of 2^25 floats (3 x 128 MB, far past the caches),
   OpenMP threads and clock as set; best of 5, counting 3 x 4 bytes per element as STREAM
   does. */
static double triad_gbs(void) {
    size_t n = (size_t)1 << 25;
    float *a = mallocCheck(sizeof(float) * n), *b = mallocCheck(sizeof(float) * n);
    float *c = mallocCheck(sizeof(float) * n);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = 0, b[i] = 1, c[i] = 2;
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = clock_seconds();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 3.0f * c[i];
        double t = clock_seconds() - t0;
        if (t < best) best = t;
    }
    free(a), free(b), free(c);
    return 12.0 * n / best / 1e9;
}

/* The profile table: ops by time, each with its share of the step and its traffic. */
static void print_profile(double step_seconds, int steps, double bandwidth) {
    printf("memory bandwidth (STREAM triad, same threads): %.1f GB/s\n", bandwidth);
    printf("%-26s %7s %9s %6s %9s %8s %7s %9s\n", "op", "calls", "ms/step", "step%", "MB/step",
           "GB/s", "bw%", "GFLOP/s");
    int order[P_COUNT];
    for (int i = 0; i < P_COUNT; i++) order[i] = i;
    for (int i = 1; i < P_COUNT; i++) /* insertion sort by time, largest first */
        for (int j = i; j > 0 && prof[order[j]].seconds > prof[order[j - 1]].seconds; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    double in_ops = 0;
    for (int k = 0; k < P_COUNT; k++) {
        int i = order[k];
        in_ops += prof[i].seconds;
        if (prof[i].calls == 0) continue;
        double gbs = prof[i].bytes / prof[i].seconds / 1e9;
        printf("%-26s %7.0f %9.2f %5.1f%% %9.1f %8.1f %6.0f%% ", op_names[i],
               (double)prof[i].calls / steps, 1e3 * prof[i].seconds / steps,
               100 * prof[i].seconds / (step_seconds * steps), prof[i].bytes / steps / 1e6, gbs,
               100 * gbs / bandwidth);
        if (prof[i].flops > 0) printf("%9.1f\n", prof[i].flops / prof[i].seconds / 1e9);
        else printf("%9s\n", "-");
    }
    printf("%-26s %7s %9.2f %5.1f%%   (orchestration, host copies, timer reads)\n",
           "outside the ops", "", 1e3 * (step_seconds * steps - in_ops) / steps,
           100 * (1 - in_ops / (step_seconds * steps)));
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: bench_step [options]\n"
            "  --config NAME         model preset: tiny or vit-b-32 (default tiny)\n"
            "  --batch N             images per step (default 32)\n"
            "  --texts-per-image K   texts per image, all positives of it: TNG's 1 + M (default 1)\n"
            "  --steps N             timed steps after one warm-up step (default 5)\n"
            "  --caption-tokens N    EOT position of every caption (default 16), or with\n"
            "  --min-caption-tokens M  of each caption, drawn uniformly from [M, N]\n"
            "  --text-groups K       texts sorted by length into up to K groups, each cut to its own\n"
            "                        longest (default 1: one group, as tng_train's --text-groups)\n"
            "  --full-context        run all context positions (disable the EOT cut)\n"
            "  --freeze-vision       train the text tower only (the vision tower still runs)\n"
            "  --cached-features     train the text tower only, from cached image features, as\n"
            "                        tng_train does when the vision tower is frozen\n"
            "  --backend NAME        cpu (default) or cuda, when this program is built with it\n"
            "  --precision NAME      auto, fp32, tf32 or bf16 (as the programs' --precision)\n"
            "  --peak-tflops X       the device's dense peak for this precision: prints MFU\n"
            "  --profile             time every op of the table; print ms, MB and GB/s per op\n"
            "                        (CPU only: GPU kernels run asynchronously)\n"
            "  --cpu-time            time with the process's CPU time, not the wall clock (CPU)\n"
            "  --cuda-graphs         every step after the warm-up one graph, replayed (as tng_train's)\n"
            "  --sgemm-peak          measure OpenBLAS sgemm at 2048^3 and exit\n"
            "  --help                this text\n");
}

/* Backend choice by name: cpu or cuda (engine/backend.h) */
static int choice_index(const char *name, const char *const *names, int count) {
    for (int i = 0; i < count; i++)
        if (strcmp(name, names[i]) == 0) return i;
    die("unknown choice '%s'", name);
}

int main(int argc, char **argv) {
    const char *config_name = "tiny";
    int batch = 32, per_image = 1, steps = 5, caption_tokens = 16, full_context = 0, freeze_vision = 0;
    int cached_features = 0, profile = 0, cpu_time = 0, min_caption_tokens = 0, text_groups = 1, graphs = 0;
    BackendChoice backend = BACKEND_CPU;
    Precision precision = PRECISION_AUTO;
    double peak_tflops = 0;
    static const struct option options[] = {
        {"config", required_argument, 0, 'c'},   {"batch", required_argument, 0, 'b'},
        {"texts-per-image", required_argument, 0, 'k'},
        {"steps", required_argument, 0, 's'},    {"caption-tokens", required_argument, 0, 't'},
        {"full-context", no_argument, 0, 'f'},   {"freeze-vision", no_argument, 0, 'v'},
        {"cached-features", no_argument, 0, 'F'},
        {"min-caption-tokens", required_argument, 0, 'm'}, {"text-groups", required_argument, 0, 'g'},
        {"backend", required_argument, 0, 'B'},  {"precision", required_argument, 0, 'R'},
        {"peak-tflops", required_argument, 0, 'T'},
        {"sgemm-peak", no_argument, 0, 'p'},     {"profile", no_argument, 0, 'P'},
        {"cpu-time", no_argument, 0, 'C'},       {"cuda-graphs", no_argument, 0, 'G'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    for (int opt; (opt = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        switch (opt) {
        case 'c': config_name = optarg; break;
        case 'b': batch = atoi(optarg); break;
        case 'k': per_image = atoi(optarg); break;
        case 's': steps = atoi(optarg); break;
        case 't': caption_tokens = atoi(optarg); break;
        case 'm': min_caption_tokens = atoi(optarg); break;
        case 'g': text_groups = atoi(optarg); break;
        case 'f': full_context = 1; break;
        case 'v': freeze_vision = 1; break;
        case 'F': cached_features = freeze_vision = 1; break;
        case 'B': backend = (BackendChoice)choice_index(optarg, backend_choice_names, 3); break;
        case 'R': precision = (Precision)choice_index(optarg, precision_names, PRECISION_COUNT); break;
        case 'T': peak_tflops = atof(optarg); break;
        case 'P': profile = 1; break;
        case 'G': graphs = 1; break;
        case 'C': cpu_time = 1, clock_seconds = cpu_seconds; break;
        case 'p': printf("sgemm 2048^3: %.1f GFLOP/s\n", sgemm_gflops(2048, 5)); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    ClipConfig cfg;
    if (clip_config_preset(config_name, &cfg) != 0) die("unknown config '%s'", config_name);
    if (batch < 1 || per_image < 1 || steps < 1 || caption_tokens < 1 || caption_tokens >= cfg.context_length)
        die("--batch, --texts-per-image and --steps must be >= 1 and --caption-tokens in [1, %d)",
            cfg.context_length);
    if (!min_caption_tokens) min_caption_tokens = caption_tokens;
    if (min_caption_tokens < 1 || min_caption_tokens > caption_tokens)
        die("--min-caption-tokens must be in [1, --caption-tokens]");
    if (text_groups < 1 || text_groups > CLIP_MAX_TEXT_GROUPS)
        die("--text-groups must be in [1, %d]", CLIP_MAX_TEXT_GROUPS);
    char desc[512];
    inner = backend_select(backend, precision, 0, desc, sizeof desc);
    if (inner != backend_cpu() && (profile || cpu_time))
        die("--profile and --cpu-time time the CPU's ops; a GPU's run asynchronously");
    if (graphs && !inner->graph_begin) die("--cuda-graphs: the %s backend has no graphs", inner->name);

    Backend timed = *inner;
    profile_table(&timed);
    Clip *m = clip_create(&cfg, &timed);
    clip_init_random(m, 1);
    ClipTrainConfig train = {.temperature = 0, .train_vision = !freeze_vision, .train_text = 1,
                             .full_context = full_context, .text_groups = text_groups,
                             .text_length_multiple = graphs ? 8 : 1}; /* as tng_train with graphs */
    int n_texts = batch * per_image;
    clip_prepare(m, &train, batch, n_texts);

    Rng rng;
    rng_seed(&rng, 2);
    size_t npix = (size_t)batch * 3 * cfg.image_size * cfg.image_size, nfeat = (size_t)batch * cfg.embed_dim;
    float *images = mallocCheck(sizeof(float) * npix), *features = mallocCheck(sizeof(float) * nfeat);
    for (size_t i = 0; i < npix; i++) images[i] = (float)rng_normal(&rng);
    for (int b = 0; b < batch; b++) { /* unit rows, as the cache holds */
        float *f = features + (size_t)b * cfg.embed_dim;
        double norm = 0;
        for (int d = 0; d < cfg.embed_dim; d++) f[d] = (float)rng_normal(&rng), norm += (double)f[d] * f[d];
        for (int d = 0; d < cfg.embed_dim; d++) f[d] = (float)(f[d] / sqrt(norm));
    }
    int *tokens = callocCheck((size_t)n_texts * cfg.context_length, sizeof(int));
    int *txt2img = mallocCheck(sizeof(int) * n_texts), *target = mallocCheck(sizeof(int) * batch);
    for (int t = 0; t < n_texts; t++) {
        int *row = tokens + (size_t)t * cfg.context_length;
        row[0] = cfg.vocab_size - 2;
        int eot = min_caption_tokens + (int)rng_below(&rng, (uint64_t)(caption_tokens - min_caption_tokens + 1));
        for (int k = 1; k < eot; k++) row[k] = 1 + (int)rng_below(&rng, 40000);
        row[eot] = clip_eot_token(&cfg);
        txt2img[t] = t % batch; /* grouped as TNG's batches are: text t belongs to image t mod batch */
    }
    for (int b = 0; b < batch; b++) target[b] = per_image > 1 ? -1 : b;
    ClipBatch cb = {.n_images = batch, .images = cached_features ? NULL : images,
                    .image_features = cached_features ? features : NULL, .n_texts = n_texts, .tokens = tokens,
                    .txt2img = txt2img, .i2t_target = target};
    OptimConfig oc = optim_defaults();
    double total = 0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1) memset(prof, 0, sizeof prof); /* step 0 warms up */
        /* the trainer's step: queued whole (one graph with --cuda-graphs, after the warm-up),
         * then its one read-back, which returns when the step's last kernel has run */
        double t0 = clock_seconds();
        int graph = graphs && s > 0;
        if (graph) m->be->graph_begin();
        clip_forward_queued(m, &cb);
        clip_backward(m);
        clip_optimizer_queue(m, &oc, 1);
        if (graph) m->be->graph_launch();
        clip_step_read(m, 1, NULL, NULL);
        if (s > 0) total += clock_seconds() - t0;
    }
    double gemm_s = 0, gemm_flops = 0;
    for (int op = P_MATMUL_FWD; op <= P_LINEAR_ACT_FWD; op++) gemm_s += prof[op].seconds, gemm_flops += prof[op].flops;
    double attn_s = prof[P_ATTN_FWD].seconds + prof[P_ATTN_BWD].seconds;
    double attn_flops = prof[P_ATTN_FWD].flops + prof[P_ATTN_BWD].flops;
    double step = total / steps, flops = (gemm_flops + attn_flops) / steps;
    printf("config=%s batch=%d texts=%d text_tokens=%d text_groups=%d text_rows=%d vision=%s steps=%d graphs=%s "
           "backend=%s\n", config_name, batch, n_texts, m->text_tokens, m->text_groups.count, m->text_groups.rows,
           cached_features ? "cached" : freeze_vision ? "frozen" : "trained", steps, graphs ? "on" : "off", desc);
    printf("step %.2f ms  %.1f pairs/s  %.2f GFLOP/step  %.1f GFLOP/s  %.2f GB allocated", step * 1e3,
           batch / step, flops / 1e9, flops / step / 1e9, allocated_bytes / 1e9);
    if (peak_tflops > 0) printf("  MFU %.1f%% of %.0f TFLOP/s", 100 * flops / step / (peak_tflops * 1e12), peak_tflops);
    printf("\n");
    if (inner == backend_cpu())
        printf("gemm %.1f%% of step at %.1f GFLOP/s; attention %.1f%% at %.1f GFLOP/s\n", 100 * gemm_s / total,
               gemm_flops / gemm_s / 1e9, 100 * attn_s / total, attn_flops / attn_s / 1e9);
    if (profile) print_profile(step, steps, triad_gbs());
    free(images), free(features), free(tokens), free(txt2img), free(target);
    clip_free(m);
    return 0;
}
