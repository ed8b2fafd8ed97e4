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

#include "util/cli.h"       // defines: CliOption, cli_getopt_table, cli_usage, cli_long
#include "util/common.h"    // defines: die, mallocCheck, write_file_atomic
#include "util/escape.h"    // defines: tsv_write_field
#include "eval/encoder.h"   // defines: Encoder, encoder_open, encoder_images, encoder_texts
#include "text/tokenizer.h" // defines: TOKEN_EOT

static const CliOption OPTIONS[] = {
    {"model", "DIR", "HF CLIP directory (config.json + model.safetensors) or tng checkpoint"},
    {"image", "PATH", "a JPEG image to embed (repeatable)"},
    {"text", "STRING", "a text to embed (repeatable)"},
    {"npy", "FILE", "write the [N, D] float32 matrix as .npy instead of text lines"},
    {"batch", "N", "images or texts per forward pass (default 32)"},
    {"help", NULL, "show this help"},
};
enum { OPT_MODEL, OPT_IMAGE, OPT_TEXT, OPT_NPY, OPT_BATCH, OPT_HELP, N_OPTIONS };

static void usage(FILE *out) {
    cli_usage(out, "tng_embed", "--model DIR [--image PATH]... [--text STRING]... [--npy FILE]",
              "Prints one line per input, in order: image|text <TAB> input <TAB> the components\n"
              "of its L2-normalised embedding (%.7g, tab-separated). In the input field a tab,\n"
              "newline, carriage return and backslash are written \\t \\n \\r \\\\. Vocabulary: $TNG_VOCAB or\n"
              TOKENIZER_DEFAULT_VOCAB ".",
              OPTIONS, N_OPTIONS);
}

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
    const char *model_dir = NULL, *npy = NULL;
    int batch = 32, n_inputs = 0;
    /* inputs in command-line order: is_image[k], value[k] */
    int *is_image = mallocCheck(sizeof(int) * (size_t)argc);
    const char **value = mallocCheck(sizeof(char *) * (size_t)argc);
    struct option *table = cli_getopt_table(OPTIONS, N_OPTIONS);
    for (int opt; (opt = getopt_long(argc, argv, "", table, NULL)) != -1;) {
        switch (opt - CLI_OPTION_BASE) {
        case OPT_MODEL: model_dir = optarg; break;
        case OPT_IMAGE:
        case OPT_TEXT:
            is_image[n_inputs] = opt - CLI_OPTION_BASE == OPT_IMAGE;
            value[n_inputs++] = optarg;
            break;
        case OPT_NPY: npy = optarg; break;
        case OPT_BATCH: batch = (int)cli_long("batch", optarg, 1, 4096); break;
        case OPT_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    free(table);
    if (optind < argc || !model_dir || n_inputs == 0) {
        if (optind < argc) fprintf(stderr, "tng_embed: unexpected argument '%s'\n", argv[optind]);
        else fprintf(stderr, "tng_embed: give --model and at least one --image or --text\n");
        usage(stderr);
        return 2;
    }
    Encoder enc;
    char err[1024];
    if (encoder_open(&enc, model_dir, batch, err, sizeof err) != 0) die("tng_embed: %s", err);
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
