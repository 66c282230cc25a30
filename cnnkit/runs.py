"""Run directories: creating them, writing their files atomically, loading them back.

A run directory holds config.yaml, labels.json, model.keras (end to end), history.csv,
metrics.json, checkpoints/ and logs/ (TensorBoard). Every file is written to a temporary
name and renamed, so a killed run never leaves a half-written file.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
import threading
from pathlib import Path

import yaml

from cnnkit.errors import CnnkitError


# What a run writes into its directory; a folder holding one of them holds a run.
RUN_FILES = ("config.yaml", "model.keras", "history.csv", "metrics.json", "checkpoints")


def new_run_dir(task: str, out: str | None, resume: bool = False) -> Path:
    """`out`, or runs/<task>-<YYYYmmdd-HHMMSS>[-N] (N from 2 when two runs start in the same
    second); created and checked writable now, so a bad folder fails before any training.

    An `out` that already holds a run (one of RUN_FILES) is refused unless `resume` (a resumed
    run's folds and worker folders): training there would restore that run's backup into
    another model (Keras fails to load it, or, for the same model, silently continues it) and
    overwrite its files."""
    if out is None:
        base = Path("runs") / f"{task}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        path, n = base, 1
        while True:
            # mkdir, not a look then a mkdir: two processes started in the same second (a sweep,
            # parallel tests) would otherwise both see the name free and share one folder.
            try:
                path.mkdir(parents=True)
                break
            except FileExistsError:
                n += 1
                path = base.with_name(f"{base.name}-{n}")
            except OSError:
                break  # not writable: the probe below names the folder and the fix
    else:
        path = Path(out)
        found = [name for name in RUN_FILES if (path / name).exists()] if path.is_dir() and not resume else []
        if found:
            raise CnnkitError(f"{path} already holds a run ({', '.join(found)}): training into it would resume or "
                              f"overwrite it. Pass another --out, or continue that run with `cnnkit train --resume {path}`.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A probe of its own: the workers of a multiworker run check the same folder at the same time.
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * 1024 * 1024)  # a megabyte: also fails when the disk is full
        os.unlink(probe)
    except OSError as e:
        raise CnnkitError(f"Cannot write to the run directory {path}: {e.strerror}. Pass --out to a writable folder.") from None
    return path


def remove_if_empty(path: Path) -> None:
    """Removes the folder `path` if it holds nothing (a run that failed before writing a file)."""
    with contextlib.suppress(OSError):  # not empty, or already gone: nothing to do
        path.rmdir()


def atomic_write(path: Path, data: bytes | str) -> None:
    """Writes `data` to `path` through a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_yaml(path: Path, obj) -> None:
    atomic_write(path, yaml.safe_dump(obj, sort_keys=False))


def save_model(model, path: Path) -> None:
    """`model.save(path)` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def save_weights(model, path: Path, optimizer: bool = True) -> None:
    """`model.save_weights(path)` (a `.weights.h5` file) through a temporary file and a rename, so
    that a kill during the write leaves no half-written file for a resume to read.

    `optimizer=False` leaves out a compiled functional model's optimizer state (Adam's two moments:
    two thirds of the file) by saving an uncompiled model over the same layers; the file loads into
    the same network, compiled or not."""
    import keras

    path = Path(path)
    tmp = path.with_name(f".{path.name.removesuffix('.weights.h5')}.tmp.weights.h5")
    if not optimizer and getattr(model, "optimizer", None) is not None:
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    model.save_weights(tmp)
    os.replace(tmp, path)


# Settings whose default changed after runs were written without them, with the value those older
# runs were trained with: `read_run` fills them in, so that --resume, --from, export and evaluate
# rebuild the network that was trained, not one of today's defaults. (task, section, key): value;
# task "*" for every task.
SETTINGS_OF_OLDER_RUNS = {
    ("*", "data", "group_column"): "none",  # now auto: a table's `fold` column would group a resumed run's splits
    ("text-cls", "preprocess", "subwords"): 0,  # unset now means 10 000 buckets for word tokens
    ("text-cls", "model", "members_val"): "same",  # now rotate: a resumed ensemble keeps its members' data
    ("text-cls", "train", "monitor"): "accuracy",  # now loss: a resumed run goes on choosing by accuracy
    ("text-cls", "preprocess", "boundaries"): False,  # now true: the start and end tokens
    ("text-cls", "train", "precise_bn"): 0,  # now 50: batch norm's statistics re-estimated each epoch
    ("text-cls", "model", "nb_member"): False,  # now true: the naive-Bayes member beside the network(s)
    ("text-cls", "preprocess", "standardize"): "lower_and_strip_punctuation",  # now auto: cased texts keep capitals
    ("text-cls", "preprocess", "unicode"): False,  # now true: Unicode punctuation, spaces and case read as ASCII's
}


def read_run(run_dir: str | Path) -> tuple[Path, dict, list[str]]:
    """(run_dir, config dict, class names) of a finished or started run; settings an older
    run's config.yaml lacks get the values it was trained with (SETTINGS_OF_OLDER_RUNS)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.exists():
        raise CnnkitError(f"{run_dir} is not a cnnkit run directory (no config.yaml). Give the folder that `cnnkit train` wrote.")
    cfg = yaml.safe_load(cfg_path.read_text()) or {}
    for (task, section, key), value in SETTINGS_OF_OLDER_RUNS.items():
        if task in ("*", cfg.get("task")) and isinstance(cfg.get(section), dict):
            cfg[section].setdefault(key, value)
    labels_path = run_dir / "labels.json"
    labels = json.loads(labels_path.read_text()) if labels_path.exists() else None
    return run_dir, cfg, labels


def load_model(run_dir: Path):
    """The end-to-end model of a run, loaded with `safe_mode=True` (no code from the file)."""
    import cnnkit.blocks  # noqa: F401  (registers the serializable layers)
    import cnnkit.backbones  # noqa: F401
    import cnnkit.training  # noqa: F401

    path = Path(run_dir) / "model.keras"
    if not path.exists():
        raise CnnkitError(no_model_reason(Path(run_dir)))
    return load_keras_file(path)


def load_keras_file(path: Path, compile: bool = False):
    """`keras.models.load_model(path, safe_mode=True)`. A text model saved before
    `features.text.reads_back` left out tokens that Keras cannot read back (MR's "\\x85") fails
    there ("repeated term", "reserved mask token"), and is read again with its vocabulary read as
    it was written; when that fails too, the first error is raised."""
    import keras

    try:
        return keras.models.load_model(path, safe_mode=True, compile=compile)
    except ValueError as err:
        first = err
    try:
        with vocabulary_read_as_written():
            return keras.models.load_model(path, safe_mode=True, compile=compile)
    except ValueError:
        raise first from None


# One swap of Keras' vocabulary reading at a time (`vocabulary_read_as_written`).
_VOCABULARY_SWAP = threading.Lock()


@contextlib.contextmanager
def vocabulary_read_as_written():
    """Within it, Keras' string lookups (TextVectorization's vocabulary) read their saved
    vocabulary.txt split at "\\n" only, as `save_assets` joined it, instead of `str.splitlines`,
    which also breaks at \\x85, \\u2028 and other characters a token may hold.

    One swap at a time (a lock): two threads swapping at once would each put back what they
    found, the other's stand-in instead of Keras' method. A load in another thread during the
    swap reads with the stand-in too, which reads the files Keras reads alike."""
    from keras.src.layers.preprocessing.index_lookup import IndexLookup

    def load_assets(self, dir_path):
        if self.input_vocabulary is not None:  # the vocabulary is in the config (Keras' own branch)
            return original(self, dir_path)
        with open(os.path.join(dir_path, "vocabulary.txt"), encoding="utf-8", newline="") as f:
            values = f.read().split("\n")
        while values and values[-1] == "":
            values.pop()
        if self.output_mode == "tf_idf":
            self.set_vocabulary(values, idf_weights=self.idf_weights_const.numpy())
        else:
            self.set_vocabulary(values)

    with _VOCABULARY_SWAP:
        original = IndexLookup.load_assets
        IndexLookup.load_assets = load_assets
        try:
            yield
        finally:
            IndexLookup.load_assets = original


def no_model_reason(run_dir: Path) -> str:
    """Why the run folder `run_dir` holds no model.keras, and what to give instead."""
    folds = sorted(p.name for p in run_dir.glob("fold-*") if p.is_dir())
    if folds and (run_dir / "metrics.json").exists():
        return (f"{run_dir} is a cross-validation run: each of its {len(folds)} folds has a model of its own. Give "
                f"one of them ({run_dir / folds[0]}), or train without --cv for one model of all the data.")
    if folds:
        return (f"{run_dir} is a cross-validation run that did not finish. Resume it with "
                f"`cnnkit train --resume {run_dir}`, or give one of its finished folds ({run_dir / folds[0]}).")
    return f"{run_dir} has no model.keras: its training did not finish. Resume it with `cnnkit train --resume {run_dir}`."
