"""cnnkit.features.text: the plain-Python tokenizer that token-id exports ship with."""
import numpy as np
import pytest

from cnnkit.features import text as text_features


@pytest.mark.parametrize("standardize,split", [("lower_and_strip_punctuation", "whitespace"), ("lower", "whitespace"),
                                               ("strip_punctuation", "whitespace"), ("none", "whitespace"),
                                               ("lower_and_strip_punctuation", "character")])
def test_python_tokenize_equals_text_vectorization(standardize, split):
    """The tokenizer shipped beside token-id exports gives the ids the model's layer gives, on
    real sentences and on punctuation, non-ASCII letters, tabs and non-breaking spaces."""
    import csv
    from pathlib import Path

    from cnnkit.features.text import make_vectorizer, tokenize

    path = next((Path(text_features.__file__).parents[1] / "_data" / "sentences").glob("*.csv"))
    with open(path, newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)][:400]
    texts += ["Ünïcode CAPS, don't; e-mail: a@b.c\tTAB\u00a0nbsp  double", "", "   ", "?!", "x" * 50]
    vec = make_vectorizer(texts[:300], 2000, 24, standardize, split)
    expected = vec(np.asarray(texts, dtype=object).astype(str)).numpy()
    np.testing.assert_array_equal(tokenize(texts, vec.get_vocabulary(), 24, standardize, split), expected)


def test_min_count_leaves_rare_tokens_to_unk():
    """Tokens seen fewer than `min_count` times in the adapting texts map to [UNK] (id 1); the
    rest keep frequency order; min_count 1 keeps every token; 0 is refused naming the setting."""
    from cnnkit.errors import CnnkitError
    from cnnkit.features.text import make_vectorizer, token_counts

    texts = ["the cat sat", "the dog sat", "The cat ran", "a bird"]
    full = make_vectorizer(texts, 100, 6)
    assert set(full.get_vocabulary()[2:]) == {"the", "cat", "sat", "dog", "ran", "a", "bird"}
    np.testing.assert_array_equal(token_counts(np.asarray(texts), full.get_vocabulary(),
                                               standardize="lower_and_strip_punctuation", split="whitespace",
                                               ngrams=None)[2:5], [3, 2, 2])
    rare = make_vectorizer(texts, 100, 6, min_count=2)
    vocab = [str(t) for t in rare.get_vocabulary()]
    assert vocab[:3] == ["", "[UNK]", "the"] and set(vocab[3:]) == {"cat", "sat"}  # cat and sat tie
    ids = rare(np.asarray(["the dog sat on a cat"])).numpy()[0]
    np.testing.assert_array_equal(ids, [2, 1, vocab.index("sat"), 1, 1, vocab.index("cat")])
    with pytest.raises(CnnkitError, match="preprocess.min_count"):
        make_vectorizer(texts, 100, 6, min_count=0)
