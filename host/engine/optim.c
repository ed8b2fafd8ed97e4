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

/* The trained tensors' sums of squares accumulate in one backend double (m->grad_sumsq), read
 * back once: on a GPU that is one synchronisation per step, not one per tensor. Neighbouring
 * trained tensors are summed as one run (a tower is contiguous in the layout), so the sum takes
 * a few launches, not two per tensor. */
float clip_gradient_norm(const Clip *m, int accum_steps) {
    const Backend *be = m->be;
    const ParamLayout *L = &m->layout;
    be->zero(m->grad_sumsq, sizeof(double));
    for (int i = 0; i < L->count;) {
        if (!clip_tensor_trains(m, &L->params[i])) {
            i++;
            continue;
        }
        size_t start = L->params[i].offset, end = start;
        for (; i < L->count && clip_tensor_trains(m, &L->params[i]); i++) end = L->params[i].offset + L->params[i].numel;
        be->sum_squares(m->grad_sumsq, m->grads + start, end - start);
    }
    double sumsq;
    be->to_host(&sumsq, m->grad_sumsq, sizeof sumsq);
    return (float)(sqrt(sumsq) / (accum_steps > 0 ? accum_steps : 1));
}

/* The step's table (backend.h, AdamWTensor): each tensor, whether it trains, whether it decays.
 * Uploaded once, and again only when the decay set or the training towers change. */
static void build_step_table(Clip *m, DecaySet decay_set) {
    const ParamLayout *L = &m->layout;
    AdamWTensor *table = mallocCheck(sizeof(AdamWTensor) * (size_t)L->count);
    for (int i = 0; i < L->count; i++) {
        const ParamInfo *p = &L->params[i];
        table[i] = (AdamWTensor){.offset = p->offset,
                                 .numel = p->numel,
                                 .trains = clip_tensor_trains(m, p),
                                 .decays = p->decay || decay_set == DECAY_ALL};
    }
    if (!m->opt_tensors) m->opt_tensors = m->be->alloc(sizeof(AdamWTensor) * (size_t)L->count);
    m->be->to_device(m->opt_tensors, table, sizeof(AdamWTensor) * (size_t)L->count);
    free(table);
    m->opt_tensors_for = (int)decay_set;
}

void clip_optimizer_apply(Clip *m, const OptimConfig *oc, int accum_steps, float grad_norm) {
    const Backend *be = m->be;
    const ParamLayout *L = &m->layout;
    double grad_scale = 1.0 / (accum_steps > 0 ? accum_steps : 1);
    /* torch's clip_grad_norm_: coefficient max_norm / (norm + 1e-6), capped at 1 */
    double clip = 1.0;
    if (oc->grad_clip > 0) {
        clip = oc->grad_clip / ((double)grad_norm + 1e-6);
        if (clip > 1.0) clip = 1.0;
    }
    m->step++;
    AdamWStep hp = {.lr = optim_lr_at(oc, m->step - 1),
                    .beta1 = oc->beta1,
                    .beta2 = oc->beta2,
                    .eps = oc->eps,
                    .weight_decay = oc->weight_decay,
                    .bias_correction1 = (float)(1.0 - pow(oc->beta1, (double)m->step)),
                    .bias_correction2 = (float)(1.0 - pow(oc->beta2, (double)m->step)),
                    .grad_scale = (float)(grad_scale * clip)};
    if (m->opt_tensors_for != (int)oc->decay_set) build_step_table(m, oc->decay_set);
    Act *copy = m->params_act == (Act *)m->params ? NULL : m->params_act;
    be->adamw_step(m->params, m->grads, m->adam_m, m->adam_v, copy, m->opt_tensors, L->count, L->total, &hp);
    if (m->train.temperature <= 0) {
        float logit_scale;
        be->to_host(&logit_scale, m->w.logit_scale, sizeof(float));
        const float max_scale = logf(100.0f);
        logit_scale = logit_scale < 0 ? 0 : logit_scale > max_scale ? max_scale : logit_scale;
        be->to_device(m->w.logit_scale, &logit_scale, sizeof(float));
    }
}

float clip_optimizer_step(Clip *m, const OptimConfig *oc, int accum_steps) {
    float norm = clip_gradient_norm(m, accum_steps);
    clip_optimizer_apply(m, oc, accum_steps, norm);
    return norm;
}
