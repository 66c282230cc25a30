"""The naive-Bayes member alone, as the package builds it (its vectorizer's token ids, hashed
bigrams), with punctuation stripped (the default) or split off as tokens, at a given number of
bigram hash buckets (twenty-sixth session; BENCHMARKS.md, text-cls, "Punctuation as tokens").
The committed `blocks.NaiveBayesLR`; with bench/patches/nb_member_seen_ngrams.diff applied, the
trial's (ratios over the seen n-grams).

    python bench/text_nb_member_alone.py strip,split trec,sst2,sst5,mr [BUCKETS]   # default 100000

Prints the test accuracy (%) of each (MR: mean of 10 stratified folds, seed 0).
"""
import sys

import numpy as np
from sklearn.model_selection import StratifiedKFold

from text_nbsvm_tokens import TEXT, read  # bench/text_nbsvm_tokens.py


def accuracy(tx, ty, ex, ey, mode: str, buckets: int) -> float:
    """The member fitted on (tx, ty), scored on (ex, ey); sequence length and boundaries as text-cls sets them."""
    from cnnkit.features import text as text_features

    standardize = "lower_and_split_punctuation" if mode == "split" else "lower_and_strip_punctuation"
    lengths = text_features.token_lengths(list(tx), "whitespace", standardize)
    length = text_features.auto_sequence_length(lengths, boundaries=True)
    vec = text_features.make_vectorizer(list(tx), 30000, length, standardize, "whitespace", boundaries=True)
    return member_accuracy(vec, tx, ty, ex, ey, buckets)


def member_accuracy(vec, tx, ty, ex, ey, buckets: int) -> float:
    """Test accuracy (%) of the member on the ids of the adapted vectorizer `vec`, fitted on
    (tx, ty), scored on (ex, ey)."""
    from cnnkit.blocks import NaiveBayesLR

    classes = np.unique(ty)
    member = NaiveBayesLR(len(vec.get_vocabulary()), len(classes), buckets=buckets)
    member.fit(vec(np.asarray(tx, object)).numpy(), np.searchsorted(classes, ty))
    probs = np.asarray(member(vec(np.asarray(ex, object)).numpy()))
    return 100 * float(np.mean(classes[probs.argmax(1)] == ey))


def main() -> None:
    import cnnkit  # noqa: F401

    buckets = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    for mode in sys.argv[1].split(","):
        for s in sys.argv[2].split(","):
            if s == "mr":
                x, y = read(TEXT / "mr" / "all.csv")
                folds = StratifiedKFold(10, shuffle=True, random_state=0).split(x, y)
                acc = np.mean([accuracy(x[a], y[a], x[b], y[b], mode, buckets) for a, b in folds])
            else:
                (tx, ty), (ex, ey) = read(TEXT / s / "train.csv"), read(TEXT / s / "test.csv")
                acc = accuracy(tx, ty, ex, ey, mode, buckets)
            print(mode, s, buckets, f"{acc:.2f}", flush=True)


if __name__ == "__main__":
    main()
