#!/usr/bin/env python3
"""negation_gap.py: does a model read "no X" as the absence of X, or as a mention of X?

For every object kind of a filepath,caption,objects CSV (the synthetic world's test.csv), a
sentence that affirms the kind and two that deny it are embedded (tng_embed) with the CSV's
images. A sentence's gap is its mean cosine with the images that hold the kind minus its mean
cosine with those that do not, averaged over the kinds. An affirmation should have a positive gap
and a negation a negative one: a negation with a positive gap, near the affirmation's, is read
as a mention. "There is no X." is a training-time frame of --standalone-negations; "In this
image there is not any X." is a held-out (std) MCQ frame. Also printed: the mean cosine between
each kind's affirmation and its denial (1 = the negation word changes nothing).

usage: python3 data/negation_gap.py CSV MODEL_DIR [MODEL_DIR...] [--limit N images, default 400]
"""
import csv
import os
import sys

from mcq_confusions import embed, parse_args

SENTENCES = [("affirmed", "There is a {}."), ("denied", "There is no {}."),
             ("denied, held-out frame", "In this image there is not any {}.")]


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def kind_gaps(images, objects, kinds, image_emb, text_emb):
    """Per sentence, the mean over kinds of (mean cosine with the images holding the kind) -
    (mean cosine with those lacking it); text_emb holds each sentence's kinds in order.
    Returns (gaps, cos(affirmed, denied)); None when a kind is in all or none of the images."""
    gaps = []
    for s in range(len(text_emb) // len(kinds)):
        total = 0.0
        for k, kind in enumerate(kinds):
            t = text_emb[s * len(kinds) + k]
            has = [dot(e, t) for p, e in zip(images, image_emb) if kind in objects[p]]
            lacks = [dot(e, t) for p, e in zip(images, image_emb) if kind not in objects[p]]
            if not has or not lacks:
                return None
            total += sum(has) / len(has) - sum(lacks) / len(lacks)
        gaps.append(total / len(kinds))
    same = sum(dot(text_emb[k], text_emb[len(kinds) + k]) for k in range(len(kinds))) / len(kinds)
    return gaps, same


def main():
    csv_path, models, limit, root, tng_embed = parse_args(__doc__, 400)
    objects = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if "objects" not in row:
                sys.exit(f"{csv_path}: no objects column")
            objects.setdefault(row["filepath"], set(row["objects"].split(";")))
    images = list(objects)[:limit]
    kinds = sorted({k for p in images for k in objects[p]})
    texts = [frame.format(k) for _, frame in SENTENCES for k in kinds]
    print(f"{csv_path}: {len(images)} images, {len(kinds)} kinds; mean cosine gap, images with the "
          "kind minus without (a negation should be negative)\n")
    print("| model | " + " | ".join(name for name, _ in SENTENCES) + " | cos(affirmed, denied) |")
    print("|---|" + "---:|" * (len(SENTENCES) + 1))
    for model in models:
        emb = embed(tng_embed, model, [os.path.join(root, p) for p in images], texts)
        image_emb, text_emb = emb[:len(images)], emb[len(images):]
        result = kind_gaps(images, objects, kinds, image_emb, text_emb)
        if result is None:
            sys.exit(f"{csv_path}: a kind is in all or none of the first {len(images)} images")
        gaps, same = result
        print(f"| {model} | " + " | ".join(f"{g:+.3f}" for g in gaps) + f" | {same:.3f} |")


if __name__ == "__main__":
    main()
