"""Would subword vectors for test words outside the vocabulary help text-cls?

The saved model maps a word that training never saw to [UNK], whose subword vector is zero (the
n-gram table covers the vocabulary only). fastText instead gives such a word the mean of its
hashed character n-gram vectors. This trains one network of the defaults (`cnnkit.train`, one
member) and scores the test split twice: as the saved model does, and with the test's unseen words
appended to the vocabulary (word vector: the [UNK] row, as now; subword vector: the mean of their
n-gram vectors, hashed as `cnnkit.blocks.ngrams.subword_ids` does). The first score is recomputed
outside the saved model too, to check that the recomputation matches it. One JSON line per run.

    python bench/text_oov_subwords.py sst2 0      # data set (../shared/data/text/SET) and seed
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cnnkit import api
from cnnkit.blocks.ngrams import subword_ids
from cnnkit.datasets import load_source

TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"
BEFORE_BACKBONE = ("text", "vectorize", "embedding", "subwords", "words_and_subwords")


def extended_vocabulary(vectorizer, texts) -> tuple[list[str], list[str]]:
    """(the vectorizer's vocabulary followed by the tokens of `texts` it lacks, those tokens)."""
    cfg = vectorizer.get_config()
    probe = keras.layers.TextVectorization(standardize=cfg["standardize"], split=cfg["split"])
    probe.adapt(texts)  # only to list the test's tokens, standardized and split as in the model
    vocab = vectorizer.get_vocabulary()
    known = set(vocab)
    new = [t for t in probe.get_vocabulary()[2:] if t not in known]
    return vocab + new, new


def main() -> None:
    name, seed = sys.argv[1], int(sys.argv[2])
    source = str(TEXT / name)
    with tempfile.TemporaryDirectory() as out:
        model = api.train("text-cls", source, out=out, verbose=0, seed=seed).model
    test = load_source(source).splits["test"]
    texts = tf.constant(np.asarray(test.x, dtype=object).astype(str))
    vec = model.get_layer("vectorize")
    vocab = vec.get_vocabulary()
    ext_vocab, new = extended_vocabulary(vec, texts)
    cfg = vec.get_config()
    ext = keras.layers.TextVectorization(standardize=cfg["standardize"], split=cfg["split"],
                                         output_sequence_length=cfg["output_sequence_length"], vocabulary=ext_vocab[2:])
    ids_old, ids_new = vec(texts).numpy(), ext(texts).numpy()
    words = model.get_layer("embedding").get_weights()[0]
    words = np.concatenate([words, np.repeat(words[1:2], len(new), 0)])  # new words: the [UNK] row
    subwords = model.get_layer("subwords")
    vectors, grams = subwords.vectors.numpy(), subword_ids(ext_vocab, subwords.buckets)
    assert np.array_equal(grams[:len(vocab), :subwords.grams.shape[1]], subwords.grams.numpy())
    rest = [layer for layer in model.layers if layer.name not in BEFORE_BACKBONE]

    def probabilities(ids):
        """(N, classes) of token ids (N, L): word + mean n-gram vectors, then the backbone and head."""
        g = grams[ids]
        present = (g > 0)[..., None]
        x = words[ids] + (vectors[g] * present).sum(-2) / np.maximum(present.sum(-2), 1)
        for layer in rest:
            x = layer(x)
        return np.asarray(x)

    saved = model.predict(tf.data.Dataset.from_tensor_slices(texts).batch(256), verbose=0)
    accuracy = lambda p: round(float((p.argmax(1) == test.y).mean()), 6)  # noqa: E731
    print(json.dumps({"set": name, "seed": seed, "oov_token_rate": round(float((ids_old == 1).sum() / (ids_old > 0).sum()), 4),
                      "new_words": len(new), "saved_model": accuracy(saved), "recomputed": accuracy(probabilities(ids_old)),
                      "with_oov_subwords": accuracy(probabilities(ids_new))}))


if __name__ == "__main__":
    main()
