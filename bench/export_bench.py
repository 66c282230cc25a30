"""Prediction throughput and single-input latency of each export format, for each task's
default model (trained on the task's embedded sample with the task's defaults).

For each task: `cnnkit train TASK` (defaults), `cnnkit export` to keras, savedmodel, tflite and
onnx (where supported), then on the run's own test inputs: throughput (inputs/s, batches of 64,
median of 5 passes over 512 inputs) and latency (ms, one input per call, median of 200 calls).
keras/savedmodel take raw inputs; tflite/onnx what `cnnkit export` documents (resized float
images, token ids, waveforms), so the tokenizer's time is reported apart for text.
Rows are appended to bench/results/export.jsonl.

    python bench/export_bench.py                  # all three tasks
    python bench/export_bench.py image-cls
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "export.jsonl"


def rows_of(x, start: int, stop: int):
    """Rows start:stop of `x`: an array, or a dict of arrays (the inputs of a two-input export)."""
    return {k: v[start:stop] for k, v in x.items()} if isinstance(x, dict) else x[start:stop]


def size_of(x) -> int:
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def timed(fn, x, batch: int, passes: int = 5) -> float:
    """Median inputs/s of `fn` over `x` (an array or a dict of arrays) in batches of `batch`."""
    rates = []
    fn(rows_of(x, 0, batch))  # warm-up (tracing, allocation)
    n = size_of(x)
    for _ in range(passes):
        start = time.perf_counter()
        for i in range(0, n, batch):
            fn(rows_of(x, i, i + batch))
        rates.append(n / (time.perf_counter() - start))
    return float(np.median(rates))


def latency_ms(fn, x, calls: int = 200) -> float:
    fn(rows_of(x, 0, 1))
    times = []
    n = size_of(x)
    for i in range(calls):
        one = rows_of(x, i % n, i % n + 1)
        start = time.perf_counter()
        fn(one)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def bench_task(task: str, work: Path) -> list[dict]:
    import cnnkit
    from cnnkit import export as ex
    from cnnkit import runs, tasks
    from cnnkit.api import config_from_run

    run = cnnkit.train(task, out=str(work / task), verbose=0)
    _, cfg_dict, _ = runs.read_run(run.run_dir)
    cfg = config_from_run(cfg_dict)
    task_obj = tasks.get(task)
    x, _ = ex.sample_data(cfg, task_obj, n=512)
    x = np.concatenate([x] * int(np.ceil(512 / len(x))))[:512]
    model = run.model
    rows = []

    def row(fmt, fn, feed, note=""):
        r = {"task": task, "format": fmt, "throughput_per_s": round(timed(fn, feed, 64), 1),
             "latency_ms": round(latency_ms(fn, feed), 3), "note": note}
        print(json.dumps(r), flush=True)
        rows.append(r)

    raw = x if x.dtype == object else x.astype("float32")
    row("keras", lambda b: model.predict_on_batch(b), raw, "model.predict_on_batch, raw inputs")
    import tensorflow as tf

    sm = ex.export(str(run.run_dir), "savedmodel", out=str(work / f"{task}-export"))
    loaded = tf.saved_model.load(sm["path"])
    row("savedmodel", lambda b: loaded.serve(tf.constant(b)), raw, "signature serve, raw inputs")
    if task == "image-cls":
        encoded = np.asarray([tf.io.encode_png(np.asarray(img, "uint8")).numpy() for img in x], dtype=object)
        row("savedmodel serve_bytes", lambda b: loaded.serve_bytes(tf.constant(list(b))), encoded, "PNG bytes")
    start = time.perf_counter()
    feed = ex.core_inputs(x, cfg, model)
    if task == "text-cls":  # what a TFLite/ONNX caller computes from the strings (the export's tokenizer.py)
        rows.append({"task": task, "format": "python tokenize", "throughput_per_s":
                     round(len(x) / (time.perf_counter() - start), 1), "latency_ms": None,
                     "note": "export.core_inputs: tokenizer.py's tokenize and unknown_subword_ids, before tflite/onnx"})
    for fmt in ("tflite", "onnx"):
        if (fmt, task) in ex.UNSUPPORTED:
            continue
        rec = ex.export(str(run.run_dir), fmt, out=str(work / f"{task}-export"))
        if fmt == "tflite":
            from ai_edge_litert.interpreter import Interpreter

            interp = Interpreter(model_path=rec["path"])
            inputs, out = interp.get_input_details(), interp.get_output_details()[0]
            shape = {"n": None}

            def run_tflite(b, interp=interp, inputs=inputs, out=out):
                arrays = ex.by_input_name([inp["name"] for inp in inputs], b)
                if shape["n"] != size_of(b):
                    for inp, a in zip(inputs, arrays):
                        interp.resize_tensor_input(inp["index"], list(a.shape))
                    interp.allocate_tensors()
                    shape["n"] = size_of(b)
                for inp, a in zip(inputs, arrays):
                    interp.set_tensor(inp["index"], a.astype(inp["dtype"]))
                interp.invoke()
                return interp.get_tensor(out["index"])

            # one interpreter per batch size: resizing costs an allocation, kept out of the loop
            batch_rate = timed(run_tflite, feed, 64)
            shape["n"] = None
            single = latency_ms(run_tflite, feed)
            r = {"task": task, "format": "tflite", "throughput_per_s": round(batch_rate, 1),
                 "latency_ms": round(single, 3), "note": rec.get("input", ""), "agreement": rec["agreement"]}
        else:
            import onnxruntime as ort

            session = ort.InferenceSession(rec["path"], providers=["CPUExecutionProvider"])
            names = [inp.name for inp in session.get_inputs()]
            fn = lambda b: session.run(None, dict(zip(names, ex.by_input_name(names, b))))  # noqa: E731
            r = {"task": task, "format": "onnx", "throughput_per_s": round(timed(fn, feed, 64), 1),
                 "latency_ms": round(latency_ms(fn, feed), 3), "note": rec.get("input", ""), "agreement": rec["agreement"]}
        print(json.dumps(r), flush=True)
        rows.append(r)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="*", default=["image-cls", "text-cls", "speech-cls"])
    args = parser.parse_args()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    stamp = {"date": dt.date.today().isoformat(), "machine": describe(),
             "command": " ".join(["python", "bench/export_bench.py", *sys.argv[1:]])}
    with tempfile.TemporaryDirectory(prefix="cnnkit-export-bench-") as tmp:
        for task in args.tasks:
            for r in bench_task(task, Path(tmp)):
                with open(RESULTS, "a") as f:
                    f.write(json.dumps({**r, **stamp}) + "\n")


if __name__ == "__main__":
    main()
