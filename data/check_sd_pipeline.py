#!/usr/bin/env python3
"""check_sd_pipeline.py: an exported text encoder loads as Stable Diffusion pipeline components.

    .venv/bin/pip install diffusers      # not part of the default venv
    .venv/bin/python data/check_sd_pipeline.py EXPORT_DIR PIPELINE_OUT_DIR

EXPORT_DIR is what data/export_text_encoder.py wrote (text_encoder/ + tokenizer/). Offline and
on a CPU: builds a tiny random UNet (cross-attention width = the encoder's width) and VAE,
assembles a StableDiffusionPipeline around the exported components, saves it in diffusers'
repository layout, reloads it with from_pretrained, checks the reloaded text encoder gives the
same hidden states, and runs two denoising steps. The real pipelines need a 768-wide encoder
(ViT-L/14, see data/NEG_TTOI.md); this checks the layout and classes, not image quality.
"""
import sys, torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer
exp, out = sys.argv[1], sys.argv[2]
te = CLIPTextModel.from_pretrained(f"{exp}/text_encoder")
tok = CLIPTokenizer.from_pretrained(f"{exp}/tokenizer")
w = te.config.hidden_size
torch.manual_seed(0)
unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
    block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=w, attention_head_dim=8, norm_num_groups=32)
vae = AutoencoderKL(block_out_channels=(32,), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
    up_block_types=("UpDecoderBlock2D",), latent_channels=4, norm_num_groups=32)
pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=DDIMScheduler(),
    safety_checker=None, feature_extractor=None, requires_safety_checker=False)
pipe.save_pretrained(out)
pipe2 = StableDiffusionPipeline.from_pretrained(out, safety_checker=None)
ids = pipe2.tokenizer("a beach without any people", padding="max_length", max_length=77, return_tensors="pt").input_ids
with torch.no_grad():
    a = pipe2.text_encoder(ids).last_hidden_state; b = te(ids).last_hidden_state
assert torch.equal(a, b), "reloaded pipeline's text encoder differs"
img = pipe2("a beach without any people", num_inference_steps=2, height=8, width=8, output_type="np",
            generator=torch.Generator().manual_seed(0)).images
print("pipeline loaded from", out, "; text encoder identical; image", img.shape)
