"""cnnkit.features.image: the train-time augmentation stack (flip, translation, rotation, zoom,
cutout) changes images in training only, and a run trained with every option reloads."""
import keras
import numpy as np
import pytest

from cnnkit import api, tasks
from cnnkit.features.image import augmentation_layers


def _images(n=4, size=16):
    """n (size, size, 3) float32 images in [0, 255] with an off-centre bright square: no
    flip, shift, turn or zoom of them leaves them unchanged."""
    x = np.random.default_rng(0).uniform(0, 60, (n, size, size, 3)).astype("float32")
    x[:, 2:7, 3:9] = 250.0
    return x


@pytest.mark.parametrize("option, expected_name", [
    ({"flip": "horizontal"}, "aug_flip"),
    ({"translate": 0.25}, "aug_translate"),
    ({"rotation": 0.1}, "aug_rotate"),
    ({"zoom": 0.3}, "aug_zoom"),
    ({"cutout": 0.5}, "aug_cutout"),
])
def test_each_option_adds_one_layer_that_acts_in_training_only(option, expected_name):
    args = {"flip": "none", "translate": 0.0, "rotation": 0.0, "zoom": 0.0, "cutout": 0.0, **option}
    (layer,) = augmentation_layers(**args, seed=3)
    assert layer.name == expected_name
    x = _images()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    # several draws: a random flip may leave one batch as it is
    changed = [not np.allclose(keras.ops.convert_to_numpy(layer(x, training=True)), x) for _ in range(4)]
    assert any(changed), f"{expected_name} never changed an image in training"


def test_no_option_means_no_layer():
    assert augmentation_layers("none", 0.0, 0.0, 0.0, 0.0) == []


AUGMENT_ALL = ["preprocess.flip=horizontal", "preprocess.translate=0.125", "preprocess.rotation=0.05",
               "preprocess.zoom=0.1", "preprocess.cutout=0.25"]
AUG_NAMES = {"aug_flip", "aug_translate", "aug_rotate", "aug_zoom", "aug_cutout"}


def test_augmentation_sits_in_the_training_model_only(image_folder):
    cfg = api.resolve_config("image-cls", str(image_folder), sets=AUGMENT_ALL)
    cfg.model.backbone = "resnet8"
    task = tasks.get("image-cls")
    train_model, infer_model = task.build(cfg, api.load_prepared(cfg, task))
    assert AUG_NAMES <= {layer.name for layer in train_model.layers}
    assert not AUG_NAMES & {layer.name for layer in infer_model.layers}  # both built layer by layer, no nesting


def test_a_run_with_every_augmentation_trains_and_reloads(image_folder, tmp_path):
    result = api.train("image-cls", str(image_folder), out=str(tmp_path / "run"), backbone="resnet8", epochs=1,
                       verbose=0, sets=AUGMENT_ALL)
    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    x = _images(size=12)
    probs = model.predict(x, verbose=0)
    assert probs.shape == (4, 3)
    np.testing.assert_array_equal(probs, model.predict(x, verbose=0))  # no random layer at inference
