/*
 * evaluate.h: the evaluation sets, run through an Encoder: NegBench MCQ and retrieval CSVs,
 * CC-Neg pairs and zero-shot classification folders. tng_eval prints these results for
 * any number of models; tng_train runs them on its validation split while it trains.
 *
 * These are program-level helpers: a missing or malformed file ends the program with a
 * message naming the file (die), since no caller can go on without its evaluation data. A
 * row whose image cannot be read (MCQ question, retrieval image with its captions, CC-Neg
 * pair) is left out with a warning naming its CSV line, counted (n_skipped), and the scores
 * are over the other rows; a file none of whose images can be read ends the program.
 */
#ifndef TNG_EVALUATE_H
#define TNG_EVALUATE_H

#include "eval/encoder.h" // defines: Encoder
#include "eval/metrics.h" // defines: McqResult, RetrievalResult

/* ties: how a tie between scores is scored (metrics.h, TieRule) */
void evaluate_mcq(Encoder *enc, const char *csv, const char *image_root, int progress,
                  TieRule ties, McqResult *out);
void evaluate_retrieval(Encoder *enc, const char *csv, const char *image_root, int progress,
                        TieRule ties, RetrievalResult *out);
/* CC-Neg accuracy in [0, 1]. */
double evaluate_ccneg(Encoder *enc, const char *csv, const char *image_root, int progress,
                      TieRule ties);
/* The linear probe (probe.h) on a captions CSV with objects (filepath,caption,objects: a
 * synthetic world's, or COCO's made so): each image's embedding, the images in file order
 * alternately into a fitting half and a scored half; per object kind, in name order, the AUC on
 * the scored half of the probe fitted on the other (NAN where a half lacks either class). */
enum { PROBE_MAX_KINDS = 64, PROBE_KIND_NAME = 64 };
typedef struct {
    int n_kinds, n_fit, n_scored;
    char kind[PROBE_MAX_KINDS][PROBE_KIND_NAME];
    double auc[PROBE_MAX_KINDS];
} ProbeResult;
void evaluate_probe(Encoder *enc, const char *csv, const char *image_root, int progress, ProbeResult *out);

/* Zero-shot top-1 / top-5 accuracy in [0, 1] over DIR/<class>/<image files>, with class
 * prompts from a template file ({} is replaced by the folder name, '_' read as ' '). */
void evaluate_zeroshot(Encoder *enc, const char *dir, const char *templates, double *top1,
                       double *top5);

#endif
