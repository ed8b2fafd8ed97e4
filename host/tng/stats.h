/*
 * stats.h: what a stream of TNG batches looks like in numbers (tng_negate --stats), to judge
 * the generator on a dataset without reading every text.
 *
 * Counted per batch added: texts by kind, their token lengths and how many were cut to fit
 * the context; per image, where its hybrid object came from (its preferred neighbour, the
 * nearest, a farther one, or a fallback noun), the object's lexicon category, and how often each object occurs.
 */
#ifndef TNG_STATS_H
#define TNG_STATS_H

#include <stdio.h>

#include "text/lexicon.h"  // defines: Lexicon
#include "tng/generator.h" // defines: TngTexts

typedef struct TngStats TngStats;

TngStats *tng_stats_create(const Lexicon *lex);
void tng_stats_add(TngStats *s, const TngTexts *t);
/* The summary as text; `top` most frequent objects are listed. */
void tng_stats_print(const TngStats *s, FILE *out, int top);
void tng_stats_free(TngStats *s);

#endif
