#!/usr/bin/env bash
# get_vocab.sh: fetches CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz) into data/cache/.
#
# The file ships inside the open-clip-torch 3.3.0 wheel on PyPI; we download that wheel
# with `pip download --no-deps`, extract the one member, and accept it only if its sha256
# matches the value below. Idempotent: a present file with the right hash is left alone.
# Run from anywhere; paths are relative to the repository root.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_dir="$repo_root/data/cache"
vocab="$cache_dir/bpe_simple_vocab_16e6.txt.gz"
member="open_clip/bpe_simple_vocab_16e6.txt.gz"
wheel_spec="open-clip-torch==3.3.0"
want_sha256="924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$vocab" ] && [ "$(sha256_of "$vocab")" = "$want_sha256" ]; then
    exit 0
fi

# Prefer the project venv's python (it has pip); fall back to the system one.
python="$repo_root/.venv/bin/python"
[ -x "$python" ] || python=python3

mkdir -p "$cache_dir"
tmp=$(mktemp -d "$cache_dir/get_vocab.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "get_vocab.sh: downloading $wheel_spec from PyPI to extract $member"
"$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "$wheel_spec"
wheel=$(ls "$tmp"/open_clip_torch-3.3.0-*.whl)

if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$wheel" "$member" -d "$tmp"
else
    "$python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
        "$wheel" "$member" "$tmp"
fi

got_sha256=$(sha256_of "$tmp/$member")
if [ "$got_sha256" != "$want_sha256" ]; then
    echo "get_vocab.sh: $member from $wheel_spec has sha256 $got_sha256, expected $want_sha256" >&2
    exit 1
fi
mv "$tmp/$member" "$vocab"
echo "get_vocab.sh: wrote $vocab"
