"""Word vectors for measuring `--embeddings` without a network: word2vec (gensim, skip-gram, 128
wide, window 5, words seen at least twice, 20 epochs, seed 0) trained on the texts of one CSV,
tokenized as cnnkit's default standardization does (lower case, Keras' punctuation stripped,
whitespace split), written in the word2vec text format that `--embeddings` reads.

gensim is not a cnnkit dependency; install it apart, for example in a virtual environment:

    python -m venv /tmp/gsenv && /tmp/gsenv/bin/pip install gensim
    /tmp/gsenv/bin/python bench/train_word_vectors.py ../shared/data/text/sst2/train.csv /tmp/sst2-train-w2v.txt
"""
import argparse
import csv
import re

PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'  # cnnkit.features.text.PUNCTUATION


def main() -> None:
    from gensim.models import Word2Vec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="a CSV with a `text` column")
    parser.add_argument("out", help="the vectors file to write (word2vec text format)")
    args = parser.parse_args()
    with open(args.csv, newline="", encoding="utf-8") as f:
        sentences = [re.sub(PUNCTUATION, "", row["text"].lower()).split() for row in csv.DictReader(f)]
    model = Word2Vec(sentences, vector_size=128, window=5, min_count=2, sg=1, epochs=20, seed=0, workers=1)
    model.wv.save_word2vec_format(args.out, binary=False)
    print(f"{len(model.wv)} words -> {args.out}")


if __name__ == "__main__":
    main()
