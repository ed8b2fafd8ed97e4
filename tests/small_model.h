/*
 * small_model.h: the small CLIP configuration the model-level tests share: two layers per
 * tower, odd head counts between the towers, both activations, a 64-token vocabulary whose
 * last id (63) is the EOT, so a whole forward and backward runs in milliseconds.
 */
#ifndef TNG_TEST_SMALL_MODEL_H
#define TNG_TEST_SMALL_MODEL_H

#include <math.h>
#include <string.h>

#include "engine/config.h"

static inline ClipConfig small_config(void) {
    ClipConfig c;
    memset(&c, 0, sizeof c); /* not = {0}: C++ (the GPU tests) warns of the fields left out */
    c.vision = (TowerConfig){32, 2, 2, 64, ACT_QUICK_GELU};
    c.image_size = 16;
    c.patch_size = 4;
    c.text = (TowerConfig){32, 2, 4, 96, ACT_GELU};
    c.vocab_size = 64;
    c.context_length = 12;
    c.embed_dim = 16;
    c.logit_scale_init = logf(1 / 0.07f);
    return c;
}

#endif
