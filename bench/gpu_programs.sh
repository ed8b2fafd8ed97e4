#!/usr/bin/env bash
# gpu_programs.sh: the programs on the GPU, beside the CPU (bench/gpu.sh runs it; the programs
# must be built for this machine or carried with their libraries: it checks first).
#   1. tng_train on the CPU, and on the GPU in fp32 and in bf16 (the default), the tiny config,
#      20 steps: losses side by side
#   2. tng_eval --backend cuda --precision fp32 equal to --backend cpu on the model just trained
#   3. mpirun -np 1 tng_train --backend cuda: the NCCL transport on one GPU
# Usage: bash bench/gpu_programs.sh OUT_DIR [PROGRAMS_DIR]
#   PROGRAMS_DIR: where tng_train, tng_eval and tng_synth are (default .: the top-level build,
#   with MPI; build/cuda/bin holds the one-process build devpack carries)
set -u -o pipefail
OUT=${1:?usage: gpu_programs.sh OUT_DIR [PROGRAMS_DIR]}
P=${2:-.}
mkdir -p "$OUT"
for p in tng_train tng_eval tng_synth; do
    [ -x "$P/$p" ] || { echo "SKIP: $P/$p not built here"; exit 0; }
    missing=$(ldd "$P/$p" | grep "not found" | awk '{print $1}' | tr '\n' ' ')
    [ -z "$missing" ] || { echo "SKIP: $P/$p lacks libraries here: $missing"; exit 0; }
done
"$P/tng_synth" --out "$OUT/world" --train 256 --val 16 --test 64 --size 64 --seed 1 --quiet || exit 1
A="--data $OUT/world/train.csv --batch 32 --steps 20 --contradictions 2 --lr 1e-3 --seed 1 --log-every 5"
"$P/tng_train" --backend cpu $A --out "$OUT/cpu" >"$OUT/train_cpu.log" 2>&1 || echo "cpu run failed"
for p in fp32 bf16; do
    "$P/tng_train" --backend cuda --precision $p $A --out "$OUT/cuda_$p" >"$OUT/train_cuda_$p.log" 2>&1 ||
        echo "cuda $p run failed"
    grep -m1 "backend " "$OUT/train_cuda_$p.log"
done
# the two switches that wait for a GPU's numbers: the step as one graph, and texts in length
# groups; each beside the bf16 run above (same data, seed and steps)
for v in "graphs:--cuda-graphs on" "groups:--text-groups 3"; do
    "$P/tng_train" --backend cuda --precision bf16 $A ${v#*:} --out "$OUT/cuda_${v%%:*}" \
        >"$OUT/train_cuda_${v%%:*}.log" 2>&1 || echo "cuda bf16 ${v#*:} run failed"
    echo "bf16 ${v#*:}: $(grep -h '^trained' "$OUT/train_cuda_${v%%:*}.log") (plain bf16: $(grep -h '^trained' \
        "$OUT/train_cuda_bf16.log"))"
done
# loss_and_time RUN: "loss step_s" per step of a run ("- -" for each of the 20 when it failed)
loss_and_time() {
    [ -f "$1/metrics.jsonl" ] || { for _ in $(seq 20); do echo "- -"; done; return; }
    grep -o '"loss": [0-9.]*\|"step_s": [0-9.]*' "$1/metrics.jsonl" | paste - - | awk '{print $2, $4}'
}
echo "step  loss(cpu)  loss(fp32)  loss(bf16)  step_s(cpu)  step_s(fp32)  step_s(bf16)"
paste <(loss_and_time "$OUT/cpu") <(loss_and_time "$OUT/cuda_fp32") <(loss_and_time "$OUT/cuda_bf16") |
    awk '{printf "%4d  %9s  %10s  %10s  %11s  %12s  %12s\n", NR, $1, $3, $5, $2, $4, $6}'
for b in cpu cuda; do
    "$P/tng_eval" --backend $b --precision fp32 --quiet --model "$OUT/cpu" --name m --mcq "$OUT/world/mcq_test.csv" \
        >"$OUT/eval_$b.md" 2>"$OUT/eval_$b.log"
done
cmp -s "$OUT/eval_cpu.md" "$OUT/eval_cuda.md" && echo "tng_eval: cuda table == cpu table" ||
    { echo "tng_eval: TABLES DIFFER"; diff "$OUT/eval_cpu.md" "$OUT/eval_cuda.md"; }
if command -v mpirun >/dev/null; then
    mpirun --allow-run-as-root -np 1 "$P/tng_train" --backend cuda $A --steps 5 --out "$OUT/np1" \
        >"$OUT/train_np1.log" 2>&1 && echo "mpirun -np 1: $(grep -m1 'parallel' "$OUT/train_np1.log")" ||
        echo "mpirun -np 1 FAILED (see train_np1.log)"
else
    echo "mpirun -np 1: skipped (no mpirun here)"
fi
