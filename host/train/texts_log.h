/*
 * texts_log.h: tng_train --log-texts N: the texts of the first N micro-batches, kept in the
 * run folder as texts.jsonl so a run can be audited afterwards (and compared with tng_negate,
 * which writes the same records, tng/records.h).
 *
 * One JSON line per text, as it was trained: on a step that --tng-ratio leaves without TNG
 * texts, the captions alone. Each record starts with the optimizer step that trained it, so
 * a resumed run cuts the file back to its checkpoint first (io/metrics_log.h: every record is
 * one write of a whole line; a kill leaves whole lines, and at worst a torn last one that
 * the resume drops). Under mpirun every rank's texts of a micro-batch are gathered to rank 0,
 * which writes them in rank order: the file holds every text the run trained on.
 */
#ifndef TNG_TEXTS_LOG_H
#define TNG_TEXTS_LOG_H

#include "engine/dist.h"     // defines: Dist
#include "text/lexicon.h"    // defines: Lexicon
#include "train/lookahead.h" // defines: Pending
#include "tng/generator.h"   // defines: TngTexts

typedef struct TextsLog TextsLog;

/* Rank 0 opens RUN/texts.jsonl: a fresh file, or with keep_through_step >= 0 (a resumed run)
 * the old one cut back to the records of steps up to it. limit: micro-batches to log. */
TextsLog *texts_log_open(const char *run_dir, long limit, long keep_through_step, const Dist *d,
                         const Lexicon *lex);
/* Collective when p->index < limit (every rank calls it for the same batches): logs the first
 * n_texts texts of micro-batch p, trained in optimizer step `step` (counted from 1). */
void texts_log_batch(TextsLog *log, const Pending *p, const TngTexts *texts, int n_texts, long step);
void texts_log_close(TextsLog *log);

#endif
