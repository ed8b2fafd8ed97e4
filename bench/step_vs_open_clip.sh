#!/usr/bin/env bash
# The CPU training step, tng against open_clip, at equal work and with tng's EOT cut, side by
# side: the sides alternate in rotating order over ROUNDS rounds (bench/paired.py), and each
# ratio is the median [min..max] of the per-round ratios. The same rounds measure sgemm at
# 2048^3 with 2 threads for both BLAS libraries (OpenBLAS under tng, PyTorch's own under
# open_clip), so the machine's state is on record beside every ratio. Not a test.
#
#   tng_cut    bench_step as the engine runs: texts cut to max(EOT)+1 = CAPTION+1 tokens
#   tng_full   bench_step --full-context: all 77 positions
#   oc_77      open_clip as shipped: all 77 positions
#   oc_cut     open_clip with context_length = CAPTION+1: the positions tng keeps
#
# Usage (from the repository root):
#   bench/step_vs_open_clip.sh CONFIG BATCH [STEPS] [ROUNDS] [BUILD_DIR] [CAPTION]
#   bench/step_vs_open_clip.sh tiny 128 5 5
#   bench/step_vs_open_clip.sh vit-b-32 8 3 5
# PYTHON=... (default .venv/bin/python); THREADS=N (default 2) threads on both sides;
# CLOCK=cpu times both sides with their process's CPU time instead of the wall clock: with
# THREADS=1 the steadier measure on a machine shared with other jobs. BASELINE=PATH adds an
# older build's bench_step as one more side (its EOT-cut step), for before/after ratios.
set -euo pipefail
config=${1:?config (tiny or vit-b-32)}
batch=${2:?batch}
steps=${3:-3}
rounds=${4:-5}
build=${5:-build}
caption=${6:-16}
python=${PYTHON:-.venv/bin/python}
threads=${THREADS:-2}
clock_flag=
[ "${CLOCK:-wall}" = cpu ] && clock_flag=--cpu-time
cut=$((caption + 1))
make -s BUILD="$build" "$build/bench/bench_step"
tng="env OMP_NUM_THREADS=$threads $build/bench/bench_step --config $config --batch $batch --steps $steps --caption-tokens $caption $clock_flag"
oc="$python bench/bench_step_torch.py --config $config --batch $batch --steps $steps --caption-tokens $caption --threads $threads $clock_flag"
ms='step ([0-9.]+) ms'
baseline=()
if [ -n "${BASELINE:-}" ]; then
    baseline=(--side "base_cut=env OMP_NUM_THREADS=$threads $BASELINE --config $config --batch $batch --steps $steps --caption-tokens $caption $clock_flag"
              --metric "base_cut_ms=base_cut:$ms" --ratio "this build vs BASELINE, cut=base_cut_ms/tng_cut_ms")
fi
"$python" bench/paired.py --rounds "$rounds" "${baseline[@]}" \
    --side "tng_cut=$tng" --side "tng_full=$tng --full-context" \
    --side "oc_77=$oc" --side "oc_cut=$oc --context-length $cut" \
    --side "sgemm=env OMP_NUM_THREADS=2 $build/bench/bench_step --sgemm-peak; $python bench/bench_step_torch.py --sgemm --threads 2" \
    --metric "tng_cut_ms=tng_cut:$ms" --metric "tng_full_ms=tng_full:$ms" \
    --metric "oc_77_ms=oc_77:$ms" --metric "oc_cut_ms=oc_cut:$ms" \
    --metric "openblas_gflops=sgemm:sgemm 2048\^3: ([0-9.]+) GFLOP/s" \
    --metric "torch_gflops=sgemm:torch sgemm[^:]*: ([0-9.]+) GFLOP/s" \
    --ratio "equal work, context $cut=oc_cut_ms/tng_cut_ms" \
    --ratio "equal work, context 77=oc_77_ms/tng_full_ms" \
    --ratio "EOT cut vs open_clip at 77=oc_77_ms/tng_cut_ms" \
    --ratio "sgemm torch / OpenBLAS=torch_gflops/openblas_gflops"
