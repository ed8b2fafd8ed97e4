/*
 * infonce.c: the CPU InfoNCE on a block of the similarity matrix, loss and gradient in one
 * call (backend.h defines the terms, InfonceTerms which ones a call computes); the oracle of
 * kernels/infonce.cuh.
 *
 * Two passes: the row and column log-sum-exps of the selected terms first, then every
 * gradient element from its own logit and those statistics, which is what makes computing
 * dcos in place safe. A term that is off contributes exactly 0 everywhere, so the
 * whole-matrix call does the same arithmetic as a loss with no notion of blocks. All
 * arithmetic is in double whatever `real` is.
 *
 * An excluded pair (terms->exclude) is skipped wherever a softmax sums or takes its maximum,
 * and gets dcos 0: as if its logit were -inf, without ever computing with an infinity.
 * The weight (terms->weight, 0 read as 1) multiplies the gradient and the stats last: x * 1
 * is x, so a weight of 1 is the unweighted op bit for bit.
 */
#include "engine/cpu/ops_cpu.h" // declares: every CPU op, in both precisions

#include <math.h>
#include <stdlib.h>

#include "engine/cpu/cpu_common.h" // defines: real, OP(), GEMM, EXP, row_chunks, add_partials
#include "util/common.h"           // defines: callocCheck, die

/* The image-to-text logit of column t: a text with no positive image (a contradiction
 * negative, txt2img -1) carries the log-weight offset, every other text none. */
static inline double i2t_logit(double logit, int positive_image, const InfonceTerms *terms) {
    return positive_image < 0 ? logit + terms->negative_log_weight : logit;
}

/* Whether the pair at element `at` of the block takes part in no softmax (backend.h). */
static inline int excluded(const InfonceTerms *terms, size_t at) {
    return terms->exclude && terms->exclude[at];
}

/* The mask's contract: a text's pair with its own positive image, and a row's target, are
 * never excluded (either would leave a cross-entropy without its target). */
static void check_exclusions(const int *txt2img, const int *i2t_target, int Ni, int Nt,
                             const InfonceTerms *terms) {
    for (int t = 0; t < Nt; t++) {
        int row = txt2img[t] - terms->first_image;
        if (txt2img[t] >= 0 && row >= 0 && row < Ni && excluded(terms, (size_t)row * Nt + t))
            die("infonce: the pair of text %d and its positive image %d is excluded", t, txt2img[t]);
    }
    for (int i = 0; i < Ni && terms->image_to_text; i++)
        if (i2t_target[i] >= 0 && excluded(terms, (size_t)i * Nt + i2t_target[i]))
            die("infonce: image %d's target text %d is excluded", terms->first_image + i, i2t_target[i]);
}

/* log(e^a + e^b) without overflow. */
static inline double log_add_exp(double a, double b) { return fmax(a, b) + log1p(exp(-fabs(a - b))); }

void OP(infonce_forward_backward)(real *dcos, real *stats, const real *cos, const int *txt2img,
                                  const int *i2t_target, float scale, int Ni, int Nt,
                                  const InfonceTerms *terms) {
    const int rows_on = terms->image_to_text, cols_on = terms->text_to_image;
    const int first = terms->first_image;
    const double weight = terms->weight != 0 ? terms->weight : 1.0; /* 0: unset (backend.h) */
    double *row_lse = callocCheck((size_t)Ni * 4 + (size_t)Nt * 2, sizeof(double));
    double *row_loss = row_lse + Ni, *row_dscale = row_loss + Ni, *row_each = row_dscale + Ni;
    double *col_lse = row_each + Ni, *col_loss = col_lse + Nt;
    if (terms->exclude) check_exclusions(txt2img, i2t_target, Ni, Nt, terms);
    int *positives = callocCheck((size_t)Ni, sizeof(int));
    for (int t = 0; t < Nt; t++) {
        int row = txt2img[t] - first; /* the block may hold only some images' rows */
        if (txt2img[t] >= 0 && row >= 0 && row < Ni) positives[row]++;
    }

    if (rows_on) {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < Ni; i++) {
            const real *r = cos + (size_t)i * Nt;
            const size_t row_at = (size_t)i * Nt;
            double maxv = -INFINITY, sum = 0;
            for (int t = 0; t < Nt; t++)
                if (!excluded(terms, row_at + t))
                    maxv = fmax(maxv, i2t_logit((double)scale * r[t], txt2img[t], terms));
            for (int t = 0; t < Nt; t++)
                if (!excluded(terms, row_at + t))
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
                    if (txt2img[t] != first + i && !excluded(terms, row_at + t))
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
            for (int i = 0; i < Ni; i++)
                if (!excluded(terms, (size_t)i * Nt + t))
                    maxv = fmax(maxv, (double)scale * cos[(size_t)i * Nt + t]);
            for (int i = 0; i < Ni; i++)
                if (!excluded(terms, (size_t)i * Nt + t))
                    sum += exp((double)scale * cos[(size_t)i * Nt + t] - maxv);
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
            if (excluded(terms, at)) { /* in no softmax: no gradient, nothing for dscale */
                dcos[at] = 0;
                continue;
            }
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
            double dlogit = 0.5 * (col_term + row_term) * weight;
            dcos[at] = (real)(dlogit * scale);
            dscale += dlogit * c;
        }
        row_dscale[i] = dscale;
    }
    double dscale_sum = 0;
    for (int i = 0; i < Ni; i++) dscale_sum += row_dscale[i];
    stats[INFONCE_LOSS] = (real)(0.5 * (t2i + i2t) * weight);
    stats[INFONCE_T2I] = (real)(t2i * weight);
    stats[INFONCE_I2T] = (real)(i2t * weight);
    stats[INFONCE_DSCALE] = (real)dscale_sum;
    free(positives);
    free(row_lse);
}
