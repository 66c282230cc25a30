#!/bin/bash
# text-cls on longer texts (no long-document set ships in ../shared/data): documents made of K
# sentences of one label (bench/make_long_docs.py), 20 % held out as test, one network of the
# task's defaults (up to 30 epochs) against the same with the linear n-gram branch, and (the
# 10-sentence MR documents only) the residual resnet1d; seeds 0-2.
# bash bench/text_documents.sh   -> runs and logs in /tmp/epx/runs, a line a run on standard output
HERE=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH=$HERE/..  # this checkout's cnnkit
S=$HERE/../../shared/data/text
python "$HERE/make_long_docs.py" /tmp/longdoc/docs.csv "$S/mr/all.csv" 10     # 1 066 documents, 210 words
python "$HERE/make_long_docs.py" /tmp/longdoc/trec10.csv "$S/trec/train.csv" 10  # 543, 102 words
python "$HERE/make_long_docs.py" /tmp/longdoc/mr3.csv "$S/mr/all.csv" 3        # 3 554, 63 words
python "$HERE/make_long_docs.py" /tmp/longdoc/mr2.csv "$S/mr/all.csv" 2        # 5 330, 42 words
mkdir -p /tmp/epx/runs && cd /tmp/epx
run() {  # NAME ARGS...: one run, then its test accuracy, epochs and training seconds
  out=runs/$1; shift
  rm -rf "$out"
  python -m cnnkit train text-cls --set data.test_split=0.2 --set train.verbose=0 --out "$out" "$@" > "$out.log" 2>&1
  python -c "import json; m = json.load(open('$out/metrics.json')); print('$out', m['test_accuracy'], m['epochs_run_this_call'], m['train_seconds'])"
}
for s in 0 1 2; do
  run docs-e30-s$s --data /tmp/longdoc/docs.csv --seed $s --set preprocess.ngram_branch=false
  run docs-ngram-s$s --data /tmp/longdoc/docs.csv --seed $s --set preprocess.ngram_branch=true
  run docs-resnet1d-s$s --data /tmp/longdoc/docs.csv --seed $s --backbone resnet1d --set preprocess.ngram_branch=false
  for set in trec10 mr3 mr2; do for b in false true; do
    run $set-ngram$b-s$s --data /tmp/longdoc/$set.csv --seed $s --set preprocess.ngram_branch=$b
  done; done
done
# The linear baseline on the 210-word documents: TF-IDF word 1-2-grams + logistic regression,
# 5-fold stratified cross-validation of all 1 066 (its mean accuracy on the last line).
python - <<'PY'
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

docs = pd.read_csv("/tmp/longdoc/docs.csv")
model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(C=10, max_iter=2000))
scores = cross_val_score(model, docs.text, docs.label, cv=StratifiedKFold(5, shuffle=True, random_state=0))
print("tfidf+lr 5-fold", scores.round(4), round(scores.mean(), 4))
PY
