/*
 * ops_cpu.c: the CPU backend, plain C + OpenBLAS + OpenMP.
 *
 * Compiled twice (see ops_cpu.h): `real` is float for the engine and double for the
 * finite-difference reference. Every op is written as the plainest correct loop, with
 * GEMMs handed to BLAS, because this file is the oracle the CUDA kernels are tested against.
 *
 * Determinism: OpenMP loops use static schedules and every reduction is done either by one
 * thread in a fixed order or over fixed-size chunks summed in order, so results do not
 * depend on the thread count. Backward ops accumulate (+=) into their gradients.
 */
#include "engine/cpu/ops_cpu.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

#if TNG_REAL_DOUBLE
typedef double real;
#define OP(name) name##_f64
#define GEMM cblas_dgemm
#define EXP exp
#define ERF erf
#define SQRT sqrt
#else
typedef float real;
#define OP(name) name##_f32
#define GEMM cblas_sgemm
#define EXP expf
#define ERF erff
#define SQRT sqrtf
#endif

/* Sums over rows, deterministic and cache-friendly: the N rows are cut into fixed chunks of
 * ROW_CHUNK, each chunk sums its rows in order into its own partial row (contiguous reads),
 * then the partials are added in chunk order. Neither step depends on the thread count. */
#define ROW_CHUNK 64
static int row_chunks(int N) { return (N + ROW_CHUNK - 1) / ROW_CHUNK; }

/* out[c] += sum over chunks of partial[k*C + c], in chunk order. */
static void add_partials(real *out, const double *partial, int chunks, int C) {
    for (int c = 0; c < C; c++) {
        double sum = 0;
        for (int k = 0; k < chunks; k++) sum += partial[(size_t)k * C + c];
        out[c] += (real)sum;
    }
}

/* ----------------------------------------------------------------------------
 * Linear layers: out = inp @ weight^T + bias */

void OP(matmul_forward)(real *out, const real *inp, const real *weight, const real *bias, int N,
                        int IC, int OC) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1, inp, IC, weight, IC, 0, out, OC);
    if (!bias) return;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        real *row = out + (size_t)n * OC;
        for (int o = 0; o < OC; o++) row[o] += bias[o];
    }
}

void OP(matmul_backward)(real *dinp, real *dweight, real *dbias, const real *dout,
                         const real *inp, const real *weight, int N, int IC, int OC) {
    if (dinp) /* dinp[N,IC] += dout[N,OC] @ weight[OC,IC] */
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1, dout, OC, weight, IC, 1,
             dinp, IC);
    if (dweight) /* dweight[OC,IC] += dout^T @ inp */
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1, dout, OC, inp, IC, 1, dweight,
             IC);
    if (dbias) {
        int chunks = row_chunks(N);
        double *partial = callocCheck((size_t)chunks * OC, sizeof(double));
#pragma omp parallel for schedule(static)
        for (int k = 0; k < chunks; k++) {
            double *acc = partial + (size_t)k * OC;
            int end = (k + 1) * ROW_CHUNK < N ? (k + 1) * ROW_CHUNK : N;
            for (int n = k * ROW_CHUNK; n < end; n++)
                for (int o = 0; o < OC; o++) acc[o] += dout[(size_t)n * OC + o];
        }
        add_partials(dbias, partial, chunks, OC);
        free(partial);
    }
}

/* ----------------------------------------------------------------------------
 * LayerNorm over the last dimension. Statistics are accumulated in double. */

void OP(layernorm_forward)(real *out, real *mean, real *rstd, const real *inp, const real *weight,
                           const real *bias, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        double sum = 0;
        for (int c = 0; c < C; c++) sum += x[c];
        double mu = sum / C;
        double var = 0;
        for (int c = 0; c < C; c++) var += (x[c] - mu) * (x[c] - mu);
        double rs = 1.0 / sqrt(var / C + CLIP_LN_EPS);
        real *y = out + (size_t)n * C;
        for (int c = 0; c < C; c++) y[c] = (real)((x[c] - mu) * rs) * weight[c] + bias[c];
        mean[n] = (real)mu;
        rstd[n] = (real)rs;
    }
}

void OP(layernorm_backward)(real *dinp, real *dweight, real *dbias, const real *dout,
                            const real *inp, const real *weight, const real *mean,
                            const real *rstd, int N, int C) {
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            double mu = mean[n], rs = rstd[n];
            double dnorm_mean = 0, dnorm_norm_mean = 0;
            for (int c = 0; c < C; c++) {
                double dnorm = (double)dy[c] * weight[c];
                dnorm_mean += dnorm;
                dnorm_norm_mean += dnorm * (x[c] - mu) * rs;
            }
            dnorm_mean /= C;
            dnorm_norm_mean /= C;
            real *dx = dinp + (size_t)n * C;
            for (int c = 0; c < C; c++) {
                double norm = (x[c] - mu) * rs;
                double dnorm = (double)dy[c] * weight[c];
                dx[c] += (real)((dnorm - dnorm_mean - norm * dnorm_norm_mean) * rs);
            }
        }
    }
    /* parameter gradients: chunked sums over rows (see ROW_CHUNK) */
    int chunks = row_chunks(N);
    double *partial_w = callocCheck((size_t)chunks * C * 2, sizeof(double));
    double *partial_b = partial_w + (size_t)chunks * C;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < chunks; k++) {
        double *acc_w = partial_w + (size_t)k * C, *acc_b = partial_b + (size_t)k * C;
        int end = (k + 1) * ROW_CHUNK < N ? (k + 1) * ROW_CHUNK : N;
        for (int n = k * ROW_CHUNK; n < end; n++) {
            const real *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            double mu = mean[n], rs = rstd[n];
            for (int c = 0; c < C; c++) {
                acc_w[c] += (double)dy[c] * (x[c] - mu) * rs;
                acc_b[c] += dy[c];
            }
        }
    }
    if (dweight) add_partials(dweight, partial_w, chunks, C);
    if (dbias) add_partials(dbias, partial_b, chunks, C);
    free(partial_w);
}

/* ----------------------------------------------------------------------------
 * Attention. qkv[b,t] holds q (C values), then k, then v; head h uses the slice
 * [h*hs, (h+1)*hs) of each, so one head's q, k or v is a [T, hs] matrix with row stride 3C
 * that BLAS reads in place. att[b,h] is the [T, T] softmax; masked entries are 0. Each
 * (b, h) is independent, so OpenMP splits them; the GEMMs inside run on one thread. */

void OP(attention_forward)(real *out, real *att, const real *qkv, int B, int T, int C, int NH,
                           int causal) {
    int hs = C / NH, row = 3 * C;
    real scale = (real)(1.0 / sqrt((double)hs));
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const real *q = qkv + (size_t)b * T * row + h * hs, *k = q + C, *v = q + 2 * C;
            real *a = att + ((size_t)b * NH + h) * T * T;
            /* scores = scale * q @ k^T, then a row softmax over the visible keys */
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, q, row, k, row, 0, a, T);
            for (int t = 0; t < T; t++) {
                real *r = a + (size_t)t * T;
                int visible = causal ? t + 1 : T;
                double maxv = -INFINITY, sum = 0;
                for (int t2 = 0; t2 < visible; t2++) maxv = fmax(maxv, r[t2]);
                for (int t2 = 0; t2 < visible; t2++) sum += (r[t2] = EXP(r[t2] - (real)maxv));
                for (int t2 = 0; t2 < visible; t2++) r[t2] = (real)(r[t2] / sum);
                for (int t2 = visible; t2 < T; t2++) r[t2] = 0;
            }
            /* out_h = att @ v */
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1, a, T, v, row, 0,
                 out + (size_t)b * T * C + h * hs, C);
        }
    }
}

void OP(attention_backward)(real *dqkv, real *datt, const real *dout, const real *qkv,
                            const real *att, int B, int T, int C, int NH, int causal) {
    int hs = C / NH, row = 3 * C;
    real scale = (real)(1.0 / sqrt((double)hs));
    /* each (b, h) owns a disjoint slice of dqkv and datt, so the loop has no races */
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            size_t base = (size_t)b * T * row + h * hs;
            const real *q = qkv + base, *k = q + C, *v = q + 2 * C;
            real *dq = dqkv + base, *dk = dq + C, *dv = dq + 2 * C;
            const real *a = att + ((size_t)b * NH + h) * T * T;
            real *da = datt + ((size_t)b * NH + h) * T * T;
            const real *dy = dout + (size_t)b * T * C + h * hs;
            /* through out = att @ v */
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1, dy, C, v, row, 0, da, T);
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1, a, T, dy, C, 1, dv, row);
            /* through the softmax: dscore = att * (datt - sum(att * datt)); masked stay 0 */
            for (int t = 0; t < T; t++) {
                const real *ar = a + (size_t)t * T;
                real *dr = da + (size_t)t * T;
                double weighted = 0;
                for (int t2 = 0; t2 < T; t2++) weighted += (double)ar[t2] * dr[t2];
                for (int t2 = 0; t2 < T; t2++) dr[t2] = (real)(ar[t2] * (dr[t2] - weighted));
            }
            /* through scores = scale * q @ k^T */
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, scale, da, T, k, row, 1, dq, row);
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, scale, da, T, q, row, 1, dk, row);
        }
    }
}

/* ----------------------------------------------------------------------------
 * Elementwise ops */

#define QUICK_GELU_ALPHA 1.702

void OP(activation_forward)(real *out, const real *inp, size_t n, ActKind act) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        real x = inp[i];
        out[i] = act == ACT_GELU ? (real)0.5 * x * (1 + ERF(x * (real)M_SQRT1_2))
                                 : x / (1 + EXP((real)-QUICK_GELU_ALPHA * x));
    }
}

void OP(activation_backward)(real *dinp, const real *inp, const real *dout, size_t n,
                             ActKind act) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        real x = inp[i], grad;
        if (act == ACT_GELU) {
            grad = (real)0.5 * (1 + ERF(x * (real)M_SQRT1_2)) +
                   x * EXP((real)-0.5 * x * x) * (real)(0.5 * M_2_SQRTPI * M_SQRT1_2);
        } else {
            real sig = 1 / (1 + EXP((real)-QUICK_GELU_ALPHA * x));
            grad = sig + (real)QUICK_GELU_ALPHA * x * sig * (1 - sig);
        }
        dinp[i] += grad * dout[i];
    }
}

void OP(residual_forward)(real *out, const real *a, const real *b, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void OP(accumulate)(real *dst, const real *src, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

void OP(scale)(real *x, float factor, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= factor;
}

/* ----------------------------------------------------------------------------
 * Embeddings */

void OP(im2col_patches)(real *patches, const real *images, int B, int H, int W, int P) {
    int gw = W / P, np = (H / P) * gw, cols = 3 * P * P;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int p = 0; p < np; p++) {
            int py = p / gw, px = p % gw;
            real *dst = patches + ((size_t)b * np + p) * cols;
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < P; y++)
                    memcpy(dst + (ch * P + y) * P,
                           images + (((size_t)b * 3 + ch) * H + py * P + y) * W + px * P,
                           sizeof(real) * (size_t)P);
        }
    }
}

void OP(vision_embed_forward)(real *x, const real *patch_out, const real *class_emb,
                              const real *pos, int B, int NP, int C) {
    int T = NP + 1;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const real *src = t == 0 ? class_emb : patch_out + ((size_t)b * NP + t - 1) * C;
            real *dst = x + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) dst[c] = src[c] + pos[(size_t)t * C + c];
        }
    }
}

void OP(vision_embed_backward)(real *dpatch_out, real *dclass_emb, real *dpos, const real *dx,
                               int B, int NP, int C) {
    int T = NP + 1;
    if (dpatch_out) {
#pragma omp parallel for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int p = 0; p < NP; p++)
                for (int c = 0; c < C; c++)
                    dpatch_out[((size_t)b * NP + p) * C + c] += dx[((size_t)b * T + p + 1) * C + c];
    }
    /* position (and class) gradients sum over the batch, in batch order */
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        for (int c = 0; c < C; c++) {
            double sum = 0;
            for (int b = 0; b < B; b++) sum += dx[((size_t)b * T + t) * C + c];
            if (dpos) dpos[(size_t)t * C + c] += (real)sum;
            if (t == 0 && dclass_emb) dclass_emb[c] += (real)sum;
        }
    }
}

void OP(token_embed_forward)(real *x, const int *ids, const real *tok_emb, const real *pos, int B,
                             int T, int C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const real *e = tok_emb + (size_t)ids[b * T + t] * C;
            real *dst = x + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) dst[c] = e[c] + pos[(size_t)t * C + c];
        }
    }
}

void OP(token_embed_backward)(real *dtok_emb, real *dpos, const real *dx, const int *ids, int B,
                              int T, int C) {
    /* Threads split the channels; each walks every token in order, so repeated ids add up
     * in the same order on every run (a deterministic scatter-add, no atomics). */
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        for (int bt = 0; bt < B * T; bt++) {
            real g = dx[(size_t)bt * C + c];
            if (dtok_emb) dtok_emb[(size_t)ids[bt] * C + c] += g;
        }
        if (dpos) {
            for (int t = 0; t < T; t++) {
                double sum = 0;
                for (int b = 0; b < B; b++) sum += dx[((size_t)b * T + t) * C + c];
                dpos[(size_t)t * C + c] += (real)sum;
            }
        }
    }
}

/* ----------------------------------------------------------------------------
 * Pooling: one row per sequence */

void OP(gather_rows)(real *out, const real *x, const int *rows, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * C, x + ((size_t)b * T + (rows ? rows[b] : 0)) * C,
               sizeof(real) * (size_t)C);
}

void OP(scatter_rows)(real *dx, const real *dout, const int *rows, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        real *dst = dx + ((size_t)b * T + (rows ? rows[b] : 0)) * C;
        for (int c = 0; c < C; c++) dst[c] += dout[(size_t)b * C + c];
    }
}

/* ----------------------------------------------------------------------------
 * L2 normalisation: out = inp / ||inp|| (no epsilon, as HF CLIPModel) */

void OP(l2norm_forward)(real *out, real *norm, const real *inp, int N, int C) {
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        double len = sqrt(ss);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (real)(x[c] / len);
        norm[n] = (real)len;
    }
}

void OP(l2norm_backward)(real *dinp, const real *dout, const real *out, const real *norm, int N,
                         int C) {
    for (int n = 0; n < N; n++) {
        const real *y = out + (size_t)n * C, *dy = dout + (size_t)n * C;
        double dot = 0;
        for (int c = 0; c < C; c++) dot += (double)y[c] * dy[c];
        for (int c = 0; c < C; c++)
            dinp[(size_t)n * C + c] += (real)((dy[c] - y[c] * dot) / norm[n]);
    }
}

/* ----------------------------------------------------------------------------
 * InfoNCE on a block of the similarity matrix (see backend.h for the definition).
 * Two passes: the row and column log-sum-exps of the selected terms first, then every
 * gradient element from its own logit and those statistics, which is what makes computing
 * dcos in place safe. A term that is off contributes exactly 0 everywhere, so the whole-matrix
 * call does the same arithmetic as a loss with no notion of blocks. */

/* The image-to-text logit of column t: a text with no positive image (a contradiction
 * negative, txt2img -1) carries the log-weight offset, every other text none. */
static inline double i2t_logit(double logit, int positive_image, const InfonceTerms *terms) {
    return positive_image < 0 ? logit + terms->negative_log_weight : logit;
}

/* log(e^a + e^b) without overflow. */
static inline double log_add_exp(double a, double b) { return fmax(a, b) + log1p(exp(-fabs(a - b))); }

void OP(infonce_forward_backward)(real *dcos, real *stats, const real *cos, const int *txt2img,
                                  const int *i2t_target, float scale, int Ni, int Nt,
                                  const InfonceTerms *terms) {
    const int rows_on = terms->image_to_text, cols_on = terms->text_to_image;
    const int first = terms->first_image;
    double *row_lse = callocCheck((size_t)Ni * 4 + (size_t)Nt * 2, sizeof(double));
    double *row_loss = row_lse + Ni, *row_dscale = row_loss + Ni, *row_each = row_dscale + Ni;
    double *col_lse = row_each + Ni, *col_loss = col_lse + Nt;
    int *positives = callocCheck((size_t)Ni, sizeof(int));
    for (int t = 0; t < Nt; t++) {
        int row = txt2img[t] - first; /* the block may hold only some images' rows */
        if (txt2img[t] >= 0 && row >= 0 && row < Ni) positives[row]++;
    }

    if (rows_on) {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < Ni; i++) {
            const real *r = cos + (size_t)i * Nt;
            double maxv = -INFINITY, sum = 0;
            for (int t = 0; t < Nt; t++)
                maxv = fmax(maxv, i2t_logit((double)scale * r[t], txt2img[t], terms));
            for (int t = 0; t < Nt; t++)
                sum += exp(i2t_logit((double)scale * r[t], txt2img[t], terms) - maxv);
            row_lse[i] = maxv + log(sum);
            double target_logit = 0;
            if (i2t_target[i] < 0 && terms->i2t_each) {
                /* each own positive p against the other images' texts only: mean over p of
                 * log(e^s_p + N) - s_p, N the row's negative mass. row_lse holds ln N and
                 * row_each the mean of N / (e^s_p + N), the share each negative's gradient
                 * gets. */
                double negatives = 0;
                for (int t = 0; t < Nt; t++)
                    if (txt2img[t] != first + i)
                        negatives += exp(i2t_logit((double)scale * r[t], txt2img[t], terms) - maxv);
                double ln_neg = maxv + log(negatives), loss = 0, share = 0;
                for (int t = 0; t < Nt; t++) {
                    if (txt2img[t] != first + i) continue;
                    double s = (double)scale * r[t], both = log_add_exp(s, ln_neg);
                    loss += both - s;
                    share += exp(ln_neg - both);
                }
                row_lse[i] = ln_neg;
                row_each[i] = share / positives[i];
                row_loss[i] = loss / positives[i];
                continue;
            }
            if (i2t_target[i] >= 0) {
                target_logit = (double)scale * r[i2t_target[i]];
            } else { /* uniform soft target over the image's own texts */
                for (int t = 0; t < Nt; t++)
                    if (txt2img[t] == first + i) target_logit += (double)scale * r[t];
                target_logit /= positives[i];
            }
            row_loss[i] = row_lse[i] - target_logit;
        }
    }
    if (cols_on) {
#pragma omp parallel for schedule(static)
        for (int t = 0; t < Nt; t++) {
            if (txt2img[t] < 0) continue; /* no image to pick: no term (col_loss stays 0) */
            double maxv = -INFINITY, sum = 0;
            for (int i = 0; i < Ni; i++) maxv = fmax(maxv, (double)scale * cos[(size_t)i * Nt + t]);
            for (int i = 0; i < Ni; i++) sum += exp((double)scale * cos[(size_t)i * Nt + t] - maxv);
            col_lse[t] = maxv + log(sum);
            col_loss[t] = col_lse[t] - (double)scale * cos[(size_t)(txt2img[t] - first) * Nt + t];
        }
    }
    double t2i = 0, i2t = 0;
    for (int t = 0; t < Nt; t++) t2i += col_loss[t];
    for (int i = 0; i < Ni; i++) i2t += row_loss[i];
    t2i /= terms->n_texts;
    i2t /= terms->n_images;

    /* dloss/dlogit = 0.5 * [(softmax_col - onehot)/n_texts + (softmax_row - target)/n_images] */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < Ni; i++) {
        double dscale = 0;
        for (int t = 0; t < Nt; t++) {
            size_t at = (size_t)i * Nt + t;
            double c = cos[at], logit = (double)scale * c;
            int own = txt2img[t] == first + i;
            double col_term = 0, row_term = 0;
            if (cols_on && txt2img[t] >= 0)
                col_term = (exp(logit - col_lse[t]) - own) / terms->n_texts;
            if (rows_on && i2t_target[i] < 0 && terms->i2t_each) {
                if (own) {
                    double both = log_add_exp(logit, row_lse[i]);
                    row_term = (exp(logit - both) - 1) / positives[i] / terms->n_images;
                } else {
                    row_term = exp(i2t_logit(logit, txt2img[t], terms) - row_lse[i]) * row_each[i] /
                               terms->n_images;
                }
            } else if (rows_on) {
                double target_row = i2t_target[i] >= 0 ? (i2t_target[i] == t) : own / (double)positives[i];
                row_term = (exp(i2t_logit(logit, txt2img[t], terms) - row_lse[i]) - target_row) /
                           terms->n_images;
            }
            double dlogit = 0.5 * (col_term + row_term);
            dcos[at] = (real)(dlogit * scale);
            dscale += dlogit * c;
        }
        row_dscale[i] = dscale;
    }
    double dscale_sum = 0;
    for (int i = 0; i < Ni; i++) dscale_sum += row_dscale[i];
    stats[INFONCE_LOSS] = (real)(0.5 * (t2i + i2t));
    stats[INFONCE_T2I] = (real)t2i;
    stats[INFONCE_I2T] = (real)i2t;
    stats[INFONCE_DSCALE] = (real)dscale_sum;
    free(positives);
    free(row_lse);
}

/* ----------------------------------------------------------------------------
 * Optimizer. AdamW in PyTorch's operation order: decoupled decay first, then the
 * bias-corrected Adam step. */

void OP(adamw_update)(real *param, const real *grad, real *m, real *v, size_t n,
                      const AdamWStep *hp) {
    real step_size = (real)((double)hp->lr / hp->bias_correction1);
    real inv_bc2_sqrt = (real)(1.0 / sqrt(hp->bias_correction2));
    real decay = (real)(1.0 - (double)hp->lr * hp->weight_decay);
    real beta1 = hp->beta1, beta2 = hp->beta2, eps = hp->eps, scale = hp->grad_scale;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        real g = grad[i] * scale;
        m[i] = beta1 * m[i] + (1 - beta1) * g;
        v[i] = beta2 * v[i] + (1 - beta2) * g * g;
        real denom = SQRT(v[i]) * inv_bc2_sqrt + eps;
        param[i] = param[i] * decay - step_size * (m[i] / denom);
    }
}

/* Sum of squares in fixed 4096-element chunks, summed in order: the same bits whatever
 * the thread count. */
double OP(sum_squares)(const real *x, size_t n) {
    enum { CHUNK = 4096 };
    size_t chunks = (n + CHUNK - 1) / CHUNK;
    double *partial = mallocCheck(sizeof(double) * (chunks ? chunks : 1));
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < chunks; k++) {
        double s = 0;
        size_t end = (k + 1) * CHUNK < n ? (k + 1) * CHUNK : n;
        for (size_t i = k * CHUNK; i < end; i++) s += (double)x[i] * x[i];
        partial[k] = s;
    }
    double total = 0;
    for (size_t k = 0; k < chunks; k++) total += partial[k];
    free(partial);
    return total;
}

/* ----------------------------------------------------------------------------
 * The float32 build also provides memory management and the Backend table. */

#if !TNG_REAL_DOUBLE
static void *cpu_alloc(size_t bytes) { return callocCheck(1, bytes); }
static void cpu_release(void *ptr) { free(ptr); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_zero(void *ptr, size_t bytes) { memset(ptr, 0, bytes); }

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
    .sum_squares = sum_squares_f32,
};

const Backend *backend_cpu(void) { return &cpu_backend; }
#endif
