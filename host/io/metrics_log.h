/*
 * metrics_log.h: a run's metrics.jsonl, one JSON object per line, that survives a kill.
 *
 * Every record is one write(2) of a whole line to a file opened O_APPEND, made right away, so
 * nothing waits in a buffer: a kill loses no finished record, and can tear at most the record
 * being written (SIGKILL or a full disk may cut a write at a page boundary), the last line. On
 * resume the log is first cut back to the checkpoint's step: records of steps after it (which
 * the resumed run does again) and a torn last line go, so every step appears once, no record
 * is glued to a torn one, and the file stays line-parsable.
 */
#ifndef TNG_METRICS_LOG_H
#define TNG_METRICS_LOG_H

#include <stddef.h>

#include "util/common.h" // defines: TNG_PRINTF

typedef struct MetricsLog MetricsLog;

/* Opens path for appending records. keep_through_step < 0: a fresh log (any old file is
 * replaced). keep_through_step >= 0: keeps the existing records whose "step" is at most it
 * (and drops a torn last line), rewritten atomically, then appends. NULL with a message. */
MetricsLog *metrics_log_open(const char *path, long keep_through_step, char *err, size_t err_len);

/* Appends one record: the formatted JSON object and a newline, in one write. Dies on a write
 * error (a run that cannot log is not one to keep going blind). */
void metrics_log_write(MetricsLog *log, const char *fmt, ...) TNG_PRINTF(2, 3);

void metrics_log_close(MetricsLog *log);

#endif
