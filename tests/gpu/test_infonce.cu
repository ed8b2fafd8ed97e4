/*
 * test_infonce.cu: the fused InfoNCE loss (kernels/infonce.cuh) against the CPU op: the whole
 * matrix and the row and column blocks of a data-parallel rank, with contradiction negatives
 * and the each-positive rows, up to TNG's 1024 x 3072, unmasked and with random exclusion
 * masks (InfonceTerms.exclude: a sparse one, and one so dense that columns and rows keep
 * little more than their positives); dcos to TOL, the statistics to 1e-6 absolute + TOL
 * relative; the scale given as a fixed value or read from backend memory (a learned
 * temperature), and that temperature's gradient (logit_scale_backward). The MCQ loss
 * (engine/mcq_loss.h: the op with a weight and each image's own options) on both backends. A
 * text-to-image block that lacks images is refused with a message.
 */
#include "expect_exit.h"   /* defines: run_in_child, child_said */
#include "gpu_test_util.h" /* defines: Pair, IntPair, cpu, gpu, check_scaled, gpu_test_init */
extern "C" {
#include "engine/mcq_loss.h" /* defines: McqLoss, mcq_loss_* */
}

/* TNG's shape: each image has 3 texts; some images pick one text, the rest the mean.
 * The call is the block of a global batch of Ni * ranks images that rank `rank` computes
 * (InfonceTerms): with ranks == 1 the whole matrix; otherwise `rows` selects image->text on
 * [its images x all texts], else text->image on [all images x its texts]. With `contra`,
 * each image's first text is a contradiction negative (txt2img -1) of weight 0.5; with
 * `each`, the mean-target rows use terms.i2t_each; with excluded > 0, that share of the pairs
 * (never a positive or target pair: the op's contract) is excluded by a random mask. With
 * `learned`, the scale is read from backend memory as ln(scale) (a learned temperature). */
static void infonce_case(int Ni, int per_image, float scale, int ranks, int rank, int rows,
                         int contra, int each, double excluded, int learned = 0) {
    char what[160];
    int Ni_g = Ni * ranks, scored_per_image = per_image - (contra ? 1 : 0);
    int Nt_g = Ni_g * scored_per_image;
    InfonceTerms terms = infonce_whole(Ni, Ni * scored_per_image);
    int block_Ni = Ni, block_Nt = Ni * per_image, first_text = 0;
    if (ranks > 1) {
        terms = InfonceTerms{rows, !rows, rows ? rank * Ni : 0, Ni_g, Nt_g, 0.0f, 0, NULL, 1.0f};
        block_Ni = rows ? Ni : Ni_g;
        block_Nt = rows ? Nt_g : Ni * per_image;
        first_text = rows ? 0 : rank * Ni * per_image;
    }
    if (contra)
        terms.negative_log_weight = logf(0.5f);
    terms.i2t_each = each;
    int *txt2img = (int *)mallocCheck(sizeof(int) * block_Nt),
        *target = (int *)mallocCheck(sizeof(int) * block_Ni);
    for (int t = 0; t < block_Nt; t++)
        txt2img[t] = contra && (first_text + t) % per_image == 0 ? -1 /* targets skip text 0 */
                                                                 : (first_text + t) / per_image;
    for (int i = 0; i < block_Ni; i++) {
        int g = terms.first_image + i;
        int pick = contra ? 1 + g % (per_image - 1) : g % per_image; /* never a -1 text */
        target[i] = g % 3 == 0 ? -1 : g * per_image + pick;
    }
    size_t n_pairs = (size_t)block_Ni * block_Nt;
    unsigned char *exclude = (unsigned char *)mallocCheck(n_pairs), *exclude_dev = NULL;
    for (int i = 0; i < block_Ni; i++)
        for (int t = 0; t < block_Nt; t++) {
            int kept = txt2img[t] == terms.first_image + i || ((rows || ranks == 1) && target[i] == t);
            exclude[(size_t)i * block_Nt + t] = !kept && rng_uniform(&gpu_test_rng) < excluded;
        }
    InfonceTerms cpu_terms = terms, gpu_terms = terms;
    if (excluded > 0) {
        exclude_dev = (unsigned char *)gpu->alloc(n_pairs);
        gpu->to_device(exclude_dev, exclude, n_pairs);
        cpu_terms.exclude = exclude;
        gpu_terms.exclude = exclude_dev;
    }
    IntPair t2i = int_pair(txt2img, block_Nt), i2t = int_pair(target, block_Ni);
    Pair cos = pair_random_away_from_zero((size_t)block_Ni * block_Nt);
    for (size_t k = 0; k < cos.n; k++)
        cos.host[k] *= 0.4f; /* |cos| in [0.2, 0.6) */
    pair_upload(cos);
    Pair stats = pair_poisoned(INFONCE_NSTATS), log_scale = pair_alloc(1);
    log_scale.host[0] = logf(scale);
    pair_upload(log_scale);
    /* in place, as the model calls it: dcos overwrites cos */
    cpu->infonce_forward_backward(cos.host, stats.host, cos.host, t2i.host, i2t.host,
                                  learned ? log_scale.host : NULL, scale, block_Ni, block_Nt, &cpu_terms);
    gpu->infonce_forward_backward(cos.dev, stats.dev, cos.dev, t2i.dev, i2t.dev, learned ? log_scale.dev : NULL,
                                  scale, block_Ni, block_Nt, &gpu_terms);
    const char *kind = ranks == 1 ? "whole" : rows ? "row block" : "column block";
    char label[128];
    snprintf(label, sizeof label, "%d x %d scale %g%s (%s%s%s, %.0f%% excluded)", block_Ni, block_Nt,
             scale, learned ? " learned" : "", kind, contra ? ", contradictions" : "", each ? ", each" : "",
             100 * excluded);
    snprintf(what, sizeof what, "infonce dcos %s", label);
    check_scaled(what, cos, TOL);
    snprintf(what, sizeof what, "infonce stats %s", label);
    pair_check(what, stats, 1e-6, TOL);
    free(txt2img), free(target), free(exclude);
    if (exclude_dev)
        gpu->release(exclude_dev);
    int_pair_free(t2i), int_pair_free(i2t);
    pair_free(cos), pair_free(stats), pair_free(log_scale);
}

static void test_infonce(void) {
    const double masks[] = {0, 0.4, 0.97}; /* none, sparse, nearly all */
    for (int m = 0; m < 3; m++)
        for (int each = 0; each <= 1; each++)
            for (int contra = 0; contra <= 1; contra++) {
                infonce_case(5, 3, 14.285714f, 1, 0, 0, contra, each, masks[m]);
                infonce_case(5, 3, 14.285714f, 3, 1, 1, contra, each, masks[m]); /* rank 1 of 3: its rows */
                infonce_case(5, 3, 14.285714f, 3, 1, 0, contra, each, masks[m]);
            }
    infonce_case(5, 3, 14.285714f, 1, 0, 0, 1, 0, 0.4, 1); /* the scale read from backend memory */
    infonce_case(5, 3, 20.0f, 3, 1, 0, 0, 1, 0, 1);
    if (quick)
        return;
    infonce_case(1024, 3, 14.285714f, 1, 0, 0, 0, 0, 0); /* the 1024 x 3072 of a TNG batch */
    infonce_case(1024, 4, 14.285714f, 1, 0, 0, 1, 0, 0); /* the same with one contradiction each */
    infonce_case(1024, 4, 14.285714f, 1, 0, 0, 1, 1, 0); /* ... each positive against the negatives */
    infonce_case(333, 1, 100.0f, 1, 0, 0, 0, 0, 0);      /* plain CLIP, the largest logit scale */
    infonce_case(256, 3, 14.285714f, 8, 5, 1, 0, 0, 0);  /* 8 ranks of 256: 256 x 6144 */
    infonce_case(256, 3, 14.285714f, 8, 5, 0, 0, 0, 0);  /* 2048 x 768 */
    infonce_case(512, 4, 14.285714f, 1, 0, 0, 1, 1, 0.6); /* masked, each, contradictions */
    infonce_case(256, 3, 14.285714f, 4, 2, 1, 0, 1, 0.6); /* a masked row block */
    infonce_case(256, 3, 14.285714f, 4, 2, 0, 0, 0, 0.6); /* a masked column block */
}

/* The learned temperature's gradient: dlogit_scale += (the blocks' dscale summed in order) *
 * expf(logit_scale), accumulated. The CPU's float operations; the device's expf may differ from
 * the host's by an ulp, hence the 1e-6 relative tolerance (bit for bit on the emulator). */
static void test_logit_scale_backward(void) {
    for (int blocks = 1; blocks <= 2; blocks++) {
        Pair stats = pair_random(2 * INFONCE_NSTATS, 0.5), log_scale = pair_random(1, 1.0);
        Pair dlogit = pair_random(1, 1.0); /* it adds: a random start */
        cpu->logit_scale_backward(dlogit.host, stats.host, blocks, log_scale.host);
        gpu->logit_scale_backward(dlogit.dev, stats.dev, blocks, log_scale.dev);
        pair_check(blocks == 1 ? "logit_scale_backward, one block" : "logit_scale_backward, two blocks", dlogit, 0,
                   1e-6);
        pair_free(stats), pair_free(log_scale), pair_free(dlogit);
    }
}

/* The MCQ loss (engine/mcq_loss.h) on both backends: its mask (each image's own options, an
 * image without a question its first alone), the op's weight 2W, the learned scale and its
 * gradient, the features' gradients through the matmuls. Unit features, so TOL as above. */
static void mcq_case(int Ni, int D, float weight) {
    const int K = 4;
    Pair images = pair_random((size_t)Ni * D, 1.0), options = pair_random((size_t)K * Ni * D, 1.0);
    Pair *rows[2] = {&images, &options};
    for (int p = 0; p < 2; p++) { /* unit rows: cosines */
        for (size_t r = 0; r < rows[p]->n / D; r++) {
            double norm = 0;
            for (int d = 0; d < D; d++) norm += rows[p]->host[r * D + d] * rows[p]->host[r * D + d];
            for (int d = 0; d < D; d++) rows[p]->host[r * D + d] = (float)(rows[p]->host[r * D + d] / sqrt(norm));
        }
        pair_upload(*rows[p]);
    }
    int *answer = (int *)mallocCheck(sizeof(int) * Ni);
    for (int i = 0; i < Ni; i++) answer[i] = i % 5 == 1 ? -1 : (int)rng_below(&gpu_test_rng, K);
    Pair d_images = pair_random((size_t)Ni * D, 0.1), d_options = pair_random((size_t)K * Ni * D, 0.1);
    Pair log_scale = pair_alloc(1), d_scale = pair_random(1, 0.1);
    log_scale.host[0] = logf(14.285714f);
    pair_upload(log_scale);
    McqLoss *on_cpu = mcq_loss_create(cpu, D), *on_gpu = mcq_loss_create(gpu, D);
    mcq_loss_prepare(on_cpu, NULL, weight, K, Ni);
    mcq_loss_prepare(on_gpu, NULL, weight, K, Ni);
    mcq_loss_score(on_cpu, images.host, options.host, Ni, answer, log_scale.host, 0.0f);
    mcq_loss_score(on_gpu, images.dev, options.dev, Ni, answer, log_scale.dev, 0.0f);
    mcq_loss_backward(on_cpu, d_images.host, d_options.host, d_scale.host, log_scale.host);
    mcq_loss_backward(on_gpu, d_images.dev, d_options.dev, d_scale.dev, log_scale.dev);
    float got[INFONCE_NSTATS], want[INFONCE_NSTATS];
    gpu->to_host(got, on_gpu->stats, sizeof got);
    memcpy(want, on_cpu->stats, sizeof want);
    char what[96];
    snprintf(what, sizeof what, "mcq loss stats, %d images, weight %g", Ni, weight);
    harness_allclose(what, got, want, INFONCE_NSTATS, 1e-6, TOL);
    CHECK(want[INFONCE_LOSS] > 0, "%s: a loss of %g", what, want[INFONCE_LOSS]);
    snprintf(what, sizeof what, "mcq loss d_images, %d images, weight %g", Ni, weight);
    check_scaled(what, d_images, TOL);
    snprintf(what, sizeof what, "mcq loss d_options, %d images, weight %g", Ni, weight);
    check_scaled(what, d_options, TOL);
    snprintf(what, sizeof what, "mcq loss dlogit_scale, %d images, weight %g", Ni, weight);
    pair_check(what, d_scale, 1e-6, TOL);
    mcq_loss_free(on_cpu), mcq_loss_free(on_gpu);
    free(answer);
    PAIRS_FREE(images, options, d_images, d_options, log_scale, d_scale);
}

static void test_mcq_loss(void) {
    mcq_case(7, 16, 1.5f);
    mcq_case(33, 32, 0.25f);
    if (!quick)
        mcq_case(256, 64, 2.0f);
}

/* The text-to-image term on the rows of one rank: its column softmax would miss the other
 * ranks' images. */
static void call_column_term_on_row_block(void *unused) {
    const int Ni = 4, Nt = 12;
    int txt2img[Nt], target[Ni];
    for (int t = 0; t < Nt; t++)
        txt2img[t] = t / 3;
    for (int i = 0; i < Ni; i++)
        target[i] = -1;
    IntPair t2i = int_pair(txt2img, Nt), i2t = int_pair(target, Ni);
    Pair cos = pair_random((size_t)Ni * Nt, 0.3), stats = pair_poisoned(INFONCE_NSTATS);
    InfonceTerms terms = {1, 1, Ni, 2 * Ni, Nt, 0.0f, 0, NULL, 1.0f}; /* rows [4, 8) of 8 images */
    gpu->infonce_forward_backward(cos.dev, stats.dev, cos.dev, t2i.dev, i2t.dev, NULL, 14.0f, Ni, Nt,
                                  &terms);
}

static void test_infonce_refuses_partial_columns(void) {
    ChildEnd end = run_in_child(call_column_term_on_row_block, NULL);
    CHECK(end.exited && end.code == 1 && child_said(&end, "the column term needs all the images"),
          "exited %d code %d: %s", end.exited, end.code, end.message);
}

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_infonce);
    RUN_TEST(test_logit_scale_backward);
    RUN_TEST(test_mcq_loss);
    RUN_TEST(test_infonce_refuses_partial_columns);
    return test_summary();
}
