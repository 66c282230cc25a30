"""Data sources (`--data SRC`) -> labelled splits in memory, shared by every task.

SRC is one of: a folder of class folders; a folder with train/ (val/, test/) sub-folders
of class folders; the same as a .tar/.tar.gz/.tgz/.zip archive (extracted safely into a
cache folder); a CSV/TSV file (or a folder of train/dev/test CSVs); an .npz with
x_train, y_train, x_test, y_test; `tfds:NAME`; `builtin:NAME`.

What comes out is a `LoadedData`: inputs are file paths, texts or arrays, labels are
class indices into `class_names`. Turning files into tensors is the task's business.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import hashlib
import itertools
import json
import os
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from cnnkit.errors import CnnkitError

SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "dev": "val", "test": "test", "testing": "test"}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".tar.bz2", ".tar.xz")
RECORD_SUFFIXES = (".jsonl", ".parquet")  # one record per example: JSON lines, or Parquet (Hugging Face datasets)
TABLE_SUFFIXES = (".csv", ".tsv") + RECORD_SUFFIXES
# Image formats that are not decoded (HEIC/HEIF: unless pillow-heif is installed, which makes them
# image extensions): a folder of them is refused with how to convert them.
UNDECODED_IMAGE_SUFFIXES = (".heic", ".heif", ".jp2", ".dcm", ".svg", ".cr2", ".nef", ".dng")
SPREADSHEET_SUFFIXES = (".xlsx", ".xls", ".xlsm", ".ods", ".numbers")  # refused with how to save them as CSV
FASTTEXT_LABEL = "__label__"  # fastText's format: `__label__pos __label__fun a fine film`, one example a line


@dataclasses.dataclass
class Split:
    """One split: `x` (paths, texts or an array, length N), `y` (N,) int class indices (or
    (N, classes) multi-hot) and `groups`: None, or (N,) strings naming each example's group
    (speaker, recording, fold): held-out splits and cross-validation folds keep a group whole."""

    x: object
    y: np.ndarray
    groups: np.ndarray | None = None

    def __len__(self):
        return len(self.y)

    def take(self, index: np.ndarray) -> "Split":
        """The examples at positions `index`."""
        x = self.x[index] if isinstance(self.x, np.ndarray) else [self.x[i] for i in index]
        return Split(x, self.y[index], None if self.groups is None else self.groups[index])


@dataclasses.dataclass
class LoadedData:
    """Labelled splits of one data source.

    kind: "files" (x holds paths), "texts" (x holds strings) or "arrays" (x is an ndarray).
    splits: "train" and any of "val", "test".
    class_names: the label names; y values index into it.
    skipped: (path or row, reason) for every input that was left out.
    origin: a description of the source, for messages.
    sample_rate: for audio arrays, their rate in Hz when the source says (tfds audio).
    multi_label: each example has any number of labels; y is multi-hot (N, num_classes).
    """

    kind: str
    splits: dict
    class_names: list
    skipped: list = dataclasses.field(default_factory=list)
    origin: str = ""
    sample_rate: int | None = None
    multi_label: bool = False  # y is (N, num_classes) multi-hot instead of (N,) class indices
    groups_from: str = ""  # where the splits' groups come from ("column 'fold'"), for messages; "": no groups


# ------------------------------------------------------------------ builtin registry
BUILTINS: dict[str, Callable[[], LoadedData]] = {}


def register_builtin(name: str):
    """Decorator: `builtin:NAME` for a loader `() -> LoadedData`."""

    def deco(fn):
        BUILTINS[name] = fn
        return fn

    return deco


@register_builtin("digits")
def builtin_digits() -> LoadedData:
    """scikit-learn's 8x8 digits (1 797 images) scaled to uint8 (N, 8, 8, 1), with a fixed
    stratified 20 % test split (seed 0), so every run reports the same test set."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = np.round(digits.images * (255.0 / 16.0)).astype("uint8")[..., None]
    y = digits.target.astype("int64")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return LoadedData("arrays", {"train": Split(x_tr, y_tr), "test": Split(x_te, y_te)},
                      [str(i) for i in range(10)], origin="builtin:digits")


@register_builtin("sentences")
def builtin_sentences() -> LoadedData:
    """3 000 training and 600 test sentences of SST-2 (binary movie-review sentiment),
    shipped in data/sentences."""
    data = load_folder(package_data_dir() / "sentences", ())
    data.origin = "builtin:sentences"
    return data


@register_builtin("spoken_digits")
def builtin_spoken_digits() -> LoadedData:
    """420 recordings of the Free Spoken Digit Dataset (8 kHz wav, six speakers, digits 0-9):
    300 for training and 120 for testing, shipped in data/spoken_digits."""
    data = load_folder(package_data_dir() / "spoken_digits", (".wav",))
    data.origin = "builtin:spoken_digits"
    return data


def package_data_dir() -> Path:
    """The embedded samples: `cnnkit/_data` (a link to the repo's `data/` that the wheel copies)."""
    return Path(__file__).resolve().parent.parent / "_data"


# ------------------------------------------------------------------ entry point
def is_folder_source(src: str) -> bool:
    """Whether data source `src` is a folder or an archive (of files, or of tables)."""
    return not src.startswith(("builtin:", "tfds:")) and (
        Path(src).expanduser().is_dir() or src.lower().endswith(ARCHIVE_SUFFIXES))


def load_source(src: str, *, extensions: tuple[str, ...] = (), text_column="text", label_column="label",
                strict=False, multi_label=None, encoding="utf-8", label_pattern: str | None = None,
                group_column: str | None = None) -> LoadedData:
    """Reads data source `src` into a `LoadedData`.

    Args:
        src: see the module docstring.
        extensions: the file suffixes a folder's files must have (lower case, with dot).
        text_column, label_column: the CSV/TSV columns.
        strict: raise on an unreadable row instead of skipping it.
        multi_label: CSV/TSV labels are `|`-separated label sets (None: when the column is `labels`).
        encoding: of CSV/TSV files.
        label_pattern: folders only: a regular expression searched in each file's name, its
            first group (or else the whole match) the file's label (`named_labels`), for
            folders of files named by class (`cat.12.jpg`) instead of class folders.
        group_column: tables only: the column naming each example's group (`group_column_of`:
            None/"none", "auto" or a name), into each Split's `groups`.
    """
    if label_pattern and not is_folder_source(src):
        raise CnnkitError(f"data.label_pattern reads labels from the file names of a folder (or archive) of files; "
                          f"{src} is not one. Drop the setting for it.")
    if src.startswith("builtin:"):
        name = src.split(":", 1)[1]
        if name not in BUILTINS:
            raise CnnkitError(f"Unknown data source '{src}'. Builtin sources: "
                              + ", ".join("builtin:" + n for n in sorted(BUILTINS)) + ".")
        return BUILTINS[name]()
    if src.startswith("tfds:"):
        return load_tfds(src.split(":", 1)[1])
    path = Path(src).expanduser()
    if not path.exists():
        raise CnnkitError(
            f"Data source {src} does not exist. Give a folder of class folders, an archive "
            f"(.tar.gz/.zip), a CSV/TSV file, an .npz file, tfds:NAME or builtin:NAME."
        )
    name = path.name.lower()
    if path.is_dir():
        return load_folder(path, extensions, text_column, label_column, strict, multi_label=multi_label,
                           encoding=encoding, label_pattern=label_pattern, group_column=group_column)
    if name.endswith(ARCHIVE_SUFFIXES):
        return load_folder(extract_archive(path), extensions, text_column, label_column, strict, origin=str(path),
                           multi_label=multi_label, encoding=encoding, label_pattern=label_pattern,
                           group_column=group_column)
    if name.endswith(".npz"):
        return load_npz(path)
    if name.endswith(TABLE_SUFFIXES) or is_fasttext(path, encoding):
        return read_tables({"train": path}, extensions, text_column, label_column, strict, multi_label, encoding,
                           str(path), group_column)
    if name.endswith(".txt"):
        raise CnnkitError(f"{path}: a .txt file is read as fastText's format, one example a line "
                          f"(`{FASTTEXT_LABEL}positive a fine film`), and its first line does not start with "
                          f"{FASTTEXT_LABEL}. For one text a file, put the files in a folder per class and give the "
                          f"folder; for a table of texts and labels, a .csv/.tsv.")
    if name.endswith(SPREADSHEET_SUFFIXES):
        raise CnnkitError(f"{path} is a spreadsheet workbook, which is not read: save its sheet as CSV (Excel: File > "
                          f"Save As > CSV UTF-8; LibreOffice: Save As > Text CSV) and give the .csv, whose first row "
                          f"names the columns (text,label).")
    raise CnnkitError(f"{path}: unsupported file type. Use a folder, .tar.gz/.zip, .csv/.tsv, .jsonl, .parquet, "
                      f".npz or a fastText .txt.")


# ------------------------------------------------------------------ folders
# Folders and files that operating systems add, not data: macOS zips carry __MACOSX/ (with a
# `._NAME` for each file), Windows writes Thumbs.db and desktop.ini. Names starting with "." too.
SYSTEM_NAMES = {"__macosx", "thumbs.db", "desktop.ini", "$recycle.bin", "system volume information"}


def is_system_entry(name: str) -> bool:
    """Whether a file or folder called `name` is hidden or an operating system's, not data."""
    return name.startswith(".") or name.lower() in SYSTEM_NAMES


def load_folder(root: Path, extensions, text_column="text", label_column="label", strict=False,
                origin: str | None = None, multi_label=None, encoding="utf-8", label_pattern=None,
                group_column=None) -> LoadedData:
    """A folder of class folders, or of split folders (train/, val/, test/) of class folders,
    or of split tables (train.csv, dev.csv, test.csv); with `label_pattern`, of files (or split
    folders of files) named by class (`named_labels`)."""
    root = Path(root)
    origin = origin or str(root)
    tables = {SPLIT_ALIASES[p.stem.lower()]: p for p in root.iterdir()
              if p.is_file() and p.stem.lower() in SPLIT_ALIASES
              and (p.suffix.lower() in TABLE_SUFFIXES or is_fasttext(p, encoding))}
    if "train" in tables:
        return read_tables(tables, extensions, text_column, label_column, strict, multi_label, encoding, origin,
                           group_column)
    split_dirs = {SPLIT_ALIASES[p.name.lower()]: p for p in sorted(root.iterdir())
                  if p.is_dir() and p.name.lower() in SPLIT_ALIASES}
    if not split_dirs:
        split_dirs = {"train": root}
    elif "train" not in split_dirs:
        raise CnnkitError(f"{root} has {', '.join(p.name for p in split_dirs.values())}/ but no train/ folder.")
    if label_pattern:
        return named_label_splits(split_dirs, extensions, label_pattern, strict, origin)
    folders = [p for p in split_dirs["train"].iterdir() if p.is_dir() and not is_system_entry(p.name)]
    for aside in sorted(p for p in folders if is_aside(p.name)):
        print(f"Left out {aside}: a folder named _like_this_ is not a class (Speech Commands keeps its background "
              f"noise in _background_noise_)", file=sys.stderr)
    class_names = sorted(p.name for p in folders if not is_aside(p.name))
    if not class_names:
        raise CnnkitError(f"{split_dirs['train']} has no class folders: put each class's files in a folder named after "
                          f"the class{named_class_hint(split_dirs['train'], extensions)}.")
    if len(class_names) < 2:
        raise CnnkitError(f"{split_dirs['train']} has a single class folder ({class_names[0]}): a classifier needs at least two classes.")
    index = {c: i for i, c in enumerate(class_names)}
    splits, skipped = {}, []
    for split, folder in split_dirs.items():
        paths, labels = [], []
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not is_system_entry(p.name)
                                and not is_aside(p.name)):
            if class_dir.name not in index:
                raise CnnkitError(f"{class_dir} is a class that {split_dirs['train']} does not have; "
                                  f"rename it to one of: {', '.join(class_names)}.")
            kept, other = folder_files(class_dir, extensions)
            skipped += other
            if not kept and split == "train":
                others = sorted({Path(f).suffix.lower() for f, _ in other if Path(f).suffix})
                hint = (f" It holds {', '.join(others[:4])} files: is this data for another task?" if others else "")
                unread = [x for x in others if x in UNDECODED_IMAGE_SUFFIXES]
                if unread:
                    heif = (" HEIC/HEIF photos are read once pillow-heif is installed: `pip install \"cnnkit[heic]\"`."
                            if set(unread) & {".heic", ".heif"} else "")
                    hint = (f" It holds {', '.join(unread)} images, a format that is not decoded (JPEG, PNG, BMP, GIF, "
                            f"WebP and TIFF are): convert them to PNG, e.g. `mogrify -format png *{unread[0]}` "
                            f"(ImageMagick) in each folder.{heif}")
                raise CnnkitError(f"Class folder {class_dir} has no {'/'.join(extensions) or ''} files: add some or remove "
                                  f"the folder.{hint}")
            paths += [str(f) for f in kept]
            labels += [index[class_dir.name]] * len(kept)
        splits[split] = Split(paths, np.asarray(labels, dtype="int64"))
    if list(split_dirs) == ["train"]:
        splits = listed_splits(root, splits["train"])
    return LoadedData("files", splits, class_names, skipped, origin)


def folder_files(folder: Path, extensions) -> tuple[list[Path], list]:
    """(files with one of `extensions` (any when empty) under `folder`, sorted; (path, reason)
    of the other files), system files (`is_system_entry`) left out."""
    files = sorted(f for f in folder.rglob("*") if f.is_file()
                   and not any(is_system_entry(part) for part in f.relative_to(folder).parts))
    kept = [f for f in files if not extensions or f.suffix.lower() in extensions]
    if len(kept) == len(files):
        return kept, []
    kept_set = set(kept)  # built once: a folder can hold 100 000 files
    return kept, [(str(f), "not a " + "/".join(extensions) + " file") for f in files if f not in kept_set]


def named_labels(files: list[Path], pattern: str) -> tuple[list[Path], list[str], list]:
    """(files, their labels, (path, reason) of the files left out): a file's label is the first
    group of `pattern` (a regular expression searched in its name), or the whole match when the
    pattern has no group; a file whose name does not match is left out.

    Raises:
        CnnkitError: for a pattern that is not a regular expression.
    """
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise CnnkitError(f"data.label_pattern {pattern!r} is not a regular expression ({e}).") from None
    kept, labels, skipped = [], [], []
    for f in files:
        m = regex.search(f.name)
        label = (m.group(1) if regex.groups else m.group(0)) if m else None
        if label:
            kept.append(f)
            labels.append(label)
        else:
            skipped.append((str(f), f"name does not match data.label_pattern {pattern}"))
    return kept, labels, skipped


def named_label_splits(split_dirs: dict, extensions, pattern: str, strict: bool, origin: str) -> LoadedData:
    """LoadedData of files labelled by their names (`named_labels`), one split per folder of
    `split_dirs` ({split: folder}); a label seen only outside train is an error."""
    splits, skipped, names = {}, [], {}
    for split, folder in split_dirs.items():
        files, other = folder_files(folder, extensions)
        files, labels, unnamed = named_labels(files, pattern)
        if unnamed and strict:
            raise CnnkitError(f"{unnamed[0][0]}: {unnamed[0][1]}; fix the pattern or drop --strict to skip such files.")
        skipped += other + unnamed
        names[split] = (files, labels)
    class_names = sorted(set(names["train"][1]))
    if len(class_names) < 2:
        found = f"one label, {class_names[0]}" if class_names else "no label"
        raise CnnkitError(f"data.label_pattern {pattern} finds {found} in the file names of {split_dirs['train']}: a "
                          f"classifier needs at least two classes. Its first group (or whole match) is the label.")
    index = {c: i for i, c in enumerate(class_names)}
    for split, (files, labels) in names.items():
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise CnnkitError(f"{split_dirs[split]} has files of label {unknown[0]}, which {split_dirs['train']} does not "
                              f"have (its labels: {', '.join(class_names[:10])}).")
        splits[split] = Split([str(f) for f in files], np.asarray([index[l] for l in labels], dtype="int64"))
    print(f"Labels from the file names (data.label_pattern {pattern}): {len(class_names)} classes, e.g. "
          f"{names['train'][0][0].name} -> {names['train'][1][0]}", file=sys.stderr)
    return LoadedData("files", splits, class_names, skipped, origin)


NAMED_CLASS_PATTERNS = (r"^(.+?)[ ._-]*\d+\.\w+$",  # the name before a final number: cat.12.jpg, Abyssinian_12.jpg
                        r"^([^ ._-]+)[ ._-]")  # the first word: 0_jackson_3.wav, dog-0001.png


def named_class_hint(folder: Path, extensions) -> str:
    """For a folder of files without class folders: the end of its error, `. If the file names
    carry the class, ...`, suggesting `data.label_pattern` values (NAMED_CLASS_PATTERNS) that
    give from 2 classes to half as many classes as files, with the classes each gives; "" when
    none does."""
    files = sorted(f for f in folder.iterdir() if f.is_file() and not is_system_entry(f.name)
                   and (not extensions or f.suffix.lower() in extensions))
    hints, seen = [], []
    for pattern in NAMED_CLASS_PATTERNS:
        _, labels, _ = named_labels(files, pattern)
        classes = sorted(set(labels))
        if 2 <= len(classes) <= len(files) / 2 and classes not in seen:
            seen.append(classes)
            shown = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
            hints.append(f"--set 'data.label_pattern={pattern}' gives {len(classes)} classes ({shown})")
    if not hints:
        return ""
    return (f". If the file names carry the class, as {files[0].name} may, a regular expression whose first group is "
            f"the class reads it: " + "; ".join(hints))


def is_aside(name: str) -> bool:
    """Whether a folder called `name` is kept aside, not a class: `_like_this_` (Speech
    Commands' `_background_noise_`)."""
    return len(name) > 2 and name.startswith("_") and name.endswith("_")


SPLIT_LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}  # Speech Commands' layout


def listed_splits(root: Path, train: Split) -> dict:
    """{"train": ..., ["val": ..., "test": ...]} of a folder of class folders whose root holds
    Speech Commands' split lists (`validation_list.txt`, `testing_list.txt`: a path relative to
    the root a line): the listed files move from `train` to those splits; without lists, train
    alone. Listed files that are not there are passed over."""
    lists = {split: root / name for split, name in SPLIT_LISTS.items() if (root / name).is_file()}
    if not lists:
        return {"train": train}
    where = {}
    for split, path in lists.items():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                where[os.path.normpath(root / line.strip())] = split
    assigned = np.asarray([where.get(os.path.normpath(x), "train") for x in train.x])
    splits = {split: train.take(np.flatnonzero(assigned == split)) for split in ("train", *lists)}
    counts = ", ".join(f"{split} {len(splits[split])}" for split in lists)
    print(f"{root}: {' and '.join(p.name for p in lists.values())} give the {'/'.join(lists)} split ({counts} files)",
          file=sys.stderr)
    return splits


# ------------------------------------------------------------------ archives
def cache_root() -> Path:
    """Where extracted archives are kept: $CNNKIT_CACHE or ~/.cache/cnnkit."""
    return Path(os.environ.get("CNNKIT_CACHE") or Path.home() / ".cache" / "cnnkit")


def _safe_members_tar(tar: tarfile.TarFile, archive: Path):
    """Every member of `tar`, after checking none is a link or leaves the target folder."""
    members = tar.getmembers()
    for m in members:
        if m.issym() or m.islnk():
            raise CnnkitError(f"{archive} contains a link ({m.name}); cnnkit refuses archives with links.")
        if not (m.isfile() or m.isdir()):
            raise CnnkitError(f"{archive} contains a special file ({m.name}); cnnkit extracts only files and folders.")
        _check_member_path(m.name, archive)
    return members


def _check_member_path(name: str, archive: Path):
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
        raise CnnkitError(f"{archive} has a member outside its folder ({name}); cnnkit refuses to extract it.")


def extract_archive(archive: Path) -> Path:
    """Extracts `archive` once into the cache and returns the data folder inside it.

    The folder is keyed by the archive's path, size and modification time, extracted
    into a temporary folder first and renamed, so an interrupted extraction leaves nothing.
    A single top-level folder (cifar10/...) is descended into.
    """
    stat = archive.stat()
    key = hashlib.sha1(f"{archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    stem = archive.name.split(".")[0]
    target = cache_root() / "archives" / f"{stem}-{key}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".extract-"))
        try:
            print(f"Extracting {archive} into {target} ...", file=sys.stderr)
            if archive.name.lower().endswith(".zip"):
                with zipfile.ZipFile(archive) as zf:
                    for info in zf.infolist():
                        _check_member_path(info.filename, archive)
                        if (info.external_attr >> 16) & 0o170000 == 0o120000:
                            raise CnnkitError(f"{archive} contains a link ({info.filename}); cnnkit refuses archives with links.")
                    zf.extractall(tmp)
            else:
                try:
                    with tarfile.open(archive) as tar:
                        members = _safe_members_tar(tar, archive)
                        tar.extractall(tmp, members=members, filter="data")
                except tarfile.TarError as e:
                    raise CnnkitError(f"{archive} is not a readable archive ({e}).") from None
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    root = target
    while True:
        entries = [p for p in root.iterdir() if not is_system_entry(p.name)]
        if len(entries) == 1 and entries[0].is_dir() and entries[0].name.lower() not in SPLIT_ALIASES:
            root = entries[0]
        else:
            return root


# ------------------------------------------------------------------ tables (CSV/TSV)
MULTI_LABEL_COLUMN = "labels"  # a column of this name holds |-separated labels (multi-label data)
LABEL_SEPARATOR = "|"


SWALLOW_LINES = 200  # a row of more lines than this is reported: often an unclosed quote, not a text
SAMPLE_ROWS = 200  # rows read to find a table's text column when it has none called `text`


def table_delimiter(header: str, path: Path, columns: tuple) -> str:
    """The delimiter of a table whose first line is `header`: the file type's own (a tab for
    .tsv, else a comma), unless the header names `columns` (or a `labels` column) only when split
    at a semicolon, tab or bar (a spreadsheet's CSV export in a locale whose decimal mark is a comma);
    for a header without the text column (`columns[0]`), the delimiter at which it names the label
    column (`columns[1]`)."""
    default = "\t" if path.suffix.lower() == ".tsv" else ","
    candidates = dict.fromkeys((default, ";", "\t", ",", "|"))  # the file type's own first, each once
    split = {d: [c.strip() for c in next(csv.reader([header], delimiter=d), [])] for d in candidates}
    for delimiter, names in split.items():
        if find_column(columns[0], names) and (find_column(columns[1], names) or find_column(MULTI_LABEL_COLUMN, names)):
            return delimiter
    # A table without the text column (found by its content later) is split where the label column is.
    return next((d for d, names in split.items() if len(names) > 1 and find_column(columns[1], names)), default)


def find_column(name: str, columns: list[str]) -> str | None:
    """The column of `columns` called `name`, or else the one column called so in another case
    (`Text` for `text`); None when there is none."""
    if name in columns:
        return name
    folded = [c for c in columns if c.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def decoding(encoding: str, setting: str = "Encoding") -> str:
    """The codec that reads text files of `encoding` (`data.encoding`): for UTF-8, utf-8-sig, which
    drops a byte-order mark (Excel's "CSV UTF-8", Notepad) instead of gluing it to the first
    column name or word.

    Raises:
        CnnkitError: for a name that is no encoding Python knows; the message opens with `setting`
            (e.g. "data.encoding").
    """
    try:
        return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    except LookupError:
        raise CnnkitError(f"{setting} {encoding!r} is not a text encoding Python knows; e.g. utf-8, cp1252 "
                          f"(Windows, Western Europe), latin-1, utf-16.") from None


def missing_column(path: Path, column: str, columns: list[str], delimiter: str) -> CnnkitError:
    """The error for a table whose first line, split at `delimiter` into `columns`, names no
    `column`: it lists the columns (each cut to 40 characters) and how to name them, and, since a
    file without a header line shows its first row here, how to give it one."""
    shown = ", ".join(repr(c if len(c) <= 40 else c[:37] + "...") for c in columns)
    sep = {"\t": "<TAB>", ",": ","}.get(delimiter, delimiter)
    if len(columns) == 2:  # the longer cell is likely the text
        text_first = len(columns[0]) >= len(columns[1])
        example = f"text{sep}label" if text_first else f"label{sep}text"
    else:
        example = f"text{sep}label"
    # Column names are short words; a cell with spaces, a long one or a number is more likely data.
    data_like = any(" " in c.strip() or len(c) > 30 or _is_number(c) for c in columns)
    return CnnkitError(
        f"{path} has no column '{column}' (its first line, read as column names: {shown}). "
        f"Name the columns: `cnnkit train ... --set data.text_column=NAME --set data.label_column=NAME`, "
        f"`cnnkit evaluate ... --text-column NAME --label-column NAME`."
        + (f" If that first line is data, the file has no header line: add one naming the columns in order, e.g. "
           f"`{example}`." if data_like else "")
    )


def is_table(item: str) -> bool:
    """Whether `item` (a command-line input) is a table file: CSV/TSV, JSON lines or Parquet."""
    return Path(item).is_file() and Path(item).suffix.lower() in TABLE_SUFFIXES


def table_head(path: Path, label_column: str, encoding: str) -> tuple[list[str], dict]:
    """(column names, {column: first row's value as a string}) of a CSV/TSV or record file."""
    try:
        if read_as_records(path):
            first = next(records(path, encoding), None)
            row = first[1] if first else {}
            return list(row), {k: "" if v is None else str(v) for k, v in row.items()}
        with open(path, newline="", encoding=decoding(encoding)) as f:
            delimiter = table_delimiter(f.readline(), path, (label_column, label_column))
            f.seek(0)
            reader = csv.reader(f, delimiter=delimiter)
            columns = [c.strip() for c in next(reader, [])]
            return columns, dict(zip(columns, next(reader, [])))
    except UnicodeDecodeError as e:
        raise not_text(path, encoding, e) from None


def read_as_records(path: Path) -> bool:
    """Whether a data file is read example by example with `records` (JSON lines, Parquet and
    fastText .txt files) rather than as a CSV/TSV."""
    return path.suffix.lower() in RECORD_SUFFIXES + (".txt",)


def is_fasttext(path: Path, encoding: str = "utf-8") -> bool:
    """Whether `path` is a .txt file in fastText's format: its first non-blank line starts with
    `__label__`."""
    if path.suffix.lower() != ".txt" or not path.is_file():
        return False
    try:
        with open(path, encoding=decoding(encoding)) as f:
            first = next((line for line in f if line.strip()), "")
    except (UnicodeDecodeError, OSError):
        return False
    return first.lstrip().startswith(FASTTEXT_LABEL)


def fasttext_labels(line: str) -> tuple[list[str], str]:
    """(labels, text) of a line of a fastText file: as fastText reads it, every word starting with
    `__label__` is a label and the other words are the text."""
    words = line.split()
    return ([w[len(FASTTEXT_LABEL):] for w in words if w.startswith(FASTTEXT_LABEL)],
            " ".join(w for w in words if not w.startswith(FASTTEXT_LABEL)))


def fasttext_records(path: Path, encoding: str = "utf-8"):
    """(`path:line`, {"text", "label"}) of each non-blank line of a fastText file (`fasttext_labels`).
    The label is a string, or a list of them in every record when some line has several (the
    file is multi-label; a line without any is then an example of none of them): a first pass
    looks for such a line, and both passes stream the file (a fastText set can hold millions of
    lines)."""
    with open(path, encoding=decoding(encoding)) as f:
        multi = any(len(fasttext_labels(line)[0]) > 1 for line in f if line.count(FASTTEXT_LABEL) > 1)
    with open(path, encoding=decoding(encoding)) as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                labels, text = fasttext_labels(line)
                yield f"{path}:{n}", {"text": text, "label": labels if multi else (labels[0] if labels else None)}


def records(path: Path, encoding: str = "utf-8"):
    """(where, record dict) of each example of a JSON-lines (one object a line; blank lines left
    out), Parquet or fastText .txt file (`fasttext_records`); `where` is `path:line` or `path:row N`.

    Raises:
        CnnkitError: for a line that is not a JSON object, naming it.
    """
    if path.suffix.lower() == ".txt":
        yield from fasttext_records(path, encoding)
        return
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq  # tensorflow-datasets depends on pyarrow

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as e:  # ArrowInvalid and the like: not a Parquet file
            raise CnnkitError(f"{path} is not a readable Parquet file ({type(e).__name__}: {e}).") from None
        for i, row in enumerate(rows):
            yield f"{path}:row {i + 1}", row
        return
    with open(path, encoding=decoding(encoding)) as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                row = e
            if not isinstance(row, dict):
                raise CnnkitError(f"{path}:{n} is not a JSON object: each line of a .jsonl file is one example, e.g. "
                                  f'{{"text": "a fine film", "label": "pos"}}.')
            yield f"{path}:{n}", row


def table_texts(path: Path, text_column: str = "text", encoding: str = "utf-8") -> tuple[list, list, list]:
    """(texts, names, skipped) of the `text_column` of a CSV/TSV, JSON-lines or Parquet file to
    predict on: one text a row, named `file:line` (`file:row N` for Parquet); no label needed; an
    empty text is skipped.

    Raises:
        CnnkitError: when the table has no such column, listing its columns.
    """
    if path.suffix.lower() in RECORD_SUFFIXES:
        rows = records(path, encoding)
    else:
        rows = csv_records(path, text_column, encoding)
    texts, names, skipped, column = [], [], [], None
    try:
        for where, row in rows:
            if column is None:
                column = find_column(text_column, list(row))
                if column is None:
                    raise CnnkitError(f"{path} has no column '{text_column}' (columns: {', '.join(row)}): name the "
                                      f"column of texts with --text-column NAME.")
            text = row.get(column)
            if text is None or not str(text).strip():
                skipped.append((where, "empty text"))
                continue
            texts.append(str(text))
            names.append(where)
    except UnicodeDecodeError as e:
        raise not_text(path, encoding, e) from None
    return texts, names, skipped


def csv_records(path: Path, column: str, encoding: str = "utf-8"):
    """(`path:line`, row dict) of each row of a CSV/TSV whose header names `column` (its delimiter
    found as `table_delimiter` finds it); a row is named by its first line."""
    with open(path, newline="", encoding=decoding(encoding)) as f:
        delimiter = table_delimiter(f.readline(), path, (column, column))
        f.seek(0)
        reader = csv.DictReader(f, delimiter=delimiter)
        reader.fieldnames = [c.strip() for c in reader.fieldnames or []]
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num
            yield f"{path}:{line}", row


def read_records(path: Path, text_column="text", label_column="label", strict=False, multi_label=None,
                 encoding="utf-8", group_column=None):
    """`read_table` for JSON-lines and Parquet files: (texts, labels, skipped, groups). A label that
    is a list makes the file multi-label too; other values are read as strings."""
    rows = records(path, encoding)
    first = next(rows, None)
    if first is None:
        raise CnnkitError(f"{path} holds no examples.")
    columns = list(first[1])

    def missing(column):
        return CnnkitError(f"{path} has no field '{column}' (the first example's fields: {', '.join(columns)}). Name "
                           f"them: `--set data.text_column=NAME --set data.label_column=NAME`.")

    text_column, label_column = table_columns(
        columns, text_column, label_column, missing, where=str(path),
        sample=lambda: [row for _, row in itertools.islice(records(path, encoding), SAMPLE_ROWS)])
    multi = (label_column.casefold() == MULTI_LABEL_COLUMN or isinstance(first[1].get(label_column), list)
             if multi_label is None else bool(multi_label))
    texts, labels, skipped, groups = [], [], [], []
    for where, row in itertools.chain([first], rows):
        text, label = row.get(text_column), row.get(label_column)
        add_example(where, None if text is None else str(text),
                    label if label is None or isinstance(label, list) else str(label),
                    multi, strict, texts, labels, skipped)
        if group_column and len(groups) < len(texts):  # the row was kept
            groups.append(group_value(row.get(group_column)))
    return texts, labels, skipped, groups if group_column else None


GROUP_COLUMN_AUTO = "fold"  # data.group_column auto: ESC-50's and UrbanSound8K's predefined folds


def group_column_of(path: Path, setting: str | None, label_column: str, encoding: str,
                    required: bool) -> str | None:
    """The column of table `path` that names each row's group, for `data.group_column` `setting`:
    None or "none": no column; "auto": a column named `fold` (ESC-50's and UrbanSound8K's
    predefined folds) when there is one; else the column of that name: when the table lacks it,
    an error if `required` (the training table), else None."""
    if not setting or setting.casefold() == "none":
        return None
    columns = table_head(path, label_column, encoding)[0]
    if setting.casefold() == "auto":
        found = find_column(GROUP_COLUMN_AUTO, columns)
        return found if found and found != find_column(label_column, columns) else None
    found = find_column(setting, columns)
    if found is None and required:
        raise CnnkitError(f"{path} has no column '{setting}' to read groups from (data.group_column; its columns: "
                          f"{', '.join(columns)}): name one of them, or set data.group_column=none.")
    return found


def group_value(value) -> str:
    """A table cell naming a group, as a string ("" when empty: a group of its own)."""
    return "" if value is None else str(value).strip()


def table_columns(columns: list[str], text_column: str, label_column: str, missing, sample=None,
                  where: str = "") -> tuple[str, str]:
    """The (text, label) columns of a table with `columns`: as named, or in another case; with no
    `label` column, a `labels` one (multi-label); with no `text` column (the default name), the
    one `infer_text_column` finds in `sample()` (a few rows as dicts), said on standard error
    with `where` (the file). `missing(column)` makes the error for a column the table lacks."""
    if not find_column(label_column, columns) and label_column == "label" and find_column(MULTI_LABEL_COLUMN, columns):
        label_column = MULTI_LABEL_COLUMN
    label_column = find_column(label_column, columns) or label_column
    if label_column not in columns:  # before the text column is looked for: a file without a header lacks both
        raise missing(label_column)
    if not find_column(text_column, columns) and text_column == "text" and sample is not None:
        inferred = infer_text_column(sample(), columns, label_column)
        if inferred:
            print(f"{where}: no 'text' column; reading '{inferred}' as the text (its longest column that is not "
                  f"numbers; --set data.text_column=NAME picks another)", file=sys.stderr)
            text_column = inferred
    text_column = find_column(text_column, columns) or text_column
    for column in (text_column, label_column):
        if column not in columns:
            raise missing(column)
    return text_column, label_column


def infer_text_column(rows: list[dict], columns: list[str], label_column: str) -> str | None:
    """The column of a table's `rows` that most likely holds its texts: of the columns but the
    label, those whose values are mostly not numbers (ids, scores), the one with the longest
    values on average; None when every column is numbers or empty."""
    best, best_length = None, 0.0
    for column in columns:
        if column == label_column:
            continue
        values = [str(row.get(column) or "").strip() for row in rows]
        values = [v for v in values if v]
        if not values:
            continue
        numbers = sum(1 for v in values if _is_number(v))
        length = sum(len(v) for v in values) / len(values)
        if numbers <= 0.2 * len(values) and length > best_length:
            best, best_length = column, length
    return best


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def add_example(where: str, text: str | None, label, multi: bool, strict: bool, texts: list, labels: list,
                skipped: list) -> None:
    """Appends a table row's example to `texts` and `labels`, or (where, reason) to `skipped` for
    an empty text, a missing label or text (with `strict`: an error naming `where`). `label`: a
    string, a list (multi-label) or None; multi-label labels are a sorted tuple (a string is
    `|`-separated; empty: none of the labels applies)."""
    if text is not None and not text.strip() and label is not None:
        if strict:
            raise CnnkitError(f"{where} has an empty text; fix the row or drop --strict to skip it.")
        skipped.append((where, "empty text"))
        return
    if multi and label is not None and text is not None:
        parts = label if isinstance(label, list) else label.split(LABEL_SEPARATOR)
        texts.append(text)
        labels.append(tuple(sorted({str(l).strip() for l in parts if str(l).strip()})))
        return
    if not label or not str(label).strip() or text is None:
        if strict:
            raise CnnkitError(f"{where} has no label; fix the row or drop --strict to skip it.")
        skipped.append((where, "no label" if text is not None else "no text"))
        return
    texts.append(text)
    labels.append(str(label).strip())


def read_table(path: Path, text_column="text", label_column="label", strict=False, multi_label=None,
               encoding="utf-8", group_column=None):
    """(texts, labels, skipped rows, groups) of a CSV/TSV file (JSON lines and Parquet:
    `read_records`); a row with an empty text or label is skipped (or an error with `strict`;
    `add_example`). Labels stay strings here. `groups`: None, or with `group_column` (a column
    of the table) each kept row's value there.

    Multi-label tables: when the file has no `label_column` but a `labels` column, that column
    is read; a `labels` column (or `multi_label=True`) holds `|`-separated labels, returned as
    a tuple of strings per row (empty: none of the labels applies).
    """
    try:
        if read_as_records(path):
            return read_records(path, text_column, label_column, strict, multi_label, encoding, group_column)
        with open(path, newline="", encoding=decoding(encoding)) as f:
            delimiter = table_delimiter(f.readline(), path, (text_column, label_column))
            f.seek(0)
            reader = csv.DictReader(f, delimiter=delimiter)
            # "text, label": column names are matched without the spaces around them
            reader.fieldnames = columns = [c.strip() for c in reader.fieldnames or []]
            text_column, label_column = table_columns(
                columns, text_column, label_column, lambda column: missing_column(path, column, columns, delimiter),
                where=str(path), sample=lambda: [row for _, row in itertools.islice(
                    csv_records(path, label_column, encoding), SAMPLE_ROWS)])
            multi = label_column.casefold() == MULTI_LABEL_COLUMN if multi_label is None else bool(multi_label)
            texts, labels, skipped, groups = [], [], [], []
            end = reader.line_num  # the header's last line
            for row in reader:
                # a quoted cell may span lines: name a row by its first line in the file
                line, end = end + 1, reader.line_num
                if end - line + 1 > SWALLOW_LINES:
                    message = (f"{path}:{line}: one row spans {end - line + 1} lines (to line {end}). If these "
                               f"are not one long multi-line text, a quote (\") at line {line} is never closed and "
                               f"the rows after it were read as that text: close or remove the quote")
                    if strict:  # --strict: stop rather than lose the rows after the quote
                        raise CnnkitError(f"{message}; or drop --strict to read the row as one text.")
                    print(f"Warning: {message}.", file=sys.stderr)
                # named here by its line; the task would name it only by its place in a split
                add_example(f"{path}:{line}", row.get(text_column), row.get(label_column), multi, strict,
                            texts, labels, skipped)
                if group_column and len(groups) < len(texts):  # the row was kept
                    groups.append(group_value(row.get(group_column)))
    except UnicodeDecodeError as e:
        raise not_text(path, encoding, e) from None
    return texts, labels, skipped, groups if group_column else None


def not_text(path: Path, encoding: str, e: UnicodeDecodeError) -> CnnkitError:
    """The error for a table that is not text in `encoding`: where it fails and how to read it."""
    name = "UTF-8" if decoding(encoding) == "utf-8-sig" else encoding
    return CnnkitError(f"{path} is not {name} text ({e.reason} at byte {e.start}): re-save it as UTF-8, or give "
                       f"its encoding, e.g. --set data.encoding=cp1252 (Windows, Western Europe) or latin-1 in "
                       f"training, --encoding cp1252 to predict and evaluate.")


def read_tables(tables: dict, extensions, text_column, label_column, strict, multi_label, encoding,
                origin: str, group_column: str | None = None) -> LoadedData:
    """`{split: CSV/TSV path}` -> LoadedData: the texts of `text_column` for a text task (`extensions`
    empty or holding .txt); for a task of files (images, audio), the files that a column names
    (`file_column`, `located_files`), as a folder of class folders gives them (kind "files").
    `group_column`: see `load_source`."""
    tables = labelled_tables(tables, label_column, encoding)
    groups = {s: group_column_of(p, group_column, label_column, encoding, required=s == "train")
              for s, p in tables.items()}
    files = bool(extensions) and ".txt" not in extensions
    columns = {s: file_column(p, extensions, text_column, label_column, encoding) if files else None
               for s, p in tables.items()}
    texts = None in columns.values()  # a table of texts (for a task of files, the task names the task for it)
    data = table_splits({s: read_table(p, text_column if texts else columns[s], label_column, strict, multi_label,
                                       encoding, groups[s]) for s, p in tables.items()}, origin)
    if groups["train"]:
        data.groups_from = f"column '{groups['train']}' of {tables['train'].name}"
    if texts:
        return data
    for split, path in tables.items():
        kept, skipped = located_files(path, columns[split], data.splits[split].x, extensions, strict)
        data.splits[split] = data.splits[split].take(kept)
        data.skipped += skipped
    data.kind = "files"
    return data


def labelled_tables(tables: dict, label_column: str, encoding: str) -> dict:
    """`tables` ({split: path}) without the val/test tables that have no label column (Kaggle's
    test.csv, which holds the inputs to predict on), each named on standard error."""
    kept = {}
    for split, path in tables.items():
        columns = table_head(path, label_column, encoding)[0] if split != "train" else None
        if columns is not None and not (find_column(label_column, columns) or find_column(MULTI_LABEL_COLUMN, columns)):
            print(f"{path} has no '{label_column}' column: not used as the {split} split (its inputs can be scored "
                  f"with `cnnkit predict RUN_DIR {path}`)", file=sys.stderr)
            continue
        kept[split] = path
    return kept


FILE_COLUMN_WORDS = ("file", "path", "fname")  # a column whose name holds one of these names files


def names_files(column: str) -> bool:
    """Whether a table column's name says it holds file names (`filename`, `slice_file_name`,
    `path`, `fname`, ...): such a column is looked up beside the table's folder too."""
    return any(word in column.casefold() for word in FILE_COLUMN_WORDS)


def search_bases(folder: Path, beside: bool = False) -> list[Path]:
    """Where a table in `folder` may keep its files, in this order: the folder and its subfolders
    (Kaggle's train.csv beside train/); with `beside` (a column named for files, `names_files`),
    then the folder above, the folders beside `folder` and their subfolders (ESC-50's
    meta/esc50.csv naming the clips of audio/, UrbanSound8K's metadata/ those of audio/fold1 ...
    audio/fold10). Only for such a column: words of a text column could match files of a
    neighbouring folder. Listed once per table (a flat folder can hold 100 000 images)."""
    def subfolders(root: Path) -> list[Path]:
        return sorted(p for p in root.iterdir() if p.is_dir() and not is_system_entry(p.name))

    bases = [folder] + subfolders(folder)
    if beside and folder.parent != folder:
        others = [p for p in subfolders(folder.parent) if p != folder]
        bases += [folder.parent] + others + [sub for p in others for sub in subfolders(p)]
    return bases


def locate(bases: list[Path], name: str, extensions) -> tuple[Path, str] | None:
    """Where a table's file `name` is: (base, suffix) such that base / (name + suffix) is a file
    with one of `extensions`; `bases` from `search_bases`, the suffix "" or one of `extensions`
    for names without one. None: nowhere."""
    name = name.strip()
    if not name:
        return None
    suffixes = [""] if Path(name).suffix.lower() in extensions else list(extensions)
    for base in bases:
        for suffix in suffixes:
            if (base / (name + suffix)).is_file():
                return base, suffix
    return None


def file_column(path: Path, extensions, text_column: str, label_column: str, encoding: str) -> str | None:
    """The column of table `path` that names the input files: the first of `text_column` and the
    other columns but the label whose first value names a file (`locate`); None when none does
    (a table of texts)."""
    columns, first = table_head(path, label_column, encoding)
    label = find_column(label_column, columns) or find_column(MULTI_LABEL_COLUMN, columns)
    named = find_column(text_column, columns)
    candidates = ([named] if named else []) + [c for c in columns if c not in (named, label)]
    near = search_bases(path.parent)
    far = search_bases(path.parent, beside=True) if any(names_files(c) for c in candidates) else near
    return next((c for c in candidates if locate(far if names_files(c) else near, first.get(c, ""), extensions)),
                None)


def table_files(path: Path, extensions, column: str = "text",
                encoding: str = "utf-8") -> tuple[list[str], list, list[str]]:
    """(files, skipped, names) of a table without labels, e.g. Kaggle's test.csv of ids: the files
    of the column `file_column` finds (`column` first), resolved as `located_files` resolves them,
    and for each file the table's cell as written (the id a submission names).

    Raises:
        CnnkitError: when no column names a file of `extensions`.
    """
    found = file_column(path, extensions, column, "label", encoding)
    if found is None:
        raise CnnkitError(f"{path}: no column names {'/'.join(extensions)} files in {path.parent} or a folder in it "
                          f"(a column of file names, the extension optional).")
    rows = records(path, encoding) if path.suffix.lower() in RECORD_SUFFIXES else csv_records(path, found, encoding)
    try:
        names = ["" if row.get(found) is None else str(row.get(found)) for _, row in rows]
    except UnicodeDecodeError as e:
        raise not_text(path, encoding, e) from None
    cells = list(names)  # located_files writes each found file's path into `names`
    kept, skipped = located_files(path, found, names, extensions, strict=False)
    return [names[i] for i in kept], skipped, [cells[i].strip() for i in kept]


def located_files(path: Path, column: str, names: list[str], extensions, strict: bool) -> tuple[np.ndarray, list]:
    """(positions of `names` whose file exists, skipped (file, reason)) for the file names of
    `column` in table `path`: paths under the base and with the suffix that the first locatable
    name has (`locate`), so that most files are looked up once each; a name not there is looked
    for in the other folders (`search_bases`; UrbanSound8K keeps its clips in ten folders).

    Raises:
        CnnkitError: when no name is found, or (with `strict`) for the first one that is not.
    """
    bases = search_bases(path.parent, beside=names_files(column))
    where = next((found for found in (locate(bases, n, extensions) for n in names[:50]) if found), None)
    if where is None:
        shown = ", ".join(repr(n) for n in names[:3])
        where = ("a folder in it, the folder above, one beside it or one in those" if names_files(column)
                 else "or a folder in it")
        raise CnnkitError(f"{path}: none of the files of column '{column}' ({shown}, ...) is in {path.parent}, {where}, "
                          f"as a {'/'.join(extensions)} file: give names relative to {path.parent}.")
    base, suffix = where
    kept, skipped = [], []
    for i, name in enumerate(names):
        file = base / (name.strip() + suffix)
        if not file.is_file():
            elsewhere = locate(bases, name, extensions)
            file = elsewhere[0] / (name.strip() + elsewhere[1]) if elsewhere else file
        if file.is_file() and file.suffix.lower() in extensions:
            names[i] = str(file)
            kept.append(i)
            continue
        reason = "no such file" if not file.is_file() else "not a " + "/".join(extensions) + " file"
        if strict:
            raise CnnkitError(f"{path}: {file} (column '{column}'): {reason}; fix the row or drop --strict to skip it.")
        skipped.append((str(file), f"{reason} (named in {path.name})"))
    return np.asarray(kept, dtype="int64"), skipped


def table_splits(tables: dict, origin: str) -> LoadedData:
    """`{split: (texts, labels, skipped, groups)}` (`read_table`) -> LoadedData with labels
    indexed by the train classes.

    Single-label: y is (N,) int64. Multi-label (labels are tuples): y is (N, num_classes)
    float32 multi-hot and `multi_label` is set. Groups (a list or None) become each Split's.
    """
    multi = any(isinstance(l, tuple) for _, labels, _, _ in tables.values() for l in labels)
    train_labels = tables["train"][1]
    class_names = sorted({l for ls in train_labels for l in ls} if multi else set(train_labels))
    if multi and not any(len(ls) > 1 for ls in train_labels):
        other = next((c for c in class_names for sep in (",", ";") if sep in c), None)
        if other:  # "sport,politics" read as one label: the sets were written with another separator
            print(f"Warning: {origin}: no example has more than one label, and labels such as {other!r} hold a "
                  f"comma or semicolon: cnnkit separates a row's labels with '{LABEL_SEPARATOR}' (sport|politics); "
                  f"rewrite the column with it, or each combination is a class of its own.", file=sys.stderr)
    if len(class_names) < 2:
        skipped = tables["train"][2]
        why = (f" ({len(skipped)} row(s) skipped for an empty text or label, the first {skipped[0][0]}; a quote that "
               f"is never closed makes the rest of a file one text)") if skipped else ""
        raise CnnkitError(f"{origin}: the training data has {len(class_names)} label(s){why}; a classifier needs "
                          f"at least two.")
    index = {c: i for i, c in enumerate(class_names)}
    splits, skipped = {}, []
    for split, (texts, labels, skip, groups) in tables.items():
        seen = {l for ls in labels for l in ls} if multi else set(labels)
        unknown = sorted(seen - set(index))
        if unknown:
            raise CnnkitError(f"{origin}: the {split} split has label(s) {', '.join(unknown[:5])} that training never saw.")
        if multi:
            y = np.zeros((len(labels), len(class_names)), dtype="float32")
            for row, ls in enumerate(labels):
                y[row, [index[l] for l in ls]] = 1.0
        else:
            y = np.asarray([index[l] for l in labels], dtype="int64")
        splits[split] = Split(list(texts), y, None if groups is None else np.asarray(groups, dtype=str))
        skipped += skip
    return LoadedData("texts", splits, class_names, skipped, origin, multi_label=multi)


# ------------------------------------------------------------------ npz
def npz_labels(y: np.ndarray, name: str, path: Path) -> np.ndarray:
    """The labels (N,) of an .npz's `name` array: (N,) or (N, 1) as they are, one-hot (N, K) rows
    (Keras' `to_categorical`) as their class index.

    Raises:
        CnnkitError: for other 2D labels (several classes a row) or more dimensions.
    """
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim == 2:
        if np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
            return y.argmax(axis=1)
        raise CnnkitError(f"{path}: {name} has shape {y.shape} but its rows are not one-hot: give one class a "
                          f"row, as class indices (N,) or one-hot (N, classes).")
    if y.ndim != 1:
        raise CnnkitError(f"{path}: {name} has shape {y.shape}: give one class a row, as class indices (N,) or "
                          f"one-hot (N, classes).")
    return y


def channels_last(x: np.ndarray, name: str, path: Path) -> np.ndarray:
    """`x` (N, H, W, C); a 4D batch laid out channels first (N, C, H, W), as PyTorch keeps images,
    is moved to channels last with a note on standard error."""
    if x.ndim == 4 and x.shape[1] in (1, 3, 4) and x.shape[3] not in (1, 3, 4):
        print(f"{path}: {name} has shape {x.shape}, channels first (PyTorch's layout): read as "
              f"{(x.shape[0], x.shape[2], x.shape[3], x.shape[1])}", file=sys.stderr)
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return x


def load_npz(path: Path) -> LoadedData:
    """An .npz with x_train, y_train (and x_val/y_val, x_test/y_test), the keras.datasets layout.
    Labels may be one-hot (`npz_labels`); image batches channels first (`channels_last`)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise CnnkitError(f"{path} is not a readable .npz file ({e}).") from None
    if "x_train" not in arrays or "y_train" not in arrays:
        raise CnnkitError(f"{path} must hold x_train and y_train (and x_test, y_test). It holds: {', '.join(arrays)}.")
    labels = {}
    for split in ("train", "val", "test"):
        if f"x_{split}" in arrays:
            if f"y_{split}" not in arrays:
                raise CnnkitError(f"{path} holds x_{split} but no y_{split}: add its labels or leave both out.")
            y = labels[split] = npz_labels(arrays[f"y_{split}"], f"y_{split}", path)
            if len(y) != len(arrays[f"x_{split}"]):
                raise CnnkitError(f"{path}: x_{split} holds {len(arrays[f'x_{split}'])} examples but y_{split} "
                                  f"{len(y)} labels; give one label an example.")
    raw_labels = np.unique(labels["train"])
    index = {v: i for i, v in enumerate(raw_labels.tolist())}
    splits = {}
    for split, y in labels.items():
        unknown = set(y.tolist()) - set(index)
        if unknown:
            raise CnnkitError(f"{path}: y_{split} has labels {sorted(unknown)[:5]} that y_train does not.")
        x = channels_last(arrays[f"x_{split}"], f"x_{split}", path)
        splits[split] = Split(x, np.asarray([index[v] for v in y.tolist()], dtype="int64"))
    return LoadedData("arrays", splits, [str(v) for v in raw_labels.tolist()], origin=str(path))


# ------------------------------------------------------------------ tensorflow-datasets
def supervised_pair(features, supervised_keys) -> tuple[str, str] | None:
    """The (input, label) feature names of a TFDS data set: its `supervised_keys`, or for one
    without them (e.g. glue/sst2: idx, label, sentence) its one text, image or audio feature and its
    one class label; None when that is not clear."""
    import tensorflow_datasets as tfds

    if supervised_keys:
        return tuple(supervised_keys)[0], tuple(supervised_keys)[1]
    kinds = (tfds.features.Text, tfds.features.Image, tfds.features.Audio)
    inputs = [k for k, f in features.items() if isinstance(f, kinds)]
    labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    return (inputs[0], labels[0]) if len(inputs) == 1 and len(labels) == 1 else None


NETWORK_PROBE = ("storage.googleapis.com", 443)  # where TFDS keeps its prepared data sets
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def network_reachable(timeout: float = 5.0) -> bool:
    """Whether a connection to NETWORK_PROBE opens within `timeout` seconds. True without trying
    when a proxy is configured: downloads go through it, a direct connection may not."""
    if any(os.environ.get(v) for v in PROXY_VARIABLES):
        return True
    try:
        with socket.create_connection(NETWORK_PROBE, timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def without_download_retries(offline: bool):
    """With `offline`: TFDS's downloads tried once instead of with its ten retries (about 3.5
    minutes of back-off before the error on a machine without a network). A TFDS version
    without the `MAX_RETRIES` setting is left as it is."""
    from tensorflow_datasets.core.download import downloader

    before = getattr(downloader, "MAX_RETRIES", None)
    if offline and before is not None:
        downloader.MAX_RETRIES = 0
    try:
        yield
    finally:
        if before is not None:
            downloader.MAX_RETRIES = before


def offline_tfds(name: str, data_dir: str | None, reason: str) -> CnnkitError:
    """The error for a TFDS data set that would need a download on a machine without a network."""
    where = data_dir or "~/tensorflow_datasets"
    return CnnkitError(f"{reason} TFDS downloads a data set the first time it is used, and there is no network here: "
                       f"on a machine with one, run `python -c \"import tensorflow_datasets as tfds; "
                       f"tfds.load('{name}')\"` and copy ~/tensorflow_datasets/{name.split('/')[0]} into {where} here.")


def load_tfds(name: str, data_dir: str | None = None) -> LoadedData:
    """A TFDS data set of (input, label) examples (`supervised_pair`), read into memory.

    Needs a network the first time (or an already prepared TFDS data dir). Without either, an
    error within seconds (`without_download_retries`).
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        offline = not builder.is_prepared() and not network_reachable()
        info = builder.info
        keys = supervised_pair(info.features, info.supervised_keys)
        if keys is None:
            raise CnnkitError(
                f"tfds:{name} has no one input and class label to read (its features: "
                f"{', '.join(f'{k} ({type(f).__name__})' for k, f in info.features.items())}): cnnkit reads a data set's "
                f"supervised keys, or its one Text/Image/Audio feature and one ClassLabel. Write the examples you "
                f"want to a CSV (text,label) or class folders and give that as --data.")
        # A prepared data set lists its splits; fall back to the usual names otherwise.
        split_names = [s for s in info.splits.keys() if s in SPLIT_ALIASES] or ["train", "test"]
        with without_download_retries(offline):
            loaded = tfds.load(name, split=split_names, data_dir=data_dir)
    except CnnkitError:
        raise
    except Exception as e:  # DatasetNotFoundError, network errors, ...
        reason = f"tfds:{name} could not be loaded ({type(e).__name__}: {str(e).splitlines()[0]})."
        if any("Connection" in cls.__name__ for cls in type(e).__mro__):
            raise offline_tfds(name, data_dir, reason) from None
        raise CnnkitError(f"{reason} Check the name and that it is downloaded or downloadable.") from None
    splits_ds = dict(zip(split_names, loaded))
    input_key, label_key = keys
    class_names = list(info.features[label_key].names)
    splits = {}
    for split_name, ds in splits_ds.items():
        split = SPLIT_ALIASES.get(split_name)
        if split is None or split in splits:
            continue
        xs, ys = [], []
        for example in tfds.as_numpy(ds):
            x = example[input_key]
            xs.append(x.decode("utf-8", "replace") if isinstance(x, bytes) else x)
            ys.append(int(example[label_key]))
        kind_text = bool(xs) and isinstance(xs[0], str)
        x_out = xs if kind_text else _stack_or_list(xs)
        splits[split] = Split(x_out, np.asarray(ys, dtype="int64"))
    rate = getattr(info.features[input_key], "sample_rate", None)
    kind = "texts" if splits and isinstance(splits["train"].x, list) and splits["train"].x and isinstance(splits["train"].x[0], str) else "arrays"
    return LoadedData(kind, splits, class_names, origin=f"tfds:{name}", sample_rate=rate)


def _stack_or_list(arrays):
    shapes = {a.shape for a in arrays}
    if len(shapes) == 1:
        return np.stack(arrays)
    out = np.empty(len(arrays), dtype=object)
    out[:] = arrays
    return out


# ------------------------------------------------------------------ splitting
def stratified_split(split: Split, fraction: float, seed: int, whole_groups: bool = True) -> tuple[Split, Split]:
    """(rest, held out) with `fraction` of `split` held out, stratified by label when every
    class has at least two examples (single-label data); whole groups when `split` has groups
    and `whole_groups` (`grouped_split`)."""
    from sklearn.model_selection import train_test_split

    if split.groups is not None and whole_groups:
        return grouped_split(split, fraction, seed)
    n = len(split)
    idx = np.arange(n)
    stratify = None
    if split.y.ndim == 1:  # multi-hot labels (multi-label data) are split at random
        counts = np.bincount(split.y)
        # train_test_split holds out ceil(n * fraction) examples: stratify when that is one per class or more
        if counts[counts > 0].min() >= 2 and int(np.ceil(n * fraction)) >= len(counts[counts > 0]):
            stratify = split.y
    keep, held = train_test_split(idx, test_size=fraction, random_state=seed, stratify=stratify)
    return split.take(np.sort(keep)), split.take(np.sort(held))


def grouped_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """(rest, held out) of a `split` with groups: whole groups held out, about `fraction` of the
    examples: the first of round(1 / fraction) folds of scikit-learn's StratifiedGroupKFold
    (class proportions kept as far as whole groups allow; GroupKFold for multi-hot labels), so
    with UrbanSound8K's ten folds and a fraction of 0.1, one fold.

    Raises:
        CnnkitError: when all of `split` is one group.
    """
    distinct = np.unique(split.groups)
    if len(distinct) < 2:
        raise CnnkitError(f"Every training example is in one group ({distinct[0]!r}), so no group can be held out "
                          f"for validation or testing: give those splits, or set data.group_column=none.")
    k = min(max(2, round(1 / fraction)), len(distinct))
    keep, held = next(group_kfold(split.groups, split.y, k, seed))
    return split.take(np.sort(keep)), split.take(np.sort(held))


def group_kfold(groups: np.ndarray, y: np.ndarray, k: int, seed: int):
    """scikit-learn's K folds of whole groups, shuffled with `seed`: StratifiedGroupKFold
    (class proportions kept as far as whole groups allow) for class indices `y` (N,),
    GroupKFold for multi-hot `y` (N, classes). Yields (train indices, test indices)."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    single = y.ndim == 1
    folds = (StratifiedGroupKFold if single else GroupKFold)(k, shuffle=True, random_state=seed)
    return folds.split(np.zeros(len(y)), y if single else None, groups)


def group_folds(groups: np.ndarray, y: np.ndarray, k: int, seed: int, where: str) -> list[tuple]:
    """K cross-validation folds that keep each group whole: [(train indices, test indices,
    the test part's groups)]. With exactly K groups (UrbanSound8K's `fold` column with --cv
    10) fold i tests on the i-th group in natural order (numbers as numbers); with more,
    StratifiedGroupKFold (GroupKFold for multi-hot `y`) spreads them over K folds.

    Raises:
        CnnkitError: when there are fewer groups than K, naming `where` (the groups' origin).
    """
    distinct = sorted(np.unique(groups), key=lambda g: (0, float(g), g) if _is_number(g) else (1, 0.0, g))
    if len(distinct) < k:
        raise CnnkitError(f"--cv {k}: the examples fall in {len(distinct)} groups ({where}) and a fold holds whole "
                          f"groups: use --cv {len(distinct)} or fewer" + (", or set data.group_column=none to mix them"
                                                                          if "column" in where else "") + ".")
    if len(distinct) == k:
        return [(np.flatnonzero(groups != g), np.flatnonzero(groups == g), [g]) for g in distinct]
    return [(train, test, sorted(set(groups[test].tolist()))) for train, test in group_kfold(groups, y, k, seed)]


def with_file_groups(data: LoadedData, pattern: str) -> LoadedData:
    """`data` (files) with each split's groups read from its file names by regular expression
    `pattern` (`data.group_pattern`): the first group of its first match in the name (or the
    whole match), e.g. `^\\d+_([a-z]+)_` gives the speaker of the Free Spoken Digit Dataset's
    `3_jackson_12.wav` and `^([0-9a-f]+)_nohash_` that of Speech Commands' `0a7c2a8d_nohash_0.wav`.

    Raises:
        CnnkitError: for a source of texts or arrays, a pattern that is not a regular
            expression, or a file name it does not match.
    """
    if data.kind != "files":
        raise CnnkitError(f"data.group_pattern reads groups from file names, and {data.origin} holds {data.kind}, not "
                          f"files: for a table, name the column of groups with data.group_column.")
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise CnnkitError(f"data.group_pattern {pattern!r} is not a regular expression ({e}).") from None
    splits = {}
    for name, split in data.splits.items():
        groups = []
        for path in split.x:
            found = regex.search(Path(path).name)
            if found is None:
                raise CnnkitError(f"data.group_pattern {pattern!r} does not match the file name {Path(path).name} "
                                  f"({path}): every file needs a group; fix the pattern (it is searched in the file "
                                  f"name, e.g. '^\\d+_([a-z]+)_' for 3_jackson_12.wav).")
            groups.append(found.group(1) if regex.groups else found.group(0))
        splits[name] = dataclasses.replace(split, groups=np.asarray(groups, dtype=str))
    return dataclasses.replace(data, splits=splits, groups_from=f"data.group_pattern {pattern} on the file names")


def ensure_splits(data: LoadedData, val_split: float, test_split: float, seed: int) -> LoadedData:
    """Holds out a stratified test and validation split from train where the source has none.

    With groups, the test split holds whole groups. So does the validation split when the
    training groups are at least 1 / val_split (one group is then at most about the fraction
    asked); with fewer (five speakers, 10 %), a whole group would take a larger share of the
    training data (20 %), so validation examples are drawn from every group instead (said on
    standard error): early stopping then watches known groups, and the test split stays unseen.
    """
    splits = dict(data.splits)
    if "test" not in splits and test_split > 0:
        splits["train"], splits["test"] = stratified_split(splits["train"], test_split, seed)
    if "val" not in splits and val_split > 0:
        groups = splits["train"].groups
        count = 0 if groups is None else len(np.unique(groups))
        whole = groups is None or count >= round(1 / val_split)
        if not whole:
            print(f"The validation split is drawn from every group's examples: {count} training groups are too few "
                  f"to hold out whole ones for data.val_split {val_split:g} (one is about {1 / count:.0%} of them); "
                  f"the test split and --cv folds keep groups whole.", file=sys.stderr)
        splits["train"], splits["val"] = stratified_split(splits["train"], val_split, seed + 1, whole_groups=whole)
    return dataclasses.replace(data, splits=splits)
