#!/usr/bin/env bash
# Draws PNG curves of one or more tng_train runs from their metrics.jsonl with gnuplot:
# loss, learning rate, throughput, and validation MCQ accuracy by type over training.
#   bash data/plot_run.sh RUN_DIR [RUN_DIR...]      (also: make plot RUN=dir)
set -euo pipefail
command -v gnuplot >/dev/null || { echo "plot_run: gnuplot is not installed" >&2; exit 1; }
for run in "$@"; do
    metrics="$run/metrics.jsonl"
    [ -f "$metrics" ] || { echo "plot_run: $metrics not found" >&2; exit 1; }
    # JSON lines -> two tab-separated tables: steps, and validations
    python3 - "$metrics" "$run" <<'PY'
import json, sys
steps, vals = [], []
for line in open(sys.argv[1]):
    row = json.loads(line)
    (vals if "val_mcq" in row else steps).append(row)
with open(sys.argv[2] + "/steps.tsv", "w") as f:
    for r in steps:
        f.write(f"{r['step']}\t{r['loss']}\t{r['lr']}\t{r['pairs_per_s']}\n")
with open(sys.argv[2] + "/val.tsv", "w") as f:
    for r in vals:
        f.write(f"{r['step']}\t{100*r['val_positive']}\t{100*r['val_negative']}\t{100*r['val_hybrid']}\n")
PY
    gnuplot <<GP
set terminal pngcairo size 800,500
set grid
set xlabel "step"
set output "$run/loss.png"; set title "training loss"; plot "$run/steps.tsv" using 1:2 with lines title "loss"
set output "$run/lr.png"; set title "learning rate"; plot "$run/steps.tsv" using 1:3 with lines title "lr"
set output "$run/throughput.png"; set title "throughput"; set ylabel "pairs/s"; plot "$run/steps.tsv" using 1:4 with lines title "pairs/s"
set output "$run/mcq.png"; set title "validation MCQ accuracy by type"; set ylabel "%"; set yrange [0:100]
plot "$run/val.tsv" using 1:2 with linespoints title "positive", "" using 1:3 with linespoints title "negative", "" using 1:4 with linespoints title "hybrid"
GP
    echo "plots written to $run/{loss,lr,throughput,mcq}.png"
done
