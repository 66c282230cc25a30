#!/bin/bash
# text-cls's ceiling of epochs, 10 (the default until 2026-12-06) against 30, on small data where
# early stopping may not end training first; one network (the task's default), seeds 0-2.
# bash bench/text_epochs_cap.sh   -> /tmp/epx/results.jsonl (copied to bench/results/text_epochs.jsonl)
HERE=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH=$HERE/..  # this checkout's cnnkit
S=$HERE/../../shared/data/text
python "$HERE/make_long_docs.py" /tmp/longdoc/docs.csv
. "$HERE/text_small_sets.sh"  # small_set_args
mkdir -p /tmp/epx/runs && cd /tmp/epx
for seed in 0 1 2; do
 for ep in 10 30; do
  for set in docs trec1k sst2k mr1k sample; do
   args=$(small_set_args $set)
   out=runs/$set-e$ep-s$seed
   rm -rf $out
   python -m cnnkit train text-cls $args --epochs $ep --seed $seed --out $out --set train.verbose=0 > $out.log 2>&1
   python - <<PY
import json
m=json.load(open("$out/metrics.json"))
print(json.dumps({"set":"$set","epochs":$ep,"seed":$seed,"test":m.get("test_accuracy"),"val":m.get("val_accuracy"),"ran":m.get("epochs_run_this_call"),"train_s":m["train_seconds"]}))
PY
  done
 done
done >> results.jsonl
