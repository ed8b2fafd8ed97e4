/*
 * metrics_log.h: a run's metrics.jsonl, one JSON object per line, that survives a kill.
 *
 * Every record is one write(2) of a whole line to a file opened O_APPEND, made right away: a
 * kill leaves whole lines (at most the last one torn, if the disk fills mid-write), never a
 * buffer's worth cut mid-line. On resume the log is first cut back to the checkpoint's step:
 * records of steps after it (which the resumed run does again) and a torn last line go, so
 * every step appears once and the file stays line-parsable.
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
