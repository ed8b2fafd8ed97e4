/*
 * test_metrics.c: MCQ accuracy, retrieval Recall@K and CC-Neg accuracy against hand-computed
 * cases (the expected numbers are worked out in the comments), plus a brute-force reference
 * for Recall@K on random embeddings large enough to cross the 1024-text block boundary.
 *
 * Expected values are exact ratios of small integers, so they are compared with == after the
 * same division; the brute-force reference counts the same ranks, so it must agree exactly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "eval/metrics.h" // defines: metrics_mcq, metrics_retrieval, metrics_ccneg, McqResult, ...
#include "util/rng.h"     // defines: Rng, rng_seed, rng_normal

static void poison(void *p, size_t n) { memset(p, 0xFF, n); } // all-ones bytes: NaN floats, -1 ints

static void normalise_rows(float *x, int rows, int dim) {
    for (int r = 0; r < rows; r++) {
        double n = 0;
        for (int i = 0; i < dim; i++) n += (double)x[r * dim + i] * x[r * dim + i];
        for (int i = 0; i < dim; i++) x[r * dim + i] = (float)(x[r * dim + i] / sqrt(n));
    }
}

static void test_mcq_hand_cases(void) {
    // dim 2. Scores are the dot products written next to each option.
    const float image[4 * 2] = {1, 0, /**/ 0, 1, /**/ 0.6f, 0.8f, /**/ 1, 0};
    const float options[4 * 4 * 2] = {
        // q0 positive, correct 0: scores 1, 0, -1, 0.6 -> picks 0: right
        1, 0, 0, 1, -1, 0, 0.6f, 0.8f,
        // q1 negative, correct 0: scores 0.8, 1, 0, -1 -> picks 1: wrong
        0.6f, 0.8f, 0, 1, 1, 0, 0, -1,
        // q2 hybrid, correct 2: scores 0.6, 0.8, 1, 0 -> picks 2: right
        1, 0, 0, 1, 0.6f, 0.8f, -0.8f, 0.6f,
        // q3 positive, correct 0: all four options alike -> a tie, which counts as wrong
        0.6f, 0.8f, 0.6f, 0.8f, 0.6f, 0.8f, 0.6f, 0.8f};
    const int correct[4] = {0, 0, 2, 0};
    const McqType type[4] = {MCQ_POSITIVE, MCQ_NEGATIVE, MCQ_HYBRID, MCQ_POSITIVE};
    McqResult r;
    poison(&r, sizeof(r));
    metrics_mcq(image, options, 4, 4, 2, correct, type, TIES_STRICT, &r);
    CHECK(r.n_questions == 4 && r.n_correct == 2, "questions %d correct %d", r.n_questions, r.n_correct);
    CHECK(r.accuracy == 2.0 / 4, "accuracy %g, want 0.5", r.accuracy);
    CHECK(r.n_by_type[MCQ_POSITIVE] == 2 && r.correct_by_type[MCQ_POSITIVE] == 1, "positive %d/%d",
          r.correct_by_type[MCQ_POSITIVE], r.n_by_type[MCQ_POSITIVE]);
    CHECK(r.accuracy_by_type[MCQ_POSITIVE] == 0.5, "positive %g", r.accuracy_by_type[MCQ_POSITIVE]);
    CHECK(r.accuracy_by_type[MCQ_NEGATIVE] == 0.0, "negative %g", r.accuracy_by_type[MCQ_NEGATIVE]);
    CHECK(r.accuracy_by_type[MCQ_HYBRID] == 1.0, "hybrid %g", r.accuracy_by_type[MCQ_HYBRID]);

    // Only positive questions: the other types have no questions and report NaN.
    metrics_mcq(image, options, 1, 4, 2, correct, type, TIES_STRICT, &r);
    CHECK(r.accuracy == 1.0, "accuracy %g", r.accuracy);
    CHECK(isnan(r.accuracy_by_type[MCQ_NEGATIVE]) && isnan(r.accuracy_by_type[MCQ_HYBRID]),
          "empty types must be NaN, got %g %g", r.accuracy_by_type[MCQ_NEGATIVE],
          r.accuracy_by_type[MCQ_HYBRID]);
}

static void test_mcq_nan_is_wrong(void) {
    // q0: the correct option is NaN; q1: a wrong option is NaN; q2: clean, right.
    const float scores[3 * 4] = {NAN, 0.1f, 0.2f, 0.3f, 0.9f, NAN, 0.1f, 0.2f, 0.9f, 0.1f, 0.2f, 0.3f};
    const int correct[3] = {0, 0, 0};
    const McqType type[3] = {MCQ_NEGATIVE, MCQ_NEGATIVE, MCQ_NEGATIVE};
    McqResult r;
    poison(&r, sizeof(r));
    metrics_mcq_from_scores(scores, 3, 4, correct, type, TIES_STRICT, &r);
    CHECK(r.n_correct == 1, "NaN questions must count as wrong: %d correct, want 1", r.n_correct);
}

static void test_mcq_type_names(void) {
    for (int t = 0; t < MCQ_N_TYPES; t++)
        CHECK(mcq_type_from_name(mcq_type_name((McqType)t)) == t, "type %d round trip", t);
    CHECK(mcq_type_from_name("affirmation") == -1, "an unknown name must give -1");
    CHECK(strcmp(mcq_type_name(MCQ_HYBRID), "hybrid") == 0, "NegBench's spelling");
}

static void test_retrieval_hand_case(void) {
    // Images are the unit axes e0, e1, e2; a text's scores are its coordinates.
    const float images[3 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const float texts[5 * 3] = {
        0.8f, 0.6f, 0,    // t0 -> image 0: scores .8 .6 0   own .8, rank 0
        0, 0.8f, 0.6f,    // t1 -> image 0: scores 0 .8 .6   own 0,  rank 2
        0.8f, 0, 0.6f,    // t2 -> image 1: scores .8 0 .6   own 0,  rank 2
        0, 0.6f, 0.8f,    // t3 -> image 2: scores 0 .6 .8   own .8, rank 0
        1, 0, 0};         // t4 -> image 2: scores 1 0 0     own 0,  rank 2 (the tie with image 1 counts)
    const int text_image[5] = {0, 0, 1, 2, 2};
    // image->text: image 0's best own text scores .8; t2 ties it and t4 beats it: 2 ahead.
    // image 1's only text scores 0; t0 .6, t1 .8, t3 .6 and t4 0 (a tie) are ahead: 4.
    // image 2's best own text scores .8; t0 0, t1 .6, t2 .6: nothing ahead.
    RetrievalResult r;
    poison(&r, sizeof(r));
    metrics_retrieval(images, 3, texts, 5, text_image, 3, TIES_STRICT, &r);
    CHECK(r.n_images == 3 && r.n_texts == 5, "counts %d %d", r.n_images, r.n_texts);
    CHECK(r.t2i[0] == 2.0 / 5, "t2i R@1 %g, want 0.4", r.t2i[0]);
    CHECK(r.t2i[1] == 1.0 && r.t2i[2] == 1.0, "t2i R@5 %g R@10 %g, want 1", r.t2i[1], r.t2i[2]);
    CHECK(r.i2t[0] == 1.0 / 3, "i2t R@1 %g, want 1/3", r.i2t[0]);
    CHECK(r.i2t[1] == 1.0 && r.i2t[2] == 1.0, "i2t R@5 %g R@10 %g, want 1", r.i2t[1], r.i2t[2]);
}

/* The plain definition: the full similarity matrix, ranks counted directly. */
static void retrieval_reference(const float *img, int n_img, const float *txt, int n_txt,
                                const int *text_image, int dim, double t2i[3], double i2t[3]) {
    float *s = (float *)malloc((size_t)n_txt * n_img * sizeof(float));
    for (int t = 0; t < n_txt; t++)
        for (int i = 0; i < n_img; i++) {
            float acc = 0;
            for (int d = 0; d < dim; d++) acc += txt[t * dim + d] * img[i * dim + d];
            s[t * n_img + i] = acc;
        }
    int hits_t[3] = {0}, hits_i[3] = {0};
    for (int t = 0; t < n_txt; t++) {
        int own = text_image[t], rank = 0;
        for (int i = 0; i < n_img; i++) rank += i != own && s[t * n_img + i] >= s[t * n_img + own];
        for (int k = 0; k < 3; k++) hits_t[k] += rank < metrics_recall_k[k];
    }
    for (int i = 0; i < n_img; i++) {
        int best_rank = n_txt;
        for (int t = 0; t < n_txt; t++) {
            if (text_image[t] != i) continue;
            int rank = 0;
            for (int u = 0; u < n_txt; u++)
                rank += text_image[u] != i && s[u * n_img + i] >= s[t * n_img + i];
            if (rank < best_rank) best_rank = rank;
        }
        for (int k = 0; k < 3; k++) hits_i[k] += best_rank < metrics_recall_k[k];
    }
    for (int k = 0; k < 3; k++) {
        t2i[k] = (double)hits_t[k] / n_txt;
        i2t[k] = (double)hits_i[k] / n_img;
    }
    free(s);
}

static void test_retrieval_random_vs_reference(void) {
    // 1500 texts cross the 1024-text block; captions are noisy copies of their image, so the
    // recalls land strictly between 0 and 1 and a wrong rank count would show.
    enum { N_IMG = 60, N_TXT = 1500, DIM = 16 };
    float *img = (float *)malloc(sizeof(float) * N_IMG * DIM);
    float *txt = (float *)malloc(sizeof(float) * N_TXT * DIM);
    int *text_image = (int *)malloc(sizeof(int) * N_TXT);
    Rng rng;
    rng_seed(&rng, 7);
    for (int i = 0; i < N_IMG * DIM; i++) img[i] = (float)rng_normal(&rng);
    normalise_rows(img, N_IMG, DIM);
    for (int t = 0; t < N_TXT; t++) {
        // image 0 gets no text at all: image->text must count it as a miss
        text_image[t] = 1 + (int)((t * 7919u) % (N_IMG - 1));
        for (int d = 0; d < DIM; d++)
            txt[t * DIM + d] = img[text_image[t] * DIM + d] + 0.35f * (float)rng_normal(&rng);
    }
    normalise_rows(txt, N_TXT, DIM);
    double t2i[3], i2t[3];
    retrieval_reference(img, N_IMG, txt, N_TXT, text_image, DIM, t2i, i2t);
    RetrievalResult r;
    poison(&r, sizeof(r));
    metrics_retrieval(img, N_IMG, txt, N_TXT, text_image, DIM, TIES_STRICT, &r);
    for (int k = 0; k < 3; k++) {
        // GEMM and the reference loop may round a score differently by an ulp; with random
        // data no two scores come that close, so the counts must be identical.
        CHECK(r.t2i[k] == t2i[k], "t2i R@%d %g, reference %g", metrics_recall_k[k], r.t2i[k], t2i[k]);
        CHECK(r.i2t[k] == i2t[k], "i2t R@%d %g, reference %g", metrics_recall_k[k], r.i2t[k], i2t[k]);
    }
    CHECK(t2i[0] > 0.05 && t2i[0] < 0.95, "the case must not be trivial: t2i R@1 %g", t2i[0]);
    CHECK(i2t[2] < 1.0, "image 0 has no text, so i2t R@10 must stay below 1: %g", i2t[2]);
    free(img);
    free(txt);
    free(text_image);
}

static void test_ccneg_hand_case(void) {
    const float image[3 * 2] = {1, 0, 0, 1, 0.6f, 0.8f};
    // item 0: caption 1 vs negated 0 -> right; item 1: 0 vs 1 -> wrong; item 2: .8 vs .8 tie -> wrong
    const float caption[3 * 2] = {1, 0, 1, 0, 0, 1};
    const float negated[3 * 2] = {0, 1, 0, 1, 0, 1};
    double acc = metrics_ccneg(image, caption, negated, 3, 2, TIES_STRICT);
    CHECK(acc == 1.0 / 3, "CC-Neg accuracy %g, want 1/3", acc);
    CHECK(isnan(metrics_ccneg(image, caption, negated, 0, 2, TIES_STRICT)), "no items gives NaN");
}

/* Exact ties under both rules: MCQ options embedded alike, retrieval with a duplicate caption
 * (two images' texts identical, as COCO has) and a text equally close to two images, CC-Neg
 * with caption and negation alike. Scores are products with 0 and 1, so the ties are exact. */
static void test_tie_rules(void) {
    const float mcq_scores[3 * 4] = {0.5f, 0.5f, 0.5f, 0.5f, // all alike, correct 0
                                     0.5f, 0.5f, 0.5f, 0.5f, // all alike, correct 2
                                     0.5f, 0.4f, 0.5f, 0.1f}; // correct 0 ties option 2
    const int correct[3] = {0, 2, 0};
    const McqType type[3] = {MCQ_POSITIVE, MCQ_NEGATIVE, MCQ_HYBRID};
    McqResult strict, first;
    poison(&strict, sizeof strict);
    poison(&first, sizeof first);
    metrics_mcq_from_scores(mcq_scores, 3, 4, correct, type, TIES_STRICT, &strict);
    metrics_mcq_from_scores(mcq_scores, 3, 4, correct, type, TIES_FIRST_INDEX, &first);
    CHECK(strict.n_correct == 0, "strict: every tie is wrong, got %d right", strict.n_correct);
    // first index: q0 right (index 0 wins), q1 wrong (options 0 and 1 come first), q2 right
    CHECK(first.n_correct == 2 && first.correct_by_type[MCQ_NEGATIVE] == 0,
          "first index: %d right (negative %d), want 2 (0)", first.n_correct,
          first.correct_by_type[MCQ_NEGATIVE]);

    // images e0 e1 e2; s = 1/sqrt(2). t0 -> image 0 scores (s, 0, s): it ties image 2;
    // t1 -> image 1 and t2 -> image 2 are the same caption, scores (0, s, s).
    const float s2 = 0.70710677f;
    const float images[3 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const float texts[3 * 3] = {s2, 0, s2, 0, s2, s2, 0, s2, s2};
    const int text_image[3] = {0, 1, 2};
    RetrievalResult rs, rf;
    poison(&rs, sizeof rs);
    poison(&rf, sizeof rf);
    metrics_retrieval(images, 3, texts, 3, text_image, 3, TIES_STRICT, &rs);
    metrics_retrieval(images, 3, texts, 3, text_image, 3, TIES_FIRST_INDEX, &rf);
    // text->image: every own image ties another. Strict: all rank 1. First index: t0 and t1
    // win their ties (the other image comes later), t2 loses to image 1.
    CHECK(rs.t2i[0] == 0.0 && rs.t2i[1] == 1.0, "strict t2i R@1 %g R@5 %g, want 0, 1", rs.t2i[0], rs.t2i[1]);
    CHECK(rf.t2i[0] == 2.0 / 3 && rf.t2i[1] == 1.0, "first-index t2i R@1 %g R@5 %g, want 2/3, 1",
          rf.t2i[0], rf.t2i[1]);
    // image->text: image 0's own text is alone at the top; image 1's own t1 ties the duplicate
    // t2 (later: first index keeps t1 first); image 2's own t2 ties t0 and t1 (both earlier).
    CHECK(rs.i2t[0] == 1.0 / 3, "strict i2t R@1 %g, want 1/3", rs.i2t[0]);
    CHECK(rf.i2t[0] == 2.0 / 3, "first-index i2t R@1 %g, want 2/3", rf.i2t[0]);

    const float image[2] = {1, 0}, caption[2] = {0.6f, 0.8f}, negated[2] = {0.6f, -0.8f};
    CHECK(metrics_ccneg(image, caption, negated, 1, 2, TIES_STRICT) == 0.0, "strict: a CC-Neg tie is wrong");
    CHECK(metrics_ccneg(image, caption, negated, 1, 2, TIES_FIRST_INDEX) == 1.0,
          "first index: the caption (index 0) wins a CC-Neg tie");
    CHECK(strcmp(tie_rule_names[TIES_FIRST_INDEX], "first-index") == 0 &&
              strcmp(tie_rule_names[TIES_STRICT], "strict") == 0, "tie rule names");
}

int main(void) {
    RUN_TEST(test_mcq_hand_cases);
    RUN_TEST(test_mcq_nan_is_wrong);
    RUN_TEST(test_mcq_type_names);
    RUN_TEST(test_retrieval_hand_case);
    RUN_TEST(test_retrieval_random_vs_reference);
    RUN_TEST(test_ccneg_hand_case);
    RUN_TEST(test_tie_rules);
    return test_summary();
}
