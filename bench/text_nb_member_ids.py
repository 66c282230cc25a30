"""How much the naive-Bayes member's accuracy depends on which token ids its hashed bigrams
collide on (thirty-fifth session; BENCHMARKS.md, text-cls, "Unicode punctuation").

The member hashes each bigram of token ids into `preprocess.ngram_buckets` (100 000) buckets, so
any change of the vocabulary's order (a token more or less) changes which bigrams share a bucket.
For a data set: the member as the package builds it (its vectorizer, `unicode` standardization on
and off), then with the vocabulary's entries past [UNK] in K random orders (the same tokens, other
ids: `shuffled`), and in their order with 1..K unseen tokens appended (`longer`: the bigram of ids
(a, b) goes to bucket (a * vocabulary size + b) mod buckets, so the size alone moves the
collisions), each scored on the test split.

    python bench/text_nb_member_ids.py sst5 [K]    # from bench/; prints one JSON line
"""
import json
import sys

import numpy as np

from text_nb_member_alone import member_accuracy  # bench/text_nb_member_alone.py
from text_nbsvm_tokens import TEXT, read  # bench/text_nbsvm_tokens.py


def scored(vec, tx, ty, ex, ey) -> float:
    """Test accuracy (%) of the member on `vec`'s ids at the package's 100 000 buckets, rounded."""
    return round(member_accuracy(vec, tx, ty, ex, ey, 100_000), 2)


def main() -> None:
    from cnnkit.features import text as text_features

    name, k = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8
    (tx, ty), (ex, ey) = read(TEXT / name / "train.csv"), read(TEXT / name / "test.csv")
    length = text_features.auto_sequence_length(text_features.token_lengths(list(tx)), boundaries=True)
    row = {"set": name}
    for unicode in (True, False):
        vec = text_features.make_vectorizer(list(tx), 30000, length, boundaries=True, unicode=unicode)
        row[f"unicode_{unicode}".lower()] = scored(vec, tx, ty, ex, ey)
    vocab = vec.get_vocabulary()
    rng = np.random.default_rng(0)
    shuffled = []
    for _ in range(k):
        vec.set_vocabulary(vocab[:2] + list(rng.permutation(vocab[2:])))
        shuffled.append(scored(vec, tx, ty, ex, ey))
    row.update(shuffled=shuffled, shuffled_mean=round(float(np.mean(shuffled)), 2),
               shuffled_std=round(float(np.std(shuffled)), 2))
    # The same order with k unseen tokens appended: only the vocabulary size in the hash changes.
    longer = []
    for extra in range(1, k + 1):
        vec.set_vocabulary(vocab + [f"zzunseen{i}" for i in range(extra)])
        longer.append(scored(vec, tx, ty, ex, ey))
    row.update(longer=longer, longer_mean=round(float(np.mean(longer)), 2), longer_std=round(float(np.std(longer)), 2))
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
