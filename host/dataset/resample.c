/*
 * resample.c: Pillow's bicubic resample, restricted to a window of outputs, bit for bit.
 *
 * Pillow semantics reproduced here (libImaging/Resample.c, ImagingResampleInner):
 *   - bicubic a = -0.5, support 2, widened by in/out when downscaling;
 *   - centre (x + 0.5) * scale, window [int(c - s + 0.5), int(c + s + 0.5)) clamped to the
 *     image, weights normalised to sum 1, then rounded to 22-bit fixed point;
 *   - each pass rounds (+2^21, >> 22) and clips to 0..255;
 *   - a pass whose size does not change is skipped (here: a one-tap identity, same bytes).
 * The coefficient arithmetic is double precision in the same order as Pillow's; the pragma
 * below stops clang from fusing it into FMAs (gcc in -std=c11 mode never does).
 *
 * Both passes exist as a plain loop (the reference) and vectorised with AVX2. The vectorised
 * ones split each 22-bit tap into its low 15 bits and the rest, so that both halves fit the
 * 16-bit multiplier of vpmaddwd, which multiplies pixel pairs by tap pairs and adds each pair
 * into 32 bits. The two partial sums recombine as (high << 15) + low: integer arithmetic, the
 * same value as the reference's sum (wrapping int32 lanes: the true sum fits in 32 bits).
 */
#include "dataset/resample.h"

#include <math.h>
#include <string.h>

#include "util/common.h"  // defines: mallocCheck

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define RESAMPLE_BITS 22 /* Pillow's PRECISION_BITS: 32 - 8 bits of pixel - 2 of headroom */

/* ---------------------------------------------------------------------------------------- */
/* taps */

static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* When the size does not change Pillow skips the pass; a one-tap identity gives the same
   bytes ((v << 22) + 2^21) >> 22 = v) and lets both passes always run. */
ResampleAxis resample_axis(int in_size, int out_size, int first, int count) {
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    ResampleAxis axis;
    axis.count = count;
    axis.max_taps = in_size == out_size ? 1 : (int)ceil(support) * 2 + 1;
    axis.start = mallocCheck(sizeof(int) * count);
    axis.taps = mallocCheck(sizeof(int) * count);
    axis.weights = mallocCheck(sizeof(int32_t) * count * axis.max_taps);
    double *w = mallocCheck(sizeof(double) * axis.max_taps);
    for (int i = 0; i < count; i++) {
        int out = first + i;
        int32_t *fixed = axis.weights + (size_t)i * axis.max_taps;
        if (in_size == out_size) {
            axis.start[i] = out;
            axis.taps[i] = 1;
            fixed[0] = 1 << RESAMPLE_BITS;
            continue;
        }
        double center = (out + 0.5) * scale;
        double inv_filterscale = 1.0 / filterscale;
        int lo = (int)(center - support + 0.5); /* truncation toward zero, as in Pillow */
        if (lo < 0) lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        double total = 0.0;
        for (int k = 0; k < n; k++) {
            w[k] = bicubic((k + lo - center + 0.5) * inv_filterscale);
            total += w[k];
        }
        for (int k = 0; k < n; k++) {
            double v = total != 0.0 ? w[k] / total : w[k];
            fixed[k] = v < 0 ? (int32_t)(-0.5 + v * (1 << RESAMPLE_BITS))
                             : (int32_t)(0.5 + v * (1 << RESAMPLE_BITS));
        }
        axis.start[i] = lo;
        axis.taps[i] = n;
    }
    free(w);
    return axis;
}

void resample_axis_span(ResampleAxis *axis, int *lo, int *hi) {
    *lo = axis->start[0];
    *hi = axis->start[axis->count - 1] + axis->taps[axis->count - 1];
    for (int i = 0; i < axis->count; i++) axis->start[i] -= *lo;
}

void resample_axis_free(ResampleAxis *axis) {
    free(axis->start);
    free(axis->taps);
    free(axis->weights);
}

/* Pillow's clip8: the accumulator carries 2^21 of rounding; >> is a floor, as in Pillow. */
static inline uint8_t clip_fixed(int32_t acc) {
    int32_t v = acc >> RESAMPLE_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* ---------------------------------------------------------------------------------------- */
/* horizontal pass, the reference: one output pixel at a time */

/* Output pixel x of one row. Inlined per channel count so the channel loop unrolls. */
static inline __attribute__((always_inline)) void reference_pixel(
    const uint8_t *row, const ResampleAxis *axis, int x, int channels, uint8_t *out) {
    const uint8_t *in = row + (size_t)axis->start[x] * channels;
    const int32_t *k = axis->weights + (size_t)x * axis->max_taps;
    int32_t acc[4] = {1 << (RESAMPLE_BITS - 1), 1 << (RESAMPLE_BITS - 1),
                      1 << (RESAMPLE_BITS - 1), 1 << (RESAMPLE_BITS - 1)};
    for (int t = 0; t < axis->taps[x]; t++)
        for (int c = 0; c < channels; c++) acc[c] += in[t * channels + c] * k[t];
    for (int c = 0; c < channels; c++) out[c] = clip_fixed(acc[c]);
}

static inline __attribute__((always_inline)) void reference_rows_n(
    const uint8_t *src, size_t src_stride, int rows, const ResampleAxis *axis, int channels,
    uint8_t *dst) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *row = src + (size_t)y * src_stride;
        uint8_t *out = dst + (size_t)y * axis->count * channels;
        for (int x = 0; x < axis->count; x++) reference_pixel(row, axis, x, channels, out + x * channels);
    }
}

void resample_rows_reference(const uint8_t *src, size_t src_stride, int rows,
                             const ResampleAxis *axis, int channels, uint8_t *dst) {
    switch (channels) {
    case 1: reference_rows_n(src, src_stride, rows, axis, 1, dst); break;
    case 3: reference_rows_n(src, src_stride, rows, axis, 3, dst); break;
    default: reference_rows_n(src, src_stride, rows, axis, 4, dst); break;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* horizontal pass, vectorised (AVX2) */

#if defined(__AVX2__)

/*
 * One block of taps fills a 256-bit register of 16 int16 lanes from 16 input bytes loaded
 * into both 128-bit halves. vpmaddwd sums adjacent lane pairs, so a pair holds two taps of
 * the same channel:
 *   3 or 4 channels: a half holds taps (2h, 2h+1) of channels 0..3 (channel 3 zero for RGB),
 *                    4 taps per block; the sums come out as [c0 c1 c2 c3] per half.
 *   1 channel:       a half holds taps 8h .. 8h+7; 16 taps per block, 8 partial sums.
 * Returns the tap (within the block) and channel behind int16 lane i, or -1 for a zero lane.
 */
static int block_lane(int channels, int i, int *channel) {
    int half = i / 8, k = i % 8;
    if (channels == 1) {
        *channel = 0;
        return i;
    }
    *channel = k / 2;
    return *channel < channels ? 2 * half + k % 2 : -1;
}

/* The taps of every output split into blocks, low and high halves as int16. Every output
   gets the same number of blocks (zero taps pad the shorter ones), so the loads of output x
   reach read_end[x] bytes past the row start, a non-decreasing function of x. */
typedef struct {
    int taps_per_block, blocks;
    size_t *offset;   /* byte offset of output x's first input pixel in a row */
    size_t *read_end;
    int16_t *weights; /* [count][blocks][low, high][16 lanes] */
    __m256i shuffle;  /* input bytes -> int16 lanes (0x80: zero) */
} PackedTaps;

static PackedTaps pack_taps(const ResampleAxis *axis, int channels) {
    PackedTaps p;
    p.taps_per_block = channels == 1 ? 16 : 4;
    p.blocks = 1;
    for (int x = 0; x < axis->count; x++) {
        int blocks = (axis->taps[x] + p.taps_per_block - 1) / p.taps_per_block;
        if (blocks > p.blocks) p.blocks = blocks;
    }
    p.offset = mallocCheck(sizeof(size_t) * axis->count);
    p.read_end = mallocCheck(sizeof(size_t) * axis->count);
    p.weights = mallocCheck(sizeof(int16_t) * 32 * axis->count * p.blocks);
    int8_t shuffle[32];
    for (int i = 0; i < 16; i++) {
        int channel, tap = block_lane(channels, i, &channel);
        shuffle[2 * i] = tap < 0 ? (int8_t)0x80 : (int8_t)(tap * channels + channel);
        shuffle[2 * i + 1] = (int8_t)0x80; /* zero-extends the byte to 16 bits */
    }
    p.shuffle = _mm256_loadu_si256((const __m256i *)shuffle);
    for (int x = 0; x < axis->count; x++) {
        p.offset[x] = (size_t)axis->start[x] * channels;
        p.read_end[x] = p.offset[x] + (size_t)(p.blocks - 1) * p.taps_per_block * channels + 16;
        const int32_t *k = axis->weights + (size_t)x * axis->max_taps;
        for (int b = 0; b < p.blocks; b++) {
            int16_t *low = p.weights + ((size_t)x * p.blocks + b) * 32, *high = low + 16;
            for (int i = 0; i < 16; i++) {
                int channel, tap = block_lane(channels, i, &channel);
                int t = b * p.taps_per_block + tap;
                int32_t w = tap >= 0 && t < axis->taps[x] ? k[t] : 0;
                int32_t w_low = w & 0x7FFF; /* w = high * 2^15 + low, low in 0..32767 */
                low[i] = (int16_t)w_low;
                high[i] = (int16_t)((w - w_low) / 32768);
            }
        }
    }
    return p;
}

static void packed_taps_free(PackedTaps *p) {
    free(p->offset);
    free(p->read_end);
    free(p->weights);
}

/* acc + vpmaddwd(a, b): one instruction with AVX-VNNI (vpdpwssd, wrapping like the add) */
static inline __m256i madd_add(__m256i acc, __m256i a, __m256i b) {
#if defined(__AVXVNNI__)
    return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

/* Output pixel x of two rows at once: they share the taps, loaded once, and the final
   reduction packs both rows into one register. row1 may equal row0 (an odd last row). */
static inline __attribute__((always_inline)) void vector_pixel_pair(
    const uint8_t *row0, const uint8_t *row1, const PackedTaps *p, int x, int channels,
    int blocks, uint8_t *out0, uint8_t *out1) {
    __m256i low0 = _mm256_setzero_si256(), high0 = low0, low1 = low0, high1 = low0;
    const int16_t *w = p->weights + (size_t)x * blocks * 32;
    const uint8_t *in0 = row0 + p->offset[x], *in1 = row1 + p->offset[x];
    const int step = p->taps_per_block * channels;
    for (int b = 0; b < blocks; b++, in0 += step, in1 += step, w += 32) {
        __m256i w_low = _mm256_loadu_si256((const __m256i *)w);
        __m256i w_high = _mm256_loadu_si256((const __m256i *)(w + 16));
        __m256i px0 = _mm256_shuffle_epi8(
            _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)in0)), p->shuffle);
        __m256i px1 = _mm256_shuffle_epi8(
            _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)in1)), p->shuffle);
        low0 = madd_add(low0, px0, w_low);
        high0 = madd_add(high0, px0, w_high);
        low1 = madd_add(low1, px1, w_low);
        high1 = madd_add(high1, px1, w_high);
    }
    __m256i sum0 = _mm256_add_epi32(_mm256_slli_epi32(high0, 15), low0);
    __m256i sum1 = _mm256_add_epi32(_mm256_slli_epi32(high1, 15), low1);
    /* the two halves of each row's sums added: [row 0: 4 lanes | row 1: 4 lanes] */
    __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(sum0, sum1, 0x20),
                                 _mm256_permute2x128_si256(sum0, sum1, 0x31));
    if (channels == 1) { /* the one channel's four partial sums, into every lane */
        s = _mm256_add_epi32(s, _mm256_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
        s = _mm256_add_epi32(s, _mm256_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    }
    /* per channel: + 2^21, >> 22 (a floor, as in clip_fixed), then the signed and unsigned
       saturating packs clip to 0..255 */
    s = _mm256_srai_epi32(_mm256_add_epi32(s, _mm256_set1_epi32(1 << (RESAMPLE_BITS - 1))),
                          RESAMPLE_BITS);
    s = _mm256_packus_epi16(_mm256_packs_epi32(s, s), s);
    int32_t bytes0 = _mm256_cvtsi256_si32(s);
    int32_t bytes1 = _mm_cvtsi128_si32(_mm256_extracti128_si256(s, 1));
    memcpy(out0, &bytes0, (size_t)channels);
    memcpy(out1, &bytes1, (size_t)channels);
}

static inline __attribute__((always_inline)) void vector_rows_n(
    const uint8_t *src, size_t src_stride, size_t src_bytes, int rows, const ResampleAxis *axis,
    const PackedTaps *p, int channels, int blocks, uint8_t *dst) {
    const size_t out_row = (size_t)axis->count * channels;
    for (int y = 0; y < rows; y += 2) {
        int last = y + 1 < rows ? y + 1 : y;
        const uint8_t *row0 = src + (size_t)y * src_stride, *row1 = src + (size_t)last * src_stride;
        uint8_t *out0 = dst + (size_t)y * out_row, *out1 = dst + (size_t)last * out_row;
        /* near the end of the buffer 16-byte loads would overrun: the plain loop there */
        size_t readable = src_bytes - (size_t)last * src_stride;
        int cut = axis->count;
        while (cut > 0 && p->read_end[cut - 1] > readable) cut--;
        for (int x = 0; x < cut; x++)
            vector_pixel_pair(row0, row1, p, x, channels, blocks, out0 + x * channels,
                              out1 + x * channels);
        for (int x = cut; x < axis->count; x++) {
            reference_pixel(row0, axis, x, channels, out0 + x * channels);
            reference_pixel(row1, axis, x, channels, out1 + x * channels);
        }
    }
}

void resample_rows(const uint8_t *src, size_t src_stride, size_t src_bytes, int rows,
                   const ResampleAxis *axis, int channels, uint8_t *dst) {
    if (channels != 1 && channels != 3 && channels != 4) {
        resample_rows_reference(src, src_stride, rows, axis, channels, dst);
        return;
    }
    PackedTaps p = pack_taps(axis, channels);
    /* Compiled once per channel count and, for the common short filters, per block count
       (a filter has about 4 x scale taps: 1-3 blocks cover downscales up to ~2.7x for RGB
       and CMYK, ~11x for greyscale), so the tap loop unrolls; longer filters loop. */
#define ROWS(C, B) vector_rows_n(src, src_stride, src_bytes, rows, axis, &p, C, B, dst)
    switch (channels * 4 + (p.blocks <= 3 ? p.blocks : 0)) {
    case 1 * 4 + 1: ROWS(1, 1); break;
    case 1 * 4 + 2: ROWS(1, 2); break;
    case 1 * 4 + 3: ROWS(1, 3); break;
    case 1 * 4: ROWS(1, p.blocks); break;
    case 3 * 4 + 1: ROWS(3, 1); break;
    case 3 * 4 + 2: ROWS(3, 2); break;
    case 3 * 4 + 3: ROWS(3, 3); break;
    case 3 * 4: ROWS(3, p.blocks); break;
    case 4 * 4 + 1: ROWS(4, 1); break;
    case 4 * 4 + 2: ROWS(4, 2); break;
    case 4 * 4 + 3: ROWS(4, 3); break;
    default: ROWS(4, p.blocks); break;
    }
#undef ROWS
    packed_taps_free(&p);
}

int resample_vectorised(void) { return 1; }

#else

void resample_rows(const uint8_t *src, size_t src_stride, size_t src_bytes, int rows,
                   const ResampleAxis *axis, int channels, uint8_t *dst) {
    (void)src_bytes;
    resample_rows_reference(src, src_stride, rows, axis, channels, dst);
}

int resample_vectorised(void) { return 0; }

#endif

/* ---------------------------------------------------------------------------------------- */
/* vertical pass */

/* The reference: each output row is a weighted sum of whole input rows, one accumulator per
   byte along the row. */
void resample_columns_reference(const uint8_t *src, size_t src_stride, const ResampleAxis *axis,
                                int row_bytes, uint8_t *dst) {
    int32_t *acc = mallocCheck(sizeof(int32_t) * row_bytes);
    for (int y = 0; y < axis->count; y++) {
        for (int j = 0; j < row_bytes; j++) acc[j] = 1 << (RESAMPLE_BITS - 1);
        const int32_t *k = axis->weights + (size_t)y * axis->max_taps;
        for (int t = 0; t < axis->taps[y]; t++) {
            const uint8_t *in = src + (size_t)(axis->start[y] + t) * src_stride;
            int32_t weight = k[t];
            for (int j = 0; j < row_bytes; j++) acc[j] += in[j] * weight;
        }
        for (int j = 0; j < row_bytes; j++) dst[(size_t)y * row_bytes + j] = clip_fixed(acc[j]);
    }
    free(acc);
}

#if defined(__AVX2__)

/*
 * Vectorised: the bytes of two input rows (taps t, t+1) interleave into int16 pairs, so one
 * vpmaddwd adds both taps for 8 outputs; the taps split into low 15 bits and the rest as in
 * the horizontal pass. 16 output bytes at a time keep their sums in registers over all the
 * taps; the last row_bytes % 16 bytes take the reference arithmetic.
 */
void resample_columns(const uint8_t *src, size_t src_stride, const ResampleAxis *axis,
                      int row_bytes, uint8_t *dst) {
    int max_pairs = (axis->max_taps + 1) / 2;
    const uint8_t **row0 = mallocCheck(sizeof(*row0) * max_pairs), **row1 = mallocCheck(sizeof(*row1) * max_pairs);
    /* per tap pair, the two int16 halves of one int32, broadcast to every lane in the loop */
    int32_t *w_low = mallocCheck(sizeof(int32_t) * max_pairs), *w_high = mallocCheck(sizeof(int32_t) * max_pairs);
    const __m256i round = _mm256_set1_epi32(1 << (RESAMPLE_BITS - 1));
    for (int y = 0; y < axis->count; y++) {
        const int32_t *k = axis->weights + (size_t)y * axis->max_taps;
        const uint8_t *first = src + (size_t)axis->start[y] * src_stride;
        int taps = axis->taps[y], pairs = (taps + 1) / 2;
        for (int p = 0; p < pairs; p++) {
            int t = 2 * p, odd = t + 1 < taps; /* an odd last tap pairs with a zero tap */
            int32_t w0 = k[t], w1 = odd ? k[t + 1] : 0;
            int32_t low0 = w0 & 0x7FFF, low1 = w1 & 0x7FFF;
            row0[p] = first + (size_t)t * src_stride;
            row1[p] = odd ? row0[p] + src_stride : row0[p];
            w_low[p] = (int32_t)((uint32_t)low1 << 16 | (uint32_t)low0);
            w_high[p] = (int32_t)((uint32_t)((w1 - low1) / 32768) << 16 | (uint16_t)((w0 - low0) / 32768));
        }
        uint8_t *out = dst + (size_t)y * row_bytes;
        int j = 0;
        for (; j + 16 <= row_bytes; j += 16) {
            __m256i low_a = _mm256_setzero_si256(), high_a = low_a, low_b = low_a, high_b = low_a;
            for (int p = 0; p < pairs; p++) {
                __m128i a = _mm_loadu_si128((const __m128i *)(row0[p] + j));
                __m128i b = _mm_loadu_si128((const __m128i *)(row1[p] + j));
                __m256i first8 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b)); /* a0 b0 a1 b1 .. */
                __m256i last8 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, b));
                __m256i low = _mm256_set1_epi32(w_low[p]), high = _mm256_set1_epi32(w_high[p]);
                low_a = madd_add(low_a, first8, low);
                high_a = madd_add(high_a, first8, high);
                low_b = madd_add(low_b, last8, low);
                high_b = madd_add(high_b, last8, high);
            }
            __m256i sum_a = _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(high_a, 15), low_a), round);
            __m256i sum_b = _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(high_b, 15), low_b), round);
            /* >> 22, then saturating packs clip to 0..255; the permute undoes the packs'
               per-half interleave so the 16 bytes come out in order */
            __m256i words = _mm256_packs_epi32(_mm256_srai_epi32(sum_a, RESAMPLE_BITS),
                                               _mm256_srai_epi32(sum_b, RESAMPLE_BITS));
            words = _mm256_permute4x64_epi64(words, _MM_SHUFFLE(3, 1, 2, 0));
            __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
            _mm_storeu_si128((__m128i *)(out + j), bytes);
        }
        for (; j < row_bytes; j++) {
            int32_t acc = 1 << (RESAMPLE_BITS - 1);
            for (int t = 0; t < taps; t++) acc += first[(size_t)t * src_stride + j] * k[t];
            out[j] = clip_fixed(acc);
        }
    }
    free(row0), free(row1), free(w_low), free(w_high);
}


#else

void resample_columns(const uint8_t *src, size_t src_stride, const ResampleAxis *axis,
                      int row_bytes, uint8_t *dst) {
    resample_columns_reference(src, src_stride, axis, row_bytes, dst);
}


#endif
