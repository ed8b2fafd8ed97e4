#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine (run as root): the packages tng builds and tests
# with, then the files it derives at set-up (the CLIP BPE vocabulary, fetched from the
# open-clip-torch wheel on PyPI, and the WordNet concrete-noun lexicon). Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends \
        build-essential clang libclang-rt-14-dev libomp-dev \
        libopenblas-dev libopenblas-openmp-dev libutf8proc-dev libcjson-dev libturbojpeg0-dev zlib1g-dev \
        openmpi-bin libopenmpi-dev wordnet-base gnuplot-nox \
        python3 python3-pip unzip ca-certificates >/dev/null
else
    echo "setup: not root or no apt-get; install the packages listed in data/setup.sh yourself" >&2
fi
make vocab lexicon
