"""Exploration of text-cls variants (not the benchmark): a plain-Keras copy of the text-cls
defaults (Kim CNN, TextVectorization, Adam 1e-3, batch 50, early stopping 3) with one change at a
time, on TREC / SST-2 / SST-5 / one MR fold, mean over seeds. Needs pandas.

    python bench/text_explore.py '{"split": {"std": "split"}, "ens4": {"ens": 4}}' trec,sst2,mr:0 0,1
"""
import sys, time, json, re, os
import numpy as np, pandas as pd, tensorflow as tf, keras
from keras import layers
from sklearn.model_selection import StratifiedKFold, train_test_split
from pathlib import Path
T = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "text")

def load(name, fold=0):
    if name == "mr":
        d = pd.read_csv(f"{T}/mr/all.csv"); x, y = d.text.to_numpy(dtype=object).astype(str), d.label.to_numpy(dtype=object)
        tr, te = list(StratifiedKFold(10, shuffle=True, random_state=0).split(x, y))[fold]
        xtr, ytr, xte, yte = x[tr], y[tr], x[te], y[te]
        xtr, xva, ytr, yva = train_test_split(xtr, ytr, test_size=0.1, stratify=ytr, random_state=0)
    else:
        r = lambda s: pd.read_csv(f"{T}/{name}/{s}.csv")
        a, c = r("train"), r("test")
        xtr, ytr, xte, yte = a.text.to_numpy(dtype=object).astype(str), a.label.to_numpy(dtype=object), c.text.to_numpy(dtype=object).astype(str), c.label.to_numpy(dtype=object)
        if os.path.exists(f"{T}/{name}/dev.csv"):
            b = r("dev"); xva, yva = b.text.to_numpy(dtype=object).astype(str), b.label.to_numpy(dtype=object)
        else:
            xtr, xva, ytr, yva = train_test_split(xtr, ytr, test_size=0.1, stratify=ytr, random_state=0)
    classes = sorted(set(ytr)); m = {c: i for i, c in enumerate(classes)}
    f = lambda v: np.array([m[c] for c in v])
    return xtr, f(ytr), xva, f(yva), xte, f(yte), len(classes)

@keras.saving.register_keras_serializable()
def split_punct(s):
    s = tf.strings.lower(s)
    s = tf.strings.regex_replace(s, r"([^\w\s'])", r" \1 ")
    return s

def run(name, v, seed=0, fold=0):
    keras.utils.set_random_seed(seed)
    xtr, ytr, xva, yva, xte, yte, K = load(name, fold)
    std = v.get("std", "lower_and_strip_punctuation")
    std = split_punct if std == "split" else std
    L = int(np.clip(np.percentile([len(t.split()) for t in xtr], v.get("pct", 95)), 8, 512))
    vec = layers.TextVectorization(max_tokens=30000, standardize=std, output_sequence_length=L)
    vec.adapt(xtr)
    V = len(vec.get_vocabulary())
    ids = keras.Input((L,), dtype="int64")
    outs = []
    for e in range(v.get("ens", 1)):
        emb = layers.Embedding(V, v.get("dim", 128))(ids)
        if v.get("sdrop"): emb = layers.SpatialDropout1D(v["sdrop"])(emb)
        if v.get("edrop"): emb = layers.Dropout(v["edrop"], noise_shape=(None, L, 1))(emb)
        br = []
        for w in v.get("widths", (3, 4, 5)):
            c = layers.Conv1D(v.get("filters", 100), w, padding="same", activation="relu")(emb)
            br.append(layers.GlobalMaxPooling1D()(c))
        h = layers.Concatenate()(br)
        h = layers.Dropout(v.get("drop", 0.5))(h)
        kc = keras.constraints.MaxNorm(3) if v.get("maxnorm") else None
        outs.append(layers.Dense(K, kernel_constraint=kc)(h))
    logits = outs[0] if len(outs) == 1 else layers.Average()(outs)
    out = layers.Activation("softmax")(logits)
    model = keras.Model(ids, out)
    ls = v.get("ls", 0.0)
    model.compile(keras.optimizers.get({"class_name": v.get("opt", "adam"), "config": {"learning_rate": v.get("lr", 1e-3)}}),
                  keras.losses.CategoricalCrossentropy(label_smoothing=ls), metrics=["accuracy"])
    oh = lambda y: keras.utils.to_categorical(y, K)
    dtr = tf.data.Dataset.from_tensor_slices((vec(xtr), oh(ytr))).shuffle(len(ytr), seed=seed).batch(v.get("bs", 50)).prefetch(4)
    dva = tf.data.Dataset.from_tensor_slices((vec(xva), oh(yva))).batch(500)
    t0 = time.time()
    cb = [keras.callbacks.EarlyStopping("val_accuracy", patience=v.get("pat", 3), mode="max", restore_best_weights=True)]
    h = model.fit(dtr, validation_data=dva, epochs=v.get("epochs", 10), callbacks=cb, verbose=0)
    acc = float((model.predict(vec(xte), verbose=0, batch_size=500).argmax(1) == yte).mean())
    return acc * 100, time.time() - t0, len(h.history["loss"])

if __name__ == "__main__":
    variants = json.loads(sys.argv[1])
    sets = sys.argv[2].split(",")
    seeds = [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0, 1]
    for vn, v in variants.items():
        for s in sets:
            name, _, fold = s.partition(":")
            r = [run(name, v, seed, int(fold or 0)) for seed in seeds]
            accs = [a for a, _, _ in r]
            print(f"{vn:12s} {s:7s} mean {np.mean(accs):.2f} {['%.2f' % a for a in accs]} t={np.mean([t for _, t, _ in r]):.1f}s ep={[e for _, _, e in r]}", flush=True)
