"""Test accuracy of a finished image-cls run's network with more test-time views than airbench's
six: every view (11 shifts with reflected borders, each as it is and mirrored) is predicted once by
the saved model's plain network (`without_tta`) on the run's test split, then sets of views are
averaged. Prints one line per set. Answers whether more views than `tta: flip_shift` pay.

    python bench/tta_more_views.py bench/runs/cifar10-30min-YYYYMMDD-HHMMSS
"""
import argparse

import numpy as np

from cnnkit import api, tasks
from cnnkit.features import image as image_features

SHIFTS = [(0, 0), (1, 1), (-1, -1), (1, -1), (-1, 1), (2, 2), (-2, -2), (0, 1), (0, -1), (1, 0), (-1, 0)]


def shift(images, dy, dx):
    """(n, h, w, c) -> the same images moved by (dy, dx) pixels, borders filled by reflection."""
    p = max(abs(dy), abs(dx))
    if p == 0:
        return images
    padded = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
    return padded[:, p + dy:p + dy + images.shape[1], p + dx:p + dx + images.shape[2]]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run_dir")
    args = p.parse_args()
    model, _, cfg_dict = api.load_run(args.run_dir)
    cfg = api.config_from_run(cfg_dict)
    task = tasks.get(cfg.task)
    x, y = api.load_prepared(cfg, task).splits["test"]
    y = np.asarray(y)
    plain = image_features.without_tta(model) or model
    probs = {}
    for dy, dx in SHIFTS:
        for mirrored in (0, 1):
            view = shift(x, dy, dx)
            probs[(dy, dx, mirrored)] = plain.predict(view[:, :, ::-1] if mirrored else view, batch_size=500, verbose=0)

    def accuracy(keys):  # a view listed twice weighs twice
        return round(float((sum(probs[k] for k in keys).argmax(1) == y).mean()) * 100, 2)

    def both(s):
        return [(*s, 0), (*s, 1)]

    sets = {
        "one view": [(0, 0, 0)],
        "flip": both((0, 0)),
        "six (airbench, tta: flip_shift)": both((0, 0)) * 2 + both((1, 1)) + both((-1, -1)),
        "ten: + anti-diagonal 1-pixel shifts": both((0, 0)) * 4 + both((1, 1)) + both((-1, -1)) + both((1, -1)) + both((-1, 1)),
        "ten: + diagonal 2-pixel shifts": both((0, 0)) * 4 + both((1, 1)) + both((-1, -1)) + both((2, 2)) + both((-2, -2)),
        "ten: axis 1-pixel shifts instead": both((0, 0)) * 4 + sum([both(s) for s in [(0, 1), (0, -1), (1, 0), (-1, 0)]], []),
        "eighteen: all eight 1-pixel shifts": both((0, 0)) * 8 + sum([both(s) for s in SHIFTS[1:5] + SHIFTS[7:]], []),
        "all 22 views, equal weights": list(probs),
    }
    for name, keys in sets.items():
        print(f"{name}: {accuracy(keys)} %", flush=True)


if __name__ == "__main__":
    main()
