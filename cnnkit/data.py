"""`cnnkit.data.load`: a task's data as `tf.data` datasets and its preprocessing as Keras layers,
for users who train with their own `model.fit` or loop.

    import cnnkit.data, keras
    d = cnnkit.data.load("speech-cls", "recordings/")
    inputs = keras.Input(d.input_shape, dtype=d.input_dtype)
    x = d.preprocessing(inputs)                     # waveforms -> normalised log-mel spectrograms
    ...                                              # the user's layers
    model.fit(d.train, validation_data=d.val)
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import keras

from cnnkit import api, tasks, training


@dataclasses.dataclass
class TaskData:
    """A task's prepared data.

    train, val, test: batched `tf.data.Dataset`s of (raw inputs, labels); `train` is shuffled
        and, for audio, time-shifted and noised; val/test are None when the source has none.
        Raw inputs: uint8 images (B, h, w, c), strings (B,), or float waveforms (B, samples).
        Labels: int class indices (B,), or multi-hot (B, num_classes) for multi-label text.
    class_names: the label names (labels index them).
    preprocessing: a `keras.Sequential` from raw inputs to what a backbone takes: normalised
        float images, token ids (an Embedding of `vocabulary_size` rows follows), or normalised
        log-mel spectrograms (B, frames, bins, 1). Adapted on the training split only.
    input_shape, input_dtype: of one raw input, for `keras.Input`.
    config: the resolved `cnnkit.config.Config` (image size, clip length, ... filled in).
    """

    train: object
    val: Optional[object]
    test: Optional[object]
    class_names: list
    preprocessing: keras.Sequential
    input_shape: tuple
    input_dtype: str
    config: object
    multi_label: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def vocabulary_size(self) -> Optional[int]:
        """Text: the number of token ids the vectorizer emits (else None)."""
        first = self.preprocessing.layers[0]
        return len(first.get_vocabulary()) if hasattr(first, "get_vocabulary") else None


def load(task: str, src: Optional[str] = None, **options) -> TaskData:
    """Reads and prepares `src` for `task` as cnnkit's own training would.

    Args:
        task: "image-cls", "text-cls", "speech-cls" or a recipe file.
        src: a data source (`--data`); default: the task's embedded sample.
        **options: the flat options of `cnnkit.train` (batch_size=32, image_size=[32, 32],
            sample_rate=16000, val_split=0.1, seed=0, sets=["preprocess.n_mels=64"], ...).
    """
    sets = options.pop("sets", None)
    cfg = api.resolve_config(task, src, None, sets, **options)
    task_obj = tasks.get(cfg.task)
    training.seed_everything(cfg.train.seed)
    prepared = api.load_prepared(cfg, task_obj)
    layers = [layer for layer in task_obj.preprocessing_layers(cfg, prepared) if layer is not None]
    splits = {name: task_obj.raw_dataset(x, y, cfg, training=name == "train") for name, (x, y) in prepared.splits.items()}
    x_train = prepared.splits["train"][0]
    if cfg.task == "text-cls":
        shape, dtype = (), "string"
    else:
        shape, dtype = tuple(x_train.shape[1:]), str(x_train.dtype)
    return TaskData(splits["train"], splits.get("val"), splits.get("test"), list(prepared.class_names),
                    keras.Sequential(layers, name=f"{cfg.task.replace('-', '_')}_preprocessing"), shape, dtype, cfg,
                    prepared.multi_label)
