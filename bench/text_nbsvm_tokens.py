"""NBSVM alone (scikit-learn, the naive-Bayes member's algorithm) with different tokens: what
the member would gain from punctuation kept as tokens, start and end tokens, the texts cut at the
95th percentile of their lengths, or binary counts. Twenty-sixth session (BENCHMARKS.md, text-cls,
"Punctuation as tokens").

    python bench/text_nbsvm_tokens.py '{"punct": {}, "strip": {"strip": 1}, "strip_bound": {"strip": 1, "bound": 1}}' mr,sst2,sst5,trec

Variant keys: strip (Keras' punctuation class removed, else each punctuation character a token),
bound (start and end tokens), trunc (cut at the 95th percentile), binary (0/1 counts), C. Prints
the test accuracy (%) of each set (MR: mean of 10 stratified folds, seed 0).
"""
import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

warnings.filterwarnings("ignore")  # CountVectorizer: ngram_range unused with a callable analyzer
TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"
PUNCT = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')


def tokens(texts, v: dict) -> list[list[str]]:
    """Each text as lower-case tokens, punctuation stripped or each punctuation character a token."""
    out = []
    for t in texts:
        t = t.lower()
        toks = PUNCT.sub("", t).split() if v.get("strip") else re.findall(r"\w+|[^\w\s]", t)
        out.append(["<s>", *toks, "</s>"] if v.get("bound") else toks)
    return out


def fit_predict(tx, ty, ex, v: dict) -> np.ndarray:
    """NBSVM (alpha 1, logistic regression C, one-vs-rest) on unigrams and bigrams: predicted labels of ex."""
    a, b = tokens(tx, v), tokens(ex, v)
    if v.get("trunc"):
        n = int(np.ceil(np.percentile([len(x) for x in a], 95)))
        a, b = [x[:n] for x in a], [x[:n] for x in b]
    vec = CountVectorizer(analyzer=lambda toks: toks + [f"{p} {q}" for p, q in zip(toks, toks[1:])],
                          binary=bool(v.get("binary", False)))
    x, t = vec.fit_transform(a), vec.transform(b)
    classes, probs = np.unique(ty), []
    for c in classes:
        mine = ty == c
        p, q = 1 + np.asarray(x[mine].sum(0)).ravel(), 1 + np.asarray(x[~mine].sum(0)).ravel()
        r = np.log(p / p.sum()) - np.log(q / q.sum())
        m = LogisticRegression(C=v.get("C", 1.0), max_iter=2000).fit(x.multiply(r).tocsr(), mine.astype(int))
        probs.append(m.predict_proba(t.multiply(r).tocsr())[:, 1])
    return classes[np.argmax(np.stack(probs, 1), 1)]


def read(path):
    d = pd.read_csv(path)
    return d.text.astype(str).to_numpy(), d.label.astype(str).to_numpy()


def main() -> None:
    variants, sets = json.loads(sys.argv[1]), sys.argv[2].split(",")
    for name, v in variants.items():
        res = {}
        for s in sets:
            if s == "mr":
                x, y = read(TEXT / "mr" / "all.csv")
                folds = StratifiedKFold(10, shuffle=True, random_state=0).split(x, y)
                res[s] = 100 * np.mean([np.mean(fit_predict(x[a], y[a], x[b], v) == y[b]) for a, b in folds])
            else:
                (tx, ty), (ex, ey) = read(TEXT / s / "train.csv"), read(TEXT / s / "test.csv")
                res[s] = 100 * np.mean(fit_predict(tx, ty, ex, v) == ey)
        print(name, " ".join(f"{k} {a:.2f}" for k, a in res.items()), flush=True)


if __name__ == "__main__":
    main()
