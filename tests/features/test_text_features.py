"""cnnkit.features.text: the plain-Python tokenizer that token-id exports ship with."""
import numpy as np
import pytest

from cnnkit.errors import CnnkitError
from cnnkit.features import text as text_features


@pytest.mark.parametrize("standardize,split,boundaries", [
    ("lower_and_strip_punctuation", "whitespace", False), ("lower", "whitespace", False),
    ("strip_punctuation", "whitespace", False), ("none", "whitespace", False),
    ("lower_and_strip_punctuation", "character", False),
    ("lower_and_strip_punctuation", "whitespace", True), ("none", "whitespace", True),
    ("lower_and_strip_punctuation", "character", True),
    ("lower_and_split_punctuation", "whitespace", False), ("lower_and_split_punctuation", "whitespace", True),
    ("lower_and_split_punctuation", "character", True),
    ("truecase_and_strip_punctuation", "whitespace", False), ("truecase_and_strip_punctuation", "whitespace", True)])
@pytest.mark.parametrize("unicode", [True, False])
def test_python_tokenize_equals_text_vectorization(standardize, split, boundaries, unicode):
    """The tokenizer shipped beside token-id exports gives the ids the model's layer gives, on
    real sentences and on punctuation, non-ASCII letters, tabs and non-breaking spaces, curly
    quotes, dashes, C1 control characters and Unicode case, with Unicode standardization and
    without (runs saved before it)."""
    import csv
    from pathlib import Path

    from cnnkit.features.text import make_vectorizer, tokenize

    path = next((Path(text_features.__file__).parents[1] / "_data" / "sentences").glob("*.csv"))
    with open(path, newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)][:400]
    texts += ["Ünïcode CAPS, don't; e-mail: a@b.c\tTAB\u00a0nbsp  double", "", "   ", "?!", "x" * 50,
              "a\x02b \x03 c\x03",  # the boundary characters inside a text
              "What is Paris ?  Who was Galileo ?", 'The U.S. Department said. It rained!"  The end. (A gem.) I',
              "Éclair is USA's. McDonald ate", "Paris is big. We saw Paris, then Paris's Louvre.",
              "Don’t STOP…believing — “ÉCOLE” ¿Qué? film\x85and 'em\u2009now ΣΑΣ İstanbul 「引用」。",
              "It’s great. Don't. ‘Quoted’ «guillemets» end–to–end\u3000wide\u2028line"]
    vec = make_vectorizer(texts[:300] + texts[-5:], 2000, 24, standardize, split, boundaries=boundaries, unicode=unicode)
    expected = vec(np.asarray(texts, dtype=object).astype(str)).numpy()
    cased = text_features.vectorizer_cased_words(vec)  # truecasing's words (a name opening a text), else []
    assert bool(cased) == (standardize == "truecase_and_strip_punctuation")
    np.testing.assert_array_equal(tokenize(texts, vec.get_vocabulary(), 24, standardize, split, boundaries, cased,
                                           unicode), expected)


def test_cased_words_keep_the_most_often_capitalised(monkeypatch):
    """At most MAX_CASED_WORDS cased words (their regex must fit RE2's memory): those written
    capitalised most often, ties by name; sorted."""
    monkeypatch.setattr(text_features, "MAX_CASED_WORDS", 2)
    assert text_features.cased_words(["a Bob b Bob c Ann d Zed e Zed f Zed g Cy"]) == ["Bob", "Zed"]


def test_truecasing_lowercases_only_the_capitals_that_open_sentences():
    """truecase_and_strip_punctuation: a sentence's first word loses a capital that is only its
    first letter, unless the training texts write the word so inside their sentences more often
    than not (Moses' truecaser); names inside a sentence, and words in capitals, keep theirs."""
    from cnnkit.features.text import cased_words, lower_sentence_starts, make_vectorizer, vectorizer_cased_words

    texts = ["What is Paris ?  Who was Galileo ?", 'The U.S. Department said. "It rained!" USA won. I see',
             "Paris is big. I think I am"]
    got = [t.decode() for t in lower_sentence_starts(np.asarray(texts, dtype=object)).numpy()]
    assert got == ["what is Paris ? who was Galileo ?", 'the U.S. department said. "it rained!" USA won. i see',
                   "paris is big. i think I am"]
    # "The" inside a sentence as often as "the": not kept; "U" of "U.S." is a capital alone, as "I"
    assert cased_words(texts + ["He saw The Thing and the end"]) == ["Galileo", "I", "Paris", "Thing", "U"]
    kept = [t.decode() for t in lower_sentence_starts(np.asarray(texts), ["I", "Paris"]).numpy()]
    assert kept[2] == "Paris is big. I think I am" and kept[0] == got[0]
    assert lower_sentence_starts(np.asarray([["A b"], ["C d. E"]])).numpy().tolist() == [[b"a b"], [b"c d. e"]]
    vec = make_vectorizer(texts, 100, 12, "truecase_and_strip_punctuation", boundaries=True)
    assert vectorizer_cased_words(vec) == ["Galileo", "I", "Paris", "U"]
    vocab = vec.get_vocabulary()
    assert {"what", "who", "Paris", "Galileo", "US", "department", "USA", "I", "the"} <= set(vocab)
    assert not {"What", "The", "Department", "?", "paris", "i"} & set(vocab)
    with pytest.raises(CnnkitError, match="split=whitespace"):
        make_vectorizer(texts, 100, 12, "truecase_and_strip_punctuation", "character")


@pytest.mark.parametrize("texts,split,expected", [
    (["what is paris ?", "who was galileo ?"], "whitespace", "lower_and_strip_punctuation"),  # lowercased: nothing to keep
    (["What is Paris ?", "Who was Galileo ?", "How far is it from the sea ?"], "whitespace",
     "truecase_and_strip_punctuation"),
    (["Stocks Fall As Fed Raises Rates", "Rain Expected Over The Weekend"], "whitespace",
     "lower_and_strip_punctuation"),  # Title Case: a capital marks no name
    (["STOCKS FALL AGAIN", "RAIN EXPECTED"], "whitespace", "lower_and_strip_punctuation"),
    (["What is Paris ?"], "character", "lower_and_strip_punctuation"),
    (["It rained. Then It stopped."], "whitespace", "truecase_and_strip_punctuation")])
def test_auto_standardize_keeps_capitals_where_they_mark_names(texts, split, expected):
    """preprocess.standardize=auto: truecasing for texts with some capitals inside sentences;
    lowercase for lowercased texts, Title Case, capitals and character tokens; a line says why
    whenever capitals are seen in word tokens."""
    mode, why = text_features.auto_standardize(texts, split)
    assert mode == expected
    assert (why is None) == (split == "character" or texts[0].islower())
    if why:
        assert mode in why


@pytest.mark.parametrize("split", ["whitespace", "character"])
def test_boundaries_put_a_start_and_an_end_token_around_each_text(split):
    """With `boundaries` the ids of a text open with START's and close with END's (before the
    padding; a text cut at sequence_length loses its END); the standardization still applies."""
    from cnnkit.features.text import END, START, make_vectorizer

    vec = make_vectorizer(["How far is it ?", "What is it"], 100, 12, split=split, boundaries=True)
    vocab = vec.get_vocabulary()
    assert START in vocab and END in vocab and "How" not in vocab
    tokens = ["how", "far"] if split == "whitespace" else list("how far")  # no space added for characters
    ids = vec(np.asarray(["HOW, far"])).numpy()[0]
    expected = [vocab.index(t) for t in [START, *tokens, END]]
    np.testing.assert_array_equal(ids[:len(expected)], expected)
    assert not ids[len(expected):].any()
    if split == "whitespace":
        cut = vec(np.asarray(["what is it is it is it is it is it is it"])).numpy()[0]
        assert cut[0] == vocab.index(START) and vocab.index(END) not in cut
    # START and END inside a text do not pass for the added ones: the ids are those of the text without them
    inside = vec(np.asarray(["HOW\x02far\x03" if split == "whitespace" else "HOW \x02far\x03"])).numpy()[0]
    np.testing.assert_array_equal(inside[:len(expected)], expected)
    assert not inside[len(expected):].any()
    three = text_features.token_lengths(["a b c"] * 20, split)
    assert text_features.auto_sequence_length(three, low=1, boundaries=True) == (
        text_features.auto_sequence_length(three, low=1) + 2)


@pytest.mark.parametrize("boundaries", [False, True])
def test_split_punctuation_makes_each_punctuation_character_a_token(boundaries):
    """lower_and_split_punctuation: "Don't -- BAD!" reads as don ' t - - bad ! (words as Keras'
    lower_and_strip_punctuation leaves them, the punctuation kept beside them); the automatic
    sequence length counts those tokens; characters are unchanged (each is a token already)."""
    from cnnkit.features.text import END, START, make_vectorizer

    vec = make_vectorizer(["Don't -- BAD!", "good."], 100, 12, "lower_and_split_punctuation", boundaries=boundaries)
    vocab = vec.get_vocabulary()
    ids = vec(np.asarray(["Don't -- BAD!"])).numpy()[0]
    tokens = ["don", "'", "t", "-", "-", "bad", "!"]
    assert [vocab[i] for i in ids if i] == ([START, *tokens, END] if boundaries else tokens)
    assert text_features.token_lengths(["Don't -- BAD!", "good."], "whitespace", "lower_and_split_punctuation").tolist() == [7, 2]
    assert text_features.token_lengths(["Don't -- BAD!"], "whitespace").tolist() == [3]
    chars = make_vectorizer(["ab, c"], 100, 8, "lower_and_split_punctuation", "character", boundaries=boundaries)
    plain = make_vectorizer(["ab, c"], 100, 8, "lower", "character", boundaries=boundaries)
    assert chars.get_vocabulary() == plain.get_vocabulary()
    np.testing.assert_array_equal(chars(np.asarray(["AB, C"])).numpy(), plain(np.asarray(["AB, C"])).numpy())


@pytest.mark.parametrize("boundaries", [False, True])
def test_unicode_punctuation_spaces_and_case_read_as_asciis(boundaries, tmp_path):
    """Standardization reads Unicode (the default): a phone keyboard's "Don’t… " gives the ids of
    "don't..."; a no-break space and Windows-1252 dashes decoded as C1 controls separate words;
    "ÉCOLE" is "école". `unicode=False` (runs saved before) keeps them glued, as Keras does; a
    saved `Standardize` config without the key reads back as ASCII, as such a run was trained."""
    import keras

    from cnnkit.features.text import END, START, Standardize, make_vectorizer

    train = ["don't stop believing", "the école film and more"]
    vec = make_vectorizer(train, 100, 12, boundaries=boundaries)
    vocab = vec.get_vocabulary()
    words = lambda text: [vocab[i] for i in vec(np.asarray([text])).numpy()[0] if i not in (0,) and  # noqa: E731
                          vocab[i] not in (START, END)]
    assert words("Don’t STOP… believing") == words("don't stop... believing") == ["dont", "stop", "believing"]
    assert words("The ÉCOLE film\x96and\u00a0more") == ["the", "école", "film", "and", "more"]
    old = make_vectorizer(train, 100, 12, boundaries=boundaries, unicode=False)
    old_vocab = old.get_vocabulary()
    assert [old_vocab[i] for i in old(np.asarray(["Don’t"])).numpy()[0] if i] == ([START, "[UNK]", END] if boundaries
                                                                                 else ["[UNK]"])
    config = Standardize("lower_and_strip_punctuation").get_config()
    assert config["unicode"] is True
    del config["unicode"]
    assert Standardize.from_config(config).unicode is False
    raw = keras.Input((), dtype="string")
    keras.Model(raw, old(raw)).save(tmp_path / "old.keras")
    again = keras.saving.load_model(tmp_path / "old.keras", safe_mode=True)
    np.testing.assert_array_equal(again(np.asarray(["Don’t…"])).numpy(), old(np.asarray(["Don’t…"])).numpy())


def test_a_model_with_boundaries_reloads_in_safe_mode(tmp_path):
    """The vectorizer's `Standardize` is a registered Keras object: a saved model holding it
    loads with safe_mode=True and gives the same ids."""
    import keras

    from cnnkit.features.text import make_vectorizer

    vec = make_vectorizer(["a tiny text", "another tiny text"], 100, 6, boundaries=True)
    raw = keras.Input((), dtype="string")
    model = keras.Model(raw, vec(raw))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    texts = np.asarray(["A tiny, TINY text!", "unknown words"])
    np.testing.assert_array_equal(loaded(texts).numpy(), model(texts).numpy())


def test_min_count_leaves_rare_tokens_to_unk():
    """Tokens seen fewer than `min_count` times in the adapting texts map to [UNK] (id 1); the
    rest keep frequency order; min_count 1 keeps every token; 0 is refused naming the setting."""
    from cnnkit.errors import CnnkitError
    from cnnkit.features.text import make_vectorizer, token_counts

    texts = ["the cat sat", "the dog sat", "The cat ran", "a bird"]
    full = make_vectorizer(texts, 100, 6)
    assert set(full.get_vocabulary()[2:]) == {"the", "cat", "sat", "dog", "ran", "a", "bird"}
    np.testing.assert_array_equal(token_counts(np.asarray(texts), full.get_vocabulary(),
                                               standardize="lower_and_strip_punctuation", split="whitespace",
                                               ngrams=None)[2:5], [3, 2, 2])
    rare = make_vectorizer(texts, 100, 6, min_count=2)
    vocab = [str(t) for t in rare.get_vocabulary()]
    assert vocab[:3] == ["", "[UNK]", "the"] and set(vocab[3:]) == {"cat", "sat"}  # cat and sat tie
    ids = rare(np.asarray(["the dog sat on a cat"])).numpy()[0]
    np.testing.assert_array_equal(ids, [2, 1, vocab.index("sat"), 1, 1, vocab.index("cat")])
    with pytest.raises(CnnkitError, match="preprocess.min_count"):
        make_vectorizer(texts, 100, 6, min_count=0)


def test_word_vectors_from_text_gzip_zip_and_binary_word2vec_files_agree(tmp_path):
    """fastText publishes .vec.gz, GloVe a .zip, word2vec (GoogleNews) a binary .bin: each reads to
    the matrix of the plain text file. Before, a .gz file was read as text: 0 words found,
    "dimension 2", and a run trained on random vectors without a word of warning."""
    import gzip
    import zipfile

    from cnnkit.errors import CnnkitError

    words = {"film": [0.5, -1.25, 2.0], "Good": [1.0, 0.0, -0.5], "dull": [-2.0, 0.25, 0.125]}
    vocab = ["", "[UNK]", "film", "good", "dull", "unseen"]
    text = "3 3\n" + "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in words.items())
    (tmp_path / "v.vec").write_text(text)
    with gzip.open(tmp_path / "v.vec.gz", "wt") as f:
        f.write(text)
    with zipfile.ZipFile(tmp_path / "v.zip", "w") as archive:
        archive.writestr("v.txt", text)
    with open(tmp_path / "v.bin", "wb") as f:
        f.write(b"3 3\n")
        for w, v in words.items():
            f.write(w.encode() + b" " + np.asarray(v, dtype="<f4").tobytes() + b"\n")
    plain, hits = text_features.read_word_vectors(tmp_path / "v.vec", vocab)
    assert hits == 3 and plain[3].tolist() == [1.0, 0.0, -0.5]  # "Good" for the vocabulary's "good"
    for name in ("v.vec.gz", "v.zip", "v.bin"):
        matrix, hits = text_features.read_word_vectors(tmp_path / name, vocab)
        assert hits == 3, name
        np.testing.assert_array_equal(matrix, plain)
    with zipfile.ZipFile(tmp_path / "glove.zip", "w") as archive:
        archive.writestr("glove.50d.txt", text)
        archive.writestr("glove.300d.txt", text)
    with pytest.raises(CnnkitError, match=r"holds 2 files \(glove.50d.txt, glove.300d.txt\): unzip it"):
        text_features.read_word_vectors(tmp_path / "glove.zip", vocab)
    (tmp_path / "cc.en.300.bin").write_bytes(text_features.FASTTEXT_MODEL_MAGIC.to_bytes(4, "little") + bytes(64))
    with pytest.raises(CnnkitError, match="fastText model, not a vectors file: pass the .vec"):
        text_features.read_word_vectors(tmp_path / "cc.en.300.bin", vocab)
    (tmp_path / "junk.bin").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CnnkitError, match="neither a text vectors file nor a binary word2vec file"):
        text_features.read_word_vectors(tmp_path / "junk.bin", vocab)


def test_auto_split_reads_unspaced_writing_as_characters():
    """Texts without spaces between words (Chinese, Japanese, Thai; here also English with its
    spaces removed) are split into characters; spaced texts, and Chinese already segmented
    into words with spaces, into words."""
    english = ["a stirring , funny and finally transporting re-imagining of beauty and the beast",
               "apparently reassembled from the cutting-room floor of any given daytime soap ."]
    assert text_features.auto_split(english)[0] == "whitespace"
    assert text_features.auto_split([t.replace(" ", "") for t in english])[0] == "character"
    assert text_features.auto_split(["这部电影的剧情非常精彩，演员的表演也很出色。", "故事拖沓，看得我昏昏欲睡。"])[0] == "character"
    assert text_features.auto_split(["这部 电影 的 剧情 非常 精彩 ， 演员 的 表演 也 很 出色 。"])[0] == "whitespace"
    split, why = text_features.auto_split(["この映画はとても面白かったです"] * 3)
    assert split == "character" and "preprocess.split=whitespace" in why


def test_long_documents_cut_at_the_automatic_cap_are_said():
    """Sentences: the 95th percentile leaves 5 % out, nothing said. Documents of 300-1 092 words:
    the automatic length stops at 512 and 73 % of them lose their end, which the line says."""
    short = [" ".join(["word"] * 10)] * 95 + [" ".join(["word"] * 30)] * 5
    length = text_features.auto_sequence_length(text_features.token_lengths(short))
    assert length == 10 and text_features.cut_note(text_features.token_lengths(short), "whitespace", length) is None
    docs = [" ".join(["word"] * n) for n in range(300, 1100, 8)]  # 100 texts
    length = text_features.auto_sequence_length(text_features.token_lengths(docs), boundaries=True)
    assert length == 512
    note = text_features.cut_note(text_features.token_lengths(docs), "whitespace", length, boundaries=True)
    assert note.startswith("Texts are read up to 512 tokens") and "73% of the training texts are longer" in note
    assert "the longest 1092 words" in note and "preprocess.sequence_length=N" in note


def test_tokens_keras_cannot_read_back_are_left_out_and_the_model_reloads(tmp_path):
    """MR's texts hold "\\x85" (a Windows ellipsis read as Latin-1); Keras writes the vocabulary a
    token a line and reads it back with str.splitlines, which breaks there: the saved model did not
    load ("repeated term"). Such tokens now read as [UNK] and the model reloads."""
    import keras
    import tensorflow as tf

    texts = ["a fine film\x85 truly", "dull\u2028plot here", "page\x0cbreak and\x1erecord", "a fine film"] * 3
    vec = text_features.make_vectorizer(texts, max_tokens=100, sequence_length=6, boundaries=True)
    vocab = vec.get_vocabulary()
    assert all(text_features.reads_back(t) for t in vocab[2:]) and "truly" in vocab and "fine" in vocab
    assert not text_features.reads_back("film\x85") and text_features.reads_back("film")
    inputs = keras.Input((), dtype="string")
    model = keras.Model(inputs, vec(inputs))
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    x = tf.constant(["a fine film\x85 truly", "dull\u2028plot here"])
    np.testing.assert_array_equal(again(x).numpy(), model(x).numpy())
    assert again.get_layer(vec.name).get_vocabulary() == vocab


@pytest.mark.parametrize("standardize,boundaries", [("lower_and_strip_punctuation", False),
                                                     ("lower_and_strip_punctuation", True),
                                                     ("truecase_and_strip_punctuation", True)])
def test_unknown_word_subwords_are_the_vectorizers_unknown_tokens(standardize, boundaries, tmp_path):
    """UnknownWordSubwords reads the vectorizer's own tokens (its standardization, its cut to the
    sequence length): n-gram ids exactly at the [UNK] steps, those of the standardized word; the
    layer reloads from model.keras."""
    import keras
    import tensorflow as tf

    from cnnkit.blocks.ngrams import MAX_WORD_GRAMS, word_subword_ids
    from cnnkit.features.text import UnknownWordSubwords

    train = ["What a fine film .", "Paris was dull , we left .", "a fine dull day"]
    vec = text_features.make_vectorizer(train, 100, 6, standardize, boundaries=boundaries)
    layer = UnknownWordSubwords.of(vec, 500)
    texts = np.array(["Zorblax saw Paris, a FINE day!", "fine fine fine fine fine fine zorblax"], dtype=object)
    ids = vec(texts).numpy()
    grams = layer([texts, ids]).numpy()
    assert grams.shape == (2, 6, MAX_WORD_GRAMS)
    assert ((grams > 0).any(-1) == (ids == 1)).all() and (ids == 1).sum() >= 2  # the one cut off is not read
    step = int(boundaries)  # "Zorblax" opens the text: lowercased but where truecasing keeps it (not here)
    expected = word_subword_ids(["zorblax"], 500).to_tensor(shape=[1, MAX_WORD_GRAMS]).numpy()[0]
    assert (grams[0, step] == expected).all()
    fine = 4 + step  # "FINE": lowercased, or kept in capitals inside a truecased sentence (then unknown)
    assert (ids[0, fine] == 1) == (standardize.startswith("truecase"))
    raw = keras.Input((), dtype="string")
    model = keras.Model(raw, layer([raw, vec(raw)]))
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert (again(tf.constant(texts.astype(str))).numpy() == grams).all()


def test_unknown_word_subwords_take_any_word():
    """Words outside the vocabulary of any form get their n-grams: emoji, non-Latin scripts, a
    100 000-character word (cut to 20 characters: at most MAX_WORD_GRAMS n-grams), bytes that are not
    UTF-8 (replaced); empty texts give zeros."""
    import tensorflow as tf

    from cnnkit.blocks.ngrams import MAX_WORD_GRAMS
    from cnnkit.features.text import UnknownWordSubwords

    vec = text_features.make_vectorizer(["a fine film", "a dull film"], 100, 4, boundaries=False)
    layer = UnknownWordSubwords.of(vec, 1000)
    texts = tf.constant(["😀🎬 film", "日本語の文章です", "a" * 100_000, b"\xff\xfe zz", "", "   "])
    ids = vec(texts)
    grams = layer([texts, ids]).numpy()
    counts = (grams > 0).sum(-1)
    assert (counts[:4, 0] > 0).all() and counts[2, 0] == MAX_WORD_GRAMS and (counts[4:] == 0).all()
    assert ((counts > 0) == (ids.numpy() == 1)).all() and grams.max() <= 1000


@pytest.mark.parametrize("standardize,boundaries", [("lower_and_strip_punctuation", False),
                                                     ("lower_and_split_punctuation", True),
                                                     ("truecase_and_strip_punctuation", True), ("none", False)])
def test_python_unknown_subword_ids_equal_the_layers(standardize, boundaries):
    """`unknown_subword_ids` (plain Python, for token-id exports served without TensorFlow) gives
    what the run's UnknownWordSubwords layer gives: real sentences against a small vocabulary (many
    unknown words), emoji, other scripts, a 100 000-character word, a literal "[UNK]" (kept by
    standardize=none: id 1, so the layer reads its n-grams), empty texts."""
    import csv
    from pathlib import Path

    from cnnkit.features.text import UnknownWordSubwords, tokenize, unknown_subword_ids

    path = next((Path(text_features.__file__).parents[1] / "_data" / "sentences").glob("*.csv"))
    with open(path, newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)][:200]
    vec = text_features.make_vectorizer(texts[:50], 2000, 20, standardize, boundaries=boundaries)
    texts += ["😀🎬 film", "日本語の文章です", "a" * 100_000, "The [UNK] token, Zorblax!", "", "   ", "Ünïcode CAPS",
              "Zorblax’s “ÉCLAIR”…\x85glued\u00a0words"]
    vocab, cased = vec.get_vocabulary(), text_features.vectorizer_cased_words(vec)
    ids = vec(np.asarray(texts, dtype=object).astype(str)).numpy()
    np.testing.assert_array_equal(tokenize(texts, vocab, 20, standardize, "whitespace", boundaries, cased, True), ids)
    want = UnknownWordSubwords.of(vec, 1000)([np.asarray(texts, dtype=object).astype(str), ids]).numpy()
    got = unknown_subword_ids(texts, vocab, 20, 1000, standardize, boundaries, cased, True)
    assert (ids == 1).sum() > 100 and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
