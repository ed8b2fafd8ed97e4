/*
 * test_dist.c: data-parallel training under mpirun equals one process with the global batch.
 *
 * Started without mpirun (as `make test` does) the binary is the driver: it launches
 * `mpirun -np N <itself> --worker SCENARIO DIR` for the model-level checks, and
 * `mpirun -np N tng_train ...` for the program-level ones, then compares what they wrote
 * with a one-process run computed here. Under mpirun (--worker) it is one rank.
 *
 *   collectives     np 3, uneven counts: all-gather, reduce-scatter, all-reduce, broadcast
 *   watchdog        (one process, forked) the hang watchdog stays quiet while progress is
 *                   reported or a long phase is declared, and ends the process when not
 *   model_*         np 2 (batch B each) and np 3 (uneven) vs one process with the
 *                   concatenated batch: the loss of 5 steps, every parameter gradient of the
 *                   first step, the weights after 5 AdamW steps. The gradients are reduced
 *                   in buckets started during the backward (clip_backward_last), except in
 *                   model_one_shot (clip_backward, then one reduction); model_accum
 *                   accumulates 2 micro-batches per step and must reduce once;
 *                   model_standalone: each image's last text a standalone negation whose
 *                   exclusion mask (loss.h) every rank cuts from the gathered objects
 *   tng_train       np 2 with --tng-scope global vs one process with twice the batch (and
 *                   the same with --standalone-negations 1); np 3 with --mcq-loss 1.5 and a
 *                   learned temperature vs one process with three times the batch;
 *                   resume under np 2 equals the uninterrupted run; a killed rank, and a
 *                   stopped one (SIGSTOP, caught by --hang-timeout), end the job within 60 s
 *                   and its last checkpoint resumes; --check-sync catches ranks whose
 *                   weights differ
 *
 * Tolerances: float32 sums in another order (features gathered across ranks, gradients
 * summed across ranks), amplified by 5 optimizer steps: |got - want| <= 1e-5 |want| plus an
 * absolute 1e-5 of the tensor's largest magnitude, so that elements summing to ~0 do not
 * fail on rounding. Resume is bit-exact (the same reductions in the same order).
 * Runs as root need --allow-run-as-root; 3 ranks on 2 cores need --oversubscribe.
 * Under `make asan` the ranks run with ASAN_OPTIONS=detect_leaks=0 (see MPIRUN).
 */
#include <dirent.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/common.h"
#include "engine/dist.h"
#include "harness.h"
#include "run_metrics.h" // defines: run_step_losses
#include "small_model.h"
#include "dist_scenarios.h" // defines: Scenario, SCENARIOS, Batch, make_batch, make_global_batch
#include "engine/model.h"
#include "engine/optim.h"
#include "util/rng.h"
#include "synth/synth.h"
#include "io/train_state.h"

/* Open MPI's runtime leaks at exit, which LeakSanitizer (make asan) would report as a failed
 * rank: leak detection is off in the ranks only; this driver keeps it. */
#define MPIRUN                                                                                \
    "mpirun --allow-run-as-root --oversubscribe -x OMP_NUM_THREADS=1 -x "                     \
    "ASAN_OPTIONS=detect_leaks=0 "
enum { STEPS = 5 };

static char work_dir[] = "/tmp/tng_test_dist_XXXXXX";
static char self_path[4096], train_path[4096];

/* ----------------------------------------------------------------------------
 * The model-level scenarios: one rank's batch of a global batch */

/* STEPS steps of training; writes the losses (the mean over a step's micro-batches), the
 * first step's gradients and the final weights (each layout.total floats) into out. dist
 * NULL: one process. Micro-batch k of step s is batch s * accum + k. */
static void train_scenario(const Scenario *sc, const Dist *dist, float *losses, float *grads,
                           float *params) {
    ClipConfig c = small_config();
    Clip *m = clip_create(&c, backend_cpu());
    clip_init_random(m, 5);
    int max_images = 0;
    for (int r = 0; r < sc->world; r++) max_images += sc->counts[r];
    if (dist) {
        max_images = 0;
        for (int r = 0; r < sc->world; r++) max_images = sc->counts[r] > max_images ? sc->counts[r] : max_images;
    }
    ClipTrainConfig train = {.temperature = sc->frozen_vision ? 0.07f : 0,
                             .train_vision = !sc->frozen_vision, .train_text = !sc->frozen_text,
                             .dist = dist,
                             .contradiction_log_weight = sc->contradictions ? logf(0.5f) : 0,
                             .i2t_each = sc->i2t_each};
    clip_prepare(m, &train, max_images, max_images * sc->texts_per_image);
    OptimConfig oc = optim_defaults();
    oc.lr = 2e-3f;
    oc.grad_clip = 1.0f;
    int accum = sc->accum ? sc->accum : 1;
    for (int s = 0; s < STEPS; s++) {
        losses[s] = 0;
        for (int micro = 0; micro < accum; micro++) {
            Batch b;
            if (dist) make_batch(sc, &c, s * accum + micro, dist->rank, &b);
            else make_global_batch(sc, &c, s * accum + micro, &b);
            ClipBatch cb = {.n_images = b.n_images, .n_texts = b.n_texts, .tokens = b.tokens,
                            .txt2img = b.txt2img, .i2t_target = b.target,
                            .absence = {.absent = b.absent, .named_start = b.named_start, .named = b.named}};
            if (sc->frozen_vision) cb.image_features = b.features;
            else cb.images = b.images;
            losses[s] += clip_forward(m, &cb, NULL) / accum;
            /* as tng_train: only the last micro-batch starts the reduction */
            if (micro == accum - 1 && !sc->one_shot) clip_backward_last(m);
            else clip_backward(m);
            batch_free(&b);
        }
        clip_reduce_gradients(m);
        if (s == 0) clip_get_params(m, params), memcpy(grads, m->grads, sizeof(float) * m->layout.total);
        clip_optimizer_step(m, &oc, accum);
    }
    clip_get_params(m, params);
    clip_free(m);
}

static size_t model_floats(void) {
    ClipConfig c = small_config();
    ParamLayout L;
    param_layout_build(&c, &L);
    size_t n = L.total;
    param_layout_free(&L);
    return n;
}

/* ----------------------------------------------------------------------------
 * Worker side (under mpirun) */

static int collective_failures;
#define EXPECT(cond, ...)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            collective_failures++;                                           \
            fprintf(stderr, "rank check failed: %s: ", #cond);               \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

/* Uneven counts {3, 1, 2}: counts in elements, rank order, every type the engine uses. */
static void worker_collectives(const Dist *d) {
    int counts[MAX_RANKS] = {3, 1, 2}, offsets[MAX_RANKS + 1], me = d->rank;
    int total = dist_offsets(d, counts, offsets);
    float send[3], recv[6], big[6];
    for (int j = 0; j < counts[me]; j++) send[j] = 10.0f * me + j + 0.5f;
    for (int k = 0; k < 6; k++) recv[k] = NAN;
    d->host->all_gather(d, recv, send, counts, DIST_F32);
    for (int r = 0; r < d->world; r++)
        for (int j = 0; j < counts[r]; j++)
            EXPECT(recv[offsets[r] + j] == 10.0f * r + j + 0.5f, "all_gather [%d] = %g", offsets[r] + j, recv[offsets[r] + j]);
    /* in place: the own slice already sits in the receive buffer */
    int ints[6] = {-1, -1, -1, -1, -1, -1};
    for (int j = 0; j < counts[me]; j++) ints[offsets[me] + j] = 100 * me + j;
    d->host->all_gather(d, ints, ints + offsets[me], counts, DIST_I32);
    for (int r = 0; r < d->world; r++)
        for (int j = 0; j < counts[r]; j++)
            EXPECT(ints[offsets[r] + j] == 100 * r + j, "in-place all_gather [%d] = %d", offsets[r] + j, ints[offsets[r] + j]);
    /* reduce-scatter: rank r contributes (r + 1) * (k + 1) to element k */
    for (int k = 0; k < total; k++) big[k] = (float)((me + 1) * (k + 1));
    float mine[3] = {NAN, NAN, NAN};
    d->device->reduce_scatter(d, mine, big, counts);
    for (int j = 0; j < counts[me]; j++)
        EXPECT(mine[j] == 6.0f * (offsets[me] + j + 1), "reduce_scatter [%d] = %g", j, mine[j]);
    float sum[2] = {me + 1.0f, 2.0f * me}, avg[1] = {3.0f * me};
    d->host->all_reduce(d, sum, 2, DIST_F32, DIST_SUM);
    d->host->all_reduce(d, avg, 1, DIST_F32, DIST_AVG);
    int top = 7 * me;
    d->host->all_reduce(d, &top, 1, DIST_I32, DIST_MAX);
    EXPECT(sum[0] == 6 && sum[1] == 6, "all_reduce sum %g %g", sum[0], sum[1]);
    EXPECT(avg[0] == 3, "all_reduce avg %g", avg[0]);
    EXPECT(top == 14, "all_reduce max %d", top);
    uint64_t word = me == 2 ? 0x0123456789abcdefULL : 0;
    d->host->broadcast(d, &word, 1, DIST_U64, 2);
    EXPECT(word == 0x0123456789abcdefULL, "broadcast %llx", (unsigned long long)word);
    EXPECT(d->local_world == d->world && d->local_rank == d->rank, "one node: local rank %d of %d",
           d->local_rank, d->local_world);
}

static int worker(int argc, char **argv) {
    Dist *d = dist_init(&argc, &argv);
    const char *scenario = argv[2], *dir = argv[3];
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.rank%d", dir, scenario, d->rank);
    if (strcmp(scenario, "collectives") == 0) {
        worker_collectives(d);
        FILE *f = fopenCheck(path, "w");
        fprintf(f, "%d\n", collective_failures);
        fcloseCheck(f);
    } else {
        const Scenario *sc = NULL;
        for (size_t k = 0; k < sizeof SCENARIOS / sizeof *SCENARIOS; k++)
            if (strcmp(SCENARIOS[k].name, scenario) == 0) sc = &SCENARIOS[k];
        if (!sc || sc->world != d->world) die("scenario %s does not run on %d ranks", scenario, d->world);
        size_t n = model_floats();
        float losses[STEPS], *grads = mallocCheck(sizeof(float) * n), *params = mallocCheck(sizeof(float) * n);
        train_scenario(sc, d, losses, grads, params);
        FILE *f = fopenCheck(path, "wb");
        fwriteCheck(losses, sizeof(float), STEPS, f);
        fwriteCheck(grads, sizeof(float), n, f);
        fwriteCheck(params, sizeof(float), n, f);
        fcloseCheck(f);
        free(grads), free(params);
    }
    dist_finalize(d);
    return 0;
}

/* ----------------------------------------------------------------------------
 * Driver side */

/* Runs a shell command (output into log); returns its exit status, or -1. */
static int run(const char *log, const char *fmt, ...) TNG_PRINTF(2, 3);
static int run(const char *log, const char *fmt, ...) {
    char cmd[16384], full[21000];
    va_list args;
    va_start(args, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, args);
    va_end(args);
    /* timeout: a hung job fails the test instead of the whole suite */
    snprintf(full, sizeof full, "timeout -k 5 120 %s > %s 2>&1", cmd, log);
    int status = system(full);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void show_log(const char *log) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "tail -n 15 %s >&2", log);
    if (system(cmd) != 0) fprintf(stderr, "(no log %s)\n", log);
}

static float *read_floats(const char *path, size_t n) {
    size_t size = 0;
    char *data = read_file(path, &size);
    if (!data || size != n * sizeof(float)) {
        free(data);
        return NULL;
    }
    return (float *)data;
}

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

static void check_close(const char *what, const float *got, const float *want, size_t n) {
    harness_allclose(what, got, want, n, 1e-5 * max_abs(want, n), 1e-5);
}

static void test_collectives(void) {
    char log[4200];
    snprintf(log, sizeof log, "%s/collectives.log", work_dir);
    int rc = run(log, MPIRUN "-np 3 %s --worker collectives %s", self_path, work_dir);
    CHECK(rc == 0, "mpirun -np 3 collectives exited %d", rc);
    for (int r = 0; r < 3; r++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/collectives.rank%d", work_dir, r);
        char *text = read_file(path, NULL);
        CHECK(text && atoi(text) == 0, "rank %d: %s failed collective checks", r, text ? text : "no result,");
        free(text);
    }
    if (rc != 0) show_log(log);
}

static void check_scenario(const Scenario *sc) {
    char log[4200];
    snprintf(log, sizeof log, "%s/%s.log", work_dir, sc->name);
    int rc = run(log, MPIRUN "-np %d %s --worker %s %s", sc->world, self_path, sc->name, work_dir);
    CHECK(rc == 0, "%s: mpirun exited %d", sc->name, rc);
    if (rc != 0) {
        show_log(log);
        return;
    }
    size_t n = model_floats(), record = STEPS + 2 * n;
    float want_losses[STEPS], *want_grads = mallocCheck(sizeof(float) * n), *want_params = mallocCheck(sizeof(float) * n);
    train_scenario(sc, NULL, want_losses, want_grads, want_params);
    float *rank0 = NULL;
    for (int r = 0; r < sc->world; r++) {
        char path[4200], what[128];
        snprintf(path, sizeof path, "%s/%s.rank%d", work_dir, sc->name, r);
        float *got = read_floats(path, record);
        CHECK(got != NULL, "%s: no result from rank %d", sc->name, r);
        if (!got) continue;
        snprintf(what, sizeof what, "%s rank %d: losses", sc->name, r);
        harness_allclose(what, got, want_losses, STEPS, 0, 1e-5);
        snprintf(what, sizeof what, "%s rank %d: gradients of step 1", sc->name, r);
        check_close(what, got + STEPS, want_grads, n);
        snprintf(what, sizeof what, "%s rank %d: weights after %d steps", sc->name, r, STEPS);
        check_close(what, got + STEPS + n, want_params, n);
        if (r == 0) rank0 = got;
        else {
            CHECK(memcmp(got, rank0, sizeof(float) * record) == 0, "%s: rank %d differs from rank 0",
                  sc->name, r);
            free(got);
        }
    }
    free(rank0), free(want_grads), free(want_params);
}

static void test_model_two_ranks(void) { check_scenario(&SCENARIOS[0]); }
static void test_model_two_ranks_tng_shape(void) { check_scenario(&SCENARIOS[1]); }
static void test_model_three_uneven_ranks(void) { check_scenario(&SCENARIOS[2]); }
/* texts with no positive image (txt2img -1) must stay -1 when gathered with offsets */
static void test_model_contradictions(void) { check_scenario(&SCENARIOS[3]); }
/* --i2t-target each: a row's other positives leave its softmax, across ranks too */
static void test_model_i2t_each(void) { check_scenario(&SCENARIOS[4]); }
/* the same sums without buckets: one reduction after the whole backward */
static void test_model_one_shot_reduction(void) { check_scenario(&SCENARIOS[5]); }
/* the vision layers' buckets, and a frozen text tower's gradients left out */
static void test_model_text_frozen(void) { check_scenario(&SCENARIOS[6]); }
/* a reduction after each micro-batch would count the first one world times */
static void test_model_accumulation(void) { check_scenario(&SCENARIOS[7]); }
/* standalone negations: the mask of each block, cut from the gathered objects, is the one
 * process's mask sliced (uneven ranks, so the offsets matter) */
static void test_model_standalone_negations(void) {
    check_scenario(&SCENARIOS[8]);
    /* the mask must matter here, or the equality above would not test it */
    Scenario unmasked = SCENARIOS[8];
    unmasked.standalone = 0;
    size_t n = model_floats();
    float masked_losses[STEPS], plain_losses[STEPS], *grads = mallocCheck(sizeof(float) * n);
    float *params = mallocCheck(sizeof(float) * n);
    train_scenario(&SCENARIOS[8], NULL, masked_losses, grads, params);
    train_scenario(&unmasked, NULL, plain_losses, grads, params);
    CHECK(fabsf(masked_losses[0] - plain_losses[0]) > 1e-3, "the exclusion mask left the loss %.6f",
          plain_losses[0]);
    free(grads), free(params);
}

/* ---- tng_train under mpirun ---- */

static char world_dir[4200];

static const char *train_flags(void) {
    static char flags[4400];
    snprintf(flags, sizeof flags,
             "--config tiny --data %s/train.csv --tng on --freeze vision --lr 1e-4 --seed 3 --log-every 1000",
             world_dir);
    return flags;
}

/* The weights of a run's latest checkpoint; NULL if it does not load. */
static float *load_latest(const char *run_dir, uint64_t *step) {
    char path[4200], err[512];
    if (train_state_latest(run_dir, path, sizeof path, err, sizeof err) != 0) return NULL;
    ClipConfig cfg;
    clip_config_preset("tiny", &cfg);
    Clip *m = clip_create(&cfg, backend_cpu());
    ClipTrainConfig train = {.temperature = 0.07f, .train_vision = 0, .train_text = 1};
    clip_prepare(m, &train, 1, 1);
    float *params = NULL;
    if (train_state_load(path, m, NULL, err, sizeof err) == 0) {
        params = mallocCheck(sizeof(float) * m->layout.total);
        clip_get_params(m, params);
        if (step) *step = m->step;
    } else {
        fprintf(stderr, "  %s: %s\n", path, err);
    }
    clip_free(m);
    return params;
}

static size_t tiny_floats(void) {
    ClipConfig cfg;
    clip_config_preset("tiny", &cfg);
    ParamLayout L;
    param_layout_build(&cfg, &L);
    size_t n = L.total;
    param_layout_free(&L);
    return n;
}

/* TNG's texts with --tng-scope global come from every rank's images in the loader's order,
 * so 2 ranks of batch 4 train exactly like one process of batch 8 (with `extra` flags). */
/* ranks processes of 4 images each against one process of them all */
static void check_tng_global_equals_one_process(const char *name, const char *extra, int ranks) {
    char one[4200], two[4200], log[4300];
    snprintf(one, sizeof one, "%s/%s_one", work_dir, name);
    snprintf(two, sizeof two, "%s/%s_two", work_dir, name);
    snprintf(log, sizeof log, "%s/%s.log", work_dir, name);
    int rc1 = run(log, "%s %s %s --batch %d --steps 3 --out %s", train_path, train_flags(), extra, 4 * ranks, one);
    CHECK(rc1 == 0, "one process exited %d", rc1);
    if (rc1 != 0) show_log(log);
    int rc2 = run(log, MPIRUN "-np %d %s %s %s --batch 4 --steps 3 --tng-scope global --out %s", ranks, train_path,
                  train_flags(), extra, two);
    CHECK(rc2 == 0, "mpirun -np %d exited %d", ranks, rc2);
    if (rc2 != 0) show_log(log);
    float want[3], got[3];
    CHECK(run_step_losses(one, want, 3) == 3 && run_step_losses(two, got, 3) == 3, "missing losses");
    /* metrics.jsonl prints 6 decimals: compare to that precision */
    harness_allclose("losses of 3 steps", got, want, 3, 2e-6, 1e-5);
    float *a = load_latest(one, NULL), *b = load_latest(two, NULL);
    CHECK(a && b, "checkpoints did not load");
    if (a && b) check_close("weights after 3 steps", b, a, tiny_floats());
    free(a), free(b);
}

static void test_train_tng_global_equals_one_process(void) { check_tng_global_equals_one_process("tng_global", "", 2); }

/* --standalone-negations: the texts' objects and the images' named nouns reach every rank's
 * mask, so the ranks train like the one process, masks and all */
static void test_train_standalone_negations(void) {
    check_tng_global_equals_one_process("standalone", "--standalone-negations 1 --i2t-target each", 2);
}

/* --mcq-loss: each rank scores its own images' options, the mean over the global count of
 * questions, so three ranks train like the one process (a learned temperature: its gradient
 * from the MCQ loss too) */
static void test_train_mcq_loss(void) {
    check_tng_global_equals_one_process("mcq", "--mcq-loss 1.5 --temperature learned", 3);
}

static void test_train_resume_under_two_ranks(void) {
    char straight[4200], split[4200], log[4300];
    snprintf(straight, sizeof straight, "%s/run_straight", work_dir);
    snprintf(split, sizeof split, "%s/run_split", work_dir);
    snprintf(log, sizeof log, "%s/resume.log", work_dir);
    int rc = run(log, MPIRUN "-np 2 %s %s --batch 4 --steps 4 --out %s", train_path, train_flags(), straight);
    CHECK(rc == 0, "straight run exited %d", rc);
    rc = rc || run(log, MPIRUN "-np 2 %s %s --batch 4 --steps 2 --out %s", train_path, train_flags(), split);
    rc = rc || run(log, MPIRUN "-np 2 %s %s --batch 4 --steps 4 --resume --out %s", train_path, train_flags(), split);
    CHECK(rc == 0, "interrupted + resumed runs exited %d", rc);
    if (rc != 0) show_log(log);
    const char *files[] = {"model.safetensors", "trainer_state.safetensors"};
    for (int k = 0; k < 2; k++) {
        char pa[4400], pb[4400];
        snprintf(pa, sizeof pa, "%s/ckpt-00000004/%s", straight, files[k]);
        snprintf(pb, sizeof pb, "%s/ckpt-00000004/%s", split, files[k]);
        size_t na = 0, nb = 0;
        char *a = read_file(pa, &na), *b = read_file(pb, &nb);
        CHECK(a && b && na == nb && memcmp(a, b, na) == 0, "%s: resumed differs from straight", files[k]);
        free(a), free(b);
    }
}

/* The pid of rank `rank` among the descendants of `root` (its environment names the rank). */
static pid_t find_rank(pid_t root, int rank) {
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    DIR *proc = opendir("/proc");
    pid_t found = 0;
    for (struct dirent *e; proc && !found && (e = readdir(proc));) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0) continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%d/environ", pid);
        size_t size = 0;
        char *env = read_file(path, &size);
        int match = 0;
        for (size_t at = 0; env && at < size; at += strlen(env + at) + 1)
            if (strcmp(env + at, want) == 0) match = 1;
        free(env);
        /* walk up the parents to make sure it is ours */
        for (pid_t up = pid; match && up > 1 && !found;) {
            snprintf(path, sizeof path, "/proc/%d/stat", up);
            char *stat = read_file(path, NULL);
            char *close_paren = stat ? strrchr(stat, ')') : NULL;
            int parent = 0;
            if (close_paren) sscanf(close_paren + 2, "%*c %d", &parent);
            free(stat);
            if (parent == root) found = pid;
            up = parent;
        }
    }
    if (proc) closedir(proc);
    return found;
}

/* 1 if process pid's command line has an argument containing needle. */
static int process_mentions(pid_t pid, const char *needle) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    size_t size = 0;
    char *args = read_file(path, &size);
    int found = 0;
    for (size_t at = 0; args && at < size && !found; at += strlen(args + at) + 1)
        found = strstr(args + at, needle) != NULL;
    free(args);
    return found;
}

/* Rank 1 gets `sig` once the run has a checkpoint: the job must end non-zero within `limit`
 * seconds with a message containing `expect`; its latest checkpoint must load and a resumed
 * run go 2 steps further. A stopped rank must not outlive the test. */
static void check_fault(const char *name, int sig, const char *flags, double limit, const char *expect) {
    char out[4200], log[4300], cmd[20000];
    snprintf(out, sizeof out, "%s/run_%s", work_dir, name);
    snprintf(log, sizeof log, "%s/%s.log", work_dir, name);
    snprintf(cmd, sizeof cmd, "exec " MPIRUN "-np 2 %s %s %s --batch 4 --steps 100000 --checkpoint-every 2 --out %s > %s 2>&1",
             train_path, train_flags(), flags, out, log);
    pid_t job = fork();
    if (job == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    char latest[4300];
    snprintf(latest, sizeof latest, "%s/latest", out);
    pid_t victim = 0;
    for (int tick = 0; tick < 600 && !victim; tick++) { /* up to 60 s for a first checkpoint */
        if (access(latest, F_OK) == 0) victim = find_rank(job, 1);
        if (!victim) usleep(100000);
    }
    CHECK(victim > 0, "no checkpoint or no rank 1 found");
    if (victim > 0) kill(victim, sig);
    int status = 0, ended = 0;
    double t0 = now_seconds();
    while (now_seconds() - t0 < limit && !(ended = waitpid(job, &status, WNOHANG) == job)) usleep(100000);
    if (!ended) { /* clean up the hung job before failing */
        kill(job, SIGKILL);
        waitpid(job, &status, 0);
    }
    if (victim > 0 && process_mentions(victim, out)) kill(victim, SIGKILL);
    CHECK(ended, "the job still ran %.0f s after rank 1 got signal %d", limit, sig);
    CHECK(!WIFEXITED(status) || WEXITSTATUS(status) != 0, "the job exited 0 after losing a rank");
    char *text = read_file(log, NULL);
    CHECK(text && strstr(text, expect), "the job's messages lack '%s'", expect);
    if (!text || !strstr(text, expect)) show_log(log);
    free(text);
    uint64_t step = 0;
    float *params = load_latest(out, &step);
    CHECK(params && step >= 2 && step % 2 == 0, "the latest checkpoint (step %llu) does not load",
          (unsigned long long)step);
    free(params);
    int rc = run(log, MPIRUN "-np 2 %s %s --batch 4 --steps %llu --resume --out %s", train_path,
                 train_flags(), (unsigned long long)step + 2, out);
    CHECK(rc == 0, "resuming after the fault exited %d", rc);
    uint64_t after = 0;
    params = load_latest(out, &after);
    CHECK(params && after == step + 2, "resumed to step %llu, wanted %llu", (unsigned long long)after,
          (unsigned long long)step + 2);
    free(params);
}

/* A killed rank: mpirun ends the job, naming the rank. */
static void test_train_killed_rank(void) { check_fault("killed", SIGKILL, "", 60, "rank 1"); }

/* A stopped rank raises no error: rank 0's watchdog must see no progress for 5 s and end the
 * job, naming the stopped rank, and mpirun then kills it. */
static void test_train_stopped_rank(void) {
    check_fault("stopped", SIGSTOP, "--hang-timeout 5", 5 + 60,
                "): waiting for rank 1 (the only peer), which is stuck");
}

/* Two ranks started with different learning rates (MPMD) drift apart; --check-sync 1 must
 * stop the job at the first step and name rank 1. */
static void test_train_check_sync(void) {
    char out[4200], log[4300];
    snprintf(out, sizeof out, "%s/run_sync", work_dir);
    snprintf(log, sizeof log, "%s/sync.log", work_dir);
    int rc = run(log, MPIRUN "-np 1 %s %s --batch 4 --steps 3 --check-sync 1 --out %s : -np 1 %s %s --batch 4 --steps 3 --check-sync 1 --lr 3e-4 --out %s",
                 train_path, train_flags(), out, train_path, train_flags(), out);
    CHECK(rc != 0, "diverged ranks were not stopped");
    char *text = read_file(log, NULL);
    CHECK(text && strstr(text, "weights diverged at step 1") && strstr(text, "rank 1 has"),
          "no divergence message naming rank 1");
    free(text);
}

/* Runs body in a forked world of one with the watchdog at timeout 0.5 s, stderr to log;
 * returns the child's wait status. */
static int watchdog_child(const char *log, void (*body)(void)) {
    pid_t child = fork();
    if (child == 0) {
        if (!freopen(log, "w", stderr)) _exit(126);
        unsetenv("OMPI_COMM_WORLD_SIZE"), unsetenv("PMI_SIZE"), unsetenv("PMIX_RANK");
        int argc = 1;
        char *args[] = {self_path, NULL}, **argv = args;
        Dist *d = dist_init(&argc, &argv);
        dist_watchdog_start(d, 0.5);
        body();
        _exit(0); /* the watchdog did not fire */
    }
    int status = 0;
    waitpid(child, &status, 0);
    return status;
}

/* 1.5 s of steady progress and a 1.5 s paused phase, then stuck inside a collective. */
static void progress_then_stuck_inside(void) {
    for (int step = 1; step <= 30; step++) {
        dist_watchdog_step(step);
        dist_collective_begin("all_gather");
        usleep(25000);
        dist_collective_end();
        usleep(25000);
    }
    dist_watchdog_pause(1);
    usleep(1500000);
    dist_watchdog_pause(0);
    dist_collective_begin("all_reduce");
    sleep(10);
}

static void stuck_outside(void) {
    dist_watchdog_step(7);
    sleep(10);
}

/* The watchdog stays quiet while progress is made or a phase is paused; a main thread stuck
 * in a collective, or outside any, ends the process with DIST_EXIT_HANG and a message naming
 * the rank, the collective and the step, and who is stuck as far as it can know. */
static void test_watchdog(void) {
    char log[4200];
    snprintf(log, sizeof log, "%s/watchdog.log", work_dir);
    int status = watchdog_child(log, progress_then_stuck_inside);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == DIST_EXIT_HANG,
          "the stuck process ended with status %d, wanted exit %d", status, DIST_EXIT_HANG);
    char *text = read_file(log, NULL);
    CHECK(text && strstr(text, "tng: rank 0 of 1: no progress for ") &&
              strstr(text, " s inside all_reduce (step 30)"),
          "unexpected message: %s", text ? text : "(none)");
    free(text);
    status = watchdog_child(log, stuck_outside);
    text = read_file(log, NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == DIST_EXIT_HANG && text &&
              strstr(text, " s outside any collective (step 7): rank 0 (this one) is stuck"),
          "stuck outside a collective: status %d, %s", status, text ? text : "(none)");
    free(text);
}

/* Without mpirun: a world of one whose collectives are copies, and a model given it trains
 * with the very bits of one given none. */
static void test_world_of_one(void) {
    unsetenv("OMPI_COMM_WORLD_SIZE"), unsetenv("PMI_SIZE"), unsetenv("PMIX_RANK");
    int argc = 1;
    char *args[] = {self_path, NULL}, **argv = args;
    Dist *d = dist_init(&argc, &argv);
    CHECK(d->world == 1 && d->rank == 0 && d->local_rank == 0, "world %d rank %d", d->world, d->rank);
    int count = 3;
    float send[3] = {1.5f, -2, 3}, recv[3] = {NAN, NAN, NAN};
    d->host->all_gather(d, recv, send, &count, DIST_F32);
    CHECK(memcmp(send, recv, sizeof send) == 0, "all_gather of one is not a copy");
    const Scenario *sc = &SCENARIOS[0];
    size_t n = model_floats();
    float la[STEPS], lb[STEPS];
    float *ga = mallocCheck(sizeof(float) * n), *gb = mallocCheck(sizeof(float) * n);
    float *pa = mallocCheck(sizeof(float) * n), *pb = mallocCheck(sizeof(float) * n);
    Scenario one = *sc;
    one.world = 1, one.counts[0] = sc->counts[0] + sc->counts[1];
    train_scenario(&one, NULL, la, ga, pa);
    train_scenario(&one, d, lb, gb, pb);
    CHECK(memcmp(la, lb, sizeof la) == 0 && memcmp(ga, gb, sizeof(float) * n) == 0 && memcmp(pa, pb, sizeof(float) * n) == 0,
          "a world of one changes the bits");
    free(ga), free(gb), free(pa), free(pb);
    dist_finalize(d);
}

static int have_mpirun(void) { return system("command -v mpirun > /dev/null 2>&1") == 0; }

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--worker") == 0) return worker(argc, argv);
    if (!mkdtemp(work_dir)) die("mkdtemp failed");
    if (!realpath(argv[0], self_path)) die("%s: cannot resolve the test's own path", argv[0]);
    /* programs sit beside tests/ in a BUILD folder, or at the top in the default build */
    char up[4096];
    snprintf(up, sizeof up, "%s", self_path);
    snprintf(train_path, sizeof train_path, "%s/tng_train", dirname(dirname(up)));
    if (access(train_path, X_OK) != 0) snprintf(train_path, sizeof train_path, "./tng_train");
    RUN_TEST(test_watchdog);
    RUN_TEST(test_world_of_one);
    if (strncmp(dist_transport(), "none", 4) == 0 || !have_mpirun()) {
        printf("  (built without MPI or no mpirun: only the one-process checks)\n");
    } else {
        RUN_TEST(test_collectives);
        RUN_TEST(test_model_two_ranks);
        RUN_TEST(test_model_two_ranks_tng_shape);
        RUN_TEST(test_model_three_uneven_ranks);
        RUN_TEST(test_model_contradictions);
        RUN_TEST(test_model_i2t_each);
        RUN_TEST(test_model_one_shot_reduction);
        RUN_TEST(test_model_text_frozen);
        RUN_TEST(test_model_accumulation);
        RUN_TEST(test_model_standalone_negations);
        SynthConfig sc;
        synth_config_default(&sc);
        sc.n_images[SYNTH_TRAIN] = 48, sc.n_images[SYNTH_VAL] = 4, sc.n_images[SYNTH_TEST] = 4;
        sc.n_captions = 2;
        sc.verbose = 0;
        snprintf(world_dir, sizeof world_dir, "%s/world", work_dir);
        synth_write_world(&sc, world_dir);
        RUN_TEST(test_train_tng_global_equals_one_process);
        RUN_TEST(test_train_standalone_negations);
        RUN_TEST(test_train_mcq_loss);
        RUN_TEST(test_train_resume_under_two_ranks);
        RUN_TEST(test_train_killed_rank);
        RUN_TEST(test_train_stopped_rank);
        RUN_TEST(test_train_check_sync);
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", work_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", work_dir);
    return test_summary();
}
