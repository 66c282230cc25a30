#!/bin/bash
# Hyphenated words read as their parts (BENCHMARKS.md, text-cls, "Hyphens"; not adopted): SST-2 and SST-5
# with each hyphen between two word characters replaced by a space ("fast-paced" -> "fast paced", as
# Kim's clean_str does; the default standardization deletes it: "fastpaced"), one network of the
# text-cls defaults with its naive-Bayes member, seeds 0-4.
# bash bench/text_hyphens.sh   -> runs in /tmp/hy/runs, a row per run appended to bench/results/text_hyphens.jsonl;
# then the SST-5 recipe on the same texts, seeds 0-40 (rows with "recipe"; /tmp/hy/recipe).
HERE=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH=$HERE/..  # this checkout's cnnkit
S=$HERE/../../shared/data/text
python - "$S" <<'PY'
import os, re, sys
import pandas as pd
for name in ("sst2", "sst5"):
    os.makedirs(f"/tmp/hy/{name}", exist_ok=True)
    for f in os.listdir(f"{sys.argv[1]}/{name}"):
        d = pd.read_csv(f"{sys.argv[1]}/{name}/{f}", keep_default_na=False)
        d["text"] = d.text.map(lambda t: re.sub(r"(?<=\w)-(?=\w)", " ", t))
        d.to_csv(f"/tmp/hy/{name}/{f}", index=False)
PY
mkdir -p /tmp/hy/runs
for set in sst5 sst2; do
  for seed in 0 1 2 3 4; do
    out=/tmp/hy/runs/$set-hy-$seed
    [ -f "$out/metrics.json" ] || python -m cnnkit train text-cls --data /tmp/hy/$set --seed $seed --out "$out" --set train.verbose=0 > "$out.log" 2>&1
    python - "$out" "$set" "$seed" >> "$HERE/results/text_hyphens.jsonl" <<'PY'
import json, sys
out, name, seed = sys.argv[1:]
m = json.load(open(f"{out}/metrics.json"))
print(json.dumps({"set": name, "seed": int(seed), "hyphens": "split", **{k: m.get(k) for k in (
    "test_accuracy", "network_test_accuracy", "nb_member_test_accuracy", "train_seconds")}}))
PY
    tail -1 "$HERE/results/text_hyphens.jsonl"
  done
done
mkdir -p /tmp/hy/recipe
for seed in 0 10 20 30 40; do
  out=/tmp/hy/recipe/sst5-$seed
  [ -f "$out/metrics.json" ] || python -m cnnkit train "$HERE/../recipes/sst5.yaml" --data /tmp/hy/sst5 --seed $seed --out "$out" --set train.verbose=0 > "$out.log" 2>&1
  python - "$out" "$seed" >> "$HERE/results/text_hyphens.jsonl" <<'PY'
import json, sys
out, seed = sys.argv[1:]
m = json.load(open(f"{out}/metrics.json"))
print(json.dumps({"set": "sst5", "recipe": "recipes/sst5.yaml", "seed": int(seed), "hyphens": "split", **{k: m.get(k) for k in (
    "test_accuracy", "nb_member_test_accuracy", "member_test_accuracy", "train_seconds")}}))
PY
  tail -1 "$HERE/results/text_hyphens.jsonl"
done
