/*
 * optim.h: the optimizer step and the learning-rate schedule.
 *
 * AdamW with decoupled weight decay (by default none on 1-D tensors, embeddings or
 * logit_scale: the layout's decay flag; DECAY_ALL decays every trained tensor), global-norm
 * gradient clipping as torch.nn.utils.clip_grad_norm_ computes it, gradient accumulation by
 * averaging, and logit_scale clamped to [0, ln 100] after every step, all decided on the
 * backend: a step reads back one small block, for its log (clip_step_read). Only the towers
 * being trained are touched, whatever the decay set: a frozen tensor keeps its bits.
 */
#ifndef TNG_OPTIM_H
#define TNG_OPTIM_H

#include <stdint.h>

#include "engine/model.h"

typedef enum { SCHEDULE_CONSTANT = 0, SCHEDULE_COSINE = 1 } Schedule;

/* The tensors weight decay applies to. */
typedef enum {
    DECAY_MATRICES = 0, /* open_clip's rule: the weight matrices (the layout's decay flag) */
    DECAY_ALL = 1,      /* torch.optim.AdamW(model.parameters()): every trained tensor */
} DecaySet;

/* "matrices", "all": the names of the DecaySet values (tng_train --wd-on). */
extern const char *const optim_decay_set_names[2];

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    float grad_clip;  /* max global norm; <= 0 disables clipping */
    long warmup_steps;
    long total_steps; /* the cosine schedule reaches 0 here */
    Schedule schedule;
    DecaySet decay_set;
} OptimConfig;

/* open_clip-like defaults: lr 5e-4, betas (0.9, 0.98), eps 1e-6, wd 0.2 on the weight
 * matrices, no clipping. */
OptimConfig optim_defaults(void);

/* Learning rate for optimizer step `step` (0-based): linear warmup to lr, then constant or
 * cosine decay to 0 at total_steps. */
float optim_lr_at(const OptimConfig *oc, uint64_t step);

/* One AdamW step over the trainable tensors using the gradients accumulated over
 * `accum_steps` micro-batches (averaged), queued on the backend with nothing read back: the
 * gradients' sum of squares goes into m->totals, from which the update itself takes the clip
 * coefficient and skips the step when the norm is not finite (NaN or Inf: a non-finite loss
 * makes non-finite gradients); logit_scale is clamped there too. Zeroes all gradients, and
 * counts the step (m->step) whether it was skipped or not, so that the schedule and the data
 * stay aligned. Data parallel, call it after clip_reduce_gradients: every rank then has the
 * same gradients, and takes the same decision. */
void clip_optimizer_queue(Clip *m, const OptimConfig *oc, int accum_steps);
/* The step's one read-back (a synchronisation on a GPU; call it after clip_optimizer_queue):
 * returns the norm of the averaged gradients before clipping (not finite: the step was
 * skipped), and into stats (may be NULL) the InfoNCE stats of the step's forwards
 * (clip_forward_queued), averaged over its accum_steps micro-batches and, data parallel, summed
 * over the ranks (a host collective: every rank calls it with stats, or none), and into
 * mcq_stats (may be NULL; read only with stats) the MCQ loss's stats likewise (all 0 for a
 * step without it; a second collective where the model has an MCQ weight). Zeroes the totals
 * for the next step. */
float clip_step_read(Clip *m, int accum_steps, float stats[INFONCE_NSTATS], float mcq_stats[INFONCE_NSTATS]);
/* clip_optimizer_queue then clip_step_read: returns the norm before clipping. */
float clip_optimizer_step(Clip *m, const OptimConfig *oc, int accum_steps);
#endif
