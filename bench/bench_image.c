/*
 * bench_image.c: single-thread throughput of JPEG decode + CLIP preprocessing (image.h), in
 * the exact and the fast (DCT-scaled) modes, on a directory of JPEGs; plus the full-size
 * decode alone (the floor under the exact mode: the same libjpeg-turbo call Pillow makes) and
 * the mean absolute pixel difference of the fast crops from the exact ones. Not a test.
 *
 * The files are read into memory first, so the timing covers decode, resize, crop and
 * normalisation (to CHW float32), the same work bench_image.py times for Pillow + torchvision.
 * Times are the process's CPU time (it runs one thread), as bench_image.py's are: on a
 * machine shared with other jobs that counts only the time the benchmark itself ran, where
 * wall time also counts the time the other jobs held the core.
 *
 * Usage: bench_image DIR [R] [REPEATS] [all|exact|fast|decode]
 *   (bench/bench_image.sh runs everything; one mode alone is for profilers)
 */
#include <dirent.h>
#include <string.h>
#include <time.h>

#include "util/common.h"  // defines: read_file, mallocCheck, die
#include "dataset/image.h"   // defines: image_load_crop, image_normalize_clip

typedef struct {
    uint8_t *data;
    size_t size;
} JpegFile;

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int load_dir(const char *dir, JpegFile **out) {
    DIR *d = opendir(dir);
    if (!d) die("cannot open directory %s", dir);
    int count = 0, cap = 64;
    JpegFile *files = mallocCheck(sizeof(JpegFile) * cap);
    struct dirent *entry;
    while ((entry = readdir(d))) {
        size_t len = strlen(entry->d_name);
        if (len < 4 || strcmp(entry->d_name + len - 4, ".jpg") != 0) continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
        if (count == cap) files = reallocCheck(files, sizeof(JpegFile) * (cap *= 2));
        files[count].data = (uint8_t *)read_file(path, &files[count].size);
        if (!files[count].data) die("cannot read %s", path);
        count++;
    }
    closedir(d);
    *out = files;
    return count;
}

/* The full-size decode alone, as the exact mode runs it. */
static double time_decode(const JpegFile *files, int count, int repeats) {
    double best = 1e30;
    for (int rep = 0; rep < repeats; rep++) {
        double t0 = cpu_seconds();
        for (int i = 0; i < count; i++) {
            DecodedImage img;
            char err[IMAGE_ERROR_SIZE];
            if (image_decode(files[i].data, files[i].size, 0, &img, err, sizeof(err)) != IMAGE_OK)
                die("%s", err);
            image_free(&img);
        }
        double t = cpu_seconds() - t0;
        if (t < best) best = t;
    }
    return count / best;
}

/* The exact mode split into its stages, timed per image in one pass (so each stage sees the
   caches as the pipeline leaves them): milliseconds per image, from the fastest pass. */
static void print_exact_stages(const JpegFile *files, int count, int r, int repeats) {
    uint8_t *crop = mallocCheck((size_t)r * r * 3);
    float *chw = mallocCheck(sizeof(float) * 3 * r * r);
    double best[4] = {1e30, 0, 0, 0}; /* total, decode, resize + crop, normalise */
    for (int rep = 0; rep < repeats; rep++) {
        double stage[3] = {0, 0, 0};
        for (int i = 0; i < count; i++) {
            DecodedImage img;
            char err[IMAGE_ERROR_SIZE];
            double t0 = cpu_seconds();
            if (image_decode(files[i].data, files[i].size, 0, &img, err, sizeof(err)) != IMAGE_OK)
                die("%s", err);
            double t1 = cpu_seconds();
            image_resize_center_crop(&img, r, crop);
            double t2 = cpu_seconds();
            image_normalize_clip(crop, r, chw);
            stage[0] += t1 - t0, stage[1] += t2 - t1, stage[2] += cpu_seconds() - t2;
            image_free(&img);
        }
        double total = stage[0] + stage[1] + stage[2];
        if (total < best[0]) best[0] = total, best[1] = stage[0], best[2] = stage[1], best[3] = stage[2];
    }
    printf("exact stages: decode %.3f ms, resize + crop %.3f ms, normalise %.3f ms per image "
           "(decode %.1f%% of the three)\n", 1e3 * best[1] / count, 1e3 * best[2] / count,
           1e3 * best[3] / count, 100 * best[1] / best[0]);
    free(crop);
    free(chw);
}

/* Images per second for decode + crop + normalise over all files, best of `repeats`. */
static double time_mode(const JpegFile *files, int count, int r, ImageMode mode, int repeats) {
    uint8_t *crop = mallocCheck((size_t)r * r * 3);
    float *chw = mallocCheck(sizeof(float) * 3 * r * r);
    double best = 1e30;
    for (int rep = 0; rep < repeats; rep++) {
        double t0 = cpu_seconds();
        for (int i = 0; i < count; i++) {
            char err[IMAGE_ERROR_SIZE];
            if (image_load_crop(files[i].data, files[i].size, r, mode, crop, err, sizeof(err)) != IMAGE_OK)
                die("%s", err);
            image_normalize_clip(crop, r, chw);
        }
        double t = cpu_seconds() - t0;
        if (t < best) best = t;
    }
    free(crop);
    free(chw);
    return count / best;
}

static void print_rate(const char *what, double rate) {
    printf("%s %.1f images/s (%.2f ms each)\n", what, rate, 1000 / rate);
}

/* How far the fast crops are from the exact ones, over every pixel of every image. */
static void print_fast_vs_exact(const JpegFile *files, int count, int r) {
    uint8_t *a = mallocCheck((size_t)r * r * 3), *b = mallocCheck((size_t)r * r * 3);
    double abs_sum = 0;
    int max_diff = 0;
    for (int i = 0; i < count; i++) {
        char err[IMAGE_ERROR_SIZE];
        if (image_load_crop(files[i].data, files[i].size, r, IMAGE_EXACT, a, err, sizeof(err)) ||
            image_load_crop(files[i].data, files[i].size, r, IMAGE_FAST, b, err, sizeof(err)))
            die("%s", err);
        for (size_t k = 0; k < (size_t)r * r * 3; k++) {
            int diff = abs((int)a[k] - (int)b[k]);
            abs_sum += diff;
            if (diff > max_diff) max_diff = diff;
        }
    }
    printf("fast vs exact: mean |diff| %.3f levels of 255, max %d\n",
           abs_sum / ((double)count * r * r * 3), max_diff);
    free(a);
    free(b);
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage: %s DIR [R] [REPEATS] [all|exact|fast|decode]", argv[0]);
    int r = argc > 2 ? atoi(argv[2]) : IMAGE_CLIP_SIZE, repeats = argc > 3 ? atoi(argv[3]) : 3;
    const char *mode = argc > 4 ? argv[4] : "all";
    int all = strcmp(mode, "all") == 0;
    if (!all && strcmp(mode, "exact") && strcmp(mode, "fast") && strcmp(mode, "decode"))
        die("unknown mode %s: all, exact, fast or decode", mode);
    JpegFile *files;
    int count = load_dir(argv[1], &files);
    if (count == 0) die("no .jpg files in %s", argv[1]);

    printf("images %d, R %d, single thread (best of %d)\n", count, r, repeats);
    double exact = 0, fast = 0;
    if (all || !strcmp(mode, "exact")) print_rate("tng exact:", exact = time_mode(files, count, r, IMAGE_EXACT, repeats));
    if (all || !strcmp(mode, "fast")) print_rate("tng fast: ", fast = time_mode(files, count, r, IMAGE_FAST, repeats));
    if (all || !strcmp(mode, "decode")) print_rate("decode only (full size, the exact mode's floor):", time_decode(files, count, repeats));
    if (all || !strcmp(mode, "exact")) print_exact_stages(files, count, r, repeats);
    if (all) {
        print_fast_vs_exact(files, count, r);
        printf("cores for 10000 images/s: exact %.0f, fast %.0f\n", 10000 / exact, 10000 / fast);
    }
    for (int i = 0; i < count; i++) free(files[i].data);
    free(files);
    return 0;
}
