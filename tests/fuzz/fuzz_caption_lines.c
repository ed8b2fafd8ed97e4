/*
 * fuzz_caption_lines.c: libFuzzer target for tng_negate's input path on arbitrary bytes:
 * captions one per line (dataset/caption_lines.h), their bag-of-words embeddings
 * (tng/caption_embed.h), the caption grammar (tng/grammar.h), the TNG generator on up to 8 of
 * them and the TSV and JSON records of its texts (tng/records.h).
 *
 * Invariants checked (a broken one is __builtin_trap):
 *   - every item holds one caption, non-blank, without '\n' or NUL; ids are increasing line numbers;
 *   - embedding rows are finite, of norm 0 or 1;
 *   - a noun phrase never outgrows caption_phrase_capacity;
 *   - TSV and JSON records are one line per text, whatever the captions hold.
 * The vocabulary and lexicon are loaded once, from data/cache/ relative to the repository root.
 * Run: make fuzz && build-fuzz/fuzz/fuzz_caption_lines -max_total_time=600
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/caption_lines.h" // defines: caption_lines_parse
#include "tng/caption_embed.h"     // defines: caption_embed_items
#include "tng/grammar.h"           // defines: caption_read, caption_noun_phrase
#include "tng/records.h"           // defines: tng_records_write

enum { MAX_POOL = 8, DIM = 32 };

static Lexicon *lex;
static Tokenizer *tok;
static TngGenerator *gen;

static size_t count_lines(const char *text, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!lex) { /* kept for the whole run: one load, never a leak */
        lex = lexicon_load(NULL);
        tok = tokenizer_load(NULL);
        TngConfig cfg;
        tng_config_default(&cfg);
        cfg.contradictions = 4;
        gen = tng_generator_create(&cfg, lex, tok);
    }
    Dataset ds = {0};
    char err[256];
    if (caption_lines_parse((const char *)data, size, "fuzz", &ds, err, sizeof err) != 0) {
        dataset_free(&ds);
        return 0;
    }
    long last_line = 0;
    for (int k = 0; k < ds.count; k++) {
        const DatasetItem *item = &ds.items[k];
        if (item->n_captions != 1 || strchr(item->captions[0], '\n') || !item->captions[0][0]) __builtin_trap();
        long line = strtol(item->source_id, NULL, 10);
        if (line <= last_line) __builtin_trap();
        last_line = line;
        CaptionReading r = {0};
        size_t len = strlen(item->captions[0]);
        char *phrase = malloc(caption_phrase_capacity(len));
        caption_read(&r, lex, item->captions[0], len);
        if (caption_noun_phrase(&r, item->captions[0], len, phrase) > caption_phrase_capacity(len)) __builtin_trap();
        free(phrase);
        caption_reading_free(&r);
    }
    int n = ds.count < MAX_POOL ? ds.count : MAX_POOL;
    if (n > 0) {
        float *emb = malloc(sizeof(float) * (size_t)ds.count * DIM);
        caption_embed_items(&ds, lex, DIM, emb);
        for (int k = 0; k < ds.count; k++) {
            double norm = 0;
            for (int d = 0; d < DIM; d++) norm += (double)emb[k * DIM + d] * emb[k * DIM + d];
            if (!isfinite(norm) || (norm != 0 && fabs(norm - 1) > 1e-4)) __builtin_trap();
        }
        const char *captions[MAX_POOL], *ids[MAX_POOL];
        for (int k = 0; k < n; k++) captions[k] = ds.items[k].captions[0], ids[k] = ds.items[k].source_id;
        TngTexts t = {0};
        tng_make_texts(gen, captions, emb, n, DIM, NULL, n, 0, &t);
        TngRecordFrame frame = {.world = 1, .ids = ids};
        for (int json = 0; json <= 1; json++) {
            char *buf = NULL;
            size_t len = 0;
            FILE *mem = open_memstream(&buf, &len);
            tng_records_write(mem, &t, t.n_texts, &frame, lex, json, -1);
            fclose(mem);
            if (count_lines(buf, len) != (size_t)t.n_texts) __builtin_trap();
            free(buf);
        }
        tng_texts_free(&t);
        free(emb);
    }
    dataset_free(&ds);
    return 0;
}
