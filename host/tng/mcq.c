/*
 * mcq.c: the multiple-choice questions of the MCQ loss (mcq.h): which options, which is true,
 * and each option's template. The generator (generator.c) renders them.
 */
#include "tng/mcq.h"

#include <stdio.h>
#include <string.h>

/* Each is the affirmative part of a TNG template: "{c}, and there is {x}.", "{C}, and {x} is
 * visible.", "{c}; {x} can be seen too.", "{c}. There is also {x} in the scene.", and the
 * caption slot itself ("{c}."), which a noun phrase fills like a short caption. */
const char *const tng_mcq_affirm_frames[] = {
    "There is {x}.", "{x} is visible.", "{x} can be seen.", "There is {x} in the scene.", "{x}.",
};
const int tng_mcq_n_affirm_frames = (int)(sizeof(tng_mcq_affirm_frames) / sizeof(tng_mcq_affirm_frames[0]));

static TngMcqOption option(TngMcqFrame frame, int affirmed, int denied) {
    return (TngMcqOption){.frame = frame, .affirmed = affirmed, .denied = denied};
}

void tng_mcq_question(Rng *rng, int present, int absent, TngMcqQuestion *q) {
    q->type = (TngMcqType)rng_below(rng, TNG_MCQ_TYPES);
    q->answer = (int)rng_below(rng, TNG_MCQ_OPTIONS);
    const TngMcqOption correct[TNG_MCQ_TYPES] = {
        [TNG_MCQ_POSITIVE] = option(TNG_MCQ_AFFIRM, present, -1),
        [TNG_MCQ_NEGATIVE] = option(TNG_MCQ_DENY, -1, absent),
        [TNG_MCQ_HYBRID] = option(TNG_MCQ_BOTH, present, absent),
    };
    /* false whatever the type: the roles swapped, the absent noun affirmed, the present denied */
    const TngMcqOption wrong[TNG_MCQ_OPTIONS - 1] = {
        option(TNG_MCQ_BOTH, absent, present), option(TNG_MCQ_AFFIRM, absent, -1),
        option(TNG_MCQ_DENY, -1, present)};
    for (int k = 0, w = 0; k < TNG_MCQ_OPTIONS; k++)
        q->option[k] = k == q->answer ? correct[q->type] : wrong[w++];
}

int tng_with_article(char *out, const char *noun) {
    return snprintf(out, 128, "%s %.100s", strchr("aeiou", noun[0]) ? "an" : "a", noun);
}

void tng_mcq_option_text(Rng *rng, const TngMcqQuestion *q, int k, const Lexicon *lex,
                  const TngMcqTemplates *templates, TngMcqText *out) {
    const TngMcqOption *o = &q->option[k];
    out->subject[0] = '\0';
    if (o->affirmed >= 0) tng_with_article(out->subject, lex->lemma[o->affirmed]);
    out->object = o->denied >= 0 ? lex->lemma[o->denied] : "";
    out->about = o->denied >= 0 ? o->denied : o->affirmed;
    switch (o->frame) {
    case TNG_MCQ_AFFIRM: /* the affirmed noun phrase is the {x} */
        out->tmpl = tng_mcq_affirm_frames[rng_below(rng, (uint64_t)tng_mcq_n_affirm_frames)];
        out->object = out->subject;
        break;
    case TNG_MCQ_DENY: out->tmpl = templates->deny[rng_below(rng, (uint64_t)templates->n_deny)]; break;
    default: out->tmpl = templates->hybrid[rng_below(rng, (uint64_t)templates->n_hybrid)];
    }
}
