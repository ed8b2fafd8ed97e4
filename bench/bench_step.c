/*
 * bench_step.c: the CPU engine's training step: time, achieved GFLOP/s, and how much of the
 * step is GEMM and at what rate, for a named config and batch.
 *
 * FLOPs are counted, not estimated: the benchmark runs the model on a copy of the CPU
 * backend whose matmul and attention entries are wrapped to count the floating-point work
 * each call does and the time it takes. Everything else runs the real CPU ops unchanged.
 *
 *   build/bench/bench_step --config tiny --batch 64 [--steps 10] [--caption-tokens 16]
 *                          [--full-context] [--freeze-vision] [--sgemm-peak]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "util/rng.h"

static struct {
    double gemm_flops, gemm_seconds, attn_flops, attn_seconds;
} counters;

static void timed_matmul_forward(float *out, const float *inp, const float *weight,
                                 const float *bias, int N, int IC, int OC) {
    double t0 = now_seconds();
    backend_cpu()->matmul_forward(out, inp, weight, bias, N, IC, OC);
    counters.gemm_seconds += now_seconds() - t0;
    counters.gemm_flops += 2.0 * N * IC * OC;
}

static void timed_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                  const float *inp, const float *weight, int N, int IC, int OC) {
    double t0 = now_seconds();
    backend_cpu()->matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC);
    counters.gemm_seconds += now_seconds() - t0;
    counters.gemm_flops += 2.0 * N * IC * OC * ((dinp != NULL) + (dweight != NULL));
}

/* q.k and att.v: 2 multiply-adds per (query, key, channel); causal rows see half the keys */
static double attention_flops(int B, int T, int C, int causal) {
    double pairs = causal ? 0.5 * T * (T + 1) : (double)T * T;
    return 4.0 * B * pairs * C;
}

static void timed_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C,
                                    int NH, int causal) {
    double t0 = now_seconds();
    backend_cpu()->attention_forward(out, att, qkv, B, T, C, NH, causal);
    counters.attn_seconds += now_seconds() - t0;
    counters.attn_flops += attention_flops(B, T, C, causal);
}

static void timed_attention_backward(float *dqkv, float *datt, const float *dout,
                                     const float *qkv, const float *att, int B, int T, int C,
                                     int NH, int causal) {
    double t0 = now_seconds();
    backend_cpu()->attention_backward(dqkv, datt, dout, qkv, att, B, T, C, NH, causal);
    counters.attn_seconds += now_seconds() - t0;
    counters.attn_flops += 2 * attention_flops(B, T, C, causal);
}

static double sgemm_gflops(int n, int reps) {
    float *a = mallocCheck(sizeof(float) * (size_t)n * n), *b = mallocCheck(sizeof(float) * (size_t)n * n);
    float *c = mallocCheck(sizeof(float) * (size_t)n * n);
    Rng rng;
    rng_seed(&rng, 1);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)rng_normal(&rng), b[i] = (float)rng_normal(&rng);
    backend_cpu()->matmul_forward(c, a, b, NULL, n, n, n); /* warm-up */
    double t0 = now_seconds();
    for (int r = 0; r < reps; r++) backend_cpu()->matmul_forward(c, a, b, NULL, n, n, n);
    double seconds = now_seconds() - t0;
    free(a), free(b), free(c);
    return 2.0 * n * n * n * reps / seconds / 1e9;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: bench_step [options]\n"
            "  --config NAME         model preset: tiny or vit-b-32 (default tiny)\n"
            "  --batch N             images per step; one text per image (default 32)\n"
            "  --steps N             timed steps after one warm-up step (default 5)\n"
            "  --caption-tokens N    EOT position of every caption (default 16)\n"
            "  --full-context        run all context positions (disable the EOT cut)\n"
            "  --freeze-vision       train the text tower only\n"
            "  --sgemm-peak          measure OpenBLAS sgemm at 2048^3 and exit\n"
            "  --help                this text\n");
}

int main(int argc, char **argv) {
    const char *config_name = "tiny";
    int batch = 32, steps = 5, caption_tokens = 16, full_context = 0, freeze_vision = 0;
    static const struct option options[] = {
        {"config", required_argument, 0, 'c'},   {"batch", required_argument, 0, 'b'},
        {"steps", required_argument, 0, 's'},    {"caption-tokens", required_argument, 0, 't'},
        {"full-context", no_argument, 0, 'f'},   {"freeze-vision", no_argument, 0, 'v'},
        {"sgemm-peak", no_argument, 0, 'p'},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    for (int opt; (opt = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        switch (opt) {
        case 'c': config_name = optarg; break;
        case 'b': batch = atoi(optarg); break;
        case 's': steps = atoi(optarg); break;
        case 't': caption_tokens = atoi(optarg); break;
        case 'f': full_context = 1; break;
        case 'v': freeze_vision = 1; break;
        case 'p': printf("sgemm 2048^3: %.1f GFLOP/s\n", sgemm_gflops(2048, 5)); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    ClipConfig cfg;
    if (clip_config_preset(config_name, &cfg) != 0) die("unknown config '%s'", config_name);
    if (batch < 1 || steps < 1 || caption_tokens < 1 || caption_tokens >= cfg.context_length)
        die("--batch and --steps must be >= 1 and --caption-tokens in [1, %d)", cfg.context_length);

    Backend timed = *backend_cpu();
    timed.matmul_forward = timed_matmul_forward;
    timed.matmul_backward = timed_matmul_backward;
    timed.attention_forward = timed_attention_forward;
    timed.attention_backward = timed_attention_backward;
    Clip *m = clip_create(&cfg, &timed);
    clip_init_random(m, 1);
    ClipTrainConfig train = {.temperature = 0, .train_vision = !freeze_vision, .train_text = 1,
                             .full_context = full_context};
    clip_prepare(m, &train, batch, batch);

    Rng rng;
    rng_seed(&rng, 2);
    size_t npix = (size_t)batch * 3 * cfg.image_size * cfg.image_size;
    float *images = mallocCheck(sizeof(float) * npix);
    for (size_t i = 0; i < npix; i++) images[i] = (float)rng_normal(&rng);
    int *tokens = callocCheck((size_t)batch * cfg.context_length, sizeof(int));
    int *txt2img = mallocCheck(sizeof(int) * batch), *target = mallocCheck(sizeof(int) * batch);
    for (int b = 0; b < batch; b++) {
        int *row = tokens + (size_t)b * cfg.context_length;
        row[0] = cfg.vocab_size - 2;
        for (int t = 1; t < caption_tokens; t++) row[t] = 1 + (int)rng_below(&rng, 40000);
        row[caption_tokens] = clip_eot_token(&cfg);
        txt2img[b] = target[b] = b;
    }
    ClipBatch cb = {.n_images = batch, .images = images, .n_texts = batch, .tokens = tokens,
                    .txt2img = txt2img, .i2t_target = target};
    OptimConfig oc = optim_defaults();
    double total = 0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1) memset(&counters, 0, sizeof counters); /* step 0 warms up */
        double t0 = now_seconds();
        clip_forward(m, &cb, NULL);
        clip_backward(m);
        clip_optimizer_step(m, &oc, 1);
        if (s > 0) total += now_seconds() - t0;
    }
    double step = total / steps, flops = (counters.gemm_flops + counters.attn_flops) / steps;
    printf("config=%s batch=%d text_tokens=%d vision=%s steps=%d\n", config_name, batch,
           m->text_tokens, freeze_vision ? "frozen" : "trained", steps);
    printf("step %.1f ms  %.1f pairs/s  %.2f GFLOP/step  %.1f GFLOP/s\n", step * 1e3, batch / step,
           flops / 1e9, flops / step / 1e9);
    printf("gemm %.1f%% of step at %.1f GFLOP/s; attention %.1f%% at %.1f GFLOP/s\n",
           100 * counters.gemm_seconds / total, counters.gemm_flops / counters.gemm_seconds / 1e9,
           100 * counters.attn_seconds / total, counters.attn_flops / counters.attn_seconds / 1e9);
    free(images), free(tokens), free(txt2img), free(target);
    clip_free(m);
    return 0;
}
