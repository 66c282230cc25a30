"""Texts a second through the export's plain-Python tokenizer (`cnnkit.features.plain_tokenizer`):
`tokenize` and `unknown_subword_ids` on SST-2's test sentences, the vocabulary from its training
split (every token, with start and end tokens), subword buckets 10 000, sequence length 40.

    python bench/text_tokenizer_speed.py

Pass 0 runs without the `word_subwords` cache (as before it had one), pass 1 starts from an empty
cache, passes 2 and 3 read the same texts again (a server meeting the same words outside the vocabulary).
"""
from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SST2 = ROOT.parent / "shared" / "data" / "text" / "sst2"


def main() -> None:
    from cnnkit.features import plain_tokenizer as pt

    train = pd.read_csv(SST2 / "train.csv")["text"].astype(str).tolist()
    test = pd.read_csv(SST2 / "test.csv")["text"].astype(str).tolist()
    counts = collections.Counter(t for row in pt.text_tokens(train, 10**6, boundaries=True) for t in row)
    vocab = ["", "[UNK]"] + [w for w, _ in counts.most_common()]
    cached = pt.word_subwords
    for n in (0, 1, 2, 3):
        pt.word_subwords = cached.__wrapped__ if n == 0 else cached  # unknown_subword_ids reads the module's name
        if n == 1:
            cached.cache_clear()
        start = time.perf_counter()
        ids = pt.tokenize(test, vocab, 40, boundaries=True)
        middle = time.perf_counter()
        pt.unknown_subword_ids(test, vocab, 40, 10_000, boundaries=True)
        end = time.perf_counter()
        print(f"pass {n}: {len(test)} texts, {int((ids == 1).sum())} unknown tokens; tokenize "
              f"{len(test) / (middle - start):.0f} texts/s, unknown_subword_ids {len(test) / (end - middle):.0f} "
              f"texts/s, both {len(test) / (end - start):.0f} texts/s", flush=True)


if __name__ == "__main__":
    main()
