/*
 * test_layernorm.cu: LayerNorm (kernels/layernorm.cuh) against the CPU op, forward and
 * backward, over widths up to 2048 and row counts up to a ViT-B/32 batch (the backward's
 * chunks of rows, a ragged last one included, with its partial sums' scratch poisoned); the
 * bf16 backend's LayerNorm; the residual add fused in front of it; and the determinism of
 * its parameter gradients (column sums).
 *
 * bf16: the activations inp and out are bf16, everything else (weight, bias, mean, rstd and
 * every gradient) fp32. The inputs are rounded to bf16 on both sides, so the CPU computes
 * from the very values the kernel reads: only out carries bf16 rounding (atol 2^-8 of its
 * scale + rtol 2^-7); the gradients, accumulated in fp32 into random prior values, meet the
 * fp32 tolerance TOL, which an accumulation in bf16 (2^-9 relative per add) could not.
 */
#include "gpu_test_util.h" /* defines: Pair, cpu, gpu, check_scaled, bf16_upload, gpu_test_init */
#include "kernels/layernorm.cuh"

/* The backward's per-chunk partial sums live in the backend's scratch: NaN there, so a chunk
 * the kernel forgets to write (a ragged last chunk, an idle warp) poisons dweight and dbias
 * instead of reusing an earlier call's sums. */
static void poison_layernorm_partials(int N, int C) {
    size_t bytes = sizeof(float) * 2 * layernorm_backward_plan((size_t)N, C).partial_elems;
    cudaCheck(cudaMemset(tng_cuda_scratch(bytes), 0xFF, bytes));
}

/* One shape, through the fp32 backend, or the bf16 one (bf16 activations). */
static void layernorm_case(int N, int C, int bf16) {
    char what[96];
    size_t n = (size_t)N * C;
    const char *type = bf16 ? "bf16" : "fp32";
    Pair inp = pair_random(n, 2.0), w = pair_random((size_t)C, 1.0);
    Pair b = pair_random((size_t)C, 1.0);
    for (size_t i = 0; i < n; i++)
        inp.host[i] += 3.0f; /* a mean far from 0 */
    pair_upload(inp);
    __nv_bfloat16 *inp16 = bf16 ? pair_to_bf16(inp) : NULL;
    Pair out = pair_poisoned(n), mean = pair_poisoned((size_t)N);
    Pair rstd = pair_poisoned((size_t)N);
    cpu->layernorm_forward(out.host, mean.host, rstd.host, inp.host, w.host, b.host, N, C);
    snprintf(what, sizeof what, "layernorm_forward %s out N=%d C=%d", type, N, C);
    if (bf16) {
        __nv_bfloat16 *out16 = bf16_poisoned(n);
        gpu16->layernorm_forward(out16, mean.dev, rstd.dev, inp16, w.dev, b.dev, N, C);
        check_bf16(what, out16, out.host, n);
        cudaCheck(cudaFree(out16));
    } else {
        gpu->layernorm_forward(out.dev, mean.dev, rstd.dev, inp.dev, w.dev, b.dev, N, C);
        check_scaled(what, out, TOL);
    }
    snprintf(what, sizeof what, "layernorm_forward %s mean N=%d C=%d", type, N, C);
    check_scaled(what, mean, TOL);
    snprintf(what, sizeof what, "layernorm_forward %s rstd N=%d C=%d", type, N, C);
    check_scaled(what, rstd, TOL);

    Pair dout = pair_random(n, 1.0), dinp = pair_random(n, 1.0);
    Pair dw = pair_random((size_t)C, 1.0), db = pair_random((size_t)C, 1.0);
    /* twice: all gradients, then dinp alone (NULL gradients are skipped, nothing else touched) */
    for (int dinp_only = 0; dinp_only <= 1; dinp_only++) {
        float *dw_dev = dinp_only ? NULL : dw.dev, *db_dev = dinp_only ? NULL : db.dev;
        poison_layernorm_partials(N, C);
        cpu->layernorm_backward(dinp.host, dinp_only ? NULL : dw.host, dinp_only ? NULL : db.host,
                                dout.host, inp.host, w.host, mean.host, rstd.host, N, C);
        if (bf16)
            gpu16->layernorm_backward(dinp.dev, dw_dev, db_dev, dout.dev, inp16, w.dev, mean.dev,
                                      rstd.dev, N, C);
        else
            gpu->layernorm_backward(dinp.dev, dw_dev, db_dev, dout.dev, inp.dev, w.dev, mean.dev,
                                    rstd.dev, N, C);
        snprintf(what, sizeof what, "layernorm_backward %s dinp%s N=%d C=%d", type,
                 dinp_only ? " only" : "", N, C);
        check_scaled(what, dinp, TOL);
    }
    snprintf(what, sizeof what, "layernorm_backward %s dweight N=%d C=%d", type, N, C);
    check_scaled(what, dw, TOL);
    snprintf(what, sizeof what, "layernorm_backward %s dbias N=%d C=%d", type, N, C);
    check_scaled(what, db, TOL);
    if (inp16)
        cudaCheck(cudaFree(inp16));
    PAIRS_FREE(inp, w, b, out, mean, rstd, dout, dinp, dw, db);
}

static void test_layernorm(void) {
    int widths[] = {40, 42, 512, 768, 1024, 2048}; /* 42: no 128-bit loads (not whole packets) */
    int rows[] = {1, 7, 1001};
    if (quick) {
        layernorm_case(7, 40, 0);
        layernorm_case(33, 768, 0);
        layernorm_case(130, 40, 0); /* three backward chunks, the last of 2 rows */
        layernorm_case(7, 42, 0);   /* one value per load */
        return;
    }
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++)
        for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
            layernorm_case(rows[r], widths[w], 0);
    layernorm_case(4097, 512, 0);  /* 65 backward chunks, the last of one row */
    layernorm_case(25600, 768, 0); /* a ViT-B/32 batch of 512 x 50 tokens: 400 backward chunks */
}

static void test_layernorm_bf16(void) {
    layernorm_case(quick ? 33 : 333, 768, 1);
    layernorm_case(quick ? 130 : 4097, 512, 1);
    layernorm_case(33, 36, 1); /* 36 columns: not whole 8-value packets, one value per load */
}

/* residual_layernorm_forward: the residual add fused in front of the norm must give the unfused
 * pair's results: the CPU runs residual_forward then layernorm_forward (in bf16 on the residual
 * rounded to bf16, as the unfused GPU pair would store and read it). The residual itself is bit
 * for bit; out, mean and rstd as in layernorm_case. (The fp32 residual needs no rounding.) */
static void residual_layernorm_case(int N, int C, int bf16) {
    char what[96];
    size_t n = (size_t)N * C;
    const char *type = bf16 ? "bf16" : "fp32";
    const Backend *be = bf16 ? gpu16 : gpu;
    Pair a = pair_random(n, 2.0), b = pair_random(n, 1.0), w = pair_random((size_t)C, 1.0);
    Pair bias = pair_random((size_t)C, 1.0), residual = pair_poisoned(n), out = pair_poisoned(n);
    Pair mean = pair_poisoned((size_t)N), rstd = pair_poisoned((size_t)N);
    snprintf(what, sizeof what, "residual_layernorm_forward %s N=%d C=%d", type, N, C);
    if (bf16) {
        __nv_bfloat16 *a16 = pair_to_bf16(a), *b16 = pair_to_bf16(b);
        __nv_bfloat16 *res16 = bf16_poisoned(n), *out16 = bf16_poisoned(n);
        /* the CPU's residual from the rounded inputs, then rounded */
        cpu->residual_forward(residual.host, a.host, b.host, n);
        for (size_t i = 0; i < n; i++)
            residual.host[i] = bf16_round(residual.host[i]);
        cpu->layernorm_forward(out.host, mean.host, rstd.host, residual.host, w.host, bias.host, N, C);
        be->residual_layernorm_forward(res16, out16, mean.dev, rstd.dev, a16, b16, w.dev, bias.dev, N, C);
        check_bf16_exact(what, res16, residual.host, n);
        check_bf16(what, out16, out.host, n);
        BF16_FREE(a16, b16, res16, out16);
    } else {
        cpu->residual_forward(residual.host, a.host, b.host, n);
        cpu->layernorm_forward(out.host, mean.host, rstd.host, residual.host, w.host, bias.host, N, C);
        be->residual_layernorm_forward(residual.dev, out.dev, mean.dev, rstd.dev, a.dev, b.dev, w.dev, bias.dev, N,
                                       C);
        pair_check_exact(what, residual);
        check_scaled(what, out, TOL);
    }
    check_scaled("residual_layernorm_forward mean", mean, TOL);
    check_scaled("residual_layernorm_forward rstd", rstd, TOL);
    PAIRS_FREE(a, b, w, bias, residual, out, mean, rstd);
}

static void test_residual_layernorm(void) {
    for (int bf16 = 0; bf16 <= 1; bf16++) {
        residual_layernorm_case(7, 40, bf16);
        if (!quick)
            residual_layernorm_case(1001, 768, bf16);
    }
}

/* The column sums (dweight, dbias) run twice from the same inputs: the same bits. */
static void test_layernorm_determinism(void) {
    const int N = quick ? 77 : 308, C = 512;
    Pair inp = pair_random((size_t)N * C, 1.0), dout = pair_random((size_t)N * C, 1.0);
    Pair w = pair_random((size_t)C, 1.0), mean = pair_random((size_t)N, 1.0);
    Pair rstd = pair_random_away_from_zero((size_t)N);
    Pair dw[2] = {pair_alloc((size_t)C), pair_alloc((size_t)C)};
    Pair db[2] = {pair_alloc((size_t)C), pair_alloc((size_t)C)};
    for (int r = 0; r < 2; r++)
        gpu->layernorm_backward(NULL, dw[r].dev, db[r].dev, dout.dev, inp.dev, w.dev, mean.dev,
                                rstd.dev, N, C);
    check_same_bits("layernorm dweight", dw[0], dw[1]);
    check_same_bits("layernorm dbias", db[0], db[1]);
    PAIRS_FREE(inp, dout, w, mean, rstd, dw[0], dw[1], db[0], db[1]);
}

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_layernorm);
    RUN_TEST(test_layernorm_bf16);
    RUN_TEST(test_residual_layernorm);
    RUN_TEST(test_layernorm_determinism);
    return test_summary();
}
