"""A custom 1D text CNN from cnnkit.blocks (two widths, max-over-time, its own classifier),
trained through cnnkit.train on the embedded SST-2 sentences, then evaluated and exported.

    python examples/custom_text_cnn.py [--epochs 5] [--out RUN_DIR]
"""
import argparse

import keras

import cnnkit
from cnnkit.blocks import ClassifierHead, ConvBlock


def text_cnn(input_shape, num_classes):
    """(steps, embedding) embedded tokens -> class probabilities (its own head: cnnkit adds none)."""
    inputs = keras.Input(input_shape)
    branches = [ConvBlock(64, width, rank=1, batch_norm=False, name=f"conv_w{width}")(inputs) for width in (3, 5)]
    x = keras.layers.Concatenate(name="widths")(branches)
    return keras.Model(inputs, ClassifierHead(num_classes, pooling="max", dropout=0.5, name="classifier")(x),
                       name="text_cnn")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", help="run folder (default runs/<task>-<time>; one that holds a run is refused)")
    args = parser.parse_args()
    result = cnnkit.train("text-cls", model=text_cnn, epochs=args.epochs, out=args.out, verbose=0)
    print(f"test accuracy {result.metrics['test_accuracy']:.4f} in {result.metrics['train_seconds']:.1f} s")
    evaluated = cnnkit.evaluate(str(result.run_dir), "builtin:sentences", out=f"{result.run_dir}/eval")
    print(f"evaluate: accuracy {evaluated['accuracy']:.4f}, macro-F1 {evaluated['macro_f1']:.4f}")
    print(cnnkit.predict(str(result.run_dir), ["a gripping , beautiful film", "dull and lifeless"], top_k=1))
    result.model.export(f"{result.run_dir}/savedmodel", verbose=False)  # strings in, probabilities out
    print(f"exported {result.run_dir}/savedmodel")


if __name__ == "__main__":
    main()
