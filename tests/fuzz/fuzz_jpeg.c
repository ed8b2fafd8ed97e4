/*
 * fuzz_jpeg.c: libFuzzer target for arbitrary bytes through JPEG decode + CLIP preprocessing.
 *
 * Each input goes through the header probe, the exact decode and the fast (DCT-scaled)
 * decode, then the crop and normalisation, with the crop size taken from the input's
 * last byte so that upscaling, downscaling and both pass orders are all reached. Headers
 * over 4 Mpixel are only probed: decoding them is slow but not interesting (the limit
 * itself is checked by tests/test_image.c). libjpeg-turbo may print warnings; that is fine.
 *
 * Build: make fuzz; run: build-fuzz/fuzz/fuzz_jpeg -max_total_time=600 [corpus dir]
 */
#include <stdint.h>
#include <stdlib.h>

#include "dataset/image.h"  // defines: image_probe, image_decode, image_resize_center_crop, ...

#define FUZZ_MAX_PIXELS (1 << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[IMAGE_ERROR_SIZE];
    int width, height, channels;
    if (image_probe(data, size, &width, &height, &channels, err, sizeof(err)) != IMAGE_OK) return 0;
    if ((long long)width * height > FUZZ_MAX_PIXELS) return 0;
    int crop_size = size > 0 ? 1 + data[size - 1] % 64 : 1;
    uint8_t *crop = malloc((size_t)crop_size * crop_size * 3);
    float *chw = malloc(sizeof(float) * 3 * crop_size * crop_size);
    for (int fast = 0; fast <= 1; fast++) {
        DecodedImage img;
        if (image_decode(data, size, fast ? crop_size : 0, &img, err, sizeof(err)) != IMAGE_OK) continue;
        if (img.width < 1 || img.height < 1 || img.channels < 1 || img.channels > 4) abort();
        image_resize_center_crop(&img, crop_size, crop);
        image_normalize_clip(crop, crop_size, chw);
        image_free(&img);
    }
    free(crop);
    free(chw);
    return 0;
}
