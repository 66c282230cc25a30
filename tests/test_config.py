"""Config resolution: override order, type checks, unknown keys."""
import pytest

from cnnkit import config
from cnnkit.errors import CnnkitError
from cnnkit.tasks.image_cls import ImagePreprocessConfig


def resolve(**layers):
    return config.resolve("image-cls", ImagePreprocessConfig, layers.get("defaults"), layers.get("recipe"),
                          layers.get("overrides"))


def test_override_order():
    cfg = resolve(defaults={"train": {"lr": 0.1, "epochs": 3}}, recipe={"train": {"lr": 0.2}},
                  overrides=config.parse_set(["train.lr=0.3"]))
    assert cfg.train.lr == 0.3 and cfg.train.epochs == 3 and cfg.train.batch_size == 64


def test_set_parses_yaml_values():
    sets = config.parse_set(["preprocess.image_size=[32, 32]", "train.jit_compile=true", "model.weights=none",
                             "model.backbone_args={filters: [8, 16]}"])
    cfg = resolve(overrides=sets)
    assert cfg.preprocess.image_size == [32, 32]
    assert cfg.train.jit_compile is True
    assert cfg.model.weights is None
    assert cfg.model.backbone_args == {"filters": [8, 16]}


def test_ints_become_floats_but_not_the_reverse():
    assert resolve(overrides={"train": {"lr": 1}}).train.lr == 1.0
    with pytest.raises(CnnkitError, match="train.epochs must be an integer. Received: 2.5"):
        resolve(overrides={"train": {"epochs": 2.5}})


@pytest.mark.parametrize("overrides,message", [
    ({"train": {"epoch": 3}}, "Unknown key.*train.epoch \\(did you mean train.epochs\\?\\).*Known keys in 'train': epochs"),
    ({"trainer": {}}, "Unknown config section.*trainer"),
    ({"train": {"optimizer": "lion"}}, "train.optimizer must be one of adam"),
    ({"train": {"lr": -1.0}}, "train.lr must be > 0"),
    ({"train": {"optimizer": "sgd", "bias_lr_scale": 0.0}}, "train.bias_lr_scale must be > 0"),
    ({"train": {"optimizer": "adamw", "bias_lr_scale": 64.0}}, "bias_lr_scale applies to train.optimizer=sgd only"),
    ({"train": {"optimizer": "sgd", "sparse_updates": True}}, "sparse_updates applies to the adam and adamw"),
    ({"model": {"head_logit_scale": -1.0}}, "model.head_logit_scale must be > 0"),
    ({"data": {"val_split": 1.5}}, r"data.val_split must be in \[0, 1\)"),
    ({"train": {"deterministic": "yes"}}, "must be true or false"),
    ({"train": {"anneal_on_plateau": 2}}, "anneal_on_plateau lowers a constant learning rate; this run has "
                                          "train.schedule=cosine.*Set train.schedule=constant"),
    ({"train": {"anneal_on_plateau": -1}}, "train.anneal_on_plateau must be >= 0"),
    ({"train": {"precise_bn": -5}}, "train.precise_bn must be >= 0 training batches"),
    ({"data": {"encoding": "klingon"}}, "data.encoding 'klingon' is not a text encoding Python knows"),
    ({"train": {"verbose": 3}}, "train.verbose must be 0 .silent., 1 .progress bar., 2 .a line per epoch. or auto"),
    ({"train": {"verbose": "bar"}}, "train.verbose must be 0 .*Received: 'bar'"),
    ({"train": {"monitor": "val_loss"}}, "train.monitor must be one of accuracy, loss. Received: 'val_loss'"),
    ({"train": {"anneal_on_plateau": 2, "schedule": "constant", "anneal_factor": 1.5}},
     r"train.anneal_factor must be in \(0, 1\)"),
])
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(CnnkitError, match=message):
        resolve(overrides=overrides)


def test_parse_set_rejects_malformed():
    with pytest.raises(CnnkitError, match="section.key=value"):
        config.parse_set(["nothing"])
    # a key without its section, the way users type it: the error names the setting meant
    with pytest.raises(CnnkitError, match=r"section.key=value.*\(lr is a key of 'train': --set train.lr=0.1\)"):
        config.parse_set(["lr=0.1"])


def test_misplaced_keys_and_section_typos_are_named():
    with pytest.raises(CnnkitError, match=r"section\(s\) epochs \(epochs is a key of 'train': train.epochs\)"):
        resolve(recipe={"epochs": 5})  # a recipe file's `epochs: 5` at the top level
    with pytest.raises(CnnkitError, match=r"section\(s\) image_size \(image_size is a key of 'preprocess'"):
        resolve(recipe={"image_size": [32, 32]})
    with pytest.raises(CnnkitError, match=r"section\(s\) trian \(did you mean train\?\)"):
        resolve(recipe={"trian": {"epochs": 5}})


def test_load_yaml_is_safe(tmp_path):
    bad = tmp_path / "evil.yaml"
    bad.write_text("train: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(CnnkitError, match="not valid YAML"):
        config.load_yaml(bad)
    with pytest.raises(CnnkitError, match="Cannot read"):
        config.load_yaml(tmp_path / "missing.yaml")


def test_round_trip_through_dict():
    cfg = resolve(overrides={"train": {"epochs": 7}, "preprocess": {"channels": 3}})
    again = config.resolve("image-cls", ImagePreprocessConfig, None, cfg.to_dict(), None)
    assert again == cfg
