"""bench_step_gpu_torch.py: PyTorch's CLIP training steps on the GPU, the side of the
whole-step comparison that bench/gpu.sh runs beside build/bench/bench_step --backend cuda.

    python3 bench/bench_step_gpu_torch.py --mode full --batch 256 [--compile]
    python3 bench/bench_step_gpu_torch.py --mode tng --batch 256 [--compile]
    python3 bench/bench_step_gpu_torch.py --mode released

Modes (the model is transformers.CLIPModel built from ViT-B/32's numbers, no weights needed):
  full      full fine-tuning: B images, B captions of --caption-tokens + 1 positions (the length
            tng cuts a batch to), bf16 autocast, SDPA attention, fused AdamW;
  tng       the TNG step as tng trains it: vision frozen and its features cached (random unit
            rows here), the text tower only, --texts-per-image texts per image;
  released  the released TNG-CLIP step as its code runs it: fp32 weights, fp16 autocast with a
            gradient scaler, the frozen vision tower recomputed every step, texts padded to 77,
            128 images x 3 texts.
The loss is CLIP's symmetric cross-entropy, each image's target its first text: the same
work as tng's InfoNCE up to the few kernels of the loss itself. --compile wraps the step's
forward and loss in torch.compile (its compile time is excluded: warm-up steps).

Prints one line per run:
  TORCH_STEP mode=full impl=eager batch=256 texts=256 ms=... pairs_per_s=... peak_GB=...
--device cpu with --tiny checks the script itself where there is no GPU.
"""
import argparse
import time

import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPModel

EOT = 49407


def vit_b32_config(tiny):
    if tiny:  # tng's tiny preset: a shape check of this script on a CPU
        text = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4)
        vision = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                      image_size=64, patch_size=16)
        dim = 128
    else:
        text = dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8)
        vision = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                      image_size=224, patch_size=32)
        dim = 512
    text.update(vocab_size=49408, max_position_embeddings=77, hidden_act="quick_gelu", eos_token_id=EOT)
    vision.update(hidden_act="quick_gelu")
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=dim)


def tokens(n, length, caption_tokens, device):
    ids = torch.zeros(n, length, dtype=torch.long, device=device)
    ids[:, 0] = 49406
    ids[:, 1:caption_tokens] = torch.randint(1, 40000, (n, caption_tokens - 1), device=device)
    ids[:, caption_tokens] = EOT
    return ids


def projected(output):
    """get_*_features: a tensor (transformers 4), or an output whose pooler_output it is (5)."""
    return output if torch.is_tensor(output) else output.pooler_output


def clip_loss(image_features, text_features, scale, per_image):
    image_features = F.normalize(image_features.float(), dim=-1)
    text_features = F.normalize(text_features.float(), dim=-1)
    logits = scale * image_features @ text_features.t()  # [B, per_image * B]
    B = logits.shape[0]
    texts_to_images = torch.arange(logits.shape[1], device=logits.device) % B
    return 0.5 * (F.cross_entropy(logits, torch.arange(B, device=logits.device)) +
                  F.cross_entropy(logits.t(), texts_to_images))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["full", "tng", "released"], default="full")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--texts-per-image", type=int, default=3)
    ap.add_argument("--caption-tokens", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    released = args.mode == "released"
    batch = 128 if released else args.batch
    per_image = 1 if args.mode == "full" else args.texts_per_image
    cfg = vit_b32_config(args.tiny)
    model = CLIPModel._from_config(cfg, attn_implementation="sdpa").to(device)
    if args.mode != "full":
        for p in model.vision_model.parameters():
            p.requires_grad_(False)
        model.visual_projection.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    fused = device.type == "cuda"
    opt = torch.optim.AdamW(params, lr=5e-6 if released else 1e-5, fused=fused)
    size = cfg.vision_config.image_size
    images = torch.randn(batch, 3, size, size, device=device)
    length = 77 if released else args.caption_tokens + 1
    ids = tokens(batch * per_image, length, args.caption_tokens, device)
    features = F.normalize(torch.randn(batch, cfg.projection_dim, device=device), dim=-1)
    scale = 1 / 0.07
    amp_dtype = torch.float16 if released else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=released and device.type == "cuda")

    def forward_loss():
        with torch.autocast(device.type, dtype=amp_dtype):
            if args.mode == "tng":
                image_features = features
            elif released:
                with torch.no_grad():
                    image_features = projected(model.get_image_features(pixel_values=images))
            else:
                image_features = projected(model.get_image_features(pixel_values=images))
            text_features = projected(model.get_text_features(input_ids=ids))
            return clip_loss(image_features, text_features, scale, per_image)

    step_forward = torch.compile(forward_loss) if args.compile else forward_loss

    def step():
        loss = step_forward()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) / args.steps * 1e3
    peak = torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else 0.0
    print(f"TORCH_STEP mode={args.mode} impl={'compile' if args.compile else 'eager'} batch={batch} "
          f"texts={batch * per_image} ms={ms:.2f} pairs_per_s={batch / ms * 1e3:.1f} peak_GB={peak:.2f} "
          f"torch={torch.__version__}")


if __name__ == "__main__":
    main()
