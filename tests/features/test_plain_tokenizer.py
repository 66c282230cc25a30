"""plain_tokenizer: TensorFlow's string hash (to_hash_bucket_fast) in plain Python, byte for byte; the module
imports nothing of TensorFlow, Keras or cnnkit (tests/test_export.py serves an export with it alone)."""
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


def test_the_module_runs_without_tensorflow_keras_or_cnnkit():
    """Loaded from its file (as an export's tokenizer.py) with those three made unimportable."""
    import subprocess
    import sys

    from cnnkit.features import plain_tokenizer

    code = ("import sys, importlib.util\n"
            "for name in ('tensorflow', 'keras', 'cnnkit'):\n    sys.modules[name] = None\n"
            f"spec = importlib.util.spec_from_file_location('tokenizer', {plain_tokenizer.__file__!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "print(m.tokenize(['a b zz'], ['', '[UNK]', 'a', 'b'], 4).tolist(), m.word_subwords('ab', 7))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == f"[[2, 3, 1, 0]] {plain_tokenizer.word_subwords('ab', 7)}"
