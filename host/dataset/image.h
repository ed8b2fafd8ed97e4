/*
 * image.h: JPEG decode (libjpeg-turbo's TurboJPEG API) and CLIP image preprocessing that
 * reproduces Pillow + torchvision bit for bit.
 *
 * The exact path equals, for every JPEG Pillow can open, what OpenAI CLIP and open_clip do:
 *   Resize(R, BICUBIC) -> CenterCrop(R) -> convert("RGB") -> ToTensor -> Normalize.
 * Note the order: both projects convert to RGB *after* resizing and cropping, so an image is
 * resized in its own mode (L, RGB or CMYK, as Pillow holds it) and converted at the end. For
 * L and RGB the order makes no difference; for CMYK it does, and we follow the projects.
 *
 * Library code here never exits on bad input: every decoder entry point returns an
 * ImageStatus and writes a one-line message into the caller's buffer, so a data loader can
 * skip a bad file and go on.
 */
#ifndef TNG_IMAGE_H
#define TNG_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Headers beyond these are rejected before anything is allocated. */
#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS 100000000LL
/* A message buffer of this size always holds a full message. */
#define IMAGE_ERROR_SIZE 256
/* The CLIP input resolution (ViT-B/32). */
#define IMAGE_CLIP_SIZE 224

typedef enum {
    IMAGE_OK = 0,
    IMAGE_ERR_EMPTY,     /* zero bytes */
    IMAGE_ERR_IO,        /* the file could not be read */
    IMAGE_ERR_NOT_JPEG,  /* no JPEG header (PNG, text, a damaged header, ...) */
    IMAGE_ERR_TOO_LARGE, /* header dimensions beyond IMAGE_MAX_SIDE / IMAGE_MAX_PIXELS */
    IMAGE_ERR_CORRUPT,   /* the header parsed but the data did not decode, or ends early */
    IMAGE_ERR_ARGUMENT,  /* a bad argument from the caller (quality, sizes) */
} ImageStatus;

typedef enum {
    IMAGE_EXACT = 0, /* full-size decode: bit-exact with Pillow + torchvision */
    IMAGE_FAST = 1,  /* DCT-scaled decode (short side kept >= R): training only, NOT exact */
} ImageMode;

/*
 * A decoded image in Pillow's in-memory mode: channels 1 = "L", 3 = "RGB", 4 = "CMYK"
 * (Pillow's polarity: the Adobe inversion of CMYK JPEG data already undone).
 * pixels holds height rows of width*channels bytes.
 */
typedef struct {
    int width, height, channels;
    uint8_t *pixels;
} DecodedImage;

/* Reads the header only: size and channels (1, 3 or 4), with the limits checked. */
ImageStatus image_probe(const uint8_t *data, size_t size, int *width, int *height, int *channels,
                        char *err, size_t err_size);

/*
 * Decodes JPEG data. min_short_side = 0 decodes at full size (exact). min_short_side = R > 0
 * lets libjpeg-turbo scale in the DCT to the smallest size whose short side is still >= R
 * (the fast, non-exact mode). On success *out owns its pixels (release with image_free);
 * on failure *out is left empty and err says why.
 */
ImageStatus image_decode(const uint8_t *data, size_t size, int min_short_side, DecodedImage *out,
                         char *err, size_t err_size);
/* image_decode on a whole file; messages name the file. */
ImageStatus image_decode_file(const char *path, int min_short_side, DecodedImage *out, char *err,
                              size_t err_size);
void image_free(DecodedImage *img);

/* Pillow's convert("RGB") of the whole image into rgb (width*height*3 bytes). */
void image_to_rgb(const DecodedImage *img, uint8_t *rgb);

/*
 * torchvision Resize(size) (short side to size, Pillow bicubic) then CenterCrop(size), then
 * convert("RGB"): writes size*size*3 bytes (HWC) to crop_rgb. Only the pixels inside the crop
 * are computed; each is bit-identical to Pillow's.
 */
void image_resize_center_crop(const DecodedImage *img, int size, uint8_t *crop_rgb);

/* Decode + image_resize_center_crop in one call, in either mode. */
ImageStatus image_load_crop(const uint8_t *data, size_t size, int crop_size, ImageMode mode,
                            uint8_t *crop_rgb, char *err, size_t err_size);

/* ToTensor + Normalize(CLIP mean, std): HWC uint8 size x size x 3 -> CHW float32. */
void image_normalize_clip(const uint8_t *crop_rgb, int size, float *chw);

/*
 * Encodes an RGB image (HWC) as baseline JPEG, 4:2:0, at quality 1..100 (Pillow's defaults
 * apart from quality). *jpeg is malloc'd; the caller frees it.
 */
ImageStatus image_encode_jpeg(const uint8_t *rgb, int width, int height, int quality,
                              uint8_t **jpeg, size_t *jpeg_size, char *err, size_t err_size);

#endif
