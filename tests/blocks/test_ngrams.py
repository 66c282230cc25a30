"""NgramLogits: equal to a dense layer on the explicit tf-idf vector; idf from adapt; reload.
NaiveBayesLR: NBSVM's logistic regression on the explicit counts scaled by log-count ratios; reload.
SubwordEmbedding: the mean of each token's character n-gram vectors; reload."""
import keras
import numpy as np
import pytest

from cnnkit.blocks import ClassifierHead, NaiveBayesLR, NgramLogits, SubwordEmbedding
from cnnkit.blocks.ngrams import hashed_ngrams, ngram_counts, subword_ids

V, B, K = 12, 7, 3
IDS = np.array([[2, 3, 4, 2, 0, 0], [2, 5, 0, 0, 0, 0], [6, 6, 6, 7, 8, 1]], dtype="int64")


def explicit_tfidf(ids, idf):
    """The tf-idf vector (N, V + B) written out: counts of each unigram and hashed bigram, times idf."""
    out = np.zeros((len(ids), V + B), dtype="float64")
    for row, t in enumerate(ids):
        for a in t:
            if a > 0:
                out[row, a] += 1
        for a, b in zip(t[:-1], t[1:]):
            if a > 0 and b > 0:
                out[row, V + (a * V + b) % B] += 1
    return out * idf


def test_hashed_ngrams_pads_pairs_with_padding():
    grams = np.asarray(hashed_ngrams(IDS[1:2], V, B))
    assert grams.tolist() == [[2, 5, 0, 0, 0, 0, V + (2 * V + 5) % B, 0, 0, 0, 0]]


def test_adapt_sets_the_tf_idf_formula_of_keras():
    layer = NgramLogits(V, K, buckets=B)
    layer.adapt(IDS)
    idf = layer.idf.numpy()
    assert idf[0] == 0.0
    assert idf[2] == pytest.approx(np.log1p(3 / (1 + 2)))  # token 2 occurs in two of three texts
    assert idf[9] == pytest.approx(np.log1p(3 / 1))  # token 9 in none


def test_logits_equal_a_dense_layer_on_the_explicit_tf_idf_vector(tmp_path):
    layer = NgramLogits(V, K, buckets=B, name="ngram_logits")
    layer.adapt(IDS)
    w = np.random.default_rng(0).normal(size=(V + B, K)).astype("float32")
    layer.class_weights.assign(w)
    got = np.asarray(layer(IDS))
    want = explicit_tfidf(IDS, layer.idf.numpy()) @ w
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the idf (not trained) is saved with the model; config round trip
    inputs = keras.Input((IDS.shape[1],), dtype="int64")
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(again.predict(IDS, verbose=0), got, rtol=1e-6)
    assert NgramLogits.from_config(layer.get_config()).get_config() == layer.get_config()
    assert [v.name for v in layer.trainable_weights] == ["weights"]


def test_normalize_divides_by_the_l2_norm_of_the_tf_idf_vector():
    ids = np.array([[2, 3, 4, 0, 0, 0], [2, 5, 7, 0, 0, 0]], dtype="int64")  # no n-gram or bucket repeats
    layer = NgramLogits(V, K, buckets=B, normalize=True)
    layer.adapt(IDS)
    w = np.random.default_rng(0).normal(size=(V + B, K)).astype("float32")
    layer.class_weights.assign(w)
    tfidf = explicit_tfidf(ids, layer.idf.numpy())
    want = (tfidf / np.linalg.norm(tfidf, axis=1, keepdims=True)) @ w
    np.testing.assert_allclose(np.asarray(layer(ids)), want, rtol=1e-5, atol=1e-5)
    assert NgramLogits.from_config(layer.get_config()).normalize is True


def test_unigrams_only_l2_and_bad_arguments():
    layer = NgramLogits(V, K, buckets=0)
    layer.adapt(IDS)
    assert layer.idf.shape == (V,) and not layer.losses
    penalised = NgramLogits(V, K, buckets=B, l2=0.5)
    penalised.build(IDS.shape)
    penalised.class_weights.assign(np.ones((V + B, K), "float32"))
    assert float(sum(penalised.losses)) == pytest.approx(0.5 * (V + B) * K)
    assert NgramLogits.from_config(penalised.get_config()).l2 == 0.5
    with pytest.raises(ValueError, match="vocabulary_size >= 2"):
        NgramLogits(1, K)


def test_head_adds_extra_logits_before_the_activation():
    head = ClassifierHead(K, pooling="avg")
    x = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    extra = np.array([[0.0, 0.0, 0.0], [5.0, -5.0, 0.0]], dtype="float32")
    plain = np.asarray(head(x))
    shifted = np.asarray(head(x, extra_logits=extra))
    np.testing.assert_allclose(shifted[0], plain[0], rtol=1e-6)
    logits = np.log(plain[1]) + extra[1]
    np.testing.assert_allclose(shifted[1], np.exp(logits) / np.exp(logits).sum(), rtol=1e-5)


def test_subword_ids_are_fasttexts_character_ngrams():
    vocab = ["", "[UNK]", "film", "charm", "charming", "a"]
    table = subword_ids(vocab, 1000)
    counts = (table > 0).sum(1).tolist()
    # "<film>": 4 + 3 + 2 n-grams of 3, 4, 5 characters; "<a>": one; padding and [UNK]: none
    assert counts == [0, 0, 9, 12, 21, 1] and table.shape == (6, 21) and table.max() <= 1000
    shared = set(table[3][table[3] > 0]) & set(table[4][table[4] > 0])
    assert len(shared) >= 6  # "<ch", "cha", "har", "arm", "<cha", ... of "charm" in "charming"


def test_subword_embedding_is_the_mean_of_the_ngram_vectors(tmp_path):
    vocab = ["", "[UNK]", "film", "charming", "a"]
    table = subword_ids(vocab, 50)
    layer = SubwordEmbedding.from_vocabulary(vocab, 50, 4)
    assert (layer.grams.numpy() == table).all()
    ids = np.array([[2, 3, 0, 1], [4, 2, 0, 0]])
    out = layer(ids).numpy()
    vectors = layer.vectors.numpy()
    for row in range(2):
        for step in range(4):
            grams = table[ids[row, step]][table[ids[row, step]] > 0]
            expected = vectors[grams].mean(0) if len(grams) else np.zeros(4)
            np.testing.assert_allclose(out[row, step], expected, rtol=1e-5, atol=1e-7)
    model = keras.Sequential([keras.Input((4,), dtype="int64"), layer])
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(again.predict(ids, verbose=0), out, rtol=1e-6)


def test_ngram_counts_are_the_explicit_counts():
    np.testing.assert_array_equal(ngram_counts(IDS, V, B).toarray(), explicit_tfidf(IDS, np.ones(V + B)))


def test_naive_bayes_lr_is_nbsvm_written_out(tmp_path):
    """Per class: log-count ratios r of the counts (alpha 1), scikit-learn's logistic regression of
    "this class or not" on counts x r; the layer's weights are its coefficients x r, its
    probabilities the classes' sigmoids normalised. Not trained by Keras; saved with the model."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    ids = rng.integers(3, V, size=(60, 6))
    ids[:, 4:] = 0
    y = rng.integers(0, K, size=60)
    ids[y == 0, 0] = 2  # class 0 texts alone begin with token 2: an n-gram that tells
    layer = NaiveBayesLR(V, K, buckets=B, name="nb")
    layer.fit(ids, y, C=2.0)
    x = explicit_tfidf(ids, np.ones(V + B))
    logits = []
    for c in range(K):
        p, q = 1 + x[y == c].sum(0), 1 + x[y != c].sum(0)
        r = np.log(p / p.sum()) - np.log(q / q.sum())
        # the optimum of the same objective, solved tightly by another solver (the default lbfgs)
        fitted = LogisticRegression(C=2.0, tol=1e-10, max_iter=10000).fit(x * r, (y == c).astype(int))
        logits.append((x * r) @ fitted.coef_[0] + fitted.intercept_[0])
    sig = 1 / (1 + np.exp(-np.stack(logits, 1)))
    want = sig / sig.sum(1, keepdims=True)
    got = np.asarray(layer(ids))
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    assert (got[y == 0].argmax(1) == 0).mean() > 0.9
    assert layer.trainable_weights == []
    inputs = keras.Input((ids.shape[1],), dtype="int64")
    keras.Model(inputs, layer(inputs)).save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(again.predict(ids, verbose=0), got, rtol=1e-6)
    assert NaiveBayesLR.from_config(layer.get_config()).get_config() == layer.get_config()


def test_naive_bayes_lr_with_a_class_without_training_texts_and_bad_arguments():
    layer = NaiveBayesLR(V, 3, buckets=0)
    layer.fit(IDS, np.array([0, 1, 0]))  # class 2 has no text: never predicted
    probs = np.asarray(layer(IDS))
    assert probs.shape == (3, 3) and probs[:, 2].max() < 1e-6
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="num_classes >= 2"):
        NaiveBayesLR(V, 1)


def test_word_subword_ids_are_the_tables_rows_for_any_word():
    """The n-grams of a word, in TensorFlow: those of the vocabulary's table for a vocabulary word;
    a word is cut to 20 characters (at most MAX_WORD_GRAMS n-grams); characters, not bytes."""
    from cnnkit.blocks.ngrams import MAX_WORD_GRAMS, word_subword_ids

    vocab = ["", "[UNK]", "film", "charming"]
    table = subword_ids(vocab, 1000)
    grams = word_subword_ids(["film", "charming", "a", "x" * 40, "naïve"], 1000)
    assert grams[0].numpy().tolist() == table[2][table[2] > 0].tolist()
    assert grams[1].numpy().tolist() == table[3][table[3] > 0].tolist()
    assert grams.row_lengths().numpy().tolist() == [9, 21, 1, MAX_WORD_GRAMS, 12] and MAX_WORD_GRAMS == 57
    assert grams.flat_values.numpy().min() >= 1 and grams.flat_values.numpy().max() <= 1000


def test_subword_embedding_gives_unknown_words_their_ngram_vectors():
    """With `unknown` (the n-gram ids of the words outside the vocabulary), an [UNK] step reads the
    mean of its word's n-gram vectors: the vector it would have as a vocabulary word; without, zeros."""
    from cnnkit.blocks.ngrams import MAX_WORD_GRAMS, word_subword_ids

    layer = SubwordEmbedding.from_vocabulary(["", "[UNK]", "film", "charming"], 50, 4)
    ids = np.array([[2, 1, 3, 0]])
    unknown = np.zeros((1, 4, MAX_WORD_GRAMS), "int64")
    unknown[0, 1] = word_subword_ids(["charming"], 50).to_tensor(shape=[1, MAX_WORD_GRAMS]).numpy()[0]
    out = layer(ids, unknown=unknown).numpy()
    np.testing.assert_allclose(out[0, 1], out[0, 2], rtol=1e-6)  # unknown "charming" = the vocabulary's "charming"
    plain = layer(ids).numpy()
    np.testing.assert_allclose(plain[0, 1], 0.0)
    np.testing.assert_allclose(np.delete(out, 1, axis=1), np.delete(plain, 1, axis=1), rtol=1e-6)


def test_subword_embedding_runs_in_onnxruntime_on_batches_without_ngrams(tmp_path):
    """A batch whose words have no n-grams in the table (every word outside the vocabulary, no
    start/end tokens) and none outside it: onnxruntime ran neither (a segment sum or a scatter of
    no rows). Now both give Keras' outputs: zeros for the first, the unknown words' means too."""
    pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    vocab = ["", "[UNK]", "film", "good"]
    layer = SubwordEmbedding.from_vocabulary(vocab, 50, 4, name="subwords")
    ids = keras.Input((3,), dtype="int64", name="ids")
    grams = keras.Input((3, 57), dtype="int64", name="grams")
    model = keras.Model([ids, grams], layer(ids, unknown=grams))
    unknown = np.zeros((1, 3, 57), "int64")
    unknown[0, 0, :3] = [4, 9, 17]
    cases = [(np.array([[1, 1, 0]]), np.zeros_like(unknown)), (np.array([[1, 1, 0]]), unknown),
             (np.array([[2, 3, 0]]), np.zeros_like(unknown))]
    model(list(cases[0]))  # Keras exports a model that has been called
    model.export(str(tmp_path / "m.onnx"), format="onnx", verbose=False)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    for i, g in cases:
        feed = dict(zip(names, [i, g]))
        np.testing.assert_allclose(session.run(None, feed)[0], model([i, g]).numpy(), atol=1e-6)
    assert np.abs(model(list(cases[1])).numpy()[0, 0]).sum() > 0  # the unknown word's mean
