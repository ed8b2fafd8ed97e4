#!/usr/bin/env bash
# The paper's real-data run: fetch COCO 2014 + the NegBench evaluation sets + OpenAI ViT-B/32,
# fine-tune with TNG (and a plain baseline), evaluate, and print the comparison.
#
# The runs use tng_train's named recipes (`./tng_train --help` prints them in full):
#   tng-released  the authors' released training script exactly (PyTorch's AdamW defaults,
#                 their negation pairing and random image-to-text targets): the paper's numbers
#   tng           the same recipe with the released script's defects fixed
#   tng-ours      the same set-up with the texts make ablate found best (no full negation)
#   plain         --recipe tng --tng off: the same fine-tuning without negation texts
#
#   bash data/coco_setup.sh [--dry-run] STAGE...      stages: fetch check prep train eval all
#
# Every stage first checks what it needs and stops with a message naming the missing file, so a
# half-finished machine fails in seconds rather than hours in. --dry-run prints the commands of
# the stages without running them (and without requiring the data). Downloads land under
# $REAL (default data/cache/real, never committed) and are skipped when already present.
#
# Sources (official or the authors' own releases):
#   COCO 2014 train images + captions  http://images.cocodataset.org/{zips/train2014.zip,
#                                      annotations/annotations_trainval2014.zip}
#   COCO 2017 val images (NegBench)    http://images.cocodataset.org/zips/val2017.zip
#   VOC2007 test images (NegBench)     http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar
#   NegBench CSVs                      the authors' Google Drive folder linked from
#                                      github.com/m1k2zoo/negbench (datasets.md), fetched with
#                                      `gdown --folder` when gdown is installed, else by hand
#   OpenAI ViT-B/32                    huggingface.co/openai/clip-vit-base-patch32 (huggingface_hub)
#   CC-Neg (optional)                  CoN-CLIP's release (github.com/jaisidhsingh/CoN-CLIP): convert
#                                      its pickle to CSV image_path,caption,negated_caption (last
#                                      40,000 items) and set CCNEG_CSV and CCNEG_IMAGES
#
# Time per epoch (414,113 caption pairs, batch 128 = 3,235 steps; vision frozen, 3 texts/image):
#   this 2-core CPU: ~13-25 h per epoch, derived from bench/RESULTS.md "CPU training step"
#     (~190 GFLOP/s at ViT-B/32 size) and 7-14 GFLOP of text-tower training per text (5.96 x 3
#     GFLOP at 77 tokens, cut to the batch's longest text, ~30-60 tokens), 384 texts a step;
#     plus once ~65 min for the image embeddings (82,783 x 8.82 GFLOP), cached in the run folder.
#   one H200: NOT MEASURED (tng_train runs on the CPU backend today). Estimate from the anchors
#     of docs/REFERENCE.md §9 (performance anchors): 2.7-5.4 TFLOP a step at 85-400 TFLOP/s
#     effective = ~1-3 min per epoch, the image pass limited by JPEG decoding (~320 img/s per
#     core, bench/RESULTS.md).
#
# Knobs (environment): REAL, RUN (runs/coco), RECIPES ("tng-released tng tng-ours": one TNG run each, in
# $RUN/<recipe>), EPOCHS and BATCH (unset: the recipe's 10 and 128; set, they override it),
# THREADS (nproc), PYTHON (.venv/bin/python), CCNEG_CSV, CCNEG_IMAGES, PLAIN (1: also train the
# TNG-off baseline in $RUN/plain).
set -euo pipefail
cd "$(dirname "$0")/.."

REAL=${REAL:-data/cache/real}
RUN=${RUN:-runs/coco}
RECIPES=${RECIPES:-"tng-released tng tng-ours"}
EPOCHS=${EPOCHS:-}
BATCH=${BATCH:-}
THREADS=${THREADS:-$(nproc)}
PYTHON=${PYTHON:-.venv/bin/python}
PLAIN=${PLAIN:-1}
CCNEG_CSV=${CCNEG_CSV:-}
CCNEG_IMAGES=${CCNEG_IMAGES:-}
NEGBENCH_DRIVE=https://drive.google.com/drive/folders/1kSEq0mkV1t1T8GuOAM65iz_iAA7e5gxB

HF=$REAL/clip-vit-base-patch32
COCO=$REAL/coco
NEG=$REAL/negbench
VOC_IMAGES=$REAL/VOCdevkit/VOC2007/JPEGImages
CAPTIONS=$COCO/annotations/captions_train2014.json
SHARDS=$REAL/shards/coco2014_train
# NegBench file names as the authors release them
COCO_MCQ=$NEG/COCO_val_mcq_llama3.1_rephrased.csv
VOC_MCQ=$NEG/VOC2007_mcq_llama3.1_rephrased.csv
COCO_RETRIEVAL=$NEG/COCO_val_retrieval.csv
COCO_NEG_RETRIEVAL=$NEG/COCO_val_negated_retrieval_llama3.1_rephrased_affneg_true.csv

DRY=0
fail() { echo "coco_setup: $*" >&2; exit 1; }
say() { echo "== $*"; }
# run CMD...: print it; execute it unless --dry-run
run() {
    printf '+'; printf ' %q' "$@"; printf '\n'
    [ "$DRY" = 1 ] || "$@"
}
need_file() { [ "$DRY" = 1 ] || [ -s "$1" ] || fail "$1: missing ($2)"; }
need_tool() { command -v "$1" > /dev/null 2>&1 || fail "'$1' not found: $2"; }
# count_jpegs DIR EXPECTED WHAT: the extracted image folder holds the expected number of JPEGs
count_jpegs() {
    [ "$DRY" = 1 ] && return 0
    [ -d "$1" ] || fail "$1: missing ($3)"
    local n
    n=$(find "$1" -maxdepth 1 -name '*.jpg' | wc -l)
    [ "$n" -eq "$2" ] || fail "$1: $n JPEGs, expected $2 ($3; re-extract the archive)"
}
# fetch_archive URL DEST_DIR MARKER: download and unpack unless MARKER already exists
fetch_archive() {
    local url=$1 dest=$2 marker=$3 file
    file=$REAL/downloads/$(basename "$url")
    if [ -e "$marker" ]; then echo "have $marker"; return 0; fi
    run mkdir -p "$REAL/downloads" "$dest"
    run wget -c -O "$file" "$url"
    case "$file" in
    *.zip) run unzip -q -o "$file" -d "$dest" ;;
    *.tar) run tar -xf "$file" -C "$dest" ;;
    esac
}

stage_fetch() {
    say "fetch: COCO 2014 train + captions, COCO 2017 val, VOC2007 test, NegBench CSVs, ViT-B/32"
    [ "$DRY" = 1 ] || need_tool wget "apt-get install wget"
    [ "$DRY" = 1 ] || need_tool unzip "apt-get install unzip"
    fetch_archive http://images.cocodataset.org/annotations/annotations_trainval2014.zip "$COCO" "$CAPTIONS"
    fetch_archive http://images.cocodataset.org/zips/train2014.zip "$COCO" "$COCO/train2014"
    fetch_archive http://images.cocodataset.org/zips/val2017.zip "$COCO" "$COCO/val2017"
    fetch_archive http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar "$REAL" "$VOC_IMAGES"
    if [ ! -s "$COCO_MCQ" ]; then
        if command -v gdown > /dev/null 2>&1 || [ "$DRY" = 1 ]; then
            run gdown --folder "$NEGBENCH_DRIVE" -O "$NEG"
            # the Drive folder nests the image CSVs under images/; flatten what we use
            [ "$DRY" = 1 ] || find "$NEG" -mindepth 2 -name '*.csv' -exec mv -n {} "$NEG/" \;
        else
            fail "NegBench CSVs: install gdown (pip install gdown) or download $NEGBENCH_DRIVE by hand into $NEG/"
        fi
    fi
    if [ ! -s "$HF/model.safetensors" ]; then
        run "$PYTHON" - "$HF" <<'EOF'
import os, sys
from huggingface_hub import snapshot_download
out = sys.argv[1]
snapshot_download("openai/clip-vit-base-patch32", local_dir=out,
                  allow_patterns=["config.json", "model.safetensors", "pytorch_model.bin"])
if not os.path.exists(os.path.join(out, "model.safetensors")):  # tng reads safetensors only
    from transformers import CLIPModel
    CLIPModel.from_pretrained(out).save_pretrained(out, safe_serialization=True)
EOF
    fi
}

stage_check() {
    say "check: every input present and complete"
    need_file "$CAPTIONS" "COCO 2014 captions: stage fetch"
    count_jpegs "$COCO/train2014" 82783 "COCO 2014 train images"
    count_jpegs "$COCO/val2017" 5000 "COCO 2017 val images, NegBench's COCO sets"
    count_jpegs "$VOC_IMAGES" 4952 "VOC2007 test images, NegBench's VOC MCQ"
    for f in "$COCO_MCQ" "$VOC_MCQ" "$COCO_RETRIEVAL" "$COCO_NEG_RETRIEVAL"; do
        need_file "$f" "NegBench CSV from $NEGBENCH_DRIVE"
    done
    need_file "$HF/config.json" "OpenAI ViT-B/32: stage fetch"
    need_file "$HF/model.safetensors" "OpenAI ViT-B/32: stage fetch"
    if [ -n "$CCNEG_CSV" ]; then
        need_file "$CCNEG_CSV" "CC-Neg CSV (CCNEG_CSV)"
        [ "$DRY" = 1 ] || [ -d "$CCNEG_IMAGES" ] || fail "CCNEG_IMAGES='$CCNEG_IMAGES': not a folder"
    else
        echo "CC-Neg: skipped (set CCNEG_CSV and CCNEG_IMAGES to include it)"
    fi
    for p in tng_train tng_eval tng_prep; do [ -x "./$p" ] || fail "./$p: not built (make all)"; done
    need_file data/cache/bpe_simple_vocab_16e6.txt.gz "make vocab"
    need_file data/cache/lexicon.tsv "make lexicon"
}

# Optional: checksummed 224x224 crops, for runs that train the vision tower or repeat often.
# The paper recipe freezes vision, so its images are decoded once into the embedding cache anyway.
stage_prep() {
    say "prep: COCO 2014 train -> $SHARDS"
    need_file "$CAPTIONS" "stage fetch"
    run ./tng_prep --data "$CAPTIONS" --format coco --image-root "$COCO/train2014" \
        --instances "$COCO/annotations/instances_train2014.json" --out "$SHARDS" --threads "$THREADS"
}

# train_one NAME OPTION...: fine-tunes OpenAI ViT-B/32 on COCO 2014 with the options given (a
# --recipe, which trains on every caption pair), into $RUN/NAME; resumes when the run has a
# checkpoint, else starts it afresh (--overwrite: what a run killed before its first checkpoint
# left goes).
train_one() {
    local out=$RUN/$1 resume=(--overwrite) sizes=()
    shift
    [ -e "$out/latest" ] && resume=(--resume)
    [ -n "$EPOCHS" ] && sizes+=(--epochs "$EPOCHS")
    [ -n "$BATCH" ] && sizes+=(--batch "$BATCH")
    run ./tng_train --init "$HF" --data "$CAPTIONS" --format coco --image-root "$COCO/train2014" \
        "$@" "${sizes[@]}" --threads "$THREADS" --checkpoint-every 500 --out "$out" "${resume[@]}"
    # (no --val-mcq: --image-root re-roots it too, and NegBench's images live elsewhere)
}

stage_train() {
    stage_check
    say "train: recipes $RECIPES$([ "$PLAIN" = 1 ] && echo ' and plain') on COCO 2014"
    local recipe
    for recipe in $RECIPES; do train_one "$recipe" --recipe "$recipe"; done
    [ "$PLAIN" = 1 ] && train_one plain --recipe tng --tng off
    return 0
}

# eval_set ROOT NAME CSV-ARGS...: one tng_eval per image folder (--image-root re-roots every
# CSV path of the call to ROOT/<file name>); the table goes to $RUN/eval/NAME.{md,json}. Ties
# go NegBench's way (--ties first-index), so the numbers compare with the published ones.
eval_set() {
    local root=$1 name=$2
    shift 2
    local models=(--model "$HF" --name "OpenAI CLIP") recipe
    for recipe in $RECIPES; do models+=(--model "$RUN/$recipe" --name "TNG $recipe"); done
    [ "$PLAIN" = 1 ] && models+=(--model "$RUN/plain" --name plain)
    run ./tng_eval "${models[@]}" --image-root "$root" --ties first-index --json "$RUN/eval/$name.json" "$@" > "$TABLE_SINK"
    [ "$DRY" = 1 ] || { cp "$TABLE_SINK" "$RUN/eval/$name.md" && cat "$RUN/eval/$name.md"; }
}

stage_eval() {
    stage_check
    local recipe
    for recipe in $RECIPES; do
        [ "$DRY" = 1 ] || [ -e "$RUN/$recipe/latest" ] || fail "$RUN/$recipe: no trained model (stage train)"
    done
    say "eval: NegBench COCO (MCQ, retrieval, negated retrieval), VOC MCQ${CCNEG_CSV:+, CC-Neg}"
    run mkdir -p "$RUN/eval"
    TABLE_SINK=/dev/stdout
    [ "$DRY" = 1 ] || TABLE_SINK=$RUN/eval/.table
    eval_set "$COCO/val2017" coco --mcq "$COCO_MCQ" --retrieval "$COCO_RETRIEVAL" --retrieval "$COCO_NEG_RETRIEVAL"
    eval_set "$VOC_IMAGES" voc --mcq "$VOC_MCQ"
    if [ -n "$CCNEG_CSV" ]; then
        eval_set "$CCNEG_IMAGES" ccneg --ccneg "$CCNEG_CSV"
    fi
    cat <<'EOF'
Published ViT-B/32 baselines (docs/REFERENCE.md §8): NegBench MCQ accuracy, COCO / VOC:
  OpenAI CLIP 39.3 / 38.7 (COCO: affirmation 69.1, negation 6.8, hybrid 39.3)
  NegCLIP 28.7 / 30.5;  ConCLIP 23.9 / 38.1;  CLIP fine-tuned on NegFull 54.4 / 54.8
  CC-Neg: CLIP B/32 ~65.8, CoN-CLIP ~99.6.  Our "OpenAI CLIP" column should land close to the first
  line (preprocessing and tokenizer match open_clip exactly; not yet checked on the real data); TNG-CLIP's own numbers are
  not known here (docs/REFERENCE.md §8), so compare TNG against the OpenAI and plain columns.
EOF
}

stages=()
for arg in "$@"; do
    case "$arg" in
    --dry-run) DRY=1 ;;
    fetch | check | prep | train | eval) stages+=("$arg") ;;
    all) stages+=(fetch train eval) ;; # train and eval run check first
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) fail "unknown stage '$arg' (fetch check prep train eval all, --dry-run)" ;;
    esac
done
[ ${#stages[@]} -gt 0 ] || fail "give a stage: fetch check prep train eval all (see --help)"
for s in "${stages[@]}"; do "stage_$s"; done
