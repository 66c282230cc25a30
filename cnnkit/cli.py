"""The `cnnkit` command: argument parsing only; each sub-command calls one function of `cnnkit.api`.

Errors a user can fix print as one line (`error: ...`); `--debug` shows the traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", nargs="?", help="a task (image-cls) or a recipe file (recipes/cifar10.yaml)")
    p.add_argument("--data", help="data source: folder, archive, CSV/TSV, .jsonl, .parquet, fastText .txt, .npz, tfds:NAME, builtin:NAME")
    p.add_argument("--config", help="a YAML file of overrides")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config value, e.g. --set train.lr=0.01 (repeatable)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "rmsprop"])
    p.add_argument("--seed", type=int)
    p.add_argument("--backbone", help="a name from `cnnkit backbones`")
    p.add_argument("--weights", help="none | imagenet | a weights file (keras.applications backbones)")
    p.add_argument("--from", dest="from_run", metavar="RUN_DIR",
                   help="start from an earlier run's network (same task): its head replaced, fine-tuned in two phases")
    p.add_argument("--freeze-epochs", type=int, metavar="N",
                   help="pretrained starts: epochs of the new head alone, the rest frozen (default: a quarter, or 100 steps)")
    p.add_argument("--head-lr", type=float, metavar="LR", help="pretrained starts: learning rate of the head-only phase (default 10 x lr)")
    p.add_argument("--unfreeze", metavar="N|all|none", help="pretrained starts: layers trained after that, from the top (default all)")
    p.add_argument("--finetune-lr", type=float, metavar="LR", help="pretrained starts: learning rate after unfreezing (default lr/2)")
    p.add_argument("--image-size", type=int, nargs="+", metavar="PIXELS", help="one side, or height width")
    p.add_argument("--sample-rate", type=int, metavar="HZ", help="audio: resample every clip to this rate (default 16000)")
    p.add_argument("--clip-seconds", type=float, metavar="S", help="audio: clip length (default: from the data)")
    p.add_argument("--embeddings", metavar="PATH", help="text: word2vec/GloVe/fastText vectors (.txt, .vec, .gz, .zip, word2vec .bin) to initialise the embedding")
    p.add_argument("--cv", type=int, metavar="K", help="stratified K-fold cross-validation instead of one run")
    p.add_argument("--precision", choices=["float32", "mixed_float16", "mixed_bfloat16", "auto"],
                   help="auto: mixed_bfloat16 on a CPU with native bfloat16, mixed_float16 on a GPU with tensor cores, else float32")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="end training in time: epochs and lr schedule shortened to fit (counted from the start of the process)")
    p.add_argument("--jit-compile", action="store_true", default=None, help="compile with XLA")
    p.add_argument("--deterministic", action="store_true", default=None, help="TF op determinism (same seed -> same metrics)")
    p.add_argument("--strategy", choices=["auto", "mirrored", "multiworker"])
    p.add_argument("--cache", choices=["memory", "disk", "none"],
                   help="image files: keep decoded images in memory (default), in a disk cache file, or decode every epoch")
    p.add_argument("--strict", action="store_true", default=None, help="fail on unreadable inputs instead of skipping them")
    p.add_argument("--out", help="the run directory (default runs/<task>-<timestamp>)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a module first (one that registers backbones with @cnnkit.backbones.register)")


def _train_options(args) -> dict:
    size = args.image_size
    if size is not None:
        size = [size[0], size[0]] if len(size) == 1 else size[:2]
    return dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                seed=args.seed, backbone=args.backbone, weights=args.weights, image_size=size,
                precision=args.precision, jit_compile=args.jit_compile, deterministic=args.deterministic,
                strategy=args.strategy, strict=args.strict, cache=args.cache, embeddings=args.embeddings, cv=args.cv,
                sample_rate=args.sample_rate, clip_seconds=args.clip_seconds, from_run=args.from_run,
                freeze_epochs=args.freeze_epochs, head_lr=args.head_lr, unfreeze=args.unfreeze, time_budget=args.time_budget,
                finetune_lr=args.finetune_lr)


def cmd_tasks(args) -> int:
    from cnnkit import api, tasks

    print("tasks:   " + ", ".join(tasks.names()))
    print("recipes: " + ", ".join(api.recipe_names()) + f"   (in {api.RECIPES_DIR.resolve()})")
    return 0


def import_modules(names: list[str]) -> None:
    """`--import MODULE`: imports each (from the current folder too), so that the backbones it
    registers are known to recipes and flags."""
    import importlib
    import os

    from cnnkit.errors import CnnkitError

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise CnnkitError(f"--import {name}: {e}. Give a module importable from here (my_backbones, or pkg.module).") from None


def cmd_train(args) -> int:
    from cnnkit import api, training

    import_modules(args.imports)
    if not args.task and not args.resume and not args.from_run:
        raise SystemExit("cnnkit train: give a task, a recipe file, --from RUN_DIR or --resume RUN_DIR")
    result = api.train(args.task, args.data, out=args.out, resume=args.resume, config=args.config,
                       sets=args.sets, started=training.process_start_time(), **_train_options(args))
    print(json.dumps(result.metrics, indent=2))
    return 0


def cmd_finetune(args) -> int:
    """`cnnkit finetune RUN_DIR --data NEW`: `cnnkit train --from RUN_DIR --data NEW`."""
    from cnnkit import api, training

    import_modules(args.imports)
    options = _train_options(args)
    options["from_run"] = args.run_dir
    result = api.train(args.task, args.data, out=args.out, config=args.config, sets=args.sets,
                       started=training.process_start_time(), **options)
    print(json.dumps(result.metrics, indent=2))
    return 0


def cmd_evaluate(args) -> int:
    from cnnkit import api

    metrics = api.evaluate(args.run_dir, args.data, out=args.out, text_column=args.text_column,
                           label_column=args.label_column, encoding=args.encoding)
    if args.json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "confusion"}, indent=2))
    return 0


def cmd_predict(args) -> int:
    from cnnkit import api

    results = api.predict(args.run_dir, args.inputs, top_k=args.top_k, sliding=args.sliding, hop=args.hop,
                          encoding=args.encoding, text_column=args.text_column)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if args.csv:
        write_predictions_csv(results, sys.stdout)
        return 0
    for r in results:
        if "windows" in r:
            print(f"{r['input']}\t{' '.join(w['label'] for w in r['words']) or '(no words)'}")
            for w in r["windows"]:
                best = "  ".join(f"{p['label']} {p['probability']:.3f}" for p in w["predictions"])
                print(f"  {w['start']:8.2f}-{w['end']:.2f} s\t{best}{'' if w['speech'] else '  (quiet)'}")
            continue
        best = "  ".join(f"{p['label']} {p['probability']:.3f}" for p in r["predictions"])
        if "labels" in r:  # multi-label: the label set (probability >= 0.5) before the top k
            print(f"{r['input']}\t{'|'.join(r['labels']) or '(no label)'}\t{best}")
        else:
            print(f"{r['input']}\t{best}")
    return 0


def write_predictions_csv(results: list[dict], stream) -> None:
    """`predict`'s results as CSV on `stream`: input, [labels (multi-label runs),] then label_1,
    probability_1, ... for the top k; a long recording's (--sliding) words as one space-separated
    cell."""
    import csv

    writer = csv.writer(stream, lineterminator="\n")
    k = max((len(r.get("predictions", [])) for r in results), default=0)
    multi = any("labels" in r for r in results)
    sliding = any("windows" in r for r in results)
    header = ["input"] + (["labels"] if multi else []) + (["words"] if sliding else [])
    writer.writerow(header + [f"{name}_{i}" for i in range(1, k + 1) for name in ("label", "probability")])
    for r in results:
        row = [r["input"]] + (["|".join(r.get("labels", []))] if multi else [])
        row += [" ".join(w["label"] for w in r.get("words", []))] if sliding else []
        row += [v for p in r.get("predictions", []) for v in (p["label"], f"{p['probability']:.4f}")]
        writer.writerow(row)


def cmd_summary(args) -> int:
    from cnnkit import api

    import_modules(args.imports)
    print(api.summary(args.task, args.data, config=args.config, sets=args.sets, **_train_options(args)))
    return 0


def cmd_export(args) -> int:
    from cnnkit import export

    record = export.export(args.run_dir, args.format, args.quantize, args.out)
    print(json.dumps(record, indent=2))
    return 0


def cmd_explain(args) -> int:
    from cnnkit import explain

    for r in explain.explain(args.run_dir, args.inputs, out=args.out, label=args.label):
        print(f"{r['input']}\t{r['label']} {r['probability']:.3f}\t{r['file']}")
    return 0


def cmd_featuremaps(args) -> int:
    from cnnkit import explain

    for r in explain.feature_maps(args.run_dir, args.inputs, out=args.out, max_channels=args.channels):
        print(f"{r['input']}\t{len(r['files'])} layers\t{Path(r['files'][0]).parent}")
    return 0


def cmd_report(args) -> int:
    from cnnkit import report

    print(report.write_report(args.run_dir))
    return 0


def cmd_backbones(args) -> int:
    from cnnkit import backbones
    from cnnkit.backbones.applications import keras_cache_dir

    print(f"{'name':<20} {'modality':<12} {'source':<19} {'input':<12} {'parameters':>11}  pretrained weights")
    for name in backbones.names():
        d = backbones.describe(name)
        print(f"{name:<20} {d['modality']:<12} {d.get('source', 'cnnkit'):<19} {'x'.join(map(str, d['input_shape'])):<12} "
              f"{d['parameters']:>11,}  {d['pretrained']}")
    print(f"\ninput: the listed size (own backbones take other sizes too); parameters without the head. "
          f"ImageNet weights are read from {keras_cache_dir()}; 'not cached' needs a network or --weights PATH. "
          f"Any run directory is a pretrained start too: cnnkit finetune RUN_DIR --data NEW.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnkit", description="Convolutional networks for images, text and audio.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tasks", aliases=["recipes"], help="list the tasks and the shipped recipe files")
    p.set_defaults(fn=cmd_tasks)

    p = sub.add_parser("train", help="train a task or a recipe file into a run directory")
    _add_train_flags(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last completed epoch")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("finetune", help="fine-tune a finished run's network on new data (new head, two phases)")
    p.add_argument("run_dir", help="the run to start from")
    _add_train_flags(p)
    p.set_defaults(fn=cmd_finetune)

    p = sub.add_parser("evaluate", help="evaluate a run on a data source")
    p.add_argument("run_dir")
    p.add_argument("--data", required=True)
    p.add_argument("--out", help="output folder (default RUN_DIR/eval-<data>)")
    p.add_argument("--json", action="store_true", help="also print the metrics as JSON")
    p.add_argument("--text-column", metavar="NAME", help="CSV/TSV: the text column, if not the run's")
    p.add_argument("--label-column", metavar="NAME", help="CSV/TSV: the label column, if not the run's")
    p.add_argument("--encoding", metavar="NAME", help="CSV/TSV: the text encoding (e.g. cp1252), if not the run's")
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("predict", help="top-k labels for files, folders or globs (text runs: texts themselves too)")
    p.add_argument("run_dir")
    p.add_argument("inputs", nargs="+", help="files, folders or globs (text-cls: or the text itself; a CSV/TSV/.jsonl/"
                                             ".parquet file: a text per row, or for images and audio a column of file "
                                             "names); - reads one text per line of standard input")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--sliding", action="store_true", help="audio: label each window of a long recording (words over time)")
    p.add_argument("--hop", type=float, metavar="S", help="with --sliding: seconds between windows (default: half a clip)")
    p.add_argument("--encoding", metavar="NAME", help="text runs: the encoding of the .txt and table files (e.g. "
                                                      "cp1252), if not the run's data.encoding")
    p.add_argument("--text-column", metavar="NAME", help="tables: the column of texts (or file names), if not the run's")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true")
    output.add_argument("--csv", action="store_true", help="CSV on standard output: input, label_1, probability_1, ...")
    p.set_defaults(fn=cmd_predict)

    p = sub.add_parser("export", help="export a run (keras, savedmodel, tflite, onnx) and check it against the Keras model")
    p.add_argument("run_dir")
    p.add_argument("--format", default="savedmodel", choices=["keras", "savedmodel", "tflite", "onnx"])
    p.add_argument("--quantize", choices=["dynamic", "float16", "int8"], help="tflite: post-training quantization")
    p.add_argument("--out", help="output folder (default RUN_DIR/export)")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("explain", help="Grad-CAM (images, audio) or token saliency (text) for inputs")
    p.add_argument("run_dir")
    p.add_argument("inputs", nargs="+", help="files (text-cls: a file, or the text itself)")
    p.add_argument("--label", help="explain this class instead of the predicted one")
    p.add_argument("--out", help="output folder (default RUN_DIR/explain)")
    p.set_defaults(fn=cmd_explain)

    p = sub.add_parser("featuremaps", help="each convolution block's activations for an input, as image grids")
    p.add_argument("run_dir")
    p.add_argument("inputs", nargs="+", help="files (text-cls: a file, or the text itself)")
    p.add_argument("--channels", type=int, default=16, help="channels shown per layer (default 16)")
    p.add_argument("--out", help="output folder (default RUN_DIR/featuremaps)")
    p.set_defaults(fn=cmd_featuremaps)

    p = sub.add_parser("report", help="write RUN_DIR/report.html again (curves, confusion matrix, per-class table, config)")
    p.add_argument("run_dir")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("summary", help="layer-by-layer shapes and parameters of a task's model")
    _add_train_flags(p)
    p.set_defaults(fn=cmd_summary)

    p = sub.add_parser("backbones", help="list the registered backbones")
    p.set_defaults(fn=cmd_backbones)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import tensorflow as tf

    from cnnkit import native_logs
    from cnnkit.errors import CnnkitError

    with native_logs.quiet_native_stderr(native_logs.FILTER):
        tf.config.list_physical_devices()  # device start-up, and its lines, before the command's own output

    try:
        code = args.fn(args)
        sys.stdout.flush()  # a closed pipe shows here, not in Python's flush at exit
        return code
    except CnnkitError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cnnkit predict ... | head`: the reader has what it wanted
        # Python flushes stdout again at exit, into the closed pipe: point it at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # never a bare TensorFlow traceback at the top level
        if args.debug:
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"error: {type(e).__name__}: {first[:500]} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
