"""Test accuracy of a finished image-cls run's network with each kind of test-time augmentation:
none (one view), flip (two) and flip_shift (six), on the run's own test split. The network is the
saved model's plain view (`without_tta`), so one training run answers what each kind adds.
Prints one JSON line and appends it to bench/results/image.jsonl.

    python bench/tta_views.py bench/runs/cifar10-30min-YYYYMMDD-HHMMSS
"""
import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

from cnnkit import api, tasks
from cnnkit.features import image as image_features


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run_dir")
    p.add_argument("--batch-size", type=int, default=500)
    args = p.parse_args()
    model, class_names, cfg_dict = api.load_run(args.run_dir)
    cfg = api.config_from_run(cfg_dict)
    task = tasks.get(cfg.task)
    x, y = api.load_prepared(cfg, task).splits["test"]
    plain = image_features.without_tta(model) or model
    raw = keras.Input(plain.input_shape[1:], name="image")
    views = {"none": plain,
             "flip": keras.Model(raw, image_features.flip_tta(raw, plain)),
             "flip_shift": keras.Model(raw, image_features.flip_shift_tta(raw, plain))}
    row = {"row": "tta-views", "run_dir": str(args.run_dir), "images": int(len(y)), "date": time.strftime("%Y-%m-%d")}
    for name, m in views.items():
        t0 = time.perf_counter()
        probs = m.predict(x, batch_size=args.batch_size, verbose=0)
        row[f"test_accuracy_{name}"] = round(float((probs.argmax(1) == np.asarray(y)).mean()), 4)
        row[f"seconds_{name}"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(row))
    with open(Path(__file__).parent / "results" / "image.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
