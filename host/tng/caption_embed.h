/*
 * caption_embed.h: a stand-in for image embeddings where there is no model (tng_negate
 * without --model): each item's captions as one bag of words hashed into a unit vector, so
 * TNG's neighbours come from caption similarity.
 *
 * Words as the generator reads them (text/words.h: runs of letters, lower-cased; one with
 * non-ASCII letters is left out). A word the lexicon knows counts as its lemma ("dogs" is
 * "dog") with weight 1; any other word of four letters or more with weight 1/4 (verbs and
 * adjectives say something about a scene, the nouns say most; shorter words are mostly "a",
 * "on", "the"). An item's weights are summed over all its captions: the image is what all of
 * them describe. Word w adds its weight to dimension
 * hash(w) mod dim, with a sign from another bit of the hash (signed feature hashing: colliding
 * words cancel on average instead of piling up), and the vector is L2-normalised. An item with
 * no counted word is the zero vector: similarity 0 to every item, so it ties with all of them
 * and the generator's neighbour order falls back to pool order.
 */
#ifndef TNG_CAPTION_EMBED_H
#define TNG_CAPTION_EMBED_H

#include "dataset/dataset.h" // defines: Dataset
#include "text/lexicon.h"    // defines: Lexicon, lexicon_lookup

/* the width tng_negate uses: wide enough that a caption's few words rarely collide */
#define CAPTION_EMBED_DIM 256

/* out [ds->count, dim]: row k the embedding of item k. Deterministic: the same captions give
 * the same bits on every machine. */
void caption_embed_items(const Dataset *ds, const Lexicon *lex, int dim, float *out);

#endif
