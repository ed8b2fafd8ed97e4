/*
 * generator.h: TNG-CLIP's training-time negation generator, and the thread that runs it ahead of
 * the training loop.
 *
 * Per batch of B (image, caption) pairs and the B L2-normalised image embeddings, it builds
 * (M+1)*B tokenized texts, all positives of one image each, in the layout of tng/batch.h:
 * image i's original caption, then its negations m = 0..M-1:
 *   m even: a hybrid negation, caption_i plus "no <object_i>"
 *   m odd:  a full negation of another image's caption
 *
 * object_i is a concrete noun (WordNet lexicon, lexicon.h) that names a thing in the caption
 * of image i's nearest neighbour j (cosine similarity of the embeddings) and is absent from
 * caption_i, compared as whole words, lower-cased, plurals folded. "Names a thing" is
 * tng/grammar.h's reading: no scene noun ("street", "zoo"), no compound's first part
 * ("decker" of "double decker bus"), no "slice of", no verb; absent means caption_i names it in
 * no role at all. If j has none, the next-nearest image is tried, and so on; then a random
 * common lexicon noun, no scene noun, absent from caption_i. A caller may name for image i a
 * preferred neighbour (tng_make_texts_preferring: its counterfactual twin under tng_train
 * --twin-batches), tried before the nearest: its objects that caption_i lacks come first, and
 * only when it has none does the search above run. Exactly one object per image:
 * extra hybrids (M > 2) vary the template, not the object. The object is written in its
 * singular (lemma) form, so every template agrees in number ("no dog is visible").
 *
 * Where a template needs a noun phrase (every full negation, a few hybrids: "There is no {x},
 * only {p}") a clause caption goes in as one (grammar.h: "a man rides a horse" -> "a man
 * riding a horse"); elsewhere the caption goes in as written.
 *
 * A full negation of image i negates the caption of the *least* similar other image (the
 * second full negation, for M > 3, the second least similar, ...). It never negates caption_i:
 * with B = 1 there is no other caption, and that slot holds one more hybrid (another template).
 *
 * Contradiction negatives (TngConfig.contradictions = C > 0) follow every positive text: C
 * texts per image that are FALSE for image i and a positive of no image (txt2img -1, so they
 * take part only in the image-to-text softmax, as negatives image i must rank below its
 * caption). Contradiction c of image i, c = 0..C-1, is by c % 4:
 *                             0: a false hybrid, caption_i plus "no <object present in
 *                                caption_i>" (a lexicon noun naming a thing in caption_i,
 *                                whole word; hybrid templates)
 *                             1: a false full negation, the negation of caption_i itself
 *                                (full templates)
 *                             2: a role-swapped hybrid, "a <object_i>" (absent) plus "no
 *                                <object present in caption_i>": NegBench's swapped option
 *                             3: a false affirmation, caption_i plus "a <object_i>": the
 *                                absent object the hybrids deny, stated as present (affirm
 *                                templates)
 *
 * A caption naming no thing has no hybrid contradiction: those slots hold a false full
 * negation too. With C = 0 the texts (and every random draw) are exactly those without the option.
 *
 * Standalone negations (TngConfig.standalone = S > 0) follow the contradictions: S texts per
 * image that say only that object_i is absent ("There is no dog.", standalone templates: no
 * caption part), a positive of image i, of kind TNG_STANDALONE, text_object object_i. Such a
 * text is true of every image whose caption does not name object_i, so the loss leaves those
 * images out of its softmaxes and keeps as negatives only the images whose caption names it
 * (engine/loss.h, ClipAbsence). "Names" is the generator's own "present": the caption holds
 * the lemma in any role (named_start/named give each image's lemmas for that). All S texts of
 * an image deny object_i (one object per image, as for hybrids) in S different templates.
 * They draw after every other choice, so S = 0 leaves every text and draw unchanged.
 *
 * Multiple-choice options (TngConfig.mcq, for the MCQ loss) follow the standalone negations:
 * TNG_MCQ_OPTIONS texts per image, one question of a type drawn per image (tng/mcq.h): about
 * object_i (absent) and an object caption_i names (present, drawn among them), options of kind
 * TNG_MCQ_TRUE (one) and TNG_MCQ_FALSE, positives of no image (txt2img -1); mcq_answer[j] says
 * which is true. A caption that names no object has no question: its options are empty texts
 * of kind TNG_MCQ_NONE and mcq_answer[j] is -1. They draw last, so mcq 0 changes nothing else.
 *
 * Every random choice comes from a counter-based stream seeded by (seed, batch_index, i), so
 * the texts depend only on those and the batch, not on thread timing or generation order.
 *
 * Pool and share: the B images above are the POOL that neighbours, objects and negated
 * captions come from. A call may make the texts of only some pool images (a rank's share of the
 * global batch under --tng-scope global, so no rank builds the texts of the others' images).
 * Each gets exactly the texts, kinds, sources and object the whole-pool call gives it (i above,
 * and so its random stream, stays its pool position), laid out as a batch of the share alone
 * (batch.h with n share images; txt2img counts share images); source_image and object_from
 * stay pool positions.
 *
 * Length: a text longer than the context keeps its negation clause and loses trailing words of
 * its caption part, measured with tokenizer_encode_raw. The original caption is cut like
 * open_clip cuts any text (EOT forced into the last slot).
 *
 * Differences from the authors' released code (the first kept behind TngConfig.released):
 *   - Released: the full negation of image i negates caption B-1-i. That is arbitrary (it may
 *     be true of image i), and for the middle image of an odd batch it is image i's own caption,
 *     labelled positive. Ours: the least similar image; never the own caption. In released mode
 *     the middle image of an odd batch takes the next image after it (cyclically) instead.
 *   - Released: the image-to-text target of image i is drawn at random from all 3B texts. That
 *     is the loss's target, not the texts: tng/batch.h holds the policies the trainer picks.
 *   - Not switchable (they are bugs, not choices): the released object list drifts out of
 *     alignment with its images, absence is a case-sensitive substring test, and the fallback
 *     noun is one fixed word. Objects here are chosen as described above in both modes.
 */
#ifndef TNG_GENERATOR_H
#define TNG_GENERATOR_H

#include <stddef.h>
#include <stdint.h>

#include "text/lexicon.h"   // defines: Lexicon, lexicon_load, lexicon_lookup
#include "text/tokenizer.h" // defines: Tokenizer, tokenizer_encode, tokenizer_encode_raw
#include "tng/batch.h"      // defines: TngLayout, tng_negation_text, tng_contradiction_text

typedef struct {
    int negations_per_image; /* M >= 1; 2 in the paper (one hybrid, one full) */
    int context;             /* tokens per text, SOT and EOT included; 77 in CLIP */
    uint64_t seed;
    int released;            /* 1: the released code's full-negation pairing (see above) */
    int contradictions;      /* C >= 0 contradiction negatives per image (see above); 0 = off */
    int standalone;          /* S >= 0 standalone negations per image (see above); 0 = off */
    int mcq;                 /* 1: TNG_MCQ_OPTIONS multiple-choice options per image; 0 = off */
} TngConfig;

/* The option rows (util/cli.h) of how many texts of each kind an image gets, one definition for
 * tng_train and tng_negate, which must make the same texts from the same flags. The fields
 * are ints named neg_per_image, contradictions and standalone, and the float mcq_loss (> 0
 * writes the multiple-choice options; tng_train weighs the MCQ loss by it). */
#define TNG_TEXT_OPTION_ROWS(X)                                                                   \
    X(NEG_PER_IMAGE, 0, "neg-per-image", "M", "2", CLI_INT(neg_per_image, 1, 16),                  \
      "negation texts per image, hybrid and full in turn (2: one of each)")                        \
    X(CONTRADICTIONS, 0, "contradictions", "C", "0", CLI_INT(contradictions, 0, 16),               \
      "contradiction negatives per image: false for it, positive of no image")                     \
    X(STANDALONE, 0, "standalone-negations", "S", "0", CLI_INT(standalone, 0, 16),                 \
      "standalone negations per image (\"There is no X.\"): images naming X are their negatives")       \
    X(MCQ_LOSS, 0, "mcq-loss", "W", "0", CLI_FLOAT(mcq_loss, 0, 1e6),                                   \
      "weight of a multiple-choice loss over 4 options per image written from its caption; 0 = off")

typedef enum {
    TNG_ORIGINAL = 0,
    TNG_HYBRID = 1,
    TNG_FULL = 2,
    TNG_FALSE_HYBRID = 3, /* contradiction: caption_i, "no <object present in caption_i>" */
    TNG_FALSE_FULL = 4,   /* contradiction: the negation of caption_i */
    TNG_SWAPPED_HYBRID = 5, /* contradiction: "a <object_i>", "no <object present in caption_i>" */
    TNG_FALSE_AFFIRM = 6,   /* contradiction: caption_i plus "a <object_i>" (absent) affirmed */
    TNG_STANDALONE = 7,     /* "there is no <object_i>": positive of image i (see above) */
    TNG_MCQ_TRUE = 8,       /* a multiple-choice option, the true one of its question */
    TNG_MCQ_FALSE = 9,      /* a false multiple-choice option */
    TNG_MCQ_NONE = 10,      /* an empty option slot: its image has no question */
    TNG_N_KINDS
} TngTextKind;

/* One batch of generated texts. Arrays are owned by the batch and reused across calls.
 * Image j is the j-th image texts were made for; "pool image" is a position in the pool. */
typedef struct {
    int n_images;       /* B, the images texts were made for */
    int n_pool;         /* the pool's images (= B when texts are made for all of it) */
    int n_texts;        /* (M+1+C)*B */
    int context;
    int64_t batch_index;
    int *tokens;        /* [n_texts, context] ids, zero-padded after EOT */
    int *txt2img;       /* [n_texts] the image each text is a positive of, -1 for none */
    char **texts;       /* [n_texts] the strings (pointers into text_arena) for logs */
    TngTextKind *kind;  /* [n_texts] */
    int *source_image;  /* [n_texts] the pool image whose caption the text negates or quotes
                           (full: the negated image; hybrid, original and contradictions:
                           the image itself) */
    int *text_object;   /* [n_texts] lexicon id of the noun the text denies (the hybrid kinds:
                           the noun after "no") or affirms (a false affirmation); -1: none */
    unsigned char *cut; /* [n_texts] 1: the text was cut to fit the context (a generated text
                           lost trailing words of its caption part, an original its tokens) */
    int *object_lemma;  /* [n_images] lexicon id of the object negated in image j's hybrids */
    int *object_from;   /* [n_images] the pool image it came from, or -1: random lexicon noun */
    int *object_rank;   /* [n_images] object_from's place among image j's neighbours (0: the
                           nearest), or -1 with object_from */
    unsigned char *object_preferred; /* [n_images] 1: object_from is image j's preferred
                           neighbour (tng_make_texts_preferring), tried first */
    int *named_start;   /* [n_images + 1] image j's caption names (in any role) the lexicon */
    int *named;         /* nouns named[named_start[j] .. named_start[j + 1]), each once */
    int *mcq_answer;    /* [n_images] with TngConfig.mcq: which option of image j is true, or
                           -1: no question (tng/mcq.h) */
    int *mcq_type;      /* [n_images] its TngMcqType, or -1 */
    int capacity_named;
    char *text_arena;
    size_t arena_capacity;
    int capacity_texts, capacity_images;
} TngTexts;

typedef struct TngGenerator TngGenerator;

void tng_config_default(TngConfig *cfg);

/* The generator keeps pointers to lex and tok (shared, read-only); it owns scratch memory and
 * so is used by one thread at a time. Dies on an invalid config. */
TngGenerator *tng_generator_create(const TngConfig *cfg, const Lexicon *lex, const Tokenizer *tok);
void tng_generator_free(TngGenerator *gen);

/* Builds the texts of n_make images of a pool into out (start from a zeroed TngTexts; it grows
 * as needed). The pool: captions [n_pool] UTF-8 strings (empty allowed), image_emb [n_pool,
 * dim] L2-normalised, n_pool >= 1. make_for: [n_make] distinct pool positions, in the order the
 * output lists them, or NULL for the whole pool in order (then n_make = n_pool). Dies on
 * anything else. The cost grows with n_make * n_pool, not n_pool^2. */
void tng_make_texts(TngGenerator *gen, const char *const *captions, const float *image_emb,
                    int n_pool, int dim, const int *make_for, int n_make, int64_t batch_index,
                    TngTexts *out);
/* tng_make_texts with a preferred neighbour per pool image: prefer [n_pool] another pool
 * position or -1 (none), or NULL (none at all: exactly tng_make_texts). Image i's object comes
 * from prefer[i] when that caption names an object caption_i lacks; its draws are the ones
 * without the preference, and an image whose preference gives way (or has none) gets exactly
 * the texts of tng_make_texts. Released mode (TngConfig.released) ignores prefer: the
 * authors' code has no such notion. Dies on a position out of range or the image itself. */
void tng_make_texts_preferring(TngGenerator *gen, const char *const *captions,
                               const float *image_emb, const int *prefer, int n_pool, int dim,
                               const int *make_for, int n_make, int64_t batch_index,
                               TngTexts *out);
void tng_texts_free(TngTexts *texts);

/* --------------------------------------------------------------------------------------------
 * The producer thread.
 *
 * It pulls input batches from the caller's source callback, builds their texts and pushes them
 * into a bounded queue of `depth` finished batches; the training loop pops them. With the vision
 * tower frozen the embeddings of a batch are known before its step (cached or computed by the
 * loader), so the producer runs `depth` batches ahead and the loop never waits. When the vision
 * tower trains, the source supplies the embeddings of the latest forward pass it has (one step
 * stale), which keeps the thread ahead at the cost of slightly older neighbours. */

typedef struct {
    int n_pool, dim;
    const char *const *captions; /* [n_pool] */
    const float *image_emb;      /* [n_pool, dim], L2-normalised */
    int64_t batch_index;         /* seeds the batch's random choices; copied to the texts */
    const int *make_for;         /* [n_make] pool positions to make texts for; NULL: all */
    int n_make;
    const int *prefer;           /* [n_pool] each image's preferred neighbour or -1; NULL: none
                                    (tng_make_texts_preferring) */
} TngInput;

/* Fills *in with the next batch and returns 1, or returns 0 at the end of the data. Called on
 * the producer thread only; what *in points at must stay valid until the next call. */
typedef int (*TngSourceFn)(void *ctx, TngInput *in);

typedef struct TngProducer TngProducer;

/* Starts the thread with its own generator (lex and tok are shared). depth >= 1. */
TngProducer *tng_producer_start(const TngConfig *cfg, const Lexicon *lex, const Tokenizer *tok,
                                TngSourceFn source, void *source_ctx, int depth);
/* The next batch in source order, waiting if needed; NULL once the source is exhausted. The
 * batch stays valid until it is handed back with tng_producer_release. */
const TngTexts *tng_producer_pop(TngProducer *p);
void tng_producer_release(TngProducer *p, const TngTexts *texts);
/* Seconds the consumer has spent blocked in tng_producer_pop so far. */
double tng_producer_wait_seconds(const TngProducer *p);
/* Stops the thread, joins it and frees everything, batches not yet released included. Safe at
 * any point. The thread ends at its next wait or push: it finishes the batch in hand (a source
 * call in progress included) and, if a buffer is free, may start one more. */
void tng_producer_stop(TngProducer *p);

#endif
