"""Writes a table of longer documents for text-cls checks: MR's sentences of one polarity, ten a
document (1 066 documents of 118-296 words, 210 on average), shuffled with seed 0.

python bench/make_long_docs.py [OUT.csv]   (default /tmp/longdoc/docs.csv)
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def main(out: str = "/tmp/longdoc/docs.csv") -> None:
    df = pd.read_csv(HERE.parent.parent / "shared" / "data" / "text" / "mr" / "all.csv")
    rng = np.random.default_rng(0)
    rows = []
    for label, group in df.groupby("label"):
        texts = group["text"].tolist()
        rng.shuffle(texts)
        rows += [(" ".join(texts[i:i + 10]), label) for i in range(0, len(texts) - 9, 10)]
    docs = pd.DataFrame(rows, columns=["text", "label"]).sample(frac=1, random_state=0)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    docs.to_csv(out, index=False)
    print(f"{out}: {len(docs)} documents, {docs.text.str.split().str.len().mean():.0f} words on average")


if __name__ == "__main__":
    main(*sys.argv[1:])
