# shellcheck shell=bash
# pretrain_base.sh: sourced by data/run_demo.sh and data/ablate.sh: the base CLIP they
# fine-tune, pre-trained from scratch on a synthetic world's affirmative captions.
#
# pretrain_base OUT WORLD BIN STEPS KINDS_STEPS BATCH SEED [tng_train options...] trains the
# tiny config into OUT. With KINDS_STEPS > 0 it is a curriculum: first KINDS_STEPS steps on
# only the captions that name no colour (WORLD/train_kinds.csv, written here), into OUT_kinds,
# then STEPS steps on every caption from there. Why: with colour words to lean on, the tiny
# image tower tells images apart by their colours and learns the objects' shapes (what every
# MCQ question asks about) slowly; on kind-only captions it must learn the shapes
# (bench/RESULTS.md, "Does the base's image tower see the objects?").
#
# first_images N CSV prints CSV's header and the rows of its first N distinct images (by the
# first field: a filepath without commas, as tng_synth writes them), so a
# fine-tune can use the default world's 5,000 training images out of a larger world made with
# the same seed (tng_synth draws every image from its own stream: the first 5,000 are the same).

# The rows of WORLD/train.csv whose caption names none of the world's colours
synth_kinds_csv() {
    local world=$1
    [ -f "$world/train_kinds.csv" ] && [ "$world/train_kinds.csv" -nt "$world/train.csv" ] && return
    local colours
    colours=$(sed -n 's/.*"colours": \[\(.*\)\].*/\1/p' "$world/world.json" | tr -d '" ' | tr , '|')
    [ -n "$colours" ] || { echo "pretrain_base: no colours in $world/world.json" >&2; return 1; }
    { head -n 1 "$world/train.csv"; tail -n +2 "$world/train.csv" | grep -viwE "$colours"; } \
        >"$world/train_kinds.csv.tmp"
    mv "$world/train_kinds.csv.tmp" "$world/train_kinds.csv"
}

first_images() {
    awk -F, -v n="$1" 'NR == 1 { print; next }
        !($1 in seen) { if (count == n) next; seen[$1]; count++ } { print }' "$2"
}

pretrain_base() {
    local out=$1 world=$2 bin=$3 steps=$4 kinds_steps=$5 batch=$6 seed=$7
    shift 7
    local common=(--tng off --freeze none --temperature learned --lr 5e-4 --wd 0.1 --warmup 30
        --schedule cosine --batch "$batch" --seed "$seed")
    local start=(--config tiny)
    rm -rf "$out" "${out}_kinds"
    if [ "$kinds_steps" -gt 0 ]; then
        synth_kinds_csv "$world"
        echo "== pre-training on the captions that name no colour ($kinds_steps steps)"
        "$bin/tng_train" --config tiny --data "$world/train_kinds.csv" "${common[@]}" \
            --steps "$kinds_steps" --out "${out}_kinds" "$@"
        start=(--init "${out}_kinds")
    fi
    echo "== pre-training on every caption ($steps steps)"
    "$bin/tng_train" "${start[@]}" --data "$world/train.csv" "${common[@]}" --steps "$steps" \
        --out "$out" "$@"
}
