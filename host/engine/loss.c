/*
 * loss.c: the InfoNCE objective (loss.h) on the Backend op table, in one process and data
 * parallel.
 *
 * Reading order: the one builder of InfonceTerms, the buffers, the targets' check, the
 * exclusion masks of standalone negations, the forward (the whole matrix in one process; the
 * gathered batch and its two blocks data parallel), then the backward.
 *
 * The one choice a reader must know: the similarity matrix is a linear layer whose weight
 * is the text features (cos[i,t] = image_i . text_t), so its forward and backward are the
 * backend's matmul ops, and the InfoNCE op computes dcos in place over cos (cos is not
 * needed once the loss is known).
 */
#include "engine/loss.h"

#include <string.h>

#include "util/common.h" // defines: die, mallocCheck, callocCheck

static int distributed(const ClipLoss *loss) { return loss->cfg.dist && loss->cfg.dist->world > 1; }

/* The one builder of InfonceTerms: the call names which terms it computes and where its
 * block's rows start among the global images; the global counts and every option of the
 * objective come from here. (i2t_each is read only with image_to_text.) */
static InfonceTerms loss_terms(const ClipLoss *loss, int image_to_text, int text_to_image,
                               int first_image, const unsigned char *exclude) {
    return (InfonceTerms){.image_to_text = image_to_text,
                          .text_to_image = text_to_image,
                          .first_image = first_image,
                          .n_images = loss->n_images_global,
                          .n_texts = loss->n_scored_global,
                          .negative_log_weight = loss->cfg.contradiction_log_weight,
                          .i2t_each = loss->cfg.i2t_each,
                          .exclude = exclude};
}

/* Texts with a positive image: the text-to-image mean's denominator. */
static int scored_texts(const int *txt2img, int Nt) {
    int n = 0;
    for (int t = 0; t < Nt; t++) n += txt2img[t] >= 0;
    return n;
}

/* ----------------------------------------------------------------------------
 * Buffers */

ClipLoss *clip_loss_create(const Backend *be, int embed_dim) {
    ClipLoss *loss = callocCheck(1, sizeof(ClipLoss));
    loss->be = be;
    loss->embed_dim = embed_dim;
    return loss;
}

static void buffers_free(ClipLoss *loss) {
    void *device[] = {loss->cos,        loss->cos_columns,  loss->stats,       loss->txt2img,
                      loss->i2t_target, loss->images_all,   loss->texts_all,   loss->d_images_all,
                      loss->d_texts_all, loss->d_home,      loss->exclude,     loss->exclude_columns};
    for (size_t i = 0; i < sizeof device / sizeof *device; i++)
        if (device[i]) loss->be->release(device[i]);
    free(loss->image_counts), free(loss->text_counts), free(loss->exclude_host);
    free(loss->image_offsets), free(loss->text_offsets);
    loss->cos = loss->cos_columns = loss->stats = NULL;
    loss->txt2img = loss->i2t_target = NULL;
    loss->images_all = loss->texts_all = loss->d_images_all = loss->d_texts_all = NULL;
    loss->d_home = NULL;
    loss->exclude = loss->exclude_columns = loss->exclude_host = NULL;
    loss->image_counts = loss->text_counts = loss->image_offsets = loss->text_offsets = NULL;
}

void clip_loss_free(ClipLoss *loss) {
    if (!loss) return;
    buffers_free(loss);
    free(loss);
}

/* The gathered batch: every rank's features, their gradients, the columns block. */
static void gathered_alloc(ClipLoss *loss) {
    const Backend *be = loss->be;
    size_t W = (size_t)loss->cfg.dist->world, D = (size_t)loss->embed_dim;
    size_t images = W * loss->max_images, texts = W * loss->max_texts;
    loss->images_all = be->alloc(sizeof(float) * images * D);
    loss->texts_all = be->alloc(sizeof(float) * texts * D);
    loss->d_images_all = be->alloc(sizeof(float) * images * D);
    loss->d_texts_all = be->alloc(sizeof(float) * texts * D);
    loss->cos_columns = be->alloc(sizeof(float) * images * loss->max_texts);
    loss->exclude_columns = be->alloc(images * loss->max_texts);
    size_t home = loss->max_images > loss->max_texts ? loss->max_images : loss->max_texts;
    loss->d_home = be->alloc(sizeof(float) * home * D);
    loss->image_counts = callocCheck(W, sizeof(int));
    loss->text_counts = callocCheck(W, sizeof(int));
    loss->image_offsets = callocCheck(W + 1, sizeof(int));
    loss->text_offsets = callocCheck(W + 1, sizeof(int));
}

void clip_loss_prepare(ClipLoss *loss, const ClipLossConfig *cfg, int max_images, int max_texts) {
    const Backend *be = loss->be;
    buffers_free(loss);
    loss->cfg = *cfg;
    loss->max_images = max_images;
    loss->max_texts = max_texts;
    /* data parallel: the rows block is [local images x all texts] */
    size_t world = cfg->dist ? (size_t)cfg->dist->world : 1;
    loss->cos = be->alloc(sizeof(float) * (size_t)max_images * max_texts * world);
    loss->exclude = be->alloc((size_t)max_images * max_texts * world);
    loss->exclude_host = mallocCheck((size_t)max_images * max_texts * world);
    loss->stats = be->alloc(sizeof(float) * 2 * INFONCE_NSTATS);
    loss->txt2img = be->alloc(sizeof(int) * (size_t)max_texts * world);
    loss->i2t_target = be->alloc(sizeof(int) * (size_t)max_images);
    if (distributed(loss)) gathered_alloc(loss);
}

void clip_loss_check_targets(const int *txt2img, int Nt, const int *i2t_target, int Ni) {
    int *positives = callocCheck((size_t)Ni, sizeof(int));
    for (int t = 0; t < Nt; t++) {
        if (txt2img[t] < -1 || txt2img[t] >= Ni)
            die("text %d names image %d, outside [-1, %d)", t, txt2img[t], Ni);
        if (txt2img[t] >= 0) positives[txt2img[t]]++;
    }
    if (scored_texts(txt2img, Nt) == 0) die("a batch needs a text with a positive image (all are -1)");
    for (int i = 0; i < Ni; i++) {
        int target = i2t_target[i];
        if (target < -1 || target >= Nt)
            die("image %d: image-to-text target %d outside [-1, %d)", i, target, Nt);
        if (target >= 0 && txt2img[target] < 0)
            die("image %d: image-to-text target %d is a text with no positive image", i, target);
        if (target == -1 && positives[i] == 0)
            die("image %d has no positive text, so its mean target is undefined", i);
    }
    free(positives);
}

/* ----------------------------------------------------------------------------
 * Exclusion masks: standalone negations (loss.h) */

/* The global batch's truth: every (gathered) text's positive image and denied object, every
 * image's named objects, in global indices. In one process it points at the caller's arrays;
 * data parallel it owns the gathered copies. absent NULL: no text is a standalone negation. */
typedef struct {
    const int *positive, *absent, *named_start, *named;
    int *owned[4]; /* what truth_free frees */
} Truth;

static void truth_free(Truth *truth) {
    for (int k = 0; k < 4; k++) free(truth->owned[k]);
}

static int names_object(const Truth *truth, int image, int object) {
    for (int k = truth->named_start[image]; k < truth->named_start[image + 1]; k++)
        if (truth->named[k] == object) return 1;
    return 0;
}

/* The mask of the block [first_image, + ni) x [first_text, + nt) of the global matrix into
 * loss->exclude_host, uploaded to `device`; returns device, or NULL when no pair of the block
 * is excluded (the op's unmasked path). A standalone negation leaves every image's softmax
 * but its own positive image's and those of the images whose caption names its object. */
static const unsigned char *exclusion_block(ClipLoss *loss, const Truth *truth, int first_image,
                                            int ni, int first_text, int nt, unsigned char *device) {
    if (!truth->absent) return NULL;
    unsigned char *out = loss->exclude_host;
    size_t excluded = 0;
    for (int i = 0; i < ni; i++) {
        int image = first_image + i;
        for (int t = 0; t < nt; t++) {
            int text = first_text + t, object = truth->absent[text];
            int out_of_it = object >= 0 && truth->positive[text] != image &&
                            !names_object(truth, image, object);
            out[(size_t)i * nt + t] = (unsigned char)out_of_it;
            excluded += (size_t)out_of_it;
        }
    }
    if (!excluded) return NULL;
    loss->be->to_device(device, out, (size_t)ni * nt);
    return device;
}

/* ----------------------------------------------------------------------------
 * Forward */

/* One process: both terms on the whole matrix in one call. */
static void score_whole(ClipLoss *loss, const int *txt2img, const int *i2t_target, const Truth *truth) {
    const Backend *be = loss->be;
    int Ni = loss->n_images, Nt = loss->n_texts;
    loss->n_images_global = Ni;
    loss->n_texts_global = Nt;
    loss->n_scored_global = scored_texts(txt2img, Nt);
    be->matmul_forward(loss->cos, loss->image_features, loss->text_features, NULL, Ni,
                       loss->embed_dim, Nt);
    be->to_device(loss->txt2img, txt2img, sizeof(int) * (size_t)Nt);
    be->to_device(loss->i2t_target, i2t_target, sizeof(int) * (size_t)Ni);
    InfonceTerms whole = loss_terms(loss, 1, 1, 0, exclusion_block(loss, truth, 0, Ni, 0, Nt, loss->exclude));
    be->infonce_forward_backward(loss->cos, loss->stats, loss->cos, loss->txt2img,
                                 loss->i2t_target, loss->logit_scale, loss->fixed_scale, Ni, Nt, &whole);
    loss->blocks = 1;
}

/* counts[r] * D: a per-rank count of rows as a count of floats */
static int *times_dim(const ClipLoss *loss, const int *counts) {
    int W = loss->cfg.dist->world, *out = mallocCheck(sizeof(int) * (size_t)W);
    for (int r = 0; r < W; r++) out[r] = counts[r] * loss->embed_dim;
    return out;
}

/* Data parallel: every rank's denied objects and named objects into truth, as global ids. */
static void gather_absence(ClipLoss *loss, const ClipAbsence *absence, Truth *truth) {
    const Dist *d = loss->cfg.dist;
    int W = d->world, me = d->rank, Ni = loss->n_images, Nig = loss->n_images_global;
    int *absent = mallocCheck(sizeof(int) * (size_t)loss->n_texts_global);
    d->host->all_gather(d, absent, absence->absent, loss->text_counts, DIST_I32);
    /* the named lists: each image's count, then every rank's values */
    int *start = mallocCheck(sizeof(int) * ((size_t)Nig + 1)), *counts = start + 1;
    for (int i = 0; i < Ni; i++)
        counts[loss->image_offsets[me] + i] = absence->named_start[i + 1] - absence->named_start[i];
    d->host->all_gather(d, counts, counts + loss->image_offsets[me], loss->image_counts, DIST_I32);
    start[0] = 0;
    for (int i = 0; i < Nig; i++) start[i + 1] = start[i] + counts[i]; /* counts[i] is start[i + 1] */
    int *values = mallocCheck(sizeof(int) * (size_t)W);
    for (int r = 0; r < W; r++)
        values[r] = start[loss->image_offsets[r + 1]] - start[loss->image_offsets[r]];
    int *named = mallocCheck(sizeof(int) * ((size_t)start[Nig] + 1));
    d->host->all_gather(d, named, absence->named + absence->named_start[0], values, DIST_I32);
    free(values);
    truth->absent = truth->owned[1] = absent;
    truth->named_start = truth->owned[2] = start;
    truth->named = truth->owned[3] = named;
}

/* Gathers every rank's batch: sizes, features (rank order), positives as global ids into
 * truth, and with absence (on every rank or none) the standalone negations' objects. Uploads
 * this rank's image->text targets as global text ids. */
static void gather_batch(ClipLoss *loss, const int *txt2img, const int *i2t_target,
                         const ClipAbsence *absence, Truth *truth) {
    const Dist *d = loss->cfg.dist;
    const Backend *be = loss->be;
    int W = d->world, me = d->rank, Ni = loss->n_images, Nt = loss->n_texts;
    enum { SIZES = 4 }; /* images, texts, scored texts, whether absence was given */
    int mine[SIZES] = {Ni, Nt, scored_texts(txt2img, Nt), absence != NULL};
    int *sizes = mallocCheck(sizeof(int) * SIZES * (size_t)W);
    int *fours = mallocCheck(sizeof(int) * (size_t)W);
    for (int r = 0; r < W; r++) fours[r] = SIZES;
    d->host->all_gather(d, sizes, mine, fours, DIST_I32);
    loss->n_scored_global = 0;
    int with_absence = 0;
    for (int r = 0; r < W; r++) {
        loss->image_counts[r] = sizes[SIZES * r], loss->text_counts[r] = sizes[SIZES * r + 1];
        loss->n_scored_global += sizes[SIZES * r + 2];
        with_absence += sizes[SIZES * r + 3];
    }
    if (with_absence != 0 && with_absence != W)
        die("loss: %d of %d ranks passed standalone negations; every rank passes them or none",
            with_absence, W);
    loss->n_images_global = dist_offsets(d, loss->image_counts, loss->image_offsets);
    loss->n_texts_global = dist_offsets(d, loss->text_counts, loss->text_offsets);

    int *image_floats = times_dim(loss, loss->image_counts);
    int *text_floats = times_dim(loss, loss->text_counts);
    d->device->all_gather(d, loss->images_all, loss->image_features, image_floats, DIST_F32);
    d->device->all_gather(d, loss->texts_all, loss->text_features, text_floats, DIST_F32);

    int *positives = mallocCheck(sizeof(int) * (size_t)loss->n_texts_global);
    int *own = positives + loss->text_offsets[me]; /* gathered in place */
    for (int t = 0; t < Nt; t++) /* -1 (no positive image) stays -1 */
        own[t] = txt2img[t] >= 0 ? loss->image_offsets[me] + txt2img[t] : -1;
    d->host->all_gather(d, positives, own, loss->text_counts, DIST_I32);
    be->to_device(loss->txt2img, positives, sizeof(int) * (size_t)loss->n_texts_global);
    *truth = (Truth){.positive = positives, .owned = {positives}};
    if (with_absence) gather_absence(loss, absence, truth);
    int *targets = mallocCheck(sizeof(int) * (size_t)Ni);
    for (int i = 0; i < Ni; i++)
        targets[i] = i2t_target[i] >= 0 ? loss->text_offsets[me] + i2t_target[i] : -1;
    be->to_device(loss->i2t_target, targets, sizeof(int) * (size_t)Ni);
    free(sizes), free(fours), free(image_floats), free(text_floats), free(targets);
}

/* Data parallel: the two blocks this rank owns. */
static void score_blocks(ClipLoss *loss, const Truth *truth) {
    const Backend *be = loss->be;
    const Dist *d = loss->cfg.dist;
    int Ni = loss->n_images, Nt = loss->n_texts, D = loss->embed_dim;
    int Nig = loss->n_images_global, Ntg = loss->n_texts_global;
    be->matmul_forward(loss->cos, loss->image_features, loss->texts_all, NULL, Ni, D, Ntg);
    be->matmul_forward(loss->cos_columns, loss->images_all, loss->text_features, NULL, Nig, D, Nt);
    int my_images = loss->image_offsets[d->rank], my_texts = loss->text_offsets[d->rank];
    InfonceTerms rows = loss_terms(loss, 1, 0, my_images,
                                   exclusion_block(loss, truth, my_images, Ni, 0, Ntg, loss->exclude));
    InfonceTerms columns = loss_terms(loss, 0, 1, 0, exclusion_block(loss, truth, 0, Nig, my_texts, Nt,
                                                                    loss->exclude_columns));
    be->infonce_forward_backward(loss->cos, loss->stats, loss->cos, loss->txt2img,
                                 loss->i2t_target, loss->logit_scale, loss->fixed_scale, Ni, Ntg, &rows);
    be->infonce_forward_backward(loss->cos_columns, loss->stats + INFONCE_NSTATS,
                                 loss->cos_columns, loss->txt2img + my_texts,
                                 NULL, loss->logit_scale, loss->fixed_scale, Nig, Nt, &columns);
    loss->blocks = 2;
}

void clip_loss_score(ClipLoss *loss, const float *image_features, int Ni, const float *text_features,
                     int Nt, const int *txt2img, const int *i2t_target, const ClipAbsence *absence,
                     const float *logit_scale, float fixed_scale) {
    if (Ni > loss->max_images || Nt > loss->max_texts)
        die("loss: batch of %d images x %d texts exceeds the prepared %d x %d", Ni, Nt,
            loss->max_images, loss->max_texts);
    loss->image_features = image_features, loss->text_features = text_features;
    loss->n_images = Ni, loss->n_texts = Nt;
    loss->logit_scale = logit_scale, loss->fixed_scale = fixed_scale;
    if (absence && !absence->absent) absence = NULL;
    if (distributed(loss)) {
        Truth truth;
        gather_batch(loss, txt2img, i2t_target, absence, &truth);
        score_blocks(loss, &truth);
        truth_free(&truth);
    } else {
        Truth truth = {.positive = txt2img};
        if (absence)
            truth.absent = absence->absent, truth.named_start = absence->named_start, truth.named = absence->named;
        score_whole(loss, txt2img, i2t_target, &truth);
    }
}

void clip_loss_sum_stats(const ClipLoss *loss, float stats[INFONCE_NSTATS]) {
    const Dist *d = loss->cfg.dist;
    if (distributed(loss)) d->host->all_reduce(d, stats, INFONCE_NSTATS, DIST_F32, DIST_SUM);
}

float clip_loss_read(const ClipLoss *loss, float stats[INFONCE_NSTATS]) {
    float blocks[2 * INFONCE_NSTATS], sums[INFONCE_NSTATS];
    loss->be->to_host(blocks, loss->stats, sizeof(float) * INFONCE_NSTATS * (size_t)loss->blocks);
    for (int k = 0; k < INFONCE_NSTATS; k++)
        sums[k] = loss->blocks == 2 ? blocks[k] + blocks[INFONCE_NSTATS + k] : blocks[k];
    clip_loss_sum_stats(loss, sums);
    if (stats) memcpy(stats, sums, sizeof sums);
    return sums[INFONCE_LOSS];
}

float clip_loss_forward(ClipLoss *loss, const float *image_features, int Ni,
                        const float *text_features, int Nt, const int *txt2img,
                        const int *i2t_target, const ClipAbsence *absence, const float *logit_scale,
                        float fixed_scale, float stats[INFONCE_NSTATS]) {
    clip_loss_score(loss, image_features, Ni, text_features, Nt, txt2img, i2t_target, absence, logit_scale,
                    fixed_scale);
    return clip_loss_read(loss, stats);
}

/* ----------------------------------------------------------------------------
 * Backward: through cos = images @ texts^T (loss->cos, and cos_columns, hold dcos now) */

/* Data parallel: the gathered features' gradients go home by reduce-scatter (summed). */
static void send_home(ClipLoss *loss, float *d_mine, const float *d_all, const int *counts, int n) {
    const Dist *d = loss->cfg.dist;
    int *floats = times_dim(loss, counts);
    d->device->reduce_scatter(d, loss->d_home, d_all, floats);
    loss->be->accumulate(d_mine, loss->d_home, (size_t)n * loss->embed_dim);
    free(floats);
}

void clip_loss_backward(ClipLoss *loss, float *d_image_features, float *d_text_features) {
    const Backend *be = loss->be;
    int Ni = loss->n_images, Nt = loss->n_texts, D = loss->embed_dim;
    if (!distributed(loss)) {
        be->matmul_backward(d_image_features, d_text_features, NULL, loss->cos,
                            loss->image_features, loss->text_features, Ni, D, Nt);
        return;
    }
    int Nig = loss->n_images_global, Ntg = loss->n_texts_global;
    float *d_images_all = d_image_features ? loss->d_images_all : NULL;
    float *d_texts_all = d_text_features ? loss->d_texts_all : NULL;
    if (d_images_all) be->zero(d_images_all, sizeof(float) * (size_t)Nig * D);
    if (d_texts_all) be->zero(d_texts_all, sizeof(float) * (size_t)Ntg * D);
    /* rows: cos = my images @ all texts^T */
    be->matmul_backward(d_image_features, d_texts_all, NULL, loss->cos, loss->image_features,
                        loss->texts_all, Ni, D, Ntg);
    /* columns: cos = all images @ my texts^T */
    be->matmul_backward(d_images_all, d_text_features, NULL, loss->cos_columns, loss->images_all,
                        loss->text_features, Nig, D, Nt);
    if (d_text_features) send_home(loss, d_text_features, d_texts_all, loss->text_counts, Nt);
    if (d_image_features) send_home(loss, d_image_features, d_images_all, loss->image_counts, Ni);
}
