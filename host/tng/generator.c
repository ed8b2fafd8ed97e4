/*
 * generator.c: the TNG negation generator: nearest neighbours, absent objects, templates,
 * length fitting and tokenization of one batch (the behaviour is specified in generator.h,
 * the layout of the texts in batch.h).
 *
 * Key design choice: every random draw for image i comes from its own stream seeded by
 * (seed, batch_index, i), and the per-image work reads only pool-wide data computed first
 * (each caption's noun set, image i's similarity row), so the result cannot depend on thread
 * timing, nor on which other images of the pool texts are made for: a rank of a data-parallel
 * run makes its own images' share of the global batch's texts, and gets exactly that share.
 * Texts are built in a scratch buffer and measured with tokenizer_encode_raw; the same ids
 * become the token row, so a text that fits is encoded exactly once.
 */
#include "tng/generator.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tng/grammar.h" // defines: CaptionReading, caption_read, caption_noun_phrase, lexicon_object
#include "tng/mcq.h"     // defines: TngMcqQuestion, tng_mcq_question, tng_mcq_option_text, tng_with_article
#include "tng/templates.h" // defines: tng_hybrid_templates, tng_full_templates, tng_affirm_templates, ...
#include "util/common.h" // defines: die, mallocCheck, reallocCheck
#include "util/rng.h"    // defines: Rng, rng_seed, rng_below, splitmix64

// ---------------------------------------------------------------------------------------------
// Caption text helpers

typedef struct {
    const char *text;
    size_t len;
} Span;

static int is_trailing_punct(char c) { return strchr(".!?,;:", c) != NULL && c != '\0'; }

/* The caption without surrounding whitespace and without trailing sentence punctuation, so a
 * template can add its own. */
static Span trim_caption(const char *s, size_t len) {
    while (len > 0 && isspace((unsigned char)*s)) s++, len--;
    while (len > 0 && (isspace((unsigned char)s[len - 1]) || is_trailing_punct(s[len - 1]))) len--;
    return (Span){s, len};
}

static int count_words(Span s) {
    int n = 0;
    for (size_t i = 0; i < s.len; i++)
        n += !isspace((unsigned char)s.text[i]) && (i == 0 || isspace((unsigned char)s.text[i - 1]));
    return n;
}

/* The first k whitespace-separated words of s, trimmed again ("a dog, a cat" k=2 -> "a dog"). */
static Span first_words(Span s, int k) {
    size_t end = 0;
    for (int w = 0; w < k; w++) {
        while (end < s.len && isspace((unsigned char)s.text[end])) end++;
        while (end < s.len && !isspace((unsigned char)s.text[end])) end++;
    }
    return trim_caption(s.text, end);
}

/* s without a leading determiner that a "no ..." template would duplicate. */
static Span strip_article(Span s) {
    static const char *const articles[] = {"a", "an", "the", "any", "some", "several", "many", "one", "two", "three",
                                           "four", "five", "six", "seven", "eight", "nine", "ten"};
    for (size_t a = 0; a < sizeof(articles) / sizeof(articles[0]); a++) {
        size_t n = strlen(articles[a]);
        if (s.len > n + 1 && strncasecmp(s.text, articles[a], n) == 0 &&
            isspace((unsigned char)s.text[n]))
            return trim_caption(s.text + n, s.len - n);
    }
    return s;
}

/* Appends src to dst at *at, with its first letter lower-cased ('c', 'n'), upper-cased ('C').
 * A first letter followed by another capital ("TV", "USA") is an acronym and keeps its case. */
static void emit_cased(char *dst, size_t *at, Span src, char mode) {
    if (src.len == 0) return;
    memcpy(dst + *at, src.text, src.len);
    char *first = dst + *at;
    int acronym = src.len > 1 && isupper((unsigned char)src.text[1]);
    if (mode == 'C') *first = (char)toupper((unsigned char)*first);
    else if (!acronym) *first = (char)tolower((unsigned char)*first);
    *at += src.len;
}

/* Renders a template into dst (capacity >= strlen(tmpl) + 2*(subject.len + strlen(object)) + 1)
 * and upper-cases the first letter of the result. Returns the length. */
static size_t render_template(char *dst, const char *tmpl, Span subject, const char *object) {
    size_t at = 0;
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '{' && p[1] && p[2] == '}') {
            char mode = p[1];
            if (mode == 'x') emit_cased(dst, &at, (Span){object, strlen(object)}, 'x');
            else emit_cased(dst, &at, mode == 'n' ? strip_article(subject) : subject, mode == 'p' ? 'c' : mode);
            p += 2;
        } else {
            dst[at++] = *p;
        }
    }
    dst[at] = '\0';
    if (at > 0) dst[0] = (char)toupper((unsigned char)dst[0]);
    return at;
}

// ---------------------------------------------------------------------------------------------
// The generator

struct TngGenerator {
    TngConfig cfg;
    const Lexicon *lex;
    const Tokenizer *tok;
    // scratch, grown on demand; P = pool images, B = images texts are made for
    int capacity_pool, capacity_made;
    float *sim;          /* [B, P] cosine similarity of made image j to pool image k */
    int *order;          /* [B, P-1] the other pool images, most similar first */
    int *made;           /* [B] the pool image whose texts are output image j */
    int *row_of;         /* [P] the inverse: the output image of pool image k, or -1 */
    int *noun_start;     /* [P+1] caption k's nouns are nouns[noun_start[k] .. noun_start[k+1]) */
    int *nouns;          /* lemma ids, each once per caption, in order of appearance: present */
    int *object_start;   /* [P+1] and its objects (grammar.h) objects[object_start[k] ..) */
    int *objects;        /* the nouns that name things in the picture, each once per caption */
    int capacity_nouns;
    int *candidates;
    Span *trimmed;       /* [P] the pool's captions, trimmed */
    Span *phrase;        /* [P] each as a noun phrase (grammar.h), in phrase_arena */
    char *phrase_arena;
    size_t capacity_phrases;
    CaptionReading reading;
    size_t *text_offset; /* [n_texts] offsets into the arena until the arena stops moving */
    int capacity_texts;
    char *render;        /* one text being built */
    size_t capacity_render;
    char *object_subject; /* "any <object>", the subject when there is no caption to negate */
    int *ids;            /* [context] ids of the text being measured */
};

void tng_config_default(TngConfig *cfg) {
    *cfg = (TngConfig){.negations_per_image = 2, .context = 77, .seed = 1234, .released = 0,
                       .contradictions = 0, .standalone = 0, .mcq = 0};
}

TngGenerator *tng_generator_create(const TngConfig *cfg, const Lexicon *lex, const Tokenizer *tok) {
    if (cfg->negations_per_image < 1)
        die("tng: negations_per_image must be >= 1, found %d", cfg->negations_per_image);
    if (cfg->contradictions < 0)
        die("tng: contradictions must be >= 0, found %d", cfg->contradictions);
    if (cfg->standalone < 0 || cfg->standalone > TNG_N_STANDALONE_TEMPLATES)
        die("tng: standalone negations must be 0 to %d (one template each), found %d",
            TNG_N_STANDALONE_TEMPLATES, cfg->standalone);
    if (cfg->context < 16)
        die("tng: context must be >= 16 tokens to hold a negation, found %d", cfg->context);
    TngGenerator *gen = callocCheck(1, sizeof(TngGenerator));
    gen->cfg = *cfg;
    gen->lex = lex;
    gen->tok = tok;
    gen->ids = mallocCheck((size_t)cfg->context * sizeof(int));
    gen->object_subject = mallocCheck(128);
    return gen;
}

void tng_generator_free(TngGenerator *gen) {
    if (!gen) return;
    free(gen->sim);
    free(gen->order);
    free(gen->made);
    free(gen->row_of);
    free(gen->noun_start);
    free(gen->nouns);
    free(gen->object_start);
    free(gen->objects);
    free(gen->phrase);
    free(gen->phrase_arena);
    caption_reading_free(&gen->reading);
    free(gen->candidates);
    free(gen->trimmed);
    free(gen->text_offset);
    free(gen->render);
    free(gen->object_subject);
    free(gen->ids);
    free(gen);
}

void tng_texts_free(TngTexts *t) {
    free(t->tokens);
    free(t->txt2img);
    free(t->texts);
    free(t->kind);
    free(t->source_image);
    free(t->text_object);
    free(t->cut);
    free(t->object_lemma);
    free(t->object_from);
    free(t->object_rank);
    free(t->object_preferred);
    free(t->named_start);
    free(t->named);
    free(t->mcq_answer);
    free(t->mcq_type);
    free(t->text_arena);
    memset(t, 0, sizeof(*t));
}

#define GROW(ptr, count) ((ptr) = reallocCheck((ptr), (size_t)(count) * sizeof(*(ptr))))

static void ensure_capacity(TngGenerator *gen, TngTexts *out, int n_pool, int n_made, int n_texts,
                            int n_nouns) {
    if (n_pool > gen->capacity_pool) {
        GROW(gen->made, n_pool);
        GROW(gen->row_of, n_pool);
        GROW(gen->noun_start, n_pool + 1);
        GROW(gen->object_start, n_pool + 1);
        GROW(gen->trimmed, n_pool);
        GROW(gen->phrase, n_pool);
        gen->capacity_pool = n_pool;
        gen->capacity_made = 0; // the rows below are sized by both counts
    }
    if (n_made > gen->capacity_made) {
        GROW(gen->sim, (size_t)n_made * gen->capacity_pool);
        GROW(gen->order, (size_t)n_made * gen->capacity_pool);
        gen->capacity_made = n_made;
    }
    if (n_nouns > gen->capacity_nouns) {
        GROW(gen->nouns, n_nouns);
        GROW(gen->objects, n_nouns);
        GROW(gen->candidates, n_nouns);
        gen->capacity_nouns = n_nouns;
    }
    if (n_texts > gen->capacity_texts) {
        GROW(gen->text_offset, n_texts);
        gen->capacity_texts = n_texts;
    }
    int context = gen->cfg.context;
    if (n_texts > out->capacity_texts || context != out->context) {
        GROW(out->tokens, (size_t)n_texts * context);
        GROW(out->txt2img, n_texts);
        GROW(out->texts, n_texts);
        GROW(out->kind, n_texts);
        GROW(out->source_image, n_texts);
        GROW(out->text_object, n_texts);
        GROW(out->cut, n_texts);
        out->capacity_texts = n_texts;
    }
    if (n_made > out->capacity_images) {
        GROW(out->object_lemma, n_made);
        GROW(out->object_from, n_made);
        GROW(out->object_rank, n_made);
        GROW(out->object_preferred, n_made);
        GROW(out->named_start, n_made + 1);
        GROW(out->mcq_answer, n_made);
        GROW(out->mcq_type, n_made);
        out->capacity_images = n_made;
    }
    if (n_nouns > out->capacity_named) {
        GROW(out->named, n_nouns);
        out->capacity_named = n_nouns;
    }
}

typedef struct {
    uint32_t key; /* ascending key = descending similarity (neighbour_key) */
    int image;
} Neighbour;

/* A key that orders similarities from high to low as unsigned integers. -0 is folded into +0,
 * which it equals as a float; similarities of unit vectors are never NaN. */
static uint32_t neighbour_key(float sim) {
    sim += 0.0f;
    uint32_t bits;
    memcpy(&bits, &sim, sizeof bits);
    uint32_t ascending = bits & 0x80000000u ? ~bits : bits | 0x80000000u;
    return ~ascending;
}

/* Sorts row[0..n) by key with a stable LSD radix sort (four byte-wide passes, tmp [n]): the row
 * comes in ascending image order, so equal similarities stay lower image first and the order
 * is total. Sorting was half the generator's time with qsort. */
static void sort_neighbours(Neighbour *row, Neighbour *tmp, int n) {
    for (int shift = 0; shift < 32; shift += 8) {
        int start[257] = {0};
        for (int k = 0; k < n; k++) start[((row[k].key >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++) start[b + 1] += start[b];
        for (int k = 0; k < n; k++) tmp[start[(row[k].key >> shift) & 0xff]++] = row[k];
        Neighbour *swap = row;
        row = tmp, tmp = swap;
    }
    // an even number of passes: the sorted row is back in the caller's buffer
}

/* The dot product of two unit embeddings: their cosine similarity. Eight independent partial
 * sums, combined in a fixed order, let the compiler vectorise it with the same result on every
 * run (unlike a threaded BLAS call); dot(a, b) and dot(b, a) are the same bits, so a pair's
 * similarity does not depend on which image asks. */
static float dot_unit(const float *a, const float *b, int dim) {
    enum { LANES = 8 };
    // A GNU vector type: element k is exactly the scalar sum it names, but the compiler keeps
    // it in one register; written as an array, GCC adds the lanes one by one.
    typedef float Lanes __attribute__((vector_size(LANES * sizeof(float))));
    Lanes lane = {0};
    int d = 0;
    for (; d + LANES <= dim; d += LANES) {
        Lanes x, y;
        memcpy(&x, a + d, sizeof x);
        memcpy(&y, b + d, sizeof y);
        lane += x * y;
    }
    float dot = 0.0f;
    for (; d < dim; d++) dot += a[d] * b[d];
    for (int k = 0; k < LANES; k++) dot += lane[k];
    return dot;
}

/* order row j = the pool images other than made[j], by decreasing cosine similarity to it.
 * A pair of two made images is computed once (row_of finds the earlier row). */
static void rank_neighbours(TngGenerator *gen, const float *emb, int n_pool, int dim,
                            const int *made, int n_made) {
    Neighbour *row = mallocCheck((size_t)2 * (n_pool > 1 ? n_pool - 1 : 1) * sizeof(Neighbour));
    for (int j = 0; j < n_made; j++) {
        int a = made[j], n = 0;
        float *sim = gen->sim + (size_t)j * n_pool;
        for (int k = 0; k < n_pool; k++) {
            if (k == a) continue;
            int earlier = gen->row_of[k];
            sim[k] = earlier >= 0 && earlier < j
                         ? gen->sim[(size_t)earlier * n_pool + a]
                         : dot_unit(emb + (size_t)a * dim, emb + (size_t)k * dim, dim);
            row[n++] = (Neighbour){neighbour_key(sim[k]), k};
        }
        sort_neighbours(row, row + n, n);
        for (int r = 0; r < n; r++) gen->order[(size_t)j * (n_pool - 1) + r] = row[r].image;
    }
    free(row);
}

/* Appends lemma to list[0, n) unless it is there; returns the new count. */
static int add_once(int *list, int n, int lemma) {
    for (int k = 0; k < n; k++)
        if (list[k] == lemma) return n;
    list[n] = lemma;
    return n + 1;
}

/* Reads pool caption k (grammar.h): its nouns, its objects, its noun phrase. Captions before
 * k are read already: their lists end where k's begin. */
static void read_caption(TngGenerator *gen, int k, size_t *phrase_used) {
    Span c = gen->trimmed[k];
    CaptionReading *r = &gen->reading;
    caption_read(r, gen->lex, c.text, c.len);
    int *nouns = gen->nouns + gen->noun_start[k], *objects = gen->objects + gen->object_start[k];
    int n_nouns = 0, n_objects = 0;
    for (int w = 0; w < r->n; w++) {
        if (r->words[w].lemma < 0) continue;
        n_nouns = add_once(nouns, n_nouns, r->words[w].lemma);
        if (r->words[w].object) n_objects = add_once(objects, n_objects, r->words[w].lemma);
    }
    gen->noun_start[k + 1] = gen->noun_start[k] + n_nouns;
    gen->object_start[k + 1] = gen->object_start[k] + n_objects;
    if (!r->clause) { /* a noun phrase already */
        gen->phrase[k] = c;
        return;
    }
    char *phrase = gen->phrase_arena + *phrase_used;
    gen->phrase[k] = (Span){phrase, caption_noun_phrase(r, c.text, c.len, phrase)};
    *phrase_used += gen->phrase[k].len;
}

static int caption_has(const TngGenerator *gen, int image, int lemma) {
    for (int k = gen->noun_start[image]; k < gen->noun_start[image + 1]; k++)
        if (gen->nouns[k] == lemma) return 1;
    return 0;
}

/* Fills gen->candidates with the objects of pool image j that caption_i lacks; their count. */
static int absent_objects_of(TngGenerator *gen, int i, int j) {
    int n_candidates = 0;
    for (int k = gen->object_start[j]; k < gen->object_start[j + 1]; k++)
        if (!caption_has(gen, i, gen->objects[k])) gen->candidates[n_candidates++] = gen->objects[k];
    return n_candidates;
}

/* The one object of pool image i (neighbours: its order row): an object (grammar.h) of the
 * preferred neighbour (a pool position, -1: none) if it has one that caption_i lacks, else of
 * the nearest neighbour with one, else a common lexicon noun, no scene noun, that caption_i
 * lacks. *rank = that neighbour's place in the row, or -1; *preferred = 1 when it is the
 * preferred one. Either way one draw picks among the candidates, so a preference that gives
 * way leaves the stream as it would be without one. */
static int choose_object(TngGenerator *gen, int i, int prefer, const int *neighbours, int n_pool,
                         Rng *rng, int *rank, unsigned char *preferred) {
    *preferred = 0;
    if (prefer >= 0) {
        int n_candidates = absent_objects_of(gen, i, prefer);
        if (n_candidates > 0) {
            *preferred = 1;
            for (*rank = 0; neighbours[*rank] != prefer; ++*rank) {}
            return gen->candidates[rng_below(rng, (uint64_t)n_candidates)];
        }
    }
    for (int r = 0; r < n_pool - 1; r++) {
        int n_candidates = absent_objects_of(gen, i, neighbours[r]);
        if (n_candidates > 0) {
            *rank = r;
            return gen->candidates[rng_below(rng, (uint64_t)n_candidates)];
        }
    }
    // Scan the common nouns cyclically from a random start: one draw, and it always ends.
    const Lexicon *lex = gen->lex;
    int start = (int)rng_below(rng, (uint64_t)lex->n_common);
    for (int k = 0; k < lex->n_common; k++) {
        int lemma = lex->common[(start + k) % lex->n_common];
        if (lexicon_object(lex, lemma) && !caption_has(gen, i, lemma)) {
            *rank = -1;
            return lemma;
        }
    }
    die("tng: caption %d contains every common lexicon noun; no absent object exists", i);
}

/* The pool image whose caption full negation number `f` of pool image i negates, or -1 when no
 * other image has a non-empty caption. Default: the f-th least similar image (the end of i's
 * order row); released: the f-th image of the cycle B-1-i, B-i, ... that skips i (B = the
 * pool). Empty captions are passed over. */
static int full_negation_source(const TngGenerator *gen, int i, const int *neighbours, int f,
                                int n_pool) {
    int n_others = n_pool - 1;
    for (int step = 0; step < n_others; step++) {
        int p = (f + step) % n_others, k;
        if (gen->cfg.released) {
            // walk p+1 images along the cycle from B-1-i, not counting i itself
            k = n_pool - 1 - i;
            if (k == i) k = (k + 1) % n_pool;
            for (int q = 0; q < p; q++) {
                k = (k + 1) % n_pool;
                if (k == i) k = (k + 1) % n_pool;
            }
        } else {
            k = neighbours[n_others - 1 - p];
        }
        if (gen->trimmed[k].len > 0) return k;
    }
    return -1;
}

/* Writes SOT, ids, EOT and zero padding into a token row. */
static void store_row(int *row, const int *ids, int n_ids, int context) {
    row[0] = TOKEN_SOT;
    memcpy(row + 1, ids, (size_t)n_ids * sizeof(int));
    row[n_ids + 1] = TOKEN_EOT;
    memset(row + n_ids + 2, 0, (size_t)(context - n_ids - 2) * sizeof(int));
}

static size_t arena_append(TngTexts *out, size_t *used, const char *text, size_t len) {
    if (*used + len + 1 > out->arena_capacity) {
        out->arena_capacity = 2 * (*used + len + 1);
        out->text_arena = reallocCheck(out->text_arena, out->arena_capacity);
    }
    size_t at = *used;
    memcpy(out->text_arena + at, text, len);
    out->text_arena[at + len] = '\0';
    *used += len + 1;
    return at;
}

/* Renders tmpl with the subject cut to its first `words` words; returns the raw token count. */
static int render_and_measure(TngGenerator *gen, const char *tmpl, Span subject, int words,
                              const char *object, size_t *len) {
    *len = render_template(gen->render, tmpl, first_words(subject, words), object);
    return tokenizer_encode_raw(gen->tok, gen->render, gen->ids, gen->cfg.context - 2);
}

/* Builds text t from a template and a subject given as written and as a noun phrase (the
 * template's placeholder picks which). When it would pass the context, trailing words of the
 * subject (the caption part) go, never the template's negation. */
static void make_text(TngGenerator *gen, TngTexts *out, size_t *arena_used, int t,
                      const char *tmpl, Span written, Span phrase, const char *object) {
    Span subject = strstr(tmpl, "{p}") || strstr(tmpl, "{n}") ? phrase : written;
    size_t need = strlen(tmpl) + 2 * (subject.len + strlen(object)) + 1;
    if (need > gen->capacity_render) {
        gen->capacity_render = 2 * need;
        gen->render = reallocCheck(gen->render, gen->capacity_render);
    }
    int budget = gen->cfg.context - 2, words = count_words(subject);
    size_t len;
    int n = render_and_measure(gen, tmpl, subject, words, object, &len);
    out->cut[t] = n > budget;
    if (n > budget) {
        // the most words that fit: fits(lo) holds, fits(hi) fails (token counts grow with words)
        int lo = 0, hi = words;
        while (hi - lo > 1) {
            int mid = lo + (hi - lo) / 2;
            size_t unused;
            if (render_and_measure(gen, tmpl, subject, mid, object, &unused) <= budget) lo = mid;
            else hi = mid;
        }
        n = render_and_measure(gen, tmpl, subject, lo, object, &len);
        if (n > budget)
            die("tng: template \"%s\" with object \"%s\" needs %d tokens, more than the context %d",
                tmpl, object, n + 2, gen->cfg.context);
    }
    store_row(out->tokens + (size_t)t * gen->cfg.context, gen->ids, n, gen->cfg.context);
    gen->text_offset[t] = arena_append(out, arena_used, gen->render, len);
}

/* Text t's labels: its kind, the image it is a positive of (-1: none), the pool image whose
 * caption it negates or quotes, the noun it is about (-1: none). */
static void label_text(TngTexts *out, int t, TngTextKind kind, int txt2img, int source, int object) {
    out->kind[t] = kind;
    out->txt2img[t] = txt2img;
    out->source_image[t] = source;
    out->text_object[t] = object;
}

/* Standalone negation s of image j (pool image i) into text t: object_i absent, in the
 * template `first` + s (first drawn once per image, so an image's S texts all differ). */
static void make_standalone(TngGenerator *gen, TngTexts *out, size_t *arena_used, int t, int s,
                            int first, int i, int j, int object) {
    const char *tmpl = tng_standalone_templates[(first + s) % TNG_N_STANDALONE_TEMPLATES];
    Span none = {"", 0};
    make_text(gen, out, arena_used, t, tmpl, none, none, gen->lex->lemma[object]);
    label_text(out, t, TNG_STANDALONE, j, i, object);
}

/* Contradiction c of pool image i into text t (kinds cycle with c % 4, see generator.h): a false
 * hybrid negating a noun that caption_i contains; a false full negation of caption_i; a
 * role-swapped hybrid "a <object_i>, no <noun of caption_i>"; caption_i plus "a <object_i>"
 * affirmed. A caption without lexicon nouns gets the false full negation in the hybrid kinds'
 * slots. Each is false for image i. */
static void make_contradiction(TngGenerator *gen, TngTexts *out, size_t *arena_used, int t, int c,
                               int i, int object, Rng *rng) {
    Span caption = gen->trimmed[i], phrase = gen->phrase[i];
    int n_present = gen->object_start[i + 1] - gen->object_start[i];
    const char *absent = gen->lex->lemma[object];
    char absent_phrase[128]; // "a <object_i>" / "an <object_i>": the absent object stated
    int absent_len = tng_with_article(absent_phrase, absent);
    if (c % 4 == 3) {
        make_text(gen, out, arena_used, t, tng_affirm_templates[rng_below(rng, TNG_N_AFFIRM_TEMPLATES)],
                  caption, phrase, absent_phrase);
        label_text(out, t, TNG_FALSE_AFFIRM, -1, i, object);
    } else if (c % 4 != 1 && n_present > 0) {
        int lemma = gen->objects[gen->object_start[i] + (int)rng_below(rng, (uint64_t)n_present)];
        const char *tmpl = tng_hybrid_templates[rng_below(rng, TNG_N_HYBRID_TEMPLATES)];
        // the role-swapped kind affirms the absent object and denies the present one
        Span absent_subject = {absent_phrase, (size_t)absent_len};
        make_text(gen, out, arena_used, t, tmpl, c % 4 == 2 ? absent_subject : caption,
                  c % 4 == 2 ? absent_subject : phrase, gen->lex->lemma[lemma]);
        label_text(out, t, c % 4 == 2 ? TNG_SWAPPED_HYBRID : TNG_FALSE_HYBRID, -1, i, lemma);
    } else {
        const char *tmpl = tng_full_templates[rng_below(rng, TNG_N_FULL_TEMPLATES)];
        make_text(gen, out, arena_used, t, tmpl, caption, phrase, "");
        label_text(out, t, TNG_FALSE_FULL, -1, i, -1);
    }
}

/* Image j's (pool image i's) multiple-choice options (tng/mcq.h): object_i against an object
 * caption_i names, drawn; empty texts when caption_i names no object. */
static void make_mcq_options(TngGenerator *gen, TngTexts *out, size_t *arena_used,
                             const TngLayout *layout, int i, int j, int object, Rng *rng) {
    static const TngMcqTemplates templates = {tng_hybrid_templates, TNG_N_HYBRID_TEMPLATES,
                                              tng_standalone_templates, TNG_N_STANDALONE_TEMPLATES};
    int n_present = gen->object_start[i + 1] - gen->object_start[i];
    TngMcqQuestion q = {.answer = -1, .type = (TngMcqType)-1};
    if (n_present > 0)
        tng_mcq_question(rng, gen->objects[gen->object_start[i] + (int)rng_below(rng, (uint64_t)n_present)],
                         object, &q);
    out->mcq_answer[j] = q.answer;
    out->mcq_type[j] = (int)q.type;
    for (int k = 0; k < TNG_MCQ_OPTIONS; k++) {
        TngMcqText o = {.tmpl = "", .object = "", .about = -1}; // no question: an empty text
        if (q.answer >= 0) tng_mcq_option_text(rng, &q, k, gen->lex, &templates, &o);
        Span subject = {o.subject, strlen(o.subject)};
        int t = tng_mcq_text(layout, j, k);
        make_text(gen, out, arena_used, t, o.tmpl, subject, subject, o.object);
        label_text(out, t, q.answer < 0 ? TNG_MCQ_NONE : k == q.answer ? TNG_MCQ_TRUE : TNG_MCQ_FALSE, -1, i, o.about);
    }
}

static void seed_image_stream(Rng *rng, uint64_t seed, int64_t batch_index, int image) {
    uint64_t state = seed;
    state = splitmix64(&state) ^ (uint64_t)batch_index;
    state = splitmix64(&state) ^ (uint64_t)image;
    rng_seed(rng, splitmix64(&state));
}

/* Every text of pool image i, written as image j of the output (n_made images). Reads only
 * pool-wide data and i's own random stream, so it is the same whichever images are made. */
static void make_image_texts(TngGenerator *gen, const char *const *captions, int n_pool, int i,
                             int j, int prefer, const TngLayout *layout, int64_t batch_index,
                             TngTexts *out, size_t *arena_used) {
    const TngConfig *cfg = &gen->cfg;
    int context = cfg->context, n_neg = cfg->negations_per_image;
    const int *neighbours = gen->order + (size_t)j * (n_pool - 1);
    const Span caption = gen->trimmed[i];
    Rng rng;
    seed_image_stream(&rng, cfg->seed, batch_index, i);
    int rank;
    int object = choose_object(gen, i, prefer, neighbours, n_pool, &rng, &rank, &out->object_preferred[j]);
    const char *object_word = gen->lex->lemma[object];
    out->object_lemma[j] = object;
    out->object_rank[j] = rank;
    out->object_from[j] = rank >= 0 ? neighbours[rank] : -1;
    snprintf(gen->object_subject, 128, "any %.100s", object_word);
    Span object_subject = {gen->object_subject, strlen(gen->object_subject)};

    // the original caption, cut like open_clip cuts any text
    int original = tng_caption_text(layout, j);
    int *row = out->tokens + (size_t)original * context;
    int n = tokenizer_encode(gen->tok, captions[i], row, context);
    memset(row + n, 0, (size_t)(context - n) * sizeof(int));
    gen->text_offset[original] = arena_append(out, arena_used, captions[i], strlen(captions[i]));
    // a row that ends at the context is cut when the whole caption needs more
    out->cut[original] = n == context && tokenizer_encode_raw(gen->tok, captions[i], NULL, 0) > context - 2;
    label_text(out, original, TNG_ORIGINAL, j, i, -1);

    int hybrid_start = (int)rng_below(&rng, TNG_N_HYBRID_TEMPLATES);
    int full_start = (int)rng_below(&rng, TNG_N_FULL_TEMPLATES);
    int n_hybrids = 0, n_fulls = 0;
    for (int m = 0; m < n_neg; m++) {
        int t = tng_negation_text(layout, j, m);
        int source = m % 2 == 1 ? full_negation_source(gen, i, neighbours, n_fulls, n_pool) : i;
        if (m % 2 == 0 || source < 0) {
            // hybrid (also the stand-in for a full negation when no other caption exists);
            // an image without a caption gets a plain object negation from a full template
            if (caption.len > 0) {
                const char *tmpl = tng_hybrid_templates[(hybrid_start + n_hybrids) % TNG_N_HYBRID_TEMPLATES];
                make_text(gen, out, arena_used, t, tmpl, caption, gen->phrase[i], object_word);
            } else {
                const char *tmpl = tng_full_templates[(full_start + n_hybrids) % TNG_N_FULL_TEMPLATES];
                make_text(gen, out, arena_used, t, tmpl, object_subject, object_subject, "");
            }
            n_hybrids++;
            label_text(out, t, TNG_HYBRID, j, i, object);
        } else {
            const char *tmpl = tng_full_templates[(full_start + n_fulls) % TNG_N_FULL_TEMPLATES];
            make_text(gen, out, arena_used, t, tmpl, gen->trimmed[source], gen->phrase[source], "");
            n_fulls++;
            label_text(out, t, TNG_FULL, j, source, -1);
        }
    }
    // Released mode's stream skips one number here: the generator once drew the image->text
    // target at this point (batch.h owns that now); skipping it keeps the contradiction texts
    // below, and so every released run with contradictions, the same bits.
    if (cfg->released) rng_next(&rng);
    // contradictions draw after every other choice, so C = 0 leaves those unchanged
    for (int c = 0; c < cfg->contradictions; c++)
        make_contradiction(gen, out, arena_used, tng_contradiction_text(layout, j, c), c, i,
                           object, &rng);
    // standalone negations draw last of all, so S = 0 leaves every draw above unchanged
    if (cfg->standalone > 0) {
        int first = (int)rng_below(&rng, TNG_N_STANDALONE_TEMPLATES);
        for (int s = 0; s < cfg->standalone; s++)
            make_standalone(gen, out, arena_used, tng_standalone_text(layout, j, s), s, first, i, j, object);
    }
    // the multiple-choice options draw after the standalone negations: mcq 0 changes no draw
    if (cfg->mcq) make_mcq_options(gen, out, arena_used, layout, i, j, object, &rng);
    // the lemmas caption_i names, which decide for which images its standalone negations are false
    int n_named = gen->noun_start[i + 1] - gen->noun_start[i];
    memcpy(out->named + out->named_start[j], gen->nouns + gen->noun_start[i], sizeof(int) * (size_t)n_named);
    out->named_start[j + 1] = out->named_start[j] + n_named;
}

void tng_make_texts(TngGenerator *gen, const char *const *captions, const float *image_emb,
                    int n_pool, int dim, const int *make_for, int n_make, int64_t batch_index,
                    TngTexts *out) {
    tng_make_texts_preferring(gen, captions, image_emb, NULL, n_pool, dim, make_for, n_make,
                              batch_index, out);
}

void tng_make_texts_preferring(TngGenerator *gen, const char *const *captions,
                               const float *image_emb, const int *prefer, int n_pool, int dim,
                               const int *make_for, int n_make, int64_t batch_index,
                               TngTexts *out) {
    if (n_pool < 1) die("tng_make_texts: expected at least one image, found %d", n_pool);
    if (!make_for && n_make != n_pool)
        die("tng_make_texts: without make_for, texts are made for all %d pool images, not %d",
            n_pool, n_make);
    if (n_make < 1 || n_make > n_pool)
        die("tng_make_texts: expected 1 to %d images to make texts for, found %d", n_pool, n_make);
    const TngConfig *cfg = &gen->cfg;
    const TngLayout layout = {.n_images = n_make, .negations = cfg->negations_per_image,
                              .contradictions = cfg->contradictions, .standalone = cfg->standalone,
                              .mcq_options = cfg->mcq ? TNG_MCQ_OPTIONS : 0};
    int n_texts = tng_text_count(&layout);
    int max_nouns = 0;
    for (int k = 0; k < n_pool; k++) max_nouns += (int)(strlen(captions[k]) / 2 + 1);
    ensure_capacity(gen, out, n_pool, n_make, n_texts, max_nouns);
    out->n_images = n_make;
    out->n_pool = n_pool;
    out->n_texts = n_texts;
    out->context = cfg->context;
    out->batch_index = batch_index;

    // row_of inverts made (and so finds a repeated position)
    int *made = gen->made;
    for (int k = 0; k < n_pool; k++) gen->row_of[k] = -1;
    for (int j = 0; j < n_make; j++) {
        int i = make_for ? make_for[j] : j;
        if (i < 0 || i >= n_pool || gen->row_of[i] >= 0)
            die("tng_make_texts: make_for[%d] = %d; expected distinct pool positions 0..%d", j,
                i, n_pool - 1);
        made[j] = i;
        gen->row_of[i] = j;
    }

    rank_neighbours(gen, image_emb, n_pool, dim, made, n_make);
    size_t phrase_bytes = 0, phrase_used = 0;
    for (int k = 0; k < n_pool; k++) {
        gen->trimmed[k] = trim_caption(captions[k], strlen(captions[k]));
        phrase_bytes += caption_phrase_capacity(gen->trimmed[k].len);
    }
    if (phrase_bytes > gen->capacity_phrases) {
        gen->capacity_phrases = 2 * phrase_bytes;
        gen->phrase_arena = reallocCheck(gen->phrase_arena, gen->capacity_phrases);
    }
    gen->noun_start[0] = gen->object_start[0] = 0;
    for (int k = 0; k < n_pool; k++) read_caption(gen, k, &phrase_used);

    size_t arena_used = 0;
    out->named_start[0] = 0;
    for (int j = 0; j < n_make; j++) {
        int i = made[j], preferred = prefer && !cfg->released ? prefer[i] : -1;
        if (preferred >= n_pool || preferred == i || preferred < -1)
            die("tng_make_texts: the preferred neighbour of pool image %d is %d; expected another "
                "pool position (0..%d) or -1", i, preferred, n_pool - 1);
        make_image_texts(gen, captions, n_pool, i, j, preferred, &layout, batch_index, out, &arena_used);
    }
    for (int t = 0; t < n_texts; t++) out->texts[t] = out->text_arena + gen->text_offset[t];
}
