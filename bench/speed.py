"""Training speed of each task's default model: cnnkit against the same model as plain
`keras.Model.fit` with a hand-written `tf.data` pipeline, and against the same model in PyTorch
(CPU), interleaved round by round; the achieved GFLOP/s against this machine's measured float32
matmul peak; and the input pipeline alone.

- image-cls: ResNet-20 + head, CIFAR-10 (32x32, the recipe's flips and 4-pixel shifts), batch 128.
- text-cls: Kim's CNN (embedding 128, widths 3/4/5 x 100, dropout 0.5) + head, SST-2, batch 50.
- speech-cls: the spectrogram CNN with its log-mel front end, FSDD, batch 16 (PyTorch: the same
  front end with torch.stft and cnnkit's mel matrix and statistics, the same stretch and masks).

PyTorch runs in its own environment (`--torch-python`, default /work/torchenv/bin/python, made
with `python -m venv ENV && ENV/bin/pip install torch==2.13.0 numpy`); it is never a cnnkit
dependency. Each round is one epoch per contender after a warm-up epoch; medians over `--rounds`.
Rows are appended to bench/results/speed.jsonl.

    python bench/speed.py                          # image and text, 3 rounds
    python bench/speed.py image --images 10000 --rounds 3
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from timing import epoch_seconds  # bench/timing.py: the epoch's steps, not fit's teardown
from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results" / "speed.jsonl"
TORCH_SCRIPT = ROOT / "bench" / "speed_torch.py"


def matmul_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    """float32 GFLOP/s of TensorFlow's matmul (n x n), best of `repeats`: the machine's peak here."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.matmul(a, b).numpy()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = max(best, 2 * n ** 3 / (time.perf_counter() - start) / 1e9)
    return best


def forward_flops(model, sample) -> float:
    """FLOPs of one example's forward pass: 2 x the multiply-adds of every Conv1D/Conv2D/Dense,
    with output sizes recorded while `model` runs on `sample` (a batch of one)."""
    import keras

    counted = [l for l in model._flatten_layers(include_self=False, recursive=True)
               if isinstance(l, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Dense))]
    shapes = {}
    for layer in counted:
        def recording(*a, _call=layer.call, _layer=layer, **k):
            out = _call(*a, **k)
            shapes[id(_layer)] = tuple(out.shape)
            return out
        layer.call = recording
    try:
        model(sample, training=False)
    finally:
        for layer in counted:
            del layer.call  # back to the class's method
    total = 0.0
    for layer in counted:
        out = shapes.get(id(layer))
        if out is None:
            continue
        fan_in = float(np.prod(layer.kernel.shape[:-1]))  # kernel taps x input channels (Dense: inputs)
        total += 2.0 * float(np.prod(out[1:])) * fan_in
    return total


def torch_round(task: str, data_dir: Path, torch_python: str, batch: int) -> float:
    """Samples/s of one timed PyTorch epoch (after a warm-up epoch) in the torch environment."""
    out = subprocess.run([torch_python, str(TORCH_SCRIPT), task, str(data_dir), str(batch)], check=True,
                         capture_output=True, text=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["samples_per_second"])


def image_setup(n: int):
    """cnnkit's and a plain-Keras ResNet-20 on `n` CIFAR-10 training images; their datasets."""
    import keras
    import tensorflow as tf

    sys.path.insert(0, str(ROOT / "bench"))
    from throughput_image import plain_resnet

    from cnnkit import api, tasks, training
    from cnnkit.features import image as image_features

    # The image task's default network for small images (backbone auto), with the recipe's data settings.
    cfg = api.resolve_config("cifar10", str(DATA / "image" / "cifar10-jpg.tar.gz"), limit=n, val_split=0.0,
                             backbone="resnet20", backbone_args={}, head_pooling="avg")
    task = tasks.get(cfg.task)
    prepared = api.load_prepared(cfg, task)
    x, y = prepared.splits["train"]
    steps = int(np.ceil(len(y) / cfg.train.batch_size))
    ours, _ = task.build(cfg, prepared)
    training.compile_model(ours, cfg.train, steps, 10, soft_labels=task.soft_labels(cfg))
    ours_ds = task.dataset(x, y, cfg, training=True, num_classes=10).repeat()
    pp = cfg.preprocess
    aug = image_features.augmentation_layers(pp.flip, pp.translate, pp.rotation, pp.zoom, pp.cutout)
    plain = plain_resnet(x.shape[1:], 10, 3, cfg.model.head_dropout, aug)
    plain.compile(optimizer=keras.optimizers.AdamW(cfg.train.lr, weight_decay=cfg.train.weight_decay),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    plain_ds = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y)).batch(cfg.train.batch_size)
                .prefetch(tf.data.AUTOTUNE).repeat())
    return cfg, x, y, steps, ours, ours_ds, plain, plain_ds, task.dataset(x, y, cfg, training=True, num_classes=10)


def text_setup(n: int):
    """cnnkit's and a plain-Keras Kim CNN on SST-2's training sentences; token-id datasets."""
    import keras
    import tensorflow as tf
    from keras import layers

    from cnnkit import api, tasks, training

    cfg = api.resolve_config("sst2", str(DATA / "text" / "sst2"), limit=n)
    task = tasks.get(cfg.task)
    prepared = api.load_prepared(cfg, task)
    x, y = prepared.splits["train"]
    steps = int(np.ceil(len(y) / cfg.train.batch_size))
    ours, _ = task.build(cfg, prepared)
    training.compile_model(ours, cfg.train, steps, 2)
    ours_ds = task.dataset(x, y, cfg, training=True).repeat()
    vocab = len(task._vectorizer.get_vocabulary())
    p = cfg.preprocess
    ids = keras.Input((p.sequence_length,), dtype="int64")
    e = layers.Embedding(vocab, p.embed_dim)(ids)
    branches = [layers.GlobalMaxPooling1D()(layers.Conv1D(100, w, padding="same", activation="relu")(e)) for w in (3, 4, 5)]
    h = layers.Dropout(0.5)(layers.Concatenate()(branches))
    plain = keras.Model(ids, layers.Dense(2, activation="softmax")(h))
    plain.compile(optimizer=keras.optimizers.Adam(cfg.train.lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    tokens = task._vectorizer(np.asarray(x, dtype=object).astype(str)).numpy()
    plain_ds = (tf.data.Dataset.from_tensor_slices((tokens, y)).shuffle(len(y)).batch(cfg.train.batch_size)
                .prefetch(tf.data.AUTOTUNE).repeat())
    return cfg, tokens, y, steps, ours, ours_ds, plain, plain_ds, task.dataset(x, y, cfg, training=True), vocab


def speech_setup():
    """cnnkit's spectrogram CNN on FSDD and the same end-to-end model fitted by plain Keras on a
    hand-written tf.data pipeline of the decoded waveforms (no shift/noise augmentation)."""
    import tensorflow as tf

    from cnnkit import api, tasks, training

    cfg = api.resolve_config("fsdd", str(DATA / "audio" / "fsdd"))
    task = tasks.get(cfg.task)
    prepared = api.load_prepared(cfg, task)
    x, y = prepared.splits["train"]
    steps = int(np.ceil(len(y) / cfg.train.batch_size))
    ours, _ = task.build(cfg, prepared)
    training.compile_model(ours, cfg.train, steps, 10)
    ours_ds = task.dataset(x, y, cfg, training=True).repeat()
    plain, _ = task.build(cfg, prepared)
    import keras

    plain.compile(optimizer=keras.optimizers.AdamW(cfg.train.lr, weight_decay=cfg.train.weight_decay),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    plain_ds = (tf.data.Dataset.from_tensor_slices((x.astype("float32"), y)).shuffle(len(y))
                .batch(cfg.train.batch_size).prefetch(tf.data.AUTOTUNE).repeat())
    return cfg, x, y, steps, ours, ours_ds, plain, plain_ds, task.dataset(x, y, cfg, training=True)


def save_front_end(model, folder: Path) -> None:
    """The log-mel layer's settings and mel matrix and the per-bin statistics of `model`, for the
    PyTorch copy: audio.json, mel.npy, mean.npy, variance.npy in `folder`."""
    import keras

    logmel = next(l for l in model.layers if l.name == "logmel")
    norm = next(l for l in model.layers if l.name == "normalize")
    (folder / "audio.json").write_text(json.dumps({"n_fft": logmel.n_fft, "hop_length": logmel.hop_length,
                                                   "top_db": logmel.top_db}))
    np.save(folder / "mel.npy", logmel._mel_matrix)
    np.save(folder / "mean.npy", keras.ops.convert_to_numpy(norm.mean).reshape(-1))
    np.save(folder / "variance.npy", keras.ops.convert_to_numpy(norm.variance).reshape(-1))


def bench(task: str, args, peak: float) -> dict:
    torch_ok = Path(args.torch_python).exists()
    with tempfile.TemporaryDirectory(prefix="cnnkit-speed-") as tmp:
        if task == "image":
            cfg, x, y, steps, ours, ours_ds, plain, plain_ds, pipeline = image_setup(args.images)
            np.save(Path(tmp) / "x.npy", x)
        elif task == "text":
            cfg, x, y, steps, ours, ours_ds, plain, plain_ds, pipeline, vocab = text_setup(args.sentences)
            np.save(Path(tmp) / "x.npy", x)
            (Path(tmp) / "vocab.txt").write_text(str(vocab))
        else:
            cfg, x, y, steps, ours, ours_ds, plain, plain_ds, pipeline = speech_setup()
            np.save(Path(tmp) / "x.npy", x.astype("float32"))
            save_front_end(ours, Path(tmp))
        np.save(Path(tmp) / "y.npy", y)
        n = len(y)
        epoch_seconds(ours, ours_ds, steps)  # warm-up: tracing
        epoch_seconds(plain, plain_ds, steps)
        times = {"cnnkit": [], "plain_keras": []}
        torch_rates = []
        for _ in range(args.rounds):
            times["cnnkit"].append(epoch_seconds(ours, ours_ds, steps))
            times["plain_keras"].append(epoch_seconds(plain, plain_ds, steps))
            if torch_ok:
                torch_rates.append(torch_round(task, Path(tmp), args.torch_python, cfg.train.batch_size))
        rates = {k: n / statistics.median(v) for k, v in times.items()}
        if torch_rates:
            rates["pytorch"] = statistics.median(torch_rates)
        start = time.perf_counter()
        seen = 0
        for xb, _ in pipeline:
            seen += len(xb)
        pipeline_rate = seen / (time.perf_counter() - start)
        flops = forward_flops(ours, x[:1])
    row = {"task": task, "samples": n, "batch_size": cfg.train.batch_size, "rounds": args.rounds,
           **{f"{k}_samples_per_second": round(v, 1) for k, v in rates.items()},
           "cnnkit_vs_plain_keras": round(rates["cnnkit"] / rates["plain_keras"], 3),
           "cnnkit_vs_pytorch": round(rates["cnnkit"] / rates["pytorch"], 3) if "pytorch" in rates else None,
           "cnnkit_seconds_per_epoch": round(statistics.median(times["cnnkit"]), 2),
           "forward_mflops_per_sample": round(flops / 1e6, 2),
           # training ~ 3 x forward (forward, input gradients, weight gradients)
           "cnnkit_training_gflops_per_second": round(3 * flops * rates["cnnkit"] / 1e9, 2),
           "matmul_peak_gflops_per_second": round(peak, 1),
           "fraction_of_peak": round(3 * flops * rates["cnnkit"] / 1e9 / peak, 4),
           "pipeline_only_samples_per_second": round(pipeline_rate, 1),
           "pipeline_vs_training": round(pipeline_rate / rates["cnnkit"], 1),
           "epoch_seconds": {k: [round(t, 2) for t in v] for k, v in times.items()},
           "pytorch_samples_per_second_rounds": [round(r, 1) for r in torch_rates]}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="*", default=["image", "text"], choices=["image", "text", "speech"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--sentences", type=int, default=0, help="0: all of SST-2's training sentences")
    parser.add_argument("--torch-python", default="/work/torchenv/bin/python")
    args = parser.parse_args()
    peak = matmul_peak_gflops()
    print(f"matmul peak: {peak:.1f} GFLOP/s", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for task in args.tasks:
        row = bench(task, args, peak)
        row.update(date=dt.date.today().isoformat(), machine=describe(),
                   command=" ".join(["python", "bench/speed.py", *sys.argv[1:]]))
        print(json.dumps(row), flush=True)
        with open(RESULTS, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
