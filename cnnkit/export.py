"""`cnnkit export RUN_DIR --format keras|savedmodel|tflite [--quantize dynamic|float16|int8]`.

TFLite covers speech-cls runs today (see TFLITE_UNSUPPORTED); quantized speech models lose
accuracy because the log-mel front end is quantized too (export.json records by how much).

Every export is checked before it is reported: the exported model runs on a sample of the run's
own data (its test split, else validation, else train) and its predictions are compared with the
Keras model's. The result (agreement, accuracy of both on the sample) goes into
`RUN_DIR/export/export.json` next to the files.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from cnnkit import runs, tasks
from cnnkit.errors import CnnkitError

FORMATS = ("keras", "savedmodel", "tflite")
QUANTIZE = ("dynamic", "float16", "int8")
SAMPLE = 256  # examples used for int8 calibration and the agreement check
# Measured on TensorFlow 2.21: what keeps a task's end-to-end model from converting or running.
TFLITE_UNSUPPORTED = {
    "image-cls": "the model's antialiased resize (ScaleAndTranslate) has no TFLite or Flex kernel.",
    "text-cls": "TextVectorization's string ops need the Flex delegate, which TensorFlow's TFLite interpreter lacks.",
}


def sample_data(cfg, task_obj, n: int = SAMPLE, seed: int = 0):
    """(raw inputs (n, ...), labels (n,)) from the run's data source: a random sample of its
    test split (else validation, else train), prepared as training prepared it."""
    from cnnkit import api
    from cnnkit.datasets import LoadedData, ensure_splits

    loaded = api.load_data(cfg, task_obj)
    loaded = ensure_splits(loaded, cfg.data.val_split, cfg.data.test_split, cfg.train.seed)
    name = next(s for s in ("test", "val", "train") if s in loaded.splits)
    split = loaded.splits[name]
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(split), min(n, len(split)), replace=False))
    subset = LoadedData(loaded.kind, {"train": split.take(pick)}, loaded.class_names, [], loaded.origin,
                        loaded.sample_rate, loaded.multi_label)
    x, y = task_obj.prepare(cfg, subset).splits["train"]
    return x, y


def tflite_bytes(saved_model_dir: Path, quantize: str | None, representative=None) -> bytes:
    """Converts a SavedModel to TFLite; `quantize`: None, dynamic (int8 weights), float16
    (float16 weights) or int8 (weights and activations, calibrated on `representative`, a
    function yielding [input batch])."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    # TextVectorization's string ops (and any other op without a TFLite builtin) run as TensorFlow
    # ops through the Flex delegate, which TensorFlow's interpreter includes.
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    if quantize:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if representative is None:
            raise CnnkitError("int8 quantization needs calibration data; the run's data source could not be read.")
        conv.representative_dataset = representative
    return conv.convert()


def run_tflite(content: bytes, x: np.ndarray, batch: int = 32) -> np.ndarray:
    """Runs a TFLite model on inputs `x` (N, ...), `batch` at a time -> outputs (N, classes)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow's own interpreter (deprecated, still there in 2.21)
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interp = Interpreter(model_content=content)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    results = []
    for i in range(0, len(x), batch):
        chunk = np.asarray(x[i:i + batch])
        chunk = chunk.astype(inp["dtype"]) if inp["dtype"] != np.object_ else chunk.astype(bytes)
        interp.resize_tensor_input(inp["index"], list(chunk.shape))
        interp.allocate_tensors()
        interp.set_tensor(inp["index"], chunk)
        interp.invoke()
        results.append(interp.get_tensor(out["index"]).copy())
    return np.concatenate(results)


def export(run_dir: str, fmt: str = "savedmodel", quantize: str | None = None, out: str | None = None) -> dict:
    """Exports a finished run; returns what `export.json` records (path, size, agreement, ...)."""
    if fmt not in FORMATS:
        raise CnnkitError(f"--format must be one of {', '.join(FORMATS)}. Received: {fmt!r}")
    if quantize not in (None, *QUANTIZE):
        raise CnnkitError(f"--quantize must be one of {', '.join(QUANTIZE)}. Received: {quantize!r}")
    if quantize and fmt != "tflite":
        raise CnnkitError("--quantize applies to --format tflite.")
    from cnnkit import api

    run_path, cfg_dict, class_names = runs.read_run(run_dir)
    cfg = api.config_from_run(cfg_dict)
    task_obj = tasks.get(cfg.task)
    if fmt == "tflite" and cfg.task in TFLITE_UNSUPPORTED:
        raise CnnkitError(f"--format tflite does not support {cfg.task} runs yet: {TFLITE_UNSUPPORTED[cfg.task]} "
                          f"Use --format savedmodel or keras.")
    model = runs.load_model(run_path)
    out_dir = Path(out) if out else run_path / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    x, y = sample_data(cfg, task_obj)
    reference = api.predict_probs(model, task_obj, x, cfg)
    start = time.perf_counter()
    if fmt == "keras":
        target = out_dir / "model.keras"
        shutil.copyfile(run_path / "model.keras", target)
        import keras

        probs = keras.models.load_model(target, safe_mode=True).predict(task_obj.inference_dataset(x, cfg), verbose=0)
    else:
        saved = out_dir / "savedmodel"
        if saved.exists():
            shutil.rmtree(saved)
        import keras

        # Traced with training=None, a reloaded image model ran its batch norm in training mode
        # (batch statistics, moving averages updated by every serving call): fix it to False.
        inputs = keras.Input(model.input_shape[1:], dtype=model.input.dtype, name=model.input.name)
        keras.Model(inputs, model(inputs, training=False), name=model.name).export(str(saved), verbose=False)
        if fmt == "savedmodel":
            import tensorflow as tf

            target = saved
            loaded = tf.saved_model.load(str(saved))  # kept referenced: its functions use its variables
            # the serving signature takes float32 (images 0-255, waveforms) or strings
            xs = x if x.dtype == object else x.astype("float32")
            probs = np.concatenate([loaded.serve(tf.constant(xs[i:i + 64])).numpy() for i in range(0, len(xs), 64)])
        else:
            calib = None
            if quantize == "int8":
                calib = lambda: ([np.asarray(x[i:i + 1]).astype("float32")] for i in range(len(x)))  # noqa: E731
            content = tflite_bytes(saved, quantize, calib)
            target = out_dir / f"model{'-' + quantize if quantize else ''}.tflite"
            runs.atomic_write(target, content)
            shutil.rmtree(saved)
            probs = run_tflite(content, x)
    seconds = time.perf_counter() - start
    same = (probs.argmax(1) == reference.argmax(1)) if not cfg.data.multi_label else \
        ((probs >= 0.5) == (reference >= 0.5)).all(axis=1)
    size = sum(f.stat().st_size for f in ([target] if target.is_file() else target.rglob("*")) if f.is_file())
    record = {"format": fmt, "quantize": quantize, "path": str(target), "bytes": int(size),
              "seconds": round(seconds, 2), "sample": int(len(x)), "agreement": round(float(same.mean()), 4),
              "max_abs_difference": float(np.abs(probs - reference).max())}
    if not cfg.data.multi_label:
        record["keras_accuracy_on_sample"] = round(float((reference.argmax(1) == y).mean()), 4)
        record["export_accuracy_on_sample"] = round(float((probs.argmax(1) == y).mean()), 4)
    if record["agreement"] < 0.99:
        api.log(f"Warning: the export agrees with the Keras model on only {100 * record['agreement']:.1f} % of "
                f"{len(x)} examples" + (" (quantization)" if quantize else ""))
    log_path = out_dir / "export.json"
    previous = json.loads(log_path.read_text()) if log_path.exists() else []
    runs.write_json(log_path, previous + [record])
    return record
