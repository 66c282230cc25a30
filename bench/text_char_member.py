"""A second naive-Bayes member on character n-grams, tried on finished text-cls recipe runs
(twenty-seventh session; BENCHMARKS.md, text-cls, "The member's solver, its C and its temperature").

For each run folder (`cnnkit train recipes/SET.yaml --data ../shared/data/text/SET --seed S --out
RUN`): NBSVM (bench/text_member_fit.py's `fit`, C = 1) on scikit-learn's lower-cased character
2-5-grams within word boundaries (`char_wb`), fitted on the run member's training texts; the test
accuracy (%) of the networks' average, the saved model (with its word member), the character member
alone, and the averages with it as one more member (`both`) or instead of the word member.

    python bench/text_char_member.py RUN [RUN ...]     # one JSON line per run
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from text_member_fit import fit, probs, run_parts  # bench/text_member_fit.py


def scored(run: str) -> dict:
    from sklearn.feature_extraction.text import CountVectorizer

    cfg, task, model, tx, ty, fx, fy, pn, n = run_parts(run)
    if n == 1:
        raise SystemExit(f"{run}: not an ensemble (model.members > 1)")
    pm = task.nb_member_of(model).predict(tx, verbose=0, batch_size=512)
    chars = CountVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=True)
    x, e = chars.fit_transform(list(fx)).astype(float), chars.transform(list(tx)).astype(float)
    began = time.time()
    pc = probs(e, fit(x, fy, pn.shape[1], 1.0))
    acc = lambda p: round(100 * float(np.mean(p.argmax(1) == ty)), 2)  # noqa: E731
    return {"run": run, "char_ngrams": x.shape[1], "fit_seconds": round(time.time() - began, 1),
            "networks_only": acc(pn), "package": acc((n * pn + pm) / (n + 1)), "word_alone": acc(pm),
            "char_alone": acc(pc), "both": acc((n * pn + pm + pc) / (n + 2)), "char_instead": acc((n * pn + pc) / (n + 1))}


if __name__ == "__main__":
    import cnnkit  # noqa: F401  (registers the layers of saved models)

    for run in sys.argv[1:]:
        print(json.dumps(scored(run)), flush=True)
