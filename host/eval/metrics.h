/*
 * metrics.h: NegBench-style evaluation metrics over precomputed, L2-normalised embeddings:
 * multiple-choice accuracy by question type, text<->image Recall@K with several captions per
 * image, and CC-Neg accuracy (true caption vs negated caption).
 *
 * Every function is pure: it reads the arrays it is given and writes only its result struct.
 * Scores are cosine similarities, i.e. plain dot products of the (already normalised) rows,
 * with no logit scale, as NegBench scores them.
 *
 * Ties: two rules, chosen per call (TieRule).
 * - TIES_STRICT (tng's default): a tie counts against the model. An MCQ question is right only
 *   when the correct option scores strictly above every other option; a retrieval target ranks
 *   behind every candidate that scores >= its own score; a CC-Neg item is right only when the
 *   true caption scores strictly higher. A collapsed text tower (all options embedded alike)
 *   scores 0% under it.
 * - TIES_FIRST_INDEX (NegBench's protocol): the candidate with the lower index wins a tie, as
 *   torch.argmax does (it returns the first maximal index) for MCQ and CC-Neg, and as a ranking
 *   by (score descending, index ascending) does for retrieval's top-K. NegBench's MCQ files put
 *   the correct answer at index 0, so a collapsed tower scores 100% there. Identical captions of
 *   different images (COCO has them) tie exactly, so recall can differ between the two rules.
 * For healthy real-valued embeddings exact ties are rare and both rules agree. Under both, a NaN
 * score counts as wrong (a NaN own score, or a NaN competitor ranked ahead).
 */
#ifndef TNG_METRICS_H
#define TNG_METRICS_H

#include <stdint.h>

/* NegBench's question types, named as in the correct_answer_template column. */
typedef enum { MCQ_POSITIVE = 0, MCQ_NEGATIVE = 1, MCQ_HYBRID = 2, MCQ_N_TYPES = 3 } McqType;

typedef enum { TIES_STRICT = 0, TIES_FIRST_INDEX = 1 } TieRule;
/* The rules' names in TieRule order: "strict", "first-index". */
extern const char *const tie_rule_names[2];

/* "positive", "negative", "hybrid". */
const char *mcq_type_name(McqType type);
/* The type named name, or -1 when it is none of the three. */
int mcq_type_from_name(const char *name);

typedef struct {
    int n_questions, n_correct;
    int n_by_type[MCQ_N_TYPES], correct_by_type[MCQ_N_TYPES];
    double accuracy;                     /* n_correct / n_questions (NaN when empty) */
    double accuracy_by_type[MCQ_N_TYPES]; /* NaN for a type with no questions, as NegBench */
} McqResult;

/*
 * MCQ accuracy from scores [n_questions, n_options] (score of option o for question q at
 * q*n_options + o), the correct option per question, and the type per question.
 */
void metrics_mcq_from_scores(const float *scores, int n_questions, int n_options,
                             const int *correct, const McqType *type, TieRule ties,
                             McqResult *out);

/*
 * MCQ accuracy from embeddings: image_emb [n_questions, dim] (the question's image) and
 * option_emb [n_questions, n_options, dim]. Scores are dot products.
 */
void metrics_mcq(const float *image_emb, const float *option_emb, int n_questions, int n_options,
                 int dim, const int *correct, const McqType *type, TieRule ties, McqResult *out);

#define METRICS_N_RECALL 3
/* The K of Recall@K, in the order of RetrievalResult's arrays. */
extern const int metrics_recall_k[METRICS_N_RECALL]; /* 1, 5, 10 */

typedef struct {
    int n_images, n_texts;
    /* text->image: share of texts whose own image ranks in the top K of all images. */
    double t2i[METRICS_N_RECALL];
    /* image->text: share of images with at least one of their own texts in the top K of all
     * texts (open_clip's rule for several captions per image). */
    double i2t[METRICS_N_RECALL];
} RetrievalResult;

/*
 * Retrieval recall. image_emb [n_images, dim]; text_emb [n_texts, dim]; text_image[t] is the
 * image that text t describes (0 <= text_image[t] < n_images). An image with no texts counts
 * as a miss for image->text. Works in blocks of texts, so memory stays O(n_images) beyond the
 * inputs whatever n_texts is.
 */
void metrics_retrieval(const float *image_emb, int n_images, const float *text_emb, int n_texts,
                       const int *text_image, int dim, TieRule ties, RetrievalResult *out);

/*
 * CC-Neg accuracy: the share of items whose image scores its true caption (index 0) above its
 * negated caption (index 1); a tie is right only under TIES_FIRST_INDEX. All three arrays are [n, dim], row i belonging to item i. NaN when n = 0.
 */
double metrics_ccneg(const float *image_emb, const float *caption_emb, const float *negated_emb,
                     int n, int dim, TieRule ties);

#endif
