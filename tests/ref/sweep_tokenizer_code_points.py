"""
sweep_tokenizer_code_points.py: puts every Unicode code point through open_clip's tokenizer
and ./tng_tokenize in three contexts and lists where they disagree, grouped by cause.
A by-hand check (3 minutes of Python), wider than the committed corpus:

    .venv/bin/python tests/ref/sweep_tokenizer_code_points.py [--bin ./tng_tokenize] [--step 1]

Contexts for each code point c: between letters, digits and punctuation; next to capital
sigmas and after an apostrophe (final sigma, case-ignorable, "'s"); after "&amp" and inside
"&#3...;" and upper-cased (html prefixes, case mapping). Expected disagreements, both
documented in host/text/clean.c: code points Python 3.11 (Unicode 14) leaves unassigned
("Cn": utf8proc and the regex module know newer Unicode), and mojibake that ftfy repairs.
"""
import argparse
import collections
import os
import subprocess
import unicodedata

import ftfy
from open_clip.tokenizer import SimpleTokenizer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTEXTS = (lambda c: "a" + c + "b 1" + c + "2 !" + c + "? " + c,
            lambda c: "ΑΣ" + c + "Β " + c + "Σ x'" + c,
            lambda c: "&amp" + c + " &#3" + c + "; X" + c.upper())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=os.path.join(REPO_ROOT, "tng_tokenize"))
    parser.add_argument("--step", type=int, default=1, help="test every step-th code point")
    args = parser.parse_args()
    tokenizer = SimpleTokenizer()
    texts, points = [], []
    for c in range(1, 0x110000, args.step):
        if 0xD800 <= c <= 0xDFFF or c == 10:
            continue
        for context in CONTEXTS:
            text = context(chr(c))
            if "\n" not in text:
                texts.append(text)
                points.append(c)
    data = b"".join(t.encode("utf-8") + b"\n" for t in texts)
    got = subprocess.run([args.bin, "--context", "100000"], input=data, stdout=subprocess.PIPE,
                         check=True).stdout.decode().split("\n")
    causes = collections.defaultdict(set)
    for text, c, line in zip(texts, points, got):
        want = " ".join(map(str, [49406] + tokenizer.encode(text) + [49407]))
        if line != want:
            mojibake = ftfy.fix_text(text) != ftfy.fix_text(text, fix_encoding=False)
            causes["mojibake" if mojibake else unicodedata.category(chr(c))].add(c)
    print("%d strings, %d code points" % (len(texts), len(set(points))))
    for cause, cps in sorted(causes.items(), key=lambda kv: -len(kv[1])):
        print("%-9s %6d code points: %s" % (cause, len(cps), " ".join("%04X" % c for c in sorted(cps)[:16])))
    unexpected = {k: v for k, v in causes.items() if k not in ("Cn", "mojibake")}
    print("unexpected disagreements: %d code points" % sum(len(v) for v in unexpected.values()))


if __name__ == "__main__":
    main()
