/*
 * run_lock.h: one trainer per run directory.
 *
 * Two trainers writing one run folder interleave their metrics and race for its checkpoints.
 * The lock is an exclusive flock(2) on RUN_DIR/.lock, which the kernel drops the moment its
 * holder exits or dies, so a lock file left by a killed run never blocks the next one; the
 * file also names the holder (pid and host) so the refusal can say who has it.
 */
#ifndef TNG_RUN_LOCK_H
#define TNG_RUN_LOCK_H

#include <stddef.h>

/* Takes the lock of run_dir (which must exist). Returns a descriptor >= 0 to keep open while
 * the run lasts, or -1 with a message naming the holder when another process has it. */
int run_lock_take(const char *run_dir, char *err, size_t err_len);

/* Releases the lock (closing the descriptor does it; exit does it too). -1 is ignored. */
void run_lock_release(int fd);

#endif
