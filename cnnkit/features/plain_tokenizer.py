"""The tokenization of a text run's token-id exports (TFLite, ONNX) in plain Python.

Standalone on purpose: it imports only the standard library and NumPy, so that `cnnkit export` can copy it beside
the exported model as `tokenizer.py`, where a server with a TFLite or ONNX runtime and without
TensorFlow computes the model's inputs from raw strings:

    ids = tokenize(texts, vocabulary, sequence_length, standardize, split, boundaries, cased_words)
    grams = unknown_subword_ids(texts, vocabulary, sequence_length, buckets, standardize, boundaries, cased_words)

(the arguments are in the export's tokenizer.json). Inside cnnkit the same constants define the
model's own layers (`features.text.Standardize`, `UnknownWordSubwords`, `blocks.SubwordEmbedding`),
and the tests hold both sides equal.
"""
from __future__ import annotations

import functools
import re

import numpy as np

STANDARDIZE = ("lower_and_strip_punctuation", "lower_and_split_punctuation", "truecase_and_strip_punctuation", "lower",
               "strip_punctuation", "none")
# Truecasing (standardize=truecase_and_strip_punctuation; `lower_sentence_starts`), as Moses'
# truecaser: a word ending in . ! or ? (then perhaps closing quotes or brackets) ends a sentence, so
# the word after it opens one; a word opening a sentence whose only capital is its first letter
# ("What", "(The", "I") is lowercased there, since that capital marks the sentence's start, unless
# the training texts write the word so inside their sentences more often than in lower case
# ("Paris", "I": `cased_words`). Every word inside a sentence keeps its case.
SENTENCE_END = r""".*[.!?]["')\]]*"""
CAPITALISED = r"[^A-Za-z]*[A-Z][^A-Z]*"
SENTENCE_END_RE, CAPITALISED_RE = re.compile(SENTENCE_END), re.compile(CAPITALISED)
# Keras TextVectorization's punctuation pattern (its "strip_punctuation"), shared by Standardize and tokenize.
PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
# Standardization that reads Unicode (`Standardize(unicode=True)`, the default for new runs since
# 2026-12-08; runs saved before read ASCII only): every Unicode punctuation character (general
# category P*: curly quotes, dashes, the ellipsis, inverted marks, CJK marks) is punctuation besides
# Keras' ASCII class, so "don’t" (a phone keyboard's apostrophe) reads as "don't" does; Unicode
# spaces and control characters (general categories Z* and Cc but START and END: a no-break space, the C1 controls
# of text decoded from Windows-1252 as Latin-1, such as "\x85" for an ellipsis) separate words as a
# space does; lower case is Unicode's ("ÉCOLE" -> "école"). RE2 patterns (TensorFlow's regexes); the
# plain-Python side reads the same categories from `unicodedata` (`_unicode_tables`): they agree but
# for characters assigned after Unicode 14.
UNICODE_PUNCTUATION = PUNCTUATION[:-1] + r"\p{P}]"
# The control characters (Cc) but START and END: `boundaries` replaces those as before.
UNICODE_SPACES = r"[\p{Z}\x00\x01\x04-\x1f\x7f-\x9f]"
# The tokens around each text with preprocess.boundaries: ASCII's "start of text" and "end of text"
# characters. No standardization changes them and neither split cuts them (they are not whitespace),
# so they are tokens of their own for words and characters alike.
START, END = "\x02", "\x03"
# START or END inside a text: replaced (by the separator) before the tokens are added, so that only
# the added ones mark where a text begins and ends.
BOUNDARY_CHARACTERS = "[\x02\x03]"

# fastText's subwords: the character n-grams of these sizes of a word wrapped in < and >, of its
# first SUBWORD_LONGEST characters.
SUBWORD_SIZES = (3, 4, 5)
SUBWORD_LONGEST = 20
# The most n-grams of one word (SUBWORD_LONGEST characters and the two marks): 20 + 19 + 18.
MAX_WORD_GRAMS = sum(SUBWORD_LONGEST + 3 - n for n in SUBWORD_SIZES)


def cased_pattern(cased) -> str | None:
    """A regex fully matching a word whose leading letters are one of `cased` (then a non-letter
    and anything, or nothing: "Paris" and "Paris's" for "Paris"); None for no words."""
    return f"[^A-Za-z]*(?:{'|'.join(sorted(cased))})(?:[^A-Za-z].*)?" if len(cased) else None


# TensorFlow's fast string hash: `tf.strings.to_hash_bucket_fast(s, buckets)` is
# `Fingerprint64(s) % buckets`, TensorFlow's Fingerprint64 being FarmHash's (farmhashna::Hash64,
# which for up to 32 bytes is CityHash64's). A 5-gram is at most 20 UTF-8 bytes, so only FarmHash's
# paths for 0-16 and 17-32 bytes are written here; longer input is refused rather than hashed
# differently from TensorFlow.
MASK = (1 << 64) - 1
K0 = 0xC3A5C85C97CB3127
K1 = 0xB492B66FBE98F273
K2 = 0x9AE16A3B2F90404F
HASHED_BYTES = 32  # the longest input `fingerprint64` hashes as TensorFlow does


def _fetch64(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 8], "little")


def _fetch32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


def _rotate(value: int, shift: int) -> int:
    return value if shift == 0 else ((value >> shift) | (value << (64 - shift))) & MASK


def _shift_mix(value: int) -> int:
    return value ^ (value >> 47)


def _hash_len16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & MASK
    a ^= a >> 47
    b = ((v ^ a) * mul) & MASK
    b ^= b >> 47
    return (b * mul) & MASK


def _hash_len0to16(data: bytes) -> int:
    n = len(data)
    if n >= 8:
        mul = (K2 + n * 2) & MASK
        a = (_fetch64(data, 0) + K2) & MASK
        b = _fetch64(data, n - 8)
        c = (_rotate(b, 37) * mul + a) & MASK
        d = ((_rotate(a, 25) + b) * mul) & MASK
        return _hash_len16(c, d, mul)
    if n >= 4:
        mul = (K2 + n * 2) & MASK
        return _hash_len16((n + (_fetch32(data, 0) << 3)) & MASK, _fetch32(data, n - 4), mul)
    if n > 0:
        y = (data[0] + (data[n >> 1] << 8)) & 0xFFFFFFFF
        z = (n + (data[n - 1] << 2)) & 0xFFFFFFFF
        return (_shift_mix(((y * K2) & MASK) ^ ((z * K0) & MASK)) * K2) & MASK
    return K2


def _hash_len17to32(data: bytes) -> int:
    n = len(data)
    mul = (K2 + n * 2) & MASK
    a = (_fetch64(data, 0) * K1) & MASK
    b = _fetch64(data, 8)
    c = (_fetch64(data, n - 8) * mul) & MASK
    d = (_fetch64(data, n - 16) * K2) & MASK
    return _hash_len16((_rotate((a + b) & MASK, 43) + _rotate(c, 30) + d) & MASK,
                       (a + _rotate((b + K2) & MASK, 18) + c) & MASK, mul)


def fingerprint64(data: bytes) -> int:
    """TensorFlow's Fingerprint64 (FarmHash) of `data`, at most HASHED_BYTES bytes: an int in [0, 2**64).

    Raises:
        ValueError: for longer `data` (FarmHash's other paths are not written here).
    """
    if len(data) > HASHED_BYTES:
        raise ValueError(f"fingerprint64 hashes at most {HASHED_BYTES} bytes (character n-grams); received {len(data)}")
    return _hash_len0to16(data) if len(data) <= 16 else _hash_len17to32(data)


def hash_bucket(text: str, buckets: int) -> int:
    """`tf.strings.to_hash_bucket_fast(text, buckets)` of one string: its UTF-8 bytes' fingerprint mod `buckets`."""
    return fingerprint64(text.encode("utf-8")) % buckets


# What TextVectorization does, in plain Python:
# tf.strings.lower lowercases ASCII only (Unicode with encoding="utf-8", as `unicode` standardization
# does); the punctuation class is Keras' own (or UNICODE_PUNCTUATION); the whitespace split is on
# ASCII whitespace (Unicode spaces are made ASCII ones first with `unicode`).
_PUNCTUATION = re.compile(PUNCTUATION)
_BOUNDARY = re.compile(BOUNDARY_CHARACTERS)
_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@functools.lru_cache(maxsize=1)
def _unicode_tables() -> tuple[re.Pattern, dict]:
    """(a regex of one character of `UNICODE_PUNCTUATION`, a `str.translate` table mapping every
    character of `UNICODE_SPACES` to a space), from `unicodedata`: built once (about half a second:
    every code point's category is read)."""
    import unicodedata

    punct, spaces = [], {}
    for code in range(0x110000):
        category = unicodedata.category(chr(code))
        if category.startswith("P"):
            punct.append(code)
        elif category.startswith("Z") or (category == "Cc" and chr(code) not in (START, END)):
            spaces[code] = " "
    ranges, start = [], punct[0]
    for before, code in zip(punct, punct[1:] + [None]):
        if code != before + 1:
            ranges.append(re.escape(chr(start)) + ("-" + re.escape(chr(before)) if before > start else ""))
            start = code
    return re.compile(PUNCTUATION[:-1] + "".join(ranges) + "]"), spaces


def split_punctuation(text: str, unicode: bool = False) -> str:
    """`text` with a space on each side of every punctuation character (Keras' class; with
    `unicode`, `UNICODE_PUNCTUATION`'s), as `Standardize` does for lower_and_split_punctuation
    word tokens: "bad!" -> "bad ! "."""
    return (_unicode_tables()[0] if unicode else _PUNCTUATION).sub(r" \g<0> ", text)


def truecase_text(text: str, cased=()) -> str:
    """`lower_sentence_starts` of one text in plain Python: its whitespace words joined by single
    spaces, a word opening a sentence lowercased (ASCII) when its only capital is its first letter
    and it is not one of `cased`."""
    return _truecase(text, _cased_regex(cased))


def _cased_regex(cased) -> re.Pattern | None:
    """`cased_pattern` compiled (None for no words): once per `tokenize` call, not once a text."""
    pattern = cased_pattern(cased)
    return re.compile(pattern) if pattern else None


def _truecase(text: str, keep: re.Pattern | None) -> str:
    """`truecase_text` with the cased words' regex `keep` (`_cased_regex`) already compiled."""
    words = [w for w in _WHITESPACE.split(text) if w]
    return " ".join(w.translate(_ASCII_LOWER) if (i == 0 or SENTENCE_END_RE.fullmatch(words[i - 1]))
                    and CAPITALISED_RE.fullmatch(w) and not (keep and keep.fullmatch(w)) else w
                    for i, w in enumerate(words))


def tokenize(texts, vocabulary: list[str], sequence_length: int, standardize: str = "lower_and_strip_punctuation",
             split: str = "whitespace", boundaries: bool = False, cased=(), unicode: bool = False) -> np.ndarray:
    """Token ids (N, sequence_length) int64 of `texts`, equal to the run's `TextVectorization`
    (0 pads, 1 is out of vocabulary; START and END around each text with `boundaries`; `cased`:
    the words truecasing keeps capitalised, `vectorizer_cased_words`; `unicode`: the run's
    standardization reads Unicode, tokenizer.json's "unicode"); for serving a token-id
    export outside TensorFlow.

    Raises:
        ValueError: for standardize/split values it does not reproduce.
    """
    index = {token: i for i, token in enumerate(vocabulary) if i > 0}
    out = np.zeros((len(texts), sequence_length), dtype="int64")
    for row, tokens in enumerate(text_tokens(texts, sequence_length, standardize, split, boundaries, cased, unicode)):
        out[row, : len(tokens)] = [index.get(t, 1) for t in tokens]
    return out


def text_tokens(texts, sequence_length: int, standardize: str = "lower_and_strip_punctuation",
                split: str = "whitespace", boundaries: bool = False, cased=(), unicode: bool = False) -> list[list[str]]:
    """The tokens of each of `texts` (N,) as the run's `TextVectorization` cuts them (at most
    `sequence_length` a text), in plain Python: what `tokenize` and `unknown_subword_ids` look up.

    Raises:
        ValueError: for standardize/split values it does not reproduce.
    """
    if standardize not in STANDARDIZE or split not in ("whitespace", "character"):
        raise ValueError(f"tokenize reproduces standardize in {STANDARDIZE} and split whitespace|character. "
                         f"Received: {standardize!r}, {split!r}")
    keep = _cased_regex(cased)
    unicode = unicode and standardize != "none"
    punctuation, spaces = _unicode_tables() if unicode else (_PUNCTUATION, None)
    rows = []
    for text in texts:
        if unicode:
            text = text.translate(spaces)
        if standardize == "truecase_and_strip_punctuation" and split == "whitespace":
            text = _truecase(text, keep)
        if standardize.startswith("lower"):
            text = text.lower() if unicode else text.translate(_ASCII_LOWER)
        if standardize.endswith("strip_punctuation"):
            text = punctuation.sub("", text)
        if standardize == "lower_and_split_punctuation" and split == "whitespace":
            text = split_punctuation(text, unicode)
        if boundaries:
            text = _BOUNDARY.sub("" if split == "character" else " ", text)
        tokens = list(text) if split == "character" else [t for t in _WHITESPACE.split(text) if t]
        if boundaries:
            tokens = [START, *tokens, END]
        rows.append(tokens[:sequence_length])
    return rows


@functools.lru_cache(maxsize=1 << 16)
def word_subwords(word: str, buckets: int) -> tuple[int, ...]:
    """`blocks.ngrams.word_subword_ids` of one word in plain Python: the ids (1..`buckets`) of its
    character 3-, then 4-, then 5-grams, the word cut to SUBWORD_LONGEST characters and wrapped in
    < and >, hashed as `tf.strings.to_hash_bucket_fast` does (`hash_bucket`). Cached (the last
    65 536 words): texts repeat their words outside the vocabulary (names, coined words), and each
    costs about 57 hashes in Python."""
    wrapped = f"<{word[:SUBWORD_LONGEST]}>"
    return tuple(hash_bucket(wrapped[i:i + n], buckets) + 1 for n in SUBWORD_SIZES for i in range(len(wrapped) - n + 1))


def unknown_subword_ids(texts, vocabulary: list[str], sequence_length: int, buckets: int,
                        standardize: str = "lower_and_strip_punctuation", boundaries: bool = False,
                        cased=(), unicode: bool = False) -> np.ndarray:
    """What a run's `UnknownWordSubwords` layer gives, in plain Python (the second input of a
    token-id export with subwords, outside TensorFlow): int64 (N, sequence_length,
    MAX_WORD_GRAMS), for each whitespace token of `texts` outside `vocabulary` its `word_subwords`,
    0-padded; zeros at every other step. The other arguments are `tokenize`'s."""
    known = set(vocabulary[2:])  # id 1 ([UNK]) is what the layer reads n-grams for, a literal "[UNK]" too
    out = np.zeros((len(texts), sequence_length, MAX_WORD_GRAMS), dtype="int64")
    for row, tokens in enumerate(text_tokens(texts, sequence_length, standardize, "whitespace", boundaries, cased,
                                             unicode)):
        for step, token in enumerate(tokens):
            if token not in known:
                grams = word_subwords(token, buckets)
                out[row, step, : len(grams)] = grams
    return out
