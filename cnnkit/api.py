"""The Python API: train(), evaluate(), predict(), summary(). The CLI calls only these.

    >>> import cnnkit
    >>> result = cnnkit.train("image-cls", epochs=2)          # builtin:digits
    >>> result.metrics["test_accuracy"]
"""
from __future__ import annotations

import dataclasses
import glob
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from cnnkit import config as config_lib
from cnnkit import evaluation, runs, tasks, training, transfer
from cnnkit.datasets import ensure_splits, load_source
from cnnkit.datasets.sources import (LoadedData, Split, decoding, group_folds, is_folder_source, is_system_entry,
                                     is_table, table_files, table_texts, with_file_groups)
from cnnkit.errors import CnnkitError

RECIPES_DIR = Path(__file__).resolve().parent / "_recipes"


@dataclasses.dataclass
class RunResult:
    """What `train` returns: the run folder, the end-to-end model, the history and the metrics."""

    run_dir: Path
    model: object
    history: dict
    metrics: dict
    config: config_lib.Config


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ configuration
def find_recipe(name: str) -> Path | None:
    """A recipe file: an existing path, or the name of a shipped recipe (`cifar10`)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            shipped = RECIPES_DIR / path.name
            if shipped.exists():
                return shipped
            raise CnnkitError(f"Recipe file {path} does not exist. Shipped recipes: {', '.join(recipe_names())}.")
        return path
    shipped = RECIPES_DIR / f"{name}.yaml"
    return shipped if shipped.exists() and name not in tasks.names() else None


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_without_data(recipe_path: Path, default_source: str) -> str:
    """The log line for a recipe trained without --data: its settings were written for a data
    set of their own, the run gets the task's embedded sample. Names the command in the recipe's
    comments that gives its data (`# cnnkit train ... --data ...`), if it has one."""
    commands = [line.lstrip("# ").strip() for line in recipe_path.read_text(encoding="utf-8").splitlines()
                if line.startswith("#") and "cnnkit train" in line and "--data" in line]
    how = f" (its comments: {commands[0]})" if commands else ""
    return (f"Recipe {recipe_path.name} without --data: settings made for another data set train on the task's "
            f"embedded sample ({default_source}). Give the recipe's data with --data{how}.")


def options_to_overrides(options: dict) -> dict:
    """Flat keyword options (`epochs=3`, `image_size=[32, 32]`) -> `{section: {key: value}}`.

    A name is looked up in the train, data and model sections, in that order; anything else
    belongs to the task's preprocess section. None values are dropped.
    """
    sections = {name: {f.name for f in dataclasses.fields(cls)} for name, cls in config_lib.SECTIONS.items()}
    out: dict = {}
    for key, value in options.items():
        if value is None:
            continue
        section = next((s for s in ("train", "data", "model") if key in sections[s]), "preprocess")
        out.setdefault(section, {})[key] = value
    return out


def resolve_config(task_or_recipe: str, data: str | None = None, config: str | None = None,
                   sets: list[str] | None = None, **options) -> config_lib.Config:
    """The resolved Config: task defaults <- recipe file <- --config file <- options <- --set.

    With `from_run` (--from RUN_DIR), the source run's preprocessing and backbone settings come
    between the task defaults and the recipe; the task may then be None (the source's task).
    """
    if task_or_recipe is None:
        if not options.get("from_run"):
            raise CnnkitError("Give a task (image-cls, text-cls, speech-cls), a recipe file, or --from RUN_DIR.")
        task_or_recipe = transfer.read_source_config(options["from_run"])["task"]
    recipe_path = find_recipe(task_or_recipe)
    recipe: dict = {}
    if recipe_path is not None:
        recipe = config_lib.load_yaml(recipe_path)
        task_name = recipe.get("task")
        if not task_name:
            raise CnnkitError(f"{recipe_path} has no 'task:' line; add one, e.g. task: image-cls.")
    else:
        task_name = task_or_recipe
    if config:
        recipe = config_lib.deep_merge(recipe, config_lib.load_yaml(config))
    task = tasks.get(task_name)
    overrides = options_to_overrides(options)
    if data:
        overrides.setdefault("data", {})["source"] = data
    overrides = config_lib.deep_merge(overrides, config_lib.parse_set(sets or []))
    cfg = config_lib.resolve(task_name, task.preprocess_cls, task.defaults, recipe, overrides)
    if cfg.model.from_run:
        inherited = transfer.inherited_overrides(transfer.read_source_config(cfg.model.from_run), task_name)
        cfg = config_lib.resolve(task_name, task.preprocess_cls, task.defaults,
                                 config_lib.deep_merge(inherited, recipe), overrides)
        cfg.model.from_run = str(Path(cfg.model.from_run).resolve())
    if cfg.model.members == 1 and cfg.model.members_backbone_args:
        # One network is member 1: its entry goes into backbone_args, which fine-tuning and
        # exports read (e.g. a five-member recipe run with --set model.members=1).
        cfg.model.backbone_args = member_config(cfg, 0).model.backbone_args
        cfg.model.members_backbone_args = []
    if not cfg.data.source:
        cfg.data.source = task.default_source
        if recipe_path is not None and not cfg.model.from_run:
            log(recipe_without_data(recipe_path, task.default_source))
    return cfg


def config_from_run(cfg_dict: dict) -> config_lib.Config:
    """The Config saved in a run's config.yaml."""
    task = tasks.get(cfg_dict["task"])
    return config_lib.resolve(cfg_dict["task"], task.preprocess_cls, None, cfg_dict, None)


# ------------------------------------------------------------------ data
def load_data(cfg, task) -> LoadedData:
    """Reads `cfg.data.source` with the groups of `data.group_column` / `data.group_pattern` (said
    in a line) and applies `data.limit` (a random subset of train)."""
    pattern = cfg.data.group_pattern
    column = cfg.data.group_column
    if pattern and column not in (None, "auto", "none"):
        raise CnnkitError(f"data.group_pattern and data.group_column={column} both name the groups: set one.")
    loaded = load_source(cfg.data.source, extensions=task.extensions, text_column=cfg.data.text_column,
                         label_column=cfg.data.label_column, strict=cfg.data.strict, multi_label=cfg.data.multi_label,
                         encoding=cfg.data.encoding, label_pattern=cfg.data.label_pattern,
                         group_column=None if pattern else column)
    if pattern:
        loaded = with_file_groups(loaded, pattern)
    if loaded.groups_from:
        count = len(np.unique(loaded.splits["train"].groups))
        log(f"Groups: {count} in the training data ({loaded.groups_from}); the val/test splits held out of it"
            + (" and the --cv folds" if cfg.data.cv else "") + " keep each group whole"
            + (" (--set data.group_column=none mixes them)" if not pattern else ""))
        if not cfg.data.cv:
            warn_shared_groups(loaded)
    cfg.data.multi_label = loaded.multi_label
    if cfg.data.limit and len(loaded.splits["train"]) > cfg.data.limit:
        rng = np.random.default_rng(cfg.train.seed)
        keep = np.sort(rng.choice(len(loaded.splits["train"]), cfg.data.limit, replace=False))
        loaded.splits["train"] = loaded.splits["train"].take(keep)
    return loaded


def warn_shared_groups(loaded: LoadedData) -> None:
    """Warns when the source's own val or test split holds groups that training holds too (FSDD's
    given test split has clips of its six training speakers), or val groups of the test split: its
    figures are then not those of unseen groups, which --cv with the groups measures; a val split
    sharing the test's groups chooses the epoch on the groups the test then scores."""
    groups = {name: set(split.groups.tolist()) for name, split in loaded.splits.items() if split.groups is not None}
    for name, other in (("val", "train"), ("test", "train"), ("val", "test")):
        if name not in groups or other not in groups:
            continue
        shared = sorted(groups[name] & groups[other])
        if not shared:
            continue
        consequence = ("its figures are not those of unseen groups; `--cv K` with these groups tests on groups "
                       "training never saw." if other == "train" else
                       "the epoch is chosen on groups the test then scores, so the test figure is not that of "
                       "unseen groups.")
        log(f"Warning: the {name} split has {len(shared)} of its {len(groups[name])} groups in "
            f"{'training' if other == 'train' else 'the test split'} too (e.g. {', '.join(shared[:3])}): {consequence}")


def prepare(cfg, task, loaded: LoadedData):
    """Holds out the missing splits and runs the task's preparation (decoding, vocabulary, ...)."""
    if cfg.data.cache not in task.cache_modes:
        raise CnnkitError(f"data.cache {cfg.data.cache!r} is not available for {task.name}: choose one of "
                          f"{', '.join(task.cache_modes)}" + (" (only image files stream from disk)"
                                                              if task.cache_modes == ("memory",) else "") + ".")
    val_from_train = "val" not in loaded.splits and cfg.data.val_split > 0
    loaded = ensure_splits(loaded, cfg.data.val_split, cfg.data.test_split, cfg.train.seed)
    warn_untrained_classes(loaded)
    note_imbalance(loaded, cfg.train.class_weight)
    start = time.perf_counter()
    prepared = task.prepare(cfg, loaded)
    prepared.val_from_train = val_from_train
    prepared.grouped = loaded.splits["train"].groups is not None
    prepared.prepare_seconds = time.perf_counter() - start
    sample = " (the task's embedded sample, used when --data is not given)" if cfg.data.source == task.default_source else ""
    log(f"Data {prepared.origin}{sample}: {len(prepared.class_names)} classes; {prepared.counts()} "
        f"(prepared in {prepared.prepare_seconds:.1f} s)")
    if prepared.skipped:
        log(f"Skipped {len(prepared.skipped)} unreadable input(s), e.g. "
            + "; ".join(f"{p} ({why})" for p, why in prepared.skipped[:3]) + " (--strict makes this an error)")
    return prepared


def warn_untrained_classes(loaded: LoadedData) -> None:
    """Warns when a class has no example left in the training split (single-label data): with a
    few examples a class can end up wholly in the held-out val or test split, and the model then
    never predicts it."""
    y = loaded.splits["train"].y
    if y.ndim != 1:
        return
    missing = [name for i, name in enumerate(loaded.class_names) if not np.any(y == i)]
    if missing:
        shown = ", ".join(map(repr, missing[:10])) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        log(f"Warning: {loaded.origin}: no training example of class(es) {shown} after holding "
            f"out the validation/test splits; the model cannot learn them. Add examples of them, or give the data "
            f"a val split of its own (or lower data.val_split / data.test_split).")


IMBALANCE_NOTED_FROM = 5.0  # largest / smallest class of the training split from which a run says so


def note_imbalance(loaded: LoadedData, class_weight: str) -> None:
    """Says when the training split's classes are imbalanced (largest / smallest count at least
    IMBALANCE_NOTED_FROM) and `train.class_weight` is none: accuracy then favours the large
    classes, and `train.class_weight=balanced` is what weighs them alike.

    Raises:
        CnnkitError: for `class_weight` balanced on multi-label data (an example has several classes).
    """
    y = loaded.splits["train"].y
    if y.ndim != 1:
        if class_weight != "none":
            raise CnnkitError(f"train.class_weight={class_weight} weighs each example by its class: {loaded.origin} is "
                              f"multi-label (an example has several). Set train.class_weight=none.")
        return
    counts = np.bincount(y, minlength=len(loaded.class_names))
    present = counts[counts > 0]
    if class_weight != "none" or len(present) < 2 or present.max() < IMBALANCE_NOTED_FROM * present.min():
        return
    big, small = int(np.argmax(counts)), int(np.argmin(np.where(counts > 0, counts, counts.max() + 1)))
    log(f"Classes are imbalanced: {loaded.class_names[big]} has {counts[big]} training examples, "
        f"{loaded.class_names[small]} {counts[small]}. Accuracy favours the large classes; macro-F1, reported too, "
        f"weighs them alike. If the small classes matter as much, compare with --set train.class_weight=balanced, "
        f"which weighs every class alike in the loss.")


def load_prepared(cfg, task):
    """`load_data` then `prepare`: the task's data ready for tf.data."""
    return prepare(cfg, task, load_data(cfg, task))


def predict_probs(model, task_obj, x, cfg, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
    """Class probabilities (N, num_classes) of the end-to-end `model` for raw inputs `x` (N inputs
    as the task's `inference_dataset` takes them), in batches of `batch_size` (default: the run's).

    The dataset runs without tf.data's autotuning thread, as in training
    (`training.without_autotune_thread`): deleting the iterator at the end of `predict` otherwise
    waits for that thread's next tick, which can double a prediction's time.
    """
    ds = training.without_autotune_thread(task_obj.inference_dataset(x, cfg, batch_size))
    return model.predict(ds, verbose=verbose)


# ------------------------------------------------------------------ train
CUSTOM_PREFIX = "custom:"  # model.backbone of a run trained with cnnkit.train(model=...)

def train(task: str | None, data: str | None = None, *, model=None, out: str | None = None, resume: str | None = None,
          config: str | None = None, sets: list[str] | None = None, started: float | None = None,
          **options) -> RunResult:
    """Trains a task (or a recipe file) and writes a run directory.

    Args:
        task: a task name ("image-cls"), a recipe file (`recipes/cifar10.yaml`) or a shipped
            recipe name.
        data: the data source (--data); default: the task's embedded sample.
        model: the network after the task's preprocessing: a registered backbone name, a
            `keras.Model`, or a function `(input_shape, num_classes) -> keras.Model`. It gets
            normalised images (h, w, c), embedded tokens (steps, channels) or normalised
            spectrograms (frames, bins, 1); the task's head follows unless it ends in its own
            softmax/sigmoid classifier. Default: the task's (or recipe's) backbone.
        out: the run directory (default runs/<task>-<timestamp>).
        resume: a run directory to continue from its last completed epoch.
        config: an extra YAML file of overrides. sets: ["section.key=value", ...].
        started: the `time.time()` a time budget counts from (default: this call; the CLI
            passes its process's start).
        **options: flat overrides, e.g. epochs=5, lr=1e-3, image_size=[32, 32], cv=10.

    Returns:
        A RunResult with the run directory, the end-to-end model, history and metrics. With
        `cv=K`, K fold runs are written to RUN_DIR/fold-01 ... and metrics hold
        `cv_accuracy_mean`, `cv_accuracy_std` and each fold.
    """
    import keras

    start = started or time.time()  # a time budget counts from here: data loading included
    if isinstance(model, str):
        options["backbone"], model = model, None
    source = None  # the run this one starts from (--from), loaded once
    if resume:
        run_dir, cfg_dict, _ = runs.read_run(resume)
        cfg = config_from_run(cfg_dict)
        if cfg.model.backbone.startswith(CUSTOM_PREFIX) and model is None:
            raise CnnkitError(f"{run_dir} was trained with a model from Python ({cfg.model.backbone}); resume it from "
                              f"Python with cnnkit.train(None, resume=..., model=<the same model or function>).")
        log(f"Resuming {run_dir} from its last completed epoch")
        fresh = False
    else:
        cfg = resolve_config(task, data, config, sets, **options)
        if cfg.model.from_run:
            source = transfer.load_source(cfg.model.from_run)
            if model is None and cfg.model.backbone.startswith(CUSTOM_PREFIX):  # a network from Python
                model = transfer.network_of(source.model, cfg.model.backbone[len(CUSTOM_PREFIX):])
        if model is not None:
            cfg.model.backbone = CUSTOM_PREFIX + (getattr(model, "name", None) or getattr(model, "__name__", "model"))
        elif cfg.model.backbone != "auto":
            import cnnkit.backbones as backbones

            backbones.info(cfg.model.backbone)  # an unknown name fails before anything is written
        # Only the chief checks that `out` holds no run: the other workers write below it, in step with the chief.
        worker = cfg.train.strategy == "multiworker" and not training.worker_role()[0]
        fresh = out is None or not Path(out).exists()
        run_dir = runs.new_run_dir(cfg.task, out, resume=worker)
    try:  # a folder this call made is removed again if the run fails before writing into it
        if cfg.train.strategy == "multiworker":
            training.make_strategy("multiworker")  # before any other TensorFlow work (data loading)
            chief, name = training.worker_role()
            if not chief:  # every worker trains; only the chief's files are the run's
                run_dir = runs.new_run_dir(cfg.task, str(run_dir / "workers" / name), resume=bool(resume))
                log(f"Worker {name}: training with the chief; this worker's files go to {run_dir}")
        task_obj = tasks.get(cfg.task)
        if cfg.model.members > 1 and not task_obj.ensembles:
            raise CnnkitError(f"model.members={cfg.model.members}: {cfg.task} trains one network; several members in one "
                              f"model are a text-cls option. Set model.members=1.")
        task_obj.custom_model = model
        # The source run's model: its weights start this one, and a text run extends its vocabulary.
        if cfg.model.from_run and source is None:  # a resumed run
            source = transfer.load_source(cfg.model.from_run)
        task_obj.source_model = source.model if source is not None else None
        training.seed_everything(cfg.train.seed, cfg.train.deterministic)
        if cfg.train.precision == "auto":  # the run's config.yaml records what it became
            cfg.train.precision, why = training.resolve_precision("auto")
            log(f"Precision {cfg.train.precision} ({why})")
        training.set_precision(cfg.train.precision)
        loaded = load_data(cfg, task_obj)
        if cfg.data.cv:
            return cross_validate(cfg, task_obj, loaded, run_dir, start, resumed=bool(resume))
        deadline = start + cfg.train.time_budget if cfg.train.time_budget else None
        return fit_and_save(cfg, task_obj, prepare(cfg, task_obj, loaded), run_dir, deadline)
    except BaseException as e:
        if fresh:
            runs.remove_if_empty(run_dir)
        if isinstance(e, KeyboardInterrupt) and run_dir.exists():
            say_how_to_resume(run_dir)
        raise
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def say_how_to_resume(run_dir: Path) -> None:
    """After Ctrl-C in training: where the run is and the command that continues it (from its last
    backed-up epoch, when the backup holds one)."""
    done = training.completed_epochs(run_dir)
    since = f" from epoch {done + 1} (the last backup)" if done else ""
    log(f"Interrupted: {run_dir} keeps what was trained; `cnnkit train --resume {run_dir}` continues it{since}.")


@dataclasses.dataclass
class Fitted:
    """A trained network of a run (or the ensemble of `model.members` networks)."""

    infer_model: object  # end to end: raw inputs -> probabilities
    network: object  # the training model (augmentation included); None for an ensemble
    history: dict  # {metric: [values per epoch]}; an ensemble's members' epochs one after the other
    phases: dict | None  # the fine-tuning summary of a pretrained start, else None
    steps_per_epoch: int
    # An ensemble with rotated validation slices: {"x", "y", "ids", "probs", "member_accuracy"}, each
    # held-out text scored by the members that did not train on it; the run's val metrics use it.
    held_out: dict | None = None
    nb_member_seconds: float | None = None  # the fit of the naive-Bayes member (model.nb_member)
    network_alone: object = None  # one network with a naive-Bayes member: the network's own model


def fit_and_save(cfg, task_obj, prepared, run_dir: Path, deadline: float | None = None) -> RunResult:
    """Builds, trains and evaluates one model on `prepared`; writes the run directory.
    `deadline`: a `time.time()` by which training ends (train.time_budget), or None."""
    x_train, y_train = prepared.splits["train"]
    strategy = training.make_strategy(cfg.train.strategy)
    timer = training.TrainTimer()

    def save_run_config():
        # The resolved config (auto fields filled in by the build) is what a resume or a reload reads.
        runs.write_yaml(run_dir / "config.yaml", cfg.to_dict())
        runs.write_json(run_dir / "labels.json", prepared.class_names)

    if cfg.model.members > 1:
        fitted = fit_members(cfg, task_obj, prepared, run_dir, timer, strategy, deadline, save_run_config)
    else:
        nb = {}

        def on_built():
            save_run_config()
            # Before training (the vectorizer it reads is built now): its fit is inside the time
            # budget, and a fit that fails does so before the network's epochs, not after.
            nb["member"], nb["seconds"] = fit_nb_member(cfg, task_obj, prepared, pooled=False)

        fitted = fit_network(cfg, task_obj, prepared, run_dir, timer, strategy, deadline, on_built=on_built)
        if nb["member"] is not None:  # the network's probabilities averaged with the member's
            fitted = dataclasses.replace(fitted, infer_model=task_obj.with_nb_member(fitted.infer_model, nb["member"]),
                                         nb_member_seconds=nb["seconds"], network_alone=fitted.infer_model)
    infer_model, history, phases = fitted.infer_model, fitted.history, fitted.phases
    # Epochs of training data seen: an epoch that the time budget ended early counts in part.
    epochs_trained = timer.steps / fitted.steps_per_epoch if fitted.steps_per_epoch else timer.epochs
    metrics = {"task": cfg.task, "backbone": cfg.model.backbone, "epochs": cfg.train.epochs,
               "epochs_run_this_call": timer.epochs,
               "train_seconds": round(timer.seconds, 2),
               # with a resumed run's earlier calls: the epochs its model went through (max: the
               # per-epoch records are rounded to milliseconds)
               "train_seconds_total": round(max(training.tracked_train_seconds(run_dir), timer.seconds), 2),
               "train_samples_per_second": round(epochs_trained * len(y_train) / timer.seconds, 1) if timer.seconds else None,
               "epoch_train_seconds": timer.per_epoch,
               "prepare_seconds": round(prepared.prepare_seconds, 2),
               "prepare_samples_per_second": round(sum(len(v[1]) for v in prepared.splits.values())
                                                   / max(prepared.prepare_seconds, 1e-9), 1),
               "num_train": int(len(y_train)), "skipped_inputs": len(prepared.skipped),
               "replicas": int(strategy.num_replicas_in_sync), "precision": cfg.train.precision}
    if fitted.nb_member_seconds is not None:  # not in train_seconds (the networks' epochs)
        metrics["nb_member_fit_seconds"] = round(fitted.nb_member_seconds, 2)
    if phases is not None:
        metrics["fine_tuning"] = phases
    if cfg.train.time_budget:
        metrics["time_budget_seconds"] = cfg.train.time_budget
        metrics["epochs_in_budget"] = round(epochs_trained, 2)
    if cfg.train.precision != "float32":  # mixed precision is for training; the run saves (and tests) float32
        try:
            infer_model = training.float32_copy(infer_model)
        except Exception as err:  # e.g. a Python model with layers that only its own code can load
            log(f"Saving the model in {cfg.train.precision}: a float32 copy could not be made ({err}); "
                f"its TFLite and ONNX exports may fail")
    plain = task_obj.without_tta(infer_model)  # the single-view network of a TTA model, else None
    held_out = fitted.held_out
    for split in ("val", "test"):
        if split not in prepared.splits:
            continue
        x, y = prepared.splits[split]
        ids = prepared.ids[split]
        if split == "val" and held_out is not None:  # each text scored by the members that held it out
            x, y, ids, probs = held_out["x"], held_out["y"], held_out["ids"], held_out["probs"]
            metrics["val_scored_by"] = "the members that held each text out (model.members_val=rotate)"
        else:
            probs = predict_probs(infer_model, task_obj, x, cfg)
        m = evaluation.classification_metrics(y, probs, prepared.class_names)
        accuracy_of = lambda part: round(evaluation.classification_metrics(  # noqa: E731  (a part of the model alone)
            y, predict_probs(part, task_obj, x, cfg), prepared.class_names)["accuracy"], 6)
        metrics[f"{split}_accuracy"] = round(m["accuracy"], 6)
        if plain is not None and (split == "test" or "test" not in prepared.splits):
            # what the test-time augmentation added, on the same trained network
            metrics[f"{split}_accuracy_without_tta"] = accuracy_of(plain)
        metrics[f"{split}_macro_f1"] = round(m["macro_f1"], 6)
        if prepared.multi_label:
            metrics[f"{split}_micro_f1"] = round(m["micro_f1"], 6)
        if split == "test" or "test" not in prepared.splits:
            metrics["macro_f1"] = round(m["macro_f1"], 6)
            metrics["evaluated_on"] = split  # the split of `macro_f1` and of evaluation/
            write_evaluation(run_dir / "evaluation", m, prepared.class_names, y, probs, ids)
            if split == "val" and held_out is not None:
                metrics["member_val_accuracy"] = held_out["member_accuracy"]
                continue  # the naive-Bayes member has seen these texts (fitted on all the networks')
            if fitted.network_alone is not None:  # what the naive-Bayes member added to one network
                metrics[f"network_{split}_accuracy"] = accuracy_of(fitted.network_alone)
            elif cfg.model.members > 1:  # what averaging added: each member alone on the same split
                metrics[f"member_{split}_accuracy"] = [accuracy_of(member) for member in task_obj.members_of(infer_model)]
            nb = task_obj.nb_member_of(infer_model) if hasattr(task_obj, "nb_member_of") else None
            if nb is not None:
                metrics[f"nb_member_{split}_accuracy"] = accuracy_of(nb)
    runs.save_model(infer_model, run_dir / "model.keras")
    runs.write_json(run_dir / "metrics.json", metrics)
    log("Metrics: " + ", ".join(f"{k} {v}" for k, v in metrics.items() if k.endswith(("accuracy", "f1", "seconds"))))
    if metrics.get("evaluated_on") == "val":
        log(VAL_ONLY_NOTE.format(accuracy=metrics["val_accuracy"]))
    log(f"Saved {run_dir / 'model.keras'}")
    write_report_safely(run_dir, infer_model)
    return RunResult(run_dir, infer_model, history, metrics, cfg)


# Said after a run whose data had no test split: its figure is on the split that chose the epoch.
VAL_ONLY_NOTE = ("No test split: val_accuracy {accuracy} is on the validation split that chose the kept epoch, so "
                 "it is optimistic for new data. For a figure of unseen data give a test split (a test/ folder, a "
                 "test.csv beside train.csv), hold one out with --set data.test_split=0.1, or use --cv 5.")


def fit_network(cfg, task_obj, prepared, run_dir: Path, timer, strategy, deadline: float | None = None,
                reserve_scale: float = 1.0, on_built=None) -> Fitted:
    """Builds one network of the task and trains it on `prepared` (checkpoints, history and
    TensorBoard logs in `run_dir`; a backup there is resumed). `timer` (a `TrainTimer`) adds up
    the training time; `deadline` (a `time.time()`) ends training; the final evaluation's steps
    times `reserve_scale` are kept free before it. `on_built()` runs after the build (which
    fills in the config's auto fields), before training."""
    x_train, y_train = prepared.splits["train"]
    n_classes = len(prepared.class_names)
    with strategy.scope():
        train_model, infer_model = task_obj.build(cfg, prepared)
        if task_obj.source_model is not None:
            copied = transfer.copy_weights(task_obj.source_model, infer_model)
            log(f"Starting from {cfg.model.from_run}: weights of {', '.join(copied)}; a new head for {n_classes} classes")
    if on_built is not None:
        on_built()
    train_ds = task_obj.dataset(x_train, y_train, cfg, training=True, num_classes=n_classes)
    val_ds = (task_obj.dataset(*prepared.splits["val"], cfg, training=False, num_classes=n_classes)
              if "val" in prepared.splits else None)
    log(f"Training {cfg.model.backbone} ({train_model.count_params():,} parameters) for {cfg.train.epochs} "
        f"epoch{'' if cfg.train.epochs == 1 else 's'} into {run_dir}")
    batches = lambda n: int(np.ceil(n / cfg.train.batch_size))  # noqa: E731
    # A dataset that knows its batches a pass gives them (text-cls' length buckets end each with a short one).
    known = int(train_ds.cardinality())
    fit_args = dict(steps_per_epoch=known if known > 0 else batches(len(y_train)),
                    validation_steps=batches(len(prepared.splits["val"][1])) if val_ds is not None else None,
                    deadline=deadline,
                    reserve_steps=reserve_scale * evaluation_steps(task_obj, infer_model, prepared, cfg),
                    batchnorm_ds=batchnorm_dataset(task_obj, train_model, x_train, y_train, cfg, n_classes),
                    class_weight=(training.balanced_class_weights(y_train, n_classes)
                                  if cfg.train.class_weight == "balanced" else None))

    def compile_for(train_cfg):
        with strategy.scope():
            training.compile_model(train_model, train_cfg, fit_args["steps_per_epoch"], n_classes,
                                   soft_labels=task_obj.soft_labels(cfg), multi_label=prepared.multi_label)

    phases = None
    if transfer.is_pretrained(cfg):
        history, phases = train_two_phases(train_model, compile_for, train_ds, val_ds, cfg.train, run_dir, timer, fit_args)
    else:
        compile_for(cfg.train)
        history = training.fit(train_model, train_ds, val_ds, cfg.train, run_dir, timer, **fit_args)
    return Fitted(infer_model, train_model, history, phases, fit_args["steps_per_epoch"])


def batchnorm_dataset(task_obj, model, x_train, y_train, cfg, n_classes: int):
    """The training batches over which `train.precise_bn` re-estimates batch norm's statistics
    each epoch: `precise_bn` batches' worth of training examples drawn once (seeded), in a
    pipeline of their own (the training one's cache is still being filled in the first epoch).
    None when the option is off or `model` has no batch norm that trains."""
    n = cfg.train.precise_bn * cfg.train.batch_size
    if not n or not training.batchnorm_layers(model):
        return None
    pick = np.sort(np.random.default_rng(cfg.train.seed).permutation(len(y_train))[:n])
    return task_obj.dataset(x_train[pick], y_train[pick], cfg, training=True, num_classes=n_classes)


def pooled_train_and_val(prepared) -> tuple[np.ndarray, np.ndarray, list]:
    """(x, y, ids) of the train split followed by the val split of `prepared`."""
    (xt, yt), (xv, yv) = prepared.splits["train"], prepared.splits["val"]
    return np.concatenate([xt, xv]), np.concatenate([yt, yv]), list(prepared.ids["train"]) + list(prepared.ids["val"])


def member_splits(prepared, members: int, val_split: float, seed: int) -> tuple[list, list]:
    """The data of each member for `model.members_val=rotate`: train and val of `prepared`
    pooled and cut into round(1 / val_split) disjoint slices (stratified by label for
    single-label data, with `seed`); member i holds out slice i mod the number of slices as its
    validation texts and trains on the rest, so the members together train on every text. The
    vocabulary of every member is adapted on the pool (`Prepared.adapt_on`): the saved model
    vectorizes once for all members.

    Returns (one `Prepared` per member, its test split if any unchanged; for each member the
    indices of its slice in the pool, train texts first, then val)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    x, y, ids = pooled_train_and_val(prepared)
    k = min(max(2, int(round(1.0 / val_split))), len(y))  # no more slices than texts
    counts = np.bincount(y) if y.ndim == 1 else None
    stratified = counts is not None and counts[counts > 0].min() >= k
    cut = (StratifiedKFold if stratified else KFold)(n_splits=k, shuffle=True, random_state=seed)
    slices = [held for _, held in cut.split(np.zeros(len(y)), y if stratified else None)]
    out, held_out = [], []
    for i in range(members):
        held = slices[i % k]
        rest = np.setdiff1d(np.arange(len(y)), held)
        splits = {**prepared.splits, "train": (x[rest], y[rest]), "val": (x[held], y[held])}
        member_ids = {**prepared.ids, "train": [ids[j] for j in rest], "val": [ids[j] for j in held]}
        out.append(dataclasses.replace(prepared, splits=splits, ids=member_ids, adapt_on=x))
        held_out.append(held)
    return out, held_out


def member_config(cfg, i: int):
    """The config of member `i` (from 0) of `model.members`: seed `train.seed + i`, and its
    backbone_args updated with `model.members_backbone_args[i mod len]` when that list is set."""
    model = cfg.model
    if model.members_backbone_args:
        own = model.members_backbone_args[i % len(model.members_backbone_args)]
        model = dataclasses.replace(model, backbone_args={**model.backbone_args, **own})
    return dataclasses.replace(cfg, model=model, train=dataclasses.replace(cfg.train, seed=cfg.train.seed + i))


def fit_members(cfg, task_obj, prepared, run_dir: Path, timer, strategy, deadline: float | None,
                on_built) -> Fitted:
    """`model.members` N > 1: N networks trained one after the other, member i from seed
    `train.seed + i` (its initial weights, dropout and batch order) with its own early stopping,
    in RUN_DIR/member-NN; the saved model averages their probabilities (`task.members_model`).

    Why apart, not side by side in one model on the same batches with one early stopping (this
    option's first version): five networks side by side gained -0.73 to +0.21 points over one
    network on TREC, SST-2 and SST-5 (three seeds), five trained apart +0.60 to +1.32 on those and
    MR (BENCHMARKS.md, text-cls).
    A member that finished before (RUN_DIR/member-NN/network.weights.h5) is loaded, not
    trained again, when the run is resumed; that file is all a finished member keeps (its
    checkpoints folder is removed). With a deadline, each member gets an equal share of
    the time left when it starts."""
    n = cfg.model.members
    networks, history = [], {}
    said_left = False  # the time the members left take, said once (after the first one trained)
    rotate = cfg.model.members_val == "rotate" and prepared.val_from_train and "val" in prepared.splits
    if rotate and prepared.grouped:
        rotate = False  # the slices are cut from the prepared texts, which no longer carry their groups
        log("The members share one validation split (as model.members_val=same): the training data has groups, "
            "and the rotated slices would cut through them")
    member_data, slices = (member_splits(prepared, n, cfg.data.val_split, cfg.train.seed + 1) if rotate
                           else ([prepared] * n, None))
    nb = {}

    def fit_nb_once():
        """The naive-Bayes member, fitted after the first network's build (every member's vocabulary
        is the same) and before its training: inside the time budget, failing before any epoch."""
        if "member" not in nb:
            nb["member"], nb["seconds"] = fit_nb_member(cfg, task_obj, prepared, pooled=rotate)

    def first_built():
        on_built()
        fit_nb_once()

    for i in range(n):
        data = member_data[i]
        member_dir = run_dir / f"member-{i + 1:02d}"
        member_cfg = member_config(cfg, i)
        training.seed_everything(member_cfg.train.seed, cfg.train.deterministic)
        done = member_dir / "network.weights.h5"
        if done.exists():
            with strategy.scope():
                network, _ = task_obj.build(member_cfg, data)
            network.load_weights(str(done))
            log(f"Member {i + 1}/{n}: trained before, its weights read from {done}")
            fit_nb_once()
        else:
            held = f"; validation: its own {len(data.splits['val'][1])} texts held out of train" if rotate else ""
            own = (f"; backbone_args {member_cfg.model.backbone_args}" if cfg.model.members_backbone_args else "")
            log(f"Member {i + 1}/{n} (seed {member_cfg.train.seed}{held}{own})")
            member_deadline = time.time() + (deadline - time.time()) / (n - i) if deadline is not None else None
            began = time.time()
            # The final evaluation runs all N members: the last one keeps their time free.
            fitted = fit_network(member_cfg, task_obj, data, member_dir, timer, strategy, member_deadline,
                                 reserve_scale=n if i == n - 1 else 0.0, on_built=first_built if i == 0 else None)
            left = n - i - 1
            took = time.time() - began
            if not said_left and left and deadline is None and left * took >= training.REMAINING_SAID_FROM:
                # Each member's epochs are announced on their own; this is the whole run's cost.
                log(f"Member {i + 1}/{n} took {training.spoken_duration(took)}: the {left} left take "
                    f"{training.time_left(left * took)}")
                said_left = True
            network = fitted.network
            runs.save_weights(network, done, optimizer=False)  # a finished member is not trained again
            # A finished member is read back from network.weights.h5 alone: its resume backup and
            # best-epoch checkpoint (3 copies of the weights and moments, 96 MB a member on TREC) can go;
            # its epochs' times stay for the run's train_seconds_total.
            for times in (member_dir / "checkpoints").glob("epoch_seconds-*.json"):
                times.replace(member_dir / times.name)
            shutil.rmtree(member_dir / "checkpoints", ignore_errors=True)
            for k, v in fitted.history.items():
                history.setdefault(k, []).extend(v)
        networks.append(network)
    steps_per_epoch = int(np.ceil(len(prepared.splits["train"][1]) / cfg.train.batch_size))
    model = task_obj.members_model(networks, nb["member"])
    held_out = members_held_out(task_obj, model, prepared, slices, cfg) if rotate else None
    return Fitted(model, None, history, None, steps_per_epoch, held_out, nb["seconds"])


def fit_nb_member(cfg, task_obj, prepared, pooled: bool):
    """(The naive-Bayes n-gram member of a text model (`model.nb_member`), the seconds its fit
    took), fitted on the texts the networks trained on: train and val pooled when an ensemble's
    validation slices rotate (`pooled`), else train. (None, None) when the option is off, and for
    multi-label data, a network with the n-gram branch (long texts: it has a linear n-gram model
    already), a model from Python and a run started from another (`--from`).

    It is left out of the validation figures of rotated slices (each text scored by the CNN
    members that held it out: this member has seen them all) and of the members' accuracies."""
    if not cfg.model.nb_member or not hasattr(task_obj, "nb_member"):
        return None, None
    if task_obj.custom_model is not None or task_obj.source_model is not None or cfg.preprocess.ngram_branch:
        return None, None
    if prepared.multi_label:
        log("model.nb_member: the naive-Bayes member is for single-label data; the model has its network(s) only")
        return None, None
    x, y = pooled_train_and_val(prepared)[:2] if pooled else prepared.splits["train"]
    began = time.time()
    member = task_obj.nb_member(cfg, x, y, len(prepared.class_names))
    seconds = time.time() - began
    networks = f"the {cfg.model.members} networks" if cfg.model.members > 1 else "the network"
    log(f"Naive-Bayes n-gram member (model.nb_member): fitted on {len(y)} texts in {seconds:.1f} s; "
        f"the saved model averages it with {networks}")
    return member, seconds


def members_held_out(task_obj, model, prepared, slices: list, cfg) -> dict:
    """The validation scores of an ensemble whose members held out different slices of the pool
    of `prepared`'s train and val (`member_splits`; `slices`: each member's indices in the pool):
    each member's probabilities on its own slice, averaged where slices repeat (more members than
    slices). Returns {"x", "y", "ids" (of the texts held out by any member, in pool order),
    "probs" (N, classes), "member_accuracy" (each member on its own slice)}."""
    x, y, ids = pooled_train_and_val(prepared)
    sums, counts, accuracy = None, np.zeros(len(y)), []
    for member, held in zip(task_obj.members_of(model), slices):
        probs = predict_probs(member, task_obj, x[held], cfg)
        accuracy.append(round(evaluation.classification_metrics(y[held], probs, prepared.class_names)["accuracy"], 6))
        sums = np.zeros((len(y), probs.shape[1]), probs.dtype) if sums is None else sums
        sums[held] += probs
        counts[held] += 1
    scored = np.flatnonzero(counts)
    return {"x": x[scored], "y": y[scored], "ids": [ids[i] for i in scored],
            "probs": (sums[scored] / counts[scored, None]).astype(sums.dtype), "member_accuracy": accuracy}


def evaluation_steps(task_obj, infer_model, prepared, cfg) -> float:
    """The final evaluation's work in training steps, for the time budget to keep free: the
    images of val and test times the model's views (2 with flip TTA, 6 with flip_shift, plus the
    test split once more without it), at half a training step per batch, or 0.8 after mixed-precision training,
    whose evaluation runs the float32 copy. Measured on an AMX Xeon (evaluation and saving
    against a training step, per batch): float32 0.43; bfloat16 training, float32 evaluation 0.55
    (airbench 32/64/128) and 0.63 (64/128/256)."""
    sizes = {name: len(prepared.splits[name][1]) for name in ("val", "test") if name in prepared.splits}
    views = task_obj.tta_views(infer_model)
    images = sum(sizes.values()) * views + (sizes.get("test", sizes.get("val", 0)) if views > 1 else 0)
    per_batch = 0.5 if cfg.train.precision == "float32" else 0.8
    return per_batch * images / cfg.train.batch_size


def train_two_phases(model, compile_for, train_ds, val_ds, train_cfg, run_dir: Path, timer, fit_args: dict):
    """Fine-tuning of a pretrained start (see cnnkit.transfer): the new head alone with the
    rest frozen, then the top `train_cfg.unfreeze` layers at the fine-tuning learning rate.

    Args:
        compile_for: compiles `model` for a TrainConfig (inside the run's strategy).
        fit_args: `training.fit`'s keyword arguments shared by both phases (steps per epoch,
            deadline, batch-norm batches, ...).
    Returns:
        (the Keras history of both phases joined, a summary dict for metrics.json).
    """
    head_epochs, tune_epochs = transfer.phase_epochs(train_cfg, fit_args["steps_per_epoch"])
    finetune_lr = train_cfg.finetune_lr or train_cfg.lr / 2
    # A new linear head on frozen features needs larger steps than the network's lr: at lr 2e-3,
    # 50 Adam steps left a 5-class head at 48 % where a converged one reaches 90 % (measured).
    head_lr = train_cfg.head_lr or train_cfg.lr * 10
    history: dict = {}
    summary = {"head_epochs": head_epochs, "finetune_epochs": tune_epochs, "head_lr": head_lr,
               "finetune_lr": finetune_lr, "unfreeze": train_cfg.unfreeze}
    try:
        if head_epochs:
            transfer.freeze_body(model)
            log(f"Phase 1: the new head alone ({sum(int(np.prod(w.shape)) for w in model.trainable_weights):,} "
                f"trainable parameters), {head_epochs} epoch(s) at lr {head_lr:g}")
            phase = dataclasses.replace(train_cfg, epochs=head_epochs, lr=head_lr)
            compile_for(phase)
            for k, v in training.fit(model, train_ds, val_ds, phase, run_dir, timer, backup="backup-head", **fit_args).items():
                history.setdefault(k, []).extend(v)
        if tune_epochs:
            summary["trainable_layers"] = transfer.unfreeze(model, train_cfg.unfreeze)
            log(f"Phase 2: {summary['trainable_layers']} layers unfrozen (--unfreeze {train_cfg.unfreeze}; batch norm "
                f"stays frozen), {tune_epochs} epoch(s) at lr {finetune_lr:g}")
            phase = dataclasses.replace(train_cfg, epochs=tune_epochs, lr=finetune_lr)
            compile_for(phase)
            for k, v in training.fit(model, train_ds, val_ds, phase, run_dir, timer, initial_epoch=head_epochs,
                                     **fit_args).items():
                history.setdefault(k, []).extend(v)
    finally:
        transfer.make_trainable(model)  # the saved model holds no frozen flags from this schedule
    return history, summary


def finetune(model_or_run, data: str | None = None, *, task: str | None = None, **options) -> RunResult:
    """Fine-tunes a pretrained network on new data, in two phases (see cnnkit.transfer).

    Args:
        model_or_run: a run directory (its network, a new head for the new labels), or a
            `keras.Model` that takes what the task gives a backbone (normalised images
            (h, w, c), embedded tokens, normalised spectrograms); a final softmax/sigmoid
            classifier of it is dropped.
        data: the new data source. task: needed with a Keras model ("image-cls", ...).
        **options: as for `train`, e.g. epochs=10, freeze_epochs=2, head_lr=1e-2, unfreeze="all",
            finetune_lr=1e-4.
    Returns:
        The RunResult of the new run.
    """
    import keras

    if isinstance(model_or_run, (str, Path)):
        return train(task, data, from_run=str(model_or_run), **options)
    if not isinstance(model_or_run, keras.Model):
        raise CnnkitError(f"finetune takes a run directory or a keras.Model. Received: {type(model_or_run).__name__}")
    if task is None:
        raise CnnkitError("cnnkit.finetune(model, data, task=...) needs the task of a Keras model: image-cls, "
                          "text-cls or speech-cls.")
    body = transfer.strip_classifier(model_or_run)
    weights = body.get_weights()

    def pretrained_body(input_shape, num_classes):
        """A copy of the given network with its pretrained weights (every fold starts from them)."""
        copy = keras.models.clone_model(body)
        copy.set_weights(weights)
        transfer.refresh_computed_state(copy)
        return copy

    pretrained_body.__name__ = body.name
    # weights="pretrained" marks the start as pretrained (two phases) in the run's config.
    return train(task, data, model=pretrained_body, weights="pretrained", **options)


def write_report_safely(run_dir: Path, model) -> None:
    """RUN_DIR/report.html; a failure to draw it is reported, never fatal: the run is saved."""
    from cnnkit import report

    try:
        log(f"Report {report.write_report(run_dir, model)}")
    except Exception as e:  # noqa: BLE001  (matplotlib, a full disk...: the model and metrics are written)
        log(f"warning: report.html was not written ({type(e).__name__}: {e}); retry with `cnnkit report {run_dir}`")


def merge_splits(loaded: LoadedData) -> Split:
    """Every split of `loaded` as one; with groups when a split has them (an example of a split
    without them is a group of its own)."""
    parts = list(loaded.splits.items())
    xs = [s.x for _, s in parts]
    x = np.concatenate(xs) if isinstance(xs[0], np.ndarray) else sum((list(v) for v in xs), [])
    groups = None
    if any(s.groups is not None for _, s in parts):
        groups = np.concatenate([s.groups if s.groups is not None else
                                 np.asarray([f"{name} example {i + 1}" for i in range(len(s))], dtype=str)
                                 for name, s in parts])
    return Split(x, np.concatenate([s.y for _, s in parts]), groups)


def cross_validate(cfg, task_obj, loaded: LoadedData, run_dir: Path, start: float | None = None,
                   resumed: bool = False) -> RunResult:
    """Stratified K-fold cross-validation over all of the source's examples.

    Each fold trains on K-1 parts (minus the usual validation hold-out) and tests on the
    remaining part, written as a full run directory RUN_DIR/fold-NN. With a time budget, fold i
    of K must end by start + budget * i / K. `resumed`: a resumed run, whose fold folders
    exist (a finished fold restores its last backup and ends at once).
    """
    import copy

    from sklearn.model_selection import KFold, StratifiedKFold

    k = cfg.data.cv
    if k < 2:
        raise CnnkitError(f"data.cv must be 0 (off) or at least 2. Received: {k}")
    everything = merge_splits(loaded)
    if everything.groups is not None:  # whole groups in a fold (a predefined fold each, with as many)
        folds = group_folds(everything.groups, everything.y, k, cfg.train.seed, loaded.groups_from)
    else:
        # Label sets (multi-label) cannot be stratified by one class: plain shuffled folds then.
        splitter = (KFold if loaded.multi_label else StratifiedKFold)(n_splits=k, shuffle=True,
                                                                      random_state=cfg.train.seed)
        folds = [(train, test, None) for train, test in splitter.split(np.zeros(len(everything)), everything.y)]
    runs.write_yaml(run_dir / "config.yaml", cfg.to_dict())
    runs.write_json(run_dir / "labels.json", loaded.class_names)
    results, last = [], None
    for i, (train_idx, test_idx, held) in enumerate(folds, start=1):
        log(f"Fold {i}/{k}" + (f": tests on group {', '.join(held[:5])}{' ...' if len(held) > 5 else ''}"
                              if held else ""))
        fold_cfg = copy.deepcopy(cfg)
        fold_cfg.data.cv = 0
        fold = LoadedData(loaded.kind, {"train": everything.take(train_idx), "test": everything.take(test_idx)},
                          loaded.class_names, loaded.skipped, f"{loaded.origin} fold {i}/{k}",
                          multi_label=loaded.multi_label, groups_from=loaded.groups_from)
        fold_dir = runs.new_run_dir(cfg.task, str(run_dir / f"fold-{i:02d}"), resume=resumed)
        deadline = (start or time.time()) + cfg.train.time_budget * i / k if cfg.train.time_budget else None
        last = fit_and_save(fold_cfg, task_obj, prepare(fold_cfg, task_obj, fold), fold_dir, deadline)
        results.append(last.metrics)
    accs = np.asarray([m["test_accuracy"] for m in results])
    metrics = {"task": cfg.task, "backbone": results[0]["backbone"], "cv": k,
               "cv_accuracy_mean": round(float(accs.mean()), 6), "cv_accuracy_std": round(float(accs.std()), 6),
               "macro_f1": round(float(np.mean([m["macro_f1"] for m in results])), 6),
               "epochs": cfg.train.epochs,
               "train_seconds": round(sum(m["train_seconds"] for m in results), 2),
               "train_seconds_total": round(sum(m["train_seconds_total"] for m in results), 2),
               "max_fold_train_seconds": max(m["train_seconds"] for m in results),
               "folds": [{"fold": i + 1, "test_accuracy": m["test_accuracy"], "macro_f1": m["macro_f1"],
                          "train_seconds": m["train_seconds"]} | ({"test_groups": held} if held else {})
                         for i, (m, (_, _, held)) in enumerate(zip(results, folds))]}
    if loaded.groups_from:
        metrics["cv_groups"] = loaded.groups_from
    runs.write_json(run_dir / "metrics.json", metrics)
    write_report_safely(run_dir, None)
    log(f"Cross-validation: accuracy {metrics['cv_accuracy_mean']:.4f} +- {metrics['cv_accuracy_std']:.4f} over {k} folds")
    return RunResult(run_dir, last.model, last.history, metrics, cfg)


def write_evaluation(out_dir: Path, m: dict, class_names, y, probs, ids) -> None:
    """metrics.json, report.txt, confusion.csv/.png and misclassified.csv into `out_dir`."""
    import csv
    import io

    out_dir.mkdir(parents=True, exist_ok=True)
    runs.write_json(out_dir / "metrics.json", {k: v for k, v in m.items() if k != "report"} | {"per_class": m["report"]})
    runs.atomic_write(out_dir / "report.txt", evaluation.format_report(m, class_names) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf)
    if y.ndim == 2:  # multi-label: no confusion matrix; an example is wrong when its label set is
        names = lambda row: "|".join(c for c, on in zip(class_names, row) if on)  # noqa: E731
        w.writerow(["input", "true", "predicted"])
        for i in np.flatnonzero(((probs >= 0.5) != (y >= 0.5)).any(axis=1)):
            w.writerow([ids[i], names(y[i] >= 0.5), names(probs[i] >= 0.5)])
    else:
        evaluation.write_confusion_csv(m["confusion"], class_names, out_dir / "confusion.csv")
        evaluation.plot_confusion(m["confusion"], class_names, out_dir / "confusion.png")
        pred = probs.argmax(1)
        w.writerow(["input", "true", "predicted", "probability"])
        for i in np.flatnonzero(pred != y):
            w.writerow([ids[i], class_names[y[i]], class_names[pred[i]], f"{probs[i, pred[i]]:.4f}"])
    runs.atomic_write(out_dir / "misclassified.csv", buf.getvalue())


# ------------------------------------------------------------------ evaluate
def evaluate(run_dir: str, data: str, out: str | None = None, text_column: str | None = None,
             label_column: str | None = None, encoding: str | None = None) -> dict:
    """Evaluates a finished run on `data` (its test split, or all of it if it has none).

    `text_column` / `label_column`: a CSV/TSV's column names when they differ from the run's
    (`data.text_column` / `data.label_column` of its training); `encoding` its encoding likewise.
    Writes metrics.json, report.txt, confusion.csv/.png and misclassified.csv into
    `out` (default RUN_DIR/eval-<data name>) and returns the metrics.
    """
    run_path, cfg_dict, class_names = runs.read_run(run_dir)
    cfg = config_from_run(cfg_dict)
    task_obj = tasks.get(cfg.task)
    model = runs.load_model(run_path)
    cfg.data.encoding = encoding or cfg.data.encoding  # CSV/TSV tables here, .txt files in the task's prepare
    loaded = load_source(data, extensions=task_obj.extensions, text_column=text_column or cfg.data.text_column,
                         label_column=label_column or cfg.data.label_column, strict=cfg.data.strict,
                         multi_label=cfg.data.multi_label, encoding=cfg.data.encoding,
                         label_pattern=cfg.data.label_pattern if is_folder_source(data) else None)
    split_name = "test" if "test" in loaded.splits else None
    if split_name:
        split = loaded.splits["test"]
    else:  # no test split: evaluate on everything
        split = merge_splits(loaded)
    if loaded.multi_label != bool(cfg.data.multi_label):
        raise CnnkitError(f"{data} is {'multi' if loaded.multi_label else 'single'}-label data but the run {run_dir} "
                          f"was trained on {'multi' if cfg.data.multi_label else 'single'}-label data.")
    used = sorted({loaded.class_names[j] for j in np.flatnonzero(split.y.any(axis=0))} if loaded.multi_label
                  else {loaded.class_names[i] for i in split.y})
    unknown = sorted(set(used) - set(class_names))
    if unknown:
        raise CnnkitError(f"{data} has label(s) {', '.join(unknown[:5])} that the run {run_dir} was never trained on "
                          f"(its labels: {', '.join(class_names)}).")
    index = {c: i for i, c in enumerate(class_names)}
    if loaded.multi_label:  # the columns in the run's class order
        y = np.zeros((len(split.y), len(class_names)), dtype="float32")
        for j, name in enumerate(loaded.class_names):
            if name in index:
                y[:, index[name]] = split.y[:, j]
    else:
        y = np.asarray([index[loaded.class_names[i]] for i in split.y], dtype="int64")
    eval_data = LoadedData(loaded.kind, {"train": Split(split.x, y)}, class_names, loaded.skipped, loaded.origin,
                           multi_label=loaded.multi_label)
    prepared = task_obj.prepare(cfg, eval_data)
    x, y = prepared.splits["train"]
    probs = predict_probs(model, task_obj, x, cfg)
    m = evaluation.classification_metrics(y, probs, class_names)
    out_dir = Path(out) if out else run_path / f"eval-{Path(data.split(':')[-1]).name.split('.')[0] or 'data'}"
    write_evaluation(out_dir, m, class_names, y, probs, prepared.ids["train"])
    print(evaluation.format_report(m, class_names))
    log(f"Wrote {out_dir} (metrics.json, report.txt, confusion.csv/.png, misclassified.csv); "
        f"{len(prepared.skipped)} input(s) skipped")
    return {k: v for k, v in m.items() if k != "report"} | {"num_examples": int(len(y)), "out_dir": str(out_dir)}


# ------------------------------------------------------------------ predict
def expand_inputs(inputs: list[str], extensions: tuple) -> list[str]:
    """Files, folders (searched recursively for `extensions`) and globs -> a list of files."""
    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in extensions
                            and not any(is_system_entry(part) for part in p.relative_to(path).parts))
        elif path.exists():
            files.append(str(path))
        else:
            matched = sorted(glob.glob(item, recursive=True))
            if not matched:
                raise CnnkitError(f"{item} does not exist and matches no file.")
            files += [m for m in matched if Path(m).is_file()]
    if not files:
        raise CnnkitError(f"No input files found in {', '.join(inputs)} (looked for {'/'.join(extensions)}).")
    return files


def files_or_texts(inputs: list[str], task_obj, cfg, run_dir: str,
                   text_column: str | None = None) -> tuple[np.ndarray, list[str], list]:
    """A text run's inputs, in order -> (texts (N,), their names, skipped (input, reason)): each
    CSV/TSV/JSON-lines/Parquet file a text per row of `text_column` (default the run's; named
    `file:line`), each other file, folder or glob read as texts (named by file), any other input
    the text itself (named by itself; a blank one left out)."""
    texts, names, skipped = [], [], []
    for item in inputs:
        if is_table(item):  # a text a row, not one text
            t, n, s = table_texts(Path(item), text_column or cfg.data.text_column, cfg.data.encoding)
            texts, names, skipped = texts + t, names + n, skipped + s
            continue
        if Path(item).exists():
            files = expand_inputs([item], task_obj.extensions)
        else:  # a pattern counts as files when it matches some of this task's: a text whose "?" or "*"
            # happens to match other files in the folder stays a text
            files = sorted(m for m in glob.glob(item, recursive=True)
                           if Path(m).is_file() and Path(m).suffix.lower() in task_obj.extensions)
        if files:
            check_modality(files, task_obj, run_dir)
            x, n, s = task_obj.read_inputs(files, cfg)
            texts += list(x)
            names += n
            skipped += s
        elif item.strip():
            texts.append(item)
            names.append(item)
    return np.asarray(texts, dtype=object), names, skipped


def check_modality(files: list[str], task_obj, run_dir: str) -> None:
    """Stops when a file is of another task's kind (an image given to a text run, ...)."""
    own = set(task_obj.extensions)
    for name in tasks.names():
        other = tasks.get(name)
        if other.name == task_obj.name:
            continue
        wrong = [f for f in files if Path(f).suffix.lower() in set(other.extensions) - own]
        if wrong:
            raise CnnkitError(f"{wrong[0]} is input for {other.name}, but {run_dir} is a {task_obj.name} run; "
                              f"give it {'/'.join(task_obj.extensions)} files or use a {other.name} run.")


def top_k_labels(p: np.ndarray, class_names: list[str], k: int) -> list[dict]:
    """[{"label", "probability"}] of the k most probable classes of one probability row."""
    return [{"label": class_names[i], "probability": float(p[i])} for i in np.argsort(-p)[:k]]


def predict(run_dir: str, inputs: "list[str] | np.ndarray", top_k: int = 5, batch_size: int = 64, stdin=None,
            sliding: bool = False, hop: float | None = None, encoding: str | None = None,
            text_column: str | None = None) -> list[dict]:
    """Top-k labels with probabilities for each input: [{"input", "predictions": [{"label", "probability"}]}].

    `inputs` are files, folders or globs; for a text run, an input that is none of them is the
    text itself (as for `explain`), and "-" reads one text per line of `stdin` (default
    sys.stdin). A NumPy array holds the inputs themselves, named `array[i]`: texts (N,) for a
    text run; one image (h, w[, c]) or a batch (N, h, w[, c]) of 0-255 values (or floats 0-1)
    for an image run; one waveform (samples,) or a batch (N, samples) at the run's sample rate
    for a speech run. With `sliding` (speech runs), each recording is cut into
    clip-length windows `hop` seconds apart (default half a clip) and the result holds
    "windows" [{"start", "end", "speech", "predictions"}] and "words" [{"label", "start",
    "end", "probability"}]: runs of speech windows with the same best label. `encoding` (text
    runs): the encoding of the `.txt` and table files, if not the run's `data.encoding`. A table
    (CSV/TSV, JSON lines, Parquet) given to a text run is a text per row of its `text_column`
    (default the run's `data.text_column`), named `file:line`; given to an image or speech run, a
    table names the files to predict on (a column of file names relative to its folder or a folder
    in it, the extension optional: Kaggle's test.csv of ids).
    """
    run_path, cfg_dict, class_names = runs.read_run(run_dir)
    cfg = config_from_run(cfg_dict)
    if encoding:
        if cfg.task != "text-cls":
            raise CnnkitError(f"--encoding is for text runs' .txt files; {run_dir} is a {cfg.task} run.")
        decoding(encoding)  # an unknown name fails here, before the model loads
        cfg.data.encoding = encoding
    task_obj = tasks.get(cfg.task)
    model = runs.load_model(run_path)
    k = max(1, min(top_k, len(class_names)))
    if sliding:
        if not hasattr(task_obj, "read_windows"):
            raise CnnkitError(f"--sliding is for speech runs; {run_dir} is a {cfg.task} run.")
        files = expand_inputs(inputs, task_obj.extensions)
        check_modality(files, task_obj, run_dir)
        return [sliding_predict(model, task_obj, f, cfg, class_names, k, hop, batch_size) for f in files]
    if isinstance(inputs, np.ndarray):  # inputs in memory
        x, skipped = task_obj.array_inputs(inputs, cfg), []
        names = [f"array[{i}]" for i in range(len(x))]
    elif inputs == ["-"]:
        if cfg.task != "text-cls":
            raise CnnkitError("'-' (lines of standard input) is for text runs; give files, folders or globs.")
        lines = [l.rstrip("\n") for l in (stdin or sys.stdin)]
        names = [l for l in lines if l.strip()]
        x, skipped = np.asarray(names, dtype=object), []
    elif cfg.task == "text-cls":
        x, names, skipped = files_or_texts(inputs, task_obj, cfg, run_dir, text_column)
    else:
        files, listed_skipped, shown = [], [], []
        for item in inputs:
            if is_table(item):  # a table naming the files: each named by its cell (Kaggle's id)
                listed, missing, cells = table_files(Path(item), task_obj.extensions,
                                                     text_column or cfg.data.text_column, cfg.data.encoding)
                files, listed_skipped, shown = files + listed, listed_skipped + missing, shown + cells
            else:
                expanded = expand_inputs([item], task_obj.extensions)
                files, shown = files + expanded, shown + expanded
        check_modality(files, task_obj, run_dir)
        x, names, skipped = task_obj.read_inputs(files, cfg)
        names = shown_names(files, shown, names)
        skipped = listed_skipped + skipped
    for path, why in skipped:
        log(f"Skipped {path}: {why}")
    if len(names) == 0:
        raise CnnkitError("None of the inputs could be read; see the messages above.")
    import contextlib

    # A progress bar past ten batches, on stderr: Keras draws it on stdout, where the results
    # (and `--json`) go.
    with contextlib.redirect_stdout(sys.stderr):
        verbose = training.progress_verbosity("auto") if len(names) > 10 * batch_size else 0
        probs = predict_probs(model, task_obj, x, cfg, batch_size, verbose=verbose)
    if cfg.data.multi_label:  # every label with probability >= 0.5, then the top k
        return [{"input": name, "labels": [c for c, q in zip(class_names, p) if q >= 0.5],
                 "predictions": top_k_labels(p, class_names, k)} for name, p in zip(names, probs)]
    return [{"input": name, "predictions": top_k_labels(p, class_names, k)} for name, p in zip(names, probs)]


def shown_names(files: list[str], shown: list[str], read: list[str]) -> list[str]:
    """What each read input is called in predictions: `read` (the files that decoded, in order,
    a subsequence of `files`) mapped to `shown` (parallel to `files`: a table's cell for a file
    it names, else the path)."""
    out, j = [], 0
    for name in read:
        while files[j] != name:
            j += 1
        out.append(shown[j])
        j += 1
    return out


def sliding_predict(model, task_obj, path: str, cfg, class_names, k: int, hop, batch_size: int) -> dict:
    """Windows over one long recording and the words they spell (see `predict`)."""
    windows, starts, speech = task_obj.read_windows(path, cfg, hop)
    probs = predict_probs(model, task_obj, windows, cfg, batch_size)
    length = cfg.preprocess.clip_seconds
    out = {"input": path, "windows": [], "words": []}
    previous_speech = False
    for start, is_speech, p in zip(starts, speech, probs):
        out["windows"].append({"start": round(float(start), 3), "end": round(float(start) + length, 3),
                               "speech": bool(is_speech), "predictions": top_k_labels(p, class_names, k)})
        best = int(np.argmax(p))
        words = out["words"]
        continues = previous_speech and words and words[-1]["label"] == class_names[best]
        previous_speech = bool(is_speech)
        if not is_speech:  # a quiet window ends the word
            continue
        if continues:
            words[-1]["end"] = round(float(start) + length, 3)
            words[-1]["probability"] = max(words[-1]["probability"], float(p[best]))
        else:
            words.append({"label": class_names[best], "start": round(float(start), 3),
                          "end": round(float(start) + length, 3), "probability": float(p[best])})
    return out


# ------------------------------------------------------------------ summary
def summary(task_or_recipe: str, data: str | None = None, config: str | None = None,
            sets: list[str] | None = None, **options) -> str:
    """The layer-by-layer table (output shapes, parameters) of the end-to-end model a
    `train` with the same arguments would build (the data are read for shapes and classes)."""
    cfg = resolve_config(task_or_recipe, data, config, sets, **options)
    task_obj = tasks.get(cfg.task)
    prepared = load_prepared(cfg, task_obj)
    train_model, infer_model = task_obj.build(cfg, prepared)
    lines: list[str] = []
    train_model.summary(print_fn=lambda s, **kw: lines.append(s), expand_nested=True, line_length=110)
    return "\n".join(lines)


def load_run(run_dir: str):
    """(model, class names, config dict) of a finished run."""
    run_path, cfg_dict, class_names = runs.read_run(run_dir)
    return runs.load_model(run_path), class_names, cfg_dict


def dumps(obj) -> str:
    return json.dumps(obj, indent=2)
