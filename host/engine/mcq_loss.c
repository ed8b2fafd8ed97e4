/*
 * mcq_loss.c: the multiple-choice objective (mcq_loss.h) as the InfoNCE op on the block of
 * each image against its own options.
 *
 * The block is [Ni, K * Ni], all of a process's images against all of its options (one
 * matmul; row i keeps K of its K * Ni columns). The wasted columns cost a matmul the size of
 * the K * Ni option texts' projection, small beside the text tower that encodes them. The op
 * writes dcos beside cos (not over it), so the training accuracy can be read afterwards.
 */
#include "engine/mcq_loss.h"

#include <stdlib.h>

#include "util/common.h" // defines: die, mallocCheck, callocCheck

McqLoss *mcq_loss_create(const Backend *be, int embed_dim) {
    McqLoss *loss = callocCheck(1, sizeof(McqLoss));
    loss->be = be;
    loss->embed_dim = embed_dim;
    return loss;
}

static void buffers_free(McqLoss *loss) {
    void *device[] = {loss->cos, loss->dcos, loss->stats, loss->txt2img, loss->target, loss->exclude};
    for (size_t i = 0; i < sizeof device / sizeof *device; i++)
        if (device[i]) loss->be->release(device[i]);
    free(loss->exclude_host), free(loss->target_host), free(loss->answer_host), free(loss->cos_host);
}

void mcq_loss_free(McqLoss *loss) {
    if (!loss) return;
    buffers_free(loss);
    free(loss);
}

void mcq_loss_prepare(McqLoss *loss, const Dist *dist, float weight, int options, int max_images) {
    if (!(weight > 0) || options < 2 || max_images < 1)
        die("mcq_loss: weight %g, %d options, %d images: expected a weight > 0, 2 options or more",
            weight, options, max_images);
    const Backend *be = loss->be;
    buffers_free(loss);
    loss->dist = dist, loss->weight = weight, loss->options = options, loss->max_images = max_images;
    size_t columns = (size_t)options * max_images;
    loss->cos = be->alloc(sizeof(float) * columns * max_images);
    loss->dcos = be->alloc(sizeof(float) * columns * max_images);
    loss->stats = be->alloc(sizeof(float) * INFONCE_NSTATS);
    loss->txt2img = be->alloc(sizeof(int) * columns);
    loss->target = be->alloc(sizeof(int) * (size_t)max_images);
    loss->exclude = be->alloc(columns * max_images);
    loss->exclude_host = mallocCheck(columns * max_images);
    loss->answer_host = mallocCheck(sizeof(int) * (size_t)max_images);
    loss->cos_host = mallocCheck(sizeof(float) * columns * max_images);
    loss->target_host = mallocCheck(sizeof(int) * columns); /* the -1s first, then the targets */
    for (size_t t = 0; t < columns; t++) loss->target_host[t] = -1;
    be->to_device(loss->txt2img, loss->target_host, sizeof(int) * columns);
}

static int distributed(const McqLoss *loss) { return loss->dist && loss->dist->world > 1; }

/* Row i keeps its own options (option k of image i is column k * Ni + i), or its first alone
 * when it has no question; its target is the true one (the first). Returns this process's
 * question count. */
static int build_rows(McqLoss *loss, const int *answer, int Ni) {
    int K = loss->options, columns = K * Ni, questions = 0;
    for (int i = 0; i < Ni; i++) {
        if (answer[i] < -1 || answer[i] >= K)
            die("mcq_loss: image %d's answer %d is no option of %d (or -1)", i, answer[i], K);
        unsigned char *row = loss->exclude_host + (size_t)i * columns;
        for (int c = 0; c < columns; c++) row[c] = 1;
        for (int k = 0; k < (answer[i] >= 0 ? K : 1); k++) row[k * Ni + i] = 0;
        loss->target_host[i] = (answer[i] >= 0 ? answer[i] : 0) * Ni + i;
        loss->answer_host[i] = answer[i];
        questions += answer[i] >= 0;
    }
    return questions;
}

void mcq_loss_score(McqLoss *loss, const float *image_features, const float *option_features, int Ni,
                    const int *answer, const float *logit_scale, float fixed_scale) {
    const Backend *be = loss->be;
    if (Ni > loss->max_images) die("mcq_loss: %d images exceed the prepared %d", Ni, loss->max_images);
    int K = loss->options, columns = K * Ni, questions = build_rows(loss, answer, Ni);
    if (distributed(loss)) loss->dist->host->all_reduce(loss->dist, &questions, 1, DIST_I32, DIST_SUM);
    loss->image_features = image_features, loss->option_features = option_features;
    loss->n_images = Ni, loss->questions = questions;
    if (!questions) { /* nothing to score anywhere: a loss of 0 */
        be->zero(loss->stats, sizeof(float) * INFONCE_NSTATS);
        return;
    }
    be->matmul_forward(loss->cos, image_features, option_features, NULL, Ni, loss->embed_dim, columns);
    be->to_device(loss->exclude, loss->exclude_host, (size_t)Ni * columns);
    be->to_device(loss->target, loss->target_host, sizeof(int) * (size_t)Ni);
    /* image-to-text alone (the op halves it: the weight doubles back); no column term, so
     * n_texts is only a denominator of zeros */
    InfonceTerms terms = {.image_to_text = 1, .text_to_image = 0, .first_image = 0,
                          .n_images = questions, .n_texts = 1, .negative_log_weight = 0.0f,
                          .i2t_each = 0, .exclude = loss->exclude, .weight = 2.0f * loss->weight};
    be->infonce_forward_backward(loss->dcos, loss->stats, loss->cos, loss->txt2img, loss->target,
                                 logit_scale, fixed_scale, Ni, columns, &terms);
}

void mcq_loss_backward(McqLoss *loss, float *d_image_features, float *d_option_features,
                       float *dlogit_scale, const float *logit_scale) {
    if (!loss->questions) return;
    const Backend *be = loss->be;
    int Ni = loss->n_images;
    be->matmul_backward(d_image_features, d_option_features, NULL, loss->dcos, loss->image_features,
                        loss->option_features, Ni, loss->embed_dim, loss->options * Ni);
    if (logit_scale) be->logit_scale_backward(dlogit_scale, loss->stats, 1, logit_scale);
}

float mcq_loss_global(const McqLoss *loss, float stats[INFONCE_NSTATS]) {
    if (distributed(loss)) loss->dist->host->all_reduce(loss->dist, stats, INFONCE_NSTATS, DIST_F32, DIST_SUM);
    return stats[INFONCE_LOSS];
}

float mcq_loss_accuracy(McqLoss *loss) {
    int Ni = loss->n_images, K = loss->options, counts[2] = {0, 0}; /* right, questions */
    if (loss->questions) {
        size_t columns = (size_t)K * Ni;
        loss->be->to_host(loss->cos_host, loss->cos, sizeof(float) * columns * (size_t)Ni);
        for (int i = 0; i < Ni; i++) {
            int answer = loss->answer_host[i], right = answer >= 0;
            if (answer < 0) continue;
            const float *row = loss->cos_host + (size_t)i * columns;
            for (int k = 0; k < K; k++) right &= k == answer || row[answer * Ni + i] > row[k * Ni + i];
            counts[0] += right, counts[1]++;
        }
    }
    if (distributed(loss)) loss->dist->host->all_reduce(loss->dist, counts, 2, DIST_I32, DIST_SUM);
    return counts[1] ? (float)counts[0] / (float)counts[1] : 0.0f;
}
