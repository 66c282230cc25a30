"""The plain-Python inputs of a text-cls token-id export (TFLite, ONNX) against the model's own layers.

A vectorizer like text-cls's (adapted on SET's train split; the automatic standardization and
sequence length, start and end tokens, SUBWORD_BUCKETS subword buckets), then on SET's test texts:
`features.plain_tokenizer.tokenize` and `unknown_subword_ids` (the tokenizer.py of exports: no
TensorFlow) timed over REPEATS passes, and their arrays compared with the `TextVectorization` and
`UnknownWordSubwords` layers'. Appends a JSON line to
bench/results/text_python_tokenizer.jsonl.

    python bench/text_python_tokenizer.py            # sst5
    python bench/text_python_tokenizer.py trec sst2
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT.parent / "shared" / "data" / "text"
REPEATS = 3


def texts_of(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


def measure(name: str) -> dict:
    """Texts a second of both Python functions (best of REPEATS) on SET's test split, and whether
    they equal the layers' output."""
    import tensorflow as tf

    from cnnkit.features import plain_tokenizer as P
    from cnnkit.features import text as T
    from cnnkit.tasks.text_cls import SUBWORD_BUCKETS

    train, test = texts_of(TEXT / name / "train.csv"), texts_of(TEXT / name / "test.csv")
    standardize, _ = T.auto_standardize(train, "whitespace")
    length = T.auto_sequence_length(T.token_lengths(train, "whitespace", standardize), boundaries=True)
    vec = T.make_vectorizer(train, 30_000, length, standardize, boundaries=True)
    vocab, cased = vec.get_vocabulary(), T.vectorizer_cased_words(vec)
    ids_s, grams_s = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        ids = P.tokenize(test, vocab, length, standardize, "whitespace", True, cased)
        mid = time.perf_counter()
        grams = P.unknown_subword_ids(test, vocab, length, SUBWORD_BUCKETS, standardize, True, cased)
        ids_s.append(mid - start)
        grams_s.append(time.perf_counter() - mid)
    x = tf.constant(test)
    want_ids = vec(x)
    want_grams = T.UnknownWordSubwords.of(vec, SUBWORD_BUCKETS)([x, want_ids]).numpy()
    want_ids = want_ids.numpy()
    return {"set": name, "texts": len(test), "sequence_length": length, "standardize": standardize,
            "unknown_tokens": int((ids == 1).sum()), "tokenize_texts_per_s": round(len(test) / min(ids_s)),
            "unknown_subword_ids_texts_per_s": round(len(test) / min(grams_s)),
            "ids_equal": bool((ids == want_ids).all()), "grams_equal": bool((grams == want_grams).all()),
            "command": "python bench/text_python_tokenizer.py " + name, "date": dt.date.today().isoformat(),
            "machine": describe()}


def main(names: list[str]) -> None:
    out = Path(__file__).parent / "results" / "text_python_tokenizer.jsonl"
    for name in names or ["sst5"]:
        row = measure(name)
        print(json.dumps(row))
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
