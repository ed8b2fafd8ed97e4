/*
 * texts_log.c: the run's texts.jsonl (texts_log.h).
 *
 * Each rank formats its records into memory (the one writer of tng/records.h), the bytes are
 * all-gathered (lengths first: ranks hold different amounts), and rank 0 writes them line by
 * line through io/metrics_log.h.
 */
#include "train/texts_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/metrics_log.h" // defines: MetricsLog, metrics_log_open, metrics_log_write
#include "tng/records.h"    // defines: TngRecordFrame, tng_records_write
#include "util/common.h"    // defines: die, mallocCheck

struct TextsLog {
    MetricsLog *file; /* rank 0 only */
    long limit;
    const Dist *dist;
    const Lexicon *lex;
};

TextsLog *texts_log_open(const char *run_dir, long limit, long keep_through_step, const Dist *d,
                         const Lexicon *lex) {
    TextsLog *log = callocCheck(1, sizeof *log);
    *log = (TextsLog){.limit = limit, .dist = d, .lex = lex};
    if (d->rank == 0) {
        char path[4096], err[1024];
        snprintf(path, sizeof path, "%s/texts.jsonl", run_dir);
        log->file = metrics_log_open(path, keep_through_step, err, sizeof err);
        if (!log->file) die("--log-texts: %s", err);
    }
    return log;
}

void texts_log_batch(TextsLog *log, const Pending *p, const TngTexts *texts, int n_texts, long step) {
    if (p->index >= log->limit) return;
    const Dist *d = log->dist;
    /* --tng-scope global makes texts from a pool of every rank's images: their positions
     * there are global already; else pool image j of rank r is global image j * W + r */
    TngRecordFrame frame = {.batch = p->index, .world = p->pool.n ? 1 : d->world,
                            .rank = p->pool.n ? 0 : d->rank, .own_at = p->pool.n ? p->pool.own_at : NULL,
                            .ids = p->ids};
    char *mine = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&mine, &size);
    if (!mem) die("--log-texts: cannot format records in memory");
    tng_records_write(mem, texts, n_texts, &frame, log->lex, 1, step);
    if (fclose(mem) != 0) die("--log-texts: cannot format records in memory");
    int W = d->world, my_bytes = (int)size;
    int *bytes = mallocCheck(sizeof(int) * (size_t)W), *ones = mallocCheck(sizeof(int) * (size_t)W);
    for (int k = 0; k < W; k++) ones[k] = 1;
    d->host->all_gather(d, bytes, &my_bytes, ones, DIST_I32);
    size_t total = 0;
    for (int k = 0; k < W; k++) total += (size_t)bytes[k];
    char *all = mallocCheck(total + 1);
    d->host->all_gather(d, all, mine, bytes, DIST_BYTE);
    if (log->file)
        for (char *line = all, *end = all + total; line < end;) {
            char *nl = memchr(line, '\n', (size_t)(end - line));
            metrics_log_write(log->file, "%.*s", (int)(nl - line), line);
            line = nl + 1;
        }
    free(mine), free(bytes), free(ones), free(all);
}

void texts_log_close(TextsLog *log) {
    if (!log) return;
    metrics_log_close(log->file);
    free(log);
}
