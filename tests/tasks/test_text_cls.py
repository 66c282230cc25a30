"""text-cls: raw strings in, vocabulary from train only, word vectors, folders of .txt, cross-validation."""
import io
import json
import shutil
import zipfile

import h5py
import keras
import numpy as np
import pytest

from cnnkit import api, cli, tasks
from cnnkit.errors import CnnkitError
from cnnkit.features import text as text_features

FAST = dict(epochs=1, verbose=0)


@pytest.fixture
def reviews_csv(tmp_path):
    rng = np.random.default_rng(0)
    good, bad = ["great", "superb", "lovely", "fun"], ["awful", "boring", "dull", "bad"]
    filler = ["the", "movie", "was", "plot", "and", "acting", "quite", "really"]
    rows = ["text,label"]
    for i in range(120):
        label = "pos" if i % 2 else "neg"
        words = list(rng.choice(filler, 6)) + [rng.choice(good if label == "pos" else bad)]
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{label}")
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_default_sample_trains_and_saved_model_takes_strings(tmp_path):
    result = api.train("text-cls", out=str(tmp_path / "run"), **FAST)
    assert result.metrics["num_train"] + 0 > 2500 and "test_accuracy" in result.metrics
    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    texts = np.array(["a wonderful , moving film", "dull and lifeless"], dtype=object)
    probs = model.predict(texts, verbose=0)
    assert probs.shape == (2, 2)
    np.testing.assert_allclose(probs, result.model.predict(texts, verbose=0), atol=1e-5)
    assert json.loads((result.run_dir / "labels.json").read_text()) == ["negative", "positive"]


def test_early_stopping_ends_two_epochs_after_the_least_validation_loss(reviews_csv, tmp_path):
    """The text-cls default patience is 2 epochs: at a learning rate of 1e-30 (0 is refused) no
    float32 weight moves, so the validation loss never falls below the first epoch's and training
    ends after the third of its 30 epochs."""
    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "run"), lr=1e-30, verbose=0, val_split=0.2)
    assert result.config.train.early_stopping == 2 and result.config.train.epochs == 30
    assert len(result.history["val_loss"]) == 3


def test_csv_learns_and_predicts_text_files(reviews_csv, tmp_path, capsys, monkeypatch):
    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "run"), epochs=15, verbose=0, val_split=0.2,
                       early_stopping=0)
    assert result.metrics["val_accuracy"] >= 0.9
    (tmp_path / "a.txt").write_text("the movie was superb")
    (tmp_path / "b.txt").write_bytes(b"really awful acting \xff\xfe")  # not UTF-8: replaced, still read
    (tmp_path / "empty.txt").write_text("   \n")
    out = api.predict(str(result.run_dir), [str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), str(tmp_path / "empty.txt")])
    assert [o["predictions"][0]["label"] for o in out] == ["pos", "neg"]

    lines = api.predict(str(result.run_dir), ["-"], stdin=io.StringIO("the movie was superb\n\nreally awful acting\n"))
    assert [(o["input"], o["predictions"][0]["label"]) for o in lines] == [("the movie was superb", "pos"),
                                                                         ("really awful acting", "neg")]

    # a NumPy array of texts (a pandas column's .to_numpy()): the texts themselves
    arr = api.predict(str(result.run_dir), np.array(["the movie was superb", "really awful acting"], dtype=object))
    assert [(o["input"], o["predictions"][0]["label"]) for o in arr] == [("array[0]", "pos"), ("array[1]", "neg")]
    with pytest.raises(CnnkitError, match="array of texts"):
        api.predict(str(result.run_dir), np.zeros((2, 3)))
    # an input that is no file, folder or glob is the text itself (as for `cnnkit explain`), in order
    mixed = api.predict(str(result.run_dir), ["really awful acting", str(tmp_path / "a.txt"), " "])
    assert [(o["input"], o["predictions"][0]["label"]) for o in mixed] == [("really awful acting", "neg"),
                                                                         (str(tmp_path / "a.txt"), "pos")]
    assert cli.main(["predict", str(result.run_dir), "the movie was superb", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(o["input"], o["predictions"][0]["label"]) for o in out] == [("the movie was superb", "pos")]
    # a glob of text files is files; a text whose "?" happens to match another file stays a text
    globbed = api.predict(str(result.run_dir), [str(tmp_path / "*.txt")])
    assert [o["input"] for o in globbed] == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "superbs").write_text("really awful acting")
    assert [o["input"] for o in api.predict(str(result.run_dir), ["superb?"])] == ["superb?"]
    # a table is a text a row (before: the whole file one text, one prediction), no label needed
    (tmp_path / "to_score.csv").write_text('id,text\n1,the movie was superb\n2,"really awful acting"\n3,\n')
    rows = api.predict(str(result.run_dir), ["to_score.csv"])
    assert [(o["input"], o["predictions"][0]["label"]) for o in rows] == [("to_score.csv:2", "pos"),
                                                                        ("to_score.csv:3", "neg")]
    (tmp_path / "to_score.jsonl").write_text('{"review": "really awful acting"}\n')
    assert api.predict(str(result.run_dir), ["to_score.jsonl"], text_column="review")[0]["input"] == "to_score.jsonl:1"
    with pytest.raises(CnnkitError, match="no column 'text' \\(columns: review\\): name the column of texts with --text-column"):
        api.predict(str(result.run_dir), ["to_score.jsonl"])


def test_evaluate_names_other_columns(reviews_csv, tmp_path, capsys):
    """A run trained on `text,label` evaluated on a file whose columns are named otherwise: the
    error says how to name them, and `--text-column` / `--label-column` do."""
    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "run"), **FAST)
    other = tmp_path / "other.csv"
    other.write_text(reviews_csv.read_text().replace("text,label", "review,sentiment", 1))
    assert cli.main(["evaluate", str(result.run_dir), "--data", str(other)]) == 2
    err = capsys.readouterr().err
    assert "no column 'label'" in err and "header line" not in err  # its first line is a header
    assert cli.main(["evaluate", str(result.run_dir), "--data", str(other), "--text-column", "review",
                     "--label-column", "sentiment", "--json"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads(out[out.index("\n{\n") + 1:])  # the report, then the metrics as JSON
    assert metrics["num_examples"] == 120
    windows = tmp_path / "windows.csv"  # saved by a spreadsheet in Windows' Western European encoding
    windows.write_bytes(reviews_csv.read_text().replace("the", "th\xe9").encode("cp1252"))
    assert cli.main(["evaluate", str(result.run_dir), "--data", str(windows)]) == 2
    assert "--set data.encoding=cp1252" in capsys.readouterr().err
    assert cli.main(["evaluate", str(result.run_dir), "--data", str(windows), "--encoding", "cp1252"]) == 0
    # predict reads .txt files in another encoding with --encoding (here UTF-16, unreadable as UTF-8)
    capsys.readouterr()
    wide = tmp_path / "wide.txt"
    wide.write_text("really awful acting", encoding="utf-16")
    as_text = api.predict(str(result.run_dir), ["really awful acting"])[0]["predictions"]
    assert api.predict(str(result.run_dir), [str(wide)])[0]["predictions"] != as_text
    assert cli.main(["predict", str(result.run_dir), str(wide), "--encoding", "utf-16", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)[0]["predictions"] == as_text
    assert cli.main(["predict", str(result.run_dir), str(wide), "--encoding", "klingon"]) == 2
    assert "'klingon' is not a text encoding" in capsys.readouterr().err


def test_subwords_default_on_for_words_and_off_where_they_cannot_serve(reviews_csv, tmp_path):
    """Unset preprocess.subwords: 10 000 buckets for word tokens (recorded in config.yaml), 0 for
    character tokens, word n-gram tokens and pretrained vectors; a set value is kept."""
    from cnnkit.tasks.text_cls import SUBWORD_BUCKETS, TextPreprocessConfig, default_subwords

    assert SUBWORD_BUCKETS == 10_000 and TextPreprocessConfig().subwords is None
    assert default_subwords(TextPreprocessConfig()) == 10_000
    assert default_subwords(TextPreprocessConfig(split="character")) == 0
    assert default_subwords(TextPreprocessConfig(ngrams=2)) == 0
    assert default_subwords(TextPreprocessConfig(embeddings="vectors.txt")) == 0
    result = api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "default"), **FAST)
    assert result.model.get_layer("subwords").buckets == 10_000 and result.config.preprocess.subwords == 10_000
    assert "subwords: 10000" in (result.run_dir / "config.yaml").read_text()
    assert result.config.preprocess.split == "whitespace"  # auto, resolved and recorded
    assert "split: whitespace" in (result.run_dir / "config.yaml").read_text()
    unspaced = tmp_path / "unspaced.csv"  # as Chinese or Japanese are written: characters, no subwords
    unspaced.write_text(reviews_csv.read_text().replace(" ", ""))
    auto = api.train("text-cls", data=str(unspaced), out=str(tmp_path / "unspaced"), **FAST)
    assert auto.config.preprocess.split == "character" and auto.config.preprocess.subwords == 0
    char = api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "char"), sets=["preprocess.split=character"], **FAST)
    assert char.config.preprocess.subwords == 0
    assert not [layer for layer in char.model.layers if layer.name == "subwords"]


def test_a_run_without_the_subwords_setting_reads_as_trained_without(reviews_csv, tmp_path):
    """A config.yaml written before preprocess.subwords existed reads back with subwords 0 (what that
    run was trained with), not today's default: --resume and --from rebuild the same network."""
    from cnnkit import runs

    result = api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "old"), sets=["preprocess.subwords=0"], **FAST)
    path = result.run_dir / "config.yaml"
    path.write_text(path.read_text().replace("  subwords: 0\n", ""))
    assert "subwords" not in path.read_text()
    assert runs.read_run(result.run_dir)[1]["preprocess"]["subwords"] == 0
    assert api.config_from_run(runs.read_run(result.run_dir)[1]).preprocess.subwords == 0
    again = api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "from"), from_run=str(result.run_dir), **FAST)
    assert again.config.preprocess.subwords == 0


def test_an_ensemble_without_the_members_val_setting_reads_as_same(tmp_path):
    """Ensembles written before model.members_val existed held out one slice for all members: a
    config.yaml without the key reads back as "same" (a resumed run trains its members on their
    data), one with the key as written, and a new run gets "rotate"."""
    import yaml

    from cnnkit import runs

    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"task": "text-cls", "model": {"members": 5}}))
    assert api.config_from_run(runs.read_run(tmp_path)[1]).model.members_val == "same"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"task": "text-cls", "model": {"members_val": "rotate"}}))
    assert runs.read_run(tmp_path)[1]["model"]["members_val"] == "rotate"
    assert api.resolve_config("text-cls", None, None, None).model.members_val == "rotate"


def test_a_run_without_the_monitor_setting_reads_as_accuracy(tmp_path):
    """text-cls runs written before train.monitor existed kept their best val_accuracy epoch: a
    config.yaml without the key reads back as accuracy (a resume picks epochs as the run did);
    a new text run monitors the validation loss, an image run the accuracy."""
    import yaml

    from cnnkit import runs

    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"task": "text-cls", "train": {"epochs": 3}}))
    assert api.config_from_run(runs.read_run(tmp_path)[1]).train.monitor == "accuracy"
    assert api.resolve_config("text-cls", None, None, None).train.monitor == "loss"
    assert api.resolve_config("image-cls", None, None, None).train.monitor == "accuracy"


def test_a_run_without_the_boundaries_setting_reads_as_trained_without(tmp_path):
    """text-cls runs written before preprocess.boundaries existed read their texts without start
    and end tokens: a config.yaml without the key reads back as false (--resume, --from and
    token-id exports rebuild that tokenizer); new text runs have them."""
    import yaml

    from cnnkit import runs

    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"task": "text-cls", "preprocess": {"max_tokens": 100}}))
    assert api.config_from_run(runs.read_run(tmp_path)[1]).preprocess.boundaries is False
    assert api.resolve_config("text-cls", None, None, None).preprocess.boundaries is True
    assert api.config_from_run(runs.read_run(tmp_path)[1]).train.precise_bn == 0  # the same for precise_bn
    assert api.resolve_config("text-cls", None, None, None).train.precise_bn == 50
    assert api.config_from_run(runs.read_run(tmp_path)[1]).preprocess.standardize == "lower_and_strip_punctuation"
    assert api.resolve_config("text-cls", None, None, None).preprocess.standardize == "auto"
    assert api.config_from_run(runs.read_run(tmp_path)[1]).preprocess.unicode is False  # and Unicode reading
    assert api.resolve_config("text-cls", None, None, None).preprocess.unicode is True


def test_precise_bn_reestimates_batch_norm_each_epoch_of_a_network_that_has_it(reviews_csv, tmp_path, monkeypatch):
    """train.precise_bn (on for text-cls): resnet1d's batch norm is re-estimated once an epoch on
    a draw of the training texts (at most precise_bn batches); Kim's CNN has no batch norm, so
    nothing runs; a network whose moving statistics trail its weights is what it mends
    (tests/test_training.py)."""
    from cnnkit import training

    seen = []
    original = training.reestimate_batchnorm
    monkeypatch.setattr(training, "reestimate_batchnorm",
                        lambda model, ds, forward=None: seen.append(original(model, ds, forward)) or seen[-1])
    result = api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "resnet"), epochs=2, verbose=0,
                       backbone="resnet1d", sets=["train.precise_bn=1", "train.early_stopping=0"])
    assert seen == [1, 1] and len(result.history["loss"]) == 2  # one batch of the draw, each of the two epochs
    seen.clear()
    api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "kim"), epochs=2, verbose=0)
    assert seen == []


def test_subwords_are_an_option(reviews_csv, tmp_path):
    """preprocess.subwords adds the vocabulary's character n-gram vectors to the word vectors: they
    are trained, the saved model reloads with the same predictions, and options it cannot serve are refused."""
    result = api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "on"), epochs=2, verbose=0,
                       sets=["preprocess.subwords=1000"])
    layer = result.model.get_layer("subwords")
    vocab = result.model.get_layer("vectorize").get_vocabulary()
    assert layer.output_dim == 128 and (layer.grams.numpy()[vocab.index("great")] > 0).sum() == 12
    trainable = {id(w) for w in result.model.trainable_weights}
    assert id(layer.vectors) in trainable and id(layer.grams) not in trainable  # the vectors train, the table stays
    texts = np.array(["the movie was superb", "greatest fun"], dtype=object)
    again = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    np.testing.assert_allclose(again.predict(texts, verbose=0), result.model.predict(texts, verbose=0), atol=1e-6)
    with pytest.raises(CnnkitError, match="needs word tokens"):
        api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "char"),
                  sets=["preprocess.subwords=1000", "preprocess.split=character"], **FAST)


def test_boundaries_mark_each_text_in_the_saved_model(reviews_csv, tmp_path):
    """preprocess.boundaries=true: the sequence length counts the two tokens, the saved model
    reads raw strings between START and END and reloads in safe mode with the same predictions,
    and explanations show them as [start] and [end]."""
    from cnnkit.explain import token_saliency

    result = api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "on"), sets=["preprocess.boundaries=true"],
                       **FAST)
    assert result.config.preprocess.sequence_length == 7 + 2  # every text of the fixture has 7 words
    vectorize = result.model.get_layer("vectorize")
    vocab = vectorize.get_vocabulary()
    ids = vectorize(np.array(["the movie was superb"])).numpy()[0]
    assert [vocab[i] for i in ids[:6]] == [text_features.START, "the", "movie", "was", "superb", text_features.END]
    texts = np.array(["the movie was superb", "dull"], dtype=object)
    again = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    np.testing.assert_allclose(again.predict(texts, verbose=0), result.model.predict(texts, verbose=0), atol=1e-6)
    tokens, scores, _ = token_saliency(result.model, "the movie was superb")
    assert tokens == ["[start]", "the", "movie", "was", "superb", "[end]"] and len(scores) == 6


def test_cased_texts_keep_their_capitals_inside_sentences(reviews_csv, tmp_path, capsys):
    """preprocess.standardize=auto: texts with capitals inside their sentences (names) are
    truecased (config.yaml records truecase_and_strip_punctuation, a line says why): "Anna" keeps its
    capital, a sentence's first word loses its own unless written so inside sentences, and the saved model reloads with the same
    predictions; lowercased texts are lowercased as before."""
    rows = ["text,label"] + [f"{'The film with Anna was' if i % 2 else 'Anna said the plot was'} "
                             f"{['great', 'awful'][i % 2]}. It {['shone', 'sank'][i % 2]},{['pos', 'neg'][i % 2]}"
                             for i in range(60)]
    (tmp_path / "cased.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = api.train("text-cls", data=str(tmp_path / "cased.csv"), out=str(tmp_path / "run"), **FAST)
    assert result.config.preprocess.standardize == "truecase_and_strip_punctuation"
    assert "Capitals kept but at sentence starts" in capsys.readouterr().err
    assert "standardize: truecase_and_strip_punctuation" in (result.run_dir / "config.yaml").read_text()
    vocab = result.model.get_layer("vectorize").get_vocabulary()
    # "Anna" opening a sentence stays "Anna": the texts write it so inside their sentences (cased_words)
    assert {"Anna", "the", "it"} <= set(vocab) and not {"The", "It", "anna"} & set(vocab)
    assert text_features.vectorizer_cased_words(result.model.get_layer("vectorize")) == ["Anna"]
    texts = np.array(["The film with Anna was dull. It sank", "anna"], dtype=object)
    again = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    np.testing.assert_allclose(again.predict(texts, verbose=0), result.model.predict(texts, verbose=0), atol=1e-6)
    assert text_features.vectorizer_cased_words(again.get_layer("vectorize")) == ["Anna"]
    from cnnkit.export import export  # token ids from the Python tokenizer, truecased as the model does

    record = export(str(result.run_dir), "tflite", out=str(tmp_path / "export"))
    assert record["max_abs_difference"] < 1e-3 and record["sample"] > 0, record
    assert json.loads((tmp_path / "export" / "tokenizer.json").read_text())["cased_words"] == ["Anna"]
    lower = api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "lower"), **FAST)
    assert lower.config.preprocess.standardize == "lower_and_strip_punctuation"
    with pytest.raises(CnnkitError, match="standardize must be one of auto, lower_and_strip_punctuation"):
        api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "bad"), sets=["preprocess.standardize=upper"],
                  **FAST)


def test_ngram_branch_is_an_option(reviews_csv, tmp_path):
    """ngram_branch=true adds NgramLogits (idf from the training ids) to the head; the default has none."""
    result = api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "on"), epochs=3, verbose=0,
                       sets=["preprocess.ngram_branch=true"])
    branch = result.model.get_layer("ngram_logits")
    vocab = result.model.get_layer("vectorize").get_vocabulary()
    idf = branch.idf.numpy()
    assert branch.vocabulary_size == len(vocab) and idf[0] == 0.0
    assert idf[vocab.index("the")] < idf[vocab.index("great")]  # a filler word is in more texts
    assert np.abs(branch.class_weights.numpy()).max() > 0  # trained
    # explain holds the branch's logits fixed: its probabilities are the model's
    from cnnkit import explain

    tokens, scores, probs = explain.token_saliency(result.model, "the movie was great")
    np.testing.assert_allclose(probs, result.model.predict(np.array(["the movie was great"], dtype=object), verbose=0)[0],
                               atol=1e-5)
    reloaded = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.get_layer("ngram_logits").idf.numpy(), idf)
    normed = api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "normed"), **FAST,
                       sets=["preprocess.ngram_branch=true", "preprocess.ngram_normalize=true"])
    assert normed.model.get_layer("ngram_logits").normalize is True
    off = api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "off"), **FAST)
    assert "ngram_logits" not in [layer.name for layer in off.model.layers]
    with pytest.raises(CnnkitError, match="ngram_buckets must be >= 0"):
        api.train("text-cls", data=str(reviews_csv), out=str(tmp_path / "bad"), sets=["preprocess.ngram_branch=true", "preprocess.ngram_buckets=-1"],
                  **FAST)


def test_long_texts_get_the_ngram_branch_by_default_and_sentences_do_not(tmp_path, capsys):
    """An unset preprocess.ngram_branch: on for texts of a median of LONG_TEXT_WORDS words or more
    (said, and recorded in config.yaml), off for sentences and for character tokens."""
    import yaml

    from cnnkit.features.text import token_lengths
    from cnnkit.tasks.text_cls import LONG_TEXT_WORDS, TextPreprocessConfig, default_ngram_branch

    words = TextPreprocessConfig(split="whitespace")
    sentences = ["a short sentence of a few words"] * 9
    documents = [" ".join(["word"] * LONG_TEXT_WORDS)] * 5 + ["short one"] * 4
    sentences, documents = token_lengths(sentences), token_lengths(documents)
    assert not default_ngram_branch(sentences, words) and default_ngram_branch(documents, words)
    assert not default_ngram_branch(documents, TextPreprocessConfig(split="character"))
    assert not default_ngram_branch(documents, TextPreprocessConfig(split="whitespace", ngrams=2))
    rng = np.random.default_rng(0)
    filler = ["the", "film", "was", "and", "plot", "acting", "story", "scene", "it", "very"]
    rows = ["text,label"]
    for i in range(40):
        label = "pos" if i % 2 else "neg"
        cue = ["great", "lovely"] if label == "pos" else ["awful", "dull"]
        rows.append(" ".join(rng.choice(filler + cue, LONG_TEXT_WORDS + 20)) + f",{label}")
    (tmp_path / "docs.csv").write_text("\n".join(rows) + "\n")
    result = api.train("text-cls", data=str(tmp_path / "docs.csv"), out=str(tmp_path / "docs"), **FAST)
    assert "ngram_logits" in [layer.name for layer in result.model.layers]
    assert "The texts are long (a median of 60 words, at least 40)" in capsys.readouterr().err
    assert yaml.safe_load((result.run_dir / "config.yaml").read_text())["preprocess"]["ngram_branch"] is True


def test_vocabulary_from_train_only_and_auto_length(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\n" + "\n".join(
        f"{'alpha ' * (i % 10 + 1)}x,{'a' if i % 2 else 'b'}" for i in range(40)) + "\n")
    (tmp_path / "test.csv").write_text("text,label\nzebra only in test,a\nalpha x,b\n")
    result = api.train("text-cls", str(tmp_path), out=str(tmp_path / "run"), **FAST)
    vocab = [l for l in result.model.layers if l.name == "vectorize"][0].get_vocabulary()
    assert "alpha" in vocab and "zebra" not in vocab
    lengths = text_features.token_lengths([f"{'alpha ' * (i % 10 + 1)}x" for i in range(40)])
    # the start and end tokens (preprocess.boundaries, on by default) count
    assert result.config.preprocess.sequence_length == max(8, int(np.percentile(lengths + 2, 95)))


def test_min_count_reaches_the_saved_vocabulary(reviews_csv, tmp_path):
    """`preprocess.min_count` drops the training split's rare tokens from the saved model's vocabulary."""
    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "run"), sets=["preprocess.min_count=40"],
                       **FAST)
    vocab = result.model.get_layer("vectorize").get_vocabulary()
    assert "movie" in vocab and set(vocab[2:]) <= {"the", "movie", "was", "plot", "and", "acting", "quite", "really",
                                                   text_features.START, text_features.END}


def test_folder_of_txt_files_and_empty_texts(tmp_path):
    for label, word in (("sport", "goal"), ("tech", "chip")):
        (tmp_path / "docs" / label).mkdir(parents=True)
        for i in range(10):
            (tmp_path / "docs" / label / f"{i}.txt").write_text(f"{word} news item {i} " + word * (i % 3))
    (tmp_path / "docs" / "sport" / "blank.txt").write_text("")
    result = api.train("text-cls", str(tmp_path / "docs"), out=str(tmp_path / "run"), **FAST)
    assert result.metrics["skipped_inputs"] == 1 and result.metrics["num_train"] == 17  # 19 texts - 2 for validation


def test_text_files_drop_a_byte_order_mark_and_read_data_encoding(tmp_path):
    """Notepad saves UTF-8 with a byte-order mark, which was glued to the first word ("\ufeffgoal"
    is another token than "goal"); `data.encoding` reads files written in another encoding."""
    from cnnkit.tasks.text_cls import read_text_file

    bom = tmp_path / "bom.txt"
    bom.write_bytes("goal scored".encode("utf-8-sig"))
    assert read_text_file(str(bom)) == "goal scored"
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 cr\xe8me".encode("cp1252"))
    assert read_text_file(str(latin), "cp1252") == "caf\xe9 cr\xe8me"
    assert read_text_file(str(latin)) == "caf\ufffd cr\ufffdme"  # UTF-8 by default, undecodable bytes replaced


@pytest.mark.parametrize("mode", ["static", "non-static", "multichannel"])
def test_word_vectors(reviews_csv, tmp_path, mode):
    vecs = tmp_path / "vectors.txt"
    words = ["great", "superb", "awful", "movie", "The"]
    rng = np.random.default_rng(1)
    table = {w: rng.normal(size=6).round(4) for w in words}
    vecs.write_text("5 6\n" + "\n".join(w + " " + " ".join(map(str, v)) for w, v in table.items()) + "\n")
    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "run"), embeddings=str(vecs),
                       sets=[f"preprocess.embeddings_mode={mode}"], epochs=2, verbose=0)
    model = result.model
    vocab = [l for l in model.layers if l.name == "vectorize"][0].get_vocabulary()
    embeds = {l.name: l for l in model.layers if l.name.startswith("embedding")}
    assert set(embeds) == {"static": {"embedding_static"}, "non-static": {"embedding"},
                           "multichannel": {"embedding_static", "embedding"}}[mode]
    for name, layer in embeds.items():
        weights = layer.get_weights()[0]
        assert weights.shape == (len(vocab), 6)
        static_row = weights[vocab.index("great")]
        if name == "embedding_static":  # frozen: still the file's vector
            np.testing.assert_allclose(static_row, table["great"], atol=1e-6)
            np.testing.assert_allclose(weights[vocab.index("the")], table["The"], atol=1e-6)  # case-folded match
        else:  # fine-tuned: moved away from it
            assert not np.allclose(static_row, table["great"], atol=1e-6)
    with pytest.raises(CnnkitError, match="does not exist"):
        api.train("text-cls", str(reviews_csv), out=str(tmp_path / "r2"), embeddings=str(tmp_path / "nope.txt"), **FAST)


def test_word_vectors_that_cover_few_words_are_warned_about(reviews_csv, tmp_path, capsys):
    """A vectors file for another language or other tokens finds a few words: the run says so
    (before, only "1 of 20 vocabulary tokens found" among the start-up lines)."""
    few = tmp_path / "few.txt"
    few.write_text("great 0.1 0.2 0.3\n")
    api.train("text-cls", str(reviews_csv), out=str(tmp_path / "few"), embeddings=str(few), **FAST)
    assert "Warning: only 1 of the 18 vocabulary words (5.6 %) have a vector" in capsys.readouterr().err
    enough = tmp_path / "enough.txt"
    enough.write_text("".join(f"{w} 0.1 0.2 0.3\n" for w in ("great", "awful", "movie", "plot")))
    api.train("text-cls", str(reviews_csv), out=str(tmp_path / "enough"), embeddings=str(enough), **FAST)
    assert "Warning: only" not in capsys.readouterr().err


def test_cross_validation(reviews_csv, tmp_path):
    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "cv"), cv=3, **FAST)
    m = result.metrics
    assert m["cv"] == 3 and len(m["folds"]) == 3
    accs = [f["test_accuracy"] for f in m["folds"]]
    assert m["cv_accuracy_mean"] == pytest.approx(np.mean(accs), abs=1e-5)
    assert m["cv_accuracy_std"] == pytest.approx(np.std(accs), abs=1e-5)
    for i in (1, 2, 3):
        fold = json.loads((tmp_path / "cv" / f"fold-0{i}" / "metrics.json").read_text())
        assert fold["num_train"] + 0 < 120 and (tmp_path / "cv" / f"fold-0{i}" / "model.keras").exists()


def with_folds(table, out, fold):
    """`table` (text,label) with a `fold` column, row i (from 0) in fold `fold(i)`, written to `out`."""
    lines = table.read_text().splitlines()
    out.write_text("\n".join([lines[0] + ",fold"] + [f"{line},{fold(i)}" for i, line in enumerate(lines[1:])]) + "\n")
    return out


def test_cross_validation_on_predefined_folds(reviews_csv, tmp_path, capsys):
    """A table with a `fold` column: `--cv 3` tests fold i on the rows of fold i, and the
    validation split of each fold is a whole fold too; metrics name the folds' groups."""
    folded = with_folds(reviews_csv, tmp_path / "folded.csv", lambda i: i % 3 + 1)
    result = api.train("text-cls", str(folded), out=str(tmp_path / "cv"), cv=3, val_split=0.5, **FAST)
    assert [f["test_groups"] for f in result.metrics["folds"]] == [["1"], ["2"], ["3"]]
    assert result.metrics["cv_groups"] == "column 'fold' of folded.csv"
    page = (result.run_dir / "report.html").read_text()
    assert "<th>test groups</th>" in page and "whole groups (column &#x27;fold&#x27; of folded.csv)" in page
    err = capsys.readouterr().err
    assert "Groups: 3 in the training data (column 'fold' of folded.csv)" in err
    assert err.count("2 classes; train 40, test 40, val 40") == 3  # whole folds (val_split 0.5 of two)
    with pytest.raises(CnnkitError, match="--cv 4: the examples fall in 3 groups"):
        api.train("text-cls", str(folded), out=str(tmp_path / "cv4"), cv=4, **FAST)
    mixed = api.train("text-cls", str(folded), out=str(tmp_path / "mixed"), cv=4, sets=["data.group_column=none"],
                      **FAST)
    assert len(mixed.metrics["folds"]) == 4 and "cv_groups" not in mixed.metrics


def test_resnet1d_backbone_and_char_tokens(reviews_csv, tmp_path):
    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "run"), backbone="resnet1d",
                       sets=["preprocess.split=character", "model.backbone_args={stages: [1, 1], widths: [16, 32]}"], **FAST)
    assert result.config.preprocess.sequence_length > 20  # characters, not words


def test_wrong_modality_and_backbone(tmp_path):
    with pytest.raises(CnnkitError, match="holds arrays.*image-cls"):
        api.train("text-cls", "builtin:digits", out=str(tmp_path / "a"), **FAST)
    with pytest.raises(CnnkitError, match="is for image inputs, not text"):
        api.train("text-cls", out=str(tmp_path / "b"), backbone="resnet20", **FAST)


def test_read_word_vectors_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a 1 2 3\nb 1 2\n")
    with pytest.raises(CnnkitError, match="has 2 values, earlier lines 3"):
        text_features.read_word_vectors(bad, ["", "[UNK]", "a", "b"])
    matrix, hits = text_features.read_word_vectors(_ok(tmp_path), ["", "[UNK]", "a", "z"])
    assert hits == 1 and matrix.shape == (4, 3) and not matrix[0].any() and np.abs(matrix[3]).max() <= 0.25


def _ok(tmp_path):
    path = tmp_path / "ok.txt"
    path.write_text("a 1 2 3\nq 4 5 6\n")
    return path


@pytest.fixture
def tagged_csv(tmp_path):
    """Multi-label: each text names zero to three colours, its `labels` cell lists them with |."""
    rng = np.random.default_rng(0)
    colours, filler = ["red", "green", "blue"], ["a", "shirt", "with", "and", "some", "nice", "stripes", "hat"]
    rows = ["text,labels"]
    for _ in range(240):
        tags = [c for c in colours if rng.random() < 0.4]
        words = list(rng.choice(filler, 5)) + tags
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{'|'.join(rng.permutation(tags))}")
    path = tmp_path / "tagged.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_multi_label_csv_trains_a_sigmoid_head_and_predicts_label_sets(tagged_csv, tmp_path, capsys):
    result = api.train("text-cls", str(tagged_csv), out=str(tmp_path / "run"), epochs=12, verbose=0, val_split=0.2,
                       early_stopping=0, test_split=0.2)
    m = result.metrics
    assert json.loads((result.run_dir / "labels.json").read_text()) == ["blue", "green", "red"]
    assert "data:\n" in (result.run_dir / "config.yaml").read_text() and "multi_label: true" in (result.run_dir / "config.yaml").read_text()
    assert m["test_accuracy"] >= 0.8 and m["test_micro_f1"] >= 0.9  # exact match of the whole label set
    assert result.model.get_layer("head").activation == "sigmoid"
    report = (result.run_dir / "evaluation" / "report.txt").read_text()
    assert "exact-match accuracy" in report and not (result.run_dir / "evaluation" / "confusion.png").exists()
    (tmp_path / "a.txt").write_text("with some red nice hat blue stripes")
    (tmp_path / "b.txt").write_text("a nice shirt with some stripes")
    out = api.predict(str(result.run_dir), [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
    assert sorted(out[0]["labels"]) == ["blue", "red"] and out[1]["labels"] == []
    capsys.readouterr()
    assert cli.main(["predict", str(result.run_dir), str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]) == 0
    lines = capsys.readouterr().out.splitlines()  # input, the label set, the top k
    assert lines[0].split("\t")[1] == "blue|red" and lines[1].split("\t")[1] == "(no label)"
    evaluated = api.evaluate(str(result.run_dir), str(tagged_csv), out=str(tmp_path / "eval"))
    assert evaluated["accuracy"] >= 0.8 and "micro_f1" in evaluated


def test_multi_label_cross_validation_uses_plain_folds(tagged_csv, tmp_path):
    result = api.train("text-cls", str(tagged_csv), out=str(tmp_path / "cv"), epochs=1, verbose=0, cv=2)
    assert len(result.metrics["folds"]) == 2 and 0.0 <= result.metrics["cv_accuracy_mean"] <= 1.0


def test_members_train_apart_and_the_saved_model_averages_them(reviews_csv, tmp_path):
    """model.members=3: three networks trained one after the other (seeds 0, 1, 2), each with its
    own history and early stopping in RUN_DIR/member-NN, and a saved model that averages their
    probabilities and those of the naive-Bayes n-gram member (model.nb_member); metrics hold each
    member's own accuracy."""
    single = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "one"), epochs=1, verbose=0,
                       sets=["model.nb_member=false"])
    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "three"), epochs=8, verbose=0, val_split=0.2,
                       early_stopping=2, sets=["model.members=3", "model.members_val=same"])
    nb_layer = result.model.get_layer("nb_member").get_layer("naive_bayes_lr")
    assert nb_layer.trainable_weights == []
    assert result.model.count_params() == 3 * single.model.count_params() + nb_layer.count_params()
    epochs = []
    for i in (1, 2, 3):
        member_dir = result.run_dir / f"member-{i:02d}"
        assert (member_dir / "network.weights.h5").exists()
        assert not (member_dir / "checkpoints").exists()  # a finished member keeps its weights file alone
        epochs.append(len((member_dir / "history.csv").read_text().strip().splitlines()) - 1)
    assert sum(epochs) == len(result.history["val_accuracy"]) and all(1 <= e <= 8 for e in epochs)
    # no test split in this file: the validation texts are the ones scored
    # 24 validation texts, chance 0.5: one network of the defaults reached 0.79-1.0 over six seeds
    # (one of them 0.71 without subwords), so the bar is that the average learned, not a given figure
    assert len(result.metrics["member_val_accuracy"]) == 3 and result.metrics["val_accuracy"] >= 0.75
    assert 0.5 <= result.metrics["nb_member_val_accuracy"] <= 1.0

    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    members = tasks.get("text-cls").members_of(model)
    assert [m.name for m in members] == ["member_01", "member_02", "member_03"]
    with zipfile.ZipFile(result.run_dir / "model.keras") as archive:
        saved = []
        h5py.File(io.BytesIO(archive.read("model.weights.h5"))).visit(saved.append)
    assert saved and not [n for n in saved if "optimizer" in n]  # the members' training state stays out
    texts = np.array(["the movie was superb fun", "dull and boring acting", "the plot"], dtype=object)
    probs = np.stack([m.predict(texts, verbose=0) for m in members])
    assert probs.shape == (3, 3, 2)
    assert not np.allclose(probs[0], probs[1], atol=1e-3)  # initialised and trained apart
    nb = tasks.get("text-cls").nb_member_of(model).predict(texts, verbose=0)
    np.testing.assert_allclose(model.predict(texts, verbose=0), (probs.sum(0) + nb) / 4, atol=1e-5)


def test_an_ensemble_says_how_long_its_members_left_take(reviews_csv, tmp_path, capsys, monkeypatch):
    """Each member's epochs are announced on their own (training.RemainingTime); after the first
    member, one line gives the whole run's cost (when it reaches training.REMAINING_SAID_FROM)."""
    from cnnkit import training

    monkeypatch.setattr(training, "REMAINING_SAID_FROM", 0.0)
    api.train("text-cls", str(reviews_csv), out=str(tmp_path / "three"), sets=["model.members=3"], **FAST)
    said = [line for line in capsys.readouterr().err.splitlines() if " left take about " in line]
    assert len(said) == 1 and said[0].startswith("Member 1/3 took ") and ": the 2 left take about " in said[0]
    monkeypatch.setattr(training, "REMAINING_SAID_FROM", 1e9)
    api.train("text-cls", str(reviews_csv), out=str(tmp_path / "again"), sets=["model.members=2"], **FAST)
    assert " left take about " not in capsys.readouterr().err


def test_a_resumed_ensemble_reads_its_finished_members(reviews_csv, tmp_path):
    """A member with its network.weights.h5 is not trained again: a run stopped before member 2
    (its folder removed) trains member 2 alone when resumed; member 1 predicts as it did."""

    out = tmp_path / "run"
    first = api.train("text-cls", str(reviews_csv), out=str(out), sets=["model.members=2"], **FAST)
    texts = np.array(["the movie was superb fun", "dull and boring acting"], dtype=object)
    before = [m.predict(texts, verbose=0) for m in tasks.get("text-cls").members_of(first.model)]
    shutil.rmtree(out / "member-02")
    again = api.train(None, resume=str(out))
    after = [m.predict(texts, verbose=0) for m in tasks.get("text-cls").members_of(again.model)]
    np.testing.assert_allclose(after[0], before[0], atol=1e-6)
    assert again.metrics["epochs_run_this_call"] == 1  # member 2's one epoch, nothing of member 1
    assert (out / "member-02" / "network.weights.h5").exists()
    # member 1's epoch, trained by the first call, still counts in the total
    member_1 = json.loads((out / "member-01" / "epoch_seconds-backup.json").read_text())
    assert list(member_1) == ["0"]
    # three figures each rounded to 0.01 s: up to 0.015 apart (a CI run saw 2.51 against 2.52)
    assert again.metrics["train_seconds_total"] == pytest.approx(again.metrics["train_seconds"] + member_1["0"], abs=0.02)
    # the naive-Bayes member is fitted again (after member 1's weights are read) as before
    task = tasks.get("text-cls")
    np.testing.assert_allclose(task.nb_member_of(again.model).predict(texts, verbose=0),
                               task.nb_member_of(first.model).predict(texts, verbose=0), atol=1e-6)


@pytest.mark.parametrize("members", [1, 2])
def test_the_naive_bayes_member_is_fitted_before_any_epoch(reviews_csv, tmp_path, monkeypatch, capsys, members):
    """The member is fitted after the build and before training: its fit counts in a time budget,
    and a fit that fails stops the run before the networks' epochs, not after them."""
    from cnnkit.tasks.text_cls import TextClassification

    api.train("text-cls", str(reviews_csv), out=str(tmp_path / "ok"), sets=[f"model.members={members}"], **FAST)
    err = capsys.readouterr().err
    assert err.index("Naive-Bayes n-gram member") < err.index("Training kim_cnn")

    def fails(*args, **kwargs):
        raise MemoryError("no room for the n-gram counts")

    monkeypatch.setattr(TextClassification, "nb_member", fails)
    out = tmp_path / "fails"
    with pytest.raises(MemoryError):
        api.train("text-cls", str(reviews_csv), out=str(out), sets=[f"model.members={members}"], **FAST)
    assert "Training kim_cnn" not in capsys.readouterr().err
    assert not list(out.rglob("history.csv")) and not list(out.rglob("*.weights.h5"))


def test_rotated_members_train_on_multi_label_data(tagged_csv, tmp_path):
    """Label sets cannot be stratified by one class: rotated slices are plain shuffled ones, and the
    held-out texts are scored with their label sets. No naive-Bayes member (single-label data only)."""
    result = api.train("text-cls", str(tagged_csv), out=str(tmp_path / "ml"), epochs=2, verbose=0, val_split=0.2,
                       sets=["model.members=2"])
    assert result.config.data.multi_label and len(result.metrics["member_val_accuracy"]) == 2
    assert "val_micro_f1" in result.metrics and result.metrics["val_scored_by"]
    assert "nb_member" not in [layer.name for layer in result.model.layers]  # single-label data only


def test_member_splits_rotate_disjoint_validation_slices():
    """members_val=rotate: train and val pooled, member i holds out slice i (stratified), the
    members together train on every text, all adapt on the pool, the test split is untouched."""
    from cnnkit.tasks.base import Prepared

    x = np.array([f"text {i}" for i in range(100)], dtype=object)
    y = np.repeat([0, 1, 2, 3], 25)
    test = (np.array(["t"], dtype=object), np.array([0]))
    prepared = Prepared({"train": (x[:90], y[:90]), "val": (x[90:], y[90:]), "test": test},
                        {"train": list(x[:90]), "val": list(x[90:]), "test": ["t"]}, list("abcd"), [], "gen",
                        val_from_train=True)
    members, slices = api.member_splits(prepared, members=3, val_split=0.25, seed=1)
    assert len(members) == 3 and [len(s) for s in slices] == [25, 25, 25]
    assert len(set(np.concatenate(slices))) == 75  # disjoint
    for member, held in zip(members, slices):
        (xt, yt), (xv, yv) = member.splits["train"], member.splits["val"]
        assert sorted(list(xt) + list(xv)) == sorted(x) and not set(xt) & set(xv)
        assert list(xv) == list(np.concatenate([x[:90], x[90:]])[held]) == member.ids["val"]
        assert sorted(np.bincount(yv).tolist()) == [6, 6, 6, 7]  # stratified: 25 of each class in 4 slices
        assert member.splits["test"] is test and list(member.adapt_on) == list(x)
    again, _ = api.member_splits(prepared, members=5, val_split=0.25, seed=1)  # more members than slices
    assert list(again[4].splits["val"][0]) == list(members[0].splits["val"][0])
    tiny = Prepared({"train": (x[:4], y[:4]), "val": (x[4:5], y[4:5])}, {"train": list(x[:4]), "val": [x[4]]},
                    list("abcd"), [], "gen", val_from_train=True)
    few, held = api.member_splits(tiny, members=3, val_split=0.1, seed=0)  # 5 texts: 5 slices, not 10
    assert [len(h) for h in held] == [1, 1, 1] and len(set(np.concatenate(held))) == 3


def test_rotated_members_score_validation_on_texts_they_did_not_train_on(reviews_csv, tmp_path):
    """members_val=rotate (the default) on a file without val: two members hold out two different slices; the
    run's val metrics score each held-out text with the member that did not see it, and the saved
    model (one vocabulary for both) still averages the members (and the naive-Bayes member)."""

    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "rot"), epochs=3, verbose=0, val_split=0.2,
                       sets=["model.members=2"])  # rotate is the default
    m = result.metrics
    assert m["val_scored_by"].startswith("the members that held") and len(m["member_val_accuracy"]) == 2
    evaluated = json.loads((result.run_dir / "evaluation" / "metrics.json").read_text())
    support = sum(v["support"] for k, v in evaluated["per_class"].items() if k in ("pos", "neg"))
    assert support == 48  # two slices of the 120 texts' 5 (1 / val_split) slices, 24 each
    assert abs(m["val_accuracy"] - np.mean(m["member_val_accuracy"])) < 1e-6  # equal slices, one member each
    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    texts = np.array(["the movie was superb fun", "dull and boring acting"], dtype=object)
    probs = np.stack([mm.predict(texts, verbose=0) for mm in tasks.get("text-cls").members_of(model)])
    nb = tasks.get("text-cls").nb_member_of(model).predict(texts, verbose=0)  # model.nb_member: one more
    np.testing.assert_allclose(model.predict(texts, verbose=0), (probs.sum(0) + nb) / 3, atol=1e-5)
    with pytest.raises(CnnkitError, match="model.members_val must be one of same, rotate"):
        api.train("text-cls", str(reviews_csv), out=str(tmp_path / "bad"), sets=["model.members_val=spin"], **FAST)


def test_members_of_grouped_data_share_a_validation_split_of_whole_groups(reviews_csv, tmp_path, capsys):
    """With groups (a `fold` column), rotated slices would cut through them: the members share
    the one held-out split of whole groups, and the run says so."""
    folded = with_folds(reviews_csv, tmp_path / "folded.csv", lambda i: i % 5)
    result = api.train("text-cls", str(folded), out=str(tmp_path / "run"), epochs=1, verbose=0, val_split=0.2,
                       sets=["model.members=2"])
    assert "val_scored_by" not in result.metrics
    err = capsys.readouterr().err
    assert "The members share one validation split" in err and "train 96, val 24" in err  # one fold of five


def test_members_backbone_args_give_each_member_its_own_network(reviews_csv, tmp_path):
    """model.members_backbone_args: member i's backbone_args updated with entry i (cycled); a
    resumed run builds each finished member as it was trained; one network takes entry 1 into
    its backbone_args; anything but a list of mappings is refused."""

    def widths(network):
        return sorted(int(layer.name[len("conv_w"):]) for layer in network._flatten_layers() if layer.name.startswith("conv_w"))

    out = tmp_path / "run"
    sets = ["model.members=3", "model.members_backbone_args=[{widths: [2, 3]}, {widths: [1], filters: 8}]"]
    first = api.train("text-cls", str(reviews_csv), out=str(out), sets=sets, **FAST)
    assert [widths(m) for m in tasks.get("text-cls").members_of(first.model)] == [[2, 3], [1], [2, 3]]
    assert first.config.model.backbone_args == {}  # the run's own setting, as given
    shutil.rmtree(out / "member-03")
    again = api.train(None, resume=str(out))  # members 1 and 2 read back into networks of their own widths
    assert [widths(m) for m in tasks.get("text-cls").members_of(again.model)] == [[2, 3], [1], [2, 3]]

    cfg = api.resolve_config("text-cls", str(reviews_csv), sets=sets + ["model.members=1", "model.backbone_args={filters: 4}"])
    assert cfg.model.backbone_args == {"filters": 4, "widths": [2, 3]} and cfg.model.members_backbone_args == []
    with pytest.raises(CnnkitError, match="list of mappings"):
        api.resolve_config("text-cls", str(reviews_csv), sets=["model.members=2", "model.members_backbone_args=[3, 4]"])


def test_members_is_a_text_option_with_clear_errors(reviews_csv, tmp_path):
    with pytest.raises(CnnkitError, match="text-cls option"):
        api.train("image-cls", out=str(tmp_path / "img"), sets=["model.members=2"], **FAST)
    with pytest.raises(CnnkitError, match="model.members must be > 0"):
        api.train("text-cls", str(reviews_csv), out=str(tmp_path / "zero"), sets=["model.members=0"], **FAST)
    run = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "two"), sets=["model.members=2"], **FAST)
    from cnnkit import explain

    with pytest.raises(CnnkitError, match="model.members.*cnnkit explain"):
        explain.feature_maps(str(run.run_dir), ["the movie was fun"])
    with pytest.raises(CnnkitError, match="ensemble"):
        api.train("text-cls", str(reviews_csv), out=str(tmp_path / "from"), from_run=str(run.run_dir), **FAST)


def test_members_start_from_the_same_word_vectors(reviews_csv, tmp_path, monkeypatch):
    """Both members start from the file's vectors, and the file is read once for both."""
    vecs = tmp_path / "vectors.txt"
    vecs.write_text("great 0.5 -0.25 1.0\nawful -1.0 0.75 0.0\n")
    reads = []
    read = text_features.read_word_vectors
    monkeypatch.setattr(text_features, "read_word_vectors", lambda *a, **k: reads.append(a[0]) or read(*a, **k))
    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "run"), embeddings=str(vecs),
                       sets=["preprocess.embeddings_mode=multichannel", "model.members=2"], **FAST)
    vocab = result.model.get_layer("vectorize").get_vocabulary()
    for member in ("member_01", "member_02"):  # frozen in both members: the file's vector
        network = result.model.get_layer(member)
        weights = network.get_layer("embedding_static").get_weights()[0]
        np.testing.assert_allclose(weights[vocab.index("great")], [0.5, -0.25, 1.0], atol=1e-6)
        assert "embedding" in {layer.name for layer in network.layers}
    assert reads == [str(vecs)]


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
def test_an_ensemble_exports_and_agrees_with_its_model(reviews_csv, tmp_path, fmt):
    """The averaging model goes through `cnnkit export` as one model: SavedModel from strings,
    TFLite from token ids (one vectorizer before the members)."""
    from cnnkit.export import export

    run = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "run"), sets=["model.members=2"], **FAST)
    record = export(str(run.run_dir), fmt, out=str(tmp_path / "export"))
    assert record["max_abs_difference"] < 1e-3 and record["sample"] > 0, record


def test_the_naive_bayes_member_learns_from_the_texts_the_networks_train_on(reviews_csv, tmp_path, capsys):
    """model.nb_member (on by default for ensembles) fits NBSVM on the networks' training texts (train
    and val pooled for rotated slices), says so, and is left out of the rotated validation figures
    and the members' list; off, the ensemble is its networks alone."""
    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "rotate"), sets=["model.members=2"], **FAST)
    err = capsys.readouterr().err
    assert "Naive-Bayes n-gram member (model.nb_member): fitted on " in err
    fitted_on = int(err.split("fitted on ")[1].split(" texts")[0])
    assert fitted_on > result.metrics["num_train"]  # the pool: each network's train and its val slice
    assert len(result.metrics["member_val_accuracy"]) == 2 and "nb_member_val_accuracy" not in result.metrics
    assert [m.name for m in tasks.get("text-cls").members_of(result.model)] == ["member_01", "member_02"]
    assert result.config.model.nb_member is True and result.metrics["nb_member_fit_seconds"] >= 0
    off = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "off"),
                    sets=["model.members=2", "model.nb_member=false"], **FAST)
    assert "nb_member" not in [layer.name for layer in off.model.layers]
    assert "Naive-Bayes" not in capsys.readouterr().err


def test_older_ensembles_read_without_the_naive_bayes_member(tmp_path):
    import yaml

    from cnnkit import runs

    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"task": "text-cls", "model": {"members": 5}}))
    assert api.config_from_run(runs.read_run(tmp_path)[1]).model.nb_member is False
    assert api.resolve_config("text-cls", None, None, None).model.nb_member is True


def test_one_network_is_averaged_with_the_naive_bayes_member(reviews_csv, tagged_csv, tmp_path, capsys):
    """`cnnkit train text-cls` (one network): the saved model averages the network's probabilities
    with a naive-Bayes member fitted on the training split (not the val texts, whose figures stay
    those of unseen texts); the network's layers stay at the top level (explain, featuremaps,
    --from); metrics hold the network alone and the member alone. Not with the n-gram branch
    (long texts), for multi-label data, nor with model.nb_member=false."""
    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "one"), **FAST)
    assert f"fitted on {result.metrics['num_train']} texts" in capsys.readouterr().err
    names = [layer.name for layer in result.model.layers]
    assert {"embedding", "head", "nb_member", "members_average"} <= set(names)
    m = result.metrics
    assert {"network_val_accuracy", "nb_member_val_accuracy"} <= set(m) and m["nb_member_fit_seconds"] >= 0
    task = tasks.get("text-cls")
    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    texts = np.array(["the movie was superb fun", "dull and boring acting"], dtype=object)
    network = keras.Model(model.input, model.get_layer("head").output)  # the network alone, as saved
    nb = task.nb_member_of(model).predict(texts, verbose=0)
    np.testing.assert_allclose(model.predict(texts, verbose=0), (network.predict(texts, verbose=0) + nb) / 2, atol=1e-5)
    branch = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "branch"),
                       sets=["preprocess.ngram_branch=true"], **FAST)
    tagged = api.train("text-cls", str(tagged_csv), out=str(tmp_path / "tagged"), **FAST)
    off = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "off"), sets=["model.nb_member=false"], **FAST)
    for other in (branch, tagged, off):
        assert "nb_member" not in [layer.name for layer in other.model.layers]


def test_words_outside_the_vocabulary_read_their_subwords(reviews_csv, tmp_path):
    """With subwords (the default for word tokens), a word that training never saw gets the vectors
    of its character n-grams in the saved model (single network and ensemble alike): two texts that
    differ in such a word alone are told apart, which [UNK] alone could not. The ensemble's members,
    its explanation and its TFLite export (token ids and the unknown words' n-gram ids) read them."""
    from cnnkit import explain, export

    result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "two"), sets=["model.members=2"], **FAST)
    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    assert text_features.unknown_words_layer(model) is not None
    members = [layer for layer in model.layers if layer.name.startswith("member_")]
    assert [len(m.inputs) for m in members] == [2, 2]
    texts = np.array(["the movie was superbly", "the movie was qwxzzy", "the movie was superbly"], dtype=object)
    assert (model.get_layer("vectorize")(texts).numpy()[:, 4] == 1).all()  # both words unknown
    probs = model.predict(texts, verbose=0)
    assert not np.allclose(probs[0], probs[1], atol=1e-6) and np.allclose(probs[0], probs[2], atol=1e-6)
    each = np.stack([m.predict(texts, verbose=0) for m in tasks.get("text-cls").members_of(model)])
    nb = tasks.get("text-cls").nb_member_of(model).predict(texts, verbose=0)
    np.testing.assert_allclose(probs, (each.sum(0) + nb) / 3, atol=1e-5)
    tokens, scores, _ = explain.token_saliency(model, "the movie was superbly")
    assert "[UNK:superbly]" in tokens and len(scores) == len(tokens)  # the word the model read by its n-grams
    record = export.export(str(result.run_dir), "tflite")
    assert record["agreement"] == 1.0 and "unknown_subword_ids" in record["input"]
    assert json.loads((result.run_dir / "export" / "tokenizer.json").read_text())["unknown_subword_ids"]["buckets"] == 10_000

    plain = api.train("text-cls", str(reviews_csv), out=str(tmp_path / "plain"), sets=["preprocess.subwords=0"], **FAST)
    assert text_features.unknown_words_layer(plain.model) is None
    probs = plain.model.predict(texts, verbose=0)
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-6)  # [UNK] alone: the same text


def test_training_words_cut_from_the_vocabulary_train_with_their_subwords(reviews_csv, tmp_path):
    """Where the vocabulary leaves training words out (here max_tokens), the training model reads
    their n-gram ids beside [UNK], as the saved model does at prediction: the training batches
    carry them exactly at the [UNK] steps. A full vocabulary keeps the one-input training model."""
    task = tasks.get("text-cls")
    cfg = api.resolve_config("text-cls", str(reviews_csv), sets=["preprocess.max_tokens=10"])
    prepared = api.load_prepared(cfg, task)
    train_model, _ = task.build(cfg, prepared)
    assert [t.name for t in train_model.inputs] == ["token_ids", "unknown_subword_ids"]
    (ids, grams), _ = next(iter(task.dataset(*prepared.splits["train"], cfg, training=True)))
    ids, grams = ids.numpy(), grams.numpy()
    assert (ids == 1).sum() > 0 and ((grams > 0).any(-1) == (ids == 1)).all()
    # the same n-grams as the saved model's layer computes for those texts
    x, _ = prepared.splits["train"]
    first = task.dataset(x[:4], prepared.splits["train"][1][:4], cfg, training=False)
    (ids4, grams4), _ = next(iter(first))
    unknown = text_features.UnknownWordSubwords.of(task._vectorizer, cfg.preprocess.subwords)
    import tensorflow as tf

    np.testing.assert_array_equal(grams4.numpy(), unknown([tf.constant(x[:4].astype(str)), ids4]).numpy())

    full = api.resolve_config("text-cls", str(reviews_csv))
    train_model, _ = task.build(full, api.load_prepared(full, task))
    assert [t.name for t in train_model.inputs] == ["token_ids"]

    # a run and an ensemble train, save and reload so
    for sets in (["preprocess.max_tokens=10"], ["preprocess.max_tokens=10", "model.members=2"]):
        result = api.train("text-cls", str(reviews_csv), out=str(tmp_path / str(len(sets))), sets=sets, **FAST)
        again = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
        texts = np.array(["the movie was superbly", "the plot was dull"], dtype=object)
        np.testing.assert_allclose(again.predict(texts, verbose=0), result.model.predict(texts, verbose=0), atol=1e-6)


@pytest.fixture
def uneven_csv(tmp_path):
    """160 labelled texts of 1 to 24 words."""
    rng = np.random.default_rng(1)
    good, bad = ["great", "superb", "lovely", "fun"], ["awful", "boring", "dull", "bad"]
    filler = ["the", "movie", "was", "plot", "and", "acting", "quite", "really", "long", "film"]
    rows = ["text,label"]
    for i in range(160):
        label = "pos" if i % 2 else "neg"
        words = list(rng.choice(filler, int(rng.integers(0, 24)))) + [rng.choice(good if label == "pos" else bad)]
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{label}")
    path = tmp_path / "uneven.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_padding_margin_is_the_widest_filter_of_kims_cnn_and_none_where_padding_counts():
    from cnnkit import backbones
    from cnnkit.tasks.text_cls import padding_margin

    assert padding_margin(backbones.get("kim_cnn", (None, 8))) == 5
    assert padding_margin(backbones.get("kim_cnn", (None, 8), widths=(2, 7), filters=4)) == 7
    assert padding_margin(backbones.get("resnet1d", (16, 8))) is None  # strides, batch norm, feature maps out

    def one(*middle):
        x = inputs = keras.Input((None, 8))
        for layer in middle:
            x = layer(x)
        return keras.Model(inputs, x)

    L = keras.layers
    assert padding_margin(one(L.Conv1D(4, 3, padding="same"), L.GlobalMaxPooling1D())) == 3
    assert padding_margin(one(L.Conv1D(4, 3, padding="same"), L.GlobalAveragePooling1D())) is None  # an average
    assert padding_margin(one(L.Conv1D(4, 3), L.GlobalMaxPooling1D())) is None  # valid padding
    assert padding_margin(one(L.Conv1D(4, 3, padding="causal"), L.GlobalMaxPooling1D())) is None
    assert padding_margin(one(L.Conv1D(4, 3, padding="same", dilation_rate=2), L.GlobalMaxPooling1D())) is None
    stacked = one(L.Conv1D(4, 3, padding="same"), L.Conv1D(4, 3, padding="same"), L.GlobalMaxPooling1D())
    assert padding_margin(stacked) is None  # the second convolution reads the first's edge


def test_kims_cnn_gives_the_same_probabilities_on_ids_cut_to_the_longest_text_and_the_margin(uneven_csv):
    """The premise of length_buckets: a batch of token ids cut to its longest text plus the widest
    filter gives what the ids padded to sequence_length give; a step less does not."""
    from cnnkit.tasks.text_cls import padded_steps

    task = tasks.get("text-cls")
    cfg = api.resolve_config("text-cls", str(uneven_csv), sets=["preprocess.sequence_length=40",
                                                                 "preprocess.length_buckets=8"])
    prepared = api.load_prepared(cfg, task)
    train_model, _ = task.build(cfg, prepared)
    assert task._padding_margin == 5
    assert train_model.inputs[0].shape == (None, None)
    # a trained-like padding vector and biases, so that all-padding windows are not all zeros
    rng = np.random.default_rng(0)
    for w in train_model.weights:  # the head's kernel small: probabilities far from 0 and 1
        scale = 0.002 if tuple(w.shape) == (300, 2) else 0.5
        w.assign(rng.normal(0, scale, w.shape).astype("float32"))
    ids = task._token_ids(prepared.splits["train"][0])
    short = ids[np.count_nonzero(ids, axis=1) <= 6][:8]  # 4 words at most between the boundaries
    assert len(short) == 8
    full = train_model(short, training=False).numpy()
    steps = int(padded_steps(short, 5))
    assert steps <= 11 < ids.shape[1]
    np.testing.assert_allclose(train_model(short[:, :steps], training=False).numpy(), full, atol=1e-5)
    assert not np.allclose(train_model(short[:, :steps - 1], training=False).numpy(), full, atol=1e-5)


def test_length_buckets_batch_texts_of_like_lengths_and_train(uneven_csv, tmp_path):
    """With length_buckets, training batches of a Kim's CNN hold texts of one length quantile, every
    text once an epoch, cut to their longest text plus the margin; the saved model takes strings.
    By default batches of random texts are padded to sequence_length; length_buckets with a
    backbone that sees the padding (resnet1d) is refused."""
    task = tasks.get("text-cls")
    sets = ["preprocess.sequence_length=40", "train.batch_size=4", "preprocess.length_buckets=8"]
    cfg = api.resolve_config("text-cls", str(uneven_csv), sets=sets)
    prepared = api.load_prepared(cfg, task)
    task.build(cfg, prepared)
    x, y = prepared.splits["train"]
    lengths = np.count_nonzero(task._token_ids(x), axis=1)
    bounds = np.unique(np.quantile(lengths, np.arange(1, 3) / 3).astype(int))  # 3: one quantile a 10 batches
    ds = task.dataset(x, y, cfg, training=True)
    epochs = [[(ids.numpy(), labels.numpy()) for ids, labels in ds] for _ in range(2)]
    assert len(epochs[0]) == int(ds.cardinality())
    for batches in epochs:
        assert sum(len(labels) for _, labels in batches) == len(y)
        for ids, _ in batches:
            n = np.count_nonzero(ids, axis=1)
            assert len(set(np.searchsorted(bounds, n))) == 1  # one quantile
            assert ids.shape[1] == min(40, n.max() + 5)
    assert any(ids.shape[1] < 20 for ids, _ in epochs[0])
    assert [len(labels) for _, labels in epochs[0]] != [len(labels) for _, labels in epochs[1]] or \
        not all(np.array_equal(a[0], b[0]) for a, b in zip(*epochs))  # reshuffled each epoch
    result = api.train("text-cls", str(uneven_csv), out=str(tmp_path / "run"), sets=sets, **FAST)
    again = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    texts = np.array(["the movie was superb fun", "dull"], dtype=object)
    np.testing.assert_allclose(again.predict(texts, verbose=0), result.model.predict(texts, verbose=0), atol=1e-6)

    default = api.resolve_config("text-cls", str(uneven_csv), sets=sets[:2])  # off by default
    train_model, _ = task.build(default, api.load_prepared(default, task))
    assert default.preprocess.length_buckets == 0 and train_model.inputs[0].shape == (None, 40)
    ids, _ = next(iter(task.dataset(x, y, default, training=True)))
    assert ids.shape == (4, 40)
    refused = api.resolve_config("text-cls", str(uneven_csv), sets=sets[:2] + ["model.backbone=resnet1d",
                                                                                "preprocess.length_buckets=4"])
    with pytest.raises(CnnkitError, match="length_buckets=4 cuts the padding.*kim_cnn"):
        task.build(refused, api.load_prepared(refused, task))
