/*
 * synth.h: the synthetic negation world, a deterministic stand-in for COCO + NegBench that a
 * CPU builds in seconds and that knows, for every image, exactly which objects it holds.
 *
 * A scene has 1-3 objects of distinct kinds (ball, star, key, house, ...; every kind is a noun
 * of the TNG lexicon), each with a colour, a size, a position and a small rotation, on a
 * textured, noisy background. Objects never overlap (their bounding circles are disjoint), so
 * every listed object is visible and every other kind is truly absent: the evaluation sets
 * carry no label noise.
 *
 * Key design choice: every random choice comes from a stream seeded by (seed, split, index,
 * purpose), so any image, its captions or its evaluation rows can be regenerated alone, the
 * world is identical however it is produced, and the two phrasing sets ask the very same
 * questions (same objects, same template slot) in different words.
 *
 * Text hygiene: by default training captions are affirmative and name every object. The
 * held-out evaluation phrasings (std, alt) share no template fragment with the training
 * captions, the pre-training negation clauses, nor the TNG generator's negation templates,
 * yet use only words that training captions or TNG templates contain; the "alt" set is
 * disjoint from "std" too. The third set, "intemplate", is the opposite on purpose: its
 * questions are built only from training-caption frames and TNG negation clauses, so a
 * result reads in-template / held-out / held-out-2. tests/test_synth.c checks all of this.
 *
 * Two caption options make pre-training more like web data (both off by default, each drawn
 * from its own stream so turning one on changes nothing else): a share of captions carry a
 * truthful negation clause ("..., without a key") from a pre-training-only template set, and
 * captions may name only some of the objects, as COCO's do (then TNG's "not mentioned =
 * absent" is sometimes wrong; synth_world_caption_stats counts how often, exactly).
 */
#ifndef TNG_SYNTH_H
#define TNG_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "eval/metrics.h" // defines: McqType, MCQ_POSITIVE, MCQ_NEGATIVE, MCQ_HYBRID

/* A drawn scene holds 1..SYNTH_MAX_OBJECTS objects; its counterfactual twin (--twins) one more. */
#define SYNTH_MAX_OBJECTS 3
#define SYNTH_SCENE_CAPACITY (SYNTH_MAX_OBJECTS + 1)
#define SYNTH_N_KINDS 19
#define SYNTH_N_COLOURS 8
#define SYNTH_N_TEXTURES 4
/* Every caption and option fits in this many bytes, terminator included. */
#define SYNTH_TEXT_MAX 256

typedef enum { SYNTH_TRAIN = 0, SYNTH_VAL = 1, SYNTH_TEST = 2, SYNTH_N_SPLITS = 3 } SynthSplit;

/* "train", "val", "test". */
extern const char *const synth_split_names[SYNTH_N_SPLITS];
/* Object nouns ("ball", ...) and colour adjectives ("red", ...). */
extern const char *const synth_kind_names[SYNTH_N_KINDS];
extern const char *const synth_colour_names[SYNTH_N_COLOURS];

// ---------------------------------------------------------------------------------------------
// Scenes and drawing (synth_draw.c)

typedef struct {
    int kind, colour;
    float cx, cy;   /* centre, in units of the image width (0..1, y down) */
    float radius;   /* the shape lies inside this circle, same units */
    float angle;    /* rotation in radians */
    uint8_t rgb[3]; /* the colour with a small per-object jitter */
} SynthObject;

typedef struct {
    int n_objects;
    SynthObject objects[SYNTH_SCENE_CAPACITY];
    int twin;                      /* 1: a counterfactual twin (synth_make_twin) */
    int texture;                   /* 0..SYNTH_N_TEXTURES-1 */
    uint8_t background[2][3];      /* the two low-saturation tones the texture mixes */
    float noise_sigma;             /* per-pixel Gaussian noise, in 8-bit levels */
    uint64_t texture_seed;         /* drives the texture's own random numbers */
} SynthScene;

/* The seed of one random stream of one image. purpose separates the scene, its training
 * captions and its evaluation rows. */
typedef enum {
    SYNTH_STREAM_SCENE = 0,
    SYNTH_STREAM_CAPTIONS = 1,
    SYNTH_STREAM_EVAL = 2,
    SYNTH_STREAM_COVERAGE = 3, /* which objects each caption names (--caption-coverage) */
    SYNTH_STREAM_NEGATION = 4, /* which captions carry a negation clause (--caption-negations) */
    SYNTH_STREAM_TWIN = 5,     /* the object a counterfactual twin adds (--twins) */
    /* a twin's captions: its caption, coverage and negation streams are the original's purposes
     * plus this, so they share no draw with the original's */
    SYNTH_STREAM_TWIN_TEXT = 8
} SynthStream;
uint64_t synth_stream_seed(uint64_t seed, SynthSplit split, int64_t index, SynthStream purpose);

/* The scene of image (split, index). Independent of the image size. */
void synth_make_scene(uint64_t seed, SynthSplit split, int64_t index, SynthScene *scene);
/*
 * The counterfactual twin of image (split, index), whose scene is `scene`: the same scene
 * (background, texture, noise, objects in place) plus one object of a kind the scene lacks, in
 * a colour it does not use, placed as synth_make_scene places objects (bounding circles
 * disjoint). Its draws come from the image's SYNTH_STREAM_TWIN stream, so the original changes
 * in nothing; it is the last of twin->objects, and twin->twin is 1.
 */
void synth_make_twin(uint64_t seed, SynthSplit split, int64_t index, const SynthScene *scene, SynthScene *twin);
/* 1 when the scene holds an object of this kind. */
int synth_scene_has_kind(const SynthScene *scene, int kind);

/* Draws the scene as size x size RGB (HWC, 3*size*size bytes); 3x3 supersampled edges. */
void synth_render(const SynthScene *scene, int size, uint8_t *rgb);

/* The shape of a kind in its own frame: u right, v up, the shape inside the unit circle.
 * Returns 0 outside, 1 on the body, 2 on a detail drawn in a contrasting shade (a door, a
 * window, an eye). */
int synth_shape_at(int kind, float u, float v);

// ---------------------------------------------------------------------------------------------
// Text (synth.c)

/*
 * Training caption templates. Placeholders: {L} all objects with colours ("a red ball and a
 * blue key"), {l} the same without colours, {n} the count ("two objects"), {A} the first object
 * and {B} the others (with colours). The objects come in a random order per caption.
 */
typedef struct {
    const char *text;
    int min_objects; /* used only for scenes with at least this many objects */
} SynthCaptionTemplate;
extern const SynthCaptionTemplate synth_caption_templates[];
extern const int synth_n_caption_templates;

/*
 * Pre-training negation clauses, appended to a share of training captions when asked
 * (SynthCaptionStyle.negations). Placeholders: {c} the caption, {x} a kind the scene does not
 * hold, with its article, {X} the same without it. Written for pre-training only: no fragment
 * is shared with the evaluation phrasings nor with the TNG generator's templates.
 */
extern const char *const synth_negation_clauses[];
extern const int synth_n_negation_clauses;

/* How training captions are written. {0, 1} (synth_caption_style_default) is the historical
 * world: every caption affirmative and naming every object. */
typedef struct {
    double negations; /* share of captions that get a negation clause, 0..1 */
    double coverage;  /* chance that a caption names each object (at least one is named), 0..1 */
} SynthCaptionStyle;
extern const SynthCaptionStyle synth_caption_style_default;

/* What one caption says about its scene, for counting: the objects it names and the kind its
 * negation clause denies. */
typedef struct {
    unsigned named;  /* bit a: scene->objects[a] is named */
    int denied_kind; /* -1: no negation clause */
} SynthCaptionFacts;

/*
 * One phrasing set of the evaluation files. Placeholders: {s} the objects stated present,
 * {x} the object stated absent (or, in a false option, a present one) with its article, {X}
 * the same without it, for templates that bring a determiner ("not any {X}"). Each kind has
 * SYNTH_N_EVAL_TEMPLATES shapes; a question uses one slot for all four options.
 */
#define SYNTH_N_EVAL_TEMPLATES 2
#define SYNTH_N_PHRASINGS 3
typedef struct {
    const char *name;   /* "std", "alt", "intemplate" */
    const char *suffix; /* appended to evaluation file names: "", "_alt", "_intemplate" */
    int held_out;       /* 1: shares no fragment with training or TNG text (std: "held-out", alt:
                           "held-out-2" in result tables); 0: built from it ("in-template") */
    const char *affirm[SYNTH_N_EVAL_TEMPLATES]; /* {s} */
    const char *negate[SYNTH_N_EVAL_TEMPLATES]; /* {x} or {X} */
    const char *hybrid[SYNTH_N_EVAL_TEMPLATES]; /* {s} and {x} or {X} */
} SynthPhrasing;
extern const SynthPhrasing synth_phrasings[SYNTH_N_PHRASINGS];
/* The phrasing sets a world gets by default (std and alt: the historical files). */
#define SYNTH_DEFAULT_PHRASINGS 3
/* The index of a phrasing set by name, or -1. */
int synth_phrasing_index(const char *name);

/*
 * The n_captions training captions of a scene (distinct templates while they last), drawn
 * from the image's caption stream; style's choices come from the coverage and negation
 * streams (a twin's from streams of its own, SYNTH_STREAM_TWIN_TEXT). out[k] holds
 * SYNTH_TEXT_MAX bytes; facts (NULL: not wanted) gets one entry per caption. A caption that
 * names only some objects avoids the count templates ("two objects: ..."), which would then be
 * false.
 */
void synth_captions(const SynthScene *scene, const SynthCaptionStyle *style, uint64_t seed,
                    SynthSplit split, int64_t index, int n_captions, char (*out)[SYNTH_TEXT_MAX],
                    SynthCaptionFacts *facts);

/*
 * Counts over the captions of one split, from the scenes' ground truth: how often TNG's
 * assumption "a kind the caption does not mention is absent" is wrong. A kind counts as
 * mentioned when the caption names it, present or denied (TNG reads the nouns of a caption).
 */
typedef struct {
    int64_t captions;
    int64_t partial;           /* captions that leave a present object unnamed */
    int64_t negated;           /* captions with a negation clause */
    int64_t objects, named;    /* present objects over all captions, and those named */
    int64_t unmentioned;       /* (caption, kind) pairs where the caption does not mention the kind */
    int64_t unmentioned_present; /* ...and the kind is present: TNG's assumption is wrong */
} SynthCaptionStats;
void synth_caption_stats_add(SynthCaptionStats *stats, const SynthScene *scene,
                             const SynthCaptionFacts *facts, int n_captions);

/*
 * The evaluation rows of one image under one phrasing set, all drawn from the image's eval
 * stream in a fixed order, so every phrasing set gets the same objects and slots.
 *
 * MCQ, one question per type, in NegBench's option layout: option 0 is the true answer of the
 * question's type, option 1 a false hybrid (the absent object stated present and a present one
 * denied), option 2 a false affirmation (the absent object stated present), option 3 a false
 * negation (a present object denied). The true answers: positive "{s}", negative "no {x}",
 * hybrid "{s} but no {x}", with {s} one or two present objects and {x} one absent kind, named
 * without colours as NegBench names objects.
 *
 * Retrieval: one caption per affirm slot, all objects with colours. Negated retrieval: one per
 * hybrid slot, all objects with colours and an absent kind denied (its own draw per caption).
 * CC-Neg: an affirm caption of all objects, against a caption that denies a present object
 * (the hybrid shape with the others stated, or the negate shape for a single object).
 */
typedef struct {
    char mcq[MCQ_N_TYPES][4][SYNTH_TEXT_MAX];
    char retrieval[SYNTH_N_EVAL_TEMPLATES][SYNTH_TEXT_MAX];
    char negated_retrieval[SYNTH_N_EVAL_TEMPLATES][SYNTH_TEXT_MAX];
    char ccneg_caption[SYNTH_TEXT_MAX], ccneg_negated[SYNTH_TEXT_MAX];
} SynthEvalRows;
void synth_eval_rows(const SynthScene *scene, const SynthPhrasing *phrasing, uint64_t seed,
                     SynthSplit split, int64_t index, SynthEvalRows *out);

// ---------------------------------------------------------------------------------------------
// The world on disk (synth.c)

typedef struct {
    uint64_t seed;
    int size;                        /* image side in pixels */
    int64_t n_images[SYNTH_N_SPLITS];
    int n_captions;                  /* training captions per image (COCO has 5) */
    int quality;                     /* JPEG quality */
    int phrasing_mask;               /* bit p: write the evaluation files of synth_phrasings[p] */
    SynthCaptionStyle caption_style; /* how captions are written (all splits) */
    int twins;                       /* 1: each training image also gets its counterfactual twin */
    int verbose;                     /* progress lines on stderr */
} SynthConfig;

void synth_config_default(SynthConfig *cfg);

/* The caption statistics of one split of the world cfg describes, regenerated from its scenes
 * and captions (no image is drawn). */
void synth_world_caption_stats(const SynthConfig *cfg, SynthSplit split, SynthCaptionStats *out);

/*
 * Writes the world under out_dir (created if missing):
 *   images/{train,val,test}/NNNNNN.jpg
 *   {train,val,test}.csv               filepath,caption,objects (one row per caption)
 *   with twins: images/train/NNNNNN_twin.jpg, and train.csv gets a fourth column, twin: on
 *   each row the filepath of the image's twin (the twin's rows name the original), the
 *   twin's rows right after its original's
 *   mcq_{val,test}<suffix>.csv          NegBench MCQ
 *   retrieval_{val,test}<suffix>.csv    filepath,captions (a Python list literal)
 *   negated_retrieval_{val,test}<suffix>.csv
 *   ccneg_{val,test}<suffix>.csv        image_path,caption,negated_caption
 *   world.json                          the configuration, kinds and colours; with a
 *                                       non-default caption style also that style and the
 *                                       training split's caption statistics; with twins,
 *                                       "twins": true
 * Paths inside the CSVs are relative to out_dir (NegBench's readers re-root paths anyway), so
 * the world can move and two runs give identical bytes. Dies with a message naming the file
 * on any I/O error.
 */
void synth_write_world(const SynthConfig *cfg, const char *out_dir);

#endif
