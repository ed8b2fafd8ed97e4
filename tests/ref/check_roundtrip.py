"""
check_roundtrip.py: transformers loads a checkpoint tng wrote and computes the same features.

    build/tests/test_parity [FIXTURE_DIR] --write-checkpoint OUT
    .venv/bin/python tests/ref/check_roundtrip.py OUT [--tol 1e-5]

OUT holds tng's HF directory (config.json, model.safetensors) and tng_features.safetensors
(tng's features of that model, with the pixels and token ids they came from). The check
fails if from_pretrained reports any missing or unexpected tensor, or if transformers'
features, computed in float64 from the float32 weights, differ from tng's by more than --tol
(max abs). The float32 transformers run is printed beside it for scale.
"""
import argparse
import sys

import torch
from safetensors.torch import load_file
from transformers import CLIPModel


def features(model, pixel_values, input_ids):
    dtype = model.logit_scale.dtype
    with torch.no_grad():
        img = model.get_image_features(pixel_values=pixel_values.to(dtype))
        txt = model.get_text_features(input_ids=input_ids)
    img = getattr(img, "pooler_output", img)  # transformers 5 may wrap the projected features
    txt = getattr(txt, "pooler_output", txt)
    return torch.nn.functional.normalize(img, dim=-1), torch.nn.functional.normalize(txt, dim=-1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="folder written by test_parity --write-checkpoint")
    parser.add_argument("--tol", type=float, default=1e-5, help="max abs feature difference")
    args = parser.parse_args()
    torch.set_num_threads(1)

    model, info = CLIPModel.from_pretrained(args.dir, attn_implementation="eager",
                                            output_loading_info=True)
    model.eval()
    problems = {k: v for k, v in info.items() if v}  # missing / unexpected / mismatched keys
    tng = load_file(f"{args.dir}/tng_features.safetensors")
    results = {}
    for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        img, txt = features(model.to(dtype), tng["pixel_values"], tng["input_ids"])
        results[name] = max((img - tng["image_features"].to(dtype)).abs().max().item(),
                            (txt - tng["text_features"].to(dtype)).abs().max().item())
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.dir}: {n_params:,d} parameters loaded by transformers"
          f"{'' if not problems else f'; loading problems: {problems}'}")
    print(f"  tng features vs transformers float64: max abs {results['float64']:.2e}"
          f" (tolerance {args.tol:.0e}); vs transformers float32: {results['float32']:.2e}")
    ok = not problems and results["float64"] <= args.tol
    print("  round trip " + ("OK" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
