/*
 * test_resume.c: resuming a run from a checkpoint continues bit-exactly.
 *
 * N steps, save, load into a fresh model, M more steps must give the very bits of N+M
 * straight steps: weights, AdamW moments and every loss. Also: `latest` names the newest
 * complete checkpoint, old ones are pruned, and a checkpoint of another model is refused.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/common.h"
#include "harness.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "util/rng.h"
#include "small_model.h"
#include "io/train_state.h"

enum { NI = 4, NT = 8, STEPS_BEFORE = 3, STEPS_AFTER = 2 };
static float images[NI * 3 * 16 * 16];
static int tokens[NT * 12], txt2img[NT], target[NI];

/* A different batch each step, drawn from the step number, like a data loader would. */
static ClipBatch batch_for_step(const ClipConfig *c, int step) {
    Rng rng;
    rng_seed(&rng, 100 + (uint64_t)step);
    for (size_t i = 0; i < sizeof images / sizeof *images; i++) images[i] = (float)rng_normal(&rng);
    memset(tokens, 0, sizeof tokens);
    for (int t = 0; t < NT; t++) {
        int eot = 2 + (int)rng_below(&rng, 8);
        tokens[t * 12] = c->vocab_size - 2;
        for (int k = 1; k < eot; k++) tokens[t * 12 + k] = 1 + (int)rng_below(&rng, 60);
        tokens[t * 12 + eot] = clip_eot_token(c);
        txt2img[t] = t % NI;
    }
    for (int i = 0; i < NI; i++) target[i] = i;
    return (ClipBatch){.n_images = NI, .images = images, .n_texts = NT, .tokens = tokens,
                       .txt2img = txt2img, .i2t_target = target};
}

static Clip *fresh_model(const ClipConfig *c) {
    Clip *m = clip_create(c, backend_cpu());
    clip_init_random(m, 5);
    ClipTrainConfig train = {.temperature = 0, .train_vision = 1, .train_text = 1};
    clip_prepare(m, &train, NI, NT);
    return m;
}

static float train_steps(Clip *m, const ClipConfig *c, int first, int count, float *losses) {
    OptimConfig oc = optim_defaults();
    oc.lr = 2e-3f;
    oc.warmup_steps = 2;
    oc.total_steps = STEPS_BEFORE + STEPS_AFTER;
    oc.schedule = SCHEDULE_COSINE;
    oc.grad_clip = 1.0f;
    for (int s = first; s < first + count; s++) {
        ClipBatch b = batch_for_step(c, s);
        losses[s] = clip_forward(m, &b, NULL);
        clip_backward(m);
        clip_optimizer_step(m, &oc, 1);
    }
    return losses[first + count - 1];
}

static char run_dir[] = "/tmp/tng_test_resume_XXXXXX";

static void test_resume_is_bit_exact(void) {
    ClipConfig c = small_config();
    float straight[STEPS_BEFORE + STEPS_AFTER], resumed[STEPS_BEFORE + STEPS_AFTER];
    Clip *a = fresh_model(&c);
    train_steps(a, &c, 0, STEPS_BEFORE + STEPS_AFTER, straight);

    Clip *b = fresh_model(&c);
    train_steps(b, &c, 0, STEPS_BEFORE, resumed);
    char err[512], saved[4096], latest[4096];
    const char *keys[] = {"note"}, *values[] = {"resume test"};
    CHECK(train_state_save(run_dir, b, keys, values, 1, 2, saved, sizeof saved, err, sizeof err) == 0,
          "save: %s", err);
    clip_free(b);

    CHECK(train_state_latest(run_dir, latest, sizeof latest, err, sizeof err) == 0, "latest: %s", err);
    CHECK(strcmp(latest, saved) == 0, "latest %s, saved %s", latest, saved);
    Clip *r = fresh_model(&c);
    CheckpointMeta meta = {0};
    CHECK(train_state_load(latest, r, &meta, err, sizeof err) == 0, "load: %s", err);
    const char *note = checkpoint_meta_get(&meta, "note");
    CHECK(note && strcmp(note, "resume test") == 0, "metadata round trip: %s", note ? note : "(none)");
    checkpoint_meta_free(&meta);
    CHECK(r->step == STEPS_BEFORE, "resumed at step %llu", (unsigned long long)r->step);
    train_steps(r, &c, STEPS_BEFORE, STEPS_AFTER, resumed);

    CHECK(memcmp(straight, resumed, sizeof straight) == 0, "losses differ: last %.9g vs %.9g",
          straight[STEPS_BEFORE + STEPS_AFTER - 1], resumed[STEPS_BEFORE + STEPS_AFTER - 1]);
    size_t n = a->layout.total;
    CHECK(memcmp(a->params, r->params, sizeof(float) * n) == 0, "weights differ");
    CHECK(memcmp(a->adam_m, r->adam_m, sizeof(float) * n) == 0 &&
              memcmp(a->adam_v, r->adam_v, sizeof(float) * n) == 0,
          "AdamW moments differ");
    clip_free(a);
    clip_free(r);
}

static void test_latest_and_pruning(void) {
    ClipConfig c = small_config();
    Clip *m = fresh_model(&c);
    float losses[8];
    char err[512], path[4096];
    for (int k = 0; k < 3; k++) {
        train_steps(m, &c, k, 1, losses);
        CHECK(train_state_save(run_dir, m, NULL, NULL, 0, 2, path, sizeof path, err, sizeof err) == 0,
              "save %d: %s", k, err);
    }
    char oldest[4096 + 32];
    snprintf(oldest, sizeof oldest, "%s/ckpt-%08d", run_dir, 1);
    CHECK(access(oldest, F_OK) != 0, "%s should have been pruned (keep 2)", oldest);
    CHECK(train_state_latest(run_dir, path, sizeof path, err, sizeof err) == 0 &&
              strstr(path, "ckpt-00000003"),
          "latest is %s", path);
    /* another model's run refuses to load it */
    ClipConfig other = c;
    other.embed_dim = 8;
    Clip *o = fresh_model(&other);
    CHECK(train_state_load(path, o, NULL, err, sizeof err) != 0 && strstr(err, "differs"),
          "a mismatched config must be refused (%s)", err);
    clip_free(o);
    clip_free(m);
}

int main(void) {
    if (!mkdtemp(run_dir)) die("mkdtemp failed");
    RUN_TEST(test_resume_is_bit_exact);
    RUN_TEST(test_latest_and_pruning);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", run_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", run_dir);
    return test_summary();
}
