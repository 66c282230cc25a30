"""image-cls: image classification.

Data: any source of `cnnkit.datasets` (folders, archives, .npz, tfds:, builtin:digits),
decoded to uint8 at one size and channel count. Model: uint8 images -> float ->
[augmentation, training only] -> per-channel normalisation -> backbone -> ClassifierHead.
The saved model takes images of any size (values 0-255) and resizes them itself.
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Optional

import keras
import numpy as np
from keras import layers

from cnnkit.blocks.whitening import PatchWhitening
from cnnkit.datasets import image as image_data
from cnnkit.errors import CnnkitError
from cnnkit.features import image as image_features
from cnnkit.tasks.base import TASKS, Prepared, Task

MAX_AUTO_SIDE = 224  # images larger than this are scaled down when --image-size is unset
SMALL_IMAGE_SIDE = 64  # up to this, the default backbone is a CIFAR-style ResNet


@dataclasses.dataclass
class ImagePreprocessConfig:
    image_size: Optional[list] = None  # [height, width]; unset: the median of the data, longer side <= 224
    channels: Optional[int] = None  # 1 (grey) or 3 (RGB); unset: 3 if the sampled images have colour
    flip: str = "auto"  # auto (horizontal for colour, none for grey) | horizontal | vertical | horizontal_and_vertical | none
    translate: float = 0.1  # random shift, fraction of the side (the padded random crop)
    rotation: float = 0.0  # fraction of a full turn
    zoom: float = 0.0
    cutout: float = 0.0  # side of the erased square as a fraction of the image side
    mixup: float = 0.0  # MixUp Beta(alpha, alpha) parameter, e.g. 0.2 (0: off)
    cutmix: float = 0.0  # CutMix Beta(alpha, alpha) parameter, e.g. 1.0 (0: off)
    # Test-time augmentation of the saved model: none; flip (the mean of the probabilities of the
    # image and its mirror image; twice the prediction work); or flip_shift (airbench's: also the
    # views shifted by one pixel, mirrored and not; six times the work). Both need horizontal flips
    # in training.
    tta: str = "none"


def auto_image_size(h: int, w: int) -> list[int]:
    """The median size, scaled down so that the longer side is at most MAX_AUTO_SIDE."""
    scale = min(1.0, MAX_AUTO_SIDE / max(h, w))
    return [max(1, int(round(h * scale))), max(1, int(round(w * scale)))]


def choose_backbone(name: str, size) -> str:
    """`name`, or for "auto": resnet20 (CIFAR style) up to 64 pixels, else MobileNetV2."""
    if name != "auto":
        return name
    return "resnet20" if max(size) <= SMALL_IMAGE_SIDE else "mobilenet_v2"


@TASKS.register("image-cls")
class ImageClassification(Task):
    name = "image-cls"
    modality = "image"
    preprocess_cls = ImagePreprocessConfig
    default_source = "builtin:digits"
    extensions = image_data.IMAGE_EXTENSIONS
    cache_modes = image_data.CACHE_MODES
    defaults = {
        "train": {"epochs": 30, "batch_size": 64, "lr": 2e-3, "optimizer": "adamw", "weight_decay": 5e-4,
                  "schedule": "onecycle"},
        "model": {"head_dropout": 0.1},
    }

    # ------------------------------------------------------------ data
    def prepare(self, cfg, data) -> Prepared:
        p = cfg.preprocess
        if p.channels not in (None, 1, 3):
            raise CnnkitError(f"preprocess.channels must be 1 or 3. Received: {p.channels}")
        if data.kind == "texts":
            raise CnnkitError(f"{data.origin} holds text, not images: use `cnnkit train text-cls` for it. (A table "
                              f"of image files names them in a column, relative to its folder, with a label column.)")
        splits, ids, skipped = {}, {}, list(data.skipped)
        if data.kind == "files":
            if p.image_size is None or p.channels is None:
                h, w, c = image_data.probe_images(data.splits["train"].x, seed=cfg.train.seed)
                p.image_size = p.image_size or auto_image_size(h, w)
                p.channels = p.channels or c
            size = self._size(p)
            for name, split in data.splits.items():
                paths, labels = split.x, split.y
                if name == "train":
                    # Folders are listed class by class, and a disk cache is read back in the order
                    # it was written, shuffled only within a buffer (SHUFFLE_BUFFER_BYTES): written
                    # in a random order, its batches still mix the classes. Every cache mode uses
                    # the same order, so that they train the same model.
                    order = np.random.default_rng(cfg.train.seed).permutation(len(paths))
                    paths, labels = [paths[i] for i in order], labels[order]
                if cfg.data.cache == "memory":
                    x, kept, skip = image_data.read_image_files(paths, p.channels, size, strict=cfg.data.strict)
                else:
                    x, kept, skip = image_data.scan_image_files(paths, p.channels, size, cfg.data.cache,
                                                                strict=cfg.data.strict)
                splits[name] = (x, labels[kept])
                ids[name] = [paths[i] for i in kept]
                skipped += skip
        else:
            first = np.asarray(data.splits["train"].x[:1])
            if first.ndim not in (3, 4):
                raise CnnkitError(f"{data.origin}: image arrays must be (N, h, w) or (N, h, w, c). Received {first.shape}.")
            if p.channels is None:
                p.channels = 1 if first.ndim == 3 or first.shape[-1] == 1 else 3
            if p.image_size is None:
                p.image_size = auto_image_size(first.shape[1], first.shape[2])
            size = self._size(p)
            for name, split in data.splits.items():
                splits[name] = (image_data.arrays_to_images(split.x, p.channels, size), split.y)
                ids[name] = [f"{name}[{i}]" for i in range(len(split.y))]
        if p.flip == "auto":
            p.flip = "horizontal" if p.channels == 3 else "none"
        if not 0 <= p.cutout <= 1:
            raise CnnkitError(f"preprocess.cutout is the side of the erased square as a fraction of the image side, "
                              f"from 0 (off) to 1. Received: {p.cutout}. Try 0.25.")
        if p.tta not in ("none", "flip", "flip_shift"):
            raise CnnkitError(f"preprocess.tta must be none, flip or flip_shift. Received: {p.tta!r}")
        if p.tta != "none" and "horizontal" not in p.flip:
            raise CnnkitError(f"preprocess.tta={p.tta} averages each image with its mirror image, which only a network "
                              f"trained with horizontal flips has learned to be the same class; this run has "
                              f"preprocess.flip={p.flip}. Set preprocess.flip=horizontal or preprocess.tta=none.")
        return Prepared(splits, ids, list(data.class_names), skipped, data.origin)

    @staticmethod
    def _size(p) -> tuple[int, int]:
        size = p.image_size
        if isinstance(size, int):
            size = [size, size]
        if len(size) != 2 or min(size) < 1:
            raise CnnkitError(f"preprocess.image_size must be [height, width]. Received: {p.image_size}")
        p.image_size = [int(size[0]), int(size[1])]
        return tuple(p.image_size)

    def soft_labels(self, cfg) -> bool:
        return bool(cfg.preprocess.mixup or cfg.preprocess.cutmix)

    def dataset(self, x, y, cfg, training: bool, num_classes: int | None = None):
        p = cfg.preprocess
        return image_data.make_dataset(x, y, cfg.train.batch_size, training, seed=cfg.train.seed,
                                       num_classes=num_classes if self.soft_labels(cfg) else None,
                                       mixup=p.mixup, cutmix=p.cutmix)

    # ------------------------------------------------------------ model
    def build(self, cfg, prepared: Prepared):
        p, m = cfg.preprocess, cfg.model
        h, w = p.image_size
        c = p.channels
        auto, m.backbone = m.backbone == "auto", choose_backbone(m.backbone, (h, w))
        info = self.backbone_info(m.backbone)
        if auto and info.get("source") == "keras.applications" and not m.weights:
            print(f"Backbone auto: {m.backbone} for {h}x{w} images, from random weights; --weights imagenet "
                  f"starts it from ImageNet's (fetched once, then cached), --backbone NAME picks another.",
                  file=sys.stderr)
        kwargs = dict(m.backbone_args)
        if info.get("source") == "keras.applications":
            kwargs["weights"] = m.weights
        backbone = self.make_backbone(m.backbone, (h, w, c), len(prepared.class_names), **kwargs)
        sample = self._sample(prepared)
        norm = self._normalization(sample, info)
        self._adapt_whitening(backbone, sample, norm)
        aug = image_features.augmentation_layers(p.flip, p.translate, p.rotation, p.zoom, p.cutout, seed=cfg.train.seed)
        head = self.head(cfg, prepared, backbone)
        to_float = image_features.cast_to_float()

        def tail(x):
            if norm is not None:
                x = norm(x)
            x = backbone(x)
            return head(x) if head is not None else x

        inputs = keras.Input((h, w, c), dtype="float32" if self.soft_labels(cfg) else "uint8", name="image")
        x = to_float(inputs)
        for layer in aug:
            x = layer(x)
        train_model = keras.Model(inputs, tail(x), name=f"{self.name}_train")

        raw = keras.Input((None, None, c), name="image")
        # training=False explicitly: Keras records Resizing's call as training=True otherwise, and
        # a reloaded model then ran every later layer (batch norm) in training mode when called
        # without `training` (model(x), SavedModel export).
        x = to_float(layers.Resizing(h, w, antialias=True, name="resize")(raw, training=False))
        tta = {"flip": image_features.flip_tta, "flip_shift": image_features.flip_shift_tta}.get(p.tta)
        outputs = tta(x, tail) if tta is not None else tail(x)
        infer_model = keras.Model(raw, outputs, name=self.name)
        return train_model, infer_model

    def without_tta(self, model):
        return image_features.without_tta(model)

    def tta_views(self, model) -> int:
        return image_features.tta_views(model)

    @staticmethod
    def _sample(prepared: Prepared, n: int = 5000) -> np.ndarray:
        """Up to `n` training images (n, h, w, c), the same ones every call."""
        x_train = prepared.splits["train"][0]
        return x_train[np.random.default_rng(0).choice(len(x_train), min(len(x_train), n), replace=False)]

    @staticmethod
    def _normalization(sample: np.ndarray, info: dict):
        """Per-channel normalisation adapted on `sample` (n, h, w, c) of the training images, or
        None for backbones that normalise inside themselves (keras.applications)."""
        if info.get("expects") == "0-255":
            return None
        return image_features.normalization_layer(sample)

    @staticmethod
    def _adapt_whitening(backbone, sample: np.ndarray, norm) -> None:
        """Fits the backbone's `PatchWhitening` layers (airbench's stem) to the patches of the
        normalised training `sample` (n, h, w, c): a backbone's first layer sees exactly these inputs."""
        stems = [l for l in backbone._flatten_layers(include_self=False) if isinstance(l, PatchWhitening)]
        if not stems:
            return
        x = sample.astype("float32")
        x = keras.ops.convert_to_numpy(norm(x)) if norm is not None else x
        for layer in stems:
            layer.adapt(x)

    def preprocessing_layers(self, cfg, prepared: Prepared) -> list:
        """[to float, normalisation]: uint8 images (batch, h, w, c) -> normalised float images."""
        return [image_features.cast_to_float(), self._normalization(self._sample(prepared), {})]

    def inference_dataset(self, x, cfg, batch_size: int | None = None):
        if isinstance(x, image_data.ImageFiles):
            return x.images().batch(batch_size or cfg.train.batch_size).prefetch(2)
        return super().inference_dataset(x, cfg, batch_size)

    # ------------------------------------------------------------ prediction inputs
    def array_inputs(self, x: np.ndarray, cfg) -> np.ndarray:
        """Images in memory -> uint8 (N, h, w, c) at the run's size and channels, as image files
        are read: one image (h, w) or (h, w, 1-4 channels), or a batch (N, h, w[, c]); values
        0-255, or floats 0-1 (scaled to 0-255, said in a line)."""
        import tensorflow as tf

        p = cfg.preprocess
        if x.dtype.kind not in "uif" or x.ndim not in (2, 3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 2, 3, 4)):
            raise CnnkitError(f"An image-cls run predicts on images: one (h, w) or (h, w, channels), or a batch "
                              f"(N, h, w) or (N, h, w, channels), of numbers 0-255. Received an array of shape "
                              f"{x.shape} and dtype {x.dtype}.")
        if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] in (1, 2, 3, 4)):
            x = x[None]  # one image
        if x.ndim == 3:
            x = x[..., None]  # grey images without a channel axis
        if x.dtype.kind == "f" and x.size and float(np.nanmax(x)) <= 1.0:
            print("Images given as floats of at most 1: read as 0-1 values and scaled to 0-255, as the run was trained",
                  file=sys.stderr)
            x = x * 255.0
        x = np.clip(np.round(np.nan_to_num(x.astype("float64"))), 0, 255).astype("uint8")
        return np.stack([image_data.resize_uint8(image_data.to_channels(tf.constant(image), p.channels),
                                                 tuple(p.image_size)).numpy() for image in x])

    def read_inputs(self, inputs: list[str], cfg):
        p = cfg.preprocess
        x, kept, skipped = image_data.read_image_files(inputs, p.channels, tuple(p.image_size))
        return x, [inputs[i] for i in kept], skipped
