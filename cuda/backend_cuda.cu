/*
 * backend_cuda.cu: the CUDA backend's Backend tables, one per precision (engine/backend.h):
 * - fp32, the parity mode: fp32 activations, strict fp32 GEMMs; it reproduces the CPU
 *   backend's numbers to float rounding;
 * - tf32: the same, with the towers' GEMMs on TF32 tensor cores (inputs rounded to TF32);
 * - bf16: bf16 activations and weight copies, fp32 accumulation in every GEMM and kernel,
 *   fp32 parameters, gradients, statistics, features and loss.
 * One template, instantiated on the activation type io_t, builds each table; the loss's
 * similarity GEMMs (matmul_*) are strict fp32 in all three.
 *
 * Each entry is a thin wrapper: it picks the stream (the legacy default stream, so that
 * cudaMemcpy in to_host orders after every kernel) and the cuBLAS handle, and calls the op
 * family's launcher in kernels/. All shapes and launch geometry are decided in
 * kernels/launch_plan.h; all device code lives in kernels/, one .cuh file per op family.
 *
 * State kept here: the cuBLAS handle (strict fp32 math), created on first use, one scratch
 * buffer (tng_cuda_scratch), the linear layers' cuBLASLt workspace and the pinned staging ring
 * of the uploads (to_device), all sized once from the model's plan (reserve_scratch) and kept
 * for the life of the process. Nothing in a training step waits for the device but its one
 * read-back (to_host).
 */
#include <stdlib.h>
#include <string.h>

#include <functional>
#include <vector>

#include "cuda/backend_cuda.h" /* defines: backend_cuda */

#include "kernels/adamw.cuh"
#include "kernels/attention.cuh"
#include "kernels/embed.cuh"
#include "kernels/infonce.cuh"
#include "kernels/l2norm.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/matmul.cuh"

typedef __nv_bfloat16 bf16;

/* The backend's stream: created (blocking) at the first allocation, since the legacy default
 * stream cannot be captured into a graph; being blocking, it stays ordered with the legacy
 * stream's work (to_host's cudaMemcpy, the NCCL collectives' events). 0 until then. */
static cudaStream_t stream;

/* The cuBLAS handle of the loss's strict fp32 GEMMs (matmul_*); the towers' linear layers run
 * on cuBLASLt (kernels/matmul.cuh), their maths (strict or TF32) chosen per table. */
static cublasHandle_t cublas(void) {
    static cublasHandle_t handle;
    if (!handle) {
        cublasCheck(cublasCreate(&handle));
        cublasCheck(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
    }
    cublasCheck(cublasSetStream(handle, stream));
    return handle;
}

static void *scratch;
static size_t scratch_capacity;
static int scratch_planned; /* 1 once the model sized it (cuda_reserve_scratch) */

/* cudaFree waits for the device, so no kernel still reads the old buffer */
static void scratch_resize(size_t bytes) {
    if (scratch)
        cudaCheck(cudaFree(scratch));
    scratch_capacity = bytes;
    cudaCheck(cudaMalloc(&scratch, bytes));
}

static void staging_reserve(size_t batch, size_t tokens, size_t width, int images, int texts);

/* A model's plan (kernels/launch_plan.h) sizes the scratch once, before its first step, so a
 * step never allocates; an op that asks for more than the plan is a planning bug, reported
 * as one. Without a plan (the kernel tests call ops directly) it grows on demand. */
template <typename io_t>
static void cuda_reserve_scratch(size_t batch, size_t tokens, size_t width, int images, int texts) {
    size_t dout_copy = sizeof(io_t) < sizeof(float) ? sizeof(io_t) : 0; /* linear_backward's, in bf16 */
    size_t bytes = scratch_plan_bytes(batch, tokens, width, images, texts, dout_copy);
    if (bytes > scratch_capacity || !scratch_planned)
        scratch_resize(bytes > scratch_capacity ? bytes : scratch_capacity);
    scratch_planned = 1;
    gemm_lt_reserve(); /* the linear layers' cuBLASLt workspace (matmul.cuh) */
    staging_reserve(batch, tokens, width, images, texts);
}

void *tng_cuda_scratch(size_t bytes) {
    if (bytes > scratch_capacity) {
        if (scratch_planned) {
            fprintf(stderr, "tng: CUDA scratch: an op needs %zu bytes, the model's plan reserved "
                            "%zu (kernels/launch_plan.h, scratch_plan_bytes)\n", bytes, scratch_capacity);
            exit(1);
        }
        scratch_resize(bytes + bytes / 2);
    }
    return scratch;
}

/* ---- memory ---- */

static void *cuda_alloc(size_t bytes) {
    if (!stream)
        cudaCheck(cudaStreamCreate(&stream));
    void *ptr = NULL;
    size_t size = bytes ? bytes : 1;
    cudaCheck(cudaMalloc(&ptr, size));
    cudaCheck(cudaMemset(ptr, 0, size));
    return ptr;
}

static void cuda_release(void *ptr) { cudaCheck(cudaFree(ptr)); }

/* Uploads go through a ring of pinned (page-locked) host memory: to_device copies its bytes
 * into the ring and queues an asynchronous copy on the stream, so it never waits for the
 * device (a copy from pageable memory would). Each region of the ring is reused only once
 * the copy that read it has happened: every copy records an event, and the ring waits for
 * (cudaEventSynchronize) the events of the regions it is about to overwrite, only when a query
 * says they have not happened yet. The model sizes the ring once (reserve_scratch) to hold a
 * step's uploads, so at the start of a step, the last step's read-back having drained the
 * stream, nothing waits; an upload larger than the ring goes through in chunks of half of it,
 * each waiting for the copy two chunks before it. */
enum { STAGING_COPIES = 64 };
static struct {
    char *host; /* pinned */
    size_t capacity, head;
    struct {
        size_t start, end;
        cudaEvent_t done;
    } copy[STAGING_COPIES]; /* the queued copies, oldest first from `first` */
    int first, count;
    int planned;   /* 1 once the model sized it */
    int in_graph; /* a graph step: no event is queried or recorded per copy */
} staging;

/* Waits for the oldest queued copy (if it has not happened) and forgets it. */
static void staging_retire_oldest(void) {
    cudaEvent_t done = staging.copy[staging.first].done;
    cudaError_t state = cudaEventQuery(done);
    if (state == cudaErrorNotReady)
        cudaCheck(cudaEventSynchronize(done));
    else
        cudaCheck(state);
    staging.first = (staging.first + 1) % STAGING_COPIES;
    staging.count--;
}

static void staging_resize(size_t bytes) {
    while (staging.count)
        staging_retire_oldest();
    if (staging.host)
        cudaCheck(cudaFreeHost(staging.host));
    else
        for (int k = 0; k < STAGING_COPIES; k++)
            cudaCheck(cudaEventCreateWithFlags(&staging.copy[k].done, cudaEventDisableTiming));
    cudaCheck(cudaMallocHost((void **)&staging.host, bytes));
    staging.capacity = bytes;
    staging.head = 0;
}

/* [start, start + bytes) of the ring, once no queued copy reads it. In a graph capture the
 * ring was emptied first (cuda_graph_begin) and is used from its start without wrapping: the
 * graph's copies read it when the graph runs. */
static char *staging_take(size_t bytes) {
    if (staging.in_graph) {
        if (staging.head + bytes > staging.capacity) {
            fprintf(stderr, "tng: a captured step uploads more than the %zu bytes of the staging ring\n",
                    staging.capacity);
            exit(1);
        }
        staging.head += bytes;
        return staging.host + staging.head - bytes;
    }
    if (staging.head + bytes > staging.capacity)
        staging.head = 0;
    size_t start = staging.head, end = start + bytes;
    for (;;) {
        int overlaps = staging.count == STAGING_COPIES;
        for (int k = 0; k < staging.count && !overlaps; k++) {
            int at = (staging.first + k) % STAGING_COPIES;
            overlaps = staging.copy[at].start < end && start < staging.copy[at].end;
        }
        if (!overlaps)
            break;
        staging_retire_oldest();
    }
    staging.head = end;
    return staging.host + start;
}

/* A queued copy that reads [start, end) of the ring: the event its region waits for. */
static void staging_record(size_t start, size_t end) {
    if (staging.count == STAGING_COPIES)
        staging_retire_oldest();
    int at = (staging.first + staging.count++) % STAGING_COPIES;
    staging.copy[at].start = start;
    staging.copy[at].end = end;
    cudaCheck(cudaEventRecord(staging.copy[at].done, stream));
}

static void cuda_to_device(void *dst, const void *src, size_t bytes) {
    if (!staging.planned && bytes > staging.capacity) /* the kernel tests: grown on demand */
        staging_resize(bytes + bytes / 2);
    size_t chunk = bytes <= staging.capacity ? bytes : staging.capacity / 2;
    for (size_t done = 0; done < bytes; done += chunk) {
        size_t n = bytes - done < chunk ? bytes - done : chunk;
        char *pinned = staging_take(n);
        memcpy(pinned, (const char *)src + done, n);
        /* a replayed graph's copy reads these bytes from the same place: only where they go,
         * how many and from where make the op */
        tng_queue([&] { return tng_hash_values((const void *)cuda_to_device, dst, done, n, pinned); },
                  [=] { cudaCheck(cudaMemcpyAsync((char *)dst + done, pinned, n, cudaMemcpyHostToDevice, stream)); });
        if (!staging.in_graph)
            staging_record((size_t)(pinned - staging.host), (size_t)(pinned - staging.host) + n);
    }
}

/* ---- CUDA graphs: a step captured once per shape, then replayed (cuda/queue.h) ----
 *
 * The graphs of the last GRAPH_CACHE step shapes are kept, each with the hashes of its ops.
 * A step starts by holding its ops while they match one of them; the first op that matches
 * none starts a capture into which the held ops are queued first. At graph_launch, a step that
 * matched a graph op for op launches it; a captured one is instantiated and replaces the least
 * recently launched graph. The counters say how often each happened (tests, benchmarks). */
enum { GRAPH_CACHE = 8 };
static struct {
    struct {
        cudaGraphExec_t exec;
        std::vector<uint64_t> ops;
        unsigned long long launched; /* the step that last launched it */
    } cached[GRAPH_CACHE];
    int count;
    std::vector<uint64_t> ops;                /* this step's ops so far */
    std::vector<std::function<void()>> held;  /* ... queued nowhere yet */
    bool match[GRAPH_CACHE];                  /* the graphs whose ops begin with this step's */
    int matching;
    bool capturing;
    unsigned long long steps, captures;
} graphs;

int tng_queue_hashing;

static void graph_capture_start(void) {
    cudaCheck(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    graphs.capturing = true;
    for (auto &op : graphs.held)
        op();
    graphs.held.clear();
}

void tng_queue_step(uint64_t hash, std::function<void()> op) {
    size_t at = graphs.ops.size();
    graphs.ops.push_back(hash);
    if (!graphs.capturing) {
        for (int g = 0; g < graphs.count; g++)
            if (graphs.match[g] && (graphs.cached[g].ops.size() <= at || graphs.cached[g].ops[at] != hash)) {
                graphs.match[g] = false;
                graphs.matching--;
            }
        if (graphs.matching) {
            graphs.held.push_back(std::move(op));
            return;
        }
        graph_capture_start();
    }
    op();
}

static void cuda_graph_begin(void) {
    while (staging.count) /* the last step's read-back drained the stream: no wait */
        staging_retire_oldest();
    staging.head = 0;
    staging.in_graph = 1;
    graphs.ops.clear();
    graphs.capturing = false;
    graphs.matching = graphs.count;
    for (int g = 0; g < graphs.count; g++)
        graphs.match[g] = true;
    if (!graphs.matching)
        graph_capture_start();
    tng_queue_hashing = 1;
}

static void cuda_graph_launch(void) {
    tng_queue_hashing = 0;
    int use = -1;
    for (int g = 0; g < graphs.count && !graphs.capturing; g++)
        if (graphs.match[g] && graphs.cached[g].ops.size() == graphs.ops.size())
            use = g;
    if (use < 0) {
        if (!graphs.capturing) /* the step is a beginning of a longer one's graph */
            graph_capture_start();
        cudaGraph_t graph;
        cudaCheck(cudaStreamEndCapture(stream, &graph));
        use = 0;
        if (graphs.count < GRAPH_CACHE)
            use = graphs.count++;
        else
            for (int g = 1; g < GRAPH_CACHE; g++)
                if (graphs.cached[g].launched < graphs.cached[use].launched)
                    use = g;
        if (graphs.cached[use].exec) /* freed once a launch in flight completes */
            cudaCheck(cudaGraphExecDestroy(graphs.cached[use].exec));
        cudaCheck(cudaGraphInstantiate(&graphs.cached[use].exec, graph, 0));
        cudaCheck(cudaGraphDestroy(graph));
        graphs.cached[use].ops = graphs.ops;
        graphs.captures++;
    }
    graphs.held.clear();
    graphs.capturing = false;
    graphs.cached[use].launched = ++graphs.steps;
    staging.in_graph = 0;
    cudaCheck(cudaGraphLaunch(graphs.cached[use].exec, stream));
    if (staging.head) /* the graph's copies read [0, head) of the ring */
        staging_record(0, staging.head);
}

/* The ring for one step's uploads: the text batch's ids and rows, the loss's targets and
 * masks, image features, and STAGING_PIXELS of images (a full step's pixels beyond that take
 * the chunked path). */
static const size_t STAGING_PIXELS = (size_t)64 << 20;
static void staging_reserve(size_t batch, size_t tokens, size_t width, int images, int texts) {
    size_t bytes = batch * tokens * sizeof(int) + 4 * batch * sizeof(int) + 2 * (size_t)images * texts +
                   batch * width * sizeof(float) + STAGING_PIXELS;
    if (bytes > staging.capacity)
        staging_resize(bytes);
    staging.planned = 1;
}

static void cuda_to_host(void *dst, const void *src, size_t bytes) {
    cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

static void cuda_zero(void *ptr, size_t bytes) {
    tng_queue([&] { return tng_hash_values((const void *)cuda_zero, ptr, bytes); },
              [=] { cudaCheck(cudaMemsetAsync(ptr, 0, bytes, stream)); });
}

template <typename io_t> static void cuda_to_act(Act *dst, const float *src, size_t n) {
    launch_elementwise(ToAct<io_t>{(io_t *)dst, src}, n, stream);
}

/* ---- linear layers ---- */

static void cuda_matmul_forward(float *out, const float *inp, const float *weight,
                                const float *bias, int N, int IC, int OC) {
    matmul_forward(cublas(), out, inp, weight, bias, N, IC, OC, stream);
}

static void cuda_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *inp, const float *weight, int N, int IC, int OC) {
    matmul_backward(cublas(), dinp, dweight, dbias, dout, inp, weight, N, IC, OC, stream);
}

template <typename io_t, int TF32>
static void cuda_linear_forward(Act *out, const Act *inp, const Act *weight, const float *bias, int N, int IC,
                                int OC) {
    linear_forward<io_t>((GemmMath)TF32, (io_t *)out, (const io_t *)inp, (const io_t *)weight, bias, N, IC, OC,
                         stream);
}

template <typename io_t, int TF32>
static void cuda_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const Act *inp,
                                 const Act *weight, int N, int IC, int OC) {
    linear_backward<io_t>((GemmMath)TF32, dinp, dweight, dbias, dout, (const io_t *)inp, (const io_t *)weight, N, IC,
                          OC, stream);
}

template <typename io_t, int TF32>
static void cuda_linear_activation_forward(Act *pre, Act *out, const Act *inp, const Act *weight, const float *bias,
                                           ActKind act, int N, int IC, int OC) {
    linear_activation_forward<io_t>((GemmMath)TF32, (io_t *)pre, (io_t *)out, (const io_t *)inp, (const io_t *)weight,
                                    bias, act, N, IC, OC, stream);
}

/* ---- layer norm ---- */

template <typename io_t>
static void cuda_layernorm_forward(Act *out, float *mean, float *rstd, const Act *inp, const float *weight,
                                   const float *bias, int N, int C) {
    layernorm_forward<io_t>((io_t *)out, mean, rstd, (const io_t *)inp, weight, bias, N, C, stream);
}

template <typename io_t>
static void cuda_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const Act *inp,
                                    const float *weight, const float *mean, const float *rstd, int N, int C) {
    layernorm_backward<io_t>(dinp, dweight, dbias, dout, (const io_t *)inp, weight, mean, rstd, N, C, stream);
}

template <typename io_t>
static void cuda_residual_layernorm_forward(Act *residual, Act *out, float *mean, float *rstd, const Act *a,
                                            const Act *b, const float *weight, const float *bias, int N, int C) {
    residual_layernorm_forward<io_t>((io_t *)residual, (io_t *)out, mean, rstd, (const io_t *)a, (const io_t *)b,
                                     weight, bias, N, C, stream);
}

/* ---- attention ---- */

template <typename io_t>
static void cuda_attention_forward(Act *out, float *lse, const Act *qkv, int B, int T, int C, int NH, int causal) {
    attention_forward<io_t>((io_t *)out, lse, (const io_t *)qkv, B, T, C, NH, causal, stream);
}

template <typename io_t>
static void cuda_attention_backward(float *dqkv, const float *dout, const Act *qkv, const Act *out, const float *lse,
                                    int B, int T, int C, int NH, int causal) {
    attention_backward<io_t>(dqkv, dout, (const io_t *)qkv, (const io_t *)out, lse, B, T, C, NH, causal, stream);
}

/* ---- elementwise ---- */

template <typename io_t> static void cuda_activation_forward(Act *out, const Act *inp, size_t n, ActKind act) {
    launch_elementwise(ActivationForward<io_t>{(io_t *)out, (const io_t *)inp, act}, n, stream);
}

template <typename io_t>
static void cuda_activation_backward(float *dinp, float *dbias, const Act *inp, const float *dout, int N, int C,
                                     ActKind act) {
    activation_backward<io_t>(dinp, dbias, (const io_t *)inp, dout, N, C, act, stream);
}

template <typename io_t> static void cuda_residual_forward(Act *out, const Act *a, const Act *b, size_t n) {
    launch_elementwise(ResidualForward<io_t>{(io_t *)out, (const io_t *)a, (const io_t *)b}, n, stream);
}

static void cuda_accumulate(float *dst, const float *src, size_t n) {
    launch_elementwise(Accumulate{dst, src}, n, stream);
}

static void cuda_scale(float *x, float factor, size_t n) {
    launch_elementwise(Scale{x, factor}, n, stream);
}

/* ---- embeddings and pooling ---- */

template <typename io_t>
static void cuda_im2col_patches(Act *patches, const float *images, int B, int H, int W, int P) {
    size_t n = (size_t)B * (H / P) * (W / P) * 3 * P * P;
    launch_elementwise(Im2colPatches<io_t>{(io_t *)patches, images, H, W, P}, n, stream);
}

template <typename io_t>
static void cuda_vision_embed_forward(Act *x, const Act *patch_out, const float *class_emb, const float *pos,
                                      int B, int NP, int C) {
    launch_elementwise(VisionEmbedForward<io_t>{(io_t *)x, (const io_t *)patch_out, class_emb, pos, NP, C},
                       (size_t)B * (NP + 1) * C, stream);
}

static void cuda_vision_embed_backward(float *dpatch_out, float *dclass_emb, float *dpos,
                                       const float *dx, int B, int NP, int C) {
    vision_embed_backward(dpatch_out, dclass_emb, dpos, dx, B, NP, C, stream);
}

template <typename io_t>
static void cuda_token_embed_forward(Act *x, const int *ids, const float *tok_emb, const float *pos, int B, int T,
                                     int C) {
    launch_elementwise(TokenEmbedForward<io_t>{(io_t *)x, ids, tok_emb, pos, T, C}, (size_t)B * T * C, stream);
}

static void cuda_token_embed_backward(float *dtok_emb, float *dpos, const float *dx, const int *ids,
                                      int B, int T, int C) {
    token_embed_backward(dtok_emb, dpos, dx, ids, B, T, C, stream);
}

template <typename io_t>
static void cuda_gather_rows(Act *out, const Act *x, const int *rows, int B, int T, int C) {
    launch_elementwise(GatherRows<io_t>{(io_t *)out, (const io_t *)x, rows, T, C}, (size_t)B * C, stream);
}

static void cuda_scatter_rows(float *dx, const float *dout, const int *rows, int B, int T, int C) {
    launch_elementwise(ScatterRows{dx, dout, rows, T, C}, (size_t)B * C, stream);
}

/* ---- L2 norm, loss, optimizer ---- */

template <typename io_t> static void cuda_l2norm_forward(float *out, float *norm, const Act *inp, int N, int C) {
    l2norm_forward<io_t>(out, norm, (const io_t *)inp, N, C, stream);
}

static void cuda_l2norm_backward(float *dinp, const float *dout, const float *out,
                                 const float *norm, int N, int C) {
    l2norm_backward(dinp, dout, out, norm, N, C, stream);
}

static void cuda_infonce_forward_backward(float *dcos, float *stats, const float *cos,
                                          const int *txt2img, const int *i2t_target,
                                          const float *logit_scale, float fixed_scale, int Ni,
                                          int Nt, const InfonceTerms *terms) {
    /* the column (text-to-image) kernel indexes image rows from 0 and takes a column's softmax
     * over the block's rows: it needs every image of the global batch (InfonceTerms) */
    shapeCheck(!terms->text_to_image || (terms->first_image == 0 && Ni == terms->n_images),
               "infonce text_to_image on images [%d, %d) of %d: the column term needs all the "
               "images (first_image 0, Ni == n_images)",
               terms->first_image, terms->first_image + Ni, terms->n_images);
    infonce_forward_backward(dcos, stats, cos, txt2img, i2t_target, InfonceScale{logit_scale, fixed_scale}, Ni,
                             Nt, *terms, stream);
}

static void cuda_logit_scale_backward(float *dlogit_scale, const float *stats, int blocks, const float *logit_scale) {
    logit_scale_backward(dlogit_scale, stats, blocks, logit_scale, stream);
}

/* The step's scalars go up with its uploads (kernels/adamw.cuh), into one buffer kept for the
 * process: allocated by the first step, which is never part of a graph (backend.h). */
template <typename io_t>
static void cuda_adamw_step(float *params, float *grads, float *m, float *v, Act *params_act,
                            const AdamWTensor *tensors, int count, size_t total, const AdamWStep *hp) {
    static AdamWScalars *scalars;
    if (!scalars)
        scalars = (AdamWScalars *)cuda_alloc(sizeof *scalars);
    AdamWScalars k = adamw_scalars(hp);
    cuda_to_device(scalars, &k, sizeof k);
    adamw_step<io_t>(params, grads, m, v, (io_t *)params_act, tensors, count, total, scalars, stream);
}

static void cuda_sum_squares(double *acc, const float *x, size_t n) { sum_squares(acc, x, n, stream); }

/* The table of activation type io_t; TF32: the towers' fp32 GEMMs on TF32 tensor cores. */
template <typename io_t, int TF32> static constexpr Backend cuda_table(const char *name, Precision precision) {
    return Backend{
        .name = name,
        .precision = precision,
        .act_bytes = sizeof(io_t),
        .alloc = cuda_alloc,
        .reserve_scratch = cuda_reserve_scratch<io_t>,
        .release = cuda_release,
        .to_device = cuda_to_device,
        .to_host = cuda_to_host,
        .zero = cuda_zero,
        .to_act = sizeof(io_t) == sizeof(float) ? nullptr : cuda_to_act<io_t>,
        .matmul_forward = cuda_matmul_forward,
        .matmul_backward = cuda_matmul_backward,
        .linear_forward = cuda_linear_forward<io_t, TF32>,
        .linear_backward = cuda_linear_backward<io_t, TF32>,
        .linear_activation_forward = cuda_linear_activation_forward<io_t, TF32>,
        .layernorm_forward = cuda_layernorm_forward<io_t>,
        .layernorm_backward = cuda_layernorm_backward<io_t>,
        .residual_layernorm_forward = cuda_residual_layernorm_forward<io_t>,
        .attention_forward = cuda_attention_forward<io_t>,
        .attention_backward = cuda_attention_backward<io_t>,
        .activation_forward = cuda_activation_forward<io_t>,
        .activation_backward = cuda_activation_backward<io_t>,
        .residual_forward = cuda_residual_forward<io_t>,
        .accumulate = cuda_accumulate,
        .scale = cuda_scale,
        .im2col_patches = cuda_im2col_patches<io_t>,
        .vision_embed_forward = cuda_vision_embed_forward<io_t>,
        .vision_embed_backward = cuda_vision_embed_backward,
        .token_embed_forward = cuda_token_embed_forward<io_t>,
        .token_embed_backward = cuda_token_embed_backward,
        .gather_rows = cuda_gather_rows<io_t>,
        .scatter_rows = cuda_scatter_rows,
        .l2norm_forward = cuda_l2norm_forward<io_t>,
        .l2norm_backward = cuda_l2norm_backward,
        .infonce_forward_backward = cuda_infonce_forward_backward,
        .logit_scale_backward = cuda_logit_scale_backward,
        .adamw_step = cuda_adamw_step<io_t>,
        .sum_squares = cuda_sum_squares,
        .graph_begin = cuda_graph_begin,
        .graph_launch = cuda_graph_launch,
    };
}

static const Backend cuda_fp32 = cuda_table<float, 0>("cuda", PRECISION_FP32);
static const Backend cuda_tf32 = cuda_table<float, 1>("cuda", PRECISION_TF32);
static const Backend cuda_bf16 = cuda_table<bf16, 0>("cuda", PRECISION_BF16);

const Backend *backend_cuda(Precision precision) {
    switch (precision) {
    case PRECISION_FP32: return &cuda_fp32;
    case PRECISION_TF32: return &cuda_tf32;
    default: return &cuda_bf16; /* bf16, and auto */
    }
}
