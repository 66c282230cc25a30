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
