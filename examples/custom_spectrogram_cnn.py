"""A custom spectrogram CNN from cnnkit.blocks, trained through cnnkit.train on the embedded
spoken digits (cnnkit puts its log-mel front end before it), then evaluated and exported.

    python examples/custom_spectrogram_cnn.py [--epochs 30] [--out RUN_DIR]
"""
import argparse

import keras

import cnnkit
from cnnkit.blocks import ConvBlock, ResidualBlock


def spectrogram_cnn(input_shape, num_classes):
    """(frames, mel bins, 1) normalised log-mel spectrograms -> feature maps."""
    inputs = keras.Input(input_shape)
    x = ConvBlock(24, 3, pooling="max", name="stem")(inputs)
    x = ResidualBlock(48, strides=2, name="block1")(x)
    x = ResidualBlock(96, strides=2, name="block2")(x)
    return keras.Model(inputs, x, name="my_spectrogram_cnn")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", help="run folder (default runs/<task>-<time>; one that holds a run is refused)")
    args = parser.parse_args()
    result = cnnkit.train("speech-cls", model=spectrogram_cnn, epochs=args.epochs, out=args.out, verbose=0)
    print(f"test accuracy {result.metrics['test_accuracy']:.4f} in {result.metrics['train_seconds']:.1f} s")
    evaluated = cnnkit.evaluate(str(result.run_dir), "builtin:spoken_digits", out=f"{result.run_dir}/eval")
    print(f"evaluate: accuracy {evaluated['accuracy']:.4f}, macro-F1 {evaluated['macro_f1']:.4f}")
    result.model.export(f"{result.run_dir}/savedmodel", verbose=False)  # float waveforms (any length) in
    print(f"exported {result.run_dir}/savedmodel")


if __name__ == "__main__":
    main()
