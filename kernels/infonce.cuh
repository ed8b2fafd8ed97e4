/*
 * infonce.cuh: the fused InfoNCE loss on the rectangular similarity matrix cos [Ni, Nt]
 * (logits = scale * cos), its gradient dcos and the dloss/dscale statistic.
 *
 * The definition is the CPU op's (host/cpu/ops_cpu.c, infonce_forward_backward): text t's
 * cross-entropy over the images (its positive is txt2img[t]) averaged over texts, plus image
 * i's cross-entropy over the texts (target i2t_target[i], or the uniform mixture of its own
 * texts when -1) averaged over images, halved. The matrix may be a block of the global one
 * (InfonceTerms, backend.h): row i is global image first + i, either term may be off (its
 * kernel is not launched and it contributes 0), and the means divide by the global counts.
 * A text with txt2img -1 (a contradiction negative) has no column term and is no image's
 * positive, but stays in every row's softmax with its logit offset by
 * terms.negative_log_weight; the text-to-image mean divides by terms.n_texts, the count of
 * texts that do have a positive image. With terms.i2t_each, a row with target -1 instead
 * averages over its positives p the cross-entropy of p against the row's NEGATIVES alone
 * (the image's other positives leave the softmax): row_lse holds the log-sum-exp of the
 * negatives and row_each the mean over p of N / (e^s_p + N), N that negative mass.
 * A pair terms.exclude marks (NULL: none) is skipped by every max and sum and gets dcos 0.
 * terms.weight multiplies dlogit and the stats last (0 read as 1: the unweighted op, bit for bit).
 *
 * Four kernels, none with atomics:
 *   rows:    block per image row: online max/sum-exp over the texts, the target logit
 *            and the count of the image's positives;
 *   columns: block per 32 texts, 8 row groups walking the images with coalesced 128-byte
 *            row segments, merged in a fixed order;
 *   grads:   block per image row: every element's dlogit from its own logit and the two
 *            log-sum-exps (so writing dcos over cos in place is safe), and the row's share
 *            of dscale = sum dlogit * cos;
 *   finish:  one block sums the per-row and per-column terms into stats[].
 * The scale is read on the device (InfonceScale), and logit_scale_backward adds the learned
 * temperature's gradient there too: a learned temperature costs no read-back.
 * Per-row and per-column scratch (6 floats a row/column) comes from the backend's scratch.
 */
#ifndef TNG_KERNELS_INFONCE_CUH
#define TNG_KERNELS_INFONCE_CUH

#include "common.cuh"
extern "C" {
#include "engine/backend.h" /* defines: INFONCE_LOSS, INFONCE_T2I, INFONCE_I2T, INFONCE_DSCALE */
}
#include "cuda/cuda_common.h"

/* The logit scale (backend.h, infonce_forward_backward): exp(*logit_scale) read on the device
 * (a learned temperature: nothing is read back to the host), or the fixed scale. expf, as the
 * CPU backend computes it. */
struct InfonceScale {
    const float *logit_scale;
    float fixed;
    __device__ __forceinline__ float value() const { return logit_scale ? expf(*logit_scale) : fixed; }
};

/* The image-to-text logit of a column: contradictions (no positive image) carry ln w. */
__device__ __forceinline__ float i2t_logit(float logit, int positive_image, float log_weight) {
    return positive_image < 0 ? logit + log_weight : logit;
}

/* Whether element `at` of the block is excluded from the objective (InfonceTerms.exclude). */
__device__ __forceinline__ bool infonce_excluded(const unsigned char *exclude, size_t at) {
    return exclude && exclude[at];
}

/* The objective's weight: 0, unset, is 1 (backend.h). */
__device__ __forceinline__ float infonce_weight(const InfonceTerms &terms) {
    return terms.weight != 0.0f ? terms.weight : 1.0f;
}

/* log(e^a + e^b) without overflow. */
__device__ __forceinline__ float log_add_exp(float a, float b) {
    return fmaxf(a, b) + log1pf(expf(-fabsf(a - b)));
}

/* Merges a running (max, sum of exp(x - max)) pair with another. */
__device__ __forceinline__ void lse_merge(float &m, float &s, float m2, float s2) {
    if (m2 == -INFINITY)
        return;
    if (m == -INFINITY) {
        m = m2;
        s = s2;
        return;
    }
    float mx = fmaxf(m, m2);
    s = s * expf(m - mx) + s2 * expf(m2 - mx);
    m = mx;
}

static __global__ void __launch_bounds__(INFONCE_THREADS)
    infonce_rows_kernel(float *row_lse, float *row_loss, float *row_pos, float *row_each,
                        const float *cos, const int *txt2img, const int *i2t_target, InfonceScale sc,
                        int first, int Nt, float log_weight, int each, const unsigned char *exclude) {
    __shared__ float shared[PLAN_WARP];
    float scale = sc.value();
    int i = blockIdx.x;
    const float *r = cos + (size_t)i * Nt;
    const unsigned char *row_exclude = exclude ? exclude + (size_t)i * Nt : NULL;
    float m = -INFINITY, s = 0.0f, own_sum = 0.0f, own_count = 0.0f;
    for (int t = threadIdx.x; t < Nt; t += blockDim.x) {
        float x = scale * r[t];
        if (!infonce_excluded(row_exclude, t))
            lse_merge(m, s, i2t_logit(x, txt2img[t], log_weight), 1.0f);
        if (txt2img[t] == first + i) {
            own_sum += x;
            own_count += 1.0f;
        }
    }
    float block_m = block_max(m, shared);
    float lse = block_m + logf(block_sum(m == -INFINITY ? 0.0f : s * expf(m - block_m), shared));
    own_sum = block_sum(own_sum, shared);
    own_count = block_sum(own_count, shared);
    if (each && i2t_target[i] < 0) { /* each positive against the negatives: a second pass */
        float neg_m = -INFINITY, neg_s = 0.0f, loss = 0.0f, share = 0.0f;
        for (int t = threadIdx.x; t < Nt; t += blockDim.x)
            if (txt2img[t] != first + i && !infonce_excluded(row_exclude, t))
                lse_merge(neg_m, neg_s, i2t_logit(scale * r[t], txt2img[t], log_weight), 1.0f);
        float neg_block_m = block_max(neg_m, shared);
        float neg_sum = block_sum(neg_m == -INFINITY ? 0.0f : neg_s * expf(neg_m - neg_block_m), shared);
        float ln_neg = neg_block_m + logf(neg_sum);
        for (int t = threadIdx.x; t < Nt; t += blockDim.x) {
            if (txt2img[t] != first + i) continue;
            float x = scale * r[t], both = log_add_exp(x, ln_neg);
            loss += both - x;
            share += expf(ln_neg - both);
        }
        loss = block_sum(loss, shared);
        share = block_sum(share, shared);
        if (threadIdx.x == 0) {
            row_lse[i] = ln_neg;
            row_loss[i] = loss / own_count;
            row_pos[i] = own_count;
            row_each[i] = share / own_count;
        }
        return;
    }
    if (threadIdx.x == 0) {
        int target = i2t_target[i];
        /* uniform soft target over the image's own texts (count >= 1: the model checks) */
        float target_logit = target >= 0 ? scale * r[target] : own_sum / own_count;
        row_lse[i] = lse;
        row_loss[i] = lse - target_logit;
        row_pos[i] = own_count;
    }
}

static __global__ void __launch_bounds__(INFONCE_THREADS)
    infonce_columns_kernel(float *col_lse, float *col_loss, const float *cos, const int *txt2img,
                           InfonceScale sc, int first, int Ni, int Nt, const unsigned char *exclude) {
    __shared__ float group_m[INFONCE_COL_GROUPS][INFONCE_COL_TILE];
    __shared__ float group_s[INFONCE_COL_GROUPS][INFONCE_COL_TILE];
    float scale = sc.value();
    int lane = threadIdx.x % INFONCE_COL_TILE, group = threadIdx.x / INFONCE_COL_TILE;
    int t = blockIdx.x * INFONCE_COL_TILE + lane;
    float m = -INFINITY, s = 0.0f;
    int scored = t < Nt && txt2img[t] >= 0; /* a contradiction column has no term */
    if (scored)
        for (int i = group; i < Ni; i += INFONCE_COL_GROUPS)
            if (!infonce_excluded(exclude, (size_t)i * Nt + t))
                lse_merge(m, s, scale * cos[(size_t)i * Nt + t], 1.0f);
    group_m[group][lane] = m;
    group_s[group][lane] = s;
    __syncthreads();
    if (group == 0 && t < Nt && !scored) {
        col_lse[t] = 0.0f;
        col_loss[t] = 0.0f;
    } else if (group == 0 && t < Nt) {
        for (int g = 1; g < INFONCE_COL_GROUPS; g++)
            lse_merge(m, s, group_m[g][lane], group_s[g][lane]);
        float lse = m + logf(s);
        col_lse[t] = lse;
        col_loss[t] = lse - scale * cos[(size_t)(txt2img[t] - first) * Nt + t];
    }
}

/* dlogit = 0.5 [(softmax_col - onehot)/n_texts + (softmax_row - target)/n_images], either
 * term 0 when off; dcos = dlogit scale.
 * cos and dcos may be the same buffer: each element is read, then written, by one thread. */
static __global__ void __launch_bounds__(INFONCE_THREADS)
    infonce_grads_kernel(float *dcos, float *row_dscale, const float *cos, const float *row_lse,
                         const float *row_pos, const float *row_each, const float *col_lse,
                         const int *txt2img, const int *i2t_target, InfonceScale sc,
                         InfonceTerms terms, int Nt) {
    __shared__ float shared[PLAN_WARP];
    float scale = sc.value();
    int i = blockIdx.x, target = terms.image_to_text ? i2t_target[i] : 0;
    int each = terms.image_to_text && terms.i2t_each && target < 0;
    float lse = terms.image_to_text ? row_lse[i] : 0.0f;
    float inv_pos = terms.image_to_text ? 1.0f / row_pos[i] : 0.0f;
    float share = each ? row_each[i] : 0.0f;
    float dscale = 0.0f;
    for (int t = threadIdx.x; t < Nt; t += blockDim.x) {
        size_t at = (size_t)i * Nt + t;
        if (infonce_excluded(terms.exclude, at)) { /* in no softmax: no gradient, no dscale */
            dcos[at] = 0.0f;
            continue;
        }
        float c = cos[at], logit = scale * c;
        int own = txt2img[t] == terms.first_image + i;
        float col_term = 0.0f, row_term = 0.0f;
        int positive = txt2img[t];
        if (terms.text_to_image && positive >= 0)
            col_term = (expf(logit - col_lse[t]) - (float)own) / terms.n_texts;
        if (each && own) {
            float both = log_add_exp(logit, lse);
            row_term = (expf(logit - both) - 1.0f) * inv_pos / terms.n_images;
        } else if (each) {
            row_term = expf(i2t_logit(logit, positive, terms.negative_log_weight) - lse) * share /
                       terms.n_images;
        } else if (terms.image_to_text) {
            float target_row = target >= 0 ? (float)(target == t) : own * inv_pos;
            row_term = (expf(i2t_logit(logit, positive, terms.negative_log_weight) - lse) -
                        target_row) / terms.n_images;
        }
        float dlogit = 0.5f * (col_term + row_term) * infonce_weight(terms);
        dcos[at] = dlogit * scale;
        dscale += dlogit * c;
    }
    dscale = block_sum(dscale, shared);
    if (threadIdx.x == 0)
        row_dscale[i] = dscale;
}

static __global__ void __launch_bounds__(INFONCE_THREADS)
    infonce_finish_kernel(float *stats, const float *row_loss, const float *row_dscale,
                          const float *col_loss, InfonceTerms terms, int Ni, int Nt) {
    __shared__ double shared[PLAN_WARP];
    double t2i = 0, i2t = 0, dscale = 0;
    for (int t = threadIdx.x; t < Nt && terms.text_to_image; t += blockDim.x)
        t2i += col_loss[t];
    for (int i = threadIdx.x; i < Ni; i += blockDim.x) {
        if (terms.image_to_text)
            i2t += row_loss[i];
        dscale += row_dscale[i];
    }
    t2i = block_sum(t2i, shared) / terms.n_texts;
    i2t = block_sum(i2t, shared) / terms.n_images;
    dscale = block_sum(dscale, shared);
    if (threadIdx.x == 0) {
        stats[INFONCE_LOSS] = (float)(0.5 * (t2i + i2t) * infonce_weight(terms));
        stats[INFONCE_T2I] = (float)(t2i * infonce_weight(terms));
        stats[INFONCE_I2T] = (float)(i2t * infonce_weight(terms));
        stats[INFONCE_DSCALE] = (float)dscale;
    }
}

static inline void infonce_forward_backward(float *dcos, float *stats, const float *cos,
                                            const int *txt2img, const int *i2t_target,
                                            InfonceScale scale, int Ni, int Nt, const InfonceTerms &terms,
                                            cudaStream_t stream) {
    InfoncePlan plan = infonce_plan(Ni, Nt);
    shapeCheck(plan.ok, "infonce over %d images x %d texts", Ni, Nt);
    float *row_lse = (float *)tng_cuda_scratch(sizeof(float) * plan.scratch_floats);
    float *row_loss = row_lse + Ni, *row_dscale = row_loss + Ni, *row_pos = row_dscale + Ni;
    float *row_each = row_pos + Ni, *col_lse = row_each + Ni, *col_loss = col_lse + Nt;
    if (terms.image_to_text)
        TNG_LAUNCH(infonce_rows_kernel, (unsigned)plan.row_blocks, plan.threads, 0, stream, row_lse,
                   row_loss, row_pos, row_each, cos, txt2img, i2t_target, scale, terms.first_image,
                   Nt, terms.negative_log_weight, terms.i2t_each, terms.exclude);
    if (terms.text_to_image)
        TNG_LAUNCH(infonce_columns_kernel, (unsigned)plan.col_blocks, plan.threads, 0, stream,
                   col_lse, col_loss, cos, txt2img, scale, terms.first_image, Ni, Nt, terms.exclude);
    TNG_LAUNCH(infonce_grads_kernel, (unsigned)plan.row_blocks, plan.threads, 0, stream, dcos,
               row_dscale, cos, row_lse, row_pos, row_each, col_lse, txt2img, i2t_target, scale,
               terms, Nt);
    TNG_LAUNCH(infonce_finish_kernel, 1, plan.threads, 0, stream, stats, row_loss, row_dscale,
               col_loss, terms, Ni, Nt);
}

/* The learned temperature's gradient (backend.h, logit_scale_backward): one thread, the CPU
 * op's float operations in its order, so that no read-back is needed to add it. */
static __global__ void logit_scale_backward_kernel(float *dlogit_scale, const float *stats, int blocks,
                                                   const float *logit_scale) {
    float dscale = stats[INFONCE_DSCALE];
    for (int b = 1; b < blocks; b++)
        dscale = __fadd_rn(dscale, stats[b * INFONCE_NSTATS + INFONCE_DSCALE]);
    *dlogit_scale = __fadd_rn(*dlogit_scale, __fmul_rn(dscale, expf(*logit_scale)));
}

static inline void logit_scale_backward(float *dlogit_scale, const float *stats, int blocks,
                                        const float *logit_scale, cudaStream_t stream) {
    TNG_LAUNCH(logit_scale_backward_kernel, 1, 1, 0, stream, dlogit_scale, stats, blocks, logit_scale);
}

#endif
