"""What the subword vectors of words outside the vocabulary add, paired on the same trained runs.

A text-cls run with subwords gives each test word that training never saw the mean of its
character n-gram vectors (`UnknownWordSubwords`); before, such a word read as [UNK] alone.
Training is the same either way (every training word is in the vocabulary), so the two can be
compared on one trained model: its graph from (token ids, unknown words' n-gram ids) is run
once with the n-gram ids and once with zeros (what the model did before).

    python bench/text_bench.py sst5 --keep-runs --extra --set train.seed=0   # a run to read
    python bench/text_unknown_words.py bench/runs/text-sst5-... ../shared/data/text/sst5/test.csv

With --zero-unk-vector the row also holds the accuracy with the n-gram ids and [UNK]'s own
(untrained) word vector set to zeros in every embedding, so that an unknown word is its n-grams
alone, as in fastText (`accuracy_with_unk_vector_zeroed`).

Appends a JSON line per run to bench/results/text_unknown_words.jsonl.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np

from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "text_unknown_words.jsonl"


def paired(run_dir: Path, csv: Path, zero_unk_vector: bool = False) -> dict:
    """Test accuracy of the run's model and of each network member with and without the n-grams
    of the words outside the vocabulary, on the texts and labels of `csv`."""
    import keras

    from cnnkit import runs
    from cnnkit.datasets import load_source
    from cnnkit.features.text import unknown_words_layer

    model = runs.load_model(run_dir)
    labels = json.loads((run_dir / "labels.json").read_text())
    split = load_source(str(csv)).splits["train"]  # a lone CSV reads as one split
    names = [str(n) for n in load_source(str(csv)).class_names]
    texts = np.asarray([str(t) for t in split.x], dtype=object)
    y = np.array([labels.index(names[i]) for i in split.y])
    vectorize, unknown = model.get_layer("vectorize"), unknown_words_layer(model)
    if unknown is None:
        raise SystemExit(f"{run_dir}: its model has no unknown_subwords layer (no subwords, or trained before it)")
    ids = np.concatenate([vectorize(texts[i:i + 1024]).numpy() for i in range(0, len(texts), 1024)])
    grams = np.concatenate([unknown([texts[i:i + 1024], ids[i:i + 1024]]).numpy() for i in range(0, len(texts), 1024)])
    zeros = np.zeros_like(grams)
    core = keras.Model([vectorize.output, unknown.output], model.output)
    accuracy = lambda p: round(100 * float((p.argmax(1) == y).mean()), 2)  # noqa: E731
    before, after = (core.predict([ids, g], batch_size=256, verbose=0) for g in (zeros, grams))
    members = [layer for layer in model.layers if layer.name.startswith("member_")]
    member_rows = [[accuracy(m.predict([ids, g], batch_size=256, verbose=0)) for g in (zeros, grams)] for m in members]
    unknown_steps = (ids == 1).sum()
    extra = {}
    if zero_unk_vector:  # after the figures above: the embeddings are changed in place
        for layer in model._flatten_layers():
            if isinstance(layer, keras.layers.Embedding):
                weights = layer.embeddings.numpy()
                weights[1] = 0.0
                layer.embeddings.assign(weights)
        extra["accuracy_with_unk_vector_zeroed"] = accuracy(core.predict([ids, grams], batch_size=256, verbose=0))
    return {**extra, "run_dir": str(run_dir), "split": str(csv), "texts": int(len(y)),
            "unknown_token_share": round(float(unknown_steps / (ids > 0).sum()), 4),
            "texts_with_unknown_words": round(float((ids == 1).any(1).mean()), 4),
            "accuracy_without": accuracy(before), "accuracy_with": accuracy(after),
            "predictions_changed": int((before.argmax(1) != after.argmax(1)).sum()),
            "members_without": [m[0] for m in member_rows], "members_with": [m[1] for m in member_rows],
            "date": dt.date.today().isoformat(), "machine": describe()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("csv", type=Path, help="the split to score (the run's test split)")
    parser.add_argument("--zero-unk-vector", action="store_true", help="also score with [UNK]'s word vector zeroed")
    args = parser.parse_args()
    row = paired(args.run_dir, args.csv, args.zero_unk_vector)
    print(json.dumps(row), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
