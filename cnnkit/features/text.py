"""Text preprocessing as Keras layers and pretrained word vectors.

`TextVectorization` turns raw strings into token ids inside the model; word vectors in the
word2vec / GloVe / fastText text format initialise the embedding.
"""
from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
from keras import layers

from cnnkit.errors import CnnkitError
from cnnkit.features.plain_tokenizer import (  # noqa: F401  (tokenize, unknown_subword_ids: also public here)
    BOUNDARY_CHARACTERS, CAPITALISED, END, PUNCTUATION, SENTENCE_END, SENTENCE_END_RE, STANDARDIZE, START,
    UNICODE_PUNCTUATION, UNICODE_SPACES, cased_pattern, split_punctuation, text_tokens, tokenize, truecase_text,
    unknown_subword_ids, word_subwords)

# Modes Keras' TextVectorization does not have: Standardize does them.
OWN_MODES = ("lower_and_split_punctuation", "truecase_and_strip_punctuation")
LEADING_WORD = re.compile(r"[^A-Za-z]*([A-Za-z]+)")  # "(Paris," -> "Paris"
# At most this many cased words (the most often written capitalised): their regex stays within RE2's
# DFA memory (30 000 five-to-ten-letter words did, 100 000 did not; TREC's questions have 2 612).
MAX_CASED_WORDS = 10_000
# preprocess.standardize=auto (auto_standardize): when at least this share of the words inside
# sentences begin with a capital, the texts are in Title Case or capitals (headlines, shouting),
# where a capital does not mark a name: every word is lowercased.
TITLE_CASE_SHARE = 0.5
READABLE = {START: "[start]", END: "[end]"}  # how reports show them


@keras.saving.register_keras_serializable(package="cnnkit")
class Standardize:
    """A TextVectorization `standardize` callable: Keras' standardization `mode` (or
    lower_and_split_punctuation: lower case, a space on each side of every punctuation character
    for word tokens, so that "bad!" reads as "bad" "!"; or truecase_and_strip_punctuation: the
    case kept but for the first word of each sentence unless it is one of `cased` (`lower_sentence_starts`),
    punctuation stripped as Keras does; word tokens only), then with `boundaries` START and END
    around each text (joined by `separator`: " " for word tokens, "" for characters). The two
    characters found inside a text are replaced by `separator` first.

    With `unicode` (new runs; `from_config` of a run saved before reads False) every Unicode
    punctuation character counts as punctuation, Unicode spaces and control characters as spaces
    (before anything else), and lower case is Unicode's (`plain_tokenizer.UNICODE_PUNCTUATION`):
    "Don’t…" reads as "Don't..." does. Without it, as Keras: ASCII only. Mode "none" changes nothing.

    Marks where a text begins and ends, which the zero padding of a "same" convolution does not:
    a filter can then respond to "how" as the first word of a question. Takes and returns a
    string tensor of any shape.
    """

    def __init__(self, mode: str = "lower_and_strip_punctuation", separator: str = " ", boundaries: bool = True,
                 cased: list[str] | tuple = (), unicode: bool = True):
        if mode not in STANDARDIZE:
            raise CnnkitError(f"preprocess.standardize must be one of {', '.join(STANDARDIZE)}. Received: {mode!r}")
        self.mode, self.separator, self.boundaries = mode, separator, boundaries
        self.cased = sorted(cased)  # truecasing: the words a sentence's start keeps capitalised (`cased_words`)
        self.unicode = bool(unicode) and mode != "none"

    def __call__(self, inputs):
        import tensorflow as tf

        punctuation = UNICODE_PUNCTUATION if self.unicode else PUNCTUATION
        if self.unicode:  # first: truecasing and the split read ASCII spaces
            inputs = tf.strings.regex_replace(inputs, UNICODE_SPACES, " ")
        if self.mode == "truecase_and_strip_punctuation":  # before stripping: it reads the periods
            inputs = lower_sentence_starts(inputs, self.cased)
        if self.mode.startswith("lower"):
            inputs = tf.strings.lower(inputs, encoding="utf-8" if self.unicode else "")
        if self.mode.endswith("strip_punctuation"):
            inputs = tf.strings.regex_replace(inputs, punctuation, "")
        if self.mode == "lower_and_split_punctuation" and self.separator:  # characters: already tokens
            inputs = tf.strings.regex_replace(inputs, f"({punctuation})", r" \1 ")
        if not self.boundaries:
            return inputs
        inputs = tf.strings.regex_replace(inputs, BOUNDARY_CHARACTERS, self.separator)
        return tf.strings.join([START + self.separator, inputs, self.separator + END])

    def get_config(self) -> dict:
        return {"mode": self.mode, "separator": self.separator, "boundaries": self.boundaries, "cased": self.cased,
                "unicode": self.unicode}

    @classmethod
    def from_config(cls, config: dict) -> "Standardize":
        return cls(**{"unicode": False, **config})  # saved before 2026-12-08: ASCII, as it was trained


def words_inside_sentences(texts):
    """Each whitespace token of `texts` that does not open a sentence (the first of a text, or one
    after a SENTENCE_END token), in order: "Who is it ? Paris" -> "is", "it", "?"."""
    for text in texts:
        words = text.split()
        for before, token in zip(words, words[1:]):
            if not SENTENCE_END_RE.fullmatch(before):
                yield token


def cased_words(texts: list[str]) -> list[str]:
    """The words the training `texts` write with a capital first letter (then lower case only)
    inside their sentences more often than in lower case: "Paris", "I", "Galileo"; the
    MAX_CASED_WORDS written so most often, sorted.

    A word is the leading letters (LEADING_WORD) of a token of `words_inside_sentences`; ASCII
    letters, as tf.strings.lower.
    """
    capital, lower = {}, {}
    for token in words_inside_sentences(texts):
        match = LEADING_WORD.match(token)
        if not match:
            continue
        word = match.group(1)
        if word.islower():
            lower[word] = lower.get(word, 0) + 1
        elif word[0].isupper() and (len(word) == 1 or word[1:].islower()):
            key = word.lower()
            capital[key] = capital.get(key, 0) + 1
    kept = sorted((key for key, n in capital.items() if n > lower.get(key, 0)), key=lambda k: (-capital[k], k))
    return sorted(key.capitalize() for key in kept[:MAX_CASED_WORDS])


def lower_sentence_starts(inputs, cased=()):
    """Truecasing in TensorFlow: string tensor (any shape) -> the same shape, each text's words
    joined by single spaces, with a word that opens a sentence (the first, and each after a
    SENTENCE_END word) lowercased when its only capital is its first letter (CAPITALISED) and its
    leading letters are not one of `cased` (`cased_words`). The case of every other word is kept:
    "What is Paris ? Paris is ..." -> "what is Paris ? Paris is ..." with cased ["Paris"]. ASCII
    capitals only, as tf.strings.lower; `truecase_text` does the same in Python."""
    import tensorflow as tf

    inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
    words = tf.strings.split(tf.reshape(inputs, [-1]))  # ragged (texts, words)
    ends = words.with_flat_values(tf.strings.regex_full_match(words.flat_values, SENTENCE_END))
    # Each word's predecessor ends a sentence; a text's first word has a True before it.
    after_end = tf.concat([tf.ones_like(ends[:, :1]), ends[:, :-1]], axis=1)
    opens = after_end.flat_values & tf.strings.regex_full_match(words.flat_values, CAPITALISED)
    keep = cased_pattern(cased)
    if keep:
        opens = opens & ~tf.strings.regex_full_match(words.flat_values, keep)
    values = tf.where(opens, tf.strings.lower(words.flat_values), words.flat_values)
    joined = tf.strings.reduce_join(words.with_flat_values(values), axis=1, separator=" ")
    return tf.reshape(joined, tf.shape(inputs))


def auto_standardize(texts: list[str], split: str, sample: int = 5000) -> tuple[str, str | None]:
    """The standardization of `preprocess.standardize=auto` for training `texts`, and a line
    saying why (None when there is nothing to say).

    truecase_and_strip_punctuation when some of the words inside sentences (not opening one) begin
    with a capital, as names do ("Who painted the Mona Lisa ?"), but fewer than TITLE_CASE_SHARE
    of them; lower_and_strip_punctuation for lowercased texts (nothing to keep), for texts in
    Title Case or capitals (there a capital marks no name) and for character tokens. Reads the
    first `sample` texts.
    """
    if split == "character":
        return "lower_and_strip_punctuation", None
    inside = capitals = 0
    for word in words_inside_sentences(texts[:sample]):
        if re.search("[A-Za-z]", word):
            inside += 1
            capitals += bool(re.match("[^A-Za-z]*[A-Z]", word))
    if capitals == 0:
        return "lower_and_strip_punctuation", None
    share = capitals / inside
    if share >= TITLE_CASE_SHARE:
        return "lower_and_strip_punctuation", (
            f"Words lowercased (preprocess.standardize=lower_and_strip_punctuation): {share:.0%} of the words inside "
            f"the training sentences begin with a capital (Title Case or capitals), so a capital marks no name")
    return "truecase_and_strip_punctuation", (
        f"Capitals kept but at sentence starts (preprocess.standardize=truecase_and_strip_punctuation): {share:.1%} "
        f"of the words inside the training sentences begin with one, as names do; lower_and_strip_punctuation "
        f"lowercases every word")


def make_vectorizer(texts: list[str], max_tokens: int, sequence_length: int, standardize: str = "lower_and_strip_punctuation",
                    split: str = "whitespace", ngrams: int | None = None, min_count: int = 1,
                    boundaries: bool = False, unicode: bool = True) -> layers.TextVectorization:
    """A `TextVectorization` adapted on `texts` (the training split only).

    With `boundaries`, each text is read between a START and an END token (`Standardize`); with
    `unicode`, Unicode punctuation, spaces and case are standardized as ASCII's (`Standardize`).

    Tokens seen fewer than `min_count` times in `texts` are left out of the vocabulary, so that
    they map to [UNK] and its vector trains (otherwise [UNK] only ever appears at prediction).
    Returns a layer mapping strings (batch,) to int ids (batch, sequence_length); 0 pads, 1 is
    the out-of-vocabulary id.
    """
    if standardize not in STANDARDIZE:
        raise CnnkitError(f"preprocess.standardize must be one of {', '.join(STANDARDIZE)}. Received: {standardize!r}")
    if split not in ("whitespace", "character"):
        raise CnnkitError(f"preprocess.split must be 'whitespace' or 'character'. Received: {split!r}")
    if standardize == "truecase_and_strip_punctuation" and split != "whitespace":
        raise CnnkitError("preprocess.standardize=truecase_and_strip_punctuation finds the words that open sentences: "
                          "it needs preprocess.split=whitespace. Use strip_punctuation to keep every capital.")
    if min_count < 1:
        raise CnnkitError(f"preprocess.min_count must be 1 or more (1 keeps every token). Received: {min_count!r}")
    if boundaries or standardize in OWN_MODES or (unicode and standardize != "none"):
        cased = cased_words(texts) if standardize == "truecase_and_strip_punctuation" else ()
        mode = Standardize(standardize, separator="" if split == "character" else " ", boundaries=boundaries,
                           cased=cased, unicode=unicode)
    else:
        mode = None if standardize == "none" else standardize
    options = dict(standardize=mode, split=split, ngrams=ngrams)
    vec = layers.TextVectorization(max_tokens=max_tokens, output_mode="int", output_sequence_length=sequence_length,
                                   name="vectorize", **options)
    strings = np.asarray(texts, dtype=object).astype(str)
    vec.adapt(strings, batch_size=1024)
    vocab = vec.get_vocabulary()
    keep = [t for t in vocab[2:] if reads_back(t)]
    if min_count > 1:
        counts = dict(zip(vocab, token_counts(strings, vocab, **options)))
        keep = [t for t in keep if counts[t] >= min_count]
    if len(keep) < len(vocab) - 2:
        vec.set_vocabulary(vocab[:2] + keep)
    return vec


@keras.saving.register_keras_serializable(package="cnnkit")
class UnknownWordSubwords(layers.Layer):
    """(texts (B,) strings, their token ids (B, L) from the run's `TextVectorization`) -> int64
    (B, L, MAX_WORD_GRAMS): for each word outside the vocabulary (id 1, [UNK]) its hashed
    character 3-5-gram ids (`blocks.ngrams.word_subword_ids`), 0-padded; zeros at every other
    step. `SubwordEmbedding` reads them beside its table, so that a word training never saw
    ("unfunniest", a misspelling, a new name) gets the vectors of its n-grams instead of [UNK]'s.

    The words are the vectorizer's own tokens: the same standardization (`standardize`, a
    `Standardize`), whitespace split, cut or padded to `sequence_length`. String work, so it runs
    in the saved model at prediction, and in training only where the vocabulary leaves training
    words out (`preprocess.max_tokens`, `min_count`; computed in tf.data, `TextClassification.dataset`):
    otherwise every training word is in the vocabulary's table.
    """

    def __init__(self, standardize, sequence_length: int, buckets: int, **kwargs):
        super().__init__(**kwargs)
        if isinstance(standardize, dict):
            standardize = keras.saving.deserialize_keras_object(standardize)
        self.standardize, self.sequence_length, self.buckets = standardize, int(sequence_length), int(buckets)
        self._convert_input_args = False  # strings: kept as they are (Keras converts inputs to its dtype)
        self._allow_non_tensor_positional_args = True

    @classmethod
    def of(cls, vectorizer: layers.TextVectorization, buckets: int, **kwargs) -> "UnknownWordSubwords":
        """The layer for the words of `vectorizer` (word tokens) and n-grams hashed into `buckets`."""
        return cls(vectorizer_standardize(vectorizer), vectorizer.get_config()["output_sequence_length"], buckets,
                   **kwargs)

    def call(self, inputs):
        import tensorflow as tf

        from cnnkit.blocks.ngrams import MAX_WORD_GRAMS, word_subword_ids

        words, ids = self.words(inputs[0]), tf.cast(inputs[1], "int64")
        unknown = tf.equal(ids, 1)
        grams = word_subword_ids(tf.boolean_mask(words, unknown), self.buckets)
        grams = grams.to_tensor(default_value=0, shape=[None, MAX_WORD_GRAMS])
        shape = tf.concat([tf.shape(ids, out_type="int64"), [MAX_WORD_GRAMS]], 0)
        return tf.scatter_nd(tf.where(unknown), grams, shape)

    def words(self, texts):
        """The vectorizer's tokens of `texts` (strings (B,)) as strings (B, sequence_length), "" padding."""
        import tensorflow as tf

        texts = tf.convert_to_tensor(texts, tf.string)
        return tf.strings.split(self.standardize(texts)).to_tensor(default_value="", shape=[None, self.sequence_length])

    def compute_output_spec(self, inputs):
        from cnnkit.blocks.ngrams import MAX_WORD_GRAMS

        return keras.KerasTensor((inputs[1].shape[0], self.sequence_length, MAX_WORD_GRAMS), dtype="int64")

    def get_config(self):
        return {**super().get_config(), "standardize": keras.saving.serialize_keras_object(self.standardize),
                "sequence_length": self.sequence_length, "buckets": self.buckets}


def unknown_words_layer(model: keras.Model) -> UnknownWordSubwords | None:
    """The `UnknownWordSubwords` layer ("unknown_subwords") of a text-cls model, or None (a run
    without subwords, or one from before the layer)."""
    return model.get_layer("unknown_subwords") if "unknown_subwords" in [layer.name for layer in model.layers] else None


def reads_back(token: str) -> bool:
    """Whether a vocabulary `token` survives Keras' saving: the vocabulary is written one token a
    line and read back with `str.splitlines`, which also breaks at \\r, \\x0b, \\x0c, \\x1c-\\x1e,
    \\x85 and \\u2028-\\u2029; a token holding one of those (MR's "\\x85", a Windows ellipsis
    read as Latin-1) came back as two and the saved model failed to load ("repeated term"). Such
    tokens are left out of the vocabulary: they read as [UNK]."""
    return token.splitlines() == [token]


def token_counts(texts: np.ndarray, vocabulary: list[str], **options) -> np.ndarray:
    """Occurrences in `texts` (strings (n,)) of each token of `vocabulary` (padding and [UNK]
    first), tokenized with the `TextVectorization` `options`: int (len(vocabulary),)."""
    ragged = layers.TextVectorization(vocabulary=vocabulary, output_mode="int", ragged=True, **options)
    counts = np.zeros(len(vocabulary), dtype="int64")
    for start in range(0, len(texts), 4096):
        ids = ragged(texts[start:start + 4096]).flat_values.numpy()
        counts += np.bincount(ids, minlength=len(vocabulary))
    return counts


def extend_vocabulary(base: list[str], new: list[str], max_tokens: int) -> list[str]:
    """`base` (a source run's vocabulary, ids kept) followed by the tokens of `new` it lacks,
    most frequent first, up to `max_tokens` in all. Both start with the padding and OOV entries."""
    known = set(base)
    extra = [t for t in new if t not in known]
    return base + extra[: max(0, max_tokens - len(base))]


UNSPACED_CHARS_PER_WORD = 12.0  # median characters between spaces from which texts count as written without them


def auto_split(texts: list[str], sample: int = 2000) -> tuple[str, str]:
    """("character" or "whitespace", why) for `preprocess.split=auto`: characters when the texts
    are written without spaces between words (Chinese, Japanese, Thai), i.e. the median of
    their characters per whitespace-separated token, over up to `sample` texts, is at least
    UNSPACED_CHARS_PER_WORD (English sentences: about 5; a word-segmented Chinese corpus: about
    2), else whitespace words. Splitting such texts at spaces makes each sentence one token of
    its own, from which nothing generalises."""
    step = max(1, len(texts) // sample)
    ratios = [len(t) / max(1, len(t.split())) for t in texts[::step] if t.strip()]
    median = float(np.median(ratios)) if ratios else 0.0
    if median >= UNSPACED_CHARS_PER_WORD:
        return "character", (f"the training texts have a median of {median:.0f} characters between spaces, as in "
                             f"languages written without spaces between words; set preprocess.split=whitespace "
                             f"for words")
    return "whitespace", f"a median of {median:.1f} characters between spaces"


def token_lengths(texts: list[str], split: str = "whitespace", standardize: str | None = None) -> np.ndarray:
    """Number of tokens of each text (whitespace words, or characters; with `standardize`
    lower_and_split_punctuation each punctuation character of a word is a token of its own)."""
    if split == "character":
        return np.fromiter((len(t) for t in texts), dtype="int64", count=len(texts))
    if standardize == "lower_and_split_punctuation":
        texts = [split_punctuation(t) for t in texts]
    return np.fromiter((len(t.split()) for t in texts), dtype="int64", count=len(texts))


def auto_sequence_length(lengths: np.ndarray, percentile: float = 95.0, low: int = 8, high: int = 512,
                         boundaries: bool = False) -> int:
    """The `percentile` of the training texts' token counts `lengths` (`token_lengths`; START and
    END added with `boundaries`), clipped to [low, high]."""
    lengths = np.asarray(lengths) + (2 if boundaries else 0)
    return int(np.clip(np.percentile(lengths, percentile) if len(lengths) else low, low, high))


def cut_note(lengths: np.ndarray, split: str, sequence_length: int, boundaries: bool = False) -> str | None:
    """A line for a run whose automatic `sequence_length` (`auto_sequence_length`, capped at 512
    tokens) cuts the end off more than the 5 % of training texts its percentile leaves out (long
    documents), saying how many and how to read more; None otherwise. `lengths`: the training
    texts' token counts (`token_lengths` with `split`)."""
    lengths = np.asarray(lengths)
    cut = float(np.mean(lengths + (2 if boundaries else 0) > sequence_length)) if len(lengths) else 0.0
    if cut <= 0.05:
        return None
    unit = "characters" if split == "character" else "words"
    return (f"Texts are read up to {sequence_length} tokens (preprocess.sequence_length, the most it is set to by "
            f"itself): {cut:.0%} of the training texts are longer (the longest {int(lengths.max())} {unit}) and lose "
            f"their end. --set preprocess.sequence_length=N reads more, in time growing with N.")


FASTTEXT_MODEL_MAGIC = 793712314  # the first int32 of a fastText model .bin (not a vectors file)


def vector_lines(path: Path):
    """The text lines of a word-vectors file: plain (.txt, .vec), gzip-compressed (.gz) or the
    one vectors file of a .zip.

    Raises:
        CnnkitError: for a zip of several files (GloVe's holds one a dimension), which names them.
    """
    import gzip
    import io
    import zipfile

    if path.suffix.lower() == ".gz":
        yield from gzip.open(path, "rt", encoding="utf-8", errors="replace")
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/") and not n.startswith("__MACOSX/")]
            if len(names) != 1:
                raise CnnkitError(f"{path} holds {len(names)} files ({', '.join(names[:6])}): unzip it and pass the "
                                  f"vectors file you want, e.g. --embeddings {names[-1] if names else 'vectors.txt'}.")
            with archive.open(names[0]) as member:
                yield from io.TextIOWrapper(member, encoding="utf-8", errors="replace")
    else:
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from f


def binary_word2vec(path: Path):
    """(word, vector (dim,) little-endian float32, a view to copy if kept) pairs of a binary word2vec file (GoogleNews-vectors-negative300.bin):
    a text header `count dim`, then per word its UTF-8 bytes, a space and dim little-endian
    float32s (a newline between entries in some writers).

    Raises:
        CnnkitError: for a fastText model .bin (its vectors file is the .vec beside it) or
            anything else without the header.
    """
    with open(path, "rb") as f:
        first = f.readline(100)
        if len(first) >= 4 and int.from_bytes(first[:4], "little") == FASTTEXT_MODEL_MAGIC:
            raise CnnkitError(f"{path} is a fastText model, not a vectors file: pass the .vec file fastText publishes "
                              f"beside it (e.g. cc.en.300.vec.gz).")
        header = first.split()
        if len(header) != 2 or not all(part.isdigit() for part in header):
            raise CnnkitError(f"{path} is neither a text vectors file nor a binary word2vec file (no `count dim` "
                              f"header): pass a word2vec/GloVe/fastText .txt, .vec, .gz or word2vec .bin file.")
        count, dim = int(header[0]), int(header[1])
        width = 4 * dim
        buffer, pos = b"", 0
        for _ in range(count):
            while True:  # the word runs to the next space, its vector the width after it
                space = buffer.find(b" ", pos)
                if space >= 0 and len(buffer) >= space + 1 + width:
                    break
                chunk = f.read(1 << 20)
                if not chunk:
                    return
                buffer, pos = buffer[pos:] + chunk, 0
            word = buffer[pos:space].strip(b"\n").decode("utf-8", "replace")
            # a view into the buffer: read_word_vectors copies the vocabulary's vectors only
            yield word, np.frombuffer(buffer, dtype="<f4", count=dim, offset=space + 1)
            pos = space + 1 + width


def is_binary(path: Path) -> bool:
    """Whether `path` is a binary vectors file (not text, gzip or zip), judged from its first 4 kB:
    a NUL byte (a few in any 4 kB of float32s), or for a `.bin` file bytes that are not UTF-8 (a
    text file in another encoding, e.g. latin-1, stays text)."""
    import zipfile

    if path.suffix.lower() == ".gz" or zipfile.is_zipfile(path):
        return False
    with open(path, "rb") as f:
        sample = f.read(4096)
    if b"\0" in sample:
        return True
    if path.suffix.lower() != ".bin":
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start < len(sample) - 4  # not just a character cut at the sample's end
    return False


def text_word_vectors(path: Path):
    """(line number, word, values (list of str)) of a word-vectors text file's entries; a word2vec/fastText
    header line `count dim` and lines of fewer than two values are left out."""
    for n, line in enumerate(vector_lines(path)):
        parts = line.rstrip().split(" ")
        if n == 0 and len(parts) == 2 and all(p.isdigit() for p in parts):
            continue  # word2vec / fastText header
        if len(parts) < 3:
            continue
        yield n + 1, parts[0], parts[1:]


def read_word_vectors(path: str | Path, vocabulary: list[str], dim_hint: int | None = None, seed: int = 0):
    """An embedding matrix (len(vocabulary), dim) from a word-vectors file.

    Text files (word2vec/GloVe/fastText `.txt`/`.vec`, also gzip-compressed `.gz` or the one file
    of a `.zip`): each line is `word v1 v2 ... vd` (a header line `count dim` is skipped).
    Binary word2vec files (`.bin`, e.g. GoogleNews-vectors-negative300.bin) are read too.
    Words of the vocabulary that the file lacks get uniform[-0.25, 0.25] vectors (Kim 2014);
    the padding id 0 gets zeros. A word missing in its own case takes the file's lower-case one.

    Returns:
        (matrix, hits): the float32 matrix and how many vocabulary words the file had.
    """
    path = Path(path)
    if not path.is_file():
        raise CnnkitError(f"Word-vectors file {path} does not exist; pass a word2vec/GloVe/fastText .txt, .vec, .gz "
                          f"or word2vec .bin file.")
    index = {w: i for i, w in enumerate(vocabulary)}
    vectors: dict[int, np.ndarray] = {}
    dim = None
    if is_binary(path):
        entries = ((n, word, values) for n, (word, values) in enumerate(binary_word2vec(path), start=2))
    else:
        entries = text_word_vectors(path)
    for line, word, values in entries:
        if dim is None:
            dim = len(values)
        if len(values) != dim:
            raise CnnkitError(f"{path}:{line} has {len(values)} values, earlier lines {dim}; is it a vectors file?")
        i = index.get(word)
        if i is None:
            lowered = index.get(word.lower())
            i = lowered if lowered is not None and lowered not in vectors else None
        if i is not None and i not in vectors:
            vectors[i] = np.array(values, dtype="float32")  # a copy: a binary file's values are a view
    if dim is None:
        raise CnnkitError(f"{path} holds no word vectors (lines of `word v1 v2 ...`, or a binary word2vec file).")
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-0.25, 0.25, size=(len(vocabulary), dim)).astype("float32")
    for i, v in vectors.items():
        matrix[i] = v
    matrix[0] = 0.0
    return matrix, len(vectors)


def vectorizer_standardize(layer) -> Standardize:
    """The standardization of a `TextVectorization` layer (also one read back from model.keras) as
    a `Standardize`: its own, or for Keras' modes the `Standardize` that does them alike (no start
    and end tokens)."""
    standardize = layer.get_config().get("standardize")
    if isinstance(standardize, dict):  # serialized
        standardize = keras.saving.deserialize_keras_object(standardize)
    if isinstance(standardize, Standardize):
        return standardize
    return Standardize(standardize or "none", boundaries=False, unicode=False)  # Keras' own modes read ASCII


def vectorizer_cased_words(layer) -> list[str]:
    """The words a `TextVectorization` layer's truecasing keeps capitalised at sentence starts
    (`Standardize.cased`); [] for other standardizations."""
    return list(vectorizer_standardize(layer).cased)
