/*
 * test_ops.c: every CPU op's backward against float64 central finite differences, and the
 * float32 forward against the float64 one.
 *
 * Method: for an op with output y, take a random projection w and the scalar
 * L = sum(y * w). Backward with dout = w gives dL/dx analytically; perturbing one input
 * element by +-h in float64 gives it numerically. Each test checks a spread of elements
 * of every differentiable input. Tolerance: |numeric - analytic| <= 1e-7 + 1e-5 |numeric|,
 * far below float32 epsilon, so a wrong formula cannot pass but float64 rounding does.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"
#include "engine/cpu/ops_cpu.h"
#include "harness.h"
#include "util/rng.h"

#define FD_STEP 1e-6
#define FD_ATOL 1e-7
#define FD_RTOL 1e-5

static Rng test_rng;

static double *random_doubles(size_t n, double scale) {
    double *x = mallocCheck(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(&test_rng);
    return x;
}

static double *zeros(size_t n) { return callocCheck(n ? n : 1, sizeof(double)); }

/* An op under test: forward() recomputes ctx->out from the inputs it points at. */
typedef struct OpCase OpCase;
struct OpCase {
    void (*forward)(OpCase *c);
    double *out, *weights; /* output and the random projection w */
    size_t n_out;
    void *op; /* op-specific inputs */
};

static double objective(OpCase *c) {
    c->forward(c);
    double L = 0;
    for (size_t i = 0; i < c->n_out; i++) L += c->out[i] * c->weights[i];
    return L;
}

/* Compares analytic[k] with the finite difference of the objective in x[k], on up to 40
 * elements spread over x. */
static void fd_check(const char *what, OpCase *c, double *x, const double *analytic, size_t n) {
    size_t stride = n > 40 ? n / 40 : 1;
    double worst = 0;
    int bad = 0;
    for (size_t k = 0; k < n; k += stride) {
        double saved = x[k];
        x[k] = saved + FD_STEP;
        double plus = objective(c);
        x[k] = saved - FD_STEP;
        double minus = objective(c);
        x[k] = saved;
        double numeric = (plus - minus) / (2 * FD_STEP);
        double err = fabs(numeric - analytic[k]);
        if (err > FD_ATOL + FD_RTOL * fabs(numeric)) {
            if (!bad)
                fprintf(stderr, "  %s: %s[%zu] numeric %.10g analytic %.10g\n",
                        harness_current_name, what, k, numeric, analytic[k]);
            bad++;
        }
        if (err > worst) worst = err;
    }
    CHECK(bad == 0, "%s: %d elements off, worst abs error %.3e", what, bad, worst);
    c->forward(c); /* leave the output consistent with the restored inputs */
}

/* The float32 op on the same inputs must agree with float64 to float32 accuracy. */
static void check_f32_close(const char *what, const float *got, const double *want, size_t n,
                            double atol) {
    float *want32 = mallocCheck(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) want32[i] = (float)want[i];
    harness_allclose(what, got, want32, n, atol, 1e-4);
    free(want32);
}

static float *to_f32(const double *x, size_t n) {
    float *y = mallocCheck(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}

static float *poisoned_f32(size_t n) {
    float *y = mallocCheck(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) y[i] = NAN;
    return y;
}

/* ---------------------------------------------------------------- matmul */

typedef struct {
    double *inp, *weight, *bias;
    int N, IC, OC;
} MatmulOp;

static void matmul_fwd(OpCase *c) {
    MatmulOp *o = c->op;
    matmul_forward_f64(c->out, o->inp, o->weight, o->bias, o->N, o->IC, o->OC);
}

static void test_matmul(void) {
    MatmulOp o = {.N = 7, .IC = 5, .OC = 6};
    o.inp = random_doubles((size_t)o.N * o.IC, 1);
    o.weight = random_doubles((size_t)o.OC * o.IC, 1);
    o.bias = random_doubles((size_t)o.OC, 1);
    OpCase c = {.forward = matmul_fwd, .n_out = (size_t)o.N * o.OC, .op = &o};
    c.out = zeros(c.n_out);
    c.weights = random_doubles(c.n_out, 1);
    double *dinp = zeros((size_t)o.N * o.IC), *dw = zeros((size_t)o.OC * o.IC), *db = zeros(o.OC);
    c.forward(&c);
    matmul_backward_f64(dinp, dw, db, c.weights, o.inp, o.weight, o.N, o.IC, o.OC);
    fd_check("dinp", &c, o.inp, dinp, (size_t)o.N * o.IC);
    fd_check("dweight", &c, o.weight, dw, (size_t)o.OC * o.IC);
    fd_check("dbias", &c, o.bias, db, o.OC);

    float *inp32 = to_f32(o.inp, (size_t)o.N * o.IC), *w32 = to_f32(o.weight, (size_t)o.OC * o.IC);
    float *b32 = to_f32(o.bias, o.OC), *out32 = poisoned_f32(c.n_out);
    matmul_forward_f32(out32, inp32, w32, b32, o.N, o.IC, o.OC);
    check_f32_close("f32 forward", out32, c.out, c.n_out, 1e-5);
    /* linear_backward: dinp overwritten (poisoned first), dweight and dbias accumulated onto
     * what they held (1, which the float64 sums above did not start from) */
    float *dout32 = to_f32(c.weights, c.n_out), *dinp32 = poisoned_f32((size_t)o.N * o.IC);
    float *dw32 = malloc(sizeof(float) * o.OC * o.IC), *db32 = malloc(sizeof(float) * o.OC);
    for (int i = 0; i < o.OC * o.IC; i++) dw32[i] = 1.0f, dw[i] += 1.0;
    for (int i = 0; i < o.OC; i++) db32[i] = 1.0f, db[i] += 1.0;
    linear_backward_f32(dinp32, dw32, db32, dout32, inp32, w32, o.N, o.IC, o.OC);
    check_f32_close("linear_backward dinp", dinp32, dinp, (size_t)o.N * o.IC, 1e-5);
    check_f32_close("linear_backward dweight", dw32, dw, (size_t)o.OC * o.IC, 1e-5);
    check_f32_close("linear_backward dbias", db32, db, o.OC, 1e-5);
    free(inp32), free(w32), free(b32), free(out32), free(dout32), free(dinp32), free(dw32), free(db32);
    free(o.inp), free(o.weight), free(o.bias), free(c.out), free(c.weights);
    free(dinp), free(dw), free(db);
}

/* ---------------------------------------------------------------- layernorm */

typedef struct {
    double *inp, *weight, *bias, *mean, *rstd;
    int N, C;
} LayernormOp;

static void layernorm_fwd(OpCase *c) {
    LayernormOp *o = c->op;
    layernorm_forward_f64(c->out, o->mean, o->rstd, o->inp, o->weight, o->bias, o->N, o->C);
}

static void test_layernorm(void) {
    LayernormOp o = {.N = 6, .C = 24};
    size_t n = (size_t)o.N * o.C;
    o.inp = random_doubles(n, 2);
    o.weight = random_doubles(o.C, 1);
    o.bias = random_doubles(o.C, 1);
    o.mean = zeros(o.N);
    o.rstd = zeros(o.N);
    OpCase c = {.forward = layernorm_fwd, .n_out = n, .op = &o};
    c.out = zeros(n);
    c.weights = random_doubles(n, 1);
    double *dinp = zeros(n), *dw = zeros(o.C), *db = zeros(o.C);
    c.forward(&c);
    layernorm_backward_f64(dinp, dw, db, c.weights, o.inp, o.weight, o.mean, o.rstd, o.N, o.C);
    fd_check("dinp", &c, o.inp, dinp, n);
    fd_check("dweight", &c, o.weight, dw, o.C);
    fd_check("dbias", &c, o.bias, db, o.C);

    float *inp32 = to_f32(o.inp, n), *w32 = to_f32(o.weight, o.C), *b32 = to_f32(o.bias, o.C);
    float *out32 = poisoned_f32(n), *mean32 = poisoned_f32(o.N), *rstd32 = poisoned_f32(o.N);
    layernorm_forward_f32(out32, mean32, rstd32, inp32, w32, b32, o.N, o.C);
    check_f32_close("f32 forward", out32, c.out, n, 1e-5);
    free(inp32), free(w32), free(b32), free(out32), free(mean32), free(rstd32);
    free(o.inp), free(o.weight), free(o.bias), free(o.mean), free(o.rstd);
    free(c.out), free(c.weights), free(dinp), free(dw), free(db);
}

/* ---------------------------------------------------------------- attention */

typedef struct {
    double *qkv, *lse;
    int B, T, C, NH, causal;
} AttentionOp;

static void attention_fwd(OpCase *c) {
    AttentionOp *o = c->op;
    attention_forward_f64(c->out, o->lse, o->qkv, o->B, o->T, o->C, o->NH, o->causal);
}

/* lse[b,h,t] against its definition, log sum_j e^(s_j) over the visible keys, summed here
 * directly (no max shift: the test's scores are a few units) */
static void check_attention_lse(const AttentionOp *o) {
    int hs = o->C / o->NH, row = 3 * o->C;
    double worst = 0;
    for (int b = 0; b < o->B; b++)
        for (int h = 0; h < o->NH; h++)
            for (int t = 0; t < o->T; t++) {
                const double *q = o->qkv + ((size_t)b * o->T + t) * row + h * hs;
                double sum = 0;
                for (int j = 0; j < (o->causal ? t + 1 : o->T); j++) {
                    const double *k = o->qkv + ((size_t)b * o->T + j) * row + o->C + h * hs;
                    double s = 0;
                    for (int d = 0; d < hs; d++) s += q[d] * k[d];
                    sum += exp(s / sqrt((double)hs));
                }
                worst = fmax(worst, fabs(log(sum) - o->lse[((size_t)b * o->NH + h) * o->T + t]));
            }
    CHECK(worst < 1e-12, "lse differs from log sum exp by %g", worst);
}

static void check_attention(int B, int T, int C, int NH, int causal) {
    AttentionOp o = {.B = B, .T = T, .C = C, .NH = NH, .causal = causal};
    size_t nqkv = (size_t)B * T * 3 * C, nlse = (size_t)B * NH * T;
    o.qkv = random_doubles(nqkv, 1);
    o.lse = zeros(nlse);
    OpCase c = {.forward = attention_fwd, .n_out = (size_t)B * T * C, .op = &o};
    c.out = zeros(c.n_out);
    c.weights = random_doubles(c.n_out, 1);
    double *dqkv = zeros(nqkv);
    c.forward(&c);
    check_attention_lse(&o);
    attention_backward_f64(dqkv, c.weights, o.qkv, c.out, o.lse, B, T, C, NH, causal);

    /* float32: the forward, and the backward from its own out and lse, against float64 */
    float *qkv32 = to_f32(o.qkv, nqkv), *out32 = poisoned_f32(c.n_out), *lse32 = poisoned_f32(nlse);
    /* dqkv is overwritten (its single writer): poisoned, so a missed element shows */
    float *dout32 = to_f32(c.weights, c.n_out), *dqkv32 = poisoned_f32(nqkv);
    attention_forward_f32(out32, lse32, qkv32, B, T, C, NH, causal);
    check_f32_close("f32 forward", out32, c.out, c.n_out, 1e-5);
    check_f32_close("f32 lse", lse32, o.lse, nlse, 1e-5);
    attention_backward_f32(dqkv32, dout32, qkv32, out32, lse32, B, T, C, NH, causal);
    check_f32_close("f32 backward", dqkv32, dqkv, nqkv, 1e-5);

    fd_check(causal ? "dqkv (causal)" : "dqkv", &c, o.qkv, dqkv, nqkv);
    /* causality: output row t must not depend on later positions */
    if (causal) {
        double before = c.out[C]; /* batch 0, position 1, channel 0 */
        o.qkv[(size_t)(T - 1) * 3 * C + C] += 1.0; /* a key at the last position */
        c.forward(&c);
        CHECK(T <= 2 || c.out[C] == before, "causal output changed by a later key");
    }
    free(qkv32), free(out32), free(lse32), free(dout32), free(dqkv32);
    free(o.qkv), free(o.lse), free(c.out), free(c.weights), free(dqkv);
}

static void test_attention(void) {
    check_attention(2, 5, 8, 2, 0);
    check_attention(2, 5, 8, 2, 1);
    check_attention(1, 7, 12, 3, 1); /* odd T, head dim 4 */
}

/* ---------------------------------------------------------------- activations */

typedef struct {
    double *inp;
    size_t n;
    ActKind act;
} ActivationOp;

static void activation_fwd(OpCase *c) {
    ActivationOp *o = c->op;
    activation_forward_f64(c->out, o->inp, o->n, o->act);
}

static void test_activations(void) {
    for (int a = 0; a < 2; a++) {
        ActivationOp o = {.n = 50, .act = a ? ACT_GELU : ACT_QUICK_GELU};
        o.inp = random_doubles(o.n, 2);
        OpCase c = {.forward = activation_fwd, .n_out = o.n, .op = &o};
        c.out = zeros(o.n);
        c.weights = random_doubles(o.n, 1);
        double *dinp = zeros(o.n);
        c.forward(&c);
        activation_backward_f64(dinp, o.inp, c.weights, o.n, o.act);
        fd_check(act_kind_name(o.act), &c, o.inp, dinp, o.n);
        /* spot values: quick_gelu(1) = 1/(1+e^-1.702), gelu(1) = 0.8413447460685429 */
        double one = 1, y;
        activation_forward_f64(&y, &one, 1, o.act);
        double want = a ? 0.8413447460685429 : 1.0 / (1.0 + exp(-1.702));
        CHECK(fabs(y - want) < 1e-15, "%s(1) = %.17g, want %.17g", act_kind_name(o.act), y, want);
        free(o.inp), free(c.out), free(c.weights), free(dinp);
    }
}

/* ---------------------------------------------------------------- vision stem */

typedef struct {
    double *images, *patches, *weight, *patch_out, *class_emb, *pos;
    int B, H, P, C;
} VisionStemOp;

static void vision_stem_fwd(OpCase *c) {
    VisionStemOp *o = c->op;
    int np = (o->H / o->P) * (o->H / o->P);
    im2col_patches_f64(o->patches, o->images, o->B, o->H, o->H, o->P);
    matmul_forward_f64(o->patch_out, o->patches, o->weight, NULL, o->B * np, 3 * o->P * o->P, o->C);
    vision_embed_forward_f64(c->out, o->patch_out, o->class_emb, o->pos, o->B, np, o->C);
}

static void test_vision_stem(void) {
    VisionStemOp o = {.B = 2, .H = 6, .P = 3, .C = 5};
    int np = 4, T = np + 1, K = 3 * o.P * o.P;
    o.images = random_doubles((size_t)o.B * 3 * o.H * o.H, 1);
    o.patches = zeros((size_t)o.B * np * K);
    o.weight = random_doubles((size_t)o.C * K, 1);
    o.patch_out = zeros((size_t)o.B * np * o.C);
    o.class_emb = random_doubles(o.C, 1);
    o.pos = random_doubles((size_t)T * o.C, 1);
    OpCase c = {.forward = vision_stem_fwd, .n_out = (size_t)o.B * T * o.C, .op = &o};
    c.out = zeros(c.n_out);
    c.weights = random_doubles(c.n_out, 1);
    c.forward(&c);
    /* im2col layout: patch (py=1,px=0) of image 1, channel 2, row 1, col 2 */
    double want = o.images[((size_t)(1 * 3 + 2) * o.H + 1 * o.P + 1) * o.H + 0 * o.P + 2];
    CHECK(o.patches[((size_t)1 * np + 2) * K + (2 * o.P + 1) * o.P + 2] == want,
          "im2col places pixels in (channel, row, col) order");
    double *dpatch = zeros((size_t)o.B * np * o.C), *dcls = zeros(o.C);
    double *dpos = zeros((size_t)T * o.C), *dw = zeros((size_t)o.C * K);
    vision_embed_backward_f64(dpatch, dcls, dpos, c.weights, o.B, np, o.C);
    matmul_backward_f64(NULL, dw, NULL, dpatch, o.patches, o.weight, o.B * np, K, o.C);
    fd_check("dweight", &c, o.weight, dw, (size_t)o.C * K);
    fd_check("dclass", &c, o.class_emb, dcls, o.C);
    fd_check("dpos", &c, o.pos, dpos, (size_t)T * o.C);
    free(o.images), free(o.patches), free(o.weight), free(o.patch_out), free(o.class_emb);
    free(o.pos), free(c.out), free(c.weights), free(dpatch), free(dcls), free(dpos), free(dw);
}

/* ---------------------------------------------------------------- token embedding + pooling */

typedef struct {
    double *tok, *pos, *x;
    int *ids, *rows;
    int B, T, C;
} TextStemOp;

static void text_stem_fwd(OpCase *c) {
    TextStemOp *o = c->op;
    token_embed_forward_f64(o->x, o->ids, o->tok, o->pos, o->B, o->T, o->C);
    gather_rows_f64(c->out, o->x, o->rows, o->B, o->T, o->C);
}

static void test_text_stem(void) {
    int V = 6;
    TextStemOp o = {.B = 3, .T = 4, .C = 5};
    int ids[] = {1, 5, 5, 2, 0, 3, 3, 3, 5, 1, 4, 0}; /* repeated ids exercise the scatter-add */
    int rows[] = {2, 0, 3};
    o.ids = ids;
    o.rows = rows;
    o.tok = random_doubles((size_t)V * o.C, 1);
    o.pos = random_doubles((size_t)o.T * o.C, 1);
    o.x = zeros((size_t)o.B * o.T * o.C);
    OpCase c = {.forward = text_stem_fwd, .n_out = (size_t)o.B * o.C, .op = &o};
    c.out = zeros(c.n_out);
    c.weights = random_doubles(c.n_out, 1);
    c.forward(&c);
    double *dx = zeros((size_t)o.B * o.T * o.C), *dtok = zeros((size_t)V * o.C);
    double *dpos = zeros((size_t)o.T * o.C);
    scatter_rows_f64(dx, c.weights, o.rows, o.B, o.T, o.C);
    token_embed_backward_f64(dtok, dpos, dx, o.ids, o.B, o.T, o.C);
    fd_check("dtoken", &c, o.tok, dtok, (size_t)V * o.C);
    fd_check("dpos", &c, o.pos, dpos, (size_t)o.T * o.C);
    free(o.tok), free(o.pos), free(o.x), free(c.out), free(c.weights), free(dx), free(dtok), free(dpos);
}

/* ---------------------------------------------------------------- l2 normalisation */

typedef struct {
    double *inp, *norm;
    int N, C;
} L2Op;

static void l2_fwd(OpCase *c) {
    L2Op *o = c->op;
    l2norm_forward_f64(c->out, o->norm, o->inp, o->N, o->C);
}

static void test_l2norm(void) {
    L2Op o = {.N = 4, .C = 7};
    size_t n = (size_t)o.N * o.C;
    o.inp = random_doubles(n, 1);
    o.norm = zeros(o.N);
    OpCase c = {.forward = l2_fwd, .n_out = n, .op = &o};
    c.out = zeros(n);
    c.weights = random_doubles(n, 1);
    c.forward(&c);
    double *dinp = zeros(n);
    l2norm_backward_f64(dinp, c.weights, c.out, o.norm, o.N, o.C);
    fd_check("dinp", &c, o.inp, dinp, n);
    double len = 0;
    for (int k = 0; k < o.C; k++) len += c.out[k] * c.out[k];
    CHECK(fabs(len - 1) < 1e-14, "row norm %.17g", len);
    free(o.inp), free(o.norm), free(c.out), free(c.weights), free(dinp);
}

/* ---------------------------------------------------------------- InfoNCE */

typedef struct {
    double *cos, *dcos, scale_param; /* scale_param is differentiated as a 1-element input */
    double stats[INFONCE_NSTATS];
    const int *txt2img, *i2t_target;
    int Ni, Nt;
    InfonceTerms terms;
} InfonceOp;

/* The loss itself is the objective: out = [loss], weights = [1]. */
static void infonce_fwd(OpCase *c) {
    InfonceOp *o = c->op;
    infonce_forward_backward_f64(o->dcos, o->stats, o->cos, o->txt2img, o->i2t_target,
                                 (float)o->scale_param, o->Ni, o->Nt, &o->terms);
    c->out[0] = o->stats[INFONCE_LOSS];
}

/* A random exclusion mask over the block [Ni, Nt] whose row i is image first + i: about 40%
 * of the pairs, never a text's pair with its positive image nor a row's target (the op's
 * contract; targets NULL: none). */
static unsigned char *random_exclusions(const int *txt2img, const int *targets, int first, int Ni,
                                        int Nt) {
    unsigned char *exclude = mallocCheck((size_t)Ni * Nt);
    for (int i = 0; i < Ni; i++)
        for (int t = 0; t < Nt; t++) {
            int kept = txt2img[t] == first + i || (targets && targets[i] == t);
            exclude[i * Nt + t] = !kept && rng_uniform(&test_rng) < 0.4;
        }
    return exclude;
}

/* 3 images x 7 texts. txt2img: positives (uneven counts per image), -1 for contradiction
 * negatives; terms.n_texts counts the others; log_weight is their ln w; exclude: NULL or a
 * random mask (the gradient of an excluded pair must be 0, which finite differences see too:
 * its cos takes no part). */
static void check_infonce(const int *txt2img, const int *i2t_target, float log_weight, int each,
                          int masked, const char *what) {
    int scored = 0;
    for (int t = 0; t < 7; t++) scored += txt2img[t] >= 0;
    InfonceOp o = {.Ni = 3, .Nt = 7, .txt2img = txt2img, .i2t_target = i2t_target,
                   .terms = infonce_whole(3, scored)};
    o.terms.negative_log_weight = log_weight;
    o.terms.i2t_each = each;
    unsigned char *exclude = masked ? random_exclusions(txt2img, i2t_target, 0, 3, 7) : NULL;
    o.terms.exclude = exclude;
    o.cos = random_doubles(21, 0.5);
    o.dcos = zeros(21);
    /* a float-representable scale so the float cast in the op is exact */
    o.scale_param = 14.25;
    double one = 1, loss = 0;
    OpCase c = {.forward = infonce_fwd, .n_out = 1, .out = &loss, .weights = &one, .op = &o};
    c.forward(&c);
    double analytic[21], dscale = o.stats[INFONCE_DSCALE];
    memcpy(analytic, o.dcos, sizeof analytic);
    fd_check(what, &c, o.cos, analytic, 21);
    for (int k = 0; k < 21 && exclude; k++)
        CHECK(!exclude[k] || o.dcos[k] == 0, "%s: excluded pair %d has dcos %.3g", what, k, o.dcos[k]);
    /* dscale: the op takes a float scale, so use a step float can represent */
    double s0 = o.scale_param;
    o.scale_param = s0 + 0.0625;
    double plus = objective(&c);
    o.scale_param = s0 - 0.0625;
    double minus = objective(&c);
    o.scale_param = s0;
    objective(&c); /* restore stats for the scale we compare at */
    double numeric = (plus - minus) / 0.125;
    CHECK(fabs(numeric - dscale) < 1e-3 * fabs(numeric) + 1e-6, "dscale numeric %.9g analytic %.9g",
          numeric, dscale);
    /* the float build, computing in place */
    float cos32[21], stats32[INFONCE_NSTATS];
    for (int k = 0; k < 21; k++) cos32[k] = (float)o.cos[k];
    infonce_forward_backward_f32(cos32, stats32, cos32, txt2img, i2t_target, 14.25f, 3, 7, &o.terms);
    check_f32_close("f32 in-place dcos", cos32, analytic, 21, 1e-6);
    CHECK(fabs(stats32[INFONCE_LOSS] - o.stats[INFONCE_LOSS]) < 1e-5 * o.stats[INFONCE_LOSS],
          "f32 loss %.9g vs f64 %.9g", stats32[INFONCE_LOSS], o.stats[INFONCE_LOSS]);
    free(o.cos), free(o.dcos), free(exclude);
}

static void test_infonce(void) {
    static const int txt2img[] = {0, 1, 2, 0, 1, 2, 0};
    static const int own[] = {3, 1, 5}, mean[] = {-1, -1, -1}, mixed[] = {6, -1, 2};
    /* texts 4 and 6 are contradiction negatives: no text->image term, never a positive */
    static const int contra[] = {0, 1, 2, 0, -1, 2, -1}, contra_mixed[] = {3, -1, 2};
    for (int each = 0; each <= 1; each++) { /* i2t_each changes only the -1 (mean) rows */
        for (int masked = 0; masked <= 1; masked++) { /* several random masks: the rng moves on */
            check_infonce(txt2img, own, 0, each, masked, "dcos (own target)");
            check_infonce(txt2img, mean, 0, each, masked, "dcos (mean target)");
            check_infonce(txt2img, mixed, 0, each, masked, "dcos (mixed targets)");
            check_infonce(contra, own, 0, each, masked, "dcos (contradictions, own target)");
            check_infonce(contra, mean, 0, each, masked, "dcos (contradictions, mean target)");
            check_infonce(contra, contra_mixed, logf(0.3f), each, masked,
                          "dcos (contradictions weighted 0.3)");
        }
    }
}

/* The contradiction semantics against independent arrangements of the same numbers:
 * - text->image: the mean over the scored columns is the plain op on the matrix without
 *   the -1 columns;
 * - image->text (own targets): a -1 column of weight w is a negative like any other text
 *   whose logit is raised by ln w, so it equals the plain op with those columns labelled
 *   as some image's (untargeted) text and their cos raised by ln(w)/scale. */
static void test_infonce_contradictions(void) {
    enum { NI = 3, NT = 7, NS = 5 };
    static const int txt2img[NT] = {0, 1, 2, 0, -1, 2, -1}, own[NI] = {3, 1, 5};
    static const int relabelled[NT] = {0, 1, 2, 0, 1, 2, 0}, kept[NS] = {0, 1, 2, 3, 5};
    static const int kept_t2i[NS] = {0, 1, 2, 0, 2}, kept_own[NI] = {3, 1, 4};
    const double scale = 14.25, w = 0.3;
    double *cos = random_doubles(NI * NT, 0.5), dcos[NI * NT], stats[INFONCE_NSTATS];
    InfonceTerms terms = infonce_whole(NI, NS);
    terms.negative_log_weight = (float)log(w);
    infonce_forward_backward_f64(dcos, stats, cos, txt2img, own, (float)scale, NI, NT, &terms);

    double cut[NI * NS], cut_dcos[NI * NS], cut_stats[INFONCE_NSTATS];
    for (int i = 0; i < NI; i++)
        for (int k = 0; k < NS; k++) cut[i * NS + k] = cos[i * NT + kept[k]];
    InfonceTerms cut_terms = infonce_whole(NI, NS);
    infonce_forward_backward_f64(cut_dcos, cut_stats, cut, kept_t2i, kept_own, (float)scale, NI,
                                 NS, &cut_terms);
    /* same arithmetic on the same numbers, up to summation order */
    CHECK(fabs(stats[INFONCE_T2I] - cut_stats[INFONCE_T2I]) < 1e-12, "t2i %.15g vs cut matrix %.15g",
          stats[INFONCE_T2I], cut_stats[INFONCE_T2I]);

    double shifted[NI * NT], shifted_dcos[NI * NT], shifted_stats[INFONCE_NSTATS];
    for (int k = 0; k < NI * NT; k++)
        shifted[k] = cos[k] + (txt2img[k % NT] < 0 ? log(w) / (double)(float)scale : 0);
    InfonceTerms rows_only = {1, 0, 0, NI, NT, 0.0f, 0, NULL, 1.0f};
    infonce_forward_backward_f64(shifted_dcos, shifted_stats, shifted, relabelled, own,
                                 (float)scale, NI, NT, &rows_only);
    /* log(w) is rounded to float in the terms: 1e-7 relative on a logit of ~1 */
    CHECK(fabs(stats[INFONCE_I2T] - shifted_stats[INFONCE_I2T]) < 1e-6,
          "i2t %.15g vs shifted relabelled matrix %.15g", stats[INFONCE_I2T],
          shifted_stats[INFONCE_I2T]);
    free(cos);
}

/* The exclusion mask's meaning, against independent arrangements of the same numbers:
 * - own targets: the loss is the direct formula whose every log-sum-exp skips the excluded
 *   pairs (1e-12: float64 sums in another order);
 * - in every target mode, an excluded pair's cos can be anything: changing them all leaves
 *   the loss, its terms and every dcos the same bits (they take part in no sum);
 * - an all-zero mask is the unmasked op, bit for bit (the option-off path). */
static void test_infonce_exclusions(void) {
    enum { NI = 4, NT = 9 };
    static const int txt2img[NT] = {0, 1, 2, 3, 0, -1, 2, 3, 1}, own[NI] = {0, 1, 2, 3};
    static const int mean[NI] = {-1, -1, -1, -1};
    const float scale = 14.25f;
    const int scored = NT - 1;
    double *cos = random_doubles(NI * NT, 0.5), dcos[NI * NT], stats[INFONCE_NSTATS];
    unsigned char *exclude = random_exclusions(txt2img, own, 0, NI, NT);
    InfonceTerms terms = infonce_whole(NI, scored);
    terms.exclude = exclude;
    infonce_forward_backward_f64(dcos, stats, cos, txt2img, own, scale, NI, NT, &terms);
    double t2i = 0, i2t = 0;
    for (int t = 0; t < NT; t++) {
        if (txt2img[t] < 0) continue;
        double sum = 0;
        for (int i = 0; i < NI; i++)
            if (!exclude[i * NT + t]) sum += exp(scale * cos[i * NT + t]);
        t2i += log(sum) - scale * cos[txt2img[t] * NT + t];
    }
    for (int i = 0; i < NI; i++) {
        double sum = 0;
        for (int t = 0; t < NT; t++)
            if (!exclude[i * NT + t]) sum += exp(scale * cos[i * NT + t]);
        i2t += log(sum) - scale * cos[i * NT + own[i]];
    }
    double want = 0.5 * (t2i / scored + i2t / NI);
    CHECK(fabs(stats[INFONCE_LOSS] - want) < 1e-12, "masked loss %.15g, direct formula %.15g",
          stats[INFONCE_LOSS], want);

    const int *targets[2] = {own, mean};
    for (int k = 0; k < 4; k++) { /* own, mean, and each of them with i2t_each */
        InfonceTerms masked = infonce_whole(NI, scored);
        masked.i2t_each = k / 2;
        masked.exclude = exclude;
        double ref_dcos[NI * NT], ref_stats[INFONCE_NSTATS], moved[NI * NT];
        infonce_forward_backward_f64(ref_dcos, ref_stats, cos, txt2img, targets[k % 2], scale, NI, NT, &masked);
        for (int e = 0; e < NI * NT; e++) moved[e] = exclude[e] ? 3 * rng_normal(&test_rng) : cos[e];
        double got_dcos[NI * NT], got_stats[INFONCE_NSTATS];
        infonce_forward_backward_f64(got_dcos, got_stats, moved, txt2img, targets[k % 2], scale, NI, NT, &masked);
        CHECK(memcmp(ref_stats, got_stats, sizeof got_stats) == 0 && memcmp(ref_dcos, got_dcos, sizeof got_dcos) == 0,
              "target mode %d: the excluded pairs' cos changed the result (loss %.15g vs %.15g)", k,
              ref_stats[INFONCE_LOSS], got_stats[INFONCE_LOSS]);
        unsigned char none[NI * NT] = {0};
        InfonceTerms unmasked = masked, zero_mask = masked;
        unmasked.exclude = NULL;
        zero_mask.exclude = none;
        infonce_forward_backward_f64(ref_dcos, ref_stats, cos, txt2img, targets[k % 2], scale, NI, NT, &unmasked);
        infonce_forward_backward_f64(got_dcos, got_stats, cos, txt2img, targets[k % 2], scale, NI, NT, &zero_mask);
        CHECK(memcmp(ref_stats, got_stats, sizeof got_stats) == 0 && memcmp(ref_dcos, got_dcos, sizeof got_dcos) == 0,
              "target mode %d: an all-zero mask differs from none", k);
    }
    free(cos), free(exclude);
}

/* Data parallelism's decomposition: rank r computes image->text on [its images x all texts]
 * and text->image on [all images x its texts]. Each block's gradient must match finite
 * differences of its own loss, and the blocks of all ranks must add up to the whole-matrix
 * call: loss, dscale and every dcos element (a cos element lies in one row block and one
 * column block, whose two gradients sum to the whole one). */
static void check_infonce_blocks(int masked) {
    enum { NI = 5, NT = 11, RANKS = 2 };
    static const int txt2img[NT] = {0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 2}; /* image 2 has 3 texts */
    static const int target[NI] = {0, -1, 10, -1, 4};
    static const int img_first[RANKS + 1] = {0, 2, NI}, txt_first[RANKS + 1] = {0, 4, NT};
    const float scale = 14.25f;
    double *cos = random_doubles(NI * NT, 0.5), whole_dcos[NI * NT], whole_stats[INFONCE_NSTATS];
    unsigned char *exclude = masked ? random_exclusions(txt2img, target, 0, NI, NT) : NULL;
    InfonceTerms whole = infonce_whole(NI, NT);
    whole.exclude = exclude;
    infonce_forward_backward_f64(whole_dcos, whole_stats, cos, txt2img, target, scale, NI, NT, &whole);
    double summed_dcos[NI * NT] = {0}, loss = 0, dscale = 0;
    for (int r = 0; r < RANKS; r++) {
        /* rows: this rank's images against every text, a contiguous slice of cos */
        int ni = img_first[r + 1] - img_first[r];
        InfonceOp rows = {.Ni = ni, .Nt = NT, .txt2img = txt2img, .i2t_target = target + img_first[r],
                          .terms = {1, 0, img_first[r], NI, NT}, .scale_param = scale};
        rows.cos = mallocCheck(sizeof(double) * ni * NT);
        memcpy(rows.cos, cos + (size_t)img_first[r] * NT, sizeof(double) * ni * NT);
        rows.dcos = zeros((size_t)ni * NT);
        /* the mask is sliced like cos: the rows block's rows, the columns block's columns */
        if (exclude) rows.terms.exclude = exclude + (size_t)img_first[r] * NT;
        unsigned char column_exclude[NI * NT];
        /* columns: every image against this rank's texts, copied out as a [NI, nt] block */
        int nt = txt_first[r + 1] - txt_first[r];
        InfonceOp cols = {.Ni = NI, .Nt = nt, .txt2img = txt2img + txt_first[r], .i2t_target = NULL,
                          .terms = {0, 1, 0, NI, NT}, .scale_param = scale};
        cols.cos = mallocCheck(sizeof(double) * NI * nt);
        for (int i = 0; i < NI; i++)
            for (int t = 0; t < nt; t++) {
                cols.cos[i * nt + t] = cos[i * NT + txt_first[r] + t];
                if (exclude) column_exclude[i * nt + t] = exclude[i * NT + txt_first[r] + t];
            }
        if (exclude) cols.terms.exclude = column_exclude;
        cols.dcos = zeros((size_t)NI * nt);
        InfonceOp *blocks[2] = {&rows, &cols};
        for (int k = 0; k < 2; k++) {
            InfonceOp *o = blocks[k];
            double one = 1, out = 0, analytic[NI * NT];
            OpCase c = {.forward = infonce_fwd, .n_out = 1, .out = &out, .weights = &one, .op = o};
            c.forward(&c);
            memcpy(analytic, o->dcos, sizeof(double) * o->Ni * o->Nt);
            fd_check(k == 0 ? "row block dcos" : "column block dcos", &c, o->cos, analytic,
                     (size_t)o->Ni * o->Nt);
            loss += o->stats[INFONCE_LOSS];
            dscale += o->stats[INFONCE_DSCALE];
        }
        for (int i = 0; i < ni; i++)
            for (int t = 0; t < NT; t++) summed_dcos[(img_first[r] + i) * NT + t] += rows.dcos[i * NT + t];
        for (int i = 0; i < NI; i++)
            for (int t = 0; t < nt; t++) summed_dcos[i * NT + txt_first[r] + t] += cols.dcos[i * nt + t];
        free(rows.cos), free(rows.dcos), free(cols.cos), free(cols.dcos);
    }
    /* float64 sums in a different order: a few ulps */
    CHECK(fabs(loss - whole_stats[INFONCE_LOSS]) < 1e-12, "blocks' loss %.15g, whole %.15g", loss,
          whole_stats[INFONCE_LOSS]);
    CHECK(fabs(dscale - whole_stats[INFONCE_DSCALE]) < 1e-12, "blocks' dscale %.15g, whole %.15g",
          dscale, whole_stats[INFONCE_DSCALE]);
    double worst = 0;
    for (int k = 0; k < NI * NT; k++) worst = fmax(worst, fabs(summed_dcos[k] - whole_dcos[k]));
    CHECK(worst < 1e-14, "blocks' dcos differ from the whole matrix's by %.3e", worst);
    free(cos), free(exclude);
}

static void test_infonce_blocks(void) {
    check_infonce_blocks(0);
    check_infonce_blocks(1);
}

/* The square case with one text per image is CLIP's loss: check against a direct formula. */
static void test_infonce_square_is_clip(void) {
    int n = 4, txt2img[] = {0, 1, 2, 3}, target[] = {0, 1, 2, 3};
    double *cos = random_doubles(16, 0.5), dcos[16], stats[INFONCE_NSTATS], scale = 10;
    InfonceTerms whole = infonce_whole(n, n);
    infonce_forward_backward_f64(dcos, stats, cos, txt2img, target, (float)scale, n, n, &whole);
    double i2t = 0, t2i = 0;
    for (int i = 0; i < n; i++) {
        double rs = 0, cs = 0;
        for (int j = 0; j < n; j++) {
            rs += exp(scale * cos[i * n + j]);
            cs += exp(scale * cos[j * n + i]);
        }
        i2t += log(rs) - scale * cos[i * n + i];
        t2i += log(cs) - scale * cos[i * n + i];
    }
    double want = 0.5 * (i2t + t2i) / n;
    CHECK(fabs(stats[INFONCE_LOSS] - want) < 1e-12, "loss %.15g, CLIP formula %.15g",
          stats[INFONCE_LOSS], want);
    free(cos);
}

/* ---------------------------------------------------------------- optimizer */

static void test_adamw_matches_formula(void) {
    size_t n = 5;
    double p[5], g[5], m[5] = {0}, v[5] = {0}, p0[5];
    for (size_t i = 0; i < n; i++) p[i] = p0[i] = rng_normal(&test_rng), g[i] = rng_normal(&test_rng);
    AdamWStep hp = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-6f, .weight_decay = 0.1f,
                    .bias_correction1 = 1 - 0.9f, .bias_correction2 = 1 - 0.98f, .grad_scale = 0.5f};
    adamw_update_f64(p, g, m, v, n, &hp);
    for (size_t i = 0; i < n; i++) {
        double gs = g[i] * 0.5, mi = (1 - (double)hp.beta1) * gs, vi = (1 - (double)hp.beta2) * gs * gs;
        double want = p0[i] * (1 - (double)hp.lr * hp.weight_decay) -
                      hp.lr * (mi / hp.bias_correction1) / (sqrt(vi / hp.bias_correction2) + hp.eps);
        CHECK(fabs(p[i] - want) < 1e-12, "param %zu: %.15g want %.15g", i, p[i], want);
    }
}

static void test_sum_squares_chunk_boundaries(void) {
    size_t n = 4096 * 3 + 17;
    float *x = mallocCheck(sizeof(float) * n);
    double want = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)rng_normal(&test_rng);
        want += (double)x[i] * x[i];
    }
    double got = sum_squares_f32(x, n);
    CHECK(fabs(got - want) < 1e-9 * want, "sum of squares %.15g want %.15g", got, want);
    free(x);
}

int main(void) {
    rng_seed(&test_rng, 1234);
    RUN_TEST(test_matmul);
    RUN_TEST(test_layernorm);
    RUN_TEST(test_attention);
    RUN_TEST(test_activations);
    RUN_TEST(test_vision_stem);
    RUN_TEST(test_text_stem);
    RUN_TEST(test_l2norm);
    RUN_TEST(test_infonce);
    RUN_TEST(test_infonce_contradictions);
    RUN_TEST(test_infonce_exclusions);
    RUN_TEST(test_infonce_blocks);
    RUN_TEST(test_infonce_square_is_clip);
    RUN_TEST(test_adamw_matches_formula);
    RUN_TEST(test_sum_squares_chunk_boundaries);
    return test_summary();
}
