"""text-cls: sentence and document classification with 1D CNNs.

Data: CSV/TSV (`text,label`), folders of .txt files per class, tfds text sets. Model:
strings -> TextVectorization (vocabulary from the training split) -> embedding (random, or
pretrained vectors kept static, fine-tuned, or both as two channels) -> 1D backbone (Kim's
CNN by default) -> ClassifierHead. The saved model takes raw strings.
"""
from __future__ import annotations

import dataclasses
import sys
import weakref
from pathlib import Path
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from cnnkit.blocks.ngrams import MAX_WORD_GRAMS
from cnnkit.datasets.sources import decoding
from cnnkit.errors import CnnkitError
from cnnkit.features import text as text_features
from cnnkit.tasks.base import TASKS, Prepared, Task

TEXT_EXTENSIONS = (".txt",)
MAX_DOC_BYTES = 1_000_000  # longer files are cut: a document classifier reads the first sequence_length tokens
LOW_VECTOR_SHARE = 0.1  # under this share of the vocabulary found in --embeddings, a warning
# Subword buckets when preprocess.subwords is unset. 10 000 rather than fastText's millions: on
# TREC / SST-2 / SST-5 (two seeds of the five-member recipes) 10 000 buckets gained about as much as
# 50 000 (+0.53 against +0.44 points on average) in less training time (55 / 97 / 108 s against
# 76-86 / 108-112 / 126-127 s with lazy Adam; BENCHMARKS.md, text-cls, eleventh session).
SUBWORD_BUCKETS = 10_000
# Training texts of a median of at least this many words (two sentences or more) are long: an unset
# preprocess.ngram_branch is then on (default_ngram_branch). Sentences have medians of 10-20 words
# (TREC, SST, MR), where the branch gained on two sets and lost on two; texts of 41-210 words gained
# 2-8 points (BENCHMARKS.md, text-cls, twenty-fourth session).
LONG_TEXT_WORDS = 40


@dataclasses.dataclass
class TextPreprocessConfig:
    max_tokens: int = 30000  # vocabulary: the most frequent tokens of the training split
    min_count: int = 1  # tokens seen fewer times in the training split map to [UNK] (which then trains)
    sequence_length: Optional[int] = None  # tokens per text; unset: the 95th percentile of the training texts
    # auto | lower_and_strip_punctuation | truecase_and_strip_punctuation (the case kept but for a
    # sentence's first word: features.text.lower_sentence_starts) | lower_and_split_punctuation (each
    # punctuation character a token of its own, as Kim's preprocessing; one network gained on TREC and
    # lost on SST-2, the recipes did not gain: BENCHMARKS.md, text-cls, twenty-sixth session) | lower |
    # strip_punctuation | none. auto (text_features.auto_standardize): truecase when some words inside
    # the training sentences begin with a capital, as names do, and lower_and_strip_punctuation for
    # lowercased texts, Title Case and character tokens. On TREC's questions (the one mixed-case set
    # here) truecasing gained 0.80 points for one network and 0.44 for the recipe (five seeds); on
    # SST-2 / SST-5 given capitals at sentence starts it read them as lowercased, where keeping every
    # capital cost 0.44 / 1.39 (BENCHMARKS.md, text-cls, "Capitals inside sentences kept").
    standardize: str = "auto"
    # The standardization reads Unicode (features.text.Standardize): every punctuation character
    # (curly quotes, dashes, the ellipsis) is stripped or split as ASCII's is, Unicode spaces and
    # control characters separate words, lower case is Unicode's; so "don’t" from a phone keyboard
    # reads as "don't". false: ASCII only, as Keras' modes (and runs saved before 2026-12-08).
    unicode: bool = True
    # auto | whitespace (words) | character. auto: character for texts written without spaces
    # between words (Chinese, Japanese, Thai: text_features.auto_split), else whitespace.
    split: str = "auto"
    # A start and an end token around each text (features.text.Standardize): the network sees
    # where a text begins ("how" opening a question) and ends. On: the five-member recipes gained on
    # TREC at every seed (BENCHMARKS.md, text-cls, sixteenth session).
    boundaries: bool = True
    ngrams: Optional[int] = None  # also n-grams up to this n (e.g. 2 for word bigrams)
    embed_dim: int = 128  # width of a random embedding (a vectors file sets its own)
    embeddings: Optional[str] = None  # word2vec/GloVe/fastText text file to initialise the embedding
    embeddings_mode: str = "non-static"  # static (frozen) | non-static (fine-tuned) | multichannel (both)
    # A linear model on the tf-idf bag of the token ids' unigrams and hashed bigrams beside the CNN,
    # its logits added to the head's (wide and deep; cnnkit.blocks.NgramLogits). 0 buckets: unigrams only.
    # Unset: on for long texts, off for sentences (default_ngram_branch): on sentences it helped MR and
    # SST-2 but cost SST-5 and a 2 700-sentence sample; on texts of 41-210 words it gained 2-8 points.
    ngram_branch: Optional[bool] = None
    ngram_buckets: int = 100_000
    ngram_normalize: bool = False  # divide the branch's logits by the text's tf-idf L2 norm
    # Hash buckets of character 3-5-gram vectors added to each word's vector (fastText's subwords,
    # cnnkit.blocks.SubwordEmbedding); 0: off; unset: SUBWORD_BUCKETS for word tokens on a random
    # embedding, off otherwise (default_subwords). BENCHMARKS.md (text-cls, tenth and eleventh sessions).
    subwords: Optional[int] = None
    # Training batches of texts of like lengths: tf.data groups the training texts into this many
    # quantiles of their token counts (at most one per 10 batches), batches within each, and cuts
    # each batch to its longest text plus the widest filter (`length_batches`, `padded_steps`), so
    # the convolutions run over less padding. Only for backbones whose features do not depend on how
    # far a text is padded (`padding_margin`: Kim's CNN, "same" convolutions of the embedded tokens
    # and max over time): the network computes the same function, from batches of other texts. 0
    # (the default): batches of random texts, each padded to sequence_length. 8 trained MR's recipe
    # 16-25 % faster at the same accuracy but cost SST-5 0.31 points (4 seeds of 5 worse; the
    # networks alone 0.54; BENCHMARKS.md, text-cls).
    length_buckets: int = 0


def read_text_file(path: str, encoding: str = "utf-8") -> str:
    """The text of a file in `encoding` (`data.encoding`), undecodable bytes replaced, at most
    MAX_DOC_BYTES read; a UTF-8 byte-order mark is dropped (it would be glued to the first word)."""
    with open(path, "rb") as f:
        data = f.read(MAX_DOC_BYTES)
    return data.decode(decoding(encoding), errors="replace")


def default_subwords(p: TextPreprocessConfig) -> int:
    """The subword buckets of an unset `preprocess.subwords`: SUBWORD_BUCKETS for word tokens on
    a random embedding; 0 for character or word n-gram tokens (they have no words to cut) and
    with an `--embeddings` file (not measured with pretrained vectors)."""
    words = p.split in ("whitespace", "auto") and not p.ngrams  # prepare resolves auto before
    return SUBWORD_BUCKETS if words and not p.embeddings else 0


def default_ngram_branch(lengths: np.ndarray, p: TextPreprocessConfig) -> bool:
    """The value of an unset `preprocess.ngram_branch`: on when the training texts, of
    `lengths` whitespace words each, are long (a median of at least LONG_TEXT_WORDS words) and
    read as word tokens; off for sentences and for character or n-gram tokens."""
    return (p.split == "whitespace" and not p.ngrams and len(lengths) > 0
            and float(np.median(lengths)) >= LONG_TEXT_WORDS)


def ngram_buckets(p: TextPreprocessConfig) -> int:
    """`preprocess.ngram_buckets` (the bigram hash buckets of the n-gram branch and the naive-Bayes member).

    Raises:
        CnnkitError: when it is negative.
    """
    if p.ngram_buckets < 0:
        raise CnnkitError(f"preprocess.ngram_buckets must be >= 0 (0: unigrams only). Received: {p.ngram_buckets}")
    return p.ngram_buckets


def padding_margin(backbone: keras.Model) -> Optional[int]:
    """Steps of padding after a text from which on `backbone`'s features (B, F) no longer depend on
    how much more padding follows, or None when they always may.

    A number only for Kim's kind of CNN: Conv1D layers ("same" padding, stride and dilation 1) that
    each read the backbone's input, max over time (GlobalMaxPooling1D), concatenation and dropout.
    Their margin is the widest kernel: a text padded with at least that many steps has every window
    of a longer padding (all-padding windows and the end's, which take zeros past the last step)
    among its own, so the maxima are the same. Averages, strides, normalization or stacked
    convolutions see how far the padding goes: None.
    """
    if len(backbone.inputs) != 1 or len(backbone.output.shape) != 2:
        return None
    widths = []
    for layer in backbone.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        if isinstance(layer, layers.Conv1D):
            if (layer.padding != "same" or tuple(layer.strides) != (1,) or tuple(layer.dilation_rate) != (1,)
                    or layer.input is not backbone.inputs[0]):
                return None
            widths.append(layer.kernel_size[0])
        elif not isinstance(layer, (layers.GlobalMaxPooling1D, layers.Concatenate, layers.Dropout)):
            return None
    return max(widths) if widths else None


def length_batches(ds: tf.data.Dataset, lengths: np.ndarray, batch_size: int, buckets: int) -> tf.data.Dataset:
    """`ds`'s elements (token ids (S,), ..., label), in the order `ds` gives them (shuffled), in
    batches of `batch_size` texts of like lengths: `buckets` quantiles of `lengths` (N,), the token
    counts of its N elements, each batched apart (tf.data group_by_window). The dataset knows its
    number of batches (each quantile's last batch is short), for Keras' progress bar and schedules."""
    bounds = np.unique(np.quantile(lengths, np.arange(1, buckets) / buckets).astype("int64"))
    batches = int(np.ceil(np.bincount(np.searchsorted(bounds, lengths), minlength=len(bounds) + 1) / batch_size).sum())
    bounds_t = tf.constant(bounds, tf.int64)

    def bucket(ids, *rest):
        n = tf.reshape(tf.math.count_nonzero(ids), [1])
        return tf.searchsorted(bounds_t, n, out_type=tf.int64)[0]

    ds = ds.group_by_window(bucket, lambda _, window: window.batch(batch_size), window_size=batch_size)
    return ds.apply(tf.data.experimental.assert_cardinality(batches))


def padded_steps(ids: tf.Tensor, margin: int) -> tf.Tensor:
    """The steps a batch of token ids (B, S) keeps: its longest text (count of non-zero ids: the
    vectorizer pads at the end) plus `margin` (`padding_margin`), at most S. A scalar int64."""
    longest = tf.reduce_max(tf.math.count_nonzero(ids, axis=1))
    return tf.minimum(tf.shape(ids, out_type=tf.int64)[1], longest + margin)


@TASKS.register("text-cls")
class TextClassification(Task):
    name = "text-cls"
    modality = "sequence"
    preprocess_cls = TextPreprocessConfig
    default_source = "builtin:sentences"
    extensions = TEXT_EXTENSIONS
    ensembles = True
    defaults = {
        # monitor loss: the epoch of least validation loss is kept, and early stopping watches it
        # (BENCHMARKS.md, text-cls, fifteenth session: the five-member recipes +1.02 points on SST-2,
        # within 0.05 of the most accurate epoch's figures on TREC, SST-5 and MR).
        # precise_bn: batch norm's statistics re-estimated each epoch on 50 training batches. Kim's CNN
        # has none (no effect); resnet1d evaluated at chance in three runs of five on the 2 700-sentence
        # sample without it (its moving averages trail the fast-moving embedding; BENCHMARKS.md, text-cls).
        # epochs 30: a ceiling that early stopping ends long before on sentence sets of thousands
        # (SST, TREC, MR: every member stopped by epoch 9); a few hundred long documents or a
        # thousand questions still improved at epoch 10 (+1.56 and +0.87 points with 30, three seeds
        # each; BENCHMARKS.md, text-cls, twenty-fourth session).
        # early_stopping 2: the validation loss of a text CNN falls smoothly to its least and then
        # rises; of 146 networks' histories (the four benchmarks' runs and one network on small
        # data) patience 2 kept the same best epoch in 145 (the other 0.001 of loss apart) for
        # 10-18 % fewer epochs than 3 (BENCHMARKS.md, text-cls, twenty-eighth session).
        "train": {"epochs": 30, "batch_size": 50, "lr": 1e-3, "optimizer": "adam", "schedule": "constant",
                  "early_stopping": 2, "monitor": "loss", "precise_bn": 50},
        "model": {"backbone": "kim_cnn"},
    }

    # ------------------------------------------------------------ data
    def prepare(self, cfg, data) -> Prepared:
        p = cfg.preprocess
        if data.kind == "arrays":
            raise CnnkitError(f"{data.origin} holds arrays (images?), not text: use `cnnkit train image-cls` for it.")
        splits, ids, skipped = {}, {}, list(data.skipped)
        for name, split in data.splits.items():
            texts = ([read_text_file(x, cfg.data.encoding) for x in split.x] if data.kind == "files"
                     else [str(x) for x in split.x])
            keep = [i for i, t in enumerate(texts) if t.strip()]
            skipped += [(split.x[i] if data.kind == "files" else f"{name}[{i}]", "empty text")
                        for i in sorted(set(range(len(texts))) - set(keep))]
            if not keep:
                raise CnnkitError(f"{data.origin}: every text of the {name} split is empty.")
            splits[name] = (np.asarray([texts[i] for i in keep], dtype=object), split.y[keep])
            ids[name] = [split.x[i] if data.kind == "files" else texts[i] for i in keep]
        train_texts = list(splits["train"][0])
        if p.split == "auto":  # the run's config.yaml records what it became
            p.split, why = text_features.auto_split(train_texts)
            if p.split == "character":
                print(f"Tokens are characters (preprocess.split=character): {why}", file=sys.stderr)
        if p.standardize not in ("auto", *text_features.STANDARDIZE):
            raise CnnkitError(f"preprocess.standardize must be one of auto, {', '.join(text_features.STANDARDIZE)}. "
                              f"Received: {p.standardize!r}")
        if p.standardize == "auto":  # after split: character tokens are lowercased
            p.standardize, why = text_features.auto_standardize(train_texts, p.split)
            if why:
                print(why, file=sys.stderr)
        lengths = text_features.token_lengths(train_texts, p.split, p.standardize)  # words, or characters
        if p.sequence_length is None:
            p.sequence_length = text_features.auto_sequence_length(lengths, boundaries=p.boundaries)
            note = text_features.cut_note(lengths, p.split, p.sequence_length, p.boundaries)
            if note:
                print(note, file=sys.stderr)
        if p.subwords is None:
            p.subwords = default_subwords(p)
        if p.ngram_branch is None:  # the run's config.yaml records what it became
            p.ngram_branch = default_ngram_branch(lengths, p)
            if p.ngram_branch:
                print(f"The texts are long (a median of {np.median(lengths):.0f} words, at least "
                      f"{LONG_TEXT_WORDS}): a linear n-gram branch joins the CNN (preprocess.ngram_branch; false "
                      f"turns it off)", file=sys.stderr)
        return Prepared(splits, ids, list(data.class_names), skipped, data.origin, multi_label=data.multi_label)

    def dataset(self, x, y, cfg, training: bool, num_classes: int | None = None):
        """Batches of (int token ids (B, sequence_length), labels): the vectorizer runs in tf.data,
        once. When the built network reads the n-grams of training words outside the vocabulary
        (`build`), batches of ((token ids, their n-gram ids (B, sequence_length, MAX_WORD_GRAMS)),
        labels), the n-gram ids computed once too. When `build` made a network whose features do not
        depend on the padding (`padding_margin`), training batches hold texts of like lengths
        (`preprocess.length_buckets`, `length_batches`) and keep only the steps they need (`padded_steps`)."""
        ds = tf.data.Dataset.from_tensor_slices((np.asarray(x, dtype=object).astype(str), y))
        unknown = getattr(self, "_training_unknown", None)
        if unknown is None:
            ds = ds.batch(1024).map(lambda t, l: (self._vectorizer(t), l), num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        else:
            def with_grams(t, l):
                ids = self._vectorizer(t)
                return ids, unknown([t, ids]), l

            # Computed once and cached sparse: only the steps of words outside the vocabulary hold
            # n-grams (57 int64 a step, dense, would not fit a large corpus' cache).
            ds = ds.batch(1024).map(with_grams, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
            ds = ds.map(lambda i, g, l: (i, tf.sparse.from_dense(g), l))
        ds = ds.cache()
        margin = getattr(self, "_padding_margin", None) if training else None
        lengths = None
        if margin is not None:  # one pass that also fills the cache
            lengths = ds.map(lambda i, *_: tf.math.count_nonzero(i)).batch(len(y)).get_single_element().numpy()
        if training:
            ds = ds.shuffle(len(y), seed=cfg.train.seed, reshuffle_each_iteration=True)
        buckets = min(cfg.preprocess.length_buckets, len(y) // (10 * cfg.train.batch_size))
        ds = (length_batches(ds, lengths, cfg.train.batch_size, buckets) if margin is not None and buckets > 1
              else ds.batch(cfg.train.batch_size))
        if unknown is not None:
            ds = ds.map(lambda i, g, l: ((i, tf.sparse.to_dense(g)), l))
        if margin is not None:  # each batch cut to its longest text and the margin (the model takes any steps)
            def cut(inputs, l):
                steps = padded_steps(inputs[0] if isinstance(inputs, tuple) else inputs, margin)
                return tf.nest.map_structure(lambda t: t[:, :steps], inputs), l
            ds = ds.map(cut)
        return ds.prefetch(tf.data.AUTOTUNE)

    def inference_dataset(self, x, cfg, batch_size: int | None = None):
        texts = np.asarray(x, dtype=object).astype(str)
        return tf.data.Dataset.from_tensor_slices(texts).batch(batch_size or cfg.train.batch_size).prefetch(2)

    # ------------------------------------------------------------ model
    @property
    def _with_unknown_words(self) -> weakref.WeakKeyDictionary:
        """{a network's training model (token ids -> probabilities): the same network on (token
        ids, n-gram ids of the words outside the vocabulary)}: filled by `build` for networks with
        subwords, read by `members_model` (an ensemble nests the second). Weak keys: an entry goes
        with its training model (the folds of a cross-validation build many)."""
        return self.__dict__.setdefault("_unknown_word_graphs", weakref.WeakKeyDictionary())

    def build(self, cfg, prepared: Prepared):
        p, m = cfg.preprocess, cfg.model
        if p.embeddings_mode not in ("static", "non-static", "multichannel"):
            raise CnnkitError(f"preprocess.embeddings_mode must be static, non-static or multichannel. Received: {p.embeddings_mode!r}")
        self.preprocessing_layers(cfg, prepared)
        vocab = self._vectorizer.get_vocabulary()
        if m.backbone == "auto":
            m.backbone = "kim_cnn"
        self.backbone_info(m.backbone)
        if m.members > 1 and (self.custom_model is not None or self.source_model is not None):
            raise CnnkitError("model.members > 1 trains the task's own networks from scratch: it cannot be combined "
                              "with a model from Python or --from/finetune. Set model.members=1.")
        ngram_buckets(p)  # read by the n-gram branch and by the naive-Bayes member (fitted after the build): checked now
        embed = self._embedding_layers(p, vocab, self._word_vectors(p, vocab, cfg.train.seed))
        subwords = self._subword_layer(p, vocab, embed[-1]) if p.subwords else None
        width = sum(e.output_dim for e in embed)
        steps = None if self._length_buckets(p) else p.sequence_length  # None: batches of any length
        backbone = self.make_backbone(m.backbone, (steps, width), len(prepared.class_names), **m.backbone_args)
        self._padding_margin = None if steps is not None else padding_margin(backbone)
        if steps is None and self._padding_margin is None:
            raise CnnkitError(f"preprocess.length_buckets={p.length_buckets} cuts the padding of training batches: "
                              f"it needs a backbone whose features do not depend on the padding (kim_cnn), not "
                              f"{m.backbone} with its backbone_args. Set preprocess.length_buckets=0.")
        head = self.head(cfg, prepared, backbone)
        ngram = self._ngram_branch(p, prepared, len(vocab)) if head is not None and p.ngram_branch else None

        def network(ids, unknown=None):
            """token ids (B, steps) -> probabilities (B, classes), or the backbone's features when a
            custom model has its own classifier; steps: sequence_length, or any with length_buckets.
            `unknown`: the n-gram ids of the words outside the vocabulary (B, steps, MAX_WORD_GRAMS),
            `UnknownWordSubwords`."""
            vectors = [e(ids) for e in embed]
            if subwords is not None:  # added to the trained (last) channel
                vectors[-1] = layers.Add(name="words_and_subwords")([vectors[-1], subwords(ids, unknown=unknown)])
            x = layers.Concatenate(name="channels")(vectors) if len(vectors) > 1 else vectors[0]
            x = backbone(x)
            if head is None:
                return x
            return head(x, extra_logits=ngram(ids)) if ngram is not None else head(x)

        ids = keras.Input((steps,), dtype="int64", name="token_ids")
        raw = keras.Input((), dtype="string", name="text")
        token_ids = self._vectorizer(raw)
        self._training_unknown = None
        if subwords is None:
            return keras.Model(ids, network(ids), name=f"{self.name}_train"), keras.Model(raw, network(token_ids), name=self.name)
        unknown = text_features.UnknownWordSubwords.of(self._vectorizer, p.subwords, name="unknown_subwords")
        infer_model = keras.Model(raw, network(token_ids, unknown([raw, token_ids])), name=self.name)
        grams = keras.Input((steps, MAX_WORD_GRAMS), dtype="int64", name="unknown_subword_ids")
        if self._cuts_training_words(prepared):
            # The vocabulary leaves training words out (max_tokens, min_count): training reads their
            # n-grams beside [UNK], as prediction does for every word outside the vocabulary
            # (`dataset` computes them); else they would train [UNK] alone and meet n-grams at prediction.
            self._training_unknown = unknown
            return keras.Model([ids, grams], network(ids, grams), name=f"{self.name}_train"), infer_model
        # Every training word is in the vocabulary: training reads its n-gram table alone.
        train_model = keras.Model(ids, network(ids), name=f"{self.name}_train")
        # What an ensemble nests of this network (members_model): token ids and unknown words' n-grams in.
        self._with_unknown_words[train_model] = keras.Model([ids, grams], network(ids, grams))
        return train_model, infer_model

    def _length_buckets(self, p) -> int:
        """`preprocess.length_buckets`, checked.

        Raises:
            CnnkitError: when it is negative, or set with a model from Python.
        """
        if p.length_buckets < 0:
            raise CnnkitError(f"preprocess.length_buckets must be >= 0 (0: off). Received: {p.length_buckets}")
        if p.length_buckets and self.custom_model is not None:
            raise CnnkitError("preprocess.length_buckets cuts the padding of training batches, which a model from "
                              "Python may not allow: set preprocess.length_buckets=0 with it.")
        return p.length_buckets

    def _cuts_training_words(self, prepared: Prepared) -> bool:
        """Whether a word of the training texts reads as [UNK] (id 1) by the adapted vectorizer."""
        return bool((self._token_ids(prepared.splits["train"][0]) == 1).any())

    def members_model(self, networks: list[keras.Model], nb_member: keras.Model | None = None) -> keras.Model:
        """The saved model of an ensemble (`model.members`): strings (B,) -> the mean of the
        members' probabilities (B, classes). `networks`: the members' training models, token ids
        (B, sequence_length) (and, where the vocabulary cuts training words, the unknown words'
        n-gram ids) -> probabilities, nested as member_01, member_02, ...; `nb_member`
        (`nb_member`), nested as nb_member, one more member of the mean. The text is vectorized
        once for all of them (their vocabularies are the same: adapted on the same training texts)."""
        raw = keras.Input((), dtype="string", name="text")
        ids = self._vectorizer(raw)
        outputs, unknown = [], None
        for i, network in enumerate(networks, start=1):
            # An uncompiled model over the network's layers: a compiled member nested in the saved
            # model would carry its optimizer's moments into model.keras (60 % of its size on TREC).
            # With subwords it also reads the n-grams of the words outside the vocabulary.
            graph = self._with_unknown_words.get(network, network)
            member = keras.Model(graph.inputs, graph.output, name=f"member_{i:02d}")
            if len(graph.inputs) == 1:
                outputs.append(member(ids))
                continue
            if unknown is None:  # once for all members: the same vocabulary and buckets
                unknown = text_features.UnknownWordSubwords.of(self._vectorizer, graph.get_layer("subwords").buckets,
                                                               name="unknown_subwords")([raw, ids])
            outputs.append(member([ids, unknown]))
        if nb_member is not None:
            outputs.append(nb_member(ids))
        return keras.Model(raw, layers.Average(name="members_average")(outputs), name=self.name)

    def nb_member(self, cfg, texts, y: np.ndarray, num_classes: int) -> keras.Model:
        """The naive-Bayes n-gram member of a text model (`model.nb_member`): token ids (B,
        sequence_length) -> probabilities (B, classes) of a `NaiveBayesLR` on the vectorizer's
        unigrams and hashed bigrams (`preprocess.ngram_buckets`), fitted on `texts` (N,) and
        their class indices `y` (N,). Named nb_member (not member_NN: no embedding, not a CNN)."""
        from cnnkit.blocks import NaiveBayesLR

        p = cfg.preprocess
        layer = NaiveBayesLR(len(self._vectorizer.get_vocabulary()), num_classes, buckets=ngram_buckets(p),
                             dtype="float32", name="naive_bayes_lr")
        layer.fit(self._token_ids(texts), np.asarray(y))
        ids = keras.Input((p.sequence_length,), dtype="int64", name="token_ids")
        return keras.Model(ids, layer(ids), name="nb_member")

    def with_nb_member(self, infer_model: keras.Model, nb_member: keras.Model) -> keras.Model:
        """One network's end-to-end model with the naive-Bayes member: strings (B,) -> the mean of
        the network's and the member's probabilities (B, classes). The network's layers stay
        where they were (top level: explain, featuremaps and --from find them as in a model
        without the member); the member reads the same token ids."""
        ids = infer_model.get_layer("vectorize").output
        average = layers.Average(name="members_average")([infer_model.output, nb_member(ids)])
        return keras.Model(infer_model.input, average, name=self.name)

    def nb_member_of(self, model: keras.Model) -> keras.Model | None:
        """The naive-Bayes member of a `members_model` or `with_nb_member` model as a model of its
        own (strings (B,) -> probabilities), or None when the model has none."""
        if "nb_member" not in [layer.name for layer in model.layers]:
            return None
        raw = keras.Input((), dtype="string", name="text")
        return keras.Model(raw, model.get_layer("nb_member")(model.get_layer("vectorize")(raw)), name="nb_member")

    def _token_ids(self, texts) -> np.ndarray:
        """int64 token ids (N, sequence_length) of `texts` (N,) by the vectorizer, 4 096 at a time."""
        texts = np.asarray(texts, dtype=object).astype(str)
        return np.concatenate([self._vectorizer(texts[i:i + 4096]).numpy() for i in range(0, len(texts), 4096)])

    def members_of(self, model: keras.Model) -> list[keras.Model]:
        """Each member of a `members_model` (also one read back from model.keras) as a model of
        its own: strings (B,) -> that member's probabilities (B, classes)."""
        vectorize = model.get_layer("vectorize")
        unknown = text_features.unknown_words_layer(model)
        members = [layer for layer in model.layers if layer.name.startswith("member_")]
        models = []
        for member in members:
            raw = keras.Input((), dtype="string", name="text")
            ids = vectorize(raw)
            inputs = [ids, unknown([raw, ids])] if len(member.inputs) == 2 else ids
            models.append(keras.Model(raw, member(inputs), name=member.name))
        return models

    def _ngram_branch(self, p, prepared: Prepared, vocabulary_size: int):
        """`NgramLogits` over the vectorizer's ids, its idf adapted on the training texts' ids."""
        from cnnkit.blocks import NgramLogits

        layer = NgramLogits(vocabulary_size, len(prepared.class_names), buckets=ngram_buckets(p),
                            normalize=p.ngram_normalize, dtype="float32", name="ngram_logits")
        layer.adapt(self._token_ids(prepared.splits["train"][0]))
        return layer

    def _subword_layer(self, p, vocab: list[str], embedding: layers.Embedding):
        """`SubwordEmbedding` of the vocabulary's tokens, as wide as `embedding` (the trained channel)."""
        from cnnkit.blocks import SubwordEmbedding

        if p.subwords < 0:
            raise CnnkitError(f"preprocess.subwords must be >= 0 hash buckets (0: off). Received: {p.subwords}")
        if p.split != "whitespace" or p.ngrams:
            raise CnnkitError("preprocess.subwords cuts words into character n-grams: it needs word tokens "
                              "(preprocess.split=whitespace, no preprocess.ngrams). Set preprocess.subwords=0.")
        if not embedding.trainable:
            raise CnnkitError("preprocess.subwords adds trained vectors to a trained embedding: with "
                              "embeddings_mode=static there is none. Use non-static or multichannel, or subwords=0.")
        return SubwordEmbedding.from_vocabulary(vocab, p.subwords, embedding.output_dim, name="subwords")

    def _word_vectors(self, p, vocab: list[str], seed: int) -> np.ndarray | None:
        """The embedding matrix (len(vocab), dim) from `--embeddings`, or None without a file.

        The members of an ensemble (`model.members`) are built one after the other with the same
        vocabulary: the file (GloVe's is about 1 GB) is read for the first and its matrix kept,
        so every member starts from the same vectors (its words missing from the file included)."""
        if not p.embeddings:
            return None
        path = Path(p.embeddings)
        stat = path.stat() if path.is_file() else None
        key = (str(path.resolve()), stat.st_mtime_ns if stat else None, stat.st_size if stat else None, tuple(vocab))
        cached = getattr(self, "_vectors_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        matrix, hits = text_features.read_word_vectors(p.embeddings, vocab, seed=seed)
        print(f"Word vectors {path.name}: {hits} of {len(vocab)} vocabulary tokens found, "
              f"dimension {matrix.shape[1]}, mode {p.embeddings_mode}", file=sys.stderr)
        words = len(vocab) - 2  # padding and [UNK] have no vectors in any file
        if words > 0 and hits < LOW_VECTOR_SHARE * words:
            # A file in the data's language and tokens covers most of its words; a few per cent means otherwise.
            print(f"Warning: only {hits} of the {words} vocabulary words ({100 * hits / words:.1f} %) have a vector "
                  f"in {path}: is it for another language, or for other tokens (preprocess.standardize, "
                  f"preprocess.split)? The words without one start from random vectors.", file=sys.stderr)
        self._vectors_cache = (key, matrix)
        return matrix

    def _embedding_layers(self, p, vocab: list[str], matrix: np.ndarray | None) -> list[layers.Embedding]:
        """One embedding, or two (static + fine-tuned) for the multichannel model, initialised
        from `matrix` (word vectors) when given."""
        if matrix is None:
            return [layers.Embedding(len(vocab), p.embed_dim, name="embedding")]

        init = keras.initializers.Constant(matrix)
        make = lambda name, trainable: layers.Embedding(len(vocab), matrix.shape[1], embeddings_initializer=init,  # noqa: E731
                                                         trainable=trainable, name=name)
        if p.embeddings_mode == "static":
            return [make("embedding_static", False)]
        if p.embeddings_mode == "non-static":
            return [make("embedding", True)]
        return [make("embedding_static", False), make("embedding", True)]

    def preprocessing_layers(self, cfg, prepared: Prepared) -> list:
        """[TextVectorization adapted on the training texts (or `prepared.adapt_on`)]: strings
        (batch,) -> token ids (batch, sequence_length). An embedding of `len(layer.get_vocabulary())` rows follows."""
        p = cfg.preprocess
        texts = prepared.splits["train"][0] if prepared.adapt_on is None else prepared.adapt_on
        self._vectorizer = text_features.make_vectorizer(list(texts), p.max_tokens,
                                                         p.sequence_length, p.standardize, p.split, p.ngrams,
                                                         min_count=p.min_count, boundaries=p.boundaries,
                                                         unicode=p.unicode)
        if self.source_model is not None:  # --from: the source's tokens keep their ids (and embeddings)
            base = self.source_model.get_layer("vectorize").get_vocabulary()
            self._vectorizer.set_vocabulary(text_features.extend_vocabulary(base, self._vectorizer.get_vocabulary(),
                                                                            p.max_tokens))
        return [self._vectorizer]

    def raw_dataset(self, x, y, cfg, training: bool):
        """Batches of (strings (B,), labels): what the saved model and `preprocessing_layers` take."""
        ds = tf.data.Dataset.from_tensor_slices((np.asarray(x, dtype=object).astype(str), y))
        if training:
            ds = ds.shuffle(len(y), seed=cfg.train.seed, reshuffle_each_iteration=True)
        return ds.batch(cfg.train.batch_size).prefetch(tf.data.AUTOTUNE)

    # ------------------------------------------------------------ prediction inputs
    def read_inputs(self, inputs: list[str], cfg):
        texts, names, skipped = [], [], []
        for item in inputs:
            text = read_text_file(item, cfg.data.encoding)
            if text.strip():
                texts.append(text)
                names.append(item)
            else:
                skipped.append((item, "empty text"))
        return np.asarray(texts, dtype=object), names, skipped
