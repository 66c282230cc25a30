"""cnnkit explain (Grad-CAM, token saliency) and cnnkit featuremaps, for the three tasks."""
import json
from pathlib import Path

import keras
import numpy as np
import pytest

import cnnkit
from cnnkit import explain
from cnnkit.cli import main as cli_main
from cnnkit.errors import CnnkitError
from tests.conftest import write_image


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    return cnnkit.train("image-cls", out=str(tmp_path_factory.mktemp("img") / "run"), epochs=3, limit=600, verbose=0)


def test_grad_cam_follows_where_the_evidence_is():
    """A model whose class-1 score is the mean of the top-left quarter's pixels: the Grad-CAM of
    class 1 lights up the top-left and nothing else."""
    from cnnkit.blocks import ClassifierHead

    inputs = keras.Input((8, 8, 1))
    backbone_in = keras.Input((8, 8, 1))
    mask = np.zeros((1, 8, 8, 1), "float32")
    mask[:, :4, :4] = 1.0
    fm = keras.layers.Lambda(lambda t: keras.ops.concatenate([t * mask, t * (1 - mask) * 0.0], axis=-1))(backbone_in)
    backbone = keras.Model(backbone_in, fm, name="toy_backbone")
    x = keras.layers.Identity(name="front")(inputs)
    head = ClassifierHead(2, name="head")
    model = keras.Model(inputs, head(backbone(x)))
    head.dense.set_weights([np.array([[0.0, 5.0], [0.0, 0.0]], "float32"), np.zeros(2, "float32")])
    cam, probs = explain.grad_cam(model, np.ones((1, 8, 8, 1), "float32"), class_index=1)
    assert cam.shape == (8, 8)
    assert cam[:4, :4].min() == pytest.approx(1.0) and cam[4:, :].max() == 0.0 and cam[:, 4:].max() == 0.0


def test_image_explain_and_featuremaps_cli(image_run, tmp_path, capsys):
    img = write_image(tmp_path / "seven.png", np.random.default_rng(0).integers(0, 255, (12, 12), dtype=np.uint8))
    assert cli_main(["explain", str(image_run.run_dir), str(img), "--label", "7"]) == 0
    line = capsys.readouterr().out.strip().split("\t")
    assert line[1].startswith("7 ") and Path(line[2]).stat().st_size > 2000
    assert cli_main(["featuremaps", str(image_run.run_dir), str(img), "--channels", "4"]) == 0
    files = sorted((image_run.run_dir / "featuremaps" / "seven.png").glob("*.png"))
    assert [f.name for f in files][:2] == ["01-stem_conv.png", "02-stage1_block1.png"] and len(files) == 10
    with pytest.raises(CnnkitError, match="not a class"):
        explain.explain(str(image_run.run_dir), [str(img)], label="cat")


def test_text_saliency_marks_the_word_the_model_uses(tmp_path):
    rows = [("the film was " + w + " and long", label) for w in ("great", "superb", "fine") for label in ["pos"]] * 30
    rows += [("the film was " + w + " and long", "neg") for w in ("awful", "boring", "bad")] * 30
    (tmp_path / "data").mkdir()
    import csv

    with open(tmp_path / "data" / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    run = cnnkit.train("text-cls", str(tmp_path / "data"), out=str(tmp_path / "run"), epochs=8, verbose=0, seed=1)
    tokens, scores, probs = explain.token_saliency(run.model, "the film was superb and long")
    assert tokens == ["[start]", "the", "film", "was", "superb", "and", "long", "[end]"]  # preprocess.boundaries
    assert tokens[int(np.argmax(scores))] == "superb"
    result = explain.explain(str(run.run_dir), ["the film was awful and long"])
    page = Path(result[0]["file"]).read_text()
    assert result[0]["label"] == "neg" and "awful" in page and "<script" not in page


def test_text_saliency_of_an_ensemble(tmp_path):
    """model.members=2 (the recipes train 5): the saliency is the members' mean gradient x input,
    the probabilities the saved model's average; before, explain refused ensembles."""
    rows = [("the film was " + w + " and long", "pos") for w in ("great", "superb", "fine")] * 30
    rows += [("the film was " + w + " and long", "neg") for w in ("awful", "boring", "bad")] * 30
    (tmp_path / "data").mkdir()
    import csv

    with open(tmp_path / "data" / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    run = cnnkit.train("text-cls", str(tmp_path / "data"), out=str(tmp_path / "run"), epochs=8, verbose=0, seed=1,
                       sets=["model.members=2"])
    text = "the film was superb and long"
    tokens, scores, probs = explain.token_saliency(run.model, text)
    assert tokens[int(np.argmax(scores))] == "superb" and scores.max() == 1.0
    np.testing.assert_allclose(probs, run.model.predict(np.array([text], dtype=object), verbose=0)[0], atol=1e-5)
    result = explain.explain(str(run.run_dir), ["the film was awful and long"])
    assert result[0]["label"] == "neg" and "awful" in Path(result[0]["file"]).read_text()


def test_speech_grad_cam_on_the_spectrogram(tmp_path):
    run = cnnkit.train("speech-cls", out=str(tmp_path / "run"), epochs=1, verbose=0)
    clip = sorted((Path(cnnkit.__file__).parent / "_data" / "spoken_digits" / "test" / "3").glob("*.wav"))[0]
    result = explain.explain(str(run.run_dir), [str(clip)])
    assert Path(result[0]["file"]).stat().st_size > 2000 and 0 <= result[0]["probability"] <= 1
    maps = explain.feature_maps(str(run.run_dir), [str(clip)], max_channels=2)
    assert len(maps[0]["files"]) >= 3
