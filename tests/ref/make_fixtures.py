"""
make_fixtures.py: reference tensors that tests/test_parity.c compares tng's CPU engine against.

    .venv/bin/python tests/ref/make_fixtures.py                 # tests/fixtures/parity (committed)
    .venv/bin/python tests/ref/make_fixtures.py --vitb32 DIR    # a ViT-B/32-shaped model (not committed)

A tiny random transformers.CLIPModel (every tensor randomised, so a swapped or transposed
tensor cannot pass) is saved in HF format, cross-checked against an open_clip CLIP holding the
same weights under OpenAI names, and run on a fixed batch: features, the InfoNCE loss tng
defines, every parameter gradient, and 10 AdamW steps.

Key design choice: the model is stored in float32, but every expected value is computed by the
same transformers code on a float64 copy of it. The reference then carries no rounding error of
its own, so the tolerances in test_parity.c bound tng's float32 error alone. The float32 torch
results are computed too and their distance from float64 is printed: that is the noise floor a
correct float32 engine is expected to show.
"""
import argparse
import copy
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel

SEED = 20261129
NUM_STEPS = 10
FIXED_TEMPERATURE = 0.07
ADAMW = dict(lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
CLIP_GRAD_NORM = 1.0


# -----------------------------------------------------------------------------
# model configurations

def tiny_config():
    # The towers use different activations on purpose so that both are exercised.
    return CLIPConfig(
        vision_config=dict(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=128, hidden_act="quick_gelu",
                           layer_norm_eps=1e-5),
        text_config=dict(vocab_size=512, max_position_embeddings=16, hidden_size=32,
                         num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                         hidden_act="gelu", layer_norm_eps=1e-5, eos_token_id=511,
                         bos_token_id=510, pad_token_id=0),
        projection_dim=24, logit_scale_init_value=math.log(1 / 0.07))


def vitb32_config():
    # OpenAI ViT-B/32: QuickGELU in both towers.
    return CLIPConfig(
        vision_config=dict(image_size=224, patch_size=32, hidden_size=768, num_hidden_layers=12,
                           num_attention_heads=12, intermediate_size=3072,
                           hidden_act="quick_gelu", layer_norm_eps=1e-5),
        text_config=dict(vocab_size=49408, max_position_embeddings=77, hidden_size=512,
                         num_hidden_layers=12, num_attention_heads=8, intermediate_size=2048,
                         hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=49407,
                         bos_token_id=49406, pad_token_id=0),
        projection_dim=512, logit_scale_init_value=math.log(1 / 0.07))


def build_model(config):
    config._attn_implementation = "eager"  # the plain softmax(QK^T)V path, in any dtype
    return CLIPModel(config).eval()


def is_embedding(name):
    """Class, position and token embeddings (not the patch conv, which is a weight)."""
    return any(k in name for k in ("class_embedding", "position_embedding", "token_embedding"))


def is_layer_norm(name):
    return "layer_norm" in name or "layrnorm" in name or "layernorm" in name


@torch.no_grad()
def randomise(model, gen, full):
    """full=True: every tensor gets a distinct random draw (the tiny fixture). full=False: keep
    HF's default init for weights and embeddings, only perturb LayerNorms and biases."""
    for name, p in model.named_parameters():
        def normal(std):
            return torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype) * std
        if name == "logit_scale":
            p.fill_(math.log(1 / FIXED_TEMPERATURE) + 0.05 * torch.randn((), generator=gen).item())
        elif is_layer_norm(name) and name.endswith(".weight"):
            p.copy_(1 + 0.4 * (torch.rand(p.shape, generator=gen, dtype=torch.float64) - 0.5))
        elif name.endswith(".bias"):
            p.copy_(normal(0.1))
        elif full and is_embedding(name):
            p.copy_(normal(0.5))
        elif full:
            fan_in = p[0].numel() if p.dim() > 1 else p.numel()
            p.copy_(normal(fan_in ** -0.5))


# -----------------------------------------------------------------------------
# inputs

def make_inputs(gen, config, n_images, n_texts, eot_positions, n_twin_images):
    """Random pixels; texts [bos, random ids, eot, then junk or zeros]. Junk after the EOT must
    not change anything (causal mask), which is what lets tng cut the batch to max(EOT)+1.

    The two texts of each of the first n_twin_images images are twins: equal up to the EOT,
    one followed by junk and the other by zeros. Their features must be equal, and they bound
    the image-to-text loss below by log 2 per twin image, so 10 steps on one batch cannot
    drive the loss towards 0, where a relative tolerance on it would mean nothing."""
    vc, tc = config.vision_config, config.text_config
    pixel_values = torch.randn(n_images, 3, vc.image_size, vc.image_size, generator=gen)
    bos, eot, T = tc.bos_token_id, tc.eos_token_id, tc.max_position_embeddings

    def junk(n):
        return torch.randint(1, bos, (n,), generator=gen)
    input_ids = torch.zeros(n_texts, T, dtype=torch.int64)
    for row, eot_pos in enumerate(eot_positions):
        input_ids[row, 0] = bos
        input_ids[row, 1:eot_pos] = junk(eot_pos - 1)
        input_ids[row, eot_pos] = eot
        if row % 2 == 0:  # even rows: junk ids after the EOT; odd rows: zero padding
            input_ids[row, eot_pos + 1:] = junk(T - eot_pos - 1)
    # each image has n_texts / n_images positive texts, in shuffled order
    txt2img = torch.arange(n_images).repeat_interleave(n_texts // n_images)
    txt2img = txt2img[torch.randperm(n_texts, generator=gen)]
    for image in range(n_twin_images):
        first, second = (txt2img == image).nonzero()[:2, 0].tolist()
        eot_pos = eot_positions[first]
        input_ids[second] = 0
        input_ids[second, :eot_pos + 1] = input_ids[first, :eot_pos + 1]
        if input_ids[first, eot_pos + 1:].eq(0).all():
            input_ids[second, eot_pos + 1:] = junk(T - eot_pos - 1)
    i2t_target = torch.stack([(txt2img == i).nonzero()[-1, 0] for i in range(n_images)])
    return dict(pixel_values=pixel_values, input_ids=input_ids, txt2img=txt2img,
                i2t_target=i2t_target)


# -----------------------------------------------------------------------------
# forward and loss, as tng defines them

def clip_features(model, inputs):
    """L2-normalised image and text features through HF's own towers and pooling."""
    dtype = model.logit_scale.dtype
    vision = model.vision_model(pixel_values=inputs["pixel_values"].to(dtype))
    text = model.text_model(input_ids=inputs["input_ids"])
    img = model.visual_projection(vision.pooler_output)
    txt = model.text_projection(text.pooler_output)
    return F.normalize(img, dim=-1), F.normalize(txt, dim=-1)


def infonce(img, txt, scale, txt2img, i2t_target):
    """loss = (mean_t CE_t2i + mean_i CE_i2t)/2 on logits = scale * cos [Ni,Nt].
    i2t_target None: the soft target, uniform over the texts whose positive is the image."""
    logits = scale * img @ txt.T
    t2i = F.cross_entropy(logits.T, txt2img)
    if i2t_target is None:
        positives = (txt2img[None, :] == torch.arange(img.shape[0])[:, None]).to(logits.dtype)
        i2t = F.cross_entropy(logits, positives / positives.sum(1, keepdim=True))
    else:
        i2t = F.cross_entropy(logits, i2t_target)
    return (t2i + i2t) / 2, t2i, i2t


def learned_temperature_loss(model, inputs):
    img, txt = clip_features(model, inputs)
    loss = infonce(img, txt, model.logit_scale.exp(), inputs["txt2img"], inputs["i2t_target"])
    return loss, img, txt


# -----------------------------------------------------------------------------
# training, as tng's optimizer does it

def no_decay(name, p):
    return p.dim() < 2 or is_embedding(name) or name == "logit_scale"


def train_steps(model, inputs, steps):
    """AdamW on one batch; returns the loss before each update."""
    params = list(model.named_parameters())
    groups = [dict(params=[p for n, p in params if not no_decay(n, p)]),
              dict(params=[p for n, p in params if no_decay(n, p)], weight_decay=0.0)]
    optimizer = torch.optim.AdamW(groups, **ADAMW)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        (loss, _, _), _, _ = learned_temperature_loss(model, inputs)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], CLIP_GRAD_NORM)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
    return losses


# -----------------------------------------------------------------------------
# open_clip cross-check

def to_openai_names(hf_state, config):
    """HF CLIPModel tensors under OpenAI / open_clip names (q|k|v stacked, projections
    transposed). The position_ids buffers are not parameters and are left out."""
    out = {}
    towers = [("vision_model", "visual.", config.vision_config),
              ("text_model", "", config.text_config)]
    for hf, oa, cfg in towers:
        for i in range(cfg.num_hidden_layers):
            h, o = f"{hf}.encoder.layers.{i}.", f"{oa}transformer.resblocks.{i}."
            for kind in ("weight", "bias"):
                out[o + f"attn.in_proj_{kind}"] = torch.cat(
                    [hf_state[h + f"self_attn.{x}_proj.{kind}"] for x in "qkv"])
                for hn, on in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"),
                               ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"),
                               ("mlp.fc2", "mlp.c_proj")):
                    out[o + f"{on}.{kind}"] = hf_state[h + f"{hn}.{kind}"]
    renames = {
        "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
        "vision_model.embeddings.class_embedding": "visual.class_embedding",
        "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
        "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",
        "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
        "vision_model.post_layernorm.weight": "visual.ln_post.weight",
        "vision_model.post_layernorm.bias": "visual.ln_post.bias",
        "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
        "text_model.final_layer_norm.weight": "ln_final.weight",
        "text_model.final_layer_norm.bias": "ln_final.bias",
        "logit_scale": "logit_scale",
    }
    for hf, oa in renames.items():
        out[oa] = hf_state[hf]
    out["visual.proj"] = hf_state["visual_projection.weight"].T
    out["text_projection"] = hf_state["text_projection.weight"].T
    n_hf = sum(1 for k in hf_state if not k.endswith("position_ids"))
    n_qkv = 2 * 2 * (config.vision_config.num_hidden_layers + config.text_config.num_hidden_layers)
    assert len(out) == n_hf - n_qkv, (len(out), n_hf, n_qkv)  # every HF tensor used exactly once
    return {k: v.contiguous() for k, v in out.items()}


def open_clip_model(config):
    """An open_clip CLIP of the same shape. open_clip has one activation flag for both towers,
    so each tower's MLP activation is set to the one HF's config names."""
    import open_clip
    vc, tc = config.vision_config, config.text_config
    model = open_clip.model.CLIP(
        embed_dim=config.projection_dim,
        vision_cfg=dict(layers=vc.num_hidden_layers, width=vc.hidden_size,
                        head_width=vc.hidden_size // vc.num_attention_heads,
                        mlp_ratio=vc.intermediate_size / vc.hidden_size,
                        patch_size=vc.patch_size, image_size=vc.image_size),
        text_cfg=dict(context_length=tc.max_position_embeddings, vocab_size=tc.vocab_size,
                      width=tc.hidden_size, heads=tc.num_attention_heads,
                      layers=tc.num_hidden_layers,
                      mlp_ratio=tc.intermediate_size / tc.hidden_size),
        quick_gelu=True)
    activations = {"quick_gelu": open_clip.transformer.QuickGELU, "gelu": torch.nn.GELU}
    for blocks, act in ((model.visual.transformer.resblocks, vc.hidden_act),
                        (model.transformer.resblocks, tc.hidden_act)):
        for block in blocks:
            block.mlp.gelu = activations[act]()
    return model.eval()


@torch.no_grad()
def cross_check_open_clip(model, config, inputs):
    """open_clip holding the same weights gives the same features; returns the OpenAI-named
    state dict and the max abs difference."""
    openai_state = to_openai_names(model.state_dict(), config)
    oc = open_clip_model(config)
    oc.load_state_dict(openai_state, strict=True)
    img, txt = clip_features(model, inputs)
    oc_img = oc.encode_image(inputs["pixel_values"], normalize=True)
    oc_txt = oc.encode_text(inputs["input_ids"], normalize=True)
    diff = max((oc_img - img).abs().max().item(), (oc_txt - txt).abs().max().item())
    assert diff < 1e-5, f"open_clip and transformers disagree: max abs {diff:.3e}"
    return openai_state, diff


# -----------------------------------------------------------------------------
# fixture writers

def f32(t):
    return t.detach().to(torch.float32).contiguous()


def as_vector(x):
    return torch.tensor([x], dtype=torch.float32) if isinstance(x, float) else f32(x).reshape(1)


def max_abs(a, b):
    return (a.double() - b.double()).abs().max().item()


def reference_grads(model, inputs):
    """Features, loss terms and gradients of the learned-temperature objective."""
    model.zero_grad(set_to_none=True)
    (loss, t2i, i2t), img, txt = learned_temperature_loss(model, inputs)
    loss.backward()
    return dict(loss=loss, t2i=t2i, i2t=i2t, img=img, txt=txt,
                grads={n: p.grad.clone() for n, p in model.named_parameters()})


def fixed_mean_grads(model, inputs):
    """Variant B: temperature fixed at 0.07, soft i2t target over all positives, vision frozen."""
    model.zero_grad(set_to_none=True)
    trained = [n for n, _ in model.named_parameters()
               if n.startswith("text_model.") or n == "text_projection.weight"]
    for n, p in model.named_parameters():
        p.requires_grad_(n in trained)
    img, txt = clip_features(model, inputs)
    loss, t2i, i2t = infonce(img, txt, 1 / FIXED_TEMPERATURE, inputs["txt2img"], None)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if n in trained}
    for p in model.parameters():
        p.requires_grad_(True)
    return dict(loss=loss, t2i=t2i, i2t=i2t, grads=grads)


def write_tiny(out_dir):
    gen = torch.Generator().manual_seed(SEED)
    config = tiny_config()
    model = build_model(config)
    randomise(model, gen, full=True)
    # EOT positions 3..12: the longest row ends well before the context of 16, so the cut to
    # max(EOT)+1 = 13 tokens drops columns that hold junk in the even rows.
    inputs = make_inputs(gen, config, n_images=4, n_texts=8,
                         eot_positions=[5, 12, 3, 9, 7, 11, 4, 8], n_twin_images=2)

    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(os.path.join(out_dir, "model"), safe_serialization=True)
    save_file({k: v.contiguous() for k, v in inputs.items()},
              os.path.join(out_dir, "inputs.safetensors"))

    openai_state, oc_diff = cross_check_open_clip(model, config, inputs)
    save_file(openai_state, os.path.join(out_dir, "openai_names.safetensors"))

    model64 = copy.deepcopy(model).double()
    ref = reference_grads(model64, inputs)
    ref32 = reference_grads(model, inputs)
    fixed = fixed_mean_grads(copy.deepcopy(model64), inputs)
    fixed32 = fixed_mean_grads(copy.deepcopy(model), inputs)
    step_losses = train_steps(model64, inputs, NUM_STEPS)
    model_trained32 = copy.deepcopy(model)
    step_losses32 = train_steps(model_trained32, inputs, NUM_STEPS)

    expected = {
        "image_features": f32(ref["img"]), "text_features": f32(ref["txt"]),
        "loss": as_vector(ref["loss"]), "loss_t2i": as_vector(ref["t2i"]),
        "loss_i2t": as_vector(ref["i2t"]),
        "step_losses": torch.tensor(step_losses, dtype=torch.float32),
    }
    expected.update({f"grad.{n}": f32(g) for n, g in ref["grads"].items()})
    expected.update({f"final.{n}": f32(p) for n, p in model64.named_parameters()})
    save_file(expected, os.path.join(out_dir, "expected.safetensors"))
    fixed_expected = {"loss": as_vector(fixed["loss"]), "loss_t2i": as_vector(fixed["t2i"]),
                      "loss_i2t": as_vector(fixed["i2t"])}
    fixed_expected.update({f"grad.{n}": f32(g) for n, g in fixed["grads"].items()})
    save_file(fixed_expected, os.path.join(out_dir, "expected_fixed_mean.safetensors"))

    # The float32 noise floor: how far torch's own float32 run lands from the float64 truth.
    def worst_grad_excess(a, b):
        return max(((a[n].double() - b[n].double()).abs() / (1e-4 + 1e-3 * b[n].double().abs()))
                   .max().item() for n in b)
    final64 = dict(model64.named_parameters())
    print(f"open_clip vs transformers features (fp32): max abs {oc_diff:.2e}")
    print(f"loss {ref['loss'].item():.6f} (t2i {ref['t2i'].item():.6f}, i2t {ref['i2t'].item():.6f}),"
          f" fixed-mean loss {fixed['loss'].item():.6f}")
    print(f"step losses {', '.join(f'{x:.5f}' for x in step_losses)}")
    print("torch fp32 vs fp64 reference (the noise floor of a correct fp32 engine):")
    print(f"  features max abs {max(max_abs(ref32['img'], ref['img']), max_abs(ref32['txt'], ref['txt'])):.2e};"
          f" loss rel {abs(ref32['loss'].item() / ref['loss'].item() - 1):.2e}")
    print(f"  grads: worst |a-b|/(1e-4+1e-3|b|) = {worst_grad_excess(ref32['grads'], ref['grads']):.3f}"
          f" (fixed-mean {worst_grad_excess(fixed32['grads'], fixed['grads']):.3f})")
    print(f"  step losses max rel {max(abs(a / b - 1) for a, b in zip(step_losses32, step_losses)):.2e}")
    print(f"  final weights max abs {max(max_abs(p, final64[n]) for n, p in model_trained32.named_parameters()):.2e}")
    report_sizes(out_dir)


def write_vitb32(out_dir):
    gen = torch.Generator().manual_seed(SEED + 1)
    config = vitb32_config()
    model = build_model(config)
    randomise(model, gen, full=False)
    inputs = make_inputs(gen, config, n_images=2, n_texts=4, eot_positions=[9, 30, 14, 22],
                         n_twin_images=0)
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(os.path.join(out_dir, "model"), safe_serialization=True)
    save_file({k: v.contiguous() for k, v in inputs.items()},
              os.path.join(out_dir, "inputs.safetensors"))
    _, oc_diff = cross_check_open_clip(model, config, inputs)
    with torch.no_grad():
        model64 = model.double()
        (loss, t2i, i2t), img, txt = learned_temperature_loss(model64, inputs)
    save_file({"image_features": f32(img), "text_features": f32(txt), "loss": as_vector(loss),
               "loss_t2i": as_vector(t2i), "loss_i2t": as_vector(i2t)},
              os.path.join(out_dir, "expected.safetensors"))
    print(f"open_clip vs transformers features (fp32): max abs {oc_diff:.2e}")
    print(f"loss {loss.item():.6f}")
    report_sizes(out_dir)


def report_sizes(out_dir):
    total = 0
    for root, _, files in os.walk(out_dir):
        for name in sorted(files):
            size = os.path.getsize(os.path.join(root, name))
            total += size
            print(f"  {os.path.relpath(os.path.join(root, name), out_dir):40s} {size:>12,d} bytes")
    print(f"  total {total:,d} bytes")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="tests/fixtures/parity",
                        help="output folder of the tiny fixture")
    parser.add_argument("--vitb32", metavar="OUTDIR",
                        help="write a ViT-B/32-shaped fixture (model, inputs, features) instead")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if args.vitb32:
        write_vitb32(args.vitb32)
    else:
        write_tiny(args.out)


if __name__ == "__main__":
    main()
