"""image-cls preparation: the training split's order and the image streams of `--cache disk|none`."""
from pathlib import Path

import numpy as np
import pytest

from cnnkit import api, tasks
from cnnkit.datasets.image import read_image_files


@pytest.mark.parametrize("cache", ["disk", "none"])
def test_train_split_is_mixed_and_each_image_keeps_its_label(image_folder, tmp_path, monkeypatch, cache):
    """A folder is listed class by class; a disk cache is read back in the order it was written
    and shuffled only within a buffer, so the training split must be written in a random order
    (once, a 10x CIFAR-10 folder trained to 60 % instead of 80 % with the classes in runs)."""
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "cache"))
    cfg = api.resolve_config("image-cls", str(image_folder), cache=cache)
    task = tasks.get("image-cls")
    prepared = api.prepare(cfg, task, api.load_data(cfg, task))
    x, y = prepared.splits["train"]
    assert len(set(y[: len(y) // 3].tolist())) > 1, "the first third of the split holds one class"
    size = tuple(cfg.preprocess.image_size)
    streamed = list(x.with_labels(y).as_numpy_iterator())
    assert len(streamed) == len(y) == len(prepared.ids["train"])
    for (image, label), path in zip(streamed, prepared.ids["train"]):
        assert prepared.class_names[label] == Path(path).parent.name
        np.testing.assert_array_equal(image, read_image_files([path], cfg.preprocess.channels, size, verbose=False)[0][0])


def test_flip_tta_averages_the_image_and_its_mirror_and_reports_both(image_folder, tmp_path):
    import keras

    from cnnkit.features.image import without_tta

    result = api.train("image-cls", str(image_folder), out=str(tmp_path / "run"), backbone="resnet8", epochs=2,
                       verbose=0, sets=["preprocess.tta=flip", "preprocess.flip=horizontal"])
    assert {"val_accuracy", "val_accuracy_without_tta"} <= set(result.metrics)  # this folder has no test split
    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    images = np.random.default_rng(1).integers(0, 255, (4, 12, 12, 3)).astype("float32")
    mirrored = images[:, :, ::-1]
    probs = model.predict(images, verbose=0)
    # the mean over both views cannot tell an image from its mirror image ...
    np.testing.assert_allclose(probs, model.predict(mirrored, verbose=0), atol=1e-5)
    # ... and is the mean of the single-view network's two predictions
    plain = without_tta(model)
    expected = (plain.predict(images, verbose=0) + plain.predict(mirrored, verbose=0)) / 2
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert not np.allclose(plain.predict(images, verbose=0), plain.predict(mirrored, verbose=0), atol=1e-3)
    # cnnkit explain: Grad-CAM of the unflipped view, the class and probability of the saved model
    from cnnkit import explain

    image_path = str(next(image_folder.glob("*/*.png")))
    (row,) = explain.explain(str(result.run_dir), [image_path], out=str(tmp_path / "explain"))
    x = api.load_run(str(result.run_dir))[0].predict(read_image_files([image_path], 3, (12, 12), verbose=False)[0],
                                                     verbose=0)[0]
    assert Path(row["file"]).exists() and abs(row["probability"] - float(x.max())) < 1e-4  # rounded to 4 places


def test_flip_tta_needs_flips_in_training(image_folder, tmp_path):
    from cnnkit.errors import CnnkitError

    with pytest.raises(CnnkitError, match="preprocess.tta=flip .* preprocess.flip=none"):
        api.train("image-cls", str(image_folder), out=str(tmp_path / "run"), backbone="resnet8", epochs=1,
                  verbose=0, sets=["preprocess.tta=flip", "preprocess.flip=none"])
    assert not (tmp_path / "run" / "model.keras").exists()


def test_airbench_whitening_stem_is_fitted_to_the_training_images(image_folder, tmp_path):
    """The whitening stem leaves build fitted to the normalised training patches (not its
    identity start): the covariance of its first 12 outputs over those patches is the identity."""
    import keras

    from cnnkit.blocks.whitening import PatchWhitening

    cfg = api.resolve_config("image-cls", str(image_folder), backbone="airbench",
                             sets=["model.backbone_args.widths=[4,8,8]"])
    task = tasks.get("image-cls")
    prepared = api.prepare(cfg, task, api.load_data(cfg, task))
    train_model, _ = task.build(cfg, prepared)
    (stem,) = [l for l in train_model._flatten_layers() if isinstance(l, PatchWhitening)]
    x = prepared.splits["train"][0].astype("float32")
    normalized = keras.ops.convert_to_numpy(train_model.get_layer("normalize")(x))
    y = keras.ops.convert_to_numpy(stem(normalized)).reshape(-1, 24)[:, :12]
    np.testing.assert_allclose(y.T @ y / len(y), np.eye(12), atol=0.05)


def test_flip_shift_tta_weights_the_six_views_as_airbench(image_folder, tmp_path):
    import keras

    from cnnkit.features.image import ImageShift, tta_views, without_tta

    result = api.train("image-cls", str(image_folder), out=str(tmp_path / "run"), backbone="resnet8", epochs=1,
                       verbose=0, sets=["preprocess.tta=flip_shift", "preprocess.flip=horizontal",
                                        "preprocess.cutout=0.25"])  # cutout trains in the graph, left out of the saved model
    assert {"val_accuracy", "val_accuracy_without_tta"} <= set(result.metrics)
    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    assert not [layer for layer in model.layers if layer.name.startswith("aug_")]
    assert tta_views(model) == 6 and tta_views(without_tta(model)) == 1
    images = np.random.default_rng(1).integers(0, 255, (3, 12, 12, 3)).astype("float32")
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    up_left, down_right = padded[:, 2:, 2:], padded[:, :-2, :-2]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ImageShift(1)(images)), up_left)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ImageShift(-1)(images)), down_right)
    plain = without_tta(model)
    p = lambda x: plain.predict(x, verbose=0)  # noqa: E731
    mirror = lambda x: x[:, :, ::-1]  # noqa: E731
    expected = (0.25 * (p(images) + p(mirror(images)))
                + 0.125 * (p(up_left) + p(mirror(up_left)) + p(down_right) + p(mirror(down_right))))
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-5)
    with pytest.raises(ValueError, match="shift"):
        ImageShift(2)


def test_cutout_fills_one_square_inside_each_image_with_the_mean_colour_in_training_only():
    import keras

    from cnnkit.features.image import Cutout

    images = np.random.default_rng(2).uniform(0, 255, (16, 12, 10, 3)).astype("float32")
    layer = Cutout(0.25, seed=4)  # 3 x 2 pixels (0.25 of 12 and of 10, rounded)
    out = keras.ops.convert_to_numpy(layer(images, training=True))
    mean = images.mean(axis=(0, 1, 2))
    changed = (out != images).any(axis=-1)
    corners = set()
    for image, mask in zip(out, changed):
        rows, cols = np.nonzero(mask)
        assert mask.sum() == 6 and np.ptp(rows) == 2 and np.ptp(cols) == 1  # one 3 x 2 square
        np.testing.assert_allclose(image[mask], np.broadcast_to(mean, (6, 3)), rtol=1e-5)
        corners.add((rows.min(), cols.min()))
    assert len(corners) > 4, "the squares should be placed at random, not in one place"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images)), images)  # inference: identity
    whole = keras.ops.convert_to_numpy(Cutout(1.0)(images, training=True))
    np.testing.assert_allclose(whole, np.broadcast_to(mean, images.shape), rtol=1e-5)


def test_cutout_config_round_trips_and_refuses_sizes_outside_0_1(tmp_path):
    import keras

    from cnnkit.features.image import Cutout

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, Cutout(0.5, seed=3, name="aug_cutout")(inputs))
    model.save(tmp_path / "m.keras")
    layer = keras.models.load_model(tmp_path / "m.keras", safe_mode=True).get_layer("aug_cutout")
    assert isinstance(layer, Cutout) and (layer.size, layer.seed) == (0.5, 3)
    for size in (0, 1.5):
        with pytest.raises(ValueError, match="fraction of the image side"):
            Cutout(size)


def test_cutout_outside_0_1_is_refused_before_training_with_the_fix(image_folder, tmp_path):
    from cnnkit.errors import CnnkitError

    with pytest.raises(CnnkitError, match=r"preprocess.cutout .* Received: 1.5. Try 0.25"):
        api.train("image-cls", str(image_folder), out=str(tmp_path / "run"), backbone="resnet8", epochs=1, verbose=0,
                  sets=["preprocess.cutout=1.5"])
    assert not (tmp_path / "run" / "model.keras").exists()


def test_auto_backbone_from_random_weights_names_the_pretrained_start(capsys):
    """Images over 64 pixels get MobileNetV2 from random weights under `backbone: auto`; the log
    says so and names --weights imagenet. A backbone given by name or small images: no such line."""
    api.summary("image-cls", image_size=[72, 72])
    assert "Backbone auto: mobilenet_v2 for 72x72 images, from random weights; --weights imagenet" in capsys.readouterr().err
    api.summary("image-cls", image_size=[72, 72], backbone="mobilenet_v2")
    api.summary("image-cls", image_size=[32, 32])
    assert "Backbone auto" not in capsys.readouterr().err
