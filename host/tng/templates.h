/*
 * templates.h: the sentences TNG writes its texts from (generator.c renders them, tng/mcq.c picks
 * its options' frames from them). Placeholders: {x} the object; {c} the caption with its first
 * letter lower-cased; {C} the same with it upper-cased; {p} the caption as a noun phrase
 * (grammar.h: "a man rides a horse" -> "a man riding a horse"), first letter lower-cased, where
 * the template's grammar needs one; {n} that noun phrase without its leading determiner ("a dog
 * on a sofa" -> "dog on a sofa", "two dogs" -> "dogs"), so no template agrees a verb with it.
 * - hybrid: the caption and {x} denied; every one holds {x} and one caption placeholder;
 * - full: the caption denied as a whole; one caption placeholder and no {x};
 * - affirm: the caption and {x} stated as present (the hybrids' same-words-without-"no" twins,
 *   used as contradictions);
 * - standalone: the absence of {x} and nothing else.
 */
#ifndef TNG_TEMPLATES_H
#define TNG_TEMPLATES_H

#define TNG_N_HYBRID_TEMPLATES 43
#define TNG_N_FULL_TEMPLATES 17
#define TNG_N_AFFIRM_TEMPLATES 8
#define TNG_N_STANDALONE_TEMPLATES 16

extern const char *const tng_hybrid_templates[TNG_N_HYBRID_TEMPLATES];
extern const char *const tng_full_templates[TNG_N_FULL_TEMPLATES];
extern const char *const tng_affirm_templates[TNG_N_AFFIRM_TEMPLATES];
extern const char *const tng_standalone_templates[TNG_N_STANDALONE_TEMPLATES];

#endif
