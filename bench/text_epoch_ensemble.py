"""Checkpoint ensembles for text-cls: does averaging a member's neighbouring epochs help?

Trains a text-cls recipe (train -> test data) as `cnnkit train` does, with one extra callback that
scores the test split after every epoch of every member, through the member's end-to-end network
(raw strings in, as the saved model reads them; the naive-Bayes member is scored once at the end).
Then scores, from those probabilities, the ensemble the package saves (each member at its epoch of
least validation loss) against members averaged over neighbouring epochs: training is the same,
only what is kept differs. Appends a JSON line to bench/results/text_epoch_ensemble.jsonl and keeps
the probabilities in OUT/epoch_probs.npz.

    python bench/text_epoch_ensemble.py recipes/sst5.yaml ../shared/data/text/sst5 --seed 0 --out /tmp/ckpt/sst5-0

With --score RUN_DIR..., reads such runs' epoch_probs.npz and prints the test accuracy of the
ensemble of each run's first k members (k = 1 .. all; members at their epoch of least validation
loss that early stopping with patience 1 or 2 keeps, and the naive-Bayes member as one more
share): what fewer or more members, and a shorter patience, would have given without training again.

    python bench/text_epoch_ensemble.py --score /tmp/ckpt/sst5m8-0 /tmp/ckpt/sst5m8-10
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

from machine import describe  # bench/machine.py
from text_patience import stopped  # bench/text_patience.py: (kept epoch, epochs run) under a patience

ROOT = Path(__file__).resolve().parents[1]
CTX: dict = {"member": -1, "probs": []}  # what the patched functions below share


def install_hooks():
    """Wraps `api.fit_network` (which member, its data), the task's `build` (its end-to-end
    network) and `members_model` (the naive-Bayes member), and adds `EpochProbs` to the callbacks
    of every `training.fit`."""
    import keras

    from cnnkit import api, training
    from cnnkit.tasks.text_cls import TextClassification

    fit_network, build, members_model, make_callbacks = (api.fit_network, TextClassification.build,
                                                         TextClassification.members_model, training.make_callbacks)

    def fit_network_hooked(cfg, task_obj, prepared, *a, **k):
        CTX.update(member=CTX["member"] + 1, cfg=cfg, task=task_obj, x_test=prepared.splits["test"][0],
                   y_test=prepared.splits["test"][1])
        CTX["probs"].append([])
        return fit_network(cfg, task_obj, prepared, *a, **k)

    def build_hooked(self, cfg, prepared):
        train_model, infer_model = build(self, cfg, prepared)
        CTX["infer"] = infer_model
        return train_model, infer_model

    def members_model_hooked(self, networks, nb_member=None):
        if nb_member is not None:
            raw = keras.Input((), dtype="string")
            CTX["nb_model"] = keras.Model(raw, nb_member(self._vectorizer(raw)))
        return members_model(self, networks, nb_member)

    class EpochProbs(keras.callbacks.Callback):
        """After each epoch: (val_loss, the test split's probabilities (N, classes)) of the member."""

        def on_epoch_end(self, epoch, logs=None):
            probs = api.predict_probs(CTX["infer"], CTX["task"], CTX["x_test"], CTX["cfg"])
            CTX["probs"][CTX["member"]].append((float(logs["val_loss"]), probs))

    def make_callbacks_hooked(*a, **k):
        callbacks, nan = make_callbacks(*a, **k)
        return callbacks + [EpochProbs()], nan

    api.fit_network, training.make_callbacks = fit_network_hooked, make_callbacks_hooked
    TextClassification.build, TextClassification.members_model = build_hooked, members_model_hooked


def variants(epochs: list[tuple[float, np.ndarray]]) -> dict[str, np.ndarray]:
    """A member's test probabilities under each way of keeping epochs: `epochs` is its
    (val_loss, probs (N, classes)) per epoch; best = the epoch of least validation loss."""
    losses = [loss for loss, _ in epochs]
    b = int(np.argmin(losses))
    p = [probs for _, probs in epochs]
    mean = lambda idx: np.mean([p[i] for i in idx if 0 <= i < len(p)], axis=0)  # noqa: E731
    return {"best": p[b], "best_next": mean([b, b + 1]), "prev_best": mean([b - 1, b]),
            "prev_best_next": mean([b - 1, b, b + 1]), "upto_best": mean(range(b + 1)), "all": mean(range(len(p)))}


def score(run_dirs: list[str]) -> None:
    """Prints, for each run and on their mean, the accuracy of the first k members' ensemble."""
    table = {}
    for run in run_dirs:
        z = np.load(Path(run) / "epoch_probs.npz")
        y, nb, losses = z["y"], z["nb"], z["losses"]
        for patience in (1, 2):
            picks = [stopped(list(row[~np.isnan(row)]), patience) for row in losses]  # NaN: past its end
            probs = [z[f"m{i}_e{e}"] for i, (e, _) in enumerate(picks)]
            for k in range(1, len(probs) + 1):
                nets = np.mean(probs[:k], axis=0)
                with_nb = (nets * k + nb) / (k + 1) if nb.size else nets
                table.setdefault((patience, k), []).append((100 * (nets.argmax(1) == y).mean(),
                                                            100 * (with_nb.argmax(1) == y).mean(),
                                                            sum(ran for _, ran in picks[:k])))
    print("patience members  networks (mean; per run)  with the naive-Bayes member (mean; per run)  member-epochs (mean)")
    for (patience, k), got in sorted(table.items()):
        nets, with_nb, epochs = (np.array(c) for c in zip(*got))
        print(f"{patience:8d} {k:7d}  {nets.mean():6.2f} [{' '.join(f'{v:.2f}' for v in nets)}]"
              f"  {with_nb.mean():6.2f} [{' '.join(f'{v:.2f}' for v in with_nb)}]  {epochs.mean():.1f}")


def main() -> int:
    if sys.argv[1:2] == ["--score"]:
        score(sys.argv[2:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[], help="section.key=value, as cnnkit train's")
    args = ap.parse_args()
    install_hooks()
    import cnnkit

    result = cnnkit.train(args.recipe, args.data, out=args.out, sets=[f"train.seed={args.seed}", "train.verbose=0", *args.set])
    y = CTX["y_test"]
    from cnnkit import api

    nb = api.predict_probs(CTX["nb_model"], CTX["task"], CTX["x_test"], CTX["cfg"]) if "nb_model" in CTX else None
    per_member = [variants(m) for m in CTX["probs"]]
    acc = lambda probs: float(100 * (probs.argmax(1) == y).mean())  # noqa: E731
    row = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": describe(),
           "command": " ".join([Path(sys.executable).name] + sys.argv), "recipe": args.recipe, "seed": args.seed,
           "run_test_accuracy": 100 * result.metrics.get("test_accuracy", float("nan")),
           "best_epochs": [int(np.argmin([loss for loss, _ in m])) + 1 for m in CTX["probs"]],
           "epochs": [len(m) for m in CTX["probs"]]}
    for name in per_member[0]:
        nets = np.mean([v[name] for v in per_member], axis=0)
        row[f"networks_{name}"] = acc(nets)
        row[f"member_mean_{name}"] = float(np.mean([acc(v[name]) for v in per_member]))
        if nb is not None:  # the saved model's average: each network and the naive-Bayes member one share
            row[f"with_nb_{name}"] = acc((nets * len(per_member) + nb) / (len(per_member) + 1))
    longest = max(len(m) for m in CTX["probs"])  # members' epochs, padded with NaN to the longest
    np.savez_compressed(Path(args.out) / "epoch_probs.npz", y=y, nb=nb if nb is not None else np.zeros(0),
                        **{f"m{i}_e{e}": p for i, m in enumerate(CTX["probs"]) for e, (_, p) in enumerate(m)},
                        losses=np.array([[loss for loss, _ in m] + [np.nan] * (longest - len(m)) for m in CTX["probs"]]))
    out = ROOT / "bench" / "results" / "text_epoch_ensemble.jsonl"
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
