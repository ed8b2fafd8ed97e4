/*
 * embed.c: the CPU stems and pooling of the two towers: patch im2col, the vision and token
 * embeddings (forward and backward), and gathering / scattering one row per sequence; the
 * oracle of kernels/embed.cuh.
 *
 * The backward sums over the batch (position, class and token embeddings) each run in one
 * fixed order per output element, so repeated token ids add up in the same order on every
 * run: a deterministic scatter-add with no atomics.
 */
#include "engine/cpu/ops_cpu.h" // declares: every CPU op, in both precisions

#include <string.h>

#include "engine/cpu/cpu_common.h" // defines: real, OP(), GEMM, EXP, row_chunks, add_partials

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
    /* Threads split the channels in blocks of CHANNEL_BLOCK; each walks every token in order,
     * so repeated ids add up in the same order on every run (a deterministic scatter-add, no
     * atomics), and reads and writes a block's channels of a row as one contiguous run. */
    enum { CHANNEL_BLOCK = 16 };
    int blocks = (C + CHANNEL_BLOCK - 1) / CHANNEL_BLOCK;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < blocks; k++) {
        int c0 = k * CHANNEL_BLOCK, c1 = c0 + CHANNEL_BLOCK < C ? c0 + CHANNEL_BLOCK : C;
        if (dtok_emb) {
            for (int bt = 0; bt < B * T; bt++) {
                const real *g = dx + (size_t)bt * C;
                real *row = dtok_emb + (size_t)ids[bt] * C;
                for (int c = c0; c < c1; c++) row[c] += g[c];
            }
        }
        if (dpos) {
            for (int t = 0; t < T; t++) {
                double sum[CHANNEL_BLOCK] = {0};
                for (int b = 0; b < B; b++)
                    for (int c = c0; c < c1; c++) sum[c - c0] += dx[((size_t)b * T + t) * C + c];
                for (int c = c0; c < c1; c++) dpos[(size_t)t * C + c] += (real)sum[c - c0];
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
