"""bench_torch_kernels.py: PyTorch's kernels at the shapes of bench_kernels.cu, side by side.

The alternatives a CLIP trainer would otherwise use: F.layer_norm, scaled_dot_product_attention
under each backend torch offers (math, memory-efficient, flash, cuDNN; the latter two only for
bf16), and InfoNCE as `scale * cos` followed by two cross-entropies and autograd. Timing is the
median of 20 CUDA-event-timed calls after 3 warm-ups, like bench_kernels.cu, and the same
ceilings are measured here too (device copy, bf16 GEMM) as a cross-check.

Output lines: `TORCH kernel=... shape=... impl=... ms=...` (bench/gpu.sh joins them with the
RESULT lines of bench_kernels by kernel and shape). Needs a GPU.
"""
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

REPS = 20


def time_ms(fn):
    for _ in range(3):
        fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(REPS):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def emit(kernel, shape, impl, ms):
    print(f"TORCH kernel={kernel} shape={shape} impl={impl} ms={ms:.4f}", flush=True)


def ceilings():
    n = 2 << 30
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    ms = time_ms(lambda: b.copy_(a))
    print(f"TORCH_CEILING copy_GBps {2 * n / ms / 1e6:.1f}")
    x = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    y = torch.randn_like(x)
    ms = time_ms(lambda: x @ y)
    print(f"TORCH_CEILING bf16_TFLOPs {2 * 8192 ** 3 / ms / 1e9:.1f}")


def layernorm(N, C, dtype, name):
    x = torch.randn(N, C, dtype=dtype, device="cuda", requires_grad=True)
    w = torch.randn(C, device="cuda", dtype=dtype, requires_grad=True)
    b = torch.randn(C, device="cuda", dtype=dtype, requires_grad=True)
    shape = f"{N}x{C}"
    with torch.no_grad():
        emit(f"layernorm_fwd_{name}", shape, "torch", time_ms(lambda: F.layer_norm(x, (C,), w, b, 1e-5)))
    y = F.layer_norm(x, (C,), w, b, 1e-5)
    dy = torch.randn_like(y)
    emit(f"layernorm_bwd_{name}", shape, "torch",
         time_ms(lambda: torch.autograd.grad(y, (x, w, b), dy, retain_graph=True)))


def attention(B, T, NH, hs, causal, dtype, name):
    shape = f"B{B}_T{T}_NH{NH}_hs{hs}" + ("_causal" if causal else "")
    # the packed [B, T, 3C] layout our kernel reads; torch wants [B, NH, T, hs] views of it
    qkv = torch.randn(B, T, 3, NH, hs, dtype=dtype, device="cuda")
    q, k, v = (qkv[:, :, i].transpose(1, 2).detach().requires_grad_() for i in range(3))
    backends = [("math", SDPBackend.MATH), ("efficient", SDPBackend.EFFICIENT_ATTENTION)]
    if dtype == torch.bfloat16:
        backends += [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)]
    for impl, backend in backends:
        try:
            with sdpa_kernel(backend):
                fwd = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))
                with torch.no_grad():
                    emit(f"attention_fwd_{name}", shape, impl, time_ms(fwd))
                out = fwd()
                dout = torch.randn_like(out)
                emit(f"attention_bwd_{name}", shape, impl,
                     time_ms(lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)))
        except RuntimeError as err:  # a backend that refuses this shape or dtype
            print(f"# {impl} unavailable for {shape} {name}: {str(err).splitlines()[0]}")


def infonce(Ni, Nt):
    per_image = Nt // Ni
    cos = (torch.rand(Ni, Nt, device="cuda") * 2 - 1).requires_grad_()
    txt2img = torch.arange(Nt, device="cuda") // per_image
    i2t = torch.arange(Ni, device="cuda") * per_image

    def step():
        logits = 14.3 * cos
        loss = 0.5 * (F.cross_entropy(logits.t(), txt2img) + F.cross_entropy(logits, i2t))
        loss.backward()

    emit("infonce_fwd_bwd_fp32", f"{Ni}x{Nt}", "torch", time_ms(step))


def linear_bf16(N, IC, OC):
    x = torch.randn(N, IC, dtype=torch.bfloat16, device="cuda")
    w = torch.randn(OC, IC, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(OC, dtype=torch.bfloat16, device="cuda")
    shape = f"{N}x{IC}x{OC}"
    emit("linear_fwd_bf16", shape, "torch", time_ms(lambda: F.linear(x, w, b)))

    def linear_act():
        y = F.linear(x, w, b)
        return y * torch.sigmoid(1.702 * y)

    emit("linear_act_fwd_bf16", shape, "torch", time_ms(linear_act))


def main():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"# torch {torch.__version__} on {torch.cuda.get_device_name()}")
    ceilings()
    layernorm(65536, 768, torch.float32, "fp32")
    layernorm(65536, 768, torch.bfloat16, "bf16")
    layernorm(65536, 512, torch.float32, "fp32")
    attention(512, 50, 12, 64, 0, torch.float32, "fp32")
    attention(512, 50, 12, 64, 0, torch.bfloat16, "bf16")
    attention(1536, 77, 8, 64, 1, torch.float32, "fp32")
    attention(1536, 77, 8, 64, 1, torch.bfloat16, "bf16")
    attention(256, 197, 12, 64, 0, torch.float32, "fp32")
    attention(128, 257, 16, 64, 0, torch.float32, "fp32")
    infonce(1024, 3072)
    infonce(4096, 12288)
    linear_bf16(25600, 768, 3072)


if __name__ == "__main__":
    main()
