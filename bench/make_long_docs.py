"""Writes a table of longer documents for text-cls checks, made of a sentence set's texts of one
label, K a document (default: MR's sentences, ten a document: 1 066 documents of 118-296 words,
210 on average), shuffled with seed 0. No long-document set ships in ../shared/data; these stand in
for one, with the caveat that their sentences are independent evidence of the label.

python bench/make_long_docs.py [OUT.csv [SOURCE.csv [K]]]   (default /tmp/longdoc/docs.csv, MR, 10)
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
MR = HERE.parent.parent / "shared" / "data" / "text" / "mr" / "all.csv"


def main(out: str = "/tmp/longdoc/docs.csv", source: str = str(MR), k: str = "10") -> None:
    k = int(k)
    df = pd.read_csv(source)
    rng = np.random.default_rng(0)
    rows = []
    for label, group in df.groupby("label"):
        texts = group["text"].tolist()
        rng.shuffle(texts)
        rows += [(" ".join(texts[i:i + k]), label) for i in range(0, len(texts) - k + 1, k)]
    docs = pd.DataFrame(rows, columns=["text", "label"]).sample(frac=1, random_state=0)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    docs.to_csv(out, index=False)
    print(f"{out}: {len(docs)} documents, {docs.text.str.split().str.len().mean():.0f} words on average")


if __name__ == "__main__":
    main(*sys.argv[1:])
