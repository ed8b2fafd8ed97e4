/*
 * stats.c: summary numbers of TNG batches (stats.h).
 *
 * Counts only: every number printed is a count or a ratio of two, so two runs over the same
 * data and seed print the same summary.
 */
#include "tng/stats.h"

#include <stdlib.h>
#include <string.h>

#include "tng/batch.h"    // defines: tng_caption_text
#include "tng/grammar.h"  // defines: CaptionReading, caption_read, lexicon_object
#include "tng/records.h"  // defines: tng_kind_names, tng_text_tokens
#include "util/common.h"  // defines: callocCheck

enum { N_KINDS = TNG_N_KINDS };

struct TngStats {
    const Lexicon *lex;
    long batches, images;
    long texts[N_KINDS], cut[N_KINDS], tokens[N_KINDS], longest[N_KINDS];
    long nearest, farther, farther_rank_sum, fallback; /* where hybrid objects came from */
    long preferred; /* ...from the image's preferred neighbour (its twin), not in the three above */
    long *object_count; /* [n_lemmas] images whose object it is */
    /* what reads badly (grammar.h): objects that are scenes, body parts, or in their source
     * caption only a compound's first part, a frame or portion, or a verb; clause captions */
    long scene_objects, body_objects, non_object_uses, checked_sources;
    long clause_captions, full_of_clause, full_quoting_clause;
    CaptionReading reading;
};

TngStats *tng_stats_create(const Lexicon *lex) {
    TngStats *s = callocCheck(1, sizeof *s);
    s->lex = lex;
    s->object_count = callocCheck((size_t)lex->n_lemmas, sizeof(long));
    return s;
}

void tng_stats_free(TngStats *s) {
    if (!s) return;
    caption_reading_free(&s->reading);
    free(s->object_count);
    free(s);
}

/* Whether lemma occurs in caption text as an object (grammar.h), not only as a compound's
 * first part, a frame, a portion or a verb. */
static int names_as_object(TngStats *s, const char *text, int lemma) {
    caption_read(&s->reading, s->lex, text, strlen(text));
    for (int w = 0; w < s->reading.n; w++)
        if (s->reading.words[w].lemma == lemma && s->reading.words[w].object) return 1;
    return 0;
}

/* Whether text quotes caption as written (its first letter's case aside), trailing punctuation
 * and white space left out. */
static int quotes(const char *text, const char *caption) {
    while (*caption == ' ') caption++;
    size_t n = strlen(caption);
    while (n > 1 && strchr(" .!?,;:", caption[n - 1])) n--;
    if (n < 2) return 0;
    for (const char *p = text; (p = strchr(p + 1, caption[1])) != NULL;)
        if (strncmp(p, caption + 1, n - 1) == 0) return 1;
    return 0;
}

/* The clause and quoting counts of texts whose captions all sit in this batch. */
static void add_clauses(TngStats *s, const TngTexts *t) {
    TngLayout captions = tng_layout_captions(t->n_images);
    for (int j = 0; j < t->n_images; j++) {
        const char *c = t->texts[tng_caption_text(&captions, j)];
        caption_read(&s->reading, s->lex, c, strlen(c));
        s->clause_captions += s->reading.clause;
    }
    for (int k = 0; k < t->n_texts; k++) {
        if (t->kind[k] != TNG_FULL) continue;
        const char *source = t->texts[tng_caption_text(&captions, t->source_image[k])];
        caption_read(&s->reading, s->lex, source, strlen(source));
        if (!s->reading.clause) continue;
        s->full_of_clause++;
        s->full_quoting_clause += quotes(t->texts[k], source);
    }
}

void tng_stats_add(TngStats *s, const TngTexts *t) {
    s->batches++;
    s->images += t->n_images;
    for (int k = 0; k < t->n_texts; k++) {
        TngTextKind kind = t->kind[k];
        int n = tng_text_tokens(t, k);
        s->texts[kind]++;
        s->cut[kind] += t->cut[k];
        s->tokens[kind] += n;
        if (n > s->longest[kind]) s->longest[kind] = n;
    }
    for (int j = 0; j < t->n_images; j++) {
        int rank = t->object_rank[j];
        if (t->object_preferred[j]) s->preferred++;
        else if (rank == 0) s->nearest++;
        else if (rank > 0) s->farther++, s->farther_rank_sum += rank;
        else s->fallback++;
        int object = t->object_lemma[j];
        s->object_count[object]++;
        s->scene_objects += s->lex->scene[object];
        s->body_objects += strcmp(s->lex->category[object], "body") == 0;
        if (rank >= 0 && t->n_pool == t->n_images) { /* the source caption is in this batch */
            s->checked_sources++;
            s->non_object_uses += lexicon_object(s->lex, object) && !names_as_object(s, t->texts[t->object_from[j]], object);
        }
    }
    if (t->n_pool == t->n_images) add_clauses(s, t);
}

static double percent(long part, long whole) { return whole > 0 ? 100.0 * (double)part / (double)whole : 0.0; }

/* qsort_r order of ids: by counts[id] descending, then by id. */
static int by_count(const void *a, const void *b, void *counts_arg) {
    const long *counts = counts_arg;
    int x = *(const int *)a, y = *(const int *)b;
    if (counts[x] != counts[y]) return counts[x] < counts[y] ? 1 : -1;
    return x - y;
}

static void print_ranked(FILE *out, const char *const *names, const long *counts, int n, int top, long whole) {
    int *ids = callocCheck((size_t)n, sizeof(int));
    for (int k = 0; k < n; k++) ids[k] = k;
    qsort_r(ids, (size_t)n, sizeof(int), by_count, (void *)counts);
    for (int k = 0; k < n && k < top && counts[ids[k]] > 0; k++)
        fprintf(out, "  %-20s %8ld  %5.1f%%\n", names[ids[k]], counts[ids[k]], percent(counts[ids[k]], whole));
    free(ids);
}

void tng_stats_print(const TngStats *s, FILE *out, int top) {
    const Lexicon *lex = s->lex;
    fprintf(out, "batches %ld, images %ld\n\n", s->batches, s->images);
    fprintf(out, "texts by kind          count   mean tokens   longest   cut to fit\n");
    for (int k = 0; k < N_KINDS; k++) {
        if (!s->texts[k]) continue;
        fprintf(out, "  %-16s %9ld   %11.1f   %7ld   %ld (%.2f%%)\n", tng_kind_names[k], s->texts[k],
                (double)s->tokens[k] / (double)s->texts[k], s->longest[k], s->cut[k], percent(s->cut[k], s->texts[k]));
    }
    fprintf(out, "\nhybrid objects, one per image\n");
    if (s->preferred) /* only tng_train --twin-batches prefers a neighbour */
        fprintf(out, "  from the preferred neighbour %8ld  %5.1f%%   (the twin, tried first)\n", s->preferred,
                percent(s->preferred, s->images));
    fprintf(out, "  from the nearest neighbour   %8ld  %5.1f%%\n", s->nearest, percent(s->nearest, s->images));
    fprintf(out, "  from a farther neighbour     %8ld  %5.1f%%   (its place on average %.1f; 1 = the nearest)\n",
            s->farther, percent(s->farther, s->images),
            s->farther ? 1.0 + (double)s->farther_rank_sum / (double)s->farther : 0.0);
    fprintf(out, "  a fallback noun              %8ld  %5.1f%%\n", s->fallback, percent(s->fallback, s->images));
    fprintf(out, "  scene nouns (places)         %8ld  %5.1f%%\n", s->scene_objects, percent(s->scene_objects, s->images));
    fprintf(out, "  body parts (any)             %8ld  %5.1f%%\n", s->body_objects, percent(s->body_objects, s->images));
    fprintf(out, "  not a thing where the neighbour names it %ld of %ld (%.1f%%): only as a compound's first part,\n"
                 "  a frame, portion or part (\"slice of\"), a verb, or a body part after a possessive\n",
            s->non_object_uses, s->checked_sources, percent(s->non_object_uses, s->checked_sources));
    fprintf(out, "\ncaptions that are clauses (a finite verb, or \"there is ...\"): %ld (%.1f%%); full negations of\n"
                 "them %ld, quoting the clause as written (not as a noun phrase) %ld\n",
            s->clause_captions, percent(s->clause_captions, s->images), s->full_of_clause, s->full_quoting_clause);
    /* categories: the distinct names of lex->category, in order of first appearance */
    const char **names = callocCheck((size_t)lex->n_lemmas, sizeof(char *));
    long *per_category = callocCheck((size_t)lex->n_lemmas, sizeof(long));
    int n_categories = 0, distinct = 0;
    for (int l = 0; l < lex->n_lemmas; l++) {
        if (!s->object_count[l]) continue;
        distinct++;
        int c = 0;
        while (c < n_categories && strcmp(names[c], lex->category[l]) != 0) c++;
        if (c == n_categories) names[n_categories++] = lex->category[l];
        per_category[c] += s->object_count[l];
    }
    fprintf(out, "\nobjects by lexicon category\n");
    print_ranked(out, names, per_category, n_categories, n_categories, s->images);
    fprintf(out, "\nmost frequent objects (%d distinct)\n", distinct);
    print_ranked(out, lex->lemma, s->object_count, lex->n_lemmas, top, s->images);
    free(names), free(per_category);
}
