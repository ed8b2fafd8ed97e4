/*
 * tng_embed: L2-normalised CLIP embeddings of images and texts, for checks from outside.
 *
 *   tng_embed --model DIR [--image PATH]... [--text STRING]... [--npy FILE]
 *
 * One output line per input, in command-line order, tab-separated: "image" or "text", the
 * path or string (tabs, line breaks and backslashes escaped as \t \n \r \\, escape.h, so
 * one input is always one line), then the D components formatted %.7g. With --npy the [N, D] float32 matrix
 * goes to FILE (NumPy .npy v1.0) instead. Images get the exact CLIP preprocessing (image.h),
 * texts the CLIP tokenizer, both through encoder.h as in tng_eval. A bad image or a missing
 * model is an error (exit 1), never a silent row of zeros.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cli.h"       // defines: CliOption, CliProgram, cli_parse, cli_fail, CLI_* row specs
#include "util/common.h"    // defines: die, mallocCheck, write_file_atomic
#include "util/escape.h"    // defines: tsv_write_field
#include "engine/backend.h" // defines: backend_select, BACKEND_OPTION_ROW
#include "eval/encoder.h"   // defines: Encoder, encoder_open, encoder_images, encoder_texts
#include "text/tokenizer.h" // defines: TOKEN_EOT

typedef struct {
    const char *model, *npy;
    int batch;
    int precision; /* Precision */
    int backend; /* BackendChoice */
    /* the inputs in command-line order: is_image[k], value[k] (room for one per argument) */
    int n_inputs, *is_image;
    const char **value;
} EmbedArgs;

/* X(ID, SHORT, NAME, METAVAR, DEFAULT, TYPE, HELP): see util/cli.h */
#define EMBED_OPTIONS(X)                                                                                     \
    X(MODEL, 0, "model", "DIR", NULL, CLI_STRING(model),                                                     \
      "HF CLIP directory (config.json + model.safetensors) or tng checkpoint")                               \
    X(IMAGE, 0, "image", "PATH", NULL, CLI_CUSTOM(value, const char **, push_input),                         \
      "a JPEG image to embed (repeatable)")                                                                  \
    X(TEXT, 0, "text", "STRING", NULL, CLI_CUSTOM(value, const char **, push_input),                         \
      "a text to embed (repeatable)")                                                                        \
    X(NPY, 0, "npy", "FILE", NULL, CLI_STRING(npy),                                                          \
      "write the [N, D] float32 matrix as .npy instead of text lines")                                       \
    X(BATCH, 0, "batch", "N", "32", CLI_INT(batch, 1, 4096), "images or texts per forward pass")             \
    BACKEND_OPTION_ROWS(X, CLI_AS_IS, backend, precision)                                                    \
    X(HELP, 0, "help", NULL, NULL, CLI_HELP, "show this help")

enum { EMBED_OPTIONS(CLI_ENUM_ROW) N_OPTIONS };

/* --image and --text: one more input, in command-line order. */
static void push_input(const CliProgram *prog, const CliOption *opt, const char *value, void *args) {
    EmbedArgs *a = args;
    a->is_image[a->n_inputs] = opt->id == OPT_IMAGE;
    a->value[a->n_inputs++] = value;
}


#define CLI_ARGS EmbedArgs
CLI_PROGRAM(EMBED_OPTIONS, "tng_embed", "--model DIR [--image PATH]... [--text STRING]... [--npy FILE]",
            "Prints one line per input, in order: image|text <TAB> input <TAB> the components\n"
            "of its L2-normalised embedding (%.7g, tab-separated). In the input field a tab,\n"
            "newline, carriage return and backslash are written \\t \\n \\r \\\\. Vocabulary: $TNG_VOCAB or\n"
            TOKENIZER_DEFAULT_VOCAB ".");

/* NumPy .npy version 1.0: magic, header length, a Python dict literal padded with spaces to
 * a multiple of 64 bytes (ending in '\n'), then the little-endian data. */
static void write_npy(const char *path, const float *data, int rows, int cols) {
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }",
                     rows, cols);
    size_t header_len = ((10 + (size_t)n + 1 + 63) / 64) * 64 - 10;
    size_t data_bytes = sizeof(float) * (size_t)rows * cols, size = 10 + header_len + data_bytes;
    unsigned char *buf = mallocCheck(size);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(header_len & 0xff);
    buf[9] = (unsigned char)(header_len >> 8);
    memset(buf + 10, ' ', header_len);
    memcpy(buf + 10, dict, (size_t)n);
    buf[10 + header_len - 1] = '\n';
    memcpy(buf + 10 + header_len, data, data_bytes);
    if (write_file_atomic(path, buf, size) != 0) die("tng_embed: cannot write %s", path);
    free(buf);
}

int main(int argc, char **argv) {
    EmbedArgs args = {.is_image = mallocCheck(sizeof(int) * (size_t)argc),
                      .value = mallocCheck(sizeof(char *) * (size_t)argc)};
    cli_parse(&PROGRAM, argc, argv, &args, NULL);
    if (!args.model || args.n_inputs == 0) cli_fail(&PROGRAM, "give --model and at least one --image or --text");
    const char *model_dir = args.model, *npy = args.npy, **value = args.value;
    int batch = args.batch, n_inputs = args.n_inputs, *is_image = args.is_image;
    Encoder enc;
    char err[1024];
    char backend[256];
    const Backend *be =
        backend_select((BackendChoice)args.backend, (Precision)args.precision, 0, backend, sizeof backend);
    if (encoder_open(&enc, model_dir, batch, be, err, sizeof err) != 0) die("tng_embed: %s", err);
    if (enc.model->cfg.vocab_size != TOKEN_EOT + 1)
        die("tng_embed: %s has vocab_size %d; the CLIP tokenizer needs %d (EOT = %d)", model_dir,
            enc.model->cfg.vocab_size, TOKEN_EOT + 1, TOKEN_EOT);
    /* embed all images together and all texts together, then restore the order */
    const int D = enc.dim;
    const char **images = mallocCheck(sizeof(char *) * n_inputs), **texts = mallocCheck(sizeof(char *) * n_inputs);
    int n_images = 0, n_texts = 0;
    for (int k = 0; k < n_inputs; k++) {
        if (is_image[k]) images[n_images++] = value[k];
        else texts[n_texts++] = value[k];
    }
    float *image_emb = mallocCheck(sizeof(float) * (size_t)(n_images + 1) * D);
    float *text_emb = mallocCheck(sizeof(float) * (size_t)(n_texts + 1) * D);
    if (n_images && encoder_images(&enc, images, n_images, image_emb, 0, err, sizeof err) != 0)
        die("tng_embed: %s", err);
    if (n_texts) encoder_texts(&enc, texts, n_texts, text_emb, 0);
    float *all = mallocCheck(sizeof(float) * (size_t)n_inputs * D);
    for (int k = 0, i = 0, t = 0; k < n_inputs; k++) {
        const float *row = is_image[k] ? image_emb + (size_t)i++ * D : text_emb + (size_t)t++ * D;
        memcpy(all + (size_t)k * D, row, sizeof(float) * D);
    }
    if (npy) {
        write_npy(npy, all, n_inputs, D);
    } else {
        for (int k = 0; k < n_inputs; k++) {
            printf("%s\t", is_image[k] ? "image" : "text");
            tsv_write_field(stdout, value[k]);
            for (int d = 0; d < D; d++) printf("\t%.7g", all[(size_t)k * D + d]);
            putchar('\n');
        }
        if (fflush(stdout) != 0) die("tng_embed: error writing stdout");
    }
    free(all);
    free(image_emb);
    free(text_emb);
    free(images);
    free(texts);
    free(is_image);
    free(value);
    encoder_close(&enc);
    return 0;
}
