#!/usr/bin/env bash
# Image preprocessing benchmark, every side on the same files, single thread: tng (image.h,
# exact and fast modes, and the full-size decode alone) against stock Pillow + torchvision
# and, when PILLOW_SIMD names a folder holding Pillow-SIMD's PIL, against Pillow-SIMD too.
# The sides alternate in rotating order over ROUNDS rounds (bench/paired.py), and every
# ratio is reported as median [min..max] of the per-round ratios. Not a test.
#
# Usage (from the repository root):
#   bench/bench_image.sh [BUILD_DIR] [IMAGE_DIR] [COUNT] [ROUNDS]
#   PYTHON=... (default .venv/bin/python)  PILLOW_SIMD=DIR (e.g. a `pip install --target DIR
#   pillow-simd`, built with CC="cc -mavx2")
set -euo pipefail
build=${1:-build}
dir=${2:-/tmp/tng_bench_images}
count=${3:-200}
rounds=${4:-5}
python=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1
[ -d "$dir" ] || "$python" bench/bench_image.py make "$dir" "$count"
make -s BUILD="$build" "$build/bench/bench_image"
rate='([0-9.]+) images/s'
args=(--rounds "$rounds"
      --side "tng=$build/bench/bench_image $dir 224 3"
      --side "pillow=$python bench/bench_image.py run $dir 224"
      --metric "tng_exact=tng:tng exact: $rate" --metric "tng_fast=tng:tng fast: +$rate"
      --metric "tng_decode=tng:decode only[^:]*: $rate"
      --metric "pil_torchvision=pillow:torchvision[^:]*: $rate"
      --metric "pil_numpy=pillow:numpy[^:]*: $rate"
      --metric "pil_decode=pillow:Pillow decode only: $rate"
      --ratio "exact/Pillow+torchvision=tng_exact/pil_torchvision"
      --ratio "exact/Pillow+numpy=tng_exact/pil_numpy"
      --ratio "decode tng/Pillow=tng_decode/pil_decode"
      --ratio "exact/decode (tng)=tng_exact/tng_decode")
if [ -n "${PILLOW_SIMD:-}" ]; then
    args+=(--side "simd=PYTHONPATH=$PILLOW_SIMD $python bench/bench_image.py run $dir 224"
           --metric "simd_torchvision=simd:torchvision[^:]*: $rate"
           --metric "simd_numpy=simd:numpy[^:]*: $rate"
           --metric "simd_decode=simd:Pillow decode only: $rate"
           --ratio "exact/Pillow-SIMD+torchvision=tng_exact/simd_torchvision"
           --ratio "exact/Pillow-SIMD+numpy=tng_exact/simd_numpy"
           --ratio "decode tng/Pillow-SIMD=tng_decode/simd_decode")
fi
"$python" bench/paired.py "${args[@]}"
# which Pillow and libjpeg-turbo each side ran
versions='import PIL; from PIL import features; print("PIL", PIL.__version__, "from", PIL.__path__[0], "libjpeg-turbo", features.version("libjpeg_turbo"))'
"$python" -c "$versions"
[ -z "${PILLOW_SIMD:-}" ] || PYTHONPATH="$PILLOW_SIMD" "$python" -c "$versions"
