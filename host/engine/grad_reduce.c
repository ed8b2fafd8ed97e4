/*
 * grad_reduce.c: the gradient buckets' all-reduces (grad_reduce.h) over the Dist device
 * collectives.
 *
 * A bucket is a run [i0, i1) of tensors adjacent in the layout, so it is one contiguous
 * stretch of the gradient buffer and one all_reduce_start. sent[] marks what has started, so
 * that grad_reduce_finish sends exactly the rest, as runs of adjacent unsent tensors.
 */
#include "engine/grad_reduce.h"

#include <stdio.h>
#include <string.h>

#include "util/common.h" // defines: die, callocCheck, mallocCheck

struct GradReduce {
    const ParamLayout *layout;
    float *grads;
    const Dist *dist;
    int text_layers;          /* bucket k < text_layers: text layer k; else vision layer k - it */
    int (*layer_tensors)[2];  /* [text layers + vision layers]: each layer's tensors [i0, i1) */
    unsigned char *trains;    /* [layout->count]: the tensor's tower trains */
    unsigned char *sent;      /* [layout->count]: the tensor's all-reduce has started */
    int overlapping;          /* the backward starts buckets; some may be in flight */
};

/* Each encoder layer's tensors, found by their HF name prefix: [i0, i1) of the layout. */
static void find_layers(GradReduce *r, const ClipConfig *cfg) {
    const ParamLayout *L = r->layout;
    int nt = cfg->text.layers, n = nt + cfg->vision.layers;
    r->text_layers = nt;
    r->layer_tensors = mallocCheck(sizeof *r->layer_tensors * (size_t)n);
    for (int k = 0; k < n; k++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s_model.encoder.layers.%d.", k < nt ? "text" : "vision",
                 k < nt ? k : k - nt);
        size_t len = strlen(prefix);
        int i0 = -1, i1 = -1, found = 0;
        for (int i = 0; i < L->count; i++)
            if (strncmp(L->params[i].name, prefix, len) == 0) {
                if (i0 < 0) i0 = i;
                i1 = i + 1;
                found++;
            }
        if (found == 0 || found != i1 - i0)
            die("model layout: the tensors of %s* are not adjacent", prefix);
        r->layer_tensors[k][0] = i0;
        r->layer_tensors[k][1] = i1;
    }
}

GradReduce *grad_reduce_create(const ClipConfig *cfg, const ParamLayout *layout, float *grads,
                               const Dist *dist, const int tower_trains[3]) {
    GradReduce *r = callocCheck(1, sizeof(GradReduce));
    r->layout = layout;
    r->grads = grads;
    r->dist = dist;
    r->trains = callocCheck((size_t)layout->count, 1);
    r->sent = callocCheck((size_t)layout->count, 1);
    for (int i = 0; i < layout->count; i++) r->trains[i] = tower_trains[layout->params[i].tower] != 0;
    find_layers(r, cfg);
    return r;
}

void grad_reduce_free(GradReduce *r) {
    if (!r) return;
    free(r->layer_tensors), free(r->trains), free(r->sent);
    free(r);
}

/* One all-reduce of tensors [i0, i1), which are adjacent in the buffer. */
static void start_tensors(GradReduce *r, int i0, int i1) {
    const ParamInfo *first = &r->layout->params[i0], *last = &r->layout->params[i1 - 1];
    r->dist->device->all_reduce_start(r->dist, r->grads + first->offset,
                                      last->offset + last->numel - first->offset);
    memset(r->sent + i0, 1, (size_t)(i1 - i0));
}

/* A trainable tensor not yet sent; text_side: only the text tower's and logit_scale. */
static int unsent(const GradReduce *r, int i, int text_side) {
    return !r->sent[i] && r->trains[i] && !(text_side && r->layout->params[i].tower == TOWER_VISION);
}

/* One all-reduce per run of adjacent unsent tensors. */
static void start_unsent(GradReduce *r, int text_side) {
    int count = r->layout->count;
    for (int i = 0; i < count;) {
        if (!unsent(r, i, text_side)) {
            i++;
            continue;
        }
        int i0 = i;
        while (i < count && unsent(r, i, text_side)) i++;
        start_tensors(r, i0, i);
    }
}

void grad_reduce_backward_begins(GradReduce *r, int overlap) {
    if (!r) return;
    if (r->overlapping)
        die("clip_backward: the gradients' all-reduce of the last step is still in flight "
            "(call clip_reduce_gradients after clip_backward_last)");
    r->overlapping = overlap;
}

void grad_reduce_layer_done(GradReduce *r, Tower tower, int layer) {
    if (!r || !r->overlapping) return;
    int k = tower == TOWER_TEXT ? layer : r->text_layers + layer;
    start_tensors(r, r->layer_tensors[k][0], r->layer_tensors[k][1]);
}

void grad_reduce_text_done(GradReduce *r) {
    if (r && r->overlapping) start_unsent(r, 1);
}

/* The buckets the backward did not start (all of them after a plain clip_backward), then
 * the wait for every one. */
void grad_reduce_finish(GradReduce *r) {
    if (!r) return;
    start_unsent(r, 0);
    r->dist->device->all_reduce_wait(r->dist);
    memset(r->sent, 0, (size_t)r->layout->count);
    r->overlapping = 0;
}
