/*
 * bench_image.c: single-thread throughput of JPEG decode + CLIP preprocessing (image.h), in
 * the exact and the fast (DCT-scaled) modes, on a directory of JPEGs; plus the mean absolute
 * pixel difference of the fast crops from the exact ones. Not a test.
 *
 * The files are read into memory first, so the timing covers decode, resize, crop and
 * normalisation (to CHW float32), the same work bench_image.py times for Pillow + torchvision.
 *
 * Usage: bench_image DIR [R] [REPEATS]     (bench/bench_image.sh runs everything)
 */
#include <dirent.h>
#include <string.h>

#include "util/common.h"  // defines: read_file, mallocCheck, now_seconds, die
#include "dataset/image.h"   // defines: image_load_crop, image_normalize_clip

typedef struct {
    uint8_t *data;
    size_t size;
} JpegFile;

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

/* Images per second for decode + crop + normalise over all files, best of `repeats`. */
static double time_mode(const JpegFile *files, int count, int r, ImageMode mode, int repeats) {
    uint8_t *crop = mallocCheck((size_t)r * r * 3);
    float *chw = mallocCheck(sizeof(float) * 3 * r * r);
    double best = 1e30;
    for (int rep = 0; rep < repeats; rep++) {
        double t0 = now_seconds();
        for (int i = 0; i < count; i++) {
            char err[IMAGE_ERROR_SIZE];
            if (image_load_crop(files[i].data, files[i].size, r, mode, crop, err, sizeof(err)) != IMAGE_OK)
                die("%s", err);
            image_normalize_clip(crop, r, chw);
        }
        double t = now_seconds() - t0;
        if (t < best) best = t;
    }
    free(crop);
    free(chw);
    return count / best;
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage: %s DIR [R] [REPEATS]", argv[0]);
    int r = argc > 2 ? atoi(argv[2]) : IMAGE_CLIP_SIZE, repeats = argc > 3 ? atoi(argv[3]) : 3;
    JpegFile *files;
    int count = load_dir(argv[1], &files);
    if (count == 0) die("no .jpg files in %s", argv[1]);

    double exact = time_mode(files, count, r, IMAGE_EXACT, repeats);
    double fast = time_mode(files, count, r, IMAGE_FAST, repeats);

    /* How far the fast crops are from the exact ones, over every pixel of every image. */
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
    printf("images %d, R %d, single thread (best of %d)\n", count, r, repeats);
    printf("tng exact: %.1f images/s (%.2f ms each)\n", exact, 1000 / exact);
    printf("tng fast:  %.1f images/s (%.2f ms each)\n", fast, 1000 / fast);
    printf("fast vs exact: mean |diff| %.3f levels of 255, max %d\n",
           abs_sum / ((double)count * r * r * 3), max_diff);
    printf("cores for 10000 images/s: exact %.0f, fast %.0f\n", 10000 / exact, 10000 / fast);
    for (int i = 0; i < count; i++) free(files[i].data);
    free(files);
    free(a);
    free(b);
    return 0;
}
