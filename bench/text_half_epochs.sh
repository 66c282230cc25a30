#!/bin/bash
# Trial (twenty-eighth session; BENCHMARKS.md, text-cls, "Early stopping after 2 epochs without
# improvement"; not adopted): validation twice a pass over the training data, so that the epoch of
# least validation loss is found to half an epoch (SST-5's networks are best at epoch 2 of 4). One
# network of the defaults, TREC and SST-5, seeds 0-4, against the runs of the same seeds in
# /tmp/nb/single/SET-S (`cnnkit train text-cls --data ../shared/data/text/SET --seed S --out
# /tmp/nb/single/SET-S`). The package has no such setting; a checkout with the trial's patch:
#   git worktree add /tmp/subep HEAD && (cd /tmp/subep && git apply bench/patches/validate_twice_an_epoch.diff)
#   bash bench/text_half_epochs.sh > bench/results/text_half_epochs.jsonl
# CNNKIT_EPOCH_PARTS=2 halves an "epoch"; patience 4 and up to 60 of them: the same 2 and 30 passes.
cd /tmp/subep
for set in trec sst5; do
  for s in 0 1 2 3 4; do
    out=/tmp/subep/runs/$set-$s
    rm -rf $out
    CNNKIT_EPOCH_PARTS=2 python -m cnnkit train text-cls --data /work/shared/data/text/$set --seed $s --out $out \
      --set train.verbose=0 --set train.epochs=60 --set train.early_stopping=4 > $out.log 2>&1
    python - <<PY
import json
m=json.load(open("$out/metrics.json")); b=json.load(open("/tmp/nb/single/$set-$s/metrics.json"))
print(json.dumps({"set":"$set","seed":$s,"net":m["network_test_accuracy"],"net_base":b["network_test_accuracy"],"avg":m["test_accuracy"],"avg_base":b["test_accuracy"],"parts":m["epochs_run_this_call"],"train_s":m["train_seconds"],"base_s":b["train_seconds"]}))
PY
  done
done
