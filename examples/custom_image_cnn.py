"""A custom residual image CNN from cnnkit.blocks, trained through cnnkit.train on the embedded
digits, then evaluated and exported as a TensorFlow SavedModel.

    python examples/custom_image_cnn.py [--epochs 10] [--out RUN_DIR]
"""
import argparse

import keras

import cnnkit
from cnnkit.blocks import ConvBlock, ResidualBlock


def residual_cnn(input_shape, num_classes):
    """(h, w, c) normalised images -> feature maps; cnnkit adds its classifier head."""
    inputs = keras.Input(input_shape)
    x = ConvBlock(32, 3, name="stem")(inputs)
    x = ResidualBlock(32, name="block1")(x)
    x = ResidualBlock(64, strides=2, name="block2")(x)
    return keras.Model(inputs, x, name="residual_cnn")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", help="run folder (default runs/<task>-<time>; one that holds a run is refused)")
    args = parser.parse_args()
    result = cnnkit.train("image-cls", model=residual_cnn, epochs=args.epochs, out=args.out, verbose=0)
    print(f"test accuracy {result.metrics['test_accuracy']:.4f} in {result.metrics['train_seconds']:.1f} s")
    evaluated = cnnkit.evaluate(str(result.run_dir), "builtin:digits", out=f"{result.run_dir}/eval")
    print(f"evaluate: accuracy {evaluated['accuracy']:.4f}, macro-F1 {evaluated['macro_f1']:.4f}")
    # TensorFlow SavedModel: images in, probabilities out
    result.model.export(f"{result.run_dir}/savedmodel", verbose=False)
    print(f"exported {result.run_dir}/savedmodel")


if __name__ == "__main__":
    main()
