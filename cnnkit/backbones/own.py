"""cnnkit's own backbones, built from `cnnkit.blocks`: LeNet-5, AlexNet, ResNets,
a simple CNN, Kim's text CNN, a 1D ResNet and a spectrogram CNN.

Every builder takes `(input_shape, **kwargs)` and returns a functional `keras.Model`
from inputs to features, with stable layer names (`stage2_block1`) for fine-tuning.
"""
from __future__ import annotations

import keras
from keras import layers

from cnnkit.backbones.registry import register
from cnnkit.blocks import ConvBlock, ResidualBlock
from cnnkit.blocks.whitening import PatchWhitening


# ---------------------------------------------------------------- images: classic
@register("lenet5", test_shape=(28, 28, 1), min_size=28)
def lenet5(input_shape, activation="tanh", pooling="avg", name="lenet5"):
    """LeNet-5 (LeCun et al. 1998): C1 6@5x5 -> S2 -> C3 16@5x5 -> S4 -> C5 120 -> F6 84.

    A 28x28 input is zero-padded to 32x32 first, as in the paper. Returns (batch, 84).
    """
    inputs = keras.Input(input_shape)
    x = inputs
    if input_shape[0] < 32 or input_shape[1] < 32:
        pad_h, pad_w = max(0, 32 - input_shape[0]), max(0, 32 - input_shape[1])
        x = layers.ZeroPadding2D(((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)), name="pad")(x)
    pool = layers.AveragePooling2D if pooling == "avg" else layers.MaxPooling2D
    x = layers.Conv2D(6, 5, activation=activation, name="c1")(x)
    x = pool(2, name="s2")(x)
    x = layers.Conv2D(16, 5, activation=activation, name="c3")(x)
    x = pool(2, name="s4")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(120, activation=activation, name="c5")(x)
    x = layers.Dense(84, activation=activation, name="f6")(x)
    return keras.Model(inputs, x, name=name)


@register("alexnet", test_shape=(32, 32, 3))
def alexnet(input_shape, width=1.0, dropout=0.5, name="alexnet"):
    """AlexNet (Krizhevsky et al. 2012), five conv layers and two dense layers.

    Inputs of at least 128 pixels get the ImageNet layout (11x11 stride-4 stem, 3x3/2 max
    pools, dense 4096); smaller ones the CIFAR layout (3x3 stem, 2x2 pools, dense 1024 * width).
    Returns (batch, features).
    """
    inputs = keras.Input(input_shape)
    w = lambda c: max(8, int(c * width))  # noqa: E731
    large = min(input_shape[0], input_shape[1]) >= 128
    if large:
        x = ConvBlock(w(96), 11, strides=4, padding="valid", name="conv1")(inputs)
        x = layers.MaxPooling2D(3, 2, name="pool1")(x)
        x = ConvBlock(w(256), 5, name="conv2")(x)
        x = layers.MaxPooling2D(3, 2, name="pool2")(x)
        dense = 4096
    else:
        x = ConvBlock(w(64), 3, pooling="max", name="conv1")(inputs)
        x = ConvBlock(w(192), 3, pooling="max", name="conv2")(x)
        dense = 1024
    x = ConvBlock(w(384), 3, name="conv3")(x)
    x = ConvBlock(w(256), 3, name="conv4")(x)
    x = ConvBlock(w(256), 3, name="conv5")(x)
    x = layers.MaxPooling2D(3 if large else 2, 2, name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in (6, 7):
        x = layers.Dropout(dropout, name=f"drop{i}")(x)
        x = layers.Dense(w(dense), activation="relu", name=f"fc{i}")(x)
    return keras.Model(inputs, x, name=name)


@register("simple_cnn", test_shape=(16, 16, 1))
def simple_cnn(input_shape, filters=(32, 64, 128), dropout=0.1, activation="relu", name="simple_cnn"):
    """A plain VGG-style CNN: per stage two 3x3 ConvBlocks, the second max-pooled.

    Stages stop pooling once the feature map is 2 pixels wide, so 8x8 inputs work.
    Returns feature maps (batch, h', w', filters[-1]).
    """
    inputs = keras.Input(input_shape)
    x = inputs
    size = min(input_shape[0], input_shape[1])
    for i, f in enumerate(filters, start=1):
        x = ConvBlock(f, 3, activation=activation, name=f"stage{i}_conv1")(x)
        pool = "max" if size >= 4 else None
        size = size // 2 if pool else size
        x = ConvBlock(f, 3, activation=activation, pooling=pool, dropout=dropout, spatial_dropout=True, name=f"stage{i}_conv2")(x)
    return keras.Model(inputs, x, name=name)


@register("airbench", test_shape=(16, 16, 3))
def airbench(input_shape, widths=(64, 256, 256), stem="whiten", stem_filters=24, activation="relu",
             norm_scale=False, norm_momentum=0.4, identity_init=True, name="airbench"):
    """The network of airbench (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds on a single GPU"):
    a stem, then one group per width: a convolution whose output is max-pooled 2x2 before its
    batch norm and activation, then a second ConvBlock(width) at the pooled size. No
    residuals; wide, shallow and cheap for its accuracy.

    Args:
        stem: "whiten": airbench's frozen 2x2 patch-whitening convolution (`PatchWhitening`, 24
            channels for RGB; the image task fits it to the training images, `adapt`) and the
            activation;
            "conv": a trainable 3x3 ConvBlock of `stem_filters`.
        widths: channels of the groups; `(32, 64, 128)` is the CPU-sized variant of
            `recipes/cifar10-10min.yaml`; `recipes/cifar10.yaml` keeps airbench's (64, 256, 256).
        norm_scale, norm_momentum: batch norm as airbench's: no learned scale, and moving
            statistics that follow the last few batches (Keras momentum 0.4: each batch weighs
            0.6; airbench's own is Keras 0.6, measured the same in BENCHMARKS.md).
        identity_init: the 3x3 convolutions start with their first min(in, out) filters as
            identities (`PartialIdentity`, airbench's `dirac_` init); False: Glorot uniform.

    Differences from the original: the activation is ReLU (GELU
    trained at 0.44x the images/s on a 2-core AVX2 CPU: 125 against 284 for widths 32/64/128;
    on a 2-core AVX512-BF16 CPU at about 0.7x, and 30 minutes of CIFAR-10 gave 88.96 % against
    89.33 %: BENCHMARKS.md). `activation="gelu"` builds airbench's own.
    Groups stop pooling once the feature map is under 4 pixels wide, so 8x8 inputs work.

    Input (batch, h, w, c); returns feature maps (batch, ~h/8, ~w/8, widths[-1]).
    """
    if stem not in ("whiten", "conv"):
        raise ValueError(f"stem must be 'whiten' or 'conv'. Received: stem={stem!r}")
    inputs = keras.Input(input_shape)
    norm = dict(activation=activation, norm_scale=norm_scale, norm_momentum=norm_momentum)
    convs = dict(norm, identity_init=identity_init)
    if stem == "whiten":
        x = layers.Activation(activation, name="stem_act")(PatchWhitening(2, name="stem_whiten")(inputs))
    else:
        x = ConvBlock(stem_filters, 3, name="stem_conv", **norm)(inputs)
    size = min(x.shape[1], x.shape[2])
    for i, w in enumerate(widths, start=1):
        pool = "max" if size >= 4 else None
        size = size // 2 if pool else size
        x = ConvBlock(w, 3, pooling=pool, pool_first=True, name=f"group{i}_conv1", **convs)(x)
        x = ConvBlock(w, 3, name=f"group{i}_conv2", **convs)(x)
    return keras.Model(inputs, x, name=name)


# ---------------------------------------------------------------- images: ResNets
def resnet(input_shape, stages, kind="basic", widths=(64, 128, 256, 512), stem="imagenet",
           rank=2, activation="relu", squeeze_excite=0.0, name="resnet"):
    """The general ResNet builder that every named variant calls.

    Args:
        input_shape: (h, w, c) for rank 2, (steps, c) for rank 1.
        stages: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
        kind: "basic" or "bottleneck" residual blocks.
        widths: filters per stage; every stage after the first halves the resolution.
        stem: "imagenet" (7x7/2 conv + 3x3/2 max pool) or "cifar" (one 3x3 conv).

    Returns:
        A model from `input_shape` to the last stage's feature maps.
    """
    inputs = keras.Input(input_shape)
    if stem == "imagenet":
        x = ConvBlock(widths[0], 7, rank=rank, strides=2, activation=activation, name="stem_conv")(inputs)
        pool = layers.MaxPooling2D if rank == 2 else layers.MaxPooling1D
        x = pool(3, strides=2, padding="same", name="stem_pool")(x)
    else:
        x = ConvBlock(widths[0], 3, rank=rank, activation=activation, name="stem_conv")(inputs)
    for s, (blocks, width) in enumerate(zip(stages, widths), start=1):
        for b in range(1, blocks + 1):
            strides = 2 if (s > 1 and b == 1) else 1
            x = ResidualBlock(width, rank=rank, kind=kind, strides=strides, activation=activation,
                              squeeze_excite=squeeze_excite, name=f"stage{s}_block{b}")(x)
    return keras.Model(inputs, x, name=name)


# A variant is a dict of arguments for the general builder.
RESNETS = {
    "resnet18": dict(stages=(2, 2, 2, 2), kind="basic", stem="imagenet"),
    "resnet34": dict(stages=(3, 4, 6, 3), kind="basic", stem="imagenet"),
    "resnet50": dict(stages=(3, 4, 6, 3), kind="bottleneck", stem="imagenet"),
    # CIFAR ResNets (He et al. 2016, sec. 4.2): depth = 6n + 2, widths 16/32/64.
    "resnet8": dict(stages=(1, 1, 1), widths=(16, 32, 64), stem="cifar"),
    "resnet20": dict(stages=(3, 3, 3), widths=(16, 32, 64), stem="cifar"),
    "resnet56": dict(stages=(9, 9, 9), widths=(16, 32, 64), stem="cifar"),
}


def _register_resnet(variant: str, args: dict):
    test_shape = (32, 32, 3) if args["stem"] == "imagenet" else (16, 16, 3)

    @register(variant, test_shape=test_shape)
    def build(input_shape, **kwargs):
        return resnet(input_shape, name=variant, **{**args, **kwargs})

    build.__doc__ = f"{variant}: `resnet(input_shape, **{args})`; keyword arguments override."
    return build


for _variant, _args in RESNETS.items():
    _register_resnet(_variant, _args)


# ---------------------------------------------------------------- sequences (text)
@register("kim_cnn", modality="sequence", test_shape=(20, 16))
def kim_cnn(input_shape, widths=(3, 4, 5), filters=100, activation="relu", dropout=0.5, name="kim_cnn"):
    """Kim (2014): parallel 1D convolutions of several widths, max-over-time pooling, dropout.

    Input (batch, steps, channels), e.g. embedded tokens; two embeddings concatenated on
    the channel axis give Kim's multichannel model. Returns (batch, len(widths) * filters).
    """
    inputs = keras.Input(input_shape)
    branches = []
    for w in widths:
        x = layers.Conv1D(filters, w, padding="same", activation=activation, name=f"conv_w{w}")(inputs)
        branches.append(layers.GlobalMaxPooling1D(name=f"maxpool_w{w}")(x))
    x = layers.Concatenate(name="concat")(branches) if len(branches) > 1 else branches[0]
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, x, name=name)


@register("resnet1d", modality="sequence", test_shape=(32, 16))
def resnet1d(input_shape, stages=(2, 2, 2), widths=(128, 192, 256), activation="relu", name="resnet1d"):
    """A residual 1D CNN: a width-3 stem, then residual stages that halve the steps.

    Returns feature maps (batch, steps', widths[-1]).
    """
    return resnet(input_shape, stages, widths=widths, stem="cifar", rank=1, activation=activation, name=name)


# ---------------------------------------------------------------- spectrograms (audio)
@register("spectrogram_cnn", modality="spectrogram", test_shape=(32, 40, 1))
def spectrogram_cnn(input_shape, filters=(32, 64, 128), dropout=0.1, name="spectrogram_cnn"):
    """A 2D CNN on (time, mel, 1) spectrograms: a conv stem, a residual stage followed by 2x2
    max pooling, then residual stages that halve time and frequency (so 8x fewer frames and
    bins in all). Returns feature maps (batch, t/8, f/8, filters[-1]).

    On the Free Spoken Digit Dataset the early pooling trains as well as a stride-free first
    stage in about half the time (BENCHMARKS.md).
    """
    inputs = keras.Input(input_shape)
    x = ConvBlock(filters[0], 3, name="stem_conv")(inputs)
    for s, f in enumerate(filters, start=1):
        x = ResidualBlock(f, strides=1 if s == 1 else 2, dropout=dropout, name=f"stage{s}_block1")(x)
        if s == 1:
            x = layers.MaxPooling2D(2, padding="same", name="stage1_pool")(x)
    return keras.Model(inputs, x, name=name)


@register("spectrogram_cnn1d", modality="spectrogram", test_shape=(32, 40, 1))
def spectrogram_cnn1d(input_shape, filters=(64, 128, 128), dropout=0.1, name="spectrogram_cnn1d"):
    """A 1D CNN over time: mel bins become channels, then ConvBlocks with max pooling.

    Input (time, mel, 1). Returns feature maps (batch, time', filters[-1]).
    """
    inputs = keras.Input(input_shape)
    x = layers.Reshape((input_shape[0], input_shape[1] * input_shape[2]), name="to_sequence")(inputs)
    for i, f in enumerate(filters, start=1):
        x = ConvBlock(f, 3, rank=1, pooling="max" if i < len(filters) else None, dropout=dropout, name=f"conv{i}")(x)
    return keras.Model(inputs, x, name=name)
