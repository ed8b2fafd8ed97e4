/*
 * synth.c: the text of the synthetic world (training captions, NegBench-style evaluation
 * rows) and the writer that puts images and CSVs on disk.
 *
 * Key design choice: every template is data (the tables below), rendered by one function, so
 * tests/test_synth.c can hold the evaluation phrasings against the training captions and the
 * TNG generator's templates, and can parse every row back into the objects it claims.
 * The table comments record why each phrasing is shaped the way it is.
 */
#include "synth/synth.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/common.h" // defines: die, fopenCheck, fwriteCheck, fcloseCheck, mallocCheck, now_seconds
#include "dataset/image.h"  // defines: image_encode_jpeg
#include "util/rng.h"    // defines: Rng, rng_seed, rng_below

// ---------------------------------------------------------------------------------------------
// Templates (written for this project)

/* Affirmative captions only. They avoid every word the TNG lexicon counts as an object other
 * than the object kinds ("picture", "photo" and "drawing" are lexicon nouns), so TNG never
 * takes a caption word like "drawing" for an absent object. */
const SynthCaptionTemplate synth_caption_templates[] = {
    {"{L}", 1},
    {"{L} on a noisy background", 1},
    {"{n}: {L}", 1},
    {"an image of {L}", 1},
    {"{l}", 1},
    {"a simple image with {L}", 1},
    {"there is {L}", 1},
    {"{l}, brightly coloured", 1},
    {"{A} next to {B}", 2},
    {"the objects here include {L}", 2},
};
const int synth_n_caption_templates =
    (int)(sizeof(synth_caption_templates) / sizeof(synth_caption_templates[0]));

/* Pre-training negation clauses, like the negations web captions carry now and then. Each
 * fragment is new to the evaluation phrasings and to the TNG templates, so held-out questions
 * stay held out; they teach "no", "not" and "without" a meaning, not the test's wording. No word
 * here is a lexicon noun, so TNG never takes one for an object. */
const char *const synth_negation_clauses[] = {
    "{c}, without {x}",
    "{c}, not including {x}",
    "{c}, yet no {X} at all",
    "{c}; {x} is missing",
    "{c}; {x} is not there",
};
const int synth_n_negation_clauses = (int)(sizeof(synth_negation_clauses) / sizeof(synth_negation_clauses[0]));

const SynthCaptionStyle synth_caption_style_default = {.negations = 0, .coverage = 1};

/* The evaluation phrasings. Held-out sets: every fragment between placeholders is new (no
 * training caption, pre-training clause or TNG template has it), every word is old (training
 * captions have "include" and "there is", TNG templates have "shows", "not", "present", "you
 * will find", ...). std and alt share no fragment either, so "alt" measures how far negation
 * understanding carries to new wording. The in-template set is made of the training frames
 * themselves: affirmations are training captions ("there is {L}", "an image of {L}"), negations
 * are TNG hybrid clauses ("{c}. There is no {x} in the scene.", "{c}; no {x} can be seen.")
 * standing alone or after such a caption, exactly as TNG writes them in training. */
const SynthPhrasing synth_phrasings[SYNTH_N_PHRASINGS] = {
    {"std",
     "",
     1,
     {"This image shows {s}.", "{s} can be found in this image."},
     {"This image does not include {x}.", "In this image there is not any {X}."},
     {"This image shows {s} but does not include {x}.", "In this image there is {s} but not any {X}."}},
    {"alt",
     "_alt",
     1,
     {"Visible here: {s}.", "Here you will find {s}."},
     {"{x} is not present here.", "Here you will find no {X}."},
     {"Visible here: {s}, though {x} is not present.", "Here you will find {s} while {x} is not present."}},
    {"intemplate",
     "_intemplate",
     0,
     {"there is {s}", "an image of {s}"},
     {"There is no {X} in the scene.", "No {X} can be seen."},
     {"there is {s}. There is no {X} in the scene.", "an image of {s}; no {X} can be seen."}},
};

int synth_phrasing_index(const char *name) {
    for (int p = 0; p < SYNTH_N_PHRASINGS; p++)
        if (strcmp(name, synth_phrasings[p].name) == 0) return p;
    return -1;
}

static const char *const COUNT_WORDS[SYNTH_SCENE_CAPACITY + 1] = {"", "one object", "two objects",
                                                                  "three objects", "four objects"};

// ---------------------------------------------------------------------------------------------
// Rendering text

/* A bounded string builder: overflowing SYNTH_TEXT_MAX is a bug in the tables, so it dies. */
typedef struct {
    char *buf;
    size_t len;
} Text;

static void text_append(Text *t, const char *s, size_t n) {
    if (t->len + n + 1 > SYNTH_TEXT_MAX) die("synth: a text outgrew %d bytes: \"%.*s...\"", SYNTH_TEXT_MAX, (int)t->len, t->buf);
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}
static void text_puts(Text *t, const char *s) { text_append(t, s, strlen(s)); }

/* "a red ball", "an umbrella" (the article agrees with the next word), or without the
 * article ("red ball") for templates that bring their own determiner ("not any", "no"). */
static void object_phrase(Text *t, const SynthObject *o, int with_colour, int with_article) {
    const char *first = with_colour ? synth_colour_names[o->colour] : synth_kind_names[o->kind];
    if (with_article) text_puts(t, strchr("aeiou", first[0]) ? "an " : "a ");
    if (with_colour) {
        text_puts(t, synth_colour_names[o->colour]);
        text_puts(t, " ");
    }
    text_puts(t, synth_kind_names[o->kind]);
}

/* "A", "A and B", "A, B and C". */
static void list_phrase(Text *t, const SynthObject *const *objs, int n, int with_colour) {
    for (int i = 0; i < n; i++) {
        if (i > 0) text_puts(t, i == n - 1 ? " and " : ", ");
        object_phrase(t, objs[i], with_colour, 1);
    }
}

/* The phrase of an object stated absent (or falsely denied): with and without its article. */
typedef struct {
    char with_article[SYNTH_TEXT_MAX], bare[SYNTH_TEXT_MAX];
} Denied;
static void denied_phrase(Denied *d, const SynthObject *o, int with_colour) {
    Text a = {d->with_article, 0}, b = {d->bare, 0};
    object_phrase(&a, o, with_colour, 1);
    object_phrase(&b, o, with_colour, 0);
}

/* Renders tmpl into dst (SYNTH_TEXT_MAX bytes), replacing {c} with value[c]; the first letter
 * of the result is upper-cased. */
static void render(char *dst, const char *tmpl, const char *const value[128]) {
    Text t = {dst, 0};
    dst[0] = '\0';
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '{' && p[1] && p[2] == '}' && value[(unsigned char)p[1]]) {
            text_puts(&t, value[(unsigned char)p[1]]);
            p += 2;
        } else if (p[0] == '{') {
            die("synth: template \"%s\" has an unknown or unset placeholder", tmpl);
        } else {
            text_append(&t, p, 1);
        }
    }
    dst[0] = (char)toupper((unsigned char)dst[0]);
}

/* The scene's objects as pointers, in a random order. */
static void shuffled_objects(const SynthScene *scene, Rng *rng, const SynthObject **out) {
    int order[SYNTH_SCENE_CAPACITY];
    for (int i = 0; i < scene->n_objects; i++) order[i] = i;
    for (int i = scene->n_objects - 1; i > 0; i--) {
        int j = (int)rng_below(rng, (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < scene->n_objects; i++) out[i] = &scene->objects[order[i]];
}

/* A kind the scene does not hold, uniformly. */
static int absent_kind(const SynthScene *scene, Rng *rng) {
    int absent[SYNTH_N_KINDS], n = 0;
    for (int k = 0; k < SYNTH_N_KINDS; k++)
        if (!synth_scene_has_kind(scene, k)) absent[n++] = k;
    return absent[rng_below(rng, (uint64_t)n)];
}

/* The objects one caption names (bit a: objects[a]): each with probability coverage, at least
 * one; with coverage 1 all of them, drawing nothing. */
static unsigned named_objects(const SynthScene *scene, double coverage, Rng *rng) {
    unsigned all = (1u << scene->n_objects) - 1, named = 0;
    if (coverage >= 1) return all;
    for (int a = 0; a < scene->n_objects; a++)
        if (rng_uniform(rng) < coverage) named |= 1u << a;
    if (named == 0) named = 1u << rng_below(rng, (uint64_t)scene->n_objects);
    return named;
}

/* Whether a caption template can state n_named of the scene's objects: enough of them, and no
 * count ("two objects: ...") unless the caption names them all, where the count is true. */
static int template_fits(const SynthCaptionTemplate *t, int n_named, int n_objects) {
    return t->min_objects <= n_named && (n_named == n_objects || !strstr(t->text, "{n}"));
}

/* Appends a negation clause denying an absent kind to the caption in out; returns the kind. */
static int add_negation_clause(const SynthScene *scene, Rng *rng, char *out) {
    SynthObject absent = {.kind = absent_kind(scene, rng)};
    const char *clause = synth_negation_clauses[rng_below(rng, (uint64_t)synth_n_negation_clauses)];
    Denied name;
    denied_phrase(&name, &absent, 0);
    char caption[SYNTH_TEXT_MAX];
    memcpy(caption, out, SYNTH_TEXT_MAX);
    const char *value[128] = {0};
    value['c'] = caption;
    value['x'] = name.with_article;
    value['X'] = name.bare;
    render(out, clause, value);
    return absent.kind;
}

void synth_captions(const SynthScene *scene, const SynthCaptionStyle *style, uint64_t seed,
                    SynthSplit split, int64_t index, int n_captions, char (*out)[SYNTH_TEXT_MAX],
                    SynthCaptionFacts *facts) {
    // three streams: the historical captions draw exactly what they always drew
    Rng rng, coverage_rng, negation_rng;
    int twin = scene->twin ? SYNTH_STREAM_TWIN_TEXT : 0;
    rng_seed(&rng, synth_stream_seed(seed, split, index, (SynthStream)(SYNTH_STREAM_CAPTIONS + twin)));
    rng_seed(&coverage_rng, synth_stream_seed(seed, split, index, (SynthStream)(SYNTH_STREAM_COVERAGE + twin)));
    rng_seed(&negation_rng, synth_stream_seed(seed, split, index, (SynthStream)(SYNTH_STREAM_NEGATION + twin)));
    int eligible[64], n_eligible = 0;
    for (int k = 0; k < synth_n_caption_templates; k++)
        if (synth_caption_templates[k].min_objects <= scene->n_objects) eligible[n_eligible++] = k;
    for (int c = 0; c < n_captions; c++) {
        // a fresh shuffle of the eligible templates every n_eligible captions: distinct while they last
        int slot = c % n_eligible;
        if (slot == 0)
            for (int i = n_eligible - 1; i > 0; i--) {
                int j = (int)rng_below(&rng, (uint64_t)(i + 1)), t = eligible[i];
                eligible[i] = eligible[j];
                eligible[j] = t;
            }
        unsigned named = named_objects(scene, style->coverage, &coverage_rng);
        const SynthObject *shuffled[SYNTH_SCENE_CAPACITY], *objs[SYNTH_SCENE_CAPACITY];
        shuffled_objects(scene, &rng, shuffled);
        int n_named = 0;
        for (int i = 0; i < scene->n_objects; i++)
            if (named >> (shuffled[i] - scene->objects) & 1) objs[n_named++] = shuffled[i];
        // the shuffled template, or the next one that fits a partial caption (the list holds {L})
        int pick = slot;
        while (!template_fits(&synth_caption_templates[eligible[pick]], n_named, scene->n_objects))
            pick = (pick + 1) % n_eligible;
        char coloured[SYNTH_TEXT_MAX], plain[SYNTH_TEXT_MAX], first[SYNTH_TEXT_MAX], rest[SYNTH_TEXT_MAX];
        Text t_col = {coloured, 0}, t_plain = {plain, 0}, t_first = {first, 0}, t_rest = {rest, 0};
        list_phrase(&t_col, objs, n_named, 1);
        list_phrase(&t_plain, objs, n_named, 0);
        list_phrase(&t_first, objs, 1, 1);
        list_phrase(&t_rest, objs + 1, n_named - 1, 1);
        const char *value[128] = {0};
        value['L'] = coloured;
        value['l'] = plain;
        value['n'] = COUNT_WORDS[n_named];
        value['A'] = first;
        value['B'] = rest;
        render(out[c], synth_caption_templates[eligible[pick]].text, value);

        int denied = -1;
        if (style->negations > 0 && rng_uniform(&negation_rng) < style->negations)
            denied = add_negation_clause(scene, &negation_rng, out[c]);
        if (facts) facts[c] = (SynthCaptionFacts){.named = named, .denied_kind = denied};
    }
}

void synth_caption_stats_add(SynthCaptionStats *stats, const SynthScene *scene,
                             const SynthCaptionFacts *facts, int n_captions) {
    for (int c = 0; c < n_captions; c++) {
        int n_named = __builtin_popcount(facts[c].named), negated = facts[c].denied_kind >= 0;
        stats->captions++;
        stats->partial += n_named < scene->n_objects;
        stats->negated += negated;
        stats->objects += scene->n_objects;
        stats->named += n_named;
        // the denied kind is absent, so it is a mention distinct from the named objects
        stats->unmentioned += SYNTH_N_KINDS - n_named - negated;
        stats->unmentioned_present += scene->n_objects - n_named;
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation rows

/* Renders one evaluation template: {s} the stated objects, {x} / {X} the denied one. */
static void render_sx(char *dst, const char *tmpl, const char *s, const Denied *x) {
    const char *value[128] = {0};
    value['s'] = s;
    if (x) {
        value['x'] = x->with_article;
        value['X'] = x->bare;
    }
    render(dst, tmpl, value);
}

static void make_mcq(const SynthScene *scene, const SynthPhrasing *ph, McqType type, Rng *rng,
                     char (*option)[SYNTH_TEXT_MAX]) {
    int slot = (int)rng_below(rng, SYNTH_N_EVAL_TEMPLATES);
    const SynthObject *objs[SYNTH_SCENE_CAPACITY];
    shuffled_objects(scene, rng, objs);
    int n_stated = 1 + (int)rng_below(rng, scene->n_objects < 2 ? 1 : 2);
    SynthObject absent = {.kind = absent_kind(scene, rng)};
    char stated[SYNTH_TEXT_MAX];
    Text t_stated = {stated, 0};
    list_phrase(&t_stated, objs, n_stated, 0);
    Denied absent_name, present_name; // the false options deny the first stated object
    denied_phrase(&absent_name, &absent, 0);
    denied_phrase(&present_name, objs[0], 0);
    switch (type) {
    case MCQ_POSITIVE: render_sx(option[0], ph->affirm[slot], stated, NULL); break;
    case MCQ_NEGATIVE: render_sx(option[0], ph->negate[slot], NULL, &absent_name); break;
    default: render_sx(option[0], ph->hybrid[slot], stated, &absent_name);
    }
    // roles swapped: the absent object stated, a present one denied
    render_sx(option[1], ph->hybrid[slot], absent_name.with_article, &present_name);
    render_sx(option[2], ph->affirm[slot], absent_name.with_article, NULL);
    render_sx(option[3], ph->negate[slot], NULL, &present_name);
}

void synth_eval_rows(const SynthScene *scene, const SynthPhrasing *phrasing, uint64_t seed,
                     SynthSplit split, int64_t index, SynthEvalRows *out) {
    Rng rng;
    rng_seed(&rng, synth_stream_seed(seed, split, index, SYNTH_STREAM_EVAL));
    for (int type = 0; type < MCQ_N_TYPES; type++) make_mcq(scene, phrasing, (McqType)type, &rng, out->mcq[type]);

    const SynthObject *objs[SYNTH_SCENE_CAPACITY];
    char all[SYNTH_TEXT_MAX];
    for (int slot = 0; slot < SYNTH_N_EVAL_TEMPLATES; slot++) {
        shuffled_objects(scene, &rng, objs);
        Text t_all = {all, 0};
        list_phrase(&t_all, objs, scene->n_objects, 1);
        render_sx(out->retrieval[slot], phrasing->affirm[slot], all, NULL);
    }
    for (int slot = 0; slot < SYNTH_N_EVAL_TEMPLATES; slot++) {
        shuffled_objects(scene, &rng, objs);
        SynthObject absent = {.kind = absent_kind(scene, &rng)};
        Denied absent_name;
        Text t_all = {all, 0};
        list_phrase(&t_all, objs, scene->n_objects, 1);
        denied_phrase(&absent_name, &absent, 0);
        render_sx(out->negated_retrieval[slot], phrasing->hybrid[slot], all, &absent_name);
    }

    // CC-Neg: the true caption states every object; the negated one denies objs[0], present
    int slot = (int)rng_below(&rng, SYNTH_N_EVAL_TEMPLATES);
    shuffled_objects(scene, &rng, objs);
    Text t_all = {all, 0};
    list_phrase(&t_all, objs, scene->n_objects, 1);
    render_sx(out->ccneg_caption, phrasing->affirm[slot], all, NULL);
    char others[SYNTH_TEXT_MAX];
    Text t_others = {others, 0};
    list_phrase(&t_others, objs + 1, scene->n_objects - 1, 1);
    Denied denied;
    denied_phrase(&denied, objs[0], 1);
    if (scene->n_objects > 1) render_sx(out->ccneg_negated, phrasing->hybrid[slot], others, &denied);
    else render_sx(out->ccneg_negated, phrasing->negate[slot], NULL, &denied);
}

// ---------------------------------------------------------------------------------------------
// Writing the world

void synth_config_default(SynthConfig *cfg) {
    *cfg = (SynthConfig){.seed = 1,
                         .size = 64,
                         .n_images = {5000, 500, 1000},
                         .n_captions = 5,
                         .quality = 90,
                         .phrasing_mask = SYNTH_DEFAULT_PHRASINGS,
                         .caption_style = synth_caption_style_default,
                         .verbose = 1};
}

void synth_world_caption_stats(const SynthConfig *cfg, SynthSplit split, SynthCaptionStats *out) {
    *out = (SynthCaptionStats){0};
    char(*captions)[SYNTH_TEXT_MAX] = mallocCheck((size_t)cfg->n_captions * SYNTH_TEXT_MAX);
    SynthCaptionFacts *facts = mallocCheck((size_t)cfg->n_captions * sizeof(SynthCaptionFacts));
    for (int64_t i = 0; i < cfg->n_images[split]; i++) {
        SynthScene scene;
        synth_make_scene(cfg->seed, split, i, &scene);
        synth_captions(&scene, &cfg->caption_style, cfg->seed, split, i, cfg->n_captions, captions, facts);
        synth_caption_stats_add(out, &scene, facts, cfg->n_captions);
    }
    free(captions);
    free(facts);
}

/* mkdir -p, or die naming the folder. */
static void make_dir(const char *path) {
    char err[512];
    if (make_dirs(path, err, sizeof err) != 0) die("synth: %s", err);
}

static FILE *open_out(const char *dir, const char *name, const char *suffix, const char *header) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s%s.csv", dir, name, suffix);
    FILE *f = fopenCheck(path, "wb");
    fprintf(f, "%s\n", header);
    return f;
}

/* One CSV field, RFC 4180: quoted when it holds a comma, a quote or a line break. */
static void csv_field(FILE *f, const char *s, int last) {
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (const char *p = s; *p; p++) {
            if (*p == '"') fputc('"', f);
            fputc(*p, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputs(last ? "\n" : ",", f);
}

/* A Python list literal of strings, as repr() would write it for our ASCII captions. */
static void python_list(char *dst, size_t cap, char (*items)[SYNTH_TEXT_MAX], int n) {
    size_t at = 0;
    dst[at++] = '[';
    for (int i = 0; i < n; i++) {
        if (i > 0) dst[at++] = ',', dst[at++] = ' ';
        dst[at++] = '\'';
        for (const char *p = items[i]; *p; p++) {
            if (at + 4 >= cap) die("synth: retrieval captions outgrew %zu bytes", cap);
            if (*p == '\'' || *p == '\\') dst[at++] = '\\';
            dst[at++] = *p;
        }
        dst[at++] = '\'';
    }
    dst[at++] = ']';
    dst[at] = '\0';
}

typedef struct {
    FILE *mcq, *retrieval, *negated_retrieval, *ccneg;
} EvalFiles;

static void write_eval_rows(const EvalFiles *f, const SynthEvalRows *rows, const char *image_path) {
    for (int type = 0; type < MCQ_N_TYPES; type++) {
        csv_field(f->mcq, "0", 0);
        for (int o = 0; o < 4; o++) csv_field(f->mcq, rows->mcq[type][o], 0);
        csv_field(f->mcq, mcq_type_name((McqType)type), 0);
        csv_field(f->mcq, image_path, 1);
    }
    char list[SYNTH_N_EVAL_TEMPLATES * SYNTH_TEXT_MAX + 64];
    python_list(list, sizeof(list), (char (*)[SYNTH_TEXT_MAX])rows->retrieval, SYNTH_N_EVAL_TEMPLATES);
    csv_field(f->retrieval, image_path, 0);
    csv_field(f->retrieval, list, 1);
    python_list(list, sizeof(list), (char (*)[SYNTH_TEXT_MAX])rows->negated_retrieval, SYNTH_N_EVAL_TEMPLATES);
    csv_field(f->negated_retrieval, image_path, 0);
    csv_field(f->negated_retrieval, list, 1);
    csv_field(f->ccneg, image_path, 0);
    csv_field(f->ccneg, rows->ccneg_caption, 0);
    csv_field(f->ccneg, rows->ccneg_negated, 1);
}

/* A double as JSON, in the fewest digits that read back to the same value. */
static void json_double(FILE *f, double v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.17g", v);
    fputs(buf, f);
}

static void write_world_json(const SynthConfig *cfg, const char *out_dir) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/world.json", out_dir);
    FILE *f = fopenCheck(path, "wb");
    fprintf(f, "{\n  \"generator\": \"tng_synth\",\n  \"seed\": %llu,\n  \"size\": %d,\n",
            (unsigned long long)cfg->seed, cfg->size);
    fprintf(f, "  \"images\": {\"train\": %lld, \"val\": %lld, \"test\": %lld},\n",
            (long long)cfg->n_images[0], (long long)cfg->n_images[1], (long long)cfg->n_images[2]);
    fprintf(f, "  \"captions_per_image\": %d,\n  \"jpeg_quality\": %d,\n  \"kinds\": [", cfg->n_captions, cfg->quality);
    for (int k = 0; k < SYNTH_N_KINDS; k++) fprintf(f, "%s\"%s\"", k ? ", " : "", synth_kind_names[k]);
    fprintf(f, "],\n  \"colours\": [");
    for (int c = 0; c < SYNTH_N_COLOURS; c++) fprintf(f, "%s\"%s\"", c ? ", " : "", synth_colour_names[c]);
    fprintf(f, "],\n  \"phrasings\": [");
    for (int p = 0, n = 0; p < SYNTH_N_PHRASINGS; p++)
        if (cfg->phrasing_mask >> p & 1) fprintf(f, "%s\"%s\"", n++ ? ", " : "", synth_phrasings[p].name);
    fprintf(f, "]");
    if (cfg->twins) fprintf(f, ",\n  \"twins\": true"); // only then, as the caption style below
    const SynthCaptionStyle *style = &cfg->caption_style;
    if (style->negations != synth_caption_style_default.negations || style->coverage != synth_caption_style_default.coverage) {
        // only a non-default world says more, so a default world.json keeps its historical bytes
        SynthCaptionStats st;
        synth_world_caption_stats(cfg, SYNTH_TRAIN, &st);
        fprintf(f, ",\n  \"caption_negations\": ");
        json_double(f, style->negations);
        fprintf(f, ",\n  \"caption_coverage\": ");
        json_double(f, style->coverage);
        fprintf(f, ",\n");
        fprintf(f, "  \"train_caption_stats\": {\"captions\": %lld, \"partial\": %lld, \"negated\": %lld, "
                   "\"objects\": %lld, \"named\": %lld, \"unmentioned\": %lld, \"unmentioned_present\": %lld}",
                (long long)st.captions, (long long)st.partial, (long long)st.negated, (long long)st.objects,
                (long long)st.named, (long long)st.unmentioned, (long long)st.unmentioned_present);
    }
    fprintf(f, "\n}\n");
    fcloseCheck(f);
}

/* Where one image of the world goes: its JPEG, and its caption rows in the split's CSV. */
typedef struct {
    const SynthConfig *cfg;
    const char *out_dir;
    SynthSplit split;
    int64_t index;
    uint8_t *rgb;                     /* [3 size^2] scratch */
    char (*captions)[SYNTH_TEXT_MAX]; /* [n_captions] scratch */
    FILE *pairs;
} ImageOut;

/* Draws scene into out_dir/rel and writes its caption rows: filepath,caption,objects, and with
 * twin_rel (NULL: the world has no twin column) the twin column naming its partner. */
static void write_image(const ImageOut *im, const SynthScene *scene, const char *rel, const char *twin_rel) {
    const SynthConfig *cfg = im->cfg;
    synth_render(scene, cfg->size, im->rgb);
    uint8_t *jpeg = NULL;
    size_t jpeg_size = 0;
    char err[IMAGE_ERROR_SIZE], path[4096];
    if (image_encode_jpeg(im->rgb, cfg->size, cfg->size, cfg->quality, &jpeg, &jpeg_size, err, sizeof(err)) != IMAGE_OK)
        die("synth: encoding image %s: %s", rel, err);
    snprintf(path, sizeof(path), "%s/%s", im->out_dir, rel);
    FILE *f = fopenCheck(path, "wb");
    fwriteCheck(jpeg, 1, jpeg_size, f);
    fcloseCheck(f);
    free(jpeg);

    char objects[SYNTH_TEXT_MAX];
    Text t_obj = {objects, 0};
    objects[0] = '\0';
    for (int o = 0; o < scene->n_objects; o++) {
        if (o) text_puts(&t_obj, ";");
        text_puts(&t_obj, synth_kind_names[scene->objects[o].kind]);
    }
    synth_captions(scene, &cfg->caption_style, cfg->seed, im->split, im->index, cfg->n_captions, im->captions, NULL);
    for (int c = 0; c < cfg->n_captions; c++) {
        csv_field(im->pairs, rel, 0);
        csv_field(im->pairs, im->captions[c], 0);
        csv_field(im->pairs, objects, !twin_rel);
        if (twin_rel) csv_field(im->pairs, twin_rel, 1);
    }
}

void synth_write_world(const SynthConfig *cfg, const char *out_dir) {
    if (cfg->size < 8 || cfg->size > 4096) die("synth: image size must be 8..4096, found %d", cfg->size);
    if (cfg->n_captions < 1 || cfg->n_captions > 64) die("synth: captions per image must be 1..64, found %d", cfg->n_captions);
    if (cfg->quality < 1 || cfg->quality > 100) die("synth: JPEG quality must be 1..100, found %d", cfg->quality);
    const SynthCaptionStyle *style = &cfg->caption_style;
    if (!(style->negations >= 0 && style->negations <= 1) || !(style->coverage >= 0 && style->coverage <= 1))
        die("synth: caption negations and coverage must be 0..1, found %g and %g", style->negations, style->coverage);
    char dir[4096];
    make_dir(out_dir);
    snprintf(dir, sizeof(dir), "%s/images", out_dir);
    make_dir(dir);
    uint8_t *rgb = (uint8_t *)mallocCheck((size_t)3 * cfg->size * cfg->size);
    char(*captions)[SYNTH_TEXT_MAX] = mallocCheck((size_t)cfg->n_captions * SYNTH_TEXT_MAX);
    SynthEvalRows *rows = (SynthEvalRows *)mallocCheck(sizeof(SynthEvalRows));
    double t0 = now_seconds();
    int64_t done = 0, total = cfg->n_images[0] + cfg->n_images[1] + cfg->n_images[2];

    for (int split = 0; split < SYNTH_N_SPLITS; split++) {
        const char *split_name = synth_split_names[split];
        snprintf(dir, sizeof(dir), "%s/images/%s", out_dir, split_name);
        make_dir(dir);
        int twins = cfg->twins && split == SYNTH_TRAIN;
        FILE *pairs = open_out(out_dir, split_name, "", twins ? "filepath,caption,objects,twin" : "filepath,caption,objects");
        EvalFiles eval[SYNTH_N_PHRASINGS] = {0};
        for (int p = 0; p < SYNTH_N_PHRASINGS; p++) {
            if (split == SYNTH_TRAIN || !(cfg->phrasing_mask >> p & 1)) continue;
            char name[64];
            const char *sfx = synth_phrasings[p].suffix;
            snprintf(name, sizeof(name), "mcq_%s", split_name);
            eval[p].mcq = open_out(out_dir, name, sfx,
                                   "correct_answer,caption_0,caption_1,caption_2,caption_3,"
                                   "correct_answer_template,image_path");
            snprintf(name, sizeof(name), "retrieval_%s", split_name);
            eval[p].retrieval = open_out(out_dir, name, sfx, "filepath,captions");
            snprintf(name, sizeof(name), "negated_retrieval_%s", split_name);
            eval[p].negated_retrieval = open_out(out_dir, name, sfx, "filepath,captions");
            snprintf(name, sizeof(name), "ccneg_%s", split_name);
            eval[p].ccneg = open_out(out_dir, name, sfx, "image_path,caption,negated_caption");
        }
        for (int64_t i = 0; i < cfg->n_images[split]; i++) {
            SynthScene scene;
            synth_make_scene(cfg->seed, (SynthSplit)split, i, &scene);
            char rel[64], twin_rel[64];
            snprintf(rel, sizeof(rel), "images/%s/%06lld.jpg", split_name, (long long)i);
            snprintf(twin_rel, sizeof(twin_rel), "images/%s/%06lld_twin.jpg", split_name, (long long)i);
            ImageOut image = {cfg, out_dir, (SynthSplit)split, i, rgb, captions, pairs};
            write_image(&image, &scene, rel, twins ? twin_rel : NULL);
            if (twins) {
                SynthScene twin;
                synth_make_twin(cfg->seed, (SynthSplit)split, i, &scene, &twin);
                write_image(&image, &twin, twin_rel, rel);
            }
            for (int p = 0; p < SYNTH_N_PHRASINGS; p++) {
                if (!eval[p].mcq) continue;
                synth_eval_rows(&scene, &synth_phrasings[p], cfg->seed, (SynthSplit)split, i, rows);
                write_eval_rows(&eval[p], rows, rel);
            }
            done++;
            if (cfg->verbose && (done % 1000 == 0 || done == total))
                fprintf(stderr, "tng_synth: %lld/%lld images (%s), %.0f images/s\n", (long long)done,
                        (long long)total, split_name, done / (now_seconds() - t0 + 1e-9));
        }
        fcloseCheck(pairs);
        for (int p = 0; p < SYNTH_N_PHRASINGS; p++) {
            if (!eval[p].mcq) continue;
            fcloseCheck(eval[p].mcq);
            fcloseCheck(eval[p].retrieval);
            fcloseCheck(eval[p].negated_retrieval);
            fcloseCheck(eval[p].ccneg);
        }
    }
    write_world_json(cfg, out_dir);
    free(rgb);
    free(captions);
    free(rows);
}
