/*
 * records.h: a batch of TNG texts written as records to read or to parse: one TSV row or one
 * JSON object per text. tng_negate prints them and tng_train --log-texts keeps them in its
 * run folder, through this one writer, so the two agree byte for byte.
 *
 * Fields, in this order:
 *   batch   the micro-batch number, counted from 0 as training counts them (across epochs)
 *   image   the image's place in the global micro-batch, the order the loader deals it in:
 *           rank r's j-th image of a W-rank run is image j * W + r (loader.h), as one
 *           process with the global batch numbers it
 *   id      the image's source id (dataset.h: the path as written, a COCO image id; for
 *           captions on stdin the line number)
 *   kind    original, hybrid, full, false-hybrid, false-full, swapped-hybrid, false-affirm,
 *           standalone
 *   object  the noun the text denies or affirms (generator.h, text_object); none: empty in
 *           TSV, null in JSON
 *   source  the image (numbered like image) the text's words come from: the caption a full
 *           negation negates; a hybrid's object, from its neighbour, or -1 when it is a
 *           fallback noun; for every other kind the image's own caption
 *   preferred  (JSON hybrids only, and only when true) the source is the image's preferred
 *           neighbour, tried before the nearest: its twin under tng_train --twin-batches
 *   text    the text, escaped (util/escape.h), so a record is always one line
 *   tokens  token ids of the text, SOT and EOT included (JSON only)
 *   cut     whether it was cut to fit the context (JSON only)
 * JSON records may start with "step", the optimizer step that trained the batch (texts.jsonl;
 * io/metrics_log.h cuts a resumed log back by it).
 */
#ifndef TNG_RECORDS_H
#define TNG_RECORDS_H

#include <stdint.h>
#include <stdio.h>

#include "text/lexicon.h"  // defines: Lexicon
#include "tng/generator.h" // defines: TngTexts, TngTextKind

/* The kinds' names, indexed by TngTextKind. */
extern const char *const tng_kind_names[];

/* Where a batch's images sit in the global batch. */
typedef struct {
    int64_t batch;
    int world, rank;        /* --tng-scope local: pool image p is global image p * world + rank */
    const int *own_at;      /* --tng-scope global: [n_images] the images' pool positions, which
                               are global already; NULL: local (world 1, rank 0: one process) */
    const char *const *ids; /* [n_images] the images' source ids */
} TngRecordFrame;

/* The TSV header line. */
void tng_records_tsv_header(FILE *out);
/* Records of texts 0..n_texts-1 of t (the first n_images are the captions alone: a step that
 * trains on them writes just those), TSV rows or, with json, JSON lines with a leading
 * "step" when step >= 0. */
void tng_records_write(FILE *out, const TngTexts *t, int n_texts, const TngRecordFrame *f,
                       const Lexicon *lex, int json, long step);

/* The global image number of pool image p under frame f. */
int tng_record_image(const TngRecordFrame *f, int pool_position);
/* Token ids in row t of the texts, SOT and EOT included. */
int tng_text_tokens(const TngTexts *t, int text);

#endif
