"""Cased variants of the text sets, for the standardization trial (BENCHMARKS.md, text-cls,
"Capitals inside sentences kept"): TREC is the only set here written in mixed case; SST and MR are
lowercased.

    python bench/text_case_data.py OUT_DIR

writes, each as CSV files with the source's split files:
- OUT_DIR/sst2_cap, OUT_DIR/sst5_cap: SST with each text's first letter and the word "i" upper
  case, as cased sentences have them (the cost of keeping case where capitals only open sentences);
- OUT_DIR/trec_lowfirst: TREC with each question's first letter lower case (the questions'
  capitals inside sentences kept, those opening them gone);
- OUT_DIR/trec_marks: TREC with fastai's case marks (ULMFiT): "xxup" before a word in capitals,
  "xxmaj" before a Capitalised one, the word itself left to the lowercasing.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"


def capitalise(text: str) -> str:
    """'i' -> 'I' as a word, and the first letter upper case: "it 's fine , i think" -> "It 's fine , I think"."""
    text = re.sub(r"(^|\s)i(?=\s|$|')", r"\1I", text)
    return text[:1].upper() + text[1:]


def lower_first(text: str) -> str:
    """The first letter lower case: "Who was Galileo ?" -> "who was Galileo ?"."""
    return text[:1].lower() + text[1:]


def case_marks(text: str) -> str:
    """fastai's replace_all_caps and replace_maj: "Who was NASA 's Galileo" -> "xxmaj Who was xxup NASA 's xxmaj Galileo"."""
    out = []
    for word in text.split():
        if len(word) > 1 and word.isupper() and any(c.isalpha() for c in word):
            out += ["xxup", word]
        elif word[:1].isupper() and (len(word) == 1 or word[1:].islower() or not any(c.isalpha() for c in word[1:])):
            out += ["xxmaj", word]
        else:
            out.append(word)
    return " ".join(out)


def write(source: str, name: str, change, out: Path) -> None:
    """Each split CSV of TEXT/source with `change` applied to its texts, into out/name."""
    (out / name).mkdir(parents=True, exist_ok=True)
    for path in sorted((TEXT / source).glob("*.csv")):
        frame = pd.read_csv(path, keep_default_na=False)
        frame["text"] = frame["text"].map(change)
        frame.to_csv(out / name / path.name, index=False)


def main(out: str) -> None:
    out = Path(out)
    write("sst2", "sst2_cap", capitalise, out)
    write("sst5", "sst5_cap", capitalise, out)
    write("trec", "trec_lowfirst", lower_first, out)
    write("trec", "trec_marks", case_marks, out)
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir() if p.is_dir()))} in {out}")


if __name__ == "__main__":
    main(sys.argv[1])
