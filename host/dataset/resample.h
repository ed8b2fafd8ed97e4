/*
 * resample.h: Pillow's bicubic resample (libImaging/Resample.c) along one axis, in its 22-bit
 * fixed point, for a window of the outputs only; image.c builds Resize + CenterCrop from it.
 *
 * The one design choice: once the taps are fixed-point integers, each output is an integer
 * sum (2^21 + sum of pixel * tap, then >> 22 and clip), so any grouping or order of that sum
 * gives the same bytes. Each pass therefore exists twice: a plain loop (the reference, and
 * what runs on CPUs without AVX2) and a vectorised version that sums several taps, channels
 * or rows per instruction. tests/test_image.c checks that they agree byte for byte.
 */
#ifndef TNG_RESAMPLE_H
#define TNG_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* Fixed-point taps for the outputs [first, first + count) of one axis. Output i reads the
   inputs start[i] .. start[i] + taps[i] - 1 with weights[i * max_taps ...]. */
typedef struct {
    int count, max_taps;
    int *start, *taps;
    int32_t *weights;
} ResampleAxis;

/* Taps for the outputs [first, first + count) of an in_size -> out_size resample. */
ResampleAxis resample_axis(int in_size, int out_size, int first, int count);
/* The input range [*lo, *hi) the axis reads; shifts the axis to start reading at *lo. */
void resample_axis_span(ResampleAxis *axis, int *lo, int *hi);
void resample_axis_free(ResampleAxis *axis);

/*
 * Horizontal pass: each of `rows` rows of src (src_stride bytes apart, pixels of `channels`
 * bytes: 1, 3 or 4) becomes axis->count pixels, packed row after row into dst.
 * src_bytes is how many bytes from src on may be read: the vectorised pass loads 16 bytes
 * at a time and may read past a row's last tap, but never past src + src_bytes.
 */
void resample_rows(const uint8_t *src, size_t src_stride, size_t src_bytes, int rows,
                   const ResampleAxis *axis, int channels, uint8_t *dst);
/* The same pass as a plain loop, one output pixel at a time: the reference. */
void resample_rows_reference(const uint8_t *src, size_t src_stride, int rows,
                             const ResampleAxis *axis, int channels, uint8_t *dst);

/* Vertical pass: output row y (row_bytes wide) = taps of axis output y over whole rows of src. */
void resample_columns(const uint8_t *src, size_t src_stride, const ResampleAxis *axis,
                      int row_bytes, uint8_t *dst);
/* The same pass as a plain loop: the reference. */
void resample_columns_reference(const uint8_t *src, size_t src_stride, const ResampleAxis *axis,
                                int row_bytes, uint8_t *dst);

/* 1 when both passes are vectorised in this build (AVX2), 0 when they run the reference. */
int resample_vectorised(void);

#endif
