"""
bench_tokenizer.py: captions/s of three CLIP tokenizers on the same texts, in one run.

  C        ./tng_tokenize (one thread) fed the texts on stdin, output to a pipe; timed from
           outside, so process start, vocabulary load (~0.1-0.2 s, measured apart on empty
           input), parsing and printing all count. Given the texts PASSES times in one process,
           so the load is spread as it is in a training run.
  open_clip  open_clip.get_tokenizer('ViT-B-32')(texts), a fresh instance (its word cache
           starts empty, as in a training run), batches of 1024.
  HF fast  transformers.CLIPTokenizerFast built locally from the same vocabulary (vocab.json
           and merges.txt written from the .gz; no hub access), batches of 1024, padded and
           truncated to 77 like open_clip; and its Rust core alone (backend_tokenizer.encode_batch,
           no padding). Both run batches on all cores (rayon).
Each rate is given twice: by wall time, and by CPU time (all threads; the child's for C), which
is steadier on a machine shared with other jobs; HF's CPU / wall says how many cores it used.
The four sides run in rotating order over --rounds rounds, and every rate and ratio is the
median [min..max] over the rounds (ratios paired within a round, as bench/paired.py does).
Texts: the parity corpus (tests/fixtures/tokenizer/inputs.txt.gz), whole and its COCO-like
caption family alone. It also reports how often HF fast agrees with open_clip's ids.

    .venv/bin/python bench/bench_tokenizer.py [--bin ./tng_tokenize] [--rounds 5]
"""
import argparse
import gzip
import json
import os
import resource
import subprocess
import tempfile
import time

import open_clip
from transformers import CLIPTokenizerFast

from paired import spread  # median [min..max]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(REPO_ROOT, "tests", "fixtures", "tokenizer", "inputs.txt.gz")
VOCAB = os.path.join(REPO_ROOT, "data", "cache", "bpe_simple_vocab_16e6.txt.gz")
NUM_CAPTIONS = 63000  # the caption family comes first in the corpus
BATCH = 1024
PASSES = 10
EOT = 49407


def child_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Timer:
    """Wall and CPU seconds of a block; cpu_fn says whose CPU time counts."""

    def __init__(self, cpu_fn=time.process_time):
        self.cpu_fn = cpu_fn

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), self.cpu_fn()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, self.cpu_fn() - self.cpu


def time_c(binary, records, passes=1):
    data = b"".join(r + b"\n" for r in records) * passes
    with Timer(child_cpu) as t:
        out = subprocess.run([binary], input=data, stdout=subprocess.PIPE, check=True).stdout
    assert out.count(b"\n") == len(records) * passes
    return t, out[:len(out) // passes]


def time_open_clip(texts):
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    rows = []
    with Timer() as t:
        for i in range(0, len(texts), BATCH):
            rows.extend(tokenizer(texts[i:i + BATCH]).tolist())
    return t, rows


def build_hf_fast(tmp):
    """CLIPTokenizerFast from the open_clip vocabulary, through local files only."""
    simple = open_clip.tokenizer.SimpleTokenizer(VOCAB)
    lines = gzip.open(VOCAB).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    encoder = dict(simple.encoder)  # HF spells the two special tokens differently
    encoder["<|startoftext|>"] = encoder.pop("<start_of_text>")
    encoder["<|endoftext|>"] = encoder.pop("<end_of_text>")
    with open(os.path.join(tmp, "vocab.json"), "w") as f:
        json.dump(encoder, f)
    with open(os.path.join(tmp, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "\n".join(lines) + "\n")
    return CLIPTokenizerFast.from_pretrained(tmp, local_files_only=True)


def time_hf(tokenizer, texts):
    rows = []
    with Timer() as t:
        for i in range(0, len(texts), BATCH):
            rows.extend(tokenizer(texts[i:i + BATCH], padding="max_length", max_length=77, truncation=True)["input_ids"])
    return t, rows


def time_hf_core(tokenizer, texts):
    with Timer() as t:
        for i in range(0, len(texts), BATCH):
            tokenizer.backend_tokenizer.encode_batch(texts[i:i + BATCH])
    return t


def measure_round(args, hf, records, texts, n, order):
    """One round on the first n texts, the sides in the given order: wall and CPU rates."""
    timed, rows = {}, {}
    for side in order:
        if side == "C":
            timed[side], rows[side] = time_c(args.bin, records[:n], PASSES)
        elif side == "open_clip":
            timed[side], rows[side] = time_open_clip(texts[:n])
        elif side == "HF":
            timed[side], rows[side] = time_hf(hf, texts[:n])
        else:
            timed[side] = time_hf_core(hf, texts[:n])
    passes = {"C": PASSES}
    rates = {side: (passes.get(side, 1) * n / t.wall, passes.get(side, 1) * n / t.cpu)
             for side, t in timed.items()}
    cores = timed["HF"].cpu / timed["HF"].wall
    return rates, rows, cores


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=os.path.join(REPO_ROOT, "tng_tokenize"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    records = gzip.open(CORPUS).read().split(b"\n")[:-1]
    texts = [r.decode("utf-8", errors="replace") for r in records]
    load, _ = time_c(args.bin, [])
    with tempfile.TemporaryDirectory() as tmp:
        hf = build_hf_fast(tmp)

    sides = ["C", "open_clip", "HF", "HF core"]
    print("texts/s by wall time / by CPU time, median [min..max] over %d rounds (1-min load "
          "average %.2f at the start); C is one thread" % (args.rounds, os.getloadavg()[0]))
    print("| texts | n | C tng_tokenize x%d | open_clip (Python) | HF CLIPTokenizerFast | HF Rust core | "
          "C / open_clip | C / HF | C / HF core | HF cores used |" % PASSES)
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, n in (("COCO-like captions", NUM_CAPTIONS), ("whole parity corpus", len(records))):
        per_round = []
        for r in range(args.rounds):
            order = sides[r % 4:] + sides[:r % 4]
            rates, rows, cores = measure_round(args, hf, records, texts, n, order)
            per_round.append((rates, cores))
            if r == 0:
                first_rows = rows
        cells = ["%s / %s" % tuple(spread([rates[side][k] for rates, _ in per_round]) for k in (0, 1))
                 for side in sides]
        ratios = ["%sx / %sx" % tuple(spread([rates["C"][k] / rates[side][k] for rates, _ in per_round])
                                      for k in (0, 1)) for side in sides[1:]]
        cores = spread([c for _, c in per_round])
        print("| %s | %d | %s | %s | %s |" % (name, n, " | ".join(cells), " | ".join(ratios), cores))
        c_rows = [list(map(int, line.split())) for line in first_rows["C"].decode().split("\n")[:-1]]
        oc_ids = [row[:len(row) - row[::-1].index(EOT)] for row in first_rows["open_clip"]]  # zeros pad after the last EOT
        hf_ids = [row[:row.index(EOT) + 1] for row in first_rows["HF"]]  # HF pads with EOT itself
        print("| strings with open_clip's ids | | %d | %d (reference) | %d | | | | | |"
              % (sum(a == b for a, b in zip(c_rows, oc_ids)), n, sum(a == b for a, b in zip(hf_ids, oc_ids))))
    print("\nC vocabulary load (tng_tokenize on empty input): %.3f s wall, %.3f s CPU; included above"
          % (load.wall, load.cpu))
    print("1-min load average at the end: %.2f" % os.getloadavg()[0])


if __name__ == "__main__":
    main()
