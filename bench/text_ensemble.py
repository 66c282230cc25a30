"""Exploration (not the benchmark): what averaging the test probabilities of independently
trained runs of bench/text_explore.py's plain-Keras copy of the text-cls defaults gives.
One run per seed; prints each run's test accuracy and that of the average of the first 1..k runs.

    python bench/text_ensemble.py '{}' trec,sst2,sst5 0,1,2,3,4
"""
import json
import sys

import numpy as np

import text_explore as te  # bench/text_explore.py

if __name__ == "__main__":
    variant = json.loads(sys.argv[1])
    sets = sys.argv[2].split(",")
    seeds = [int(s) for s in sys.argv[3].split(",")]
    for s in sets:
        name, _, fold = s.partition(":")
        accs, probs = [], []
        for seed in seeds:
            acc, seconds, epochs = te.run(name, variant, seed, int(fold or 0))
            accs.append(acc)
            probs.append(te.LAST["probs"])
            labels = te.LAST["labels"]
            averaged = [float((np.mean(probs[:k], 0).argmax(1) == labels).mean() * 100) for k in range(1, len(probs) + 1)]
            print(f"{s} seed {seed}: {acc:.2f} t={seconds:.1f}s ep={epochs}; average of 1..{len(probs)} runs: "
                  f"{['%.2f' % a for a in averaged]}", flush=True)
        print(f"{s} single mean {np.mean(accs):.2f}; average of {len(seeds)} runs {averaged[-1]:.2f}", flush=True)
