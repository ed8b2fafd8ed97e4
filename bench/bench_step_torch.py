"""bench_step_torch.py: open_clip's fp32 CPU training step on the same config, batch,
caption length and thread count as build/bench/bench_step, for a side-by-side ratio.

    .venv/bin/python bench/bench_step_torch.py --config tiny --batch 32 --threads 2

The model is open_clip's CLIP built from the tng preset's numbers (quick_gelu), trained with
its ClipLoss and torch.optim.AdamW, so the step does the same work as tng's: forward, loss,
backward, optimizer. open_clip always runs all 77 text positions; tng cuts the batch to
max(EOT)+1, so bench_step is also run with --full-context to separate the two effects.
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


def build(name):
    p = PRESETS[name]
    image_size, patch, vwidth, vlayers, vheads = p["vision"]
    twidth, theads, tlayers = p["text"]
    vision_cfg = open_clip.CLIPVisionCfg(layers=vlayers, width=vwidth, head_width=vwidth // vheads,
                                         patch_size=patch, image_size=image_size)
    text_cfg = open_clip.CLIPTextCfg(context_length=77, vocab_size=49408, width=twidth,
                                     heads=theads, layers=tlayers)
    return open_clip.CLIP(p["embed_dim"], vision_cfg, text_cfg, quick_gelu=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--caption-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--freeze-vision", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.config)
    if args.freeze_vision:
        for p in model.visual.parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
    loss_fn = ClipLoss()
    size = PRESETS[args.config]["vision"][0]
    images = torch.randn(args.batch, 3, size, size)
    tokens = torch.zeros(args.batch, 77, dtype=torch.long)
    tokens[:, 0] = 49406
    tokens[:, 1:args.caption_tokens] = torch.randint(1, 40000, (args.batch, args.caption_tokens - 1))
    tokens[:, args.caption_tokens] = 49407
    total = 0.0
    for step in range(args.steps + 1):  # step 0 warms up
        t0 = time.perf_counter()
        img, txt, scale = model(images, tokens)
        loss = loss_fn(img, txt, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step > 0:
            total += time.perf_counter() - t0
    step_s = total / args.steps
    print(f"open_clip config={args.config} batch={args.batch} threads={args.threads} "
          f"torch={torch.__version__}")
    print(f"step {step_s * 1e3:.1f} ms  {args.batch / step_s:.1f} pairs/s")


if __name__ == "__main__":
    main()
