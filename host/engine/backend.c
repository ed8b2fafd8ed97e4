/*
 * backend.c: picking a backend by name or by a program's --backend choice (backend.h).
 *
 * The one choice a reader must know: the CUDA entry points are declared weak here. A program
 * linked without the CUDA backend leaves them undefined, their addresses are NULL, and "cuda"
 * is refused with a message instead of failing to link; so every CPU-only program and test
 * links exactly as before, against no CUDA library.
 */
#include "engine/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: set_error

/* Defined by cuda/backend_cuda.cu and cuda/device.cu (extern "C") when the program links
 * them. backend_cuda_open selects GPU local_rank % devices and describes it; -1 with a message
 * when there is none (no driver, no device). */
extern const Backend *backend_cuda(Precision precision) __attribute__((weak));
extern int backend_cuda_open(int local_rank, char *desc, size_t desc_len, char *err, size_t err_len)
    __attribute__((weak));

const char *const backend_choice_names[3] = {"auto", "cpu", "cuda"};
const char *const precision_names[PRECISION_COUNT] = {"auto", "fp32", "tf32", "bf16"};

int backend_have_cuda(void) { return backend_cuda && backend_cuda_open; }

const Backend *backend_by_name(const char *name, char *err, size_t err_len) {
    if (strcmp(name, "cpu") == 0) return backend_cpu();
    if (strcmp(name, "cuda") == 0) {
        if (backend_cuda) return backend_cuda(PRECISION_FP32);
        set_error(err, err_len, "backend \"cuda\": this program was built without CUDA (link "
                                "build/cuda/libtng_cuda.a with -Wl,--undefined=backend_cuda; "
                                "see engine/backend.h)");
        return NULL;
    }
    set_error(err, err_len, "unknown backend \"%s\" (known: cpu, cuda)", name);
    return NULL;
}

/* The CPU backend, refusing a precision it does not have. */
static const Backend *cpu_in(Precision precision, const char *why, char *desc, size_t desc_len) {
    if (precision == PRECISION_TF32 || precision == PRECISION_BF16) {
        fprintf(stderr, "tng: --precision %s: the CPU backend computes in fp32 only%s%s%s\n",
                precision_names[precision], why ? " (" : "", why ? why : "", why ? ")" : "");
        exit(2);
    }
    snprintf(desc, desc_len, "cpu fp32%s%s%s", why ? " (auto: " : "", why ? why : "", why ? ")" : "");
    return backend_cpu();
}

const Backend *backend_select(BackendChoice choice, Precision precision, int local_rank, char *desc,
                              size_t desc_len) {
    if (choice == BACKEND_CPU) return cpu_in(precision, NULL, desc, desc_len);
    if (!backend_have_cuda()) {
        if (choice == BACKEND_CUDA) {
            fprintf(stderr, "tng: --backend cuda: this program was built without CUDA (make links "
                            "the CUDA backend where nvcc, cuBLAS and NCCL are found)\n");
            exit(2);
        }
        return cpu_in(precision, "built without CUDA", desc, desc_len);
    }
    char gpu[256], err[512];
    if (backend_cuda_open(local_rank, gpu, sizeof gpu, err, sizeof err) != 0) {
        if (choice == BACKEND_CUDA) {
            fprintf(stderr, "tng: --backend cuda: %s\n", err);
            exit(1);
        }
        return cpu_in(precision, err, desc, desc_len);
    }
    const Backend *be = backend_cuda(precision == PRECISION_AUTO ? PRECISION_BF16 : precision);
    snprintf(desc, desc_len, "cuda %s: %s", precision_names[be->precision], gpu);
    return be;
}
