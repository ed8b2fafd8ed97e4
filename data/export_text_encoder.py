#!/usr/bin/env python3
"""export_text_encoder.py: a tng checkpoint's text tower as a diffusers-loadable text encoder.

    python data/export_text_encoder.py CKPT_DIR OUT_DIR [--with-projection] [--vocab GZ]

CKPT_DIR is an HF CLIPModel directory as tng writes it (a run folder, whose `latest` names
the newest checkpoint, or one ckpt-<step> folder). OUT_DIR receives the two components a
Stable Diffusion pipeline takes from its repository layout:

    OUT_DIR/text_encoder/  config.json + model.safetensors  (transformers.CLIPTextModel,
                           or CLIPTextModelWithProjection with --with-projection: SD-XL's
                           text_encoder_2 uses that class)
    OUT_DIR/tokenizer/     vocab.json + merges.txt (+ tokenizer config), built offline from
                           CLIP's BPE file, so no model hub is needed

Design choice: the exported weights are the CLIPModel's own text_model tensors, copied by
name through transformers (no renaming by hand), and the export checks itself: after
saving, it reloads both components from disk and requires the text encoder's hidden states
and pooled output to equal the full model's bit for bit, and the tokenizer's ids to equal
tng's tokenizer on sample prompts (when ./tng_tokenize is built).

Fit: SD 1.5 conditions on ViT-L/14's text tower (width 768), SD-XL on ViT-L/14 plus OpenCLIP
ViT-bigG/14 (1280). A ViT-B/32 text encoder (width 512) does not fit either UNet's
cross-attention; a drop-in replacement for SD 1.5 needs a TNG fine-tune of
openai/clip-vit-large-patch14 (the script warns when the width is not 768).
"""
import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys

SD15_TEXT_WIDTH = 768  # ViT-L/14's text tower: what SD 1.5's UNet cross-attends to
DEFAULT_VOCAB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cache", "bpe_simple_vocab_16e6.txt.gz")
SAMPLE_PROMPTS = [
    "a kitchen table with no fruit on it",
    "A beach without any people, at sunset.",
    "There is no dog in this living room; only a sofa & two lamps",
    "a street with 3 parked cars but not a single bicycle",
]


def resolve_checkpoint(path):
    """A run folder's `latest` names its newest checkpoint; anything else is used as given."""
    latest = os.path.join(path, "latest")
    if os.path.isfile(latest):
        with open(latest) as f:
            name = f.read().strip()
        path = name if os.path.isabs(name) else os.path.join(path, name)
    for needed in ("config.json", "model.safetensors"):
        if not os.path.isfile(os.path.join(path, needed)):
            sys.exit(f"export: {path}: no {needed}; expected an HF CLIPModel folder, a tng checkpoint or run folder")
    return path


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character table, in its fixed order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def build_vocab_and_merges(vocab_gz):
    """CLIP's vocabulary from the BPE file (docs/REFERENCE.md §4, tokenizer): 256 byte
    symbols, the same with </w>, one entry per merge, then the two special tokens under HF's
    names."""
    if not os.path.isfile(vocab_gz):
        sys.exit(f"export: {vocab_gz}: missing; fetch it with `make vocab` (data/get_vocab.sh)")
    with gzip.open(vocab_gz, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    if len(merges) != 48894 or any(len(m) != 2 for m in merges):
        sys.exit(f"export: {vocab_gz}: expected 48894 merge lines of two symbols each")
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != 49408:
        sys.exit(f"export: {vocab_gz}: built {len(vocab)} distinct tokens, expected 49408")
    return vocab, merges


def export_tokenizer(vocab_gz, out_dir, context):
    from transformers import CLIPTokenizer

    vocab, merges = build_vocab_and_merges(vocab_gz)
    os.makedirs(out_dir, exist_ok=True)
    # the classic two files, which every transformers release (and diffusers) can load from
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    # pad with <|endoftext|> as SD's own tokenizer does: SD cross-attends to all 77 positions
    tok = CLIPTokenizer.from_pretrained(out_dir, model_max_length=context, pad_token="<|endoftext|>")
    tok.save_pretrained(out_dir)  # adds tokenizer_config.json (and tokenizer.json where supported)


def export_text_encoder(ckpt, out_dir, with_projection):
    import torch
    from transformers import CLIPModel, CLIPTextModel, CLIPTextModelWithProjection

    full = CLIPModel.from_pretrained(ckpt, dtype=torch.float32).eval()
    # transformers maps the CLIPModel's text_model.* (and text_projection) tensors onto the
    # text-only class itself; check_text_encoder proves nothing was left at random init
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    text = cls.from_pretrained(ckpt, dtype=torch.float32)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    text.save_pretrained(out_dir, safe_serialization=True)
    return full


def check_text_encoder(full, out_dir, with_projection, tokenizer_dir, context):
    """Reloads the export from disk; its outputs must equal the full model's exactly."""
    import torch
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    text = cls.from_pretrained(out_dir, dtype=torch.float32).eval()
    tok = CLIPTokenizer.from_pretrained(tokenizer_dir)
    ids = tok(SAMPLE_PROMPTS, padding="max_length", max_length=context, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        want = full.text_model(input_ids=ids)
        got = text(input_ids=ids)
        pairs = [("last_hidden_state", got.last_hidden_state, want.last_hidden_state)]
        if with_projection:
            pairs.append(("text_embeds", got.text_embeds, full.text_projection(want.pooler_output)))
        else:
            pairs.append(("pooler_output", got.pooler_output, want.pooler_output))
    for name, a, b in pairs:
        diff = (a - b).abs().max().item()
        if diff != 0.0:
            sys.exit(f"export check: {name} differs from the full model's by {diff:g}")
        print(f"check: {name} {tuple(a.shape)} identical to the full CLIPModel's")
    return tok


def check_tokenizer_against_tng(tok, tng_tokenize, context):
    """HF's ids (no padding) must equal tng's (open_clip's) on the sample prompts."""
    if not (tng_tokenize and os.access(tng_tokenize, os.X_OK)):
        print("check: tokenizer ids not compared (tng_tokenize not built)")
        return
    out = subprocess.run([tng_tokenize, "--context", str(context)], input="\n".join(SAMPLE_PROMPTS) + "\n",
                         capture_output=True, text=True, check=True).stdout.split("\n")
    for prompt, line in zip(SAMPLE_PROMPTS, out):
        tng_ids = [int(x) for x in line.split()]
        tng_ids = tng_ids[: tng_ids.index(49407) + 1]  # tng pads with 0 after EOT; compare up to it
        hf_ids = tok(prompt).input_ids
        if hf_ids != tng_ids:
            sys.exit(f"export check: tokenizer ids differ on {prompt!r}:\n  hf  {hf_ids}\n  tng {tng_ids}")
    print(f"check: tokenizer ids equal tng_tokenize's on {len(SAMPLE_PROMPTS)} prompts")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt_dir", help="HF CLIPModel folder, tng checkpoint (ckpt-N) or tng run folder")
    p.add_argument("out_dir", help="receives text_encoder/ and tokenizer/")
    p.add_argument("--with-projection", action="store_true",
                   help="save CLIPTextModelWithProjection (SD-XL text_encoder_2 style) instead of CLIPTextModel")
    p.add_argument("--vocab", default=DEFAULT_VOCAB, help="CLIP BPE file (default data/cache/...)")
    p.add_argument("--tng-tokenize", default=os.path.join(os.path.dirname(DEFAULT_VOCAB), "..", "..", "tng_tokenize"),
                   help="tng_tokenize program for the tokenizer cross-check (default ./tng_tokenize)")
    p.add_argument("--no-check", action="store_true", help="skip the reload-and-compare checks")
    a = p.parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # loading a text tower from a CLIPModel lists every vision tensor

    ckpt = resolve_checkpoint(a.ckpt_dir)
    with open(os.path.join(ckpt, "config.json")) as f:
        text_cfg = json.load(f).get("text_config", {})
    width, context = text_cfg.get("hidden_size"), text_cfg.get("max_position_embeddings", 77)
    if width != SD15_TEXT_WIDTH:
        print(f"note: text width {width}: not a drop-in for SD 1.5 (needs {SD15_TEXT_WIDTH}, ViT-L/14) "
              f"or SD-XL (ViT-L/14 + OpenCLIP bigG/14); fine-tune openai/clip-vit-large-patch14 for that",
              file=sys.stderr)
    enc_dir, tok_dir = os.path.join(a.out_dir, "text_encoder"), os.path.join(a.out_dir, "tokenizer")
    full = export_text_encoder(ckpt, enc_dir, a.with_projection)
    export_tokenizer(a.vocab, tok_dir, context)
    print(f"exported {ckpt} -> {enc_dir} and {tok_dir}")
    if not a.no_check:
        tok = check_text_encoder(full, enc_dir, a.with_projection, tok_dir, context)
        check_tokenizer_against_tng(tok, os.path.normpath(a.tng_tokenize), context)


if __name__ == "__main__":
    main()
