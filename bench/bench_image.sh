#!/usr/bin/env bash
# Image preprocessing benchmark, both sides in one run on the same files: tng (image.h,
# exact and fast modes) against Pillow + torchvision, single thread. Not a test.
# Usage (from the repository root): bench/bench_image.sh [BUILD_DIR] [IMAGE_DIR] [COUNT]
set -euo pipefail
build=${1:-build}
dir=${2:-/tmp/tng_bench_images}
count=${3:-200}
export OMP_NUM_THREADS=1
[ -d "$dir" ] || .venv/bin/python bench/bench_image.py make "$dir" "$count"
make -s BUILD="$build" "$build/bench/bench_image"
"$build/bench/bench_image" "$dir" 224 3
.venv/bin/python bench/bench_image.py run "$dir" 224
