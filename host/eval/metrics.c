/*
 * metrics.c: NegBench-style MCQ accuracy, retrieval Recall@K and CC-Neg accuracy over
 * precomputed, L2-normalised embeddings (see metrics.h for the tie rule).
 *
 * Key design choice: retrieval scores texts in blocks with one SGEMM per block and makes two
 * passes (the first finds each image's best own-text score, the second counts the other texts
 * that beat it), so COCO-sized sets (25k texts x 5k images) never hold the full similarity
 * matrix. Every comparison goes through ranks_ahead, the one place the tie rule lives.
 */
#include "eval/metrics.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "util/common.h" // defines: mallocCheck, die

static const char *const MCQ_TYPE_NAMES[MCQ_N_TYPES] = {"positive", "negative", "hybrid"};
const int metrics_recall_k[METRICS_N_RECALL] = {1, 5, 10};

const char *mcq_type_name(McqType type) {
    if ((int)type < 0 || type >= MCQ_N_TYPES) die("mcq_type_name: no question type %d", type);
    return MCQ_TYPE_NAMES[type];
}

int mcq_type_from_name(const char *name) {
    for (int t = 0; t < MCQ_N_TYPES; t++)
        if (strcmp(name, MCQ_TYPE_NAMES[t]) == 0) return t;
    return -1;
}

const char *const tie_rule_names[2] = {"strict", "first-index"};

/* Whether a competitor (score, index) ranks ahead of the target (score, index). Strict: any
 * competitor that is not below the target. First index: a higher score, or an equal one at a
 * lower index. A NaN competitor is ahead under both, so NaN always counts against the model. */
static int ranks_ahead(double other, long other_index, double own, long own_index, TieRule ties) {
    if (ties == TIES_STRICT) return !(other < own);
    return isnan(other) || other > own || (other == own && other_index < own_index);
}

static double ratio(int num, int den) { return den > 0 ? (double)num / den : NAN; }

static double dot(const float *a, const float *b, int dim) {
    double s = 0;
    for (int i = 0; i < dim; i++) s += (double)a[i] * b[i];
    return s;
}

// ---------------------------------------------------------------------------------------------
// Multiple choice

void metrics_mcq_from_scores(const float *scores, int n_questions, int n_options,
                             const int *correct, const McqType *type, TieRule ties,
                             McqResult *out) {
    memset(out, 0, sizeof(*out));
    for (int q = 0; q < n_questions; q++) {
        const float *s = scores + (size_t)q * n_options;
        int c = correct[q], t = type[q];
        if (c < 0 || c >= n_options) die("metrics_mcq: question %d: correct option %d of %d", q, c, n_options);
        if (t < 0 || t >= MCQ_N_TYPES) die("metrics_mcq: question %d: type %d", q, t);
        int right = !isnan(s[c]);
        for (int o = 0; o < n_options && right; o++)
            if (o != c && ranks_ahead(s[o], o, s[c], c, ties)) right = 0;
        out->n_questions++;
        out->n_by_type[t]++;
        out->n_correct += right;
        out->correct_by_type[t] += right;
    }
    out->accuracy = ratio(out->n_correct, out->n_questions);
    for (int t = 0; t < MCQ_N_TYPES; t++)
        out->accuracy_by_type[t] = ratio(out->correct_by_type[t], out->n_by_type[t]);
}

void metrics_mcq(const float *image_emb, const float *option_emb, int n_questions, int n_options,
                 int dim, const int *correct, const McqType *type, TieRule ties, McqResult *out) {
    float *scores = (float *)mallocCheck((size_t)(n_questions > 0 ? n_questions : 1) * n_options * sizeof(float));
    for (int q = 0; q < n_questions; q++)
        for (int o = 0; o < n_options; o++)
            scores[(size_t)q * n_options + o] = (float)dot(
                image_emb + (size_t)q * dim, option_emb + ((size_t)q * n_options + o) * dim, dim);
    metrics_mcq_from_scores(scores, n_questions, n_options, correct, type, ties, out);
    free(scores);
}

// ---------------------------------------------------------------------------------------------
// Retrieval

#define RETRIEVAL_BLOCK 1024

/* scores[r, i] = text_emb[t0 + r] . image_emb[i] for r < rows. */
static void score_block(const float *image_emb, int n_images, const float *text_emb, int t0,
                        int rows, int dim, float *scores) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n_images, dim, 1.0f,
                text_emb + (size_t)t0 * dim, dim, image_emb, dim, 0.0f, scores, n_images);
}

void metrics_retrieval(const float *image_emb, int n_images, const float *text_emb, int n_texts,
                       const int *text_image, int dim, TieRule ties, RetrievalResult *out) {
    memset(out, 0, sizeof(*out));
    out->n_images = n_images;
    out->n_texts = n_texts;
    for (int t = 0; t < n_texts; t++)
        if (text_image[t] < 0 || text_image[t] >= n_images)
            die("metrics_retrieval: text %d belongs to image %d, outside 0..%d", t, text_image[t], n_images - 1);
    int block = n_texts < RETRIEVAL_BLOCK ? (n_texts > 0 ? n_texts : 1) : RETRIEVAL_BLOCK;
    float *scores = (float *)mallocCheck((size_t)block * (n_images > 0 ? n_images : 1) * sizeof(float));
    float *best_own = (float *)mallocCheck((size_t)(n_images > 0 ? n_images : 1) * sizeof(float));
    int *has_text = (int *)callocCheck((size_t)(n_images > 0 ? n_images : 1), sizeof(int));
    int *ahead = (int *)callocCheck((size_t)(n_images > 0 ? n_images : 1), sizeof(int));
    int *best_text = (int *)callocCheck((size_t)(n_images > 0 ? n_images : 1), sizeof(int));
    int t2i_hits[METRICS_N_RECALL] = {0};

    // pass 1: text->image ranks, and each image's best score among its own texts
    for (int t0 = 0; t0 < n_texts; t0 += block) {
        int rows = n_texts - t0 < block ? n_texts - t0 : block;
        score_block(image_emb, n_images, text_emb, t0, rows, dim, scores);
        for (int r = 0; r < rows; r++) {
            const float *s = scores + (size_t)r * n_images;
            int own = text_image[t0 + r], rank = 0;
            for (int i = 0; i < n_images; i++) rank += i != own && ranks_ahead(s[i], i, s[own], own, ties);
            if (isnan(s[own])) rank = n_images;
            for (int k = 0; k < METRICS_N_RECALL; k++) t2i_hits[k] += rank < metrics_recall_k[k];
            // NaN stays in best_own once seen: a NaN own score makes the image a miss. On an
            // equal score the first own text stays: the best-ranked one under either rule.
            if (!has_text[own] || isnan(s[own]) || s[own] > best_own[own]) {
                best_own[own] = s[own];
                best_text[own] = t0 + r;
            }
            has_text[own] = 1;
        }
    }
    // pass 2: for each image, the texts of other images that score at least its best own text
    for (int t0 = 0; t0 < n_texts; t0 += block) {
        int rows = n_texts - t0 < block ? n_texts - t0 : block;
        score_block(image_emb, n_images, text_emb, t0, rows, dim, scores);
        for (int r = 0; r < rows; r++) {
            const float *s = scores + (size_t)r * n_images;
            int own = text_image[t0 + r];
            for (int i = 0; i < n_images; i++)
                if (i != own && has_text[i] && !isnan(best_own[i]) &&
                    ranks_ahead(s[i], t0 + r, best_own[i], best_text[i], ties))
                    ahead[i]++;
        }
    }
    int i2t_hits[METRICS_N_RECALL] = {0};
    for (int i = 0; i < n_images; i++) {
        if (!has_text[i] || isnan(best_own[i])) continue;
        for (int k = 0; k < METRICS_N_RECALL; k++) i2t_hits[k] += ahead[i] < metrics_recall_k[k];
    }
    for (int k = 0; k < METRICS_N_RECALL; k++) {
        out->t2i[k] = ratio(t2i_hits[k], n_texts);
        out->i2t[k] = ratio(i2t_hits[k], n_images);
    }
    free(scores);
    free(best_own);
    free(has_text);
    free(ahead);
    free(best_text);
}

// ---------------------------------------------------------------------------------------------
// CC-Neg

double metrics_ccneg(const float *image_emb, const float *caption_emb, const float *negated_emb,
                     int n, int dim, TieRule ties) {
    int right = 0;
    for (int i = 0; i < n; i++) {
        const float *img = image_emb + (size_t)i * dim;
        double caption = dot(img, caption_emb + (size_t)i * dim, dim);
        double negated = dot(img, negated_emb + (size_t)i * dim, dim);
        right += !isnan(caption) && !ranks_ahead(negated, 1, caption, 0, ties);
    }
    return ratio(right, n);
}
