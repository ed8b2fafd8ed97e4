/*
 * test_local_rank.c: which GPU a data-parallel process takes (cuda/local_rank.h): the
 * launchers' local-rank variables in their order of precedence, the fallback when none is
 * set or a value is not a rank, and the sharing of GPUs when a node runs more processes
 * than it has.
 */
#include <stdlib.h>

#include "../cuda/local_rank.h" /* defines: launcher_local_rank, local_device */
#include "harness.h"

static const char *const launcher_vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                                            "SLURM_LOCALID", "LOCAL_RANK"};
enum { N_VARS = sizeof launcher_vars / sizeof *launcher_vars };

static void clear_launcher_vars(void) {
    for (int i = 0; i < N_VARS; i++)
        unsetenv(launcher_vars[i]);
}

static void test_each_launcher_and_precedence(void) {
    clear_launcher_vars();
    CHECK(launcher_local_rank(5) == 5, "no launcher variable: the fallback");
    /* set from the last to the first: each newly set one takes over */
    for (int i = N_VARS - 1; i >= 0; i--) {
        char value[16];
        snprintf(value, sizeof value, "%d", 10 + i);
        setenv(launcher_vars[i], value, 1);
        CHECK(launcher_local_rank(5) == 10 + i, "%s=%s read", launcher_vars[i], value);
    }
    clear_launcher_vars();
}

static void test_not_a_rank_falls_through(void) {
    const char *bad[] = {"", "-1", "2x", "abc", "99999999999"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        clear_launcher_vars();
        setenv("OMPI_COMM_WORLD_LOCAL_RANK", bad[k], 1);
        CHECK(launcher_local_rank(3) == 3, "'%s' is no rank: the fallback", bad[k]);
        setenv("SLURM_LOCALID", "7", 1);
        CHECK(launcher_local_rank(3) == 7, "'%s' is no rank: the next variable", bad[k]);
    }
    clear_launcher_vars();
}

static void test_ranks_share_gpus_round_robin(void) {
    CHECK(local_device(0, 8) == 0 && local_device(7, 8) == 7, "one rank per GPU");
    CHECK(local_device(8, 8) == 0 && local_device(11, 8) == 3, "past the count: wraps around");
    CHECK(local_device(5, 1) == 0, "one GPU: every rank on it");
}

int main(void) {
    RUN_TEST(test_each_launcher_and_precedence);
    RUN_TEST(test_not_a_rank_falls_through);
    RUN_TEST(test_ranks_share_gpus_round_robin);
    return test_summary();
}
