#!/usr/bin/env bash
# gpu.sh: the one device script of the CUDA backend. On a machine with a GPU (an H200 is
# what it is sized for: about 8 minutes) it
#   1. builds with -gencode arch=compute_90,code=sm_90 (`make cuda`), unless the binaries
#      were built elsewhere and carried here (the device image may lack cjson/turbojpeg
#      headers; see bench/RESULTS.md "CUDA backend" for the carry recipe);
#   2. runs the GPU tests: tests/gpu/test_*.cu (each kernel family vs the CPU op, and
#      test_train_step, whole training steps);
#   3. benchmarks: bench_kernels (our kernels, ceilings measured in the same run) and
#      bench_torch_kernels.py (PyTorch's kernels at the same shapes);
#   4. whole training steps, ours (build/cuda/bench_step: ViT-B/32 full fine-tuning and the
#      TNG step, bf16 / tf32 / fp32, MFU) beside PyTorch's (transformers CLIPModel, bf16
#      autocast + SDPA, eager and torch.compile; the released TNG-CLIP step): bench/gpu_steps.sh;
#   5. runs the programs with --backend cuda (bench/gpu_programs.sh: tiny training beside the
#      CPU in fp32 and bf16, tng_eval, mpirun -np 1 over NCCL) when they were built for this
#      machine or carried with their libraries;
#   6. runs the kernel tests under compute-sanitizer memcheck and racecheck (quick shapes),
#      after a trivial run that shows the sanitizer works on this host (some refuse the
#      device): if it does not, the summary says so and the steps are skipped;
#   7. prints a summary table last.
# Every step's log goes under $OUT (or build/gpu-logs when OUT is unset). A failing step is
# reported in the summary and the script goes on, so one run yields everything it can. The
# whole run keeps to GPU_BUDGET seconds (default 480: a device call's 10 minutes less the
# machine's start and the transfers): each step's limit is cut to what is left of the budget,
# less 20 s kept for the summary, and a step that would get under 15 s is skipped, said so.
#
# Usage (from the repository root): bash bench/gpu.sh
set -u -o pipefail
OUT=${OUT:-build/gpu-logs}
BUILD=${BUILD:-build}
BIN=$BUILD/cuda
mkdir -p "$OUT"
declare -a STATUS=()

GPU_BUDGET=${GPU_BUDGET:-480}

# step NAME TIMEOUT_SECONDS COMMAND...: runs one step, logs to $OUT/NAME.log, records its fate
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((GPU_BUDGET - 20 - SECONDS))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 15 ]; then
        STATUS+=("$(printf '%-22s %-22s' "$name" "skipped: out of time")")
        return 0
    fi
    local t0=$SECONDS
    echo "== $name: $*"
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    local verdict=ok
    [ $rc -eq 124 ] && verdict="TIMEOUT after ${limit}s"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && verdict="FAILED (exit $rc)"
    STATUS+=("$(printf '%-22s %-22s %4ds' "$name" "$verdict" $((SECONDS - t0)))")
    tail -n 3 "$OUT/$name.log"
    return $rc
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  /usr/local/cuda/bin/nvcc --version 2>&1 | tail -n 2; } >"$OUT/env.log"
cat "$OUT/env.log"

# Carried libraries (make -f cuda/cuda.mk devpack) come first on the library path.
[ -d "$BIN/lib" ] && export LD_LIBRARY_PATH="$PWD/$BIN/lib:${LD_LIBRARY_PATH:-}"

if [ -x "$BIN/test_attention" ] && [ -x "$BIN/test_train_step" ] && [ -x "$BIN/bench_kernels" ] \
    && [ -x "$BIN/bench_step" ] \
    && [ "${GPU_REBUILD:-0}" != 1 ]; then
    echo "== build: using the carried binaries in $BIN"
    STATUS+=("$(printf '%-22s %-22s' build 'carried binaries')")
else
    step build 300 make cuda BUILD="$BUILD" -j"$(nproc)"
fi

# Time limits: the steps' sum (600 s; the runs take far less) plus a carried build fits a
# 10-minute device call.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8} # the CPU oracle's threads
export PYTHONUNBUFFERED=1
export KERNEL_TESTS=$(ls "$BIN"/test_* | grep -v -e '\.' -e test_train_step | tr '\n' ' ')

# run_kernel_tests ARG [COMMAND...]: COMMAND TEST ARG for every kernel test (each family's
# test; all of them, even after a failure); fails if any failed
run_kernel_tests() {
    local arg=$1 rc=0
    shift
    for t in $KERNEL_TESTS; do
        echo "== $(basename "$t") $arg"
        "$@" "$t" $arg || rc=1
    done
    return $rc
}
export -f run_kernel_tests
step kernel_tests 90 bash -c 'run_kernel_tests ""'
step test_train_step 60 "$BIN/test_train_step"
step bench_kernels 90 "$BIN/bench_kernels"
step bench_torch 90 python3 bench/bench_torch_kernels.py
step steps 240 bash bench/gpu_steps.sh "$OUT/steps" "$BIN"
# the programs with --backend cuda (tiny training beside the CPU in fp32 and bf16, tng_eval,
# mpirun -np 1 over NCCL); skipped with a note where they cannot run
# the top-level programs (with MPI) where they load here, else the carried one-process ones
programs_dir=.
{ [ -x ./tng_train ] && ! ldd ./tng_train | grep -q "not found"; } || programs_dir=$BIN/bin
step programs 120 bash bench/gpu_programs.sh "$OUT/programs" "$programs_dir"
# the sanitizers last: the least needed, and some hosts refuse them
# sanitizer_probe: nothing when compute-sanitizer works here (a trivial run printed its ERROR
# SUMMARY, whatever it found), else why not: some hosts refuse it the device
sanitizer_probe() {
    command -v compute-sanitizer >/dev/null || { echo "not found"; return; }
    [ $((GPU_BUDGET - 20 - SECONDS)) -ge 60 ] || { echo "not tried: out of time"; return; }
    local log="$OUT/sanitizer_probe.log"
    timeout 20 compute-sanitizer --tool memcheck "$BIN/test_l2norm" quick >"$log" 2>&1
    grep -q "ERROR SUMMARY" "$log" ||
        echo "cannot run here: $(grep -m1 -v '^=* *$' "$log" | cut -c1-50)"
}
sanitizer_note=$(sanitizer_probe)
if [ -z "$sanitizer_note" ]; then
    step memcheck 70 bash -c 'run_kernel_tests quick compute-sanitizer --tool memcheck \
        --error-exitcode 1'
    step racecheck 80 bash -c 'run_kernel_tests quick compute-sanitizer --tool racecheck \
        --racecheck-report hazard --error-exitcode 1'
else
    STATUS+=("$(printf '%-22s skipped: compute-sanitizer %s (%s)' sanitizer "$sanitizer_note" \
        "$OUT/sanitizer_probe.log")")
fi

# ---- summary: step fates, then every benchmarked kernel with PyTorch's best beside it ----
echo
echo "================================ summary ================================"
printf '%s\n' "${STATUS[@]}"
[ -f "$OUT/kernel_tests.log" ] && awk '/^== /{name=$2} /^  FAIL|^RESULT/{print name ": " $0}' \
    "$OUT/kernel_tests.log" | head -n 40
[ -f "$OUT/test_train_step.log" ] && grep -h -E "^  FAIL|^RESULT" "$OUT/test_train_step.log" \
    | sed "s/^/test_train_step: /" | head -n 20
[ -f "$OUT/steps.log" ] && grep -h -E "^GPU|^OURS|^TORCH_STEP|FAILED" "$OUT/steps.log" | sed 's/^/steps: /'
[ -f "$OUT/programs.log" ] && sed 's/^/programs: /' "$OUT/programs.log" | tail -n 30
for s in memcheck racecheck; do
    [ -f "$OUT/$s.log" ] && grep -h -E "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT/$s.log" | sed "s/^/$s: /"
done
python3 - "$OUT/bench_kernels.log" "$OUT/bench_torch.log" <<'PY'
import sys

def fields(line):
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)

ours, torch_best, ceilings = [], {}, []
try:
    for line in open(sys.argv[1]):
        if line.startswith("RESULT "):
            ours.append(fields(line))
        elif line.startswith("CEILING "):
            ceilings.append(line.split(None, 1)[1].strip())
except OSError:
    pass
try:
    for line in open(sys.argv[2]):
        if line.startswith("TORCH "):
            f = fields(line)
            key = (f["kernel"], f["shape"])
            if key not in torch_best or float(f["ms"]) < float(torch_best[key]["ms"]):
                torch_best[key] = f
        elif line.startswith("TORCH_CEILING "):
            ceilings.append("torch " + line.split(None, 1)[1].strip())
except OSError:
    pass
for c in ceilings:
    print("ceiling:", c)
head = f"{'kernel':24} {'shape':26} {'tng ms':>9} {'GB/s':>8} {'TFLOP/s':>8} {'%ceil':>6} {'torch ms':>9} {'torch impl':>10} {'speedup':>8}"
print(head)
print("-" * len(head))
for f in ours:
    t = torch_best.get((f["kernel"], f["shape"]))
    tms = f"{float(t['ms']):9.4f}" if t else f"{'-':>9}"
    impl = t["impl"] if t else "-"
    speed = f"{float(t['ms']) / float(f['ms']):7.2f}x" if t else f"{'-':>8}"
    print(f"{f['kernel']:24} {f['shape']:26} {float(f['ms']):9.4f} {float(f['GBps']):8.1f} "
          f"{float(f['TFLOPs']):8.2f} {float(f['pct']):6.1f} {tms} {impl:>10} {speed}")
if not ours:
    print("(no benchmark results: see bench_kernels.log)")
PY
