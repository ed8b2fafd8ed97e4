/*
 * programs.h: running the tng programs from a test, as subprocesses with their output captured.
 *
 * The programs are found in $TNG_BIN_DIR, else next to the test binary's folder when that
 * holds them ($(BUILD)/tests/.. = $(BUILD), as in `make asan`), else in "."; everything runs
 * from the repository root (the vocabulary and lexicon under data/cache). programs_setup finds
 * them and makes the scratch folder `work` (its outputs land there too); programs_cleanup
 * removes it. A header of static functions, like harness.h: each test binary includes it once.
 */
#ifndef TNG_TEST_PROGRAMS_H
#define TNG_TEST_PROGRAMS_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"     // defines: CHECK
#include "util/common.h" // defines: die, read_file

/* the temporary folder is short (/tmp/...XXXXXX), so derived paths fit in PATH_LEN */
enum { PATH_LEN = 1024 };
static char bin_dir[PATH_MAX], work[256];

/* snprintf that dies instead of truncating: every buffer here holds a path or argument. */
static inline void format_text(char *out, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len) die("text too long for its buffer (%d bytes): %s", n, fmt);
}

/* ----------------------------------------------------------------------------
 * Running a program: argv built from a NULL-terminated list, stdout and stderr captured */

typedef struct {
    int status; /* the exit code, or 128 + signal like a shell reports it */
    char *out, *err;
} Outcome;

enum { MAX_ARGS = 64 };

static inline int exit_code(int wait_status) {
    if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
    return -1;
}

/* Forks ARGS[0] (a tng program name, found in bin_dir) with ARGS[1..] (NULL-terminated);
 * in the child, cwd (when non-NULL) becomes the working folder, stdout goes to out_path and
 * stderr to err_fd. */
static inline pid_t spawn(const char *cwd, const char *out_path, int err_fd, const char *const *args) {
    char path[PATH_LEN];
    format_text(path, sizeof path, "%s/%s", bin_dir, args[0]);
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) die("fork failed: %s", strerror(errno));
    if (pid == 0) {
        int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out_fd < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) _exit(126);
        if (cwd && chdir(cwd) != 0) _exit(126);
        execv(path, (char *const *)args);
        _exit(127);
    }
    return pid;
}

/* Runs ARGS (a NULL-terminated list: a tng program, then its arguments) to its end, in cwd
 * (NULL: here), capturing its output. */
static inline Outcome run_args(const char *cwd, const char *const *args) {
    char out_path[PATH_LEN], err_path[PATH_LEN];
    format_text(out_path, sizeof out_path, "%s/stdout.txt", work);
    format_text(err_path, sizeof err_path, "%s/stderr.txt", work);
    int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err_fd < 0) die("%s: %s", err_path, strerror(errno));
    pid_t pid = spawn(cwd, out_path, err_fd, args);
    close(err_fd);
    int ws = 0;
    if (waitpid(pid, &ws, 0) != pid) die("waitpid failed: %s", strerror(errno));
    Outcome o = {.status = exit_code(ws), .out = read_file(out_path, NULL), .err = read_file(err_path, NULL)};
    if (!o.out || !o.err) die("cannot read the output of %s", args[0]);
    return o;
}

/* run_args with the arguments listed, ending with NULL. */
static inline Outcome run(const char *cwd, const char *program, ...) {
    const char *args[MAX_ARGS + 1] = {program};
    int n = 1;
    va_list ap;
    va_start(ap, program);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        if (n == MAX_ARGS) die("too many arguments for %s", program);
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    return run_args(cwd, args);
}

static inline void outcome_free(Outcome *o) { free(o->out), free(o->err); }

static inline int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* Byte-for-byte equality of two files (both must exist). */
static inline int same_bytes(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = read_file(a, &na), *y = read_file(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x), free(y);
    return same;
}

/* Checks a run directory's checkpoint at STEP equals the reference run's, file by file. */
static inline void check_same_checkpoint(const char *run_dir, const char *reference_dir, int step) {
    static const char *const files[] = {"model.safetensors", "trainer_state.safetensors"};
    for (int k = 0; k < 2; k++) {
        char a[PATH_LEN], b[PATH_LEN];
        format_text(a, sizeof a, "%s/ckpt-%08d/%s", run_dir, step, files[k]);
        format_text(b, sizeof b, "%s/ckpt-%08d/%s", reference_dir, step, files[k]);
        CHECK(file_exists(a), "%s is missing", a);
        CHECK(same_bytes(a, b), "%s differs from the straight run's %s", a, b);
    }
}

/* ----------------------------------------------------------------------------
 * Finding the programs, and the scratch folder */

static inline void find_programs(const char *argv0) {
    const char *env = getenv("TNG_BIN_DIR");
    char probe[PATH_LEN];
    format_text(bin_dir, sizeof bin_dir, "%s", env && *env ? env : ".");
    if (!(env && *env)) { /* $(BUILD)/tests/test_train_cli -> $(BUILD), if it holds programs */
        char here[PATH_MAX];
        format_text(here, sizeof here, "%s", argv0);
        char *slash = strrchr(here, '/');
        if (slash) {
            format_text(slash, sizeof here - (size_t)(slash - here), "/../tng_train");
            if (access(here, X_OK) == 0) {
                slash[3] = 0; // keep "<dir>/.."
                format_text(bin_dir, sizeof bin_dir, "%s", here);
            }
        }
    }
    char resolved[PATH_MAX];
    if (!realpath(bin_dir, resolved)) die("%s: %s", bin_dir, strerror(errno));
    format_text(bin_dir, sizeof bin_dir, "%s", resolved);
    format_text(probe, sizeof probe, "%s/tng_train", bin_dir);
    if (access(probe, X_OK) != 0) die("%s: not found; build the programs (make all) or set TNG_BIN_DIR", probe);
    printf("  programs from %s\n", bin_dir);
}

static inline void programs_setup(const char *argv0, const char *name) {
    find_programs(argv0);
    /* The programs' OpenMP threads spin while waiting by default; on a shared 2-core machine
     * that made the program tests 10x slower (60 s vs 6 s). Results do not depend on it. */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    format_text(work, sizeof work, "/tmp/tng_%s_XXXXXX", name);
    if (!mkdtemp(work)) die("mkdtemp failed: %s", strerror(errno));
}

static inline void programs_cleanup(void) {
    char cmd[PATH_LEN];
    format_text(cmd, sizeof cmd, "rm -rf %s", work);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", work);
}

/* tng_synth's world of n_train training images (32 px, 2 captions each) in DIR. */
static inline void make_world(const char *dir, int n_train) {
    char count[16];
    format_text(count, sizeof count, "%d", n_train);
    Outcome o = run(NULL, "tng_synth", "--out", dir, "--train", count, "--val", "16", "--test", "16", "--size", "32",
                    "--captions", "2", "--seed", "5", "--quiet", (char *)NULL);
    if (o.status != 0) die("tng_synth failed (%d): %s", o.status, o.err);
    outcome_free(&o);
}

#endif
