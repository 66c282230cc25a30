"""Exploration of text-cls variants (not the benchmark): a plain-Keras copy of the text-cls
defaults (Kim CNN, TextVectorization, Adam 1e-3, batch 50, early stopping 3) with one change at a
time, on TREC / SST-2 / SST-5 / one MR fold, mean over seeds. Needs pandas.

    python bench/text_explore.py '{"split": {"std": "split"}, "ens4": {"ens": 4}}' trec,sst2,mr:0 0,1

Variant keys: std ("split": punctuation as tokens; "splitcase": the same, case kept), pct (length percentile), dim, einit (embedding
init uniform(-einit, einit); Kim: 0.25), sdrop, edrop,
widths, filters, drop, maxnorm, ens (CNNs averaged), ls, opt, lr, bs, pat, epochs; n-gram branches
whose logits are added to the CNN's: wide (max tokens of a TextVectorization tf-idf 1-2-gram bag on
the strings; with ngrams, bag, wdrop, wl2), fast (hashed unigram+bigram sums on the ids, no idf),
fastcat (a mean n-gram vector beside the CNN features), idsbag (tf-idf of ids and hashed bigrams,
as cnnkit.blocks.NgramLogits; with ibl2 for an L2 penalty, ibdrop to drop the branch per text,
ibnorm to divide by the tf-idf vector's L2 norm); mask (zero padding vectors, no features taken from
padding); refit (after early stopping, a new network on training + validation texts for
the best epoch count); ema (weights' exponential moving average, its momentum); at (adversarial training on the embeddings, eps relative to the text's embedding norm);
pool ("maxmean": the mean over time beside the max of each feature map; "top2": the two largest
values of each map); sub (fastText-style subwords: the mean of hashed character 3-5-gram vectors of
each word added to its word vector, `sub` hash buckets; needs the default standardization); crop (a training text is replaced, with probability `cropp`
(default 0.5), by a random run of its words at least `crop` of its length: a stand-in for training
on phrases); subv (the `sub` subwords of the vocabulary's words only, through a fixed word -> n-gram
ids table: no string work per step, but a word unseen in training gets no subwords); glu (gated
linear units in the convolutions instead of relu); highway (a highway layer on the pooled features,
its gate's bias -2).
"""
import sys, time, json, re, os
import numpy as np, pandas as pd, tensorflow as tf, keras
from keras import layers
from sklearn.model_selection import StratifiedKFold, train_test_split
from pathlib import Path
from cnnkit.blocks.ngrams import subword_ids  # the package's n-gram table (same ids)
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
def split_punct_case(s):
    """Every non-word character but the apostrophe split off as its own token; case kept."""
    return tf.strings.regex_replace(s, r"([^\w\s'])", r" \1 ")

@keras.saving.register_keras_serializable()
def split_punct(s):
    return split_punct_case(tf.strings.lower(s))

LAST = {}  # the last run's test probabilities and labels

STRIP = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'  # Keras' lower_and_strip_punctuation


class Subwords(layers.Layer):
    """fastText-style subword vectors (Bojanowski et al. 2017): strings (B,) -> (B, L, D), for each
    of the first L words the mean of its hashed character 3-5-gram vectors (the word wrapped in
    < and >), zeros for padding. Aligned with TextVectorization's default standardization."""

    def __init__(self, L, D, buckets, **kw):
        super().__init__(**kw)
        self.L, self.D, self.B = L, D, buckets

    def build(self, s):
        self.table = self.add_weight(shape=(self.B, self.D), initializer=keras.initializers.RandomUniform(-0.05, 0.05), name="table")

    def call(self, raw):
        t = tf.strings.split(tf.strings.regex_replace(tf.strings.lower(raw), STRIP, ""))[:, :self.L]
        ch = tf.strings.unicode_split(tf.strings.join(["<", t, ">"]), "UTF-8")
        g = tf.strings.ngrams(ch, ngram_width=[3, 4, 5], separator="")
        ids = tf.strings.to_hash_bucket_fast(g, self.B)
        vecs = tf.ragged.map_flat_values(tf.gather, self.table, ids)
        return tf.reduce_mean(vecs, axis=2).to_tensor(shape=[None, self.L, self.D])


class VocabSubwords(layers.Layer):
    """ids (B, L) -> (B, L, D): the mean of each word's hashed character n-gram vectors, looked up
    through a fixed (V, G) table of the vocabulary's n-gram ids (cnnkit.blocks.ngrams.subword_ids)."""

    def __init__(self, table, D, **kw):
        super().__init__(**kw)
        self.table_ids, self.D = table, D

    def build(self, s):
        self.grams = self.add_weight(shape=self.table_ids.shape, initializer=keras.initializers.Constant(self.table_ids),
                                     dtype="int64", trainable=False, name="grams")
        self.vecs = self.add_weight(shape=(int(self.table_ids.max()) + 1, self.D),
                                    initializer=keras.initializers.RandomUniform(-0.05, 0.05), name="vecs")

    def call(self, ids):
        g = tf.gather(self.grams, tf.cast(ids, "int64"))  # (B, L, G)
        m = tf.cast(g > 0, "float32")[..., None]
        return tf.reduce_sum(tf.gather(self.vecs, g) * m, 2) / tf.maximum(tf.reduce_sum(m, 2), 1.0)


class AdversarialText(keras.Model):
    """Adversarial training on the embedded tokens (Goodfellow et al. 2015; Miyato et al. 2017):
    each step adds the loss of the batch whose embeddings are moved by `eps` (relative to the
    text's embedding norm) along the loss gradient. Strings -> vec -> embed -> cnn (probabilities)."""

    def __init__(self, vec, embed, cnn, eps, **kw):
        super().__init__(**kw)
        self.vec, self.embed, self.cnn, self.eps = vec, embed, cnn, eps

    def call(self, x, training=False):
        return self.cnn(self.embed(self.vec(x)), training=training)

    def train_step(self, data):
        x, y = data
        ids = self.vec(x)
        with tf.GradientTape() as tape:
            e = self.embed(ids)
            with tf.GradientTape() as inner:
                inner.watch(e)
                p = self.cnn(e, training=True)
                loss = self.compute_loss(x=x, y=y, y_pred=p)
            g = tf.stop_gradient(inner.gradient(loss, e))
            scale = self.eps * tf.stop_gradient(tf.norm(e, axis=[1, 2], keepdims=True))
            r = scale * g / (tf.norm(g, axis=[1, 2], keepdims=True) + 1e-12)
            adv = self.compute_loss(x=x, y=y, y_pred=self.cnn(e + r, training=True))
            total = loss + adv
        grads = tape.gradient(total, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self.compute_metrics(x, y, p)


class SharpnessAware(keras.Model):
    """Sharpness-aware minimisation (Foret et al. 2021): each step takes the gradient at the
    weights moved by `rho` along the normalised loss gradient (the batch's worst nearby point)."""

    def __init__(self, inner, rho, **kw):
        super().__init__(**kw)
        self.inner, self.rho = inner, rho

    def call(self, x, training=False):
        return self.inner(x, training=training)

    def train_step(self, data):
        x, y = data
        ws = self.trainable_variables
        with tf.GradientTape() as tape:
            p = self.inner(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=p)
        g = [tf.convert_to_tensor(gi) for gi in tape.gradient(loss, ws)]
        scale = self.rho / (tf.linalg.global_norm(g) + 1e-12)
        eps = [gi * scale for gi in g]
        for w, e in zip(ws, eps):
            w.assign_add(e)
        with tf.GradientTape() as tape:
            loss2 = self.compute_loss(x=x, y=y, y_pred=self.inner(x, training=True))
        g2 = tape.gradient(loss2, ws)
        for w, e in zip(ws, eps):
            w.assign_sub(e)
        self.optimizer.apply_gradients(zip(g2, ws))
        return self.compute_metrics(x, y, p)


def adversarial_model(vec, v, L, V, K):
    """The defaults' Kim CNN (one network, no branches) trained with `AdversarialText`."""
    embed = layers.Embedding(V, v.get("dim", 128))
    e = keras.Input((L, v.get("dim", 128)))
    br = [layers.GlobalMaxPooling1D()(layers.Conv1D(v.get("filters", 100), w, padding="same", activation="relu")(e))
          for w in v.get("widths", (3, 4, 5))]
    h = layers.Dropout(v.get("drop", 0.5))(layers.Concatenate()(br))
    cnn = keras.Model(e, layers.Dense(K, activation="softmax")(h))
    return AdversarialText(vec, embed, cnn, v["at"])


def run(name, v, seed=0, fold=0):
    keras.utils.set_random_seed(seed)
    xtr, ytr, xva, yva, xte, yte, K = load(name, fold)
    if v.get("_merge"):  # refit: the validation texts join the training texts
        xtr, ytr = np.concatenate([xtr, xva]), np.concatenate([ytr, yva])
    std = v.get("std", "lower_and_strip_punctuation")
    std = {"split": split_punct, "splitcase": split_punct_case}.get(std, std)
    L = int(np.clip(np.percentile([len(t.split()) for t in xtr], v.get("pct", 95)), 8, 512))
    vec = layers.TextVectorization(max_tokens=30000, standardize=std, output_sequence_length=L)
    vec.adapt(xtr)
    V = len(vec.get_vocabulary())
    raw = keras.Input((), dtype="string")
    ids = vec(raw)
    outs = []
    for e in range(v.get("ens", 1)):
        einit = keras.initializers.RandomUniform(-v["einit"], v["einit"]) if v.get("einit") else "uniform"
        emb = layers.Embedding(V, v.get("dim", 128), embeddings_initializer=einit)(ids)
        if v.get("sub"):
            emb = layers.Add()([emb, Subwords(L, v.get("dim", 128), v["sub"])(raw)])
        if v.get("subv"):  # the same subwords, of the vocabulary's words only (an unknown word gets none)
            emb = layers.Add()([emb, VocabSubwords(subword_ids(vec.get_vocabulary(), v["subv"]), v.get("dim", 128))(ids)])
        if v.get("sdrop"): emb = layers.SpatialDropout1D(v["sdrop"])(emb)
        if v.get("edrop"): emb = layers.Dropout(v["edrop"], noise_shape=(None, L, 1))(emb)
        if v.get("mask"):  # padding is zero vectors (as Kim's code), and no feature is taken from it
            m = layers.Lambda(lambda t: tf.cast(t > 0, "float32")[..., None])(ids)
            emb = layers.Multiply()([emb, m])
        br = []
        for w in v.get("widths", (3, 4, 5)):
            if v.get("glu"):  # gated linear units (Dauphin et al. 2017): a * sigmoid(b) instead of relu
                ab = layers.Conv1D(2 * v.get("filters", 100), w, padding="same")(emb)
                c = layers.Lambda(lambda z: z[..., : z.shape[-1] // 2] * tf.sigmoid(z[..., z.shape[-1] // 2:]))(ab)
            else:
                c = layers.Conv1D(v.get("filters", 100), w, padding="same", activation="relu")(emb)
            if v.get("mask"):
                c = layers.Multiply()([c, m])
            if v.get("pool") == "maxmean":
                br += [layers.GlobalMaxPooling1D()(c), layers.GlobalAveragePooling1D()(c)]
            elif v.get("pool") == "top2":
                br.append(layers.Lambda(lambda z: tf.reshape(tf.math.top_k(tf.transpose(z, [0, 2, 1]), 2).values, [-1, 2 * z.shape[-1]]))(c))
            else:
                br.append(layers.GlobalMaxPooling1D()(c))
        h = layers.Concatenate()(br)
        if v.get("highway"):  # a highway layer on the pooled features (Srivastava et al. 2015; Kim et al. 2016)
            n = h.shape[-1]
            gate = layers.Dense(n, activation="sigmoid", bias_initializer=keras.initializers.Constant(-2.0))(h)
            fresh = layers.Dense(n, activation="relu")(h)
            h = layers.Lambda(lambda a: a[0] * a[1] + (1.0 - a[0]) * a[2])([gate, fresh, h])
        if v.get("fastcat"):
            # a fastText-style bag (mean of unigram + hashed bigram vectors) beside the CNN features
            D, B = v["fastcat"], v.get("buckets", 100000)
            class BagCat(layers.Layer):
                def build(self, s):
                    init = keras.initializers.RandomUniform(-0.05, 0.05)
                    self.uni = self.add_weight(shape=(V, D), initializer=init, name="uni")
                    self.bi = self.add_weight(shape=(B, D), initializer=init, name="bi")
                def call(self, t):
                    t = tf.cast(t, "int64")
                    m = tf.cast(t > 0, "float32")[..., None]
                    hsh = (t[:, :-1] * V + t[:, 1:]) % B
                    mb = m[:, :-1] * m[:, 1:]
                    tot = tf.reduce_sum(tf.gather(self.uni, t) * m, 1) + tf.reduce_sum(tf.gather(self.bi, hsh) * mb, 1)
                    return tot / tf.maximum(tf.reduce_sum(m, 1) + tf.reduce_sum(mb, 1), 1.0)
            h = layers.Concatenate()([h, BagCat()(ids)])
        h = layers.Dropout(v.get("drop", 0.5))(h)
        kc = keras.constraints.MaxNorm(3) if v.get("maxnorm") else None
        outs.append(layers.Dense(K, kernel_constraint=kc)(h))
    logits = outs[0] if len(outs) == 1 else layers.Average()(outs)
    if v.get("wide"):
        # wide branch: a linear model on bag-of-n-grams, its logits added to the CNN's
        bag = layers.TextVectorization(max_tokens=v["wide"], standardize=std, ngrams=v.get("ngrams", 2),
                                       output_mode=v.get("bag", "tf_idf"))
        bag.adapt(xtr)
        b = bag(raw)
        if v.get("wdrop"): b = layers.Dropout(v["wdrop"])(b)
        wl = layers.Dense(K, kernel_regularizer=keras.regularizers.l2(v["wl2"]) if v.get("wl2") else None)(b)
        logits = layers.Add()([logits, wl])
    if v.get("fast"):
        # fastText-style linear branch on the token ids: unigrams + hashed bigrams, summed
        B = v["fast"]
        class Bag(layers.Layer):
            def build(self, s):
                self.uni = self.add_weight(shape=(V, K), initializer="zeros", name="uni")
                self.bi = self.add_weight(shape=(B, K), initializer="zeros", name="bi")
            def call(self, t):
                t = tf.cast(t, "int64")
                m = tf.cast(t > 0, "float32")[..., None]
                u = tf.reduce_sum(tf.gather(self.uni, t) * m, 1)
                h = (t[:, :-1] * V + t[:, 1:]) % B
                mb = m[:, :-1] * m[:, 1:]
                b = tf.reduce_sum(tf.gather(self.bi, h) * mb, 1)
                return u + b
        logits = layers.Add()([logits, Bag()(ids)])
    if v.get("idsbag"):
        # the wide branch on token ids: tf-idf of unigrams + hashed bigrams, idf from the training ids
        B = v["idsbag"]
        tr_ids = vec(xtr).numpy()
        def grams(t):
            h = (t[:, :-1] * V + t[:, 1:]) % B + V
            h = np.where((t[:, :-1] > 0) & (t[:, 1:] > 0), h, 0)
            return np.concatenate([t, h], 1)
        g = grams(tr_ids.astype("int64"))
        df = np.zeros(V + B)
        for row in g:
            df[np.unique(row)] += 1
        idf = np.log1p(len(g) / (1 + df)).astype("float32"); idf[0] = 0.0
        class IdsBag(layers.Layer):
            def build(self, s):
                self.w = self.add_weight(shape=(V + B, K), initializer="zeros", name="w",
                                         regularizer=keras.regularizers.l2(v["ibl2"]) if v.get("ibl2") else None)
                self.idf = self.add_weight(shape=(V + B,), initializer=keras.initializers.Constant(idf), trainable=False, name="idf")
            def call(self, t):
                t = tf.cast(t, "int64")
                h = (t[:, :-1] * V + t[:, 1:]) % B + V
                h = tf.where((t[:, :-1] > 0) & (t[:, 1:] > 0), h, 0)
                gg = tf.concat([t, h], 1)
                wi = tf.gather(self.idf, gg)
                out = tf.reduce_sum(tf.gather(self.w, gg) * wi[..., None], 1)
                if v.get("ibnorm"):  # divided by the tf-idf vector's L2 norm (exact without repeated n-grams)
                    out = out / tf.maximum(tf.sqrt(tf.reduce_sum(wi * wi, 1, keepdims=True)), 1e-6)
                return out
        bl = IdsBag()(ids)
        if v.get("ibdrop"):  # the whole branch dropped for a share of the training texts
            bl = layers.Dropout(v["ibdrop"], noise_shape=(None, 1))(bl)
        logits = layers.Add()([logits, bl])
    out = layers.Activation("softmax")(logits)
    model = keras.Model(raw, out)
    if v.get("at"):
        model = adversarial_model(vec, v, L, V, K)
    if v.get("sam"):
        model = SharpnessAware(model, v["sam"])
    ls = v.get("ls", 0.0)
    ocfg = {"learning_rate": v.get("lr", 1e-3)}
    if v.get("ema"):  # Polyak averaging of the weights; validation and the saved model use the average
        ocfg.update(use_ema=True, ema_momentum=v["ema"])
    model.compile(keras.optimizers.get({"class_name": v.get("opt", "adam"), "config": ocfg}),
                  keras.losses.CategoricalCrossentropy(label_smoothing=ls), metrics=["accuracy"])
    oh = lambda y: keras.utils.to_categorical(y, K)
    dtr = tf.data.Dataset.from_tensor_slices((xtr, oh(ytr))).shuffle(len(ytr), seed=seed)
    if v.get("crop"):
        f, q = v["crop"], v.get("cropp", 0.5)
        def crop(x, y):
            w = tf.strings.split(x)
            n = tf.size(w)
            m = tf.maximum(1, tf.cast(tf.math.ceil(f * tf.cast(n, "float32")), "int32"))
            k = tf.random.uniform([], m, tf.maximum(n, m) + 1, dtype="int32")
            k = tf.minimum(k, n)
            st = tf.random.uniform([], 0, tf.maximum(n - k, 0) + 1, dtype="int32")
            c = tf.strings.reduce_join(w[st:st + k], separator=" ")
            return tf.where((tf.random.uniform([]) < q) & (n > 1), c, x), y
        dtr = dtr.map(crop)
    dtr = dtr.batch(v.get("bs", 50)).prefetch(4)
    dva = tf.data.Dataset.from_tensor_slices((xva, oh(yva))).batch(500)
    t0 = time.time()
    cb = [] if v.get("_merge") else [  # a refit runs its given epochs without validation
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if v.get("ema") else []),
        keras.callbacks.EarlyStopping("val_accuracy", patience=v.get("pat", 3), mode="max", restore_best_weights=True)]
    h = model.fit(dtr, validation_data=None if v.get("_merge") else dva, epochs=v.get("epochs", 10), callbacks=cb, verbose=0)
    if v.get("refit"):  # a new network on training + validation texts for the best epoch count
        best = int(np.argmax(h.history["val_accuracy"])) + 1
        acc, t, _ = run(name, {**v, "refit": 0, "_merge": 1, "epochs": best}, seed, fold)
        return acc, t + time.time() - t0, best
    probs = model.predict(tf.constant(xte), verbose=0, batch_size=500)
    LAST.update(probs=probs, labels=yte)  # for ensembles of runs (bench/text_ensemble.py)
    acc = float((probs.argmax(1) == yte).mean())
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
