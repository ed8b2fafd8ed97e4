/*
 * encoder.c: inference through a loaded CLIP (encoder.h).
 */
#include "eval/encoder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/model_path.h" // defines: model_path_load
#include "util/common.h"   // defines: mallocCheck, read_file

int encoder_open(Encoder *enc, const char *model_path, int batch, const Backend *be, char *err,
                 size_t err_len) {
    memset(enc, 0, sizeof *enc);
    ClipConfig cfg;
    float *params = NULL;
    if (model_path_load(model_path, &cfg, &params, NULL, 0, err, err_len) != 0) return -1;
    Clip *model = clip_create(&cfg, be);
    clip_set_params(model, params);
    free(params);
    ClipTrainConfig inference = {.temperature = 1.0f, .train_vision = 0, .train_text = 0};
    clip_prepare(model, &inference, batch, batch);
    encoder_attach(enc, model);
    enc->owns_model = 1;
    return 0;
}

void encoder_attach(Encoder *enc, Clip *model) {
    memset(enc, 0, sizeof *enc);
    const ClipConfig *cfg = &model->cfg;
    enc->model = model;
    enc->tokenizer = tokenizer_load(NULL);
    enc->image_mode = IMAGE_EXACT;
    enc->dim = cfg->embed_dim;
    int batch = model->max_images > model->max_texts ? model->max_images : model->max_texts;
    enc->token_rows = mallocCheck(sizeof(int) * (size_t)batch * cfg->context_length);
    enc->pixels = mallocCheck(sizeof(float) * (size_t)batch * 3 * cfg->image_size * cfg->image_size);
}

void encoder_close(Encoder *enc) {
    if (enc->owns_model) clip_free(enc->model);
    if (enc->tokenizer) tokenizer_free(enc->tokenizer);
    free(enc->token_rows);
    free(enc->pixels);
    memset(enc, 0, sizeof *enc);
}

static void show_progress(const char *what, int done, int total) {
    fprintf(stderr, "\r  %s %d/%d", what, done, total);
    if (done == total) fputc('\n', stderr);
}

int encoder_images(Encoder *enc, const char *const *paths, int n, float *out, int progress,
                   char *err, size_t err_len) {
    Clip *m = enc->model;
    int R = m->cfg.image_size, batch = m->max_images;
    size_t image_floats = (size_t)3 * R * R;
    uint8_t *crop = mallocCheck((size_t)R * R * 3);
    int rc = 0;
    for (int start = 0; start < n && rc == 0; start += batch) {
        int count = n - start < batch ? n - start : batch;
        for (int i = 0; i < count && rc == 0; i++) {
            const char *path = paths[start + i];
            size_t size = 0;
            char *data = read_file(path, &size);
            if (!data) {
                snprintf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
                rc = -1;
                break;
            }
            char why[IMAGE_ERROR_SIZE];
            ImageStatus status = image_load_crop((const uint8_t *)data, size, R, enc->image_mode,
                                                 crop, why, sizeof why);
            free(data);
            if (status != IMAGE_OK) {
                snprintf(err, err_len, "%s: %s", path, why);
                rc = -1;
                break;
            }
            image_normalize_clip(crop, R, enc->pixels + (size_t)i * image_floats);
        }
        if (rc == 0) clip_encode_images(m, enc->pixels, count, out + (size_t)start * enc->dim);
        if (progress) show_progress("images", rc == 0 ? start + count : start, n);
    }
    free(crop);
    return rc;
}

void encoder_texts(Encoder *enc, const char *const *texts, int n, float *out, int progress) {
    Clip *m = enc->model;
    int ctx = m->cfg.context_length, batch = m->max_texts;
    for (int start = 0; start < n; start += batch) {
        int count = n - start < batch ? n - start : batch;
        memset(enc->token_rows, 0, sizeof(int) * (size_t)count * ctx);
        for (int i = 0; i < count; i++)
            tokenizer_encode(enc->tokenizer, texts[start + i], enc->token_rows + (size_t)i * ctx, ctx);
        clip_encode_texts(m, enc->token_rows, count, out + (size_t)start * enc->dim);
        if (progress) show_progress("texts", start + count, n);
    }
}
