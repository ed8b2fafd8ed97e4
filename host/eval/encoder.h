/*
 * encoder.h: a trained CLIP ready for inference: load a model directory, then turn image
 * files and strings into L2-normalised embeddings. The programs that embed things
 * (tng_eval, tng_embed) share it, so images and texts reach the model one way only:
 * exact CLIP preprocessing (image.h) and the CLIP tokenizer.
 */
#ifndef TNG_ENCODER_H
#define TNG_ENCODER_H

#include <stddef.h>

#include "dataset/image.h"     // defines: ImageMode
#include "engine/model.h"     // defines: Clip
#include "text/tokenizer.h" // defines: Tokenizer

typedef struct {
    Clip *model;
    int owns_model;  /* 1 when encoder_open loaded it */
    Tokenizer *tokenizer;
    ImageMode image_mode;
    int dim;  /* embedding size D */
    int *token_rows; /* scratch: one batch of padded token rows */
    float *pixels;   /* scratch: one batch of preprocessed images */
} Encoder;

/*
 * Loads a model from any path io/model_path.h accepts (an HF CLIP directory, a tng
 * checkpoint, or a tng run directory: its latest checkpoint) onto backend be. batch bounds how
 * many images or texts go through the model at once. Returns 0, or -1 with a message.
 */
int encoder_open(Encoder *enc, const char *model_path, int batch, const Backend *be, char *err,
                 size_t err_len);
/* Borrows a prepared model (a training run evaluating itself): the encoder uses its
 * max_images / max_texts as the batch and overwrites its activations. */
void encoder_attach(Encoder *enc, Clip *model);
void encoder_close(Encoder *enc);

/* Embeds image files into out [n, D]. Fails (returns -1, message names the file) on the first
 * image that cannot be read or decoded. progress: print a progress line on stderr. */
int encoder_images(Encoder *enc, const char *const *paths, int n, float *out, int progress,
                   char *err, size_t err_len);
/* Embeds strings into out [n, D]. */
void encoder_texts(Encoder *enc, const char *const *texts, int n, float *out, int progress);

#endif
