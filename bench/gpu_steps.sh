#!/usr/bin/env bash
# gpu_steps.sh: whole training steps on the GPU, tng beside PyTorch in one run (bench/gpu.sh
# runs it; build/cuda/bench_step must be built for this machine or carried).
#   ours:    build/cuda/bench_step --backend cuda: ViT-B/32 full fine-tuning (bf16 at batch 128,
#            256 and 1024; fp32 and tf32 at 256) and the TNG step (cached image features, the
#            text tower, 3 texts per image: bf16 at 256 and 1024), FLOPs counted by the program;
#            --cuda-graphs against eager launches at batch 32 and 128
#   PyTorch: bench/bench_step_gpu_torch.py, transformers CLIPModel with bf16 autocast and SDPA,
#            eager and torch.compile, the same shapes; and the released TNG-CLIP step
# Each PyTorch run has its own time limit (compiles are slow), so one slow run costs only itself.
# Usage: bash bench/gpu_steps.sh OUT_DIR [BIN_DIR]
set -u -o pipefail
OUT=${1:?usage: gpu_steps.sh OUT_DIR [BIN_DIR]}
BIN=${2:-build/cuda}
mkdir -p "$OUT"
[ -x "$BIN/bench_step" ] || { echo "SKIP: $BIN/bench_step not built"; exit 0; }
# the dense peaks (TFLOP/s) of the card for bf16, tf32 and fp32: MFU's denominator
name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
case "$name" in
*"H100 PCIe"*) peak=(756 378 51) ;;
*H100* | *H200*) peak=(989 494 67) ;;
*) peak=(0 0 0) ;;
esac
echo "GPU: $name; dense peaks bf16 ${peak[0]}, tf32 ${peak[1]}, fp32 ${peak[2]} TFLOP/s"

# ours PRECISION PEAK ARGS...: one bench_step run, its result line tagged
ours() {
    local precision=$1 p=$2
    shift 2
    timeout 120 "$BIN/bench_step" --backend cuda --precision "$precision" --config vit-b-32 --steps 5 \
        --peak-tflops "$p" "$@" >"$OUT/ours.tmp" 2>&1
    echo "OURS precision=$precision $* :: $(grep -h '^step' "$OUT/ours.tmp" || tail -n 1 "$OUT/ours.tmp")"
    cat "$OUT/ours.tmp" >>"$OUT/ours.log"
}
for b in 128 256 1024; do ours bf16 "${peak[0]}" --batch $b; done
ours tf32 "${peak[1]}" --batch 256
ours fp32 "${peak[2]}" --batch 256
for b in 256 1024; do ours bf16 "${peak[0]}" --batch $b --cached-features --texts-per-image 3; done
ours bf16 "${peak[0]}" --batch 128 --cached-features --texts-per-image 3 --full-context
# --cuda-graphs (each step one replayed graph) against eager launches, at small batches where
# launch gaps weigh most; 16-token texts, which graphs' cut at a multiple of 8 leaves as they are
for b in 32 128; do
    for graphs in "" --cuda-graphs; do
        ours bf16 "${peak[0]}" --batch $b --cached-features --texts-per-image 3 --caption-tokens 15 $graphs
    done
done
for graphs in "" --cuda-graphs; do ours bf16 "${peak[0]}" --batch 32 --caption-tokens 15 $graphs; done
# texts of 8 to 24 tokens: padded to the longest, or in 3 length groups (--text-groups)
for g in 1 3; do
    ours bf16 "${peak[0]}" --batch 1024 --cached-features --texts-per-image 3 --caption-tokens 24 \
        --min-caption-tokens 8 --text-groups $g
done

# theirs MODE BATCH [--compile]: one PyTorch run, limited to 150 s
theirs() {
    timeout 150 python3 bench/bench_step_gpu_torch.py --mode "$1" --batch "$2" "${@:3}" >>"$OUT/torch.log" 2>&1 ||
        echo "TORCH_STEP mode=$1 batch=$2 ${*:3} FAILED or timed out (see torch.log)"
    grep -h "^TORCH_STEP mode=$1 .*batch=$2 " "$OUT/torch.log" | tail -n 1
}
for b in 256 1024; do
    theirs full $b
    theirs tng $b
done
theirs released 128
theirs full 256 --compile
theirs tng 256 --compile
