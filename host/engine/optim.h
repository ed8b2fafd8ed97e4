/*
 * optim.h: the optimizer step and the learning-rate schedule.
 *
 * AdamW with decoupled weight decay (by default none on 1-D tensors, embeddings or
 * logit_scale: the layout's decay flag; DECAY_ALL decays every trained tensor), global-norm
 * gradient clipping as torch.nn.utils.clip_grad_norm_ computes it, gradient accumulation by
 * averaging, and logit_scale clamped to [0, ln 100] after every step. Only the towers being
 * trained are touched, whatever the decay set: a frozen tensor keeps its bits.
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

/* The global norm of the trainable tensors' gradients, averaged over accum_steps
 * micro-batches (NaN or Inf when a gradient is not finite). */
float clip_gradient_norm(const Clip *m, int accum_steps);

/* One AdamW step over the trainable tensors using the gradients accumulated over
 * `accum_steps` micro-batches (averaged) and their norm from clip_gradient_norm, then
 * zeroes all gradients. */
void clip_optimizer_apply(Clip *m, const OptimConfig *oc, int accum_steps, float grad_norm);

/* clip_gradient_norm then clip_optimizer_apply. Returns the norm before clipping. */
float clip_optimizer_step(Clip *m, const OptimConfig *oc, int accum_steps);

#endif
