/*
 * expect_exit.h: runs a function in a forked child process and tells how the child ended and
 * what it wrote to stderr, for the tests whose expected outcome is a process that stops with
 * a message (a shape check, a CUDA error, an emulator's kernel error).
 *
 * The child ends with _exit, whether the function returns or calls exit(): the exit handlers
 * it inherited belong to the parent (the CUDA runtime's would tear down the parent's
 * context), so none of them runs in the child.
 */
#ifndef TNG_TEST_EXPECT_EXIT_H
#define TNG_TEST_EXPECT_EXIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    int exited;         /* 1: it exited, with `code`; 0: a signal ended it, `code` is the signal */
    int code;
    char message[4096]; /* its stderr, cut to fit */
} ChildEnd;

static void expect_exit_now(int status, void *unused) {
    (void)unused;
    _exit(status);
}

/* Runs fn(arg) in a child; returns how the child ended (exit status 0 if fn returns). */
static inline ChildEnd run_in_child(void (*fn)(void *), void *arg) {
    ChildEnd end = {0, -1, ""};
    FILE *capture = tmpfile();
    if (!capture) {
        snprintf(end.message, sizeof end.message, "run_in_child: no temporary file");
        return end;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fileno(capture), STDERR_FILENO);
        on_exit(expect_exit_now, NULL); /* registered last, so it runs first */
        fn(arg);
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        snprintf(end.message, sizeof end.message, "run_in_child: fork or wait failed");
        fclose(capture);
        return end;
    }
    end.exited = WIFEXITED(status);
    end.code = end.exited ? WEXITSTATUS(status) : WIFSIGNALED(status) ? WTERMSIG(status) : -1;
    rewind(capture);
    size_t n = fread(end.message, 1, sizeof end.message - 1, capture);
    end.message[n] = '\0';
    fclose(capture);
    return end;
}

/* Whether the child wrote `text` to stderr. */
static inline int child_said(const ChildEnd *end, const char *text) {
    return strstr(end->message, text) != NULL;
}

#endif
