"""Exploration (not the benchmark): Kim CNN-rand with MixUp for sentences (Guo et al. 2019):
wordMixup mixes the embedded sentences of a batch with a shuffled copy, senMixup mixes the
max-pooled sentence features; the labels are mixed with the same Beta(alpha, alpha) weight.
Otherwise the text-cls defaults (bench/text_explore.py's data and splits). Test accuracy in %.

    python bench/text_mixup_explore.py '{"sen1": {"mix": "sen", "alpha": 1.0}}' sst2,sst5 0,1,2
"""
import json
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

import text_explore as te  # bench/text_explore.py: data and splits


class MixCNN(keras.Model):
    """ids (B, L) -> probabilities (B, K); training mixes embeddings or pooled features."""

    def __init__(self, V, L, K, v):
        super().__init__()
        self.v = v
        self.emb = layers.Embedding(V, v.get("dim", 128))
        self.convs = [layers.Conv1D(v.get("filters", 100), w, padding="same", activation="relu") for w in v.get("widths", (3, 4, 5))]
        self.pool = layers.GlobalMaxPooling1D()
        self.drop = layers.Dropout(v.get("drop", 0.5))
        self.out = layers.Dense(K, activation="softmax")
        self.K = K

    def features(self, e):
        return tf.concat([self.pool(c(e)) for c in self.convs], -1)

    def call(self, ids, training=False):
        return self.out(self.drop(self.features(self.emb(ids)), training=training))

    def train_step(self, data):
        ids, y = data
        a = self.v.get("alpha", 1.0)
        g1, g2 = tf.random.gamma([], a), tf.random.gamma([], a)
        lam = g1 / (g1 + g2)
        perm = tf.random.shuffle(tf.range(tf.shape(ids)[0]))
        if self.v.get("mix", "none") == "none":
            lam = tf.constant(1.0)
        ym = lam * y + (1 - lam) * tf.gather(y, perm)
        with tf.GradientTape() as tape:
            e = self.emb(ids)
            if self.v.get("mix") == "word":
                e = lam * e + (1 - lam) * tf.gather(e, perm)
            h = self.features(e)
            if self.v.get("mix") == "sen":
                h = lam * h + (1 - lam) * tf.gather(h, perm)
            p = self.out(self.drop(h, training=True))
            loss = keras.losses.categorical_crossentropy(ym, p)
            loss = tf.reduce_mean(loss)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        for m in self.metrics:
            if m.name == "loss":
                m.update_state(loss)
            else:
                m.update_state(ym, p)
        return {m.name: m.result() for m in self.metrics}


def run(name, v, seed=0, fold=0):
    keras.utils.set_random_seed(seed)
    xtr, ytr, xva, yva, xte, yte, K = te.load(name, fold)
    L = int(np.clip(np.percentile([len(t.split()) for t in xtr], v.get("pct", 95)), 8, 512))
    vec = layers.TextVectorization(max_tokens=30000, output_sequence_length=L)
    vec.adapt(xtr)
    V = len(vec.get_vocabulary())
    model = MixCNN(V, L, K, v)
    model.compile(keras.optimizers.Adam(v.get("lr", 1e-3)), "categorical_crossentropy", metrics=["accuracy"])
    oh = lambda y: keras.utils.to_categorical(y, K).astype("float32")  # noqa: E731
    dtr = tf.data.Dataset.from_tensor_slices((vec(xtr), oh(ytr))).shuffle(len(ytr), seed=seed).batch(v.get("bs", 50)).prefetch(4)
    dva = tf.data.Dataset.from_tensor_slices((vec(xva), oh(yva))).batch(500)
    t0 = time.time()
    cb = [keras.callbacks.EarlyStopping("val_accuracy", patience=v.get("pat", 3), mode="max", restore_best_weights=True)]
    h = model.fit(dtr, validation_data=dva, epochs=v.get("epochs", 10), callbacks=cb, verbose=0)
    probs = model.predict(vec(xte), verbose=0, batch_size=500)
    te.LAST.update(probs=probs, labels=yte)
    return float((probs.argmax(1) == yte).mean()) * 100, time.time() - t0, len(h.history["loss"])


if __name__ == "__main__":
    variants = json.loads(sys.argv[1])
    sets = sys.argv[2].split(",")
    seeds = [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0, 1]
    for vn, v in variants.items():
        for s in sets:
            name, _, fold = s.partition(":")
            r = [run(name, v, seed, int(fold or 0)) for seed in seeds]
            accs = [a for a, _, _ in r]
            print(f"{vn:12s} {s:7s} mean {np.mean(accs):.2f} {['%.2f' % a for a in accs]} "
                  f"t={np.mean([t for _, t, _ in r]):.1f}s ep={[e for _, _, e in r]}", flush=True)
