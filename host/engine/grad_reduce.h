/*
 * grad_reduce.h: data parallel, the all-reduce (sum) of the model's parameter gradients, in
 * buckets started while the backward still runs.
 *
 * Why a bucket per transformer layer: a layer's gradients are final as soon as its backward
 * is done (nothing later in the backward adds to them), and its tensors are adjacent in the
 * layout, so each layer is one all-reduce that travels while the layers before it compute.
 * Once the text backward is done, all of the text tower's gradients and logit_scale's are
 * final too (the vision backward comes after), so its other tensors go next. What is left,
 * the vision stem and head, goes in grad_reduce_finish, which then waits for all. Every rank
 * starts the same buckets in the same order, and a frozen tower's gradients (zeros) never
 * cross the network.
 *
 * Where this state lives, and why here: the buckets (which tensors form each layer, which
 * have been sent, whether a reduction is in flight) describe the model's one gradient buffer
 * and which towers train; they live one optimizer step, from the last micro-batch's backward
 * to clip_reduce_gradients. They are not the loss's (loss.h moves features, never parameter
 * gradients, and has finished before the first bucket starts), and kept in Clip they would
 * mix communication bookkeeping into the model's weights and activations. So GradReduce owns
 * them, the model owns one GradReduce when it trains data parallel (NULL otherwise), and the
 * backward calls it at three points: after each encoder layer, after the text tower, and at
 * the end of the step. Every function here accepts NULL (one process: nothing to do).
 */
#ifndef TNG_GRAD_REDUCE_H
#define TNG_GRAD_REDUCE_H

#include "engine/config.h" // defines: ClipConfig
#include "engine/dist.h"   // defines: Dist
#include "engine/model.h"  // defines: ParamLayout, Tower

/* Finds each encoder layer's tensors in the layout (dies if they are not adjacent).
 * grads: layout->total floats of backend memory, outliving this object. tower_trains[tower]
 * (indexed by Tower): 1 when that tower's gradients are summed. */
GradReduce *grad_reduce_create(const ClipConfig *cfg, const ParamLayout *layout, float *grads,
                               const Dist *dist, const int tower_trains[3]);
void grad_reduce_free(GradReduce *r);

/* A backward begins. overlap 1 (clip_backward_last): buckets start as the backward finishes
 * them; 0: none starts before grad_reduce_finish. Dies if the last step's reductions are
 * still in flight. */
void grad_reduce_backward_begins(GradReduce *r, int overlap);
/* With overlap: the backward has finished `layer` of `tower`, so its bucket starts. */
void grad_reduce_layer_done(GradReduce *r, Tower tower, int layer);
/* With overlap: the text backward is done, so the text tower's other tensors and
 * logit_scale start. */
void grad_reduce_text_done(GradReduce *r);
/* Starts every trainable tensor not yet sent and waits for all: the gradients hold the sums
 * over ranks. Nothing may touch the gradients between the first start and this. */
void grad_reduce_finish(GradReduce *r);

#endif
