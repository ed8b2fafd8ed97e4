/*
 * neighbours.c: nearest items by embedding cosine, and the grouped epoch order (neighbours.h).
 *
 * The search is exact and brute force: n^2 D multiply-adds (COCO's 118k images at D = 512 are
 * about 7 TFLOP: minutes on a few cores, once per run). Each dot product keeps eight partial
 * sums combined in a fixed tree, so the compiler may vectorise it while the bits stay the same
 * on every machine and thread count; rows are independent, so OpenMP splits them freely.
 */
#include "dataset/neighbours.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: mallocCheck, callocCheck

enum { LANES = 8, ROWS_PER_REPORT = 256 };

static float dot_fixed_order(const float *a, const float *b, int D) {
    float part[LANES] = {0};
    int d = 0;
    for (; d + LANES <= D; d += LANES)
        for (int l = 0; l < LANES; l++) part[l] += a[d + l] * b[d + l];
    for (int l = 0; d < D; d++, l++) part[l] += a[d] * b[d];
    for (int width = LANES / 2; width > 0; width /= 2)
        for (int l = 0; l < width; l++) part[l] += part[l + width];
    return part[0];
}

static int row_is_finite(const float *row, int D) {
    for (int d = 0; d < D; d++)
        if (!isfinite(row[d])) return 0;
    return 1;
}

/* Row i's list: a scan in index order with insertion behind equal similarities, so a tie goes
 * to the lower index. */
static void nearest_of(const float *features, const unsigned char *finite, int n, int D, int k, int i,
                       int *list, float *sims) {
    int count = 0;
    const float *a = features + (size_t)i * D;
    for (int j = 0; j < n; j++) {
        if (j == i || !finite[j]) continue;
        float s = dot_fixed_order(a, features + (size_t)j * D, D);
        if (count == k && !(s > sims[k - 1])) continue;
        int at = count < k ? count++ : k - 1;
        for (; at > 0 && s > sims[at - 1]; at--) {
            sims[at] = sims[at - 1];
            list[at] = list[at - 1];
        }
        sims[at] = s;
        list[at] = j;
    }
    for (int c = count; c < k; c++) list[c] = -1;
}

int *neighbours_nearest(const float *features, int n, int D, int k, void (*progress)(int done, int n)) {
    int *nearest = mallocCheck(sizeof(int) * (size_t)n * (size_t)k);
    unsigned char *finite = mallocCheck((size_t)n);
    for (int i = 0; i < n; i++) finite[i] = (unsigned char)row_is_finite(features + (size_t)i * D, D);
    for (int start = 0; start < n; start += ROWS_PER_REPORT) {
        int end = start + ROWS_PER_REPORT < n ? start + ROWS_PER_REPORT : n;
#pragma omp parallel
        {
            float *sims = mallocCheck(sizeof(float) * (size_t)k);
#pragma omp for schedule(dynamic, 8)
            for (int i = start; i < end; i++) {
                int *list = nearest + (size_t)i * k;
                if (finite[i]) nearest_of(features, finite, n, D, k, i, list, sims);
                else
                    for (int c = 0; c < k; c++) list[c] = -1;
            }
            free(sims);
        }
        if (progress) progress(end, n);
    }
    free(finite);
    return nearest;
}

void neighbours_group_order(const int *order, int n, const int *nearest, int k, int group, int *out) {
    unsigned char *placed = callocCheck((size_t)n, 1);
    int filled = 0;
    for (int p = 0; p < n; p++) {
        int seed = order[p];
        if (placed[seed]) continue;
        placed[seed] = 1;
        out[filled++] = seed;
        const int *list = nearest + (size_t)seed * k;
        for (int c = 0, taken = 1; c < k && taken < group; c++) {
            int j = list[c];
            if (j < 0 || placed[j]) continue;
            placed[j] = 1;
            out[filled++] = j;
            taken++;
        }
    }
    free(placed);
}
