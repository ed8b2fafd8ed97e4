/*
 * emu_test.h: what the emulator's own tests (tests/emu/test_emu_*.cu) share: the emulator
 * and the project's launch macros, the test harness, and a check that a child process ran
 * into an expected error.
 *
 * The emulator reports a kernel error by aborting with a message (a real GPU would hang or
 * return garbage), and a refused launch or copy by an error code with a message; each such
 * case runs in a child process (expect_exit.h) so that the test sees the message and the way
 * the child ended without ending itself.
 */
#ifndef TNG_EMU_TEST_H
#define TNG_EMU_TEST_H

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "expect_exit.h"      /* defines: run_in_child, child_said, ChildEnd */
#include "harness.h"          /* defines: CHECK, RUN_TEST, test_summary */
#include "kernels/common.cuh" /* defines: TNG_LAUNCH, TNG_DYNAMIC_SMEM (and the emulator) */

/* How a child is expected to end: aborted (an emulator kernel error) or exited with a code. */
#define ENDS_BY_ABORT -1

/* Runs fn(arg) in a child; checks that it ended as `ending` says (ENDS_BY_ABORT, or the exit
 * code) and that its stderr holds `text`. */
static inline void expect_child(const char *what, void (*fn)(void *), void *arg, int ending,
                                const char *text) {
    ChildEnd end = run_in_child(fn, arg);
    int ended_right = ending == ENDS_BY_ABORT ? !end.exited && end.code == SIGABRT
                                              : end.exited && end.code == ending;
    CHECK(ended_right && child_said(&end, text),
          "%s: want %s %d and \"%s\"; the child %s %d and wrote:\n%s", what,
          ending == ENDS_BY_ABORT ? "abort" : "exit", ending == ENDS_BY_ABORT ? SIGABRT : ending,
          text, end.exited ? "exited" : "died of signal", end.code, end.message);
}

/* One expected ending: fn(arg) in a child must end as `ending` says and write `says`. */
typedef struct {
    const char *what;
    void (*fn)(void *);
    void *arg;
    int ending;
    const char *says;
} ChildCase;

static inline void expect_children(const ChildCase *cases, size_t n) {
    for (size_t i = 0; i < n; i++)
        expect_child(cases[i].what, cases[i].fn, cases[i].arg, cases[i].ending, cases[i].says);
}

/* n floats of device memory holding `value` (NAN: left as cudaMalloc poisoned it). */
static inline float *device_floats(size_t n, float value) {
    float *dev = NULL;
    cudaCheck(cudaMalloc(&dev, sizeof(float) * n));
    if (!isnan(value)) {
        float *host = (float *)malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++)
            host[i] = value;
        cudaCheck(cudaMemcpy(dev, host, sizeof(float) * n, cudaMemcpyHostToDevice));
        free(host);
    }
    return dev;
}

/* The n floats of a device buffer, in a host buffer the caller frees. */
static inline float *host_copy(const float *dev, size_t n) {
    float *host = (float *)malloc(sizeof(float) * n);
    cudaCheck(cudaMemcpy(host, dev, sizeof(float) * n, cudaMemcpyDeviceToHost));
    return host;
}

#endif
