#!/bin/bash
# One network of the text-cls defaults (but patience 3) on small data, seeds 0-2: the histories whose early stopping
# bench/text_patience.py reads (BENCHMARKS.md, text-cls, "Early stopping after 2 epochs without
# improvement"; the sets of bench/text_epochs_cap.sh).
# bash bench/text_patience_runs.sh   -> /tmp/pat/runs/SET-sS, then
# python bench/text_patience.py "/tmp/pat/runs/*-s?/history.csv"
HERE=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH=$HERE/..  # this checkout's cnnkit
S=$HERE/../../shared/data/text
python "$HERE/make_long_docs.py" /tmp/longdoc/docs.csv
. "$HERE/text_small_sets.sh"  # small_set_args
mkdir -p /tmp/pat/runs
for seed in 0 1 2; do
  for set in docs trec1k sst2k mr1k sample; do
    args=$(small_set_args $set)
    out=/tmp/pat/runs/$set-s$seed
    rm -rf "$out"
    # patience 3 (the default until 2026-12-07): the histories patience 2 and 1 are read from
    python -m cnnkit train text-cls $args --seed $seed --out "$out" --set train.verbose=0 --set train.early_stopping=3 > "$out.log" 2>&1
    echo "$set seed $seed: $(grep -o '"test_accuracy": [0-9.]*' "$out/metrics.json")"
  done
done
