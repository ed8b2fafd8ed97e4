"""Checks that transformers loads a checkpoint directory written by tng's C writer.

Usage: .venv/bin/python tests/ref/check_hf_load.py DIR

Loads DIR with transformers.CLIPModel.from_pretrained and fails unless no key is missing,
unexpected or mismatched (transformers would otherwise silently re-initialise it), every
parameter equals the file's tensor bit for bit, and a forward pass runs. Prints the
parameter count. Not run by CI: it needs the project venv.
"""
import sys

import torch
from safetensors.torch import load_file
from transformers import CLIPModel


def main(directory):
    model, info = CLIPModel.from_pretrained(directory, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k != "error_msgs"}
    if info.get("error_msgs"):
        problems["error_msgs"] = info["error_msgs"]
    if problems:
        sys.exit(f"{directory}: loading problems: {problems}")

    saved = load_file(f"{directory}/model.safetensors")
    state = model.state_dict()
    for name, tensor in saved.items():
        if not torch.equal(state[name], tensor):
            sys.exit(f"{directory}: {name} differs after loading")
    missing = [name for name, _ in model.named_parameters() if name not in saved]
    if missing:
        sys.exit(f"{directory}: parameters not in the file: {missing}")

    cfg = model.config
    if cfg.text_config.eos_token_id != cfg.text_config.vocab_size - 1:
        sys.exit(f"{directory}: eos_token_id {cfg.text_config.eos_token_id} is not vocab_size - 1")
    size = cfg.vision_config.image_size
    ids = torch.randint(0, cfg.text_config.vocab_size - 1, (2, 8))
    ids[:, 5] = cfg.text_config.vocab_size - 1  # the EOT that pooling must find
    with torch.no_grad():
        out = model(input_ids=ids, pixel_values=torch.randn(2, 3, size, size))
    if not torch.isfinite(out.logits_per_image).all():
        sys.exit(f"{directory}: forward pass gave non-finite logits")

    count = sum(p.numel() for p in model.parameters())
    print(f"{directory}: transformers loaded {len(saved)} tensors, {count} parameters; "
          f"activations vision={cfg.vision_config.hidden_act} text={cfg.text_config.hidden_act}; "
          f"logits_per_image shape {tuple(out.logits_per_image.shape)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
