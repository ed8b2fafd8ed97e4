"""Make the JPEG fixtures and expected outputs for tests/test_image.c.

Run from the repository root with the project venv:
    .venv/bin/python tests/ref/make_image_fixtures.py

Writes into tests/fixtures/image/:
  jpeg/img_NNN.jpg   small synthetic JPEGs of random size, aspect, mode and subsampling
  expected.tsv       per image: size, channels, CRC32 of Pillow's decoded pixels, and CRC32 of
                     the uint8 crop that Pillow + torchvision produce (the reference pipeline:
                     Resize(R, BICUBIC) -> CenterCrop(R) -> convert("RGB"), the order OpenAI
                     CLIP and open_clip use)
  float_NNN_R.bin    open_clip's own eval transform (to float32 CHW) for a few images
  corrupt_ok.jpg     entropy data damaged; Pillow still decodes it (listed in expected.tsv)
  truncated.jpg      cut mid-scan; Pillow refuses it ("image file is truncated")
  not_a_jpeg.jpg     a PNG under a .jpg name

Pillow's wheel bundles its own libjpeg-turbo; the C code links Debian's. The script decodes
every file with both (Debian's through ctypes) and reports whether the pixels agree, so a
crop mismatch in the C test can be told apart from a decoder difference.

The expected crops are Pillow 13.0's. Pillow 13 picks the order of its two resize passes
(vertical first when the height shrinks by more than twice what the width loses); older
Pillows always ran horizontal first, and the order changes the rounding between passes.
"""

import ctypes
import io
import os
import zlib

import numpy as np
import open_clip
import torch
from PIL import Image, features
from torchvision import transforms

SEED = 20261129
COUNT = 320
CLIP = 224
OUT = "tests/fixtures/image"

# ---------------------------------------------------------------------------------------
# Debian's TurboJPEG through ctypes: the encoder for YCCK / 4:4:0 / 4:1:1 files (Pillow
# cannot write those) and the decoder for the agreement report.

TJ = ctypes.CDLL("libturbojpeg.so.0")
TJ.tjInitCompress.restype = ctypes.c_void_p
TJ.tjInitDecompress.restype = ctypes.c_void_p
TJ.tjGetErrorStr2.restype = ctypes.c_char_p
TJ.tjGetErrorStr2.argtypes = [ctypes.c_void_p]
TJ.tjDestroy.argtypes = [ctypes.c_void_p]
TJ.tjFree.argtypes = [ctypes.c_void_p]
TJ.tjCompress2.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                           ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                           ctypes.POINTER(ctypes.c_ulong), ctypes.c_int, ctypes.c_int, ctypes.c_int]
TJ.tjDecompressHeader3.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong] + \
    [ctypes.POINTER(ctypes.c_int)] * 4
TJ.tjDecompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p,
                             ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
TJPF_RGB, TJPF_GRAY, TJPF_CMYK = 0, 6, 11
TJSAMP_440, TJSAMP_411 = 4, 5
TJFLAG_ACCURATEDCT = 4096


def tj_encode(pixels, pixel_format, subsampling, quality):
    h, w = pixels.shape[:2]
    pixels = np.ascontiguousarray(pixels)
    handle = TJ.tjInitCompress()
    buf, size = ctypes.c_void_p(), ctypes.c_ulong(0)
    if TJ.tjCompress2(handle, pixels.ctypes.data, w, 0, h, pixel_format, ctypes.byref(buf),
                      ctypes.byref(size), subsampling, quality, TJFLAG_ACCURATEDCT) != 0:
        raise RuntimeError(TJ.tjGetErrorStr2(handle))
    data = ctypes.string_at(buf, size.value)
    TJ.tjFree(buf)
    TJ.tjDestroy(handle)
    return data


def tj_decode_like_pillow(data):
    """Debian libjpeg-turbo decode, in Pillow's in-memory mode (CMYK un-inverted)."""
    handle = TJ.tjInitDecompress()
    w, h, subsamp, cs = (ctypes.c_int() for _ in range(4))
    if TJ.tjDecompressHeader3(handle, data, len(data), ctypes.byref(w), ctypes.byref(h),
                              ctypes.byref(subsamp), ctypes.byref(cs)) != 0:
        raise RuntimeError(TJ.tjGetErrorStr2(handle))
    fmt, channels = {2: (TJPF_GRAY, 1), 3: (TJPF_CMYK, 4), 4: (TJPF_CMYK, 4)}.get(cs.value, (TJPF_RGB, 3))
    out = np.empty((h.value, w.value, channels), np.uint8)
    rc = TJ.tjDecompress2(handle, data, len(data), out.ctypes.data, w.value, 0, h.value, fmt, 0)
    TJ.tjDestroy(handle)
    if rc != 0 and b"Premature end" in (TJ.tjGetErrorStr2(None) or b""):
        raise RuntimeError("truncated")
    return 255 - out if channels == 4 else out


# ---------------------------------------------------------------------------------------
# Synthetic content: smooth colour waves (compress well), hard-edged saturated rectangles
# (bicubic overshoot must clip at 0 and 255); JPEG artefacts add the fine texture.

def synthetic_rgb(rng, w, h):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32) + rng.uniform(40, 215, 3).astype(np.float32)
    for _ in range(rng.integers(2, 5)):
        fx, fy = rng.uniform(-0.08, 0.08, 2)
        amp = rng.uniform(10, 70, 3).astype(np.float32)
        img += amp * np.sin(fx * xx + fy * yy + rng.uniform(0, 6.3))[..., None]
    for _ in range(rng.integers(0, 4)):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        x1, y1 = x0 + rng.integers(1, max(2, w // 2)), y0 + rng.integers(1, max(2, h // 2))
        img[y0:y1, x0:x1] = rng.choice([0.0, 255.0], 3)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def random_geometry(rng, i):
    """(width, height, crop size), cycling through the cases the C code must get right.
    Mostly R = 224; one in ten elsewhere at a random R in 1..400 to vary the geometry."""
    case = i % 8
    size = CLIP if rng.random() < 0.9 else int(rng.integers(1, 401))
    log_side = lambda lo, hi: int(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if case in (0, 1):  # anything
        return log_side(17, 700), log_side(17, 700), size
    if case == 2:  # very wide or very tall (aspect up to ~40)
        short, long = log_side(17, 60), log_side(200, 700)
        return (long, short, size) if rng.random() < 0.5 else (short, long, size)
    if case == 3:  # short side exactly R, or R x R
        other = CLIP if rng.random() < 0.3 else CLIP + int(rng.integers(1, 120))
        return (CLIP, other, CLIP) if rng.random() < 0.5 else (other, CLIP, CLIP)
    if case == 4:  # smaller than R on both sides: upscaling
        return int(rng.integers(17, CLIP)), int(rng.integers(17, CLIP)), CLIP
    if case == 5:  # short side next to R: downscales by a hair, odd/even crop offsets
        short = int(rng.choice([CLIP - 1, CLIP + 1, CLIP + 2, CLIP + 3]))
        long = short + int(rng.integers(0, 60))  # kept small: these files are the largest
        return (long, short, CLIP) if rng.random() < 0.5 else (short, long, CLIP)
    if case == 6:  # tall (aspect > 2) and downscaled: Pillow 13 resizes vertically first
        w = int(rng.integers(40, 200))
        h = int(rng.integers(2 * w + 5, min(700, 4 * w) + 6))
        return w, h, int(w * rng.uniform(0.3, 0.97))
    return log_side(17, 700), log_side(17, 700), size


def encode(rng, i, rgb):
    """Cycles through the JPEG variants; returns (bytes, description)."""
    variant = (i // 8) % 11
    quality = int(rng.integers(10, 46))

    def save(image, **options):
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=quality, optimize=True, **options)
        return buf.getvalue()

    im = Image.fromarray(rgb)
    if variant == 0:
        return save(im, subsampling=0), "rgb 4:4:4"
    if variant == 1:
        return save(im, subsampling=1), "rgb 4:2:2"
    if variant == 2:
        return save(im, progressive=True), "rgb 4:2:0 progressive"
    if variant == 3:
        return save(im.convert("L")), "grey"
    if variant == 4:
        return save(im.convert("CMYK")), "cmyk (adobe, inverted)"
    if variant == 5:
        return tj_encode(255 - np.asarray(im.convert("CMYK")), TJPF_CMYK, 2, quality), "ycck 4:2:0"
    if variant == 6:
        return tj_encode(rgb, TJPF_RGB, TJSAMP_440, quality), "rgb 4:4:0"
    if variant == 7:
        return tj_encode(rgb, TJPF_RGB, TJSAMP_411, quality), "rgb 4:1:1"
    if variant == 8:
        return save(im, keep_rgb=True, subsampling=0), "rgb colourspace (no YCbCr)"
    if variant == 9:
        return save(im, restart_marker_rows=1), "rgb 4:2:0 restart markers"
    return save(im), "rgb 4:2:0"


# ---------------------------------------------------------------------------------------
# The reference pipeline.

def reference_crop(data, size):
    im = Image.open(io.BytesIO(data))
    pipeline = transforms.Compose([
        transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(size),
    ])
    return np.asarray(pipeline(im).convert("RGB"))


def pillow_pixels(data):
    im = Image.open(io.BytesIO(data))
    a = np.asarray(im)
    return a[..., None] if a.ndim == 2 else a


def crc(a):
    return zlib.crc32(np.ascontiguousarray(a).tobytes()) & 0xFFFFFFFF


def main():
    rng = np.random.default_rng(SEED)
    os.makedirs(f"{OUT}/jpeg", exist_ok=True)
    for stale in [f"jpeg/{n}" for n in os.listdir(f"{OUT}/jpeg")] + \
            [n for n in os.listdir(OUT) if n.startswith("float_")]:
        os.remove(f"{OUT}/{stale}")
    rows, decode_disagree, cmyk_order_differs, cmyk_count = [], 0, 0, 0
    total_bytes, vertical_first = 0, 0
    for i in range(COUNT):
        w, h, size = random_geometry(rng, i)
        data, kind = encode(rng, i, synthetic_rgb(rng, w, h))
        name = f"jpeg/img_{i:03d}.jpg"
        with open(f"{OUT}/{name}", "wb") as f:
            f.write(data)
        total_bytes += len(data)
        pixels = pillow_pixels(data)
        if not np.array_equal(pixels, tj_decode_like_pillow(data)):
            decode_disagree += 1
            print(f"decoders disagree on {name} ({kind})")
        crop = reference_crop(data, size)
        nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
        vertical_first += nw != w and nh < h and 2 * nw - nh > 2 * w - h  # Pillow 13's pass order
        if pixels.shape[2] == 4:  # how much the resize-then-convert order matters
            cmyk_count += 1
            im = Image.open(io.BytesIO(data)).convert("RGB")
            first = transforms.CenterCrop(size)(transforms.Resize(size, transforms.InterpolationMode.BICUBIC)(im))
            cmyk_order_differs += not np.array_equal(np.asarray(first), crop)
        rows.append((name, w, h, pixels.shape[2], size, crc(pixels), crc(crop), kind))

    # A file with damaged entropy data that Pillow still decodes (libjpeg warns, goes on),
    # and one cut short that Pillow refuses.
    base = open(f"{OUT}/jpeg/img_000.jpg", "rb").read()
    sos = base.index(b"\xff\xda")
    damaged = bytearray(base)
    for k in range(6):
        damaged[sos + 40 + 7 * k] ^= 0x5A
    damaged = bytes(damaged)
    pixels = pillow_pixels(damaged)  # raises if Pillow refuses
    with open(f"{OUT}/corrupt_ok.jpg", "wb") as f:
        f.write(damaged)
    rows.append(("corrupt_ok.jpg", pixels.shape[1], pixels.shape[0], pixels.shape[2], CLIP,
                 crc(pixels), crc(reference_crop(damaged, CLIP)), "damaged entropy data"))
    truncated = base[: sos + (len(base) - sos) // 2]
    try:
        pillow_pixels(truncated)
        raise SystemExit("Pillow decoded the truncated file; pick another cut")
    except OSError as e:
        print(f"truncated.jpg: Pillow refuses it ({e})")
    with open(f"{OUT}/truncated.jpg", "wb") as f:
        f.write(truncated)
    png = io.BytesIO()
    Image.fromarray(synthetic_rgb(rng, 20, 10)).save(png, "PNG")
    with open(f"{OUT}/not_a_jpeg.jpg", "wb") as f:
        f.write(png.getvalue())

    with open(f"{OUT}/expected.tsv", "w") as f:
        f.write("# file\twidth\theight\tchannels\tcrop\tdecode_crc32\tcrop_crc32\tkind\n")
        for name, w, h, ch, size, dcrc, ccrc, kind in rows:
            f.write(f"{name}\t{w}\t{h}\t{ch}\t{size}\t{dcrc:08x}\t{ccrc:08x}\t{kind}\n")

    # open_clip's own eval transform, to float32 CHW, for the normalisation check.
    float_size = 32
    transform = open_clip.image_transform(float_size, is_train=False,
                                          mean=open_clip.OPENAI_DATASET_MEAN,
                                          std=open_clip.OPENAI_DATASET_STD)
    for i in (0, 3 * 8 + 2, 4 * 8 + 1, 5 * 8 + 4):  # rgb, grey, cmyk, ycck (wide/small)
        name = f"{OUT}/jpeg/img_{i:03d}.jpg"
        with torch.no_grad():
            t = transform(Image.open(name)).to(torch.float32).contiguous().numpy()
        t.tofile(f"{OUT}/float_{i:03d}_{float_size}.bin")

    print(f"{len(rows)} images, {total_bytes} bytes of JPEG; Pillow {Image.__version__} "
          f"(libjpeg-turbo {features.version('libjpeg_turbo')}) vs Debian libturbojpeg: "
          f"{decode_disagree} decodes differ; CMYK resize-then-convert differs from "
          f"convert-then-resize on {cmyk_order_differs} of {cmyk_count} CMYK/YCCK images; "
          f"{vertical_first} resizes take Pillow 13's vertical-first pass order")


if __name__ == "__main__":
    main()
