"""A linear classifier on the tf-idf bag of word n-grams: the "wide" part of a wide-and-deep text model.

A CNN over word embeddings sees n-grams only through what it learns; a linear model on the
bag of unigrams and bigrams (the TF-IDF + logistic regression baseline of every text
benchmark) is a strong, complementary signal. `NgramLogits` computes such a model's logits
from the token ids the CNN reads, so one id input feeds both and exports stay token-id based.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

# fastText's subwords (SUBWORD_SIZES-grams of a word's first SUBWORD_LONGEST characters, at most
# MAX_WORD_GRAMS a word): defined beside the plain-Python tokenizer of exports, which computes them too.
from cnnkit.features.plain_tokenizer import MAX_WORD_GRAMS, SUBWORD_LONGEST, SUBWORD_SIZES  # noqa: F401


def hashed_ngrams(ids, vocabulary_size: int, buckets: int):
    """Unigram ids followed by hashed bigram ids, of int token ids (batch, steps) with 0 = padding.

    Returns int64 (batch, 2 * steps - 1): the ids themselves, then for each pair of adjacent
    non-padding tokens (a, b) the id `vocabulary_size + (a * vocabulary_size + b) % buckets`,
    or 0 where either token is padding. Works on NumPy arrays and tensors alike (keras.ops).
    """
    ids = ops.cast(ids, "int64")
    first, second = ids[:, :-1], ids[:, 1:]
    pairs = vocabulary_size + (first * vocabulary_size + second) % buckets
    pairs = ops.where(ops.logical_and(first > 0, second > 0), pairs, ops.zeros_like(pairs))
    return ops.concatenate([ids, pairs], axis=1)


def ngram_ids(ids, vocabulary_size: int, buckets: int):
    """The n-gram ids a linear n-gram model reads: `hashed_ngrams` with `buckets` > 0, else the
    unigram ids alone, as int64 (batch, n-grams); NumPy arrays and tensors alike."""
    return hashed_ngrams(ids, vocabulary_size, buckets) if buckets else ops.cast(ids, "int64")


@keras.saving.register_keras_serializable(package="cnnkit")
class NgramLogits(layers.Layer):
    """Token ids -> logits of a linear model on their tf-idf bag of unigrams and hashed bigrams.

    Equal to a Dense layer on the tf-idf vector (term count x idf) of the text's
    `vocabulary_size` unigrams and `buckets` hashed bigram buckets, computed by gathering one
    weight row per n-gram instead of building that vector. The idf weights come from `adapt`
    (the training split's token ids) and are saved with the model; the class weights start at
    zero, so the branch adds nothing until training gives it weight; it has no bias (the
    head's dense layer, to whose logits these are added, has one).

    Args:
        vocabulary_size: number of token ids (the vectorizer's vocabulary, padding and OOV included).
        num_classes: number of logits.
        buckets: hash buckets for word bigrams (0: unigrams only).
        l2: L2 penalty on the class weights (added to the training loss; 0: none).
        normalize: divide the logits by the L2 norm of the text's tf-idf vector (as scikit-learn's
            TfidfVectorizer does; exact when no n-gram repeats, else the norm counts each
            occurrence once), so a text's logits no longer grow with its length.

    Call arguments:
        inputs: int token ids (batch, steps), 0 = padding.
        Returns float32 logits (batch, num_classes).

    Example:
        >>> layer = NgramLogits(100, 3, buckets=50)
        >>> layer.adapt(np.array([[5, 6, 7, 0], [5, 9, 0, 0]]))
        >>> layer(np.array([[5, 6, 0, 0]])).shape
        (1, 3)
    """

    def __init__(self, vocabulary_size, num_classes, buckets=100_000, l2=0.0, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if vocabulary_size < 2 or num_classes < 1 or buckets < 0:
            raise ValueError(f"NgramLogits needs vocabulary_size >= 2, num_classes >= 1, buckets >= 0. Received: "
                             f"vocabulary_size={vocabulary_size}, num_classes={num_classes}, buckets={buckets}")
        self.vocabulary_size = int(vocabulary_size)
        self.num_classes = int(num_classes)
        self.buckets = int(buckets)
        self.l2 = float(l2)
        self.normalize = bool(normalize)
        self.size = self.vocabulary_size + self.buckets

    def build(self, input_shape):
        self.class_weights = self.add_weight(shape=(self.size, self.num_classes), initializer="zeros", name="weights",
                                             regularizer=keras.regularizers.L2(self.l2) if self.l2 else None)
        # Not trained: set by adapt(), saved with the model.
        self.idf = self.add_weight(shape=(self.size,), initializer="ones", trainable=False, name="idf")

    def _grams(self, ids):
        return ngram_ids(ids, self.vocabulary_size, self.buckets)

    def adapt(self, ids: np.ndarray) -> None:
        """Sets the idf weights from training token ids (N, steps): log(1 + N / (1 + df)) per n-gram,
        df being the number of texts it occurs in (Keras' TextVectorization tf_idf formula); padding 0."""
        if not self.built:
            self.build(ids.shape)
        grams = np.asarray(self._grams(np.asarray(ids))).astype("int64")
        # Document frequency without a loop over texts: each (text, n-gram) pair counted once.
        pairs = np.unique(np.arange(len(grams), dtype="int64")[:, None] * self.size + grams)
        df = np.bincount(pairs % self.size, minlength=self.size).astype("float64")
        idf = np.log1p(len(grams) / (1.0 + df)).astype("float32")
        idf[0] = 0.0
        self.idf.assign(idf)

    def call(self, inputs):
        grams = self._grams(inputs)  # (batch, n-grams)
        idf = ops.take(self.idf, grams, axis=0)  # (batch, n-grams), 0 for padding
        logits = ops.sum(ops.take(self.class_weights, grams, axis=0) * ops.expand_dims(idf, -1), axis=1)
        if self.normalize:
            logits = logits / ops.maximum(ops.sqrt(ops.sum(idf * idf, axis=1, keepdims=True)), 1e-6)
        return logits

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "num_classes": self.num_classes,
                "buckets": self.buckets, "l2": self.l2, "normalize": self.normalize}


def ngram_counts(ids: np.ndarray, vocabulary_size: int, buckets: int):
    """A scipy CSR matrix (N, vocabulary_size + buckets) of how often each unigram and hashed
    bigram (`ngram_ids`) occurs in each row of int token ids (N, steps); padding not counted."""
    import scipy.sparse as sp

    grams = np.asarray(ngram_ids(np.asarray(ids), vocabulary_size, buckets))
    rows = np.repeat(np.arange(len(grams)), grams.shape[1])
    columns = grams.ravel()
    present = columns > 0
    return sp.csr_matrix((np.ones(int(present.sum()), "float64"), (rows[present], columns[present])),
                         shape=(len(grams), vocabulary_size + buckets))


@keras.saving.register_keras_serializable(package="cnnkit")
class NaiveBayesLR(layers.Layer):
    """Token ids -> class probabilities of NBSVM's logistic-regression form (Wang & Manning 2012).

    One binary classifier a class on the counts of the text's unigrams and hashed bigrams, each
    count scaled by that n-gram's naive-Bayes log-count ratio for the class (how much more often
    it occurs in the class's texts than in the others'); the classes' probabilities are their
    classifiers' sigmoids, normalised to sum to 1. On sentences this linear model is stronger
    than a tf-idf one (MR 79.2 against 76.5, 10 folds) and errs elsewhere than a CNN, which is
    why text-cls averages it with its network(s) (`model.nb_member`).

    `fit` trains it with scikit-learn (L2-regularised logistic regression, `C`); its weights are
    saved with the model and not trained by Keras. The scaled weights are stored: the logit of
    class c is the sum over the text's n-grams of `weights[n-gram, c]` plus `bias[c]`.

    Args:
        vocabulary_size: number of token ids (the vectorizer's vocabulary, padding and OOV included).
        num_classes: number of classes (at least 2).
        buckets: hash buckets for word bigrams (0: unigrams only).

    Call arguments:
        inputs: int token ids (batch, steps), 0 = padding.
        Returns float32 probabilities (batch, num_classes).
    """

    def __init__(self, vocabulary_size, num_classes, buckets=100_000, **kwargs):
        super().__init__(**kwargs)
        if vocabulary_size < 2 or num_classes < 2 or buckets < 0:
            raise ValueError(f"NaiveBayesLR needs vocabulary_size >= 2, num_classes >= 2, buckets >= 0. Received: "
                             f"vocabulary_size={vocabulary_size}, num_classes={num_classes}, buckets={buckets}")
        self.vocabulary_size, self.num_classes, self.buckets = int(vocabulary_size), int(num_classes), int(buckets)
        self.size = self.vocabulary_size + self.buckets

    def build(self, input_shape):
        self.class_weights = self.add_weight(shape=(self.size, self.num_classes), initializer="zeros",
                                             trainable=False, name="weights")
        self.bias = self.add_weight(shape=(self.num_classes,), initializer="zeros", trainable=False, name="bias")

    def fit(self, ids: np.ndarray, y: np.ndarray, C: float = 1.0, alpha: float = 1.0) -> None:
        """Trains on int token ids (N, steps) and class indices y (N,): for each class, the
        log-count ratio r = log((alpha + counts in the class) / sum) - log((alpha + counts in the
        rest) / sum) of every n-gram, then scikit-learn's logistic regression (L2, `C`) of
        "this class or not" on the counts times r. A class without examples gets a bias of -30."""
        from sklearn.linear_model import LogisticRegression

        if not self.built:
            self.build(ids.shape)
        x = ngram_counts(ids, self.vocabulary_size, self.buckets)
        weights = np.zeros((self.size, self.num_classes), "float32")
        bias = np.full((self.num_classes,), -30.0, "float32")
        y = np.asarray(y)
        for c in range(self.num_classes):
            mine = y == c
            if not mine.any() or mine.all():
                bias[c] = -30.0 if not mine.any() else 30.0
                continue
            p = alpha + np.asarray(x[mine].sum(0)).ravel()
            q = alpha + np.asarray(x[~mine].sum(0)).ravel()
            r = np.log(p / p.sum()) - np.log(q / q.sum())
            # newton-cg: the objective of scikit-learn's default lbfgs (intercept not penalised), solved
            # 4-10x faster on these sparse rows (TREC's six classes 6.85 -> 0.72 s, SST-5 5.87 -> 0.75 s).
            model = LogisticRegression(C=C, solver="newton-cg", max_iter=200).fit(x.multiply(r).tocsr(), mine.astype(int))
            weights[:, c] = model.coef_[0] * r
            bias[c] = model.intercept_[0]
        weights[0] = 0.0  # padding (and bigrams with padding, which hash to 0)
        self.class_weights.assign(weights)
        self.bias.assign(bias)

    def call(self, inputs):
        grams = ngram_ids(inputs, self.vocabulary_size, self.buckets)
        logits = ops.sum(ops.take(self.class_weights, grams, axis=0), axis=1) + self.bias
        scores = ops.sigmoid(logits)
        return scores / ops.maximum(ops.sum(scores, axis=-1, keepdims=True), 1e-12)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "num_classes": self.num_classes,
                "buckets": self.buckets}




def word_subword_ids(words, buckets: int, longest: int = SUBWORD_LONGEST):
    """The hashed character 3-5-grams of each of `words` (strings (K,): a list or a tensor), as
    fastText cuts them: each word cut to `longest` characters and wrapped in `<` and `>` ("film"
    -> "<fi", "fil", ..., "<film>"), each n-gram hashed (`tf.strings.to_hash_bucket_fast`) to
    1..`buckets`. Returns an int64 tf.RaggedTensor (K, None): 3-grams, then 4-grams, then 5-grams."""
    import tensorflow as tf

    words = tf.convert_to_tensor(words, tf.string)
    wrapped = tf.strings.join(["<", tf.strings.substr(words, 0, longest, unit="UTF8_CHAR"), ">"])
    grams = tf.strings.ngrams(tf.strings.unicode_split(wrapped, "UTF-8"), ngram_width=SUBWORD_SIZES, separator="")
    return tf.ragged.map_flat_values(lambda g: tf.strings.to_hash_bucket_fast(g, buckets) + 1, grams)


def subword_ids(vocabulary: list[str], buckets: int, longest: int = SUBWORD_LONGEST) -> np.ndarray:
    """The n-gram table of a vocabulary: `word_subword_ids` of each token, 0-padded; ids 0 and 1
    of the vocabulary (padding and [UNK]) get none. Returns int64 (len(vocabulary), G), G the most
    n-grams of a token (at least 1)."""
    grams = word_subword_ids(list(vocabulary), buckets, longest)
    lengths = grams.row_lengths().numpy()
    lengths[:2] = 0
    width = max(1, int(lengths.max(initial=0)))
    table = np.zeros((len(vocabulary), width), dtype="int64")
    if len(vocabulary) > 2:  # one hashing call for the whole vocabulary (one per token took ~1 s for 16 000 tokens)
        table[2:] = grams[2:].to_tensor(default_value=0, shape=[len(vocabulary) - 2, width]).numpy()
    return table


@keras.saving.register_keras_serializable(package="cnnkit")
class SubwordEmbedding(layers.Layer):
    """Token ids -> the mean of each token's character n-gram vectors (fastText's subwords).

    Words that share n-grams ("charm", "charming", "charmless") share part of their vector, so a
    word seen a few times in training borrows from its relatives. The n-grams of the vocabulary's
    tokens are fixed in a table (`from_vocabulary`, saved with the model); their vectors train.
    Only the n-grams actually present are gathered (no padded (batch, steps, G, dim) tensor).

    Args:
        vocabulary_size: rows of the n-gram table (the vectorizer's vocabulary).
        max_grams: columns of the table (the most n-grams of a token).
        buckets: hash buckets of the n-grams (vectors: buckets + 1, row 0 unused).
        output_dim: width of the vectors (that of the word embedding they are added to).

    Call arguments:
        inputs: int token ids (batch, steps).
        unknown: optional int64 (batch, steps, U): the n-gram ids of each word outside the vocabulary
            (id 1, [UNK]), 0-padded, and zeros elsewhere (`features.text.UnknownWordSubwords`, at
            prediction), so that a word training never saw gets the vectors of its n-grams.
        Returns float (batch, steps, output_dim); zeros for padding, tokens without n-grams and
        [UNK] without `unknown`.
    """

    def __init__(self, vocabulary_size, max_grams, buckets, output_dim, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size, self.max_grams = int(vocabulary_size), int(max_grams)
        self.buckets, self.output_dim = int(buckets), int(output_dim)

    def build(self, input_shape):
        self.grams = self.add_weight(shape=(self.vocabulary_size, self.max_grams), initializer="zeros",
                                     dtype="int64", trainable=False, name="grams")
        self.vectors = self.add_weight(shape=(self.buckets + 1, self.output_dim),
                                       initializer=keras.initializers.RandomUniform(-0.05, 0.05), name="vectors")

    @classmethod
    def from_vocabulary(cls, vocabulary: list[str], buckets: int, output_dim: int, **kwargs) -> "SubwordEmbedding":
        """A built layer whose n-gram table holds `subword_ids(vocabulary, buckets)`."""
        table = subword_ids(vocabulary, buckets)
        layer = cls(len(vocabulary), table.shape[1], buckets, output_dim, **kwargs)
        layer.build(None)
        layer.grams.assign(table)
        return layer

    def call(self, inputs, unknown=None):
        import tensorflow as tf

        g = tf.gather(self.grams, tf.cast(inputs, "int64"))  # (batch, steps, G)
        out = tf.reshape(self._mean_vectors(tf.reshape(g, [-1, tf.shape(g)[-1]])),
                         tf.concat([tf.shape(g)[:2], [self.output_dim]], 0))
        if unknown is None:
            return out
        # The words outside the vocabulary, a few of the steps: their n-grams' mean replaces the
        # zeros of [UNK]'s empty table row there (the whole (batch, steps, U) block cost as much
        # again as the table's).
        unknown = tf.cast(unknown, "int64")
        steps = tf.where(tf.reduce_any(unknown > 0, axis=-1))  # (K, 2): [row, step]
        grams = tf.gather_nd(unknown, steps)  # (K, U), 0-padded
        return tf.tensor_scatter_nd_update(out, steps, tf.cast(self._mean_vectors(grams), out.dtype))

    def _mean_vectors(self, flat):
        """int64 n-gram ids (rows, columns), 0-padded -> the mean of each row's vectors (rows, output_dim); 0 for none."""
        import tensorflow as tf

        where = tf.where(flat > 0)  # (n-grams present, 2): [row, column]
        rows = tf.shape(flat, out_type="int64")[0]
        # One more n-gram (id 0) in one more segment, cut off after: a segment sum over no n-grams
        # at all (a batch of words without any) fails in onnxruntime.
        vecs = tf.gather(self.vectors, tf.concat([tf.gather_nd(flat, where), tf.zeros([1], flat.dtype)], 0))
        segments = tf.concat([where[:, 0], tf.reshape(rows, [1])], 0)
        sums = tf.math.unsorted_segment_sum(vecs, segments, num_segments=rows + 1)[:rows]
        counts = tf.reduce_sum(tf.cast(flat > 0, vecs.dtype), axis=1, keepdims=True)
        return sums / tf.maximum(counts, 1.0)

    def compute_output_shape(self, inputs_shape, unknown_shape=None):
        return (*inputs_shape, self.output_dim)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "max_grams": self.max_grams,
                "buckets": self.buckets, "output_dim": self.output_dim}
