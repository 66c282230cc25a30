#!/usr/bin/env bash
# One text-cls network (and its naive-Bayes member) trained by two checkouts in turn, ROUNDS times:
# a change's cost or gain in training time on this machine, whose speed varies within minutes.
#   git worktree add /tmp/oldtree <commit>     # the code before
#   bash bench/text_ab.sh /tmp/oldtree . [ROUNDS]
# MR: the recipe with one member and a 10 % test split; TREC: the task's defaults. Seed 0.
# Prints per run: set, side, round, test accuracy, the network's, seconds of training, median epoch.
set -euo pipefail
old=$(cd "$1" && pwd); new=$(cd "$2" && pwd); rounds=${3:-2}
data=$(cd "$new/../shared/data/text" && pwd)
out=$(mktemp -d)
for round in $(seq "$rounds"); do
  for side in old new; do
    dir=$([ "$side" = old ] && echo "$old" || echo "$new")
    for set in mr trec; do
      if [ "$set" = mr ]; then
        args=("$new/recipes/mr.yaml" --data "$data/mr/all.csv" --set model.members=1 --set data.cv=0 --set data.test_split=0.1)
      else
        args=(text-cls --data "$data/trec")
      fi
      run="$out/$set-$side-$round"
      (cd "$dir" && python -m cnnkit train "${args[@]}" --seed 0 --set train.verbose=0 --out "$run" > /dev/null 2>&1)
      python - "$run/metrics.json" "$set $side $round" <<'PY'
import json, statistics, sys
m = json.load(open(sys.argv[1]))
print(sys.argv[2], m["test_accuracy"], m.get("network_test_accuracy"), m["train_seconds"],
      "median epoch", round(statistics.median(m["epoch_train_seconds"]), 2), len(m["epoch_train_seconds"]), flush=True)
PY
    done
  done
done
rm -rf "$out"
