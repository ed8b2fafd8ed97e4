/*
 * image.c: JPEG decode through TurboJPEG, and Pillow's bicubic resize + torchvision's
 * CenterCrop + CLIP normalisation, reproduced bit for bit.
 *
 * The one design choice: the resize computes only the pixels inside the centre crop. Pillow
 * resizes the whole image and torchvision then crops, but every output pixel of Pillow's
 * separable filter depends only on its own row/column coefficients, so evaluating those
 * coefficients for the crop's rows and columns alone gives the same bytes for less work
 * (an image 40x wider than tall is upscaled to ~9000 columns by Pillow; we compute 224).
 * The two passes themselves, Pillow's fixed-point arithmetic included, are in resample.c;
 * this file picks their order and the rows and columns they cover.
 */
#include "dataset/image.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <turbojpeg.h>

#include "dataset/resample.h"  // defines: ResampleAxis, resample_axis, resample_rows, resample_columns
#include "util/common.h"        // defines: mallocCheck, read_file

/* ---------------------------------------------------------------------------------------- */
/* errors */

TNG_PRINTF(4, 5)
static ImageStatus fail(char *err, size_t err_size, ImageStatus status, const char *fmt, ...) {
    if (err && err_size) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err, err_size, fmt, args);
        va_end(args);
    }
    return status;
}

/* libjpeg's JWRN_JPEG_EOF text: the data ended before the EOI marker. TurboJPEG reports
   only the first warning's text, and this one comes first when a file is cut short. */
static int is_truncation_warning(tjhandle tj) {
    return tjGetErrorCode(tj) == TJERR_WARNING &&
           strstr(tjGetErrorStr2(tj), "Premature end of JPEG file") != NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* decode */

/*
 * Pillow tolerates libjpeg warnings (corrupt entropy data decodes to grey blocks) but
 * refuses data that ends early ("image file is truncated"). TurboJPEG returns -1 for both,
 * so a -1 counts as failure unless it is a warning other than truncation.
 */
static int tj_failed(tjhandle tj, int rc) {
    return rc != 0 && (tjGetErrorCode(tj) != TJERR_WARNING || is_truncation_warning(tj));
}

static ImageStatus read_header(tjhandle tj, const uint8_t *data, size_t size, int *width,
                               int *height, int *channels, char *err, size_t err_size) {
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *width = *height = *channels = 0;
    if (size == 0) return fail(err, err_size, IMAGE_ERR_EMPTY, "JPEG data is empty (0 bytes)");
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8) {
        int is_png = size >= 8 && memcmp(data, png_signature, 8) == 0;
        return fail(err, err_size, IMAGE_ERR_NOT_JPEG,
                    "not JPEG data: expected the SOI marker FF D8, found %02X %02X%s (%zu bytes)",
                    data[0], size > 1 ? data[1] : 0, is_png ? ", a PNG signature" : "", size);
    }
    int w = 0, h = 0, subsampling = -1, colorspace = -1;
    int rc = tjDecompressHeader3(tj, data, (unsigned long)size, &w, &h, &subsampling, &colorspace);
    if (tj_failed(tj, rc) || w < 1 || h < 1) {
        return fail(err, err_size, IMAGE_ERR_NOT_JPEG, "JPEG header unreadable (%zu bytes): %s",
                    size, rc ? tjGetErrorStr2(tj) : "no image in the data");
    }
    if (w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || (long long)w * h > IMAGE_MAX_PIXELS) {
        return fail(err, err_size, IMAGE_ERR_TOO_LARGE,
                    "JPEG header says %dx%d: over the limit of %d per side and %lld pixels", w, h,
                    IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
    }
    *width = w;
    *height = h;
    *channels = colorspace == TJCS_GRAY ? 1 : (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) ? 4 : 3;
    return IMAGE_OK;
}

ImageStatus image_probe(const uint8_t *data, size_t size, int *width, int *height, int *channels,
                        char *err, size_t err_size) {
    tjhandle tj = tjInitDecompress();
    if (!tj) return fail(err, err_size, IMAGE_ERR_CORRUPT, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
    ImageStatus status = read_header(tj, data, size, width, height, channels, err, err_size);
    tjDestroy(tj);
    return status;
}

/* The smallest DCT scaling (<= 1) that keeps the short side >= min_short_side. */
static void fast_decode_size(int width, int height, int min_short_side, int *out_w, int *out_h) {
    int count = 0;
    const tjscalingfactor *factors = tjGetScalingFactors(&count);
    int short_side = width < height ? width : height;
    *out_w = width;
    *out_h = height;
    for (int i = 0; i < count; i++) {
        tjscalingfactor f = factors[i];
        if (f.num > f.denom || TJSCALED(short_side, f) < min_short_side) continue;
        if (TJSCALED(width, f) * (long long)TJSCALED(height, f) < (long long)*out_w * *out_h) {
            *out_w = TJSCALED(width, f);
            *out_h = TJSCALED(height, f);
        }
    }
}

ImageStatus image_decode(const uint8_t *data, size_t size, int min_short_side, DecodedImage *out,
                         char *err, size_t err_size) {
    memset(out, 0, sizeof(*out));
    tjhandle tj = tjInitDecompress();
    if (!tj) return fail(err, err_size, IMAGE_ERR_CORRUPT, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
    int width, height, channels;
    ImageStatus status = read_header(tj, data, size, &width, &height, &channels, err, err_size);
    if (status == IMAGE_OK) {
        if (min_short_side > 0) fast_decode_size(width, height, min_short_side, &width, &height);
        uint8_t *pixels = mallocCheck((size_t)width * height * channels);
        int format = channels == 1 ? TJPF_GRAY : channels == 4 ? TJPF_CMYK : TJPF_RGB;
        /* LIMITSCANS refuses progressive files with > 500 scans, a known decode-time bomb. */
        int rc = tjDecompress2(tj, data, (unsigned long)size, pixels, width, 0, height, format,
                               TJFLAG_LIMITSCANS);
        if (tj_failed(tj, rc)) {
            status = fail(err, err_size, IMAGE_ERR_CORRUPT, "JPEG %dx%d (%zu bytes) did not decode: %s",
                          width, height, size, tjGetErrorStr2(tj));
            free(pixels);
        } else {
            /* Pillow reads every CMYK JPEG as Adobe-inverted ("CMYK;I"), so its CMYK pixel
               is 255 minus what libjpeg returns. */
            if (channels == 4) {
                size_t n = (size_t)width * height * 4;
                for (size_t i = 0; i < n; i++) pixels[i] = 255 - pixels[i];
            }
            *out = (DecodedImage){width, height, channels, pixels};
        }
    }
    tjDestroy(tj);
    return status;
}

ImageStatus image_decode_file(const char *path, int min_short_side, DecodedImage *out, char *err,
                              size_t err_size) {
    memset(out, 0, sizeof(*out));
    size_t size = 0;
    char *data = read_file(path, &size);
    if (!data) return fail(err, err_size, IMAGE_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    char inner[IMAGE_ERROR_SIZE];
    ImageStatus status = image_decode((const uint8_t *)data, size, min_short_side, out, inner, sizeof(inner));
    free(data);
    if (status != IMAGE_OK) fail(err, err_size, status, "%s: %s", path, inner);
    return status;
}

void image_free(DecodedImage *img) {
    free(img->pixels);
    memset(img, 0, sizeof(*img));
}

/* ---------------------------------------------------------------------------------------- */
/* mode conversion: Pillow's convert("RGB") from L, RGB and CMYK */

/* Pillow's MULDIV255: a*b/255 rounded, without a division. */
static inline uint8_t muldiv255(int a, int b) {
    int t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static void pixels_to_rgb(const uint8_t *src, int channels, size_t count, uint8_t *rgb) {
    for (size_t i = 0; i < count; i++, src += channels, rgb += 3) {
        if (channels == 1) {
            rgb[0] = rgb[1] = rgb[2] = src[0];
        } else if (channels == 3) {
            rgb[0] = src[0], rgb[1] = src[1], rgb[2] = src[2];
        } else { /* CMYK: each of R, G, B = (255 - ink) * (255 - black) / 255 */
            for (int c = 0; c < 3; c++) rgb[c] = muldiv255(255 - src[c], 255 - src[3]);
        }
    }
}

void image_to_rgb(const DecodedImage *img, uint8_t *rgb) {
    pixels_to_rgb(img->pixels, img->channels, (size_t)img->width * img->height, rgb);
}

/* ---------------------------------------------------------------------------------------- */
/* Resize + CenterCrop */

/* Python's int(round(d / 2.0)) for d >= 0: halves go to the even neighbour. */
static int half_round_even(int d) {
    int half = d / 2;
    return (d & 1) && (half & 1) ? half + 1 : half;
}

/*
 * Pillow 13's pass order (measured: it matches Pillow on >4,000 random size pairs, every
 * mode): vertical first when the height shrinks and by more than twice what the width
 * loses. Earlier Pillows always ran horizontal first; the order changes the rounding
 * between passes, so it decides bit-exactness (tall images, aspect > ~2, go vertical first).
 */
static int pillow_vertical_first(int w, int h, int new_w, int new_h) {
    return new_w != w && new_h < h && 2 * new_w - new_h > 2 * w - h;
}

void image_resize_center_crop(const DecodedImage *img, int size, uint8_t *crop_rgb) {
    const int w = img->width, h = img->height, ch = img->channels;
    /* torchvision Resize(size): short side -> size, long side int(size * long / short),
       the division in double exactly as Python's int / int. */
    int new_w, new_h;
    if (w <= h) {
        new_w = size;
        new_h = (int)((double)size * h / w);
    } else {
        new_h = size;
        new_w = (int)((double)size * w / h);
    }
    /* Only the crop's rows and columns of the resized image are computed. */
    int top = half_round_even(new_h - size), left = half_round_even(new_w - size);
    ResampleAxis horiz = resample_axis(w, new_w, left, size);
    ResampleAxis vert = resample_axis(h, new_h, top, size);
    /* An RGB image is already in its final mode: the passes write the result in place. */
    uint8_t *crop = ch == 3 ? crop_rgb : mallocCheck((size_t)size * size * ch);
    int lo, hi;
    if (pillow_vertical_first(w, h, new_w, new_h)) {
        /* crop rows over the source columns the horizontal pass reads, then the columns */
        resample_axis_span(&horiz, &lo, &hi);
        size_t temp_bytes = (size_t)size * (hi - lo) * ch;
        uint8_t *temp = mallocCheck(temp_bytes);
        resample_columns(img->pixels + (size_t)lo * ch, (size_t)w * ch, &vert, (hi - lo) * ch, temp);
        resample_rows(temp, (size_t)(hi - lo) * ch, temp_bytes, size, &horiz, ch, crop);
        free(temp);
    } else {
        /* crop columns over the source rows the vertical pass reads, then the rows */
        resample_axis_span(&vert, &lo, &hi);
        uint8_t *temp = mallocCheck((size_t)(hi - lo) * size * ch);
        resample_rows(img->pixels + (size_t)lo * w * ch, (size_t)w * ch,
                      (size_t)(h - lo) * w * ch, hi - lo, &horiz, ch, temp);
        resample_columns(temp, (size_t)size * ch, &vert, size * ch, crop);
        free(temp);
    }
    resample_axis_free(&horiz);
    resample_axis_free(&vert);
    /* Last, Pillow's convert("RGB"), as OpenAI CLIP and open_clip apply it after the crop. */
    if (crop != crop_rgb) {
        pixels_to_rgb(crop, ch, (size_t)size * size, crop_rgb);
        free(crop);
    }
}

ImageStatus image_load_crop(const uint8_t *data, size_t size, int crop_size, ImageMode mode,
                            uint8_t *crop_rgb, char *err, size_t err_size) {
    if (crop_size < 1 || crop_size > IMAGE_MAX_SIDE)
        return fail(err, err_size, IMAGE_ERR_ARGUMENT, "crop size %d outside 1..%d", crop_size, IMAGE_MAX_SIDE);
    DecodedImage img;
    ImageStatus status = image_decode(data, size, mode == IMAGE_FAST ? crop_size : 0, &img, err, err_size);
    if (status != IMAGE_OK) return status;
    image_resize_center_crop(&img, crop_size, crop_rgb);
    image_free(&img);
    return IMAGE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* normalise */

void image_normalize_clip(const uint8_t *crop_rgb, int size, float *chw) {
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    /* torchvision computes (x / 255 - mean) / std in float32, one rounding per step; a table
       of the 256 results per channel reproduces it exactly and costs one load per value. */
    float table[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) table[c][v] = ((float)v / 255.0f - mean[c]) / std[c];
    size_t plane = (size_t)size * size;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) chw[c * plane + i] = table[c][crop_rgb[i * 3 + c]];
}

/* ---------------------------------------------------------------------------------------- */
/* encode */

ImageStatus image_encode_jpeg(const uint8_t *rgb, int width, int height, int quality,
                              uint8_t **jpeg, size_t *jpeg_size, char *err, size_t err_size) {
    *jpeg = NULL;
    *jpeg_size = 0;
    if (width < 1 || height < 1 || width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE ||
        (long long)width * height > IMAGE_MAX_PIXELS || quality < 1 || quality > 100) {
        return fail(err, err_size, IMAGE_ERR_ARGUMENT,
                    "cannot encode %dx%d at quality %d: sides 1..%d, quality 1..100", width,
                    height, quality, IMAGE_MAX_SIDE);
    }
    tjhandle tj = tjInitCompress();
    if (!tj) return fail(err, err_size, IMAGE_ERR_ARGUMENT, "tjInitCompress: %s", tjGetErrorStr2(NULL));
    /* Preallocated to the worst case so TurboJPEG never reallocates: the caller can free()
       the result like any malloc'd buffer. ACCURATEDCT: Pillow encodes with the ISLOW DCT. */
    unsigned long capacity = tjBufSize(width, height, TJSAMP_420);
    unsigned char *buf = mallocCheck(capacity);
    unsigned long out_size = capacity;
    ImageStatus status = IMAGE_OK;
    if (tjCompress2(tj, rgb, width, 0, height, TJPF_RGB, &buf, &out_size, TJSAMP_420, quality,
                    TJFLAG_NOREALLOC | TJFLAG_ACCURATEDCT) != 0) {
        status = fail(err, err_size, IMAGE_ERR_ARGUMENT, "JPEG encode of %dx%d failed: %s", width,
                      height, tjGetErrorStr2(tj));
        free(buf);
    } else {
        *jpeg = buf;
        *jpeg_size = out_size;
    }
    tjDestroy(tj);
    return status;
}
