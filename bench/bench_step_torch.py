"""bench_step_torch.py: open_clip's fp32 CPU training step on the same config, batch,
caption length and thread count as build/bench/bench_step, for a side-by-side ratio.

    .venv/bin/python bench/bench_step_torch.py --config tiny --batch 32 --threads 2 \
        [--context-length 17]
    .venv/bin/python bench/bench_step_torch.py --sgemm --threads 2   # torch.mm 2048^3, BLAS

The model is open_clip's CLIP built from the tng preset's numbers (quick_gelu), trained with
its ClipLoss and torch.optim.AdamW, so the step does the same work as tng's: forward, loss,
backward, optimizer. By default open_clip runs all 77 text positions; tng cuts the batch to
max(EOT)+1 = caption tokens + 1. For equal work, either run bench_step with --full-context,
or give open_clip that cut as its context length (--context-length 17 for 16-token captions:
a shorter positional table and causal mask, the same computation on the positions tng keeps).
bench/step_vs_open_clip.sh runs all four side by side.
"""
import argparse
import time

import torch
import open_clip
from open_clip.loss import ClipLoss

PRESETS = {  # tng's host/config.c presets, in open_clip's terms
    "tiny": dict(embed_dim=128, vision=(64, 16, 128, 4, 4), text=(128, 4, 4)),
    "vit-b-32": dict(embed_dim=512, vision=(224, 32, 768, 12, 12), text=(512, 8, 12)),
}


def build(name, context_length):
    p = PRESETS[name]
    image_size, patch, vwidth, vlayers, vheads = p["vision"]
    twidth, theads, tlayers = p["text"]
    vision_cfg = open_clip.CLIPVisionCfg(layers=vlayers, width=vwidth, head_width=vwidth // vheads,
                                         patch_size=patch, image_size=image_size)
    text_cfg = open_clip.CLIPTextCfg(context_length=context_length, vocab_size=49408, width=twidth,
                                     heads=theads, layers=tlayers)
    return open_clip.CLIP(p["embed_dim"], vision_cfg, text_cfg, quick_gelu=True)


def sgemm(threads, n=2048, reps=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    seconds = time.perf_counter() - t0
    blas = "MKL" if torch.backends.mkl.is_available() else "not MKL"
    print(f"torch sgemm {n}^3, {threads} threads ({blas}): {2 * n ** 3 * reps / seconds / 1e9:.1f} GFLOP/s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--caption-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--context-length", type=int, default=77)
    ap.add_argument("--freeze-vision", action="store_true")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with the process's CPU time (as bench_step --cpu-time)")
    ap.add_argument("--sgemm", action="store_true",
                    help="time torch.mm at 2048^3 (PyTorch's BLAS) and exit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.sgemm:
        sgemm(args.threads)
        return
    if not args.caption_tokens < args.context_length:
        ap.error("--caption-tokens must be < --context-length (the EOT token needs a position)")
    torch.manual_seed(0)
    model = build(args.config, args.context_length)
    if args.freeze_vision:
        for p in model.visual.parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
    loss_fn = ClipLoss()
    size = PRESETS[args.config]["vision"][0]
    images = torch.randn(args.batch, 3, size, size)
    tokens = torch.zeros(args.batch, args.context_length, dtype=torch.long)
    tokens[:, 0] = 49406
    tokens[:, 1:args.caption_tokens] = torch.randint(1, 40000, (args.batch, args.caption_tokens - 1))
    tokens[:, args.caption_tokens] = 49407
    clock = time.process_time if args.cpu_time else time.perf_counter
    total = 0.0
    for step in range(args.steps + 1):  # step 0 warms up
        t0 = clock()
        img, txt, scale = model(images, tokens)
        loss = loss_fn(img, txt, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step > 0:
            total += clock() - t0
    step_s = total / args.steps
    print(f"open_clip config={args.config} batch={args.batch} threads={args.threads} "
          f"context_length={args.context_length} torch={torch.__version__}")
    print(f"step {step_s * 1e3:.1f} ms  {args.batch / step_s:.1f} pairs/s")


if __name__ == "__main__":
    main()
