"""Pillow side of the image preprocessing benchmark (bench/bench_image.sh runs both sides).

    bench_image.py make DIR [COUNT]   write COCO-like JPEGs: 640x480 / 480x640 / 500x375 /
                                      427x640 ..., quality 90, 1/f ("pink") noise content
    bench_image.py run DIR [R]        single-thread images/s of open_clip's eval transform
                                      (torchvision Resize + CenterCrop + convert + ToTensor +
                                      Normalize), of the same steps in PIL + numpy, and of
                                      Pillow's decode alone (Image.open + load)

All timings read the files into memory first and count the process's CPU time (one thread),
as bench_image.c does. The PIL imported is
whichever comes first on sys.path: put Pillow-SIMD's folder on PYTHONPATH to time it.
"""

import io
import os
import sys
import time

import numpy as np
import PIL
from PIL import Image

COCO_SIZES = [(640, 480), (480, 640), (640, 427), (500, 375), (427, 640), (640, 360), (612, 612)]
MEAN = np.array((0.48145466, 0.4578275, 0.40821073), np.float32)
STD = np.array((0.26862954, 0.26130258, 0.27577711), np.float32)


def pink_noise_rgb(rng, w, h):
    """Natural-image-like content: a 1/f amplitude spectrum with random phases, per channel
    correlated through a shared base, plus a few hard-edged shapes."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / max(w, h))
    def field():
        phase = rng.uniform(0, 2 * np.pi, amplitude.shape)
        f = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(h, w))
        return (f - f.mean()) / f.std()
    base = field()
    img = np.stack([base + 0.5 * field() for _ in range(3)], -1) * 40 + rng.uniform(60, 190, 3)
    for _ in range(rng.integers(2, 6)):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        img[y0:y0 + rng.integers(10, h // 2), x0:x0 + rng.integers(10, w // 2)] = rng.uniform(0, 255, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def make(directory, count):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(2026)
    for i in range(count):
        w, h = COCO_SIZES[i % len(COCO_SIZES)]
        Image.fromarray(pink_noise_rgb(rng, w, h)).save(f"{directory}/coco_like_{i:04d}.jpg", quality=90)


def best_rate(blobs, fn, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for blob in blobs:
            fn(blob)
        best = min(best, time.process_time() - t0)
    return len(blobs) / best


def run(directory, r):
    import open_clip
    import torch
    torch.set_num_threads(1)
    names = sorted(n for n in os.listdir(directory) if n.endswith(".jpg"))
    blobs = [open(f"{directory}/{n}", "rb").read() for n in names]
    transform = open_clip.image_transform(r, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN,
                                          std=open_clip.OPENAI_DATASET_STD)

    def torchvision_path(blob):
        with torch.no_grad():
            return transform(Image.open(io.BytesIO(blob)))

    def pil_numpy_path(blob):
        im = Image.open(io.BytesIO(blob))
        w, h = im.size
        nw, nh = (r, int(r * h / w)) if w <= h else (int(r * w / h), r)
        im = im.resize((nw, nh), Image.BICUBIC)
        top, left = int(round((nh - r) / 2.0)), int(round((nw - r) / 2.0))
        im = im.crop((left, top, left + r, top + r)).convert("RGB")
        x = np.asarray(im, np.float32) / np.float32(255)
        return ((x - MEAN) / STD).transpose(2, 0, 1).copy()

    def decode_only(blob):
        Image.open(io.BytesIO(blob)).load()

    from PIL import features
    print(f"images {len(blobs)}, R {r}, single thread (best of 3), PIL {PIL.__version__} "
          f"from {os.path.dirname(PIL.__file__)}, libjpeg-turbo {features.version('libjpeg_turbo')}")
    for name, fn in (("Pillow + torchvision (open_clip transform)", torchvision_path),
                     ("Pillow + numpy (same steps)", pil_numpy_path),
                     ("Pillow decode only", decode_only)):
        rate = best_rate(blobs, fn)
        print(f"{name}: {rate:.1f} images/s ({1000 / rate:.2f} ms each)")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 200)
    elif len(sys.argv) >= 3 and sys.argv[1] == "run":
        run(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 224)
    else:
        sys.exit(__doc__)
