"""text-cls: sentence and document classification with 1D CNNs.

Data: CSV/TSV (`text,label`), folders of .txt files per class, tfds text sets. Model:
strings -> TextVectorization (vocabulary from the training split) -> embedding (random, or
pretrained vectors kept static, fine-tuned, or both as two channels) -> 1D backbone (Kim's
CNN by default) -> ClassifierHead. The saved model takes raw strings.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from cnnkit.errors import CnnkitError
from cnnkit.features import text as text_features
from cnnkit.tasks.base import TASKS, Prepared, Task

TEXT_EXTENSIONS = (".txt",)
MAX_DOC_BYTES = 1_000_000  # longer files are cut: a document classifier reads the first sequence_length tokens


@dataclasses.dataclass
class TextPreprocessConfig:
    max_tokens: int = 30000  # vocabulary: the most frequent tokens of the training split
    sequence_length: Optional[int] = None  # tokens per text; unset: the 95th percentile of the training texts
    standardize: str = "lower_and_strip_punctuation"  # | lower | strip_punctuation | none
    split: str = "whitespace"  # whitespace (words) | character
    ngrams: Optional[int] = None  # also n-grams up to this n (e.g. 2 for word bigrams)
    embed_dim: int = 128  # width of a random embedding (a vectors file sets its own)
    embeddings: Optional[str] = None  # word2vec/GloVe/fastText text file to initialise the embedding
    embeddings_mode: str = "non-static"  # static (frozen) | non-static (fine-tuned) | multichannel (both)
    # A linear model on the tf-idf bag of the token ids' unigrams and hashed bigrams beside the CNN,
    # its logits added to the head's (wide and deep; cnnkit.blocks.NgramLogits). 0 buckets: unigrams only.
    # Off by default: it helped MR and SST-2 but cost SST-5 and a 2 700-sentence sample (BENCHMARKS.md).
    ngram_branch: bool = False
    ngram_buckets: int = 100_000
    ngram_normalize: bool = False  # divide the branch's logits by the text's tf-idf L2 norm


def read_text_file(path: str) -> str:
    """The text of a file: UTF-8, undecodable bytes replaced, at most MAX_DOC_BYTES read."""
    with open(path, "rb") as f:
        return f.read(MAX_DOC_BYTES).decode("utf-8", errors="replace")


@TASKS.register("text-cls")
class TextClassification(Task):
    name = "text-cls"
    modality = "sequence"
    preprocess_cls = TextPreprocessConfig
    default_source = "builtin:sentences"
    extensions = TEXT_EXTENSIONS
    ensembles = True
    defaults = {
        "train": {"epochs": 10, "batch_size": 50, "lr": 1e-3, "optimizer": "adam", "schedule": "constant",
                  "early_stopping": 3},
        "model": {"backbone": "kim_cnn"},
    }

    # ------------------------------------------------------------ data
    def prepare(self, cfg, data) -> Prepared:
        p = cfg.preprocess
        if data.kind == "arrays":
            raise CnnkitError(f"{data.origin} holds arrays (images?), not text: use `cnnkit train image-cls` for it.")
        splits, ids, skipped = {}, {}, list(data.skipped)
        for name, split in data.splits.items():
            texts = [read_text_file(x) for x in split.x] if data.kind == "files" else [str(x) for x in split.x]
            keep = [i for i, t in enumerate(texts) if t.strip()]
            skipped += [(split.x[i] if data.kind == "files" else f"{name}[{i}]", "empty text")
                        for i in sorted(set(range(len(texts))) - set(keep))]
            if not keep:
                raise CnnkitError(f"{data.origin}: every text of the {name} split is empty.")
            splits[name] = (np.asarray([texts[i] for i in keep], dtype=object), split.y[keep])
            ids[name] = [split.x[i] if data.kind == "files" else texts[i] for i in keep]
        if p.sequence_length is None:
            p.sequence_length = text_features.auto_sequence_length(list(splits["train"][0]), p.split)
        return Prepared(splits, ids, list(data.class_names), skipped, data.origin, multi_label=data.multi_label)

    def dataset(self, x, y, cfg, training: bool, num_classes: int | None = None):
        """Batches of (int token ids (B, sequence_length), labels): the vectorizer runs in tf.data, once.

        With `model.members` N > 1 the labels of a batch are repeated N times ((N * B,) or
        (N * B, classes)), one copy per member: the training model stacks the members'
        probabilities on the batch axis (see `build`)."""
        ds = tf.data.Dataset.from_tensor_slices((np.asarray(x, dtype=object).astype(str), y))
        ds = ds.batch(1024).map(lambda t, l: (self._vectorizer(t), l), num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        ds = ds.cache()
        if training:
            ds = ds.shuffle(len(y), seed=cfg.train.seed, reshuffle_each_iteration=True)
        ds = ds.batch(cfg.train.batch_size)
        n = cfg.model.members
        if n > 1:
            ds = ds.map(lambda t, l: (t, tf.tile(l, [n] + [1] * (len(l.shape) - 1))))
        return ds.prefetch(tf.data.AUTOTUNE)

    def inference_dataset(self, x, cfg, batch_size: int | None = None):
        texts = np.asarray(x, dtype=object).astype(str)
        return tf.data.Dataset.from_tensor_slices(texts).batch(batch_size or cfg.train.batch_size).prefetch(2)

    # ------------------------------------------------------------ model
    def build(self, cfg, prepared: Prepared):
        p, m = cfg.preprocess, cfg.model
        if p.embeddings_mode not in ("static", "non-static", "multichannel"):
            raise CnnkitError(f"preprocess.embeddings_mode must be static, non-static or multichannel. Received: {p.embeddings_mode!r}")
        self.preprocessing_layers(cfg, prepared)
        vocab = self._vectorizer.get_vocabulary()
        if m.backbone == "auto":
            m.backbone = "kim_cnn"
        self.backbone_info(m.backbone)
        if m.members > 1 and (self.custom_model is not None or self.source_model is not None or p.ngram_branch):
            raise CnnkitError("model.members > 1 trains the task's own networks from scratch: it cannot be combined "
                              "with a model from Python, --from/finetune or preprocess.ngram_branch. Set model.members=1.")
        vectors = self._word_vectors(p, vocab, cfg.train.seed)  # read once for all the members
        towers = [self._tower(cfg, prepared, vocab, vectors, i) for i in range(m.members)]

        def tail(ids, training_model: bool):
            outputs = [tower(ids) for tower in towers]
            if len(outputs) == 1:
                return outputs[0]
            if training_model:  # each member is trained on its own loss: stacked on the batch axis
                return layers.Concatenate(axis=0, name="members")(outputs)
            return layers.Average(name="members_average")(outputs)

        ids = keras.Input((p.sequence_length,), dtype="int64", name="token_ids")
        train_model = keras.Model(ids, tail(ids, True), name=f"{self.name}_train")
        raw = keras.Input((), dtype="string", name="text")
        infer_model = keras.Model(raw, tail(self._vectorizer(raw), False), name=self.name)
        return train_model, infer_model

    def _tower(self, cfg, prepared: Prepared, vocab: list[str], vectors: np.ndarray | None, member: int):
        """Member `member`'s network as a function of token ids (B, sequence_length) -> its
        probabilities (B, classes) (or the backbone's features when a custom model has its own
        classifier). Member 0 keeps the single model's layer names; member i > 0 gets a
        `_i` suffix and its own random initial weights (an embedding from a vectors file starts
        from the same vectors in every member)."""
        p, m = cfg.preprocess, cfg.model
        suffix = f"_{member}" if member else ""
        embed = self._embedding_layers(p, vocab, vectors, suffix)
        width = sum(e.output_dim for e in embed)
        backbone = self.make_backbone(m.backbone, (p.sequence_length, width), len(prepared.class_names), **m.backbone_args)
        head = self.head(cfg, prepared, backbone)
        if member:
            backbone.name = f"{backbone.name}{suffix}"
            head.name = f"head{suffix}"
        ngram = self._ngram_branch(p, prepared, len(vocab)) if head is not None and p.ngram_branch else None

        def tower(ids):
            vectors = [e(ids) for e in embed]
            x = layers.Concatenate(name=f"channels{suffix}")(vectors) if len(vectors) > 1 else vectors[0]
            x = backbone(x)
            if head is None:
                return x
            return head(x, extra_logits=ngram(ids)) if ngram is not None else head(x)

        return tower

    def _ngram_branch(self, p, prepared: Prepared, vocabulary_size: int):
        """`NgramLogits` over the vectorizer's ids, its idf adapted on the training texts' ids."""
        from cnnkit.blocks import NgramLogits

        if p.ngram_buckets < 0:
            raise CnnkitError(f"preprocess.ngram_buckets must be >= 0 (0: unigrams only). Received: {p.ngram_buckets}")
        layer = NgramLogits(vocabulary_size, len(prepared.class_names), buckets=p.ngram_buckets,
                            normalize=p.ngram_normalize, dtype="float32", name="ngram_logits")
        texts = np.asarray(prepared.splits["train"][0], dtype=object).astype(str)
        ids = np.concatenate([self._vectorizer(texts[i:i + 4096]).numpy() for i in range(0, len(texts), 4096)])
        layer.adapt(ids)
        return layer

    def _word_vectors(self, p, vocab: list[str], seed: int) -> np.ndarray | None:
        """The embedding matrix (len(vocab), dim) from `--embeddings`, or None without a file."""
        if not p.embeddings:
            return None
        matrix, hits = text_features.read_word_vectors(p.embeddings, vocab, seed=seed)
        print(f"Word vectors {Path(p.embeddings).name}: {hits} of {len(vocab)} vocabulary tokens found, "
              f"dimension {matrix.shape[1]}, mode {p.embeddings_mode}", file=sys.stderr)
        return matrix

    def _embedding_layers(self, p, vocab: list[str], matrix: np.ndarray | None, suffix: str = "") -> list[layers.Embedding]:
        """One embedding, or two (static + fine-tuned) for the multichannel model, initialised
        from `matrix` (word vectors) when given; `suffix` ends their names (a member of an ensemble)."""
        if matrix is None:
            return [layers.Embedding(len(vocab), p.embed_dim, name=f"embedding{suffix}")]

        init = keras.initializers.Constant(matrix)
        make = lambda name, trainable: layers.Embedding(len(vocab), matrix.shape[1], embeddings_initializer=init,  # noqa: E731
                                                         trainable=trainable, name=name)
        if p.embeddings_mode == "static":
            return [make(f"embedding_static{suffix}", False)]
        if p.embeddings_mode == "non-static":
            return [make(f"embedding{suffix}", True)]
        return [make(f"embedding_static{suffix}", False), make(f"embedding{suffix}", True)]

    def preprocessing_layers(self, cfg, prepared: Prepared) -> list:
        """[TextVectorization adapted on the training texts]: strings (batch,) -> token ids
        (batch, sequence_length). An embedding of `len(layer.get_vocabulary())` rows follows."""
        p = cfg.preprocess
        self._vectorizer = text_features.make_vectorizer(list(prepared.splits["train"][0]), p.max_tokens,
                                                         p.sequence_length, p.standardize, p.split, p.ngrams)
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
            text = read_text_file(item)
            if text.strip():
                texts.append(text)
                names.append(item)
            else:
                skipped.append((item, "empty text"))
        return np.asarray(texts, dtype=object), names, skipped
