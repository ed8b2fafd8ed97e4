/*
 * harness.h: the minimal test harness every tests/test_*.c uses.
 *
 * A test binary calls RUN_TEST(fn) for each test function and ends with
 * `return test_summary();`. Inside a test, CHECK records one assertion; a test passes
 * when all its checks hold. The summary line "RESULT <passed> <failed>" is read by
 * tests/run_all.sh, which prints the project-wide "N passed, N failed".
 *
 * The tolerance helpers print the worst element so that a failure says by how much.
 */
#ifndef TNG_TEST_HARNESS_H
#define TNG_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int harness_tests_passed, harness_tests_failed, harness_current_failed;
static const char *harness_current_name;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            harness_current_failed++;                                                 \
            fprintf(stderr, "  FAIL %s (%s:%d): %s: ", harness_current_name, __FILE__, \
                    __LINE__, #cond);                                                 \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
        }                                                                             \
    } while (0)

#define RUN_TEST(fn)                                                           \
    do {                                                                       \
        harness_current_name = #fn;                                            \
        harness_current_failed = 0;                                            \
        fn();                                                                  \
        if (harness_current_failed == 0) {                                     \
            harness_tests_passed++;                                            \
            printf("  ok   %s\n", #fn);                                        \
        } else {                                                               \
            harness_tests_failed++;                                            \
            printf("  FAIL %s (%d checks failed)\n", #fn, harness_current_failed); \
        }                                                                      \
        fflush(stdout);                                                        \
    } while (0)

static inline int test_summary(void) {
    printf("RESULT %d %d\n", harness_tests_passed, harness_tests_failed);
    return harness_tests_failed ? 1 : 0;
}

/*
 * Elementwise |got - want| <= atol + rtol * |want| over n floats. Reports the worst
 * element (by how far it exceeds its bound) and returns 1 when every element is inside.
 * NaN anywhere fails.
 */
static inline int harness_allclose(const char *what, const float *got, const float *want,
                                   size_t n, double atol, double rtol) {
    size_t worst = 0;
    double worst_excess = -INFINITY, max_abs = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        double excess = diff - (atol + rtol * fabs((double)want[i]));
        if (isnan(got[i]) || isnan(want[i])) excess = INFINITY;
        if (diff > max_abs || isnan(diff)) max_abs = diff;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
        if (excess > 0) bad++;
    }
    if (bad) {
        harness_current_failed++;
        fprintf(stderr,
                "  FAIL %s: %s: %d of %zu elements outside atol %.1e rtol %.1e; worst [%zu] got "
                "%.9g want %.9g; max |diff| %.3e\n",
                harness_current_name, what, bad, n, atol, rtol, worst, (double)got[worst],
                (double)want[worst], max_abs);
        return 0;
    }
    return 1;
}

#endif
