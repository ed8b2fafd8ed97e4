/*
 * test_backend.c: choosing a backend by name (backend.h, backend_by_name).
 *
 * "cpu" is the CPU table itself; an unknown name is refused with a message that names it
 * and lists the known ones; and "cuda" in this CPU-only test binary (linked against
 * libtng.a alone, as every program of `make all`) is refused as "built without CUDA" rather
 * than failing to link or returning a table that does not exist.
 */
#include <string.h>

#include "engine/backend.h" // defines: backend_by_name, backend_cpu
#include "harness.h"

static void test_cpu_resolves(void) {
    char err[256] = "";
    const Backend *be = backend_by_name("cpu", err, sizeof err);
    CHECK(be == backend_cpu(), "\"cpu\" gave %p, backend_cpu() is %p", (const void *)be,
          (const void *)backend_cpu());
    CHECK(be && strcmp(be->name, "cpu") == 0, "the table is named %s", be ? be->name : "(null)");
    CHECK(err[0] == '\0', "a found backend leaves err alone: \"%s\"", err);
}

static void test_unknown_refused(void) {
    const char *names[] = {"tpu", "", "CPU", "cpu ", "cudaa"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char err[256] = "";
        const Backend *be = backend_by_name(names[i], err, sizeof err);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", names[i]);
        CHECK(be == NULL, "%s resolved to %s", quoted, be ? be->name : "?");
        CHECK(strstr(err, "unknown backend") && strstr(err, quoted) &&
                  strstr(err, "known: cpu, cuda"),
              "%s: message \"%s\"", quoted, err);
    }
    /* no error buffer: still refused, nothing written */
    CHECK(backend_by_name("tpu", NULL, 0) == NULL, "refused without an error buffer");
}

static void test_cuda_without_cuda(void) {
    char err[256] = "";
    const Backend *be = backend_by_name("cuda", err, sizeof err);
    CHECK(be == NULL, "a CPU-only build returned a \"cuda\" table named %s", be ? be->name : "?");
    CHECK(strstr(err, "\"cuda\"") && strstr(err, "built without CUDA"), "message \"%s\"", err);
}

int main(void) {
    RUN_TEST(test_cpu_resolves);
    RUN_TEST(test_unknown_refused);
    RUN_TEST(test_cuda_without_cuda);
    return test_summary();
}
