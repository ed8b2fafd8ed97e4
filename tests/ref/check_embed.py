"""check_embed.py: end-to-end check of ./tng_embed against transformers.CLIPModel.

    .venv/bin/python tests/ref/check_embed.py MODEL_DIR [--tng-embed ./tng_embed]
    .venv/bin/python tests/ref/check_embed.py --make-tiny DIR   # writes a tiny random model first

Writes a few JPEGs (Pillow) into a temporary folder: some at the model's resolution, some
larger or non-square (so the bicubic resize and center crop are exercised), then runs
tng_embed on them and a few texts, and compares its text output with
  images: torchvision Resize(R, bicubic) -> CenterCrop(R) -> RGB -> ToTensor -> Normalize
          (open_clip's / OpenAI's pipeline), then CLIPModel.get_image_features, L2-normalised;
  texts:  open_clip's SimpleTokenizer ids (== OpenAI clip.tokenize), get_text_features.
Tolerances: 1e-5 max abs for images of the model's resolution (no resampling involved) and
texts, 1e-3 otherwise. Not run by CI (needs torch); run by hand.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

import open_clip
from transformers import CLIPConfig, CLIPModel

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
TEXTS = ["a photo of a cat", "a dog that is not on a sofa", "Hello World!! 2024", "",
         "it's a photo of no bicycle, \"quoted\" & <tagged>"]


def make_tiny(path):
    """A small random CLIPModel with the real vocabulary size (49408) and EOT id."""
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=64, intermediate_size=256,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                         hidden_act="quick_gelu", eos_token_id=49407, bos_token_id=49406),
        vision_config=dict(image_size=64, patch_size=16, hidden_size=64, intermediate_size=256,
                           num_hidden_layers=2, num_attention_heads=2, hidden_act="quick_gelu"),
        projection_dim=32)
    model = CLIPModel(cfg).eval()
    with torch.no_grad():  # every tensor random, so no part of the model is a no-op
        for p in model.parameters():
            p.normal_(0, 0.05)
    model.save_pretrained(path)


def write_images(folder, R):
    rng = np.random.default_rng(1)
    sizes = [(R, R), (R, R), (R + 37, R + 11), (3 * R, R + 5), (R + 2, 2 * R + 9), (R // 2, R // 3)]
    paths = []
    for k, (w, h) in enumerate(sizes):
        # smooth content plus noise: JPEG keeps it, the resize has something to do
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([128 + 100 * np.sin(x / (5 + k)), 128 + 100 * np.cos(y / (7 + k)),
                         128 + 60 * np.sin((x + y) / 9)], -1)
        pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        mode_img = Image.fromarray(pixels)
        if k == 1:
            mode_img = mode_img.convert("L")  # a grayscale JPEG
        path = os.path.join(folder, f"img{k}_{w}x{h}.jpg")
        mode_img.save(path, quality=90)
        paths.append((path, (w, h) == (R, R)))
    return paths


def reference(model, R, image_paths, texts):
    preprocess = transforms.Compose([
        transforms.Resize(R, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(R),
        lambda im: im.convert("RGB"),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    pixels = torch.stack([preprocess(Image.open(p)) for p in image_paths])
    tokenizer = open_clip.tokenizer.SimpleTokenizer()
    ids = tokenizer(texts, context_length=model.config.text_config.max_position_embeddings)
    with torch.no_grad():
        img = model.get_image_features(pixel_values=pixels)
        txt = model.get_text_features(input_ids=ids)
    img = getattr(img, "pooler_output", img)
    txt = getattr(txt, "pooler_output", txt)
    img = torch.nn.functional.normalize(img.double(), dim=-1).numpy()
    txt = torch.nn.functional.normalize(txt.double(), dim=-1).numpy()
    return img, txt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--tng-embed", default="./tng_embed")
    ap.add_argument("--make-tiny", action="store_true", help="write a tiny random model to MODEL_DIR first")
    args = ap.parse_args()
    if args.make_tiny:
        make_tiny(args.model_dir)
    model = CLIPModel.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    R = model.config.vision_config.image_size
    with tempfile.TemporaryDirectory() as folder:
        images = write_images(folder, R)
        cmd = [args.tng_embed, "--model", args.model_dir]
        for path, _ in images:
            cmd += ["--image", path]
        for t in TEXTS:
            cmd += ["--text", t]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
        img_ref, txt_ref = reference(model, R, [p for p, _ in images], TEXTS)
    expected = [("image", p, img_ref[k], 1e-5 if exact else 1e-3) for k, (p, exact) in enumerate(images)]
    expected += [("text", t, txt_ref[k], 1e-5) for k, t in enumerate(TEXTS)]
    assert len(out) == len(expected), f"{len(out)} lines for {len(expected)} inputs"
    worst_fail = 0
    for line, (kind, value, ref, tol) in zip(out, expected):
        fields = line.split("\t")
        assert fields[0] == kind and fields[1] == value, f"line for {kind} {value!r} reads {fields[:2]}"
        got = np.array([float(v) for v in fields[2:]])
        assert got.shape == ref.shape, f"{value}: {got.shape} components, expected {ref.shape}"
        err = np.abs(got - ref).max()
        status = "ok" if err <= tol else "FAIL"
        worst_fail += err > tol
        print(f"{status:4} {kind:5} max|diff| {err:.2e} (tol {tol:.0e})  {os.path.basename(value) if kind == 'image' else repr(value)}")
    print(f"D = {ref.shape[0]}, R = {R}: {len(expected) - worst_fail}/{len(expected)} within tolerance")
    sys.exit(1 if worst_fail else 0)


if __name__ == "__main__":
    main()
