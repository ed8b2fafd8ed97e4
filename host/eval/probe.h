/*
 * probe.h: a linear probe of image embeddings. Does the image tower see each object? For one
 * object kind, a logistic regression on the embeddings of half the images (label: the image
 * holds that object) scores the other half, and the area under the ROC curve of those scores
 * says how well a linear read-out of the frozen embedding tells the object's presence (1:
 * perfectly, 0.5: not at all). A negation benchmark can only be failed for the text tower's
 * reasons if this is high: the probe separates "the image cannot show it" from "the text
 * cannot say it".
 *
 * Everything is in double and deterministic: the fit is Newton's method (the problem is
 * convex: the L2 term makes it strictly so, and keeps separable data's weights finite).
 */
#ifndef TNG_PROBE_H
#define TNG_PROBE_H

#include <stddef.h>

/* The AUC of scores against 0/1 labels: the probability that a random positive scores above
 * a random negative, a tie counting one half (Mann-Whitney's U over n_pos n_neg). NAN when
 * either class is empty. */
double probe_auc(const double *score, const unsigned char *label, int n);

/* Fits w [d + 1] (the last entry the bias, not penalised) minimising
 * sum_i log(1 + e^(-(2 y_i - 1) (w . x_i + b))) + l2 / 2 |w|^2 over the n rows of x [n, d].
 * Returns the Newton iterations taken (it stops when a step moves no weight by more than
 * 1e-10, or after 100). */
int probe_fit(const float *x, const unsigned char *y, int n, int d, double l2, double *w);

/* The probe's score of one row: w . x + b. */
double probe_score(const double *w, const float *x, int d);

/* The AUC of the probe w on rows x [n, d] with labels y [n]: how a fitted probe is judged on
 * rows it did not see. */
double probe_scored_auc(const double *w, const float *x, const unsigned char *y, int n, int d);

/* Deals n items of `size` bytes alternately: the even ones ((n + 1) / 2) to `even`, the odd
 * ones (n / 2) to `odd`, in order: how the probe halves a set, to fit on one half and score the
 * other. */
void probe_alternate(const void *items, int n, size_t size, void *even, void *odd);

/* probe_fit with the L2 weight chosen by two-fold cross-validation on the rows themselves (even
 * rows fit, odd rows scored, and the other way round; the weight of PROBE_L2_GRID with the best
 * mean AUC, the larger on a tie), then fitted on all rows. Returns the weight chosen. */
double probe_fit_validated(const float *x, const unsigned char *y, int n, int d, double *w);

#endif
