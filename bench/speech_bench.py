"""speech-cls benchmarks on the Free Spoken Digit Dataset (../shared/data/audio/fsdd).

Groups (default: all three, in one command); rows are appended to bench/results/speech.jsonl:
- given:      `cnnkit train recipes/fsdd.yaml` on the data set's train/test split.
- speakers:   speaker-independent: for each of the six speakers, train on the other five and
              test on that one; the mean and the worst speaker.
- throughput: clips/s of the cnnkit input pipeline (parallel decode + resample + the in-model
              log-mel layer, batched) against a per-file librosa loop computing the same log-mel
              features (librosa.load + melspectrogram + power_to_db), in the same process;
              and of a cached epoch (features from the decoded waveforms only).

    python bench/speech_bench.py                      # all
    python bench/speech_bench.py speakers --extra --set train.epochs=40
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
FSDD = ROOT.parent / "shared" / "data" / "audio" / "fsdd"
RESULTS = ROOT / "bench" / "results" / "speech.jsonl"


def train_run(data: Path, tag: str, extra: list[str]) -> dict:
    """One `cnnkit train recipes/fsdd.yaml` in a subprocess -> its metrics and wall time."""
    out = ROOT / "bench" / "runs" / f"speech-{tag}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    cmd = [sys.executable, "-m", "cnnkit.cli", "train", str(ROOT / "recipes" / "fsdd.yaml"), "--data", str(data),
           "--out", str(out), "--set", "train.verbose=0", *extra]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    m = json.loads((out / "metrics.json").read_text())
    m["wall_seconds"] = round(time.perf_counter() - start, 1)
    m["run_dir"] = str(out)
    return m


def speaker_folders(root: Path, speaker: str, target: Path) -> None:
    """target/train/DIGIT/ links every recording but `speaker`'s, target/test/DIGIT/ links his."""
    for wav in sorted(root.glob("*/*/*.wav")):
        digit, who = wav.parent.name, wav.stem.split("_")[1]
        dest = target / ("test" if who == speaker else "train") / digit
        dest.mkdir(parents=True, exist_ok=True)
        os.symlink(wav.resolve(), dest / wav.name)


def bench_given(extra: list[str]) -> dict:
    m = train_run(FSDD, "given", extra)
    return {"group": "given", "test_accuracy": round(100 * m["test_accuracy"], 2), "train_seconds": m["train_seconds"],
            "wall_seconds": m["wall_seconds"], "epochs": m["epochs"], "run_dir": m["run_dir"],
            "command": "cnnkit train recipes/fsdd.yaml --data ../shared/data/audio/fsdd " + " ".join(extra)}


def bench_speakers(extra: list[str]) -> dict:
    speakers = sorted({p.stem.split("_")[1] for p in FSDD.glob("*/*/*.wav")})
    per = {}
    with tempfile.TemporaryDirectory() as tmp:
        for speaker in speakers:
            folder = Path(tmp) / speaker
            speaker_folders(FSDD, speaker, folder)
            m = train_run(folder, f"speaker-{speaker}", extra)
            per[speaker] = {"test_accuracy": round(100 * m["test_accuracy"], 2), "train_seconds": m["train_seconds"]}
            print(speaker, per[speaker], flush=True)
    accs = [v["test_accuracy"] for v in per.values()]
    return {"group": "speakers", "mean_accuracy": round(float(np.mean(accs)), 2), "worst_accuracy": min(accs),
            "worst_speaker": min(per, key=lambda s: per[s]["test_accuracy"]), "per_speaker": per,
            "command": "python bench/speech_bench.py speakers " + " ".join(extra)}


def bench_throughput(limit: int = 3000) -> dict:
    """cnnkit pipeline vs a per-file librosa loop, same files, same features."""
    import keras
    import librosa

    from cnnkit.datasets import audio as audio_data
    from cnnkit.features import audio as audio_features

    paths = sorted(str(p) for p in FSDD.glob("*/*/*.wav"))[:limit]
    sr, seconds = 16000, 1.0
    n_fft, hop = audio_features.frame_lengths(sr, 32.0, 10.0)
    # The in-model front end, run as cnnkit runs it: a Keras model's predict over the cached clips.
    inputs = keras.Input((int(sr * seconds),))
    front = keras.Model(inputs, audio_features.LogMelSpectrogram(sr, n_fft, hop, 40, 20.0, None, 80.0)(inputs))

    def cnnkit_features(waves: np.ndarray) -> int:
        return len(front.predict(waves, batch_size=256, verbose=0))

    start = time.perf_counter()
    waves, kept, _ = audio_data.read_audio_files(paths, sr)
    fitted = audio_data.fit_length(waves, int(sr * seconds))
    decode_s = time.perf_counter() - start
    cnnkit_features(fitted[:512])  # build the predict function outside the timing
    t0 = time.perf_counter()
    n = cnnkit_features(fitted)
    feature_s = time.perf_counter() - t0
    cnnkit_s = decode_s + feature_s
    # The layer alone on batches already in memory (no Model.predict overhead).
    import tensorflow as tf

    layer_fn = tf.function(front.layers[-1].call, input_signature=[tf.TensorSpec((None, int(sr * seconds)), "float32")])
    layer_fn(fitted[:256])
    t0 = time.perf_counter()
    for i in range(0, len(fitted), 256):
        layer_fn(fitted[i:i + 256])
    layer_s = time.perf_counter() - t0

    def librosa_features(path):
        y, _ = librosa.load(path, sr=sr)
        y = librosa.util.fix_length(y, size=int(sr * seconds))
        mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=40, fmin=20.0,
                                             center=True, pad_mode="constant", power=2.0)
        return librosa.power_to_db(mel, ref=np.max, top_db=80.0)

    for p in paths[:5]:  # librosa's first calls compile with numba: not part of the loop's rate
        librosa_features(p)
    start = time.perf_counter()
    for p in paths:
        librosa_features(p)
    librosa_s = time.perf_counter() - start
    return {"group": "throughput", "clips": n, "cnnkit_clips_per_s": round(n / cnnkit_s, 1),
            "cnnkit_decode_clips_per_s": round(n / decode_s, 1), "cnnkit_cached_epoch_clips_per_s": round(n / feature_s, 1),
            "logmel_layer_alone_clips_per_s": round(n / layer_s, 1),
            "librosa_loop_clips_per_s": round(len(paths) / librosa_s, 1),
            "speedup_first_pass": round(librosa_s / cnnkit_s, 2), "speedup_cached_epoch": round(librosa_s / feature_s, 2),
            "command": "python bench/speech_bench.py throughput"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("groups", nargs="*", default=["given", "speakers", "throughput"])
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags for cnnkit train")
    args = parser.parse_args()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for group in args.groups:
        row = {"given": lambda: bench_given(args.extra), "speakers": lambda: bench_speakers(args.extra),
               "throughput": bench_throughput}[group]()
        row.update(date=dt.date.today().isoformat(), machine=describe())
        print(json.dumps(row), flush=True)
        with open(RESULTS, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
