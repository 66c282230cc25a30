"""`keras.applications` backbones, with their own input preprocessing built in.

Each takes images with values in [0, 255] and returns feature maps. `weights` is None
(random), "imagenet" (the Keras cache, `~/.keras/models`, or a download where there is a
network) or the path of a weights file saved from the same architecture.
"""
from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

import keras
from keras import layers

from cnnkit.backbones.registry import register
from cnnkit.errors import CnnkitError

# name -> (keras.applications class name, preprocessing mode, default input size)
# Modes: "tf" scales to [-1, 1]; "caffe" flips RGB->BGR and subtracts the ImageNet mean;
# "none": the application rescales inside itself (EfficientNet, MobileNetV3).
APPLICATIONS = {
    "mobilenet_v2": ("MobileNetV2", "tf", 224),
    "mobilenet_v3_small": ("MobileNetV3Small", "none", 224),
    "mobilenet_v3_large": ("MobileNetV3Large", "none", 224),
    "efficientnet_b0": ("EfficientNetB0", "none", 224),
    "efficientnet_v2_b0": ("EfficientNetV2B0", "none", 224),
    "keras_resnet50": ("ResNet50", "caffe", 224),
}
# The no-top ImageNet weights file names that keras.applications looks for in its cache
# (glob patterns: MobileNetV2's name holds the input size it picked).
WEIGHTS_FILES = {
    "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_*_no_top.h5",
    "mobilenet_v3_small": "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    "mobilenet_v3_large": "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
    "efficientnet_b0": "efficientnetb0_notop.h5",
    "efficientnet_v2_b0": "efficientnetv2-b0_notop.h5",
    "keras_resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}


def imagenet_weights_cached(name: str) -> bool:
    """Whether the ImageNet weights of application `name` are in the Keras cache (usable
    without a network)."""
    return any(keras_cache_dir().glob(WEIGHTS_FILES[name]))

IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="cnnkit")
class ImagenetPreprocess(layers.Layer):
    """The `preprocess_input` of a `keras.applications` model as a serializable layer.

    Args:
        mode: "tf" ([0, 255] -> [-1, 1]), "caffe" (RGB -> BGR, minus the ImageNet mean)
            or "none" (identity).

    Call arguments:
        inputs: float images (batch, h, w, 3) in [0, 255]. Returns the same shape.
    """

    def __init__(self, mode="tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("tf", "caffe", "none"):
            raise ValueError(f"mode must be 'tf', 'caffe' or 'none'. Received: mode={mode!r}")
        self.mode = mode

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            mean = keras.ops.convert_to_tensor(IMAGENET_MEAN_BGR, dtype=self.compute_dtype)
            return keras.ops.flip(x, axis=-1) - mean
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: $KERAS_HOME/models or ~/.keras/models
    (as Keras read it when it was imported)."""
    try:
        from keras.src.backend.config import keras_home

        home = keras_home()
    except ImportError:  # a Keras that moved it: the documented default
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(os.path.expanduser(home)) / "models"


# The smallest input side keras.applications has ImageNet weights for (MobileNets: 96-224 pixels).
MIN_PRETRAINED_SIDE = 96


def build_application(name: str, input_shape, weights=None, trainable=True) -> keras.Model:
    """Builds application `name` without its top for `input_shape` (channels last).

    Grey inputs are repeated to three channels, because every application (and its
    ImageNet weights) expects RGB.

    Raises:
        CnnkitError: when ImageNet weights are asked for but neither cached nor reachable,
            or the weights file does not exist or does not fit.
    """
    class_name, mode, _ = APPLICATIONS[name]
    app_cls = getattr(keras.applications, class_name)
    h, w, c = input_shape
    if c not in (1, 3):
        raise CnnkitError(f"Backbone '{name}' takes 1 or 3 channels. Received: input_shape={input_shape}")
    file_weights = None
    if weights not in (None, "none", "imagenet"):
        file_weights = Path(weights)
        if not file_weights.is_file():
            raise CnnkitError(f"Weights file {file_weights} does not exist; pass an existing file, 'imagenet' or none.")
    kwargs = {"include_top": False, "input_shape": (h, w, 3), "weights": "imagenet" if weights == "imagenet" else None}
    if mode == "none" and class_name.startswith("MobileNetV3"):
        kwargs["include_preprocessing"] = True
    if weights == "imagenet" and h and w and min(h, w) < MIN_PRETRAINED_SIDE:
        # Keras says only that it loads the 224-pixel weights ("`input_shape` is undefined or non-square").
        print(f"Warning: the ImageNet weights of {name} were trained on 224x224 images; these are {h}x{w}, "
              f"objects at a scale its filters never saw. --image-size {MIN_PRETRAINED_SIDE} (or up to 224) "
              f"resizes them to one closer to it, at more computation per image.", file=sys.stderr)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="`input_shape` is undefined or non-square")
            app = app_cls(**kwargs)
    except Exception as e:  # Keras raises a bare Exception("URL fetch failure ...") offline
        if weights != "imagenet":
            raise
        if "fetch failure" not in str(e).lower():
            raise CnnkitError(f"ImageNet weights for {class_name} in {keras_cache_dir()} could not be loaded "
                              f"({type(e).__name__}: {str(e)[:300]}). Delete the file to fetch it again.") from None
        # The file depends on the input size (MobileNets have one per size), so the hint names this one.
        url = re.search(r"https?://\S+?\.h5", str(e))
        fetch = f"download {url.group(0)}" if url else "fetch it"
        raise CnnkitError(
            f"ImageNet weights for {class_name} are not in the Keras cache ({keras_cache_dir()}) and could not "
            f"be downloaded (no network). On a machine with a network {fetch} (or run `python -c \"import "
            f"keras; keras.applications.{class_name}(include_top=False, input_shape={(h, w, 3)})\"`, which "
            f"writes it to ~/.keras/models), copy the file into {keras_cache_dir()} here, or pass --weights PATH "
            f"to a weights file."
        ) from None
    if file_weights is not None:
        try:
            app.load_weights(str(file_weights))
        except Exception as e:
            raise CnnkitError(f"Weights file {file_weights} does not fit backbone '{name}': {e}") from None
    app.trainable = trainable
    inputs = keras.Input(input_shape)
    x = inputs
    if c == 1:
        x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    x = ImagenetPreprocess(mode, name="imagenet_preprocess")(x)
    outputs = app(x)
    return keras.Model(inputs, outputs, name=name)


def _register_application(name: str):
    class_name, _, size = APPLICATIONS[name]

    @register(name, test_shape=(32, 32, 3), source="keras.applications", pretrained="imagenet",
              default_size=size, expects="0-255")
    def build(input_shape, weights=None, trainable=True):
        return build_application(name, input_shape, weights=weights, trainable=trainable)

    build.__doc__ = f"keras.applications.{class_name} without its top; inputs in [0, 255]."
    return build


for _name in APPLICATIONS:
    _register_application(_name)
