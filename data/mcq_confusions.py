#!/usr/bin/env python3
"""mcq_confusions.py: which option a model picks in the synthetic world's MCQ questions.

The synthetic world writes every question with its options in fixed roles (host/synth/synth.c,
make_mcq): 0 the correct one, 1 the roles swapped (absent object stated, a present one denied),
2 the absent object affirmed, 3 a present object denied. So the pick histogram per question type
says WHAT a model confuses, not only how often it is wrong. The mean cosine of each role, and the
mean gap between a question's best and worst option, show a collapse of the text embeddings
(every option equally far from the image) that accuracy alone hides. Embeddings come from
tng_embed (pure Python here: no numpy needed).

usage: python3 data/mcq_confusions.py MCQ_CSV MODEL_DIR [MODEL_DIR...] [--limit N]
"""
import csv
import os
import subprocess
import sys

ROLES = ["correct", "swapped", "absent affirmed", "present denied"]


def embed(tng_embed, model, images, texts):
    """L2-normalised embeddings of images then texts, as lists of floats, in order."""
    cmd = [tng_embed, "--model", model]
    for path in images:
        cmd += ["--image", path]
    for text in texts:
        cmd += ["--text", text]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return [[float(x) for x in row[2:]] for row in rows]


def parse_args(usage, limit):
    """CSV MODEL_DIR... [--limit N] from the command line: (csv_path, models, limit, the CSV's
    folder, the tng_embed to run: $TNG_EMBED or ./tng_embed); exits with usage when short."""
    argv = sys.argv[1:]
    if "--limit" in argv:
        k = argv.index("--limit")
        limit = int(argv[k + 1])
        del argv[k:k + 2]
    if len(argv) < 2:
        sys.exit(usage)
    return argv[0], argv[1:], limit, os.path.dirname(argv[0]), os.environ.get("TNG_EMBED", "./tng_embed")


def main():
    csv_path, models, limit, root, tng_embed = parse_args(__doc__, None)
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))[:limit]
    for row in rows:
        if row["correct_answer"] != "0":
            sys.exit(f"{csv_path}: expected the synthetic world's fixed option roles (correct_answer 0)")
    images = sorted({row["image_path"] for row in rows})
    texts = sorted({row[f"caption_{o}"] for row in rows for o in range(4)})
    types = sorted({row["correct_answer_template"] for row in rows})
    print(f"{csv_path}: {len(rows)} questions; % of questions picking each option role "
          "(mean cosine of the role in brackets); gap = mean best-minus-worst option cosine\n")
    print("| model | type | " + " | ".join(ROLES) + " | gap |")
    print("|---|---|" + "---:|" * (len(ROLES) + 1))
    for model in models:
        emb = embed(tng_embed, model, [os.path.join(root, p) for p in images], texts)
        image_emb = dict(zip(images, emb[:len(images)]))
        text_emb = dict(zip(texts, emb[len(images):]))
        picks = {t: [0] * 4 for t in types}
        cosines = {t: [0.0] * 4 for t in types}
        gaps = {t: 0.0 for t in types}
        for row in rows:
            v = image_emb[row["image_path"]]
            scores = [sum(a * b for a, b in zip(v, text_emb[row[f"caption_{o}"]])) for o in range(4)]
            kind = row["correct_answer_template"]
            picks[kind][scores.index(max(scores))] += 1
            for o in range(4):
                cosines[kind][o] += scores[o]
            gaps[kind] += max(scores) - min(scores)
        for t in types:
            n = sum(picks[t])
            print(f"| {os.path.basename(model.rstrip('/'))} | {t} | " +
                  " | ".join(f"{100 * p / n:.1f} ({c / n:+.3f})" for p, c in zip(picks[t], cosines[t])) +
                  f" | {gaps[t] / n:.3f} |")


if __name__ == "__main__":
    main()
