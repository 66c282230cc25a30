#!/bin/bash
# The standardization trial (BENCHMARKS.md, text-cls, "Capitals inside sentences kept"): one network
# of the text-cls defaults (with its naive-Bayes member), seeds 0-4, on TREC (the one cased set here)
# and on SST-2 / SST-5 given sentence-initial capitals (bench/text_case_data.py), lowercased or not.
# bash bench/text_case_runs.sh [VARIANT...]   -> runs in $RUNS (default /tmp/case/runs), a row per
# run appended to bench/results/text_case.jsonl. A run whose metrics.json exists is read, not trained again.
HERE=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH=$HERE/..  # this checkout's cnnkit
S=$HERE/../../shared/data/text
RUNS=${RUNS:-/tmp/case/runs}
CASED=${CASED:-/tmp/case/data}
[ -d "$CASED/trec_marks" ] || python "$HERE/text_case_data.py" "$CASED"
LOWER="--set preprocess.standardize=lower_and_strip_punctuation"  # the default until 2026-12-07
KEEP="--set preprocess.standardize=strip_punctuation"             # every capital kept
variant_args() {  # VARIANT -> the set's name and `cnnkit train text-cls` arguments
  case $1 in
    trec-base) echo "trec --data $S/trec $LOWER";;
    trec-case) echo "trec --data $S/trec $KEEP";;
    trec-marks) echo "trec --data $CASED/trec_marks $LOWER";;
    trec-lowfirst) echo "trec --data $CASED/trec_lowfirst $KEEP";;
    trec-auto) echo "trec --data $S/trec";;  # standardize=auto: truecase here
    sst2-base|sst5-base) echo "${1%-base} --data $S/${1%-base} $LOWER";;
    sst2-case|sst5-case) echo "${1%-case} --data $CASED/${1%-case}_cap $KEEP";;
    sst2-auto|sst5-auto) echo "${1%-auto} --data $CASED/${1%-auto}_cap";;
  esac
}
mkdir -p "$RUNS"
for variant in ${@:-trec-base trec-case trec-marks trec-lowfirst trec-auto sst2-base sst2-case sst2-auto sst5-base sst5-case sst5-auto}; do
  read -r set args <<< "$(variant_args "$variant")"
  for seed in 0 1 2 3 4; do
    out=$RUNS/$variant-$seed
    if [ ! -f "$out/metrics.json" ]; then
      rm -rf "$out"
      python -m cnnkit train text-cls $args --seed $seed --out "$out" --set train.verbose=0 > "$out.log" 2>&1
    fi
    python - "$out" "$variant" "$seed" "$args" >> "$HERE/results/text_case.jsonl" <<'PY'
import json, sys, yaml
out, variant, seed, args = sys.argv[1:]
m = json.load(open(f"{out}/metrics.json"))
cfg = yaml.safe_load(open(f"{out}/config.yaml"))
print(json.dumps({"variant": variant, "seed": int(seed), "args": args, "standardize": cfg["preprocess"]["standardize"],
                  **{k: m.get(k) for k in ("test_accuracy", "network_test_accuracy", "nb_member_test_accuracy",
                                           "val_accuracy", "train_seconds")}}))
PY
    tail -1 "$HERE/results/text_case.jsonl"
  done
done
