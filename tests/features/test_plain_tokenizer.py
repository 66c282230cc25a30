"""fingerprint: TensorFlow's string hash (to_hash_bucket_fast) in plain Python, byte for byte."""
import numpy as np
import pytest

from cnnkit.features.plain_tokenizer import HASHED_BYTES, fingerprint64, hash_bucket


def test_fingerprint_is_tensorflows_for_every_length_it_hashes():
    """Random bytes of each length 0..32 (FarmHash's 0-3, 4-7, 8-16 and 17-32 byte paths), compared
    with tf.strings.to_hash_bucket_fast through a modulus as wide as int64 allows."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    data = [rng.integers(0, 256, n, dtype="uint8").tobytes() for n in range(HASHED_BYTES + 1) for _ in range(30)]
    buckets = 2**63 - 1
    want = tf.strings.to_hash_bucket_fast(data, buckets).numpy().tolist()
    assert [fingerprint64(d) % buckets for d in data] == want


def test_hash_bucket_matches_tensorflow_on_character_ngrams():
    import tensorflow as tf

    grams = ["<fi", "fil", "ilm>", "<film>", "日本語", "<😀🎬>", "é'-x", "<zz>", "😀😀😀😀😀", "a"]
    for buckets in (7, 10_000, 2**40 + 3):
        want = tf.strings.to_hash_bucket_fast(grams, buckets).numpy().tolist()
        assert [hash_bucket(g, buckets) for g in grams] == want


def test_longer_input_is_refused():
    with pytest.raises(ValueError, match="at most 32 bytes"):
        fingerprint64(b"x" * 33)
