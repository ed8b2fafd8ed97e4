#!/usr/bin/env bash
# ablate.sh: the TNG ablation harness (make ablate). From ONE pre-trained base it fine-tunes
# every variant for the same steps, data and seed, evaluates each on the test split every
# EVERY steps (three phrasing sets: in-template = the training-time frames, std = held-out,
# alt = held-out-2), and writes a Markdown table and PNG curves per metric into bench/ablation/.
#
# Key design choice: training and evaluation never overlap (one heavy job at a time on a small
# machine). tng_train keeps only its last two checkpoints, so while a variant trains this script
# watches the run's `latest` pointer and copies each new checkpoint aside; they are evaluated
# after the run ends, all in one tng_eval call per variant.
#
# Repeats: each variant named in SEED_VARIANTS also fine-tunes with every seed in EXTRA_SEEDS
# (same base, same data; the seed changes the sampling order and the TNG draws), and the
# table gets a section with the mean and the min..max spread over all its seeds.
#
# Environment knobs (defaults sized for < 60 minutes on a 2-core machine):
#   STEPS=100 EVERY=25 BATCH=128 LR=1e-4 SEED=0 BASE_STEPS=1000 (about 55 minutes in all)
#   VARIANTS="plain tng ..."   (names from variant_flags below; issue 14's signals: ours_sn1
#                              ours_mcq1 ours_hard4 m1_sn1, e.g. VARIANTS="plain each_m1_c4_lr2e-5 ours_sn1")
#   SEED_VARIANTS="plain ..." EXTRA_SEEDS="1 2"
#   ABLATE_OUT=runs/ablate  BENCH_OUT=bench/ablation  WORLD=data/cache/synth  BIN=. (programs)
#   SYNTH_FLAGS="--caption-negations 0.02 --caption-coverage 0.7" (tng_synth options; give such
#   a world its own WORLD folder, and a base pre-trained on it its own ABLATE_OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
. data/synth_world.sh   # defines: synth_world
. data/pretrain_base.sh # defines: pretrain_base

WORLD=${WORLD:-data/cache/synth}
SYNTH_FLAGS=${SYNTH_FLAGS:-}
OUT=${ABLATE_OUT:-runs/ablate}
BENCH=${BENCH_OUT:-bench/ablation}
BIN=${BIN:-.}
BASE_STEPS=${BASE_STEPS:-1000}
STEPS=${STEPS:-100}
EVERY=${EVERY:-25}
BATCH=${BATCH:-128}
LR=${LR:-1e-4}
SEED=${SEED:-0}
VARIANTS=${VARIANTS:-"plain tng_released tng tng_m1 tng_m4 tng_vision tng_lr2e-5 tng_lr3e-4 \
tng_i2t_mean tng_i2t_random tng_i2t_each tng_mix0.5 tng_mix0.25 contra2 contra2_w2 contra4 \
contra2_m1 contra4_m1 each_m1_c4 each_m1_c4_lr2e-5"}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

# The fine-tuning flags of a variant, on top of the common ones (TNG on, vision frozen, fixed
# temperature 0.07, lr $LR, M = 2, own i2t target, no contradictions).
variant_flags() {
    case "$1" in
    plain) echo "--tng off" ;;
    tng) echo "" ;;
    tng_released) echo "--tng-compat released" ;;
    tng_m1) echo "--neg-per-image 1" ;;
    tng_m4) echo "--neg-per-image 4" ;;
    tng_vision) echo "--freeze none" ;;
    tng_lr2e-5) echo "--lr 2e-5" ;;
    tng_lr3e-4) echo "--lr 3e-4" ;;
    tng_i2t_mean) echo "--i2t-target mean" ;;
    tng_i2t_random) echo "--i2t-target released-random" ;;
    tng_i2t_each) echo "--i2t-target each" ;;
    tng_mix0.5) echo "--tng-ratio 0.5" ;; # half the steps on the original captions alone
    tng_mix0.25) echo "--tng-ratio 0.25" ;;
    contra1) echo "--contradictions 1" ;;
    contra2) echo "--contradictions 2" ;;
    contra2_w0.5) echo "--contradictions 2 --contradiction-weight 0.5" ;;
    contra2_w2) echo "--contradictions 2 --contradiction-weight 2" ;;
    contra2_m1) echo "--contradictions 2 --neg-per-image 1" ;;
    contra2_lr2e-5) echo "--contradictions 2 --lr 2e-5" ;;
    contra2_m1_lr2e-5) echo "--contradictions 2 --neg-per-image 1 --lr 2e-5" ;;
    contra3) echo "--contradictions 3" ;; # adds the role-swapped hybrid
    contra3_m1) echo "--contradictions 3 --neg-per-image 1" ;;
    contra4) echo "--contradictions 4" ;; # adds the false affirmation of the absent object
    contra4_m1) echo "--contradictions 4 --neg-per-image 1" ;;
    contra6_m1) echo "--contradictions 6 --neg-per-image 1" ;;
    each_m1_c4) echo "--i2t-target each --neg-per-image 1 --contradictions 4" ;;
    each_m1_c4_lr2e-5) echo "--i2t-target each --neg-per-image 1 --contradictions 4 --lr 2e-5" ;;
    # issue 14's signals, on top of the demo's recipe or alone (not in the default VARIANTS)
    ours_sn1) echo "$(variant_flags each_m1_c4_lr2e-5) --standalone-negations 1" ;;
    ours_mcq1) echo "$(variant_flags each_m1_c4_lr2e-5) --mcq-loss 1" ;;
    ours_hard4) echo "$(variant_flags each_m1_c4_lr2e-5) --hard-batches 4" ;;
    m1_sn1) echo "--neg-per-image 1 --standalone-negations 1" ;; # at LR: 1e-4 by default
    *) echo "ablate: unknown variant '$1'" >&2; exit 2 ;;
    esac
}
SEED_VARIANTS=${SEED_VARIANTS:-"plain tng tng_m1 each_m1_c4 each_m1_c4_lr2e-5"}
EXTRA_SEEDS=${EXTRA_SEEDS:-"1 2"}
for v in $VARIANTS $SEED_VARIANTS; do variant_flags "$v" >/dev/null; done # fail early on a typo

EVAL_SETS=()
for sfx in "" _alt _intemplate; do # std (held-out), alt (held-out-2), in-template
    EVAL_SETS+=(--mcq "$WORLD/mcq_test$sfx.csv" --retrieval "$WORLD/retrieval_test$sfx.csv"
        --retrieval "$WORLD/negated_retrieval_test$sfx.csv" --ccneg "$WORLD/ccneg_test$sfx.csv")
done

started=$(date +%s)
# shellcheck disable=SC2086 # flags are words on purpose
synth_world "$WORLD" "$BIN" $SYNTH_FLAGS
mkdir -p "$OUT" "$BENCH"

if [ ! -f "$OUT/base/latest" ]; then
    echo "== pre-training the base ($BASE_STEPS steps)"
    pretrain_base "$OUT/base" "$WORLD" "$BIN" "$BASE_STEPS" 0 "$BATCH" "$SEED" --log-every 50 \
        >"$OUT/base.log" 2>&1
fi
if [ ! -f "$OUT/base/eval.json" ]; then
    "$BIN/tng_eval" --quiet --model "$OUT/base" --name step0 "${EVAL_SETS[@]}" \
        --json "$OUT/base/eval.json" >/dev/null
fi

# Copies each checkpoint the run at $1 (pid $2) publishes into $1/evals/ckpt-<step>.
collect_checkpoints() {
    local run=$1 pid=$2 seen=""
    mkdir -p "$run/evals"
    while :; do
        local alive=0
        kill -0 "$pid" 2>/dev/null && alive=1
        if [ -f "$run/latest" ]; then
            local name
            name=$(tr -d '\n' <"$run/latest")
            if [ -n "$name" ] && [ "$name" != "$seen" ] && [ -d "$run/$name" ]; then
                rm -rf "$run/evals/$name.tmp"
                cp -r "$run/$name" "$run/evals/$name.tmp" && mv "$run/evals/$name.tmp" "$run/evals/$name"
                seen=$name
            fi
        fi
        [ "$alive" = 1 ] || break
        sleep 1
    done
}

# Fine-tunes variant $1 with seed $2 into run directory $3 and evaluates its checkpoints.
fine_tune() {
    local v=$1 seed=$2 run=$3
    if [ -f "$run/eval.json" ]; then echo "== $v (seed $seed): done before, kept"; return; fi
    rm -rf "$run"
    mkdir -p "$run"
    local flags
    flags=$(variant_flags "$v")
    echo "== $v (seed $seed): $flags"
    local t0 t1 t2 pid
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086 # flags are words on purpose
    "$BIN/tng_train" --init "$OUT/base" --data "$WORLD/train.csv" --freeze vision \
        --temperature fixed:0.07 --lr "$LR" --wd 0.01 --batch "$BATCH" --steps "$STEPS" \
        --seed "$seed" --checkpoint-every "$EVERY" --log-every 25 --out "$run" $flags \
        >"$run.log" 2>&1 &
    pid=$!
    collect_checkpoints "$run" "$pid"
    wait "$pid" || { echo "ablate: $v failed, see $run.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    local models=() ckpt step
    for ckpt in "$run"/evals/ckpt-*; do
        step=$((10#${ckpt##*ckpt-}))
        models+=(--model "$ckpt" --name "step$step")
    done
    "$BIN/tng_eval" --quiet "${models[@]}" "${EVAL_SETS[@]}" --json "$run/eval.json.tmp" >/dev/null
    t2=$(date +%s.%N)
    echo "{\"train_s\": $(echo "$t1 - $t0" | bc), \"eval_s\": $(echo "$t2 - $t1" | bc), \"flags\": \"$flags\"}" \
        >"$run/timing.json"
    mv "$run/eval.json.tmp" "$run/eval.json"
    rm -rf "$run"/evals/ckpt-*/ # the numbers are kept; the copies are not needed
}

for v in $VARIANTS; do fine_tune "$v" "$SEED" "$OUT/$v"; done
for v in $SEED_VARIANTS; do
    fine_tune "$v" "$SEED" "$OUT/$v" # kept when VARIANTS has it
    for seed in $EXTRA_SEEDS; do fine_tune "$v" "$seed" "$OUT/$v-seed$seed"; done
done

base_ckpt=$(tr -d '\n' <"$OUT/base/latest") # a reused base may differ from BASE_STEPS
command_line="WORLD=$WORLD SYNTH_FLAGS=\"$SYNTH_FLAGS\" STEPS=$STEPS EVERY=$EVERY BATCH=$BATCH LR=$LR SEED=$SEED BASE_STEPS=$BASE_STEPS VARIANTS=\"$VARIANTS\" SEED_VARIANTS=\"$SEED_VARIANTS\" EXTRA_SEEDS=\"$EXTRA_SEEDS\" bash data/ablate.sh"
python3 - "$OUT" "$BENCH" "$command_line" "$(( $(date +%s) - started ))" "$base_ckpt" "$SEED" \
    "$SEED_VARIANTS" "$EXTRA_SEEDS" $VARIANTS <<'PY'
import datetime, json, os, sys
out, bench, command, elapsed, base_ckpt, seed = sys.argv[1:7]
seed_variants, extra_seeds = sys.argv[7].split(), sys.argv[8].split()
variants = sys.argv[9:]
METRICS = [("positive", "{m} MCQ positive"), ("negative", "{m} MCQ negative"),
           ("hybrid", "{m} MCQ hybrid"), ("MCQ", "{m} MCQ"),
           ("R@1", "{r} T2I R@1"), ("neg R@1", "{n} T2I R@1"), ("CC-Neg", "{c} CC-Neg acc")]
# phrasing set -> (how the table names it, its file suffix)
PHRASINGS = {"intemplate": ("in-template", "_intemplate"), "std": ("held-out", ""), "alt": ("held-out-2", "_alt")}
base = json.load(open(f"{out}/base/eval.json"))["step0"]

def value(row, key, phrasing):
    sfx = PHRASINGS[phrasing][1]
    v = row.get(key.format(m=f"mcq_test{sfx}.csv", r=f"retrieval_test{sfx}.csv",
                           n=f"negated_retrieval_test{sfx}.csv", c=f"ccneg_test{sfx}.csv"))
    return float("nan") if v is None else v

curves = {}  # variant -> [(step, row)]
for v in variants:
    rows = json.load(open(f"{out}/{v}/eval.json"))
    curves[v] = [(0, base)] + sorted((int(k[4:]), r) for k, r in rows.items())
timing = {v: json.load(open(f"{out}/{v}/timing.json")) for v in variants}

lines = [f"# TNG ablation ({datetime.date.today()})", "",
         f"Command: `{command}` (this invocation {elapsed} s; base {out}/base/{base_ckpt}).",
         "Machine: 2-core Debian VM, no GPU, shared. One pre-trained base; every variant fine-tunes",
         "from it with the same data, steps and seed (vision frozen, temperature 0.07 unless its",
         "flags say otherwise). Test split, %, at the last step; `base` is the starting point.", ""]
for phrasing, (role, _) in PHRASINGS.items():
    lines += [f"## {phrasing} phrasings ({role})", "",
              "| variant | flags | " + " | ".join(n for n, _ in METRICS) + " | train s | eval s |",
              "|---|---|" + "---|" * (len(METRICS) + 2)]
    lines.append("| base | | " + " | ".join(f"{value(base, k, phrasing):.1f}" for _, k in METRICS) + " | | |")
    for v in variants:
        last = curves[v][-1][1]
        t = timing[v]
        lines.append(f"| {v} | `{t['flags']}` | " +
                     " | ".join(f"{value(last, k, phrasing):.1f}" for _, k in METRICS) +
                     f" | {t['train_s']:.0f} | {t['eval_s']:.0f} |")
    lines.append("")

def last_row(run):
    rows = json.load(open(f"{out}/{run}/eval.json"))
    return max(rows.items(), key=lambda kv: int(kv[0][4:]))[1]

if seed_variants and extra_seeds:
    seeds = [seed] + extra_seeds
    lines += [f"## Over seeds {', '.join(seeds)} (std phrasings): mean [min..max]", "",
              "Same base; the seed changes the fine-tuning's sample order and TNG draws.", "",
              "| variant | " + " | ".join(n for n, _ in METRICS) + " |",
              "|---|" + "---|" * len(METRICS)]
    for v in seed_variants:
        rows = [last_row(v if s == seed else f"{v}-seed{s}") for s in seeds]
        cells = []
        for _, key in METRICS:
            xs = [value(r, key, "std") for r in rows]
            cells.append(f"{sum(xs) / len(xs):.1f} [{min(xs):.1f}..{max(xs):.1f}]")
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    lines.append("")
open(f"{bench}/ablation.md", "w").write("\n".join(lines))
os.makedirs(f"{bench}/curves", exist_ok=True)
for name, key in METRICS:
    safe = name.replace(" ", "_").replace("@", "at")
    with open(f"{bench}/curves/{safe}.tsv", "w") as f:
        for v in variants:  # one gnuplot data block per variant
            f.write(f'"{v}"\n')
            for step, row in curves[v]:
                f.write(f"{step}\t{value(row, key, 'std')}\n")
            f.write("\n\n")
PY
for tsv in "$BENCH"/curves/*.tsv; do
    name=$(basename "$tsv" .tsv)
    gnuplot <<GP
set terminal pngcairo size 900,550 noenhanced
set grid
set key outside right
set xlabel "fine-tuning step"; set ylabel "%"
set title "$name (test split, std phrasings)"
set output "$BENCH/$name.png"
plot for [i=0:*] "$tsv" index i using 1:2 with linespoints title columnheader(1)
GP
done
echo "ablation written to $BENCH/ablation.md and $BENCH/*.png"
