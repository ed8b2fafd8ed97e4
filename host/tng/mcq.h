/*
 * mcq.h: the multiple-choice questions TNG writes for the MCQ loss (engine/mcq_loss.h), from
 * captions alone, like every other TNG text.
 *
 * One question per image and batch, of a type drawn per image: K = 4 options, exactly one
 * true under TNG's own assumption that what a caption does not name is absent. It is about two
 * nouns: A, an object the image's caption names (present), and N, the object TNG already
 * denies in the image's hybrids (absent: named by a neighbour's caption, not by this one). The
 * options mirror NegBench's construction (and our evaluation sets'):
 *
 *   type      correct option        the three wrong options (the same for every type)
 *   positive  "A" affirmed          "N, no A" (roles swapped), "N" affirmed, "no A"
 *   negative  "no N"
 *   hybrid    "A, no N"
 *
 * Only training-time frames phrase them, never an evaluation phrasing: a hybrid option is a
 * TNG hybrid template with "a A" in the caption's place (the role-swapped contradiction's
 * construction), a denial a standalone-negation template, an affirmation one of the frames
 * below, each made of the affirmative parts of TNG's own templates ("{c}, and there is {x}."
 * gives "There is {x}."). Every option draws its own template, so an image's options and the
 * same option across steps vary their wording. This file decides the options and their
 * templates; the generator renders them (generator.c), as it renders every text.
 */
#ifndef TNG_MCQ_H
#define TNG_MCQ_H

#include "text/lexicon.h" // defines: Lexicon (lemma strings)
#include "util/rng.h"     // defines: Rng, rng_below

#define TNG_MCQ_OPTIONS 4

typedef enum { TNG_MCQ_POSITIVE, TNG_MCQ_NEGATIVE, TNG_MCQ_HYBRID, TNG_MCQ_TYPES } TngMcqType;

/* How an option is phrased: an affirmation of one noun (tng_mcq_affirm_frames), a denial of
 * one (standalone-negation templates) or one affirmed and one denied (hybrid templates). */
typedef enum { TNG_MCQ_AFFIRM, TNG_MCQ_DENY, TNG_MCQ_BOTH } TngMcqFrame;

typedef struct {
    TngMcqFrame frame;
    int affirmed, denied; /* lexicon lemma ids; -1 where the frame has none */
} TngMcqOption;

typedef struct {
    TngMcqType type;
    int answer; /* the true option's index */
    TngMcqOption option[TNG_MCQ_OPTIONS];
} TngMcqQuestion;

/* Affirmation frames: {x} is the noun with its article ("a dog"). */
extern const char *const tng_mcq_affirm_frames[];
extern const int tng_mcq_n_affirm_frames;

/* The question about present (named by the caption) and absent (not named), its type and the
 * true option's place drawn from rng (two draws). */
void tng_mcq_question(Rng *rng, int present, int absent, TngMcqQuestion *q);

/* The templates an option may take (tng/templates.h), as the generator passes them. */
typedef struct {
    const char *const *hybrid; /* {c}/{p}/{n} the affirmed noun phrase, {x} the denied noun */
    int n_hybrid;
    const char *const *deny;   /* {x} the denied noun, no caption placeholder */
    int n_deny;
} TngMcqTemplates;

/* One option, ready to render like any TNG text: the template, the subject for its caption
 * placeholder (the affirmed noun with its article, or empty) and the {x} word. */
typedef struct {
    const char *tmpl;
    char subject[128];
    const char *object;
    int about; /* the lemma it denies, or else affirms (TngTexts.text_object) */
} TngMcqText;

/* Option k of question q in a template drawn from rng for it. */
void tng_mcq_option_text(Rng *rng, const TngMcqQuestion *q, int k, const Lexicon *lex,
                  const TngMcqTemplates *templates, TngMcqText *out);

/* "a <noun>" or "an <noun>" into out[128] (the noun cut at 100 bytes); returns its length. */
int tng_with_article(char *out, const char *noun);

#endif
