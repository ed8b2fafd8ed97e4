/*
 * test_synth.c: the synthetic negation world (host/synth.h).
 *
 * Ground truth is checked by an oracle written here, independent of the generator: it matches
 * every evaluation sentence against the phrasing templates, parses the object phrases back
 * ("a red ball and a key") and judges the sentence true or false against the regenerated
 * scene. Every MCQ option 0 must be true and options 1-3 false, every retrieval caption true,
 * every CC-Neg negated caption false. Then: a tiny world written twice is identical byte for
 * byte, its JPEGs decode to the right size, its CSVs load through the dataset readers, and the
 * template hygiene rules hold against all of TNG's own templates (tng/templates.h).
 */
#include <ctype.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/common.h"  // defines: read_file
#include "dataset/csv.h"     // defines: CsvReader, csv_init, csv_next_row, python_list_parse
#include "dataset/dataset.h" // defines: dataset_load, Dataset, DATASET_*
#include "harness.h"
#include "synth_words.h" // defines: has_word
#include "dataset/image.h"   // defines: image_decode_file
#include "text/lexicon.h" // defines: lexicon_load, lexicon_lookup
#include "synth/synth.h"
#include "tng/templates.h"     // defines: tng_hybrid_templates, ..., TNG_N_HYBRID_TEMPLATES, ...


// ---------------------------------------------------------------------------------------------
// The oracle: object phrases and templates read back

typedef struct {
    int n;
    int kind[SYNTH_MAX_OBJECTS + 1], colour[SYNTH_MAX_OBJECTS + 1]; /* colour -1: not named */
} Mentions;

static int index_of(const char *const *names, int n, const char *word, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && strncmp(names[i], word, len) == 0) return i;
    return -1;
}

/* One mention "[a|an] [colour] kind" in s[0..len). Returns 0 on success. */
static int parse_mention(const char *s, size_t len, int with_article, int *kind, int *colour) {
    char buf[SYNTH_TEXT_MAX];
    if (len >= sizeof(buf)) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *words[4];
    int n = 0;
    for (char *w = strtok(buf, " "); w && n < 4; w = strtok(NULL, " ")) words[n++] = w;
    int at = 0;
    if (with_article) {
        if (n < 2 || (strcmp(words[0], "a") != 0 && strcmp(words[0], "an") != 0)) return -1;
        // the article must agree with the word after it
        int vowel = strchr("aeiou", words[1][0]) != NULL;
        if (vowel != (strcmp(words[0], "an") == 0)) return -1;
        at = 1;
    }
    *colour = -1;
    if (n - at == 2) {
        *colour = index_of(synth_colour_names, SYNTH_N_COLOURS, words[at], strlen(words[at]));
        if (*colour < 0) return -1;
        at++;
    }
    if (n - at != 1) return -1;
    *kind = index_of(synth_kind_names, SYNTH_N_KINDS, words[at], strlen(words[at]));
    return *kind < 0 ? -1 : 0;
}

/* A list "A", "A and B", "A, B and C" of mentions with articles. Returns 0 on success. */
static int parse_list(const char *s, size_t len, Mentions *m) {
    m->n = 0;
    size_t start = 0;
    while (start < len) {
        // the next item ends at ", " or " and ", whichever comes first
        size_t end = len, next = len;
        for (size_t i = start; i < len; i++) {
            if (i + 2 <= len && strncmp(s + i, ", ", 2) == 0) { end = i; next = i + 2; break; }
            if (i + 5 <= len && strncmp(s + i, " and ", 5) == 0) { end = i; next = i + 5; break; }
        }
        if (m->n == SYNTH_MAX_OBJECTS + 1) return -1;
        if (parse_mention(s + start, end - start, 1, &m->kind[m->n], &m->colour[m->n]) != 0) return -1;
        m->n++;
        start = next;
    }
    return m->n > 0 ? 0 : -1;
}

/* Placeholder values a template match extracts. */
typedef struct {
    int has_s, has_x;
    Mentions s;
    int x_kind, x_colour;
} Match;

/*
 * Matches sentence against tmpl ({s}, {x} with article, {X} bare). The first letter is
 * compared without case (rendering capitalises it). Literal text between placeholders is found
 * at its first occurrence; the last literal must end the sentence. Returns 1 on a match.
 */
static int match_template(const char *tmpl, const char *sentence, Match *out) {
    char sent[SYNTH_TEXT_MAX], t[SYNTH_TEXT_MAX];
    snprintf(sent, sizeof(sent), "%s", sentence);
    snprintf(t, sizeof(t), "%s", tmpl);
    sent[0] = (char)tolower((unsigned char)sent[0]);
    t[0] = (char)tolower((unsigned char)t[0]);
    memset(out, 0, sizeof(*out));
    const char *tp = t, *sp = sent;
    while (*tp) {
        if (tp[0] != '{') {
            if (*sp != *tp) return 0;
            tp++, sp++;
            continue;
        }
        char ph = tp[1];
        tp += 3;
        // the literal after the placeholder, up to the next placeholder or the end
        size_t lit_len = strcspn(tp, "{");
        const char *end;
        if (tp[lit_len] == '\0') {
            size_t rest = strlen(sp);
            if (rest < lit_len || strcmp(sp + rest - lit_len, tp) != 0) return 0;
            end = sp + rest - lit_len;
        } else {
            char lit[SYNTH_TEXT_MAX];
            memcpy(lit, tp, lit_len);
            lit[lit_len] = '\0';
            end = lit_len ? strstr(sp, lit) : NULL;
            if (!end) return 0;
        }
        size_t len = (size_t)(end - sp);
        if (ph == 's') {
            if (parse_list(sp, len, &out->s) != 0) return 0;
            out->has_s = 1;
        } else if (ph == 'x' || ph == 'X') {
            if (parse_mention(sp, len, ph == 'x', &out->x_kind, &out->x_colour) != 0) return 0;
            out->has_x = 1;
        } else {
            return 0;
        }
        sp = end;
    }
    return *sp == '\0';
}

static int mention_true(const SynthScene *sc, int kind, int colour) {
    for (int i = 0; i < sc->n_objects; i++)
        if (sc->objects[i].kind == kind) return colour < 0 || sc->objects[i].colour == colour;
    return 0;
}

typedef enum { SHAPE_AFFIRM = 0, SHAPE_NEGATE = 1, SHAPE_HYBRID = 2, SHAPE_NONE = 3 } Shape;

/* The template shape of sentence in phrasing ph and its truth for scene sc (-1: no match).
 * A true sentence states only present objects (colours right) and denies only absent kinds. */
static int judge(const SynthPhrasing *ph, const SynthScene *sc, const char *sentence, Shape *shape, Match *m) {
    for (int kind = 0; kind < 3; kind++)
        for (int slot = 0; slot < SYNTH_N_EVAL_TEMPLATES; slot++) {
            const char *tmpl = kind == 0 ? ph->affirm[slot] : kind == 1 ? ph->negate[slot] : ph->hybrid[slot];
            if (!match_template(tmpl, sentence, m)) continue;
            *shape = (Shape)kind;
            int truth = 1;
            for (int i = 0; i < m->s.n; i++) truth &= mention_true(sc, m->s.kind[i], m->s.colour[i]);
            if (m->has_x) truth &= !mention_true(sc, m->x_kind, m->x_colour);
            return truth;
        }
    *shape = SHAPE_NONE;
    return -1;
}

// ---------------------------------------------------------------------------------------------
// Shapes and scenes

static void test_shapes_fill_and_fit(void) {
    // Each kind covers a fair share of its unit disk, and no shape relies on the unit-circle
    // clip in synth_shape_at (nothing drawn in the ring 0.985 < r < 1), so it fits by design.
    const int n = 400;
    for (int k = 0; k < SYNTH_N_KINDS; k++) {
        int inside = 0, disk = 0, ring = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                float u = -1 + 2 * (i + 0.5f) / n, v = -1 + 2 * (j + 0.5f) / n, r2 = u * u + v * v;
                if (r2 >= 1) continue;
                disk++;
                int hit = synth_shape_at(k, u, v) != 0;
                inside += hit;
                ring += hit && r2 > 0.985f * 0.985f;
            }
        double fill = (double)inside / disk;
        CHECK(fill > 0.12 && fill < 0.85, "%s fills %.2f of its disk", synth_kind_names[k], fill);
        CHECK(ring == 0, "%s reaches the clip ring at %d samples", synth_kind_names[k], ring);
    }
}

static void test_scenes_are_exact(void) {
    int seen_kind[SYNTH_N_KINDS] = {0}, seen_count[SYNTH_MAX_OBJECTS + 1] = {0};
    for (int split = 0; split < SYNTH_N_SPLITS; split++)
        for (int i = 0; i < 700; i++) {
            SynthScene sc, again;
            memset(&sc, 0xAB, sizeof(sc)); // poison: the generator must set every field
            synth_make_scene(7, (SynthSplit)split, i, &sc);
            synth_make_scene(7, (SynthSplit)split, i, &again);
            CHECK(memcmp(&sc, &again, sizeof(sc)) == 0, "scene %d/%d is not reproducible", split, i);
            CHECK(sc.n_objects >= 1 && sc.n_objects <= SYNTH_MAX_OBJECTS, "n_objects %d", sc.n_objects);
            if (sc.n_objects < 1 || sc.n_objects > SYNTH_MAX_OBJECTS) return;
            seen_count[sc.n_objects]++;
            for (int a = 0; a < sc.n_objects; a++) {
                const SynthObject *o = &sc.objects[a];
                seen_kind[o->kind]++;
                CHECK(o->cx - o->radius >= 0 && o->cx + o->radius <= 1 && o->cy - o->radius >= 0 &&
                          o->cy + o->radius <= 1, "scene %d/%d object %d leaves the image", split, i, a);
                for (int b = 0; b < a; b++) {
                    const SynthObject *p = &sc.objects[b];
                    float dx = o->cx - p->cx, dy = o->cy - p->cy, gap = o->radius + p->radius;
                    CHECK(o->kind != p->kind, "scene %d/%d repeats kind %s", split, i, synth_kind_names[o->kind]);
                    CHECK(o->colour != p->colour, "scene %d/%d repeats a colour", split, i);
                    CHECK(dx * dx + dy * dy >= gap * gap, "scene %d/%d objects %d and %d overlap", split, i, a, b);
                }
            }
            CHECK(synth_scene_has_kind(&sc, sc.objects[0].kind), "has_kind misses a present kind");
        }
    for (int k = 0; k < SYNTH_N_KINDS; k++) CHECK(seen_kind[k] > 40, "kind %s appears %d times", synth_kind_names[k], seen_kind[k]);
    for (int c = 1; c <= SYNTH_MAX_OBJECTS; c++) CHECK(seen_count[c] > 200, "%d-object scenes: %d", c, seen_count[c]);
}

static void test_render_draws_the_scene(void) {
    // Without noise, the pixels whose centre falls on an object's body (in the scene's own
    // geometry) average to the object's colour: the renderer puts each object where the scene
    // says. Tolerance 12 levels: edge pixels mix with the background.
    enum { SIZE = 64 };
    uint8_t rgb[3 * SIZE * SIZE];
    for (int i = 0; i < 60; i++) {
        SynthScene sc;
        synth_make_scene(3, SYNTH_TEST, i, &sc);
        sc.noise_sigma = 0;
        memset(rgb, 0x5A, sizeof(rgb));
        synth_render(&sc, SIZE, rgb);
        for (int a = 0; a < sc.n_objects; a++) {
            const SynthObject *o = &sc.objects[a];
            double sum[3] = {0}, n = 0;
            for (int y = 0; y < SIZE; y++)
                for (int x = 0; x < SIZE; x++) {
                    float dx = ((x + 0.5f) / SIZE - o->cx) / o->radius, dy = ((y + 0.5f) / SIZE - o->cy) / o->radius;
                    float ca = cosf(o->angle), sa = sinf(o->angle);
                    float u = ca * dx + sa * dy, v = -(-sa * dx + ca * dy);
                    // interior body pixels only: all four neighbours at half a pixel also body
                    float h = 0.5f / SIZE / o->radius;
                    if (synth_shape_at(o->kind, u, v) != 1 || synth_shape_at(o->kind, u + h, v) != 1 ||
                        synth_shape_at(o->kind, u - h, v) != 1 || synth_shape_at(o->kind, u, v + h) != 1 ||
                        synth_shape_at(o->kind, u, v - h) != 1)
                        continue;
                    for (int c = 0; c < 3; c++) sum[c] += rgb[3 * (y * SIZE + x) + c];
                    n++;
                }
            CHECK(n >= 8, "scene %d object %s has only %.0f interior pixels", i, synth_kind_names[o->kind], n);
            for (int c = 0; c < 3 && n > 0; c++)
                CHECK(fabs(sum[c] / n - o->rgb[c]) < 12, "scene %d %s channel %d: mean %.1f, colour %d", i,
                      synth_kind_names[o->kind], c, sum[c] / n, o->rgb[c]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Text, checked in memory over many scenes

static void test_captions_true_and_affirmative(void) {
    static const char *const negation_words[] = {"no", "not", "without", "none", "nothing", "never",
                                                 "lacking", "missing", "absent", "free"};
    char captions[8][SYNTH_TEXT_MAX];
    for (int i = 0; i < 400; i++) {
        SynthScene sc;
        synth_make_scene(11, SYNTH_TRAIN, i, &sc);
        memset(captions, 0xFF, sizeof(captions));
        synth_captions(&sc, &synth_caption_style_default, 11, SYNTH_TRAIN, i, 8, captions, NULL);
        for (int c = 0; c < 8; c++) {
            for (size_t w = 0; w < sizeof(negation_words) / sizeof(*negation_words); w++)
                CHECK(!has_word(captions[c], negation_words[w]), "caption \"%s\" negates", captions[c]);
            // every kind named is present, every present kind is named
            for (int k = 0; k < SYNTH_N_KINDS; k++)
                CHECK(has_word(captions[c], synth_kind_names[k]) == synth_scene_has_kind(&sc, k),
                      "caption \"%s\" and kind %s disagree", captions[c], synth_kind_names[k]);
            // a colour named right before a kind is that object's colour
            for (int a = 0; a < sc.n_objects; a++)
                for (int col = 0; col < SYNTH_N_COLOURS; col++) {
                    char pair[64];
                    snprintf(pair, sizeof(pair), "%s %s", synth_colour_names[col], synth_kind_names[sc.objects[a].kind]);
                    CHECK(!strstr(captions[c], pair) || col == sc.objects[a].colour, "wrong colour in \"%s\"", captions[c]);
                }
        }
        // the scene's eligible templates are used without repeats while they last
        int distinct = 1;
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < a; b++) distinct &= strcmp(captions[a], captions[b]) != 0;
        CHECK(distinct, "scene %d repeats a caption among its first five", i);
    }
}

/* Checks one image's evaluation rows with the oracle. */
static void check_eval_rows(const SynthScene *sc, const SynthPhrasing *ph, const SynthEvalRows *rows, const char *where) {
    static const Shape option_shape[4] = {SHAPE_NONE, SHAPE_HYBRID, SHAPE_AFFIRM, SHAPE_NEGATE};
    static const Shape question_shape[MCQ_N_TYPES] = {SHAPE_AFFIRM, SHAPE_NEGATE, SHAPE_HYBRID};
    Shape shape;
    Match m;
    for (int type = 0; type < MCQ_N_TYPES; type++)
        for (int o = 0; o < 4; o++) {
            const char *s = rows->mcq[type][o];
            int truth = judge(ph, sc, s, &shape, &m);
            Shape want = o == 0 ? question_shape[type] : option_shape[o];
            CHECK(truth == (o == 0), "%s: MCQ %s option %d \"%s\" judged %d", where, mcq_type_name((McqType)type), o, s, truth);
            CHECK(shape == want, "%s: MCQ option %d \"%s\" has shape %d, want %d", where, o, s, shape, want);
            // MCQ names objects without colours, as NegBench does
            for (int i = 0; i < m.s.n; i++) CHECK(m.s.colour[i] < 0, "%s: MCQ names a colour: \"%s\"", where, s);
        }
    for (int k = 0; k < SYNTH_N_EVAL_TEMPLATES; k++) {
        int truth = judge(ph, sc, rows->retrieval[k], &shape, &m);
        CHECK(truth == 1 && shape == SHAPE_AFFIRM, "%s: retrieval \"%s\"", where, rows->retrieval[k]);
        CHECK(m.s.n == sc->n_objects, "%s: retrieval \"%s\" must name all %d objects", where, rows->retrieval[k], sc->n_objects);
        for (int i = 0; i < m.s.n; i++) CHECK(m.s.colour[i] >= 0, "%s: retrieval needs colours", where);
        truth = judge(ph, sc, rows->negated_retrieval[k], &shape, &m);
        CHECK(truth == 1 && shape == SHAPE_HYBRID && m.s.n == sc->n_objects, "%s: negated retrieval \"%s\"", where,
              rows->negated_retrieval[k]);
    }
    int truth = judge(ph, sc, rows->ccneg_caption, &shape, &m);
    CHECK(truth == 1 && shape == SHAPE_AFFIRM && m.s.n == sc->n_objects, "%s: CC-Neg caption \"%s\"", where, rows->ccneg_caption);
    truth = judge(ph, sc, rows->ccneg_negated, &shape, &m);
    // false because it denies a present object (with its right colour), stating the rest
    CHECK(truth == 0 && m.has_x && mention_true(sc, m.x_kind, m.x_colour), "%s: CC-Neg negated \"%s\"", where, rows->ccneg_negated);
    CHECK(m.s.n == sc->n_objects - 1, "%s: CC-Neg negated \"%s\" must state the other objects", where, rows->ccneg_negated);
}

static void test_eval_rows_ground_truth(void) {
    SynthEvalRows *rows = (SynthEvalRows *)malloc(sizeof(SynthEvalRows));
    SynthEvalRows *other = (SynthEvalRows *)malloc(sizeof(SynthEvalRows));
    for (int p = 0; p < SYNTH_N_PHRASINGS; p++)
        for (int i = 0; i < 500; i++) {
            SynthScene sc;
            synth_make_scene(5, SYNTH_TEST, i, &sc);
            memset(rows, 0xFF, sizeof(*rows));
            synth_eval_rows(&sc, &synth_phrasings[p], 5, SYNTH_TEST, i, rows);
            char where[64];
            snprintf(where, sizeof(where), "%s test %d", synth_phrasings[p].name, i);
            check_eval_rows(&sc, &synth_phrasings[p], rows, where);
            // the next phrasing asks about the same objects: each option mentions the same kinds
            synth_eval_rows(&sc, &synth_phrasings[(p + 1) % SYNTH_N_PHRASINGS], 5, SYNTH_TEST, i, other);
            for (int t = 0; t < MCQ_N_TYPES; t++)
                for (int o = 0; o < 4; o++)
                    for (int k = 0; k < SYNTH_N_KINDS; k++)
                        CHECK(has_word(rows->mcq[t][o], synth_kind_names[k]) == has_word(other->mcq[t][o], synth_kind_names[k]),
                              "phrasings disagree on objects: \"%s\" vs \"%s\"", rows->mcq[t][o], other->mcq[t][o]);
        }
    free(rows);
    free(other);
}

// ---------------------------------------------------------------------------------------------
// Template hygiene

typedef struct {
    char **item;
    int n, cap;
} StrList;

static void list_add(StrList *l, const char *s, size_t len) {
    for (int i = 0; i < l->n; i++)
        if (strlen(l->item[i]) == len && strncmp(l->item[i], s, len) == 0) return;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->item = (char **)realloc(l->item, (size_t)l->cap * sizeof(char *));
    }
    l->item[l->n] = strndup(s, len);
    l->n++;
}
static int list_has(const StrList *l, const char *s) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->item[i], s) == 0) return 1;
    return 0;
}
static void list_free(StrList *l) {
    for (int i = 0; i < l->n; i++) free(l->item[i]);
    free(l->item);
    memset(l, 0, sizeof(*l));
}

/* The literal fragments of a template, normalised: lower case, non-letters as spaces, spaces
 * collapsed ("{c}, but no {x} is present." -> "but no", "is present"). */
static void add_fragments(StrList *out, const char *tmpl) {
    char norm[SYNTH_TEXT_MAX];
    size_t n = 0;
    for (const char *p = tmpl;; p++) {
        int boundary = *p == '\0' || (p[0] == '{' && p[1] && p[2] == '}');
        if (boundary) {
            while (n > 0 && norm[n - 1] == ' ') n--;
            if (n > 0) list_add(out, norm, n);
            n = 0;
            if (*p == '\0') break;
            p += 2;
            continue;
        }
        char c = isalpha((unsigned char)*p) ? (char)tolower((unsigned char)*p) : ' ';
        if (c == ' ' && (n == 0 || norm[n - 1] == ' ')) continue;
        norm[n++] = c;
    }
}

static void add_words(StrList *out, const char *text) {
    for (const char *p = text; *p;) {
        if (*p == '{' && p[1] && p[2] == '}') { p += 3; continue; }
        if (!isalpha((unsigned char)*p)) { p++; continue; }
        char w[64];
        size_t n = 0;
        while (isalpha((unsigned char)*p) && n < sizeof(w) - 1) w[n++] = (char)tolower((unsigned char)*p++);
        list_add(out, w, n);
    }
}

/* Every TNG template (tng/templates.h), each table in turn */
static void add_tng_templates(StrList *out) {
    const char *const *tables[] = {tng_hybrid_templates, tng_full_templates, tng_affirm_templates,
                                   tng_standalone_templates};
    const int counts[] = {TNG_N_HYBRID_TEMPLATES, TNG_N_FULL_TEMPLATES, TNG_N_AFFIRM_TEMPLATES,
                          TNG_N_STANDALONE_TEMPLATES};
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < counts[t]; i++) list_add(out, tables[t][i], strlen(tables[t][i]));
}

static void test_template_hygiene(void) {
    StrList tng = {0};
    add_tng_templates(&tng);

    // frames: what training text holds (TNG templates, training captions); clauses: the
    // pre-training-only negation clauses, which no evaluation set and no TNG template may share
    StrList frames = {0}, clauses = {0}, known_words = {0};
    for (int i = 0; i < tng.n; i++) {
        add_fragments(&frames, tng.item[i]);
        add_words(&known_words, tng.item[i]);
    }
    for (int i = 0; i < synth_n_caption_templates; i++) {
        add_fragments(&frames, synth_caption_templates[i].text);
        add_words(&known_words, synth_caption_templates[i].text);
    }
    for (int i = 0; i < synth_n_negation_clauses; i++) add_fragments(&clauses, synth_negation_clauses[i]);
    for (int f = 0; f < clauses.n; f++)
        CHECK(!list_has(&frames, clauses.item[f]), "negation clause fragment \"%s\" occurs in a TNG or caption template",
              clauses.item[f]);
    // what the placeholders of training captions expand to
    for (int k = 0; k < SYNTH_N_KINDS; k++) add_words(&known_words, synth_kind_names[k]);
    for (int c = 0; c < SYNTH_N_COLOURS; c++) add_words(&known_words, synth_colour_names[c]);
    add_words(&known_words, "a an and one two three object objects");

    // held-out sets: every fragment new; the in-template set: every fragment a training frame
    StrList phrasing_frags[SYNTH_N_PHRASINGS] = {{0}};
    int n_held_out = 0, n_in_template = 0;
    for (int p = 0; p < SYNTH_N_PHRASINGS; p++) {
        const SynthPhrasing *ph = &synth_phrasings[p];
        n_held_out += ph->held_out;
        n_in_template += !ph->held_out;
        for (int s = 0; s < SYNTH_N_EVAL_TEMPLATES; s++) {
            const char *tmpls[3] = {ph->affirm[s], ph->negate[s], ph->hybrid[s]};
            for (int t = 0; t < 3; t++) {
                StrList frags = {0}, words = {0};
                add_fragments(&frags, tmpls[t]);
                add_words(&words, tmpls[t]);
                for (int f = 0; f < frags.n; f++) {
                    CHECK(list_has(&frames, frags.item[f]) == !ph->held_out,
                          "%s template \"%s\": fragment \"%s\" %s training or TNG template", ph->name, tmpls[t],
                          frags.item[f], ph->held_out ? "occurs in a" : "is in no");
                    CHECK(!list_has(&clauses, frags.item[f]), "%s template \"%s\": fragment \"%s\" occurs in a negation clause",
                          ph->name, tmpls[t], frags.item[f]);
                    list_add(&phrasing_frags[p], frags.item[f], strlen(frags.item[f]));
                }
                for (int w = 0; w < words.n; w++)
                    CHECK(list_has(&known_words, words.item[w]),
                          "%s template \"%s\": word \"%s\" occurs in no training caption or TNG template",
                          ph->name, tmpls[t], words.item[w]);
                list_free(&frags);
                list_free(&words);
            }
        }
    }
    CHECK(n_held_out == 2 && n_in_template == 1, "%d held-out and %d in-template sets", n_held_out, n_in_template);
    for (int p = 0; p < SYNTH_N_PHRASINGS; p++)
        for (int q = 0; q < p; q++)
            for (int f = 0; f < phrasing_frags[p].n && synth_phrasings[p].held_out && synth_phrasings[q].held_out; f++)
                CHECK(!list_has(&phrasing_frags[q], phrasing_frags[p].item[f]), "%s and %s share the fragment \"%s\"",
                      synth_phrasings[q].name, synth_phrasings[p].name, phrasing_frags[p].item[f]);
    for (int p = 0; p < SYNTH_N_PHRASINGS; p++) list_free(&phrasing_frags[p]);
    list_free(&frames);
    list_free(&clauses);
    list_free(&known_words);
    list_free(&tng);
}

static void test_lexicon_agrees(void) {
    // Every kind is a TNG lexicon noun (so TNG can pick it as an absent object), and no other
    // word of a training caption or negation clause is (so TNG never picks "image" or a colour
    // instead).
    CHECK(access(LEXICON_DEFAULT_PATH, R_OK) == 0, "%s missing: run python3 data/build_lexicon.py", LEXICON_DEFAULT_PATH);
    if (access(LEXICON_DEFAULT_PATH, R_OK) != 0) return;
    Lexicon *lex = lexicon_load(LEXICON_DEFAULT_PATH);
    for (int k = 0; k < SYNTH_N_KINDS; k++) {
        int id = lexicon_lookup(lex, synth_kind_names[k], strlen(synth_kind_names[k]));
        CHECK(id >= 0 && strcmp(lex->lemma[id], synth_kind_names[k]) == 0, "kind %s is not a lexicon lemma", synth_kind_names[k]);
    }
    StrList words = {0};
    for (int i = 0; i < synth_n_caption_templates; i++) add_words(&words, synth_caption_templates[i].text);
    for (int i = 0; i < synth_n_negation_clauses; i++) add_words(&words, synth_negation_clauses[i]);
    for (int c = 0; c < SYNTH_N_COLOURS; c++) add_words(&words, synth_colour_names[c]);
    add_words(&words, "a an and one two three object objects");
    for (int w = 0; w < words.n; w++)
        CHECK(lexicon_lookup(lex, words.item[w], strlen(words.item[w])) < 0,
              "caption word \"%s\" is a lexicon noun: TNG could take it for an object", words.item[w]);
    list_free(&words);
    lexicon_free(lex);
}

// ---------------------------------------------------------------------------------------------
// The world on disk

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}
static void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* nftw callback state: the file under root a is compared with the same path under root b. */
static const char *compare_root_a, *compare_root_b;
static int compare_n_files, compare_n_diff;
static int compare_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)ftw;
    if (flag != FTW_F) return 0;
    char other[4096];
    snprintf(other, sizeof(other), "%s%s", compare_root_b, path + strlen(compare_root_a));
    size_t na, nb;
    char *a = read_file(path, &na), *b = read_file(other, &nb);
    compare_n_files++;
    if (!a || !b || na != nb || memcmp(a, b, na) != 0) {
        compare_n_diff++;
        fprintf(stderr, "  differs: %s vs %s\n", path, other);
    }
    free(a);
    free(b);
    return 0;
}

static SynthConfig tiny_config(void) {
    SynthConfig cfg;
    synth_config_default(&cfg);
    cfg.seed = 99;
    cfg.size = 48;
    cfg.n_images[SYNTH_TRAIN] = 8;
    cfg.n_images[SYNTH_VAL] = 5;
    cfg.n_images[SYNTH_TEST] = 7;
    cfg.n_captions = 3;
    cfg.phrasing_mask = (1 << SYNTH_N_PHRASINGS) - 1;
    cfg.verbose = 0;
    return cfg;
}

static char dir_a[64], dir_b[64];

static void test_world_is_deterministic(void) {
    snprintf(dir_a, sizeof(dir_a), "/tmp/tng_synth_aXXXXXX");
    snprintf(dir_b, sizeof(dir_b), "/tmp/tng_synth_bXXXXXX");
    CHECK(mkdtemp(dir_a) && mkdtemp(dir_b), "mkdtemp failed");
    SynthConfig cfg = tiny_config();
    synth_write_world(&cfg, dir_a);
    synth_write_world(&cfg, dir_b);
    compare_root_a = dir_a;
    compare_root_b = dir_b;
    compare_n_files = compare_n_diff = 0;
    nftw(dir_a, compare_entry, 16, FTW_PHYS);
    // 20 images + 3 pair CSVs + 2 splits x 3 phrasings x 4 eval CSVs + world.json
    CHECK(compare_n_files == 20 + 3 + 24 + 1, "found %d files, expected 48", compare_n_files);
    CHECK(compare_n_diff == 0, "%d files differ between two runs", compare_n_diff);
}

static int image_index(const char *path, const char *split) {
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "images/%s/", split);
    const char *p = strstr(path, prefix);
    return p ? atoi(p + strlen(prefix)) : -1;
}

static void test_world_files_load(void) {
    SynthConfig cfg = tiny_config();
    char path[256], err[512];
    for (int split = 0; split < SYNTH_N_SPLITS; split++) {
        const char *name = synth_split_names[split];
        snprintf(path, sizeof(path), "%s/%s.csv", dir_a, name);
        Dataset ds = {0};
        DatasetOptions opt = {.format = DATASET_AUTO};
        int rc = dataset_load(path, &opt, &ds, err, sizeof(err));
        CHECK(rc == 0, "%s: %s", path, err);
        if (rc != 0) continue;
        CHECK(ds.format == DATASET_CSV && ds.count == cfg.n_images[split], "%s: format %d, %d items, want %lld",
              path, ds.format, ds.count, (long long)cfg.n_images[split]);
        for (int i = 0; i < ds.count; i++) {
            const DatasetItem *it = &ds.items[i];
            int idx = image_index(it->image_path, name);
            SynthScene sc;
            synth_make_scene(cfg.seed, (SynthSplit)split, idx, &sc);
            CHECK(it->n_captions == cfg.n_captions, "%s item %d: %d captions", path, i, it->n_captions);
            CHECK(it->n_objects == sc.n_objects, "%s item %d: %d objects, scene has %d", path, i, it->n_objects, sc.n_objects);
            for (int o = 0; o < it->n_objects; o++) {
                int k = index_of(synth_kind_names, SYNTH_N_KINDS, it->objects[o], strlen(it->objects[o]));
                CHECK(k >= 0 && synth_scene_has_kind(&sc, k), "%s item %d: object %s is not in the scene", path, i, it->objects[o]);
            }
            DecodedImage img = {0};
            ImageStatus st = image_decode_file(it->image_path, 0, &img, err, sizeof(err));
            CHECK(st == IMAGE_OK && img.width == cfg.size && img.height == cfg.size && img.channels == 3,
                  "%s: status %d, %dx%dx%d (%s)", it->image_path, st, img.width, img.height, img.channels, st ? err : "");
            image_free(&img);
        }
        dataset_free(&ds);
    }
}

/* Reads every row of an evaluation CSV with the raw CSV reader and checks it with the oracle. */
static void check_eval_file(const SynthConfig *cfg, int split, int p, const char *kind) {
    const SynthPhrasing *ph = &synth_phrasings[p];
    char path[256], err[512];
    snprintf(path, sizeof(path), "%s/%s_%s%s.csv", dir_a, kind, synth_split_names[split], ph->suffix);
    size_t size;
    char *text = read_file(path, &size);
    CHECK(text != NULL, "cannot read %s", path);
    if (!text) return;
    CsvReader r;
    csv_init(&r, text, size, ',', path);
    int n = csv_next_row(&r, err, sizeof(err)), rows = 0;
    int mcq = strcmp(kind, "mcq") == 0, ccneg = strcmp(kind, "ccneg") == 0;
    const char *header = mcq ? "correct_answer caption_0 caption_1 caption_2 caption_3 correct_answer_template image_path"
                         : ccneg ? "image_path caption negated_caption" : "filepath captions";
    char got[256] = "";
    for (int f = 0; f < n; f++) snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", f ? " " : "", r.fields[f]);
    CHECK(strcmp(got, header) == 0, "%s header \"%s\"", path, got);
    SynthEvalRows *want = (SynthEvalRows *)malloc(sizeof(SynthEvalRows));
    while ((n = csv_next_row(&r, err, sizeof(err))) > 0) {
        int idx = image_index(r.fields[mcq ? 6 : 0], synth_split_names[split]);
        SynthScene sc;
        synth_make_scene(cfg->seed, (SynthSplit)split, idx, &sc);
        synth_eval_rows(&sc, ph, cfg->seed, (SynthSplit)split, idx, want);
        Shape shape;
        Match m;
        if (mcq) {
            int type = mcq_type_from_name(r.fields[5]);
            CHECK(n == 7 && strcmp(r.fields[0], "0") == 0 && type >= 0, "%s line %d", path, r.row_line);
            for (int o = 0; o < 4 && type >= 0; o++) {
                CHECK(judge(ph, &sc, r.fields[1 + o], &shape, &m) == (o == 0), "%s line %d option %d \"%s\"", path,
                      r.row_line, o, r.fields[1 + o]);
                CHECK(strcmp(r.fields[1 + o], want->mcq[type][o]) == 0, "%s line %d: the file differs from synth_eval_rows", path, r.row_line);
            }
        } else if (ccneg) {
            CHECK(n == 3 && judge(ph, &sc, r.fields[1], &shape, &m) == 1 && judge(ph, &sc, r.fields[2], &shape, &m) == 0,
                  "%s line %d", path, r.row_line);
        } else {
            char **items = NULL;
            int count = 0;
            int rc = python_list_parse(r.fields[1], &items, &count, err, sizeof(err));
            CHECK(n == 2 && rc == 0 && count == SYNTH_N_EVAL_TEMPLATES, "%s line %d: %s", path, r.row_line, rc ? err : "");
            for (int c = 0; c < count; c++) {
                int truth = judge(ph, &sc, items[c], &shape, &m);
                Shape expect = strcmp(kind, "retrieval") == 0 ? SHAPE_AFFIRM : SHAPE_HYBRID;
                CHECK(truth == 1 && shape == expect, "%s line %d caption \"%s\"", path, r.row_line, items[c]);
            }
            if (rc == 0) csv_free_strings(items, count);
        }
        rows++;
    }
    CHECK(n == 0, "%s: %s", path, err);
    long expect_rows = (long)cfg->n_images[split] * (mcq ? MCQ_N_TYPES : 1);
    CHECK(rows == expect_rows, "%s: %d rows, want %ld", path, rows, expect_rows);
    free(want);
    csv_free(&r);
    free(text);
}

static void test_eval_files(void) {
    SynthConfig cfg = tiny_config();
    static const char *const kinds[] = {"mcq", "retrieval", "negated_retrieval", "ccneg"};
    static const DatasetFormat formats[] = {DATASET_NEGBENCH_MCQ, DATASET_NEGBENCH_RETRIEVAL,
                                            DATASET_NEGBENCH_RETRIEVAL, DATASET_CCNEG};
    for (int split = SYNTH_VAL; split <= SYNTH_TEST; split++)
        for (int p = 0; p < SYNTH_N_PHRASINGS; p++)
            for (int k = 0; k < 4; k++) {
                check_eval_file(&cfg, split, p, kinds[k]);
                // and the project's NegBench / CC-Neg readers recognise and load the file
                char path[256], err[512];
                snprintf(path, sizeof(path), "%s/%s_%s%s.csv", dir_a, kinds[k], synth_split_names[split], synth_phrasings[p].suffix);
                Dataset ds = {0};
                DatasetOptions opt = {.format = DATASET_AUTO};
                int rc = dataset_load(path, &opt, &ds, err, sizeof(err));
                CHECK(rc == 0 && ds.format == formats[k], "%s: rc %d format %d (%s)", path, rc, ds.format, rc ? err : "");
                if (rc == 0) dataset_free(&ds);
            }
    remove_tree(dir_a);
    remove_tree(dir_b);
}

int main(void) {
    RUN_TEST(test_shapes_fill_and_fit);
    RUN_TEST(test_scenes_are_exact);
    RUN_TEST(test_render_draws_the_scene);
    RUN_TEST(test_captions_true_and_affirmative);
    RUN_TEST(test_eval_rows_ground_truth);
    RUN_TEST(test_template_hygiene);
    RUN_TEST(test_lexicon_agrees);
    RUN_TEST(test_world_is_deterministic);
    RUN_TEST(test_world_files_load);
    RUN_TEST(test_eval_files);
    return test_summary();
}
