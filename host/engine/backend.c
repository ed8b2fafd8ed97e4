/*
 * backend.c: picking a backend by name (backend.h, backend_by_name).
 *
 * The one choice a reader must know: backend_cuda is declared weak here. A program linked
 * without the CUDA backend leaves the symbol undefined, its address is NULL, and "cuda" is
 * refused with a message instead of failing to link; so every CPU-only program and test
 * links exactly as before, against no CUDA library.
 */
#include "engine/backend.h"

#include <string.h>

#include "util/common.h" // defines: set_error

/* Defined by cuda/backend_cuda.cu (extern "C") when the program links it. */
extern const Backend *backend_cuda(void) __attribute__((weak));

const Backend *backend_by_name(const char *name, char *err, size_t err_len) {
    if (strcmp(name, "cpu") == 0) return backend_cpu();
    if (strcmp(name, "cuda") == 0) {
        if (backend_cuda) return backend_cuda();
        set_error(err, err_len, "backend \"cuda\": this program was built without CUDA (link "
                                "build/cuda/libtng_cuda.a with -Wl,--undefined=backend_cuda; "
                                "see engine/backend.h)");
        return NULL;
    }
    set_error(err, err_len, "unknown backend \"%s\" (known: cpu, cuda)", name);
    return NULL;
}
