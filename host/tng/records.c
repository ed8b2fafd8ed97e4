/*
 * records.c: TNG texts as TSV rows or JSON lines (records.h).
 */
#include "tng/records.h"

#include "tng/batch.h"    // defines: tng_caption_text
#include "util/escape.h"  // defines: tsv_write_field, json_write_string

const char *const tng_kind_names[] = {"original", "hybrid", "full", "false-hybrid", "false-full",
                                      "swapped-hybrid", "false-affirm", "standalone",
                                      "mcq-true", "mcq-false", "mcq-none"};
_Static_assert(sizeof(tng_kind_names) / sizeof(tng_kind_names[0]) == TNG_N_KINDS,
               "a name per TngTextKind");

int tng_record_image(const TngRecordFrame *f, int pool_position) {
    if (pool_position < 0) return -1;
    return f->own_at ? pool_position : pool_position * f->world + f->rank;
}

int tng_text_tokens(const TngTexts *t, int text) {
    const int *row = t->tokens + (size_t)text * t->context;
    int n = 1;
    while (n < t->context && row[n - 1] != TOKEN_EOT) n++;
    return n;
}

void tng_records_tsv_header(FILE *out) { fputs("batch\timage\tid\tkind\tobject\tsource\ttext\n", out); }

void tng_records_write(FILE *out, const TngTexts *t, int n_texts, const TngRecordFrame *f,
                       const Lexicon *lex, int json, long step) {
    for (int k = 0; k < n_texts; k++) {
        int j = k % t->n_images; /* batch.h: texts come in groups of one per image */
        int image = tng_record_image(f, f->own_at ? f->own_at[j] : j);
        TngTextKind kind = t->kind[k];
        int source = tng_record_image(f, kind == TNG_HYBRID ? t->object_from[j] : t->source_image[k]);
        const char *object = t->text_object[k] >= 0 ? lex->lemma[t->text_object[k]] : NULL;
        if (json) {
            fputc('{', out);
            if (step >= 0) fprintf(out, "\"step\": %ld, ", step);
            fprintf(out, "\"batch\": %lld, \"image\": %d, \"id\": ", (long long)f->batch, image);
            json_write_string(out, f->ids[j]);
            fprintf(out, ", \"kind\": \"%s\", \"object\": ", tng_kind_names[kind]);
            if (object) json_write_string(out, object);
            else fputs("null", out);
            fprintf(out, ", \"source\": %d, ", source);
            if (kind == TNG_HYBRID && t->object_preferred[j]) fputs("\"preferred\": true, ", out);
            fputs("\"text\": ", out);
            json_write_string(out, t->texts[k]);
            fprintf(out, ", \"tokens\": %d, \"cut\": %s}\n", tng_text_tokens(t, k), t->cut[k] ? "true" : "false");
        } else {
            fprintf(out, "%lld\t%d\t", (long long)f->batch, image);
            tsv_write_field(out, f->ids[j]);
            fprintf(out, "\t%s\t%s\t%d\t", tng_kind_names[kind], object ? object : "", source);
            tsv_write_field(out, t->texts[k]);
            fputc('\n', out);
        }
    }
}
