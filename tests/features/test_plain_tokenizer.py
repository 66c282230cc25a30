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


def test_unicode_tables_are_tensorflows_classes():
    """The plain-Python punctuation and space classes of Unicode standardization
    (`_unicode_tables`, from `unicodedata`) match the RE2 patterns the model's layer uses on every
    code point of the Basic Multilingual Plane and of the emoji blocks that Python's Unicode database
    assigns (RE2 may know newer characters), and Python's lower case matches
    tf.strings.lower(encoding="utf-8") there."""
    import unicodedata

    import tensorflow as tf

    from cnnkit.features.plain_tokenizer import UNICODE_PUNCTUATION, UNICODE_SPACES, _unicode_tables

    chars = [chr(c) for c in [*range(1, 0x10000), *range(0x1F000, 0x1FB00)]
             if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) not in ("Cn", "Co")]
    punctuation, spaces = _unicode_tables()
    x = tf.constant(chars)
    assert tf.strings.regex_full_match(x, UNICODE_PUNCTUATION).numpy().tolist() == [
        bool(punctuation.fullmatch(ch)) for ch in chars]
    assert tf.strings.regex_full_match(x, UNICODE_SPACES).numpy().tolist() == [ch.translate(spaces) == " " for ch in chars]
    assert ord("\x02") not in spaces and ord("’") not in spaces and punctuation.fullmatch("’")
    lowered = [s.decode() for s in tf.strings.lower(x, encoding="utf-8").numpy()]
    differ = [ch for ch, low in zip(chars, lowered) if low != ch.lower()]
    assert len(differ) < 60, differ[:20]  # letters of Unicode 14 TensorFlow's ICU does not case (41 found)
