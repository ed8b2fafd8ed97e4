"""
make_optimizer_fixture.py: PyTorch's own AdamW, with its defaults, on the parity fixture: the
reference for tng's `--recipe tng-released` optimizer (test_parity.c, test_released_adamw).

    .venv/bin/python tests/ref/make_optimizer_fixture.py   # writes tests/fixtures/parity/expected_adamw_torch.safetensors

The released TNG script trains with torch.optim.AdamW(model.parameters(), lr=5e-6), so
betas (0.9, 0.999), eps 1e-8 and weight decay 0.01 on every parameter that gets a gradient.
Here that optimizer, built exactly so (only lr given), runs STEPS steps on the model and batch
of tests/fixtures/parity (written by make_fixtures.py) the way the script trains: vision tower
frozen (requires_grad off), temperature fixed at 0.07 (logit_scale is in model.parameters()
but never gets a gradient, so torch skips it), no gradient clipping, no schedule. The loss is
make_fixtures.py's InfoNCE with the fixture's own-caption image-to-text target.

Key design choice: the learning rate is amplified, LR = 3e-3 instead of the recipe's 5e-6. The
differences between the released settings and tng's open_clip-style defaults (beta2 0.98,
eps 1e-6, no decay on biases, LayerNorms and embeddings) all scale with the learning rate,
and at 5e-6 they stay below what float32 weights of size ~1 resolve, so a test at the real lr
could not fail. At LR each on its own moves the weights 18-80x the test's tolerance (printed
below), while float32 rounding moves them 0.07x (torch) to 0.3x (tng).

As in make_fixtures.py, the expected values come from a float64 copy of the float32 model, and
torch's own float32 run is measured against them: the noise floor of a correct float32 engine.
"""
import argparse
import copy
import os

import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPModel

import make_fixtures as mf

LR = 3e-3
STEPS = 10
# test_parity.c's tolerance on the final weights (absolute; the weights are of size ~1): about
# 3x the float32 noise floor of tng's engine (9.1e-6) and 14x torch's (2.1e-6). The floor is
# set by weights whose gradient is near eps = 1e-8: Adam gives them a full-size step whose
# direction rests on a gradient that float32 knows only to a few percent.
FINAL_ATOL = 3e-5
# The tensors whose exact gradient is zero: softmax ignores a shift shared by every key, so
# k_proj.bias learns nothing and with eps 1e-8 its update is float32 rounding noise divided
# by ~eps, different in every engine. Compared only against Adam's bound on a step.
NOISE_ONLY = "self_attn.k_proj.bias"


def trains(name):
    """The released script's trained tensors: the text tower and its projection."""
    return name.startswith("text_model.") or name == "text_projection.weight"


def released_adamw(model, inputs, steps, lr, **changes):
    """STEPS steps of torch.optim.AdamW(model.parameters(), lr=lr) on a copy of model; changes
    (betas, eps, decay="matrices") give the variants the test must tell apart. Returns the
    final named parameters and the loss before each step."""
    model = copy.deepcopy(model)
    for name, p in model.named_parameters():
        p.requires_grad_(trains(name) or name == "logit_scale")  # logit_scale: unused, no grad
    decay = changes.pop("decay", "all")
    if decay == "all":
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, **changes)
    else:  # tng's DECAY_MATRICES: make_fixtures.py's two groups
        params = list(model.named_parameters())
        groups = [dict(params=[p for n, p in params if not mf.no_decay(n, p)]),
                  dict(params=[p for n, p in params if mf.no_decay(n, p)], weight_decay=0.0)]
        optimizer = torch.optim.AdamW(groups, lr=lr, **changes)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        img, txt = mf.clip_features(model, inputs)
        loss, _, _ = mf.infonce(img, txt, 1 / mf.FIXED_TEMPERATURE, inputs["txt2img"], inputs["i2t_target"])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return {n: p.detach() for n, p in model.named_parameters()}, losses


def distance(got, want):
    """Worst |got - want| / FINAL_ATOL over the compared tensors, and where."""
    worst, where = 0.0, ""
    for name, w in want.items():
        if trains(name) and NOISE_ONLY not in name:
            d = (got[name].double() - w.double()).abs().max().item() / FINAL_ATOL
            if d > worst:
                worst, where = d, name
    return worst, where


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixture", default="tests/fixtures/parity",
                        help="the parity fixture folder (model/ and inputs.safetensors)")
    args = parser.parse_args()
    torch.manual_seed(mf.SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    model = CLIPModel.from_pretrained(os.path.join(args.fixture, "model"),
                                      attn_implementation="eager").eval()
    inputs = load_file(os.path.join(args.fixture, "inputs.safetensors"))
    model64 = copy.deepcopy(model).double()
    want, losses = released_adamw(model64, inputs, STEPS, LR)
    got32, losses32 = released_adamw(model, inputs, STEPS, LR)

    expected = {"lr": torch.tensor([LR], dtype=torch.float32),
                "steps": torch.tensor([STEPS], dtype=torch.int32),
                "step_losses": torch.tensor(losses, dtype=torch.float32)}
    expected.update({f"final.{n}": mf.f32(p) for n, p in want.items() if trains(n)})
    out = os.path.join(args.fixture, "expected_adamw_torch.safetensors")
    save_file(expected, out)

    initial = dict(model64.named_parameters())
    moved = max((want[n] - initial[n]).abs().max().item() for n in want if trains(n))
    noise, noise_at = distance(got32, want)
    kbias = max((got32[n].double() - want[n]).abs().max().item() for n in want if NOISE_ONLY in n)
    print(f"torch.optim.AdamW(model.parameters(), lr={LR}), {STEPS} steps, vision frozen, temperature 0.07")
    print(f"  step losses {', '.join(f'{x:.5f}' for x in losses)}")
    print(f"  largest move of a weight {moved:.2e}; {NOISE_ONLY} (noise only): fp32 vs fp64 {kbias:.2e}")
    print(f"torch fp32 vs fp64 (the noise floor), in units of the tolerance {FINAL_ATOL:.0e}:")
    print(f"  final weights {noise:.3f} ({noise_at});"
          f" step losses max rel {max(abs(a / b - 1) for a, b in zip(losses32, losses)):.2e}")
    print("tng's open_clip-style settings, one difference at a time (float64), same units:")
    variants = {"beta2 0.98": dict(betas=(0.9, 0.98)), "eps 1e-6": dict(eps=1e-6),
                "decay on matrices only": dict(decay="matrices"),
                "all three (tng's defaults)": dict(betas=(0.9, 0.98), eps=1e-6, decay="matrices")}
    for label, changes in variants.items():
        final, _ = released_adamw(model64, inputs, STEPS, LR, **changes)
        worst, where = distance(final, want)
        print(f"  {label:28s} {worst:8.1f} ({where})")
    mf.report_sizes(args.fixture)


if __name__ == "__main__":
    main()
