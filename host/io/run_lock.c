/*
 * run_lock.c: the run directory's lock (run_lock.h), an flock on RUN_DIR/.lock.
 */
#include "io/run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "util/common.h" // defines: set_error

#define LOCK_FILE ".lock"

int run_lock_take(const char *run_dir, char *err, size_t err_len) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", run_dir, LOCK_FILE) >= (int)sizeof path)
        return set_error(err, err_len, "%s: path too long", run_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return set_error(err, err_len, "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int why = errno;
        char holder[256] = "";
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        close(fd);
        if (why == EWOULDBLOCK)
            return set_error(err, err_len, "%s is in use by another trainer (%s); wait for it to end "
                             "or choose another --out", run_dir, holder[0] ? holder : "holder unknown");
        return set_error(err, err_len, "%s: cannot lock: %s", path, strerror(why));
    }
    char me[256], host[128] = "?";
    gethostname(host, sizeof host - 1);
    int len = snprintf(me, sizeof me, "pid %ld on %s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, me, (size_t)len, 0) != len) {
        /* the lock holds without the note; the note only improves the message */
    }
    return fd;
}

void run_lock_release(int fd) {
    if (fd >= 0) close(fd);
}
