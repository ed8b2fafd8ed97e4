/*
 * optim.c: AdamW over the model's trainable tensors, schedules and clipping (optim.h).
 */
#include "engine/optim.h"

#include <math.h>
#include <stdlib.h>

#include "util/common.h" // defines: mallocCheck

const char *const optim_decay_set_names[2] = {"matrices", "all"};

OptimConfig optim_defaults(void) {
    return (OptimConfig){.lr = 5e-4f,
                         .beta1 = 0.9f,
                         .beta2 = 0.98f,
                         .eps = 1e-6f,
                         .weight_decay = 0.2f,
                         .grad_clip = 0.0f,
                         .warmup_steps = 0,
                         .total_steps = 0,
                         .schedule = SCHEDULE_CONSTANT,
                         .decay_set = DECAY_MATRICES};
}

float optim_lr_at(const OptimConfig *oc, uint64_t step) {
    if (oc->warmup_steps > 0 && step < (uint64_t)oc->warmup_steps)
        return oc->lr * (float)(step + 1) / (float)oc->warmup_steps;
    if (oc->schedule == SCHEDULE_CONSTANT || oc->total_steps <= oc->warmup_steps) return oc->lr;
    double progress = (double)(step - (uint64_t)oc->warmup_steps) /
                      (double)(oc->total_steps - oc->warmup_steps);
    if (progress > 1) progress = 1;
    return (float)(0.5 * (1.0 + cos(M_PI * progress)) * oc->lr);
}

/* The trained tensors' sum of squares into m->totals, on the backend. Neighbouring trained
 * tensors are summed as one run (a tower is contiguous in the layout), so the sum takes a few
 * launches, not two per tensor. */
static void sum_gradient_squares(const Clip *m) {
    const Backend *be = m->be;
    const ParamLayout *L = &m->layout;
    be->zero(&m->totals->grad_sumsq, sizeof(double));
    for (int i = 0; i < L->count;) {
        if (!clip_tensor_trains(m, &L->params[i])) {
            i++;
            continue;
        }
        size_t start = L->params[i].offset, end = start;
        for (; i < L->count && clip_tensor_trains(m, &L->params[i]); i++) end = L->params[i].offset + L->params[i].numel;
        be->sum_squares(&m->totals->grad_sumsq, m->grads + start, end - start);
    }
}

/* The step's table (backend.h, AdamWTensor): each tensor, whether it trains, whether it decays,
 * and the one it clamps (logit_scale, TOWER_SHARED). Uploaded (into the buffer clip_prepare
 * allocated) once, and again only when the decay set or the training towers change. */
static void build_step_table(Clip *m, DecaySet decay_set) {
    const ParamLayout *L = &m->layout;
    AdamWTensor *table = mallocCheck(sizeof(AdamWTensor) * (size_t)L->count);
    for (int i = 0; i < L->count; i++) {
        const ParamInfo *p = &L->params[i];
        table[i] = (AdamWTensor){.offset = p->offset,
                                 .numel = p->numel,
                                 .trains = clip_tensor_trains(m, p),
                                 .decays = p->decay || decay_set == DECAY_ALL,
                                 .clamps = p->tower == TOWER_SHARED};
    }
    m->be->to_device(m->opt_tensors, table, sizeof(AdamWTensor) * (size_t)L->count);
    free(table);
    m->opt_tensors_for = (int)decay_set;
}

void clip_optimizer_queue(Clip *m, const OptimConfig *oc, int accum_steps) {
    const Backend *be = m->be;
    const ParamLayout *L = &m->layout;
    sum_gradient_squares(m);
    m->step++;
    /* the clip (torch's clip_grad_norm_: max_norm / (norm + 1e-6), capped at 1) and the skip of
     * a non-finite norm are decided on the backend from totals->grad_sumsq (backend.h, AdamWStep) */
    AdamWStep hp = {.lr = optim_lr_at(oc, m->step - 1),
                    .beta1 = oc->beta1,
                    .beta2 = oc->beta2,
                    .eps = oc->eps,
                    .weight_decay = oc->weight_decay,
                    .bias_correction1 = (float)(1.0 - pow(oc->beta1, (double)m->step)),
                    .bias_correction2 = (float)(1.0 - pow(oc->beta2, (double)m->step)),
                    .grad_sumsq = &m->totals->grad_sumsq,
                    .micro_batches = accum_steps > 0 ? accum_steps : 1,
                    .max_norm = oc->grad_clip,
                    .clamp_min = 0.0f, /* logit_scale: a temperature between 1 and 1/100 */
                    .clamp_max = logf(100.0f)};
    if (m->opt_tensors_for != (int)oc->decay_set) build_step_table(m, oc->decay_set);
    Act *copy = m->params_act == (Act *)m->params ? NULL : m->params_act;
    be->adamw_step(m->params, m->grads, m->adam_m, m->adam_v, copy, m->opt_tensors, L->count, L->total, &hp);
}

float clip_step_read(Clip *m, int accum_steps, float stats[INFONCE_NSTATS], float mcq_stats[INFONCE_NSTATS]) {
    ClipStepTotals totals;
    m->be->to_host(&totals, m->totals, sizeof totals);
    m->be->zero(m->totals, sizeof totals); /* the next step's forwards add to it */
    int micro = accum_steps > 0 ? accum_steps : 1;
    if (stats) {
        clip_loss_sum_stats(m->loss, totals.stats);
        for (int k = 0; k < INFONCE_NSTATS; k++) stats[k] = totals.stats[k] / (float)micro;
    }
    if (stats && m->train.mcq_weight > 0) mcq_loss_global(m->mcq, totals.mcq_stats);
    for (int k = 0; k < INFONCE_NSTATS && stats && mcq_stats; k++) mcq_stats[k] = totals.mcq_stats[k] / (float)micro;
    return (float)(sqrt(totals.grad_sumsq) / micro);
}

float clip_optimizer_step(Clip *m, const OptimConfig *oc, int accum_steps) {
    clip_optimizer_queue(m, oc, accum_steps);
    return clip_step_read(m, accum_steps, NULL, NULL);
}
