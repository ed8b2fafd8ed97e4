#!/usr/bin/env bash
# gpu_programs.sh: the programs on the GPU, beside the CPU (bench/gpu.sh runs it; the programs
# must be built for this machine or carried with their libraries: it checks first).
#   1. tng_train --backend cuda and --backend cpu on the tiny config, 20 steps: losses side by side
#   2. tng_eval --backend cuda equal to --backend cpu on the model just trained
#   3. mpirun -np 1 tng_train --backend cuda: the NCCL transport on one GPU
#   4. a ViT-B/32 full fine-tuning step (vision trains), batch 128: step time in fp32 and TF32
# Usage: bash bench/gpu_programs.sh OUT_DIR
set -u -o pipefail
OUT=${1:?usage: gpu_programs.sh OUT_DIR}
mkdir -p "$OUT"
for p in tng_train tng_eval tng_synth; do
    [ -x "./$p" ] || { echo "SKIP: ./$p not built here"; exit 0; }
    missing=$(ldd "./$p" | grep "not found" | awk '{print $1}' | tr '\n' ' ')
    [ -z "$missing" ] || { echo "SKIP: ./$p lacks libraries here: $missing"; exit 0; }
done
./tng_synth --out "$OUT/world" --train 256 --val 16 --test 64 --size 64 --seed 1 --quiet || exit 1
A="--data $OUT/world/train.csv --batch 32 --steps 20 --contradictions 2 --lr 1e-3 --seed 1 --log-every 5"
./tng_train --backend cpu $A --out "$OUT/cpu" >"$OUT/train_cpu.log" 2>&1 || echo "cpu run failed"
./tng_train --backend cuda $A --out "$OUT/cuda" >"$OUT/train_cuda.log" 2>&1 || echo "cuda run failed"
grep -m1 "backend " "$OUT/train_cuda.log"
echo "step  loss(cpu)  loss(cuda)  step_s(cpu)  step_s(cuda)"
paste <(grep -o '"loss": [0-9.]*\|"step_s": [0-9.]*' "$OUT/cpu/metrics.jsonl" | paste - - | awk '{print $2, $4}') \
      <(grep -o '"loss": [0-9.]*\|"step_s": [0-9.]*' "$OUT/cuda/metrics.jsonl" | paste - - | awk '{print $2, $4}') |
    awk '{printf "%4d  %9s  %10s  %11s  %12s\n", NR, $1, $3, $2, $4}'
for b in cpu cuda; do
    ./tng_eval --backend $b --quiet --model "$OUT/cpu" --name m --mcq "$OUT/world/mcq_test.csv" \
        >"$OUT/eval_$b.md" 2>"$OUT/eval_$b.log"
done
cmp -s "$OUT/eval_cpu.md" "$OUT/eval_cuda.md" && echo "tng_eval: cuda table == cpu table" ||
    { echo "tng_eval: TABLES DIFFER"; diff "$OUT/eval_cpu.md" "$OUT/eval_cuda.md"; }
if command -v mpirun >/dev/null; then
    mpirun --allow-run-as-root -np 1 ./tng_train --backend cuda $A --steps 5 --out "$OUT/np1" \
        >"$OUT/train_np1.log" 2>&1 && echo "mpirun -np 1: $(grep -m1 'parallel' "$OUT/train_np1.log")" ||
        echo "mpirun -np 1 FAILED (see train_np1.log)"
else
    echo "mpirun -np 1: skipped (no mpirun here)"
fi
for math in fp32 tf32; do
    TNG_CUDA_MATH=$math ./tng_train --backend cuda --config vit-b-32 --freeze none --temperature learned \
        --data "$OUT/world/train.csv" --batch 128 --steps 6 --lr 1e-5 --out "$OUT/vitb32_$math" \
        >"$OUT/vitb32_$math.log" 2>&1 || { echo "vit-b-32 $math FAILED"; continue; }
    grep -o '"step_s": [0-9.]*' "$OUT/vitb32_$math/metrics.jsonl" | tail -n 4 | awk -v m=$math \
        '{s += $2; n++} END {printf "vit-b-32 full fine-tuning, batch 128, %s: %.3f s/step (mean of the last %d)\n", m, s / n, n}'
done
