"""`cnnkit export RUN_DIR --format keras|savedmodel|tflite|onnx [--quantize dynamic|float16|int8]`.

What each format takes:
- keras, savedmodel: the raw input, as the run's model.keras (images of any size as float
  0-255, strings, float waveforms). The SavedModel has a second signature for image runs,
  `serve_bytes`, that takes encoded image files (JPEG, PNG, BMP, GIF) as strings, as
  TensorFlow Serving clients send them.
- tflite, onnx: image runs take float images (batch, h, w, c) at the run's image size (values
  0-255; the antialiased resize has no TFLite kernel, so resizing stays with the caller); text
  runs take token ids (batch, sequence_length) int64, with `vocabulary.txt`, `tokenizer.json` and
  `tokenizer.py` beside the model: its `tokenize` does what the model's TextVectorization did
  (string ops have no TFLite builtins nor ONNX ops), and with subwords a second input,
  `unknown_subword_ids` (batch, sequence_length, MAX_WORD_GRAMS) int64: the hashed n-grams of the
  words outside the vocabulary, which its `unknown_subword_ids` computes as the run's
  `unknown_subwords` layer does. tokenizer.py is `cnnkit.features.plain_tokenizer` copied (Python
  and NumPy only: it serves where TensorFlow is not installed);
  speech runs take float waveforms in
  TFLite and ONNX (whose STFT is a convolution: tf2onnx 1.17 turns the FFT into a contrib op
  that onnxruntime rejects).

Every export is checked before it is reported: the exported model runs on a sample of the run's
own data (its test split, else validation, else train), from the raw inputs through whatever
the caller must do (tokenizing, encoding images), and its predictions are compared with the
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
from cnnkit.blocks.ngrams import MAX_WORD_GRAMS, SUBWORD_LONGEST, SUBWORD_SIZES
from cnnkit.errors import CnnkitError
from cnnkit.features.text import unknown_words_layer

FORMATS = ("keras", "savedmodel", "tflite", "onnx")
QUANTIZE = ("dynamic", "float16", "int8")
SAMPLE = 256  # examples used for int8 calibration and the agreement check
# Measured with TensorFlow 2.21 / tf2onnx 1.17 / onnxruntime 1.32: what keeps a task from a format.
UNSUPPORTED: dict = {}  # (format, task) -> why; none today
# The layer whose output a token-id or fixed-size export starts from.
CORE_INPUT = {"image-cls": "resize", "text-cls": "vectorize"}


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


def by_input_name(names: list[str], feed: dict) -> list:
    """The arrays of `feed` ({core input name: array}) in the order of a runtime's input `names`
    (TFLite's are the signature's, "serving_default_token_ids:0"; ONNX's the Keras inputs')."""
    picked = []
    for name in names:
        match = [key for key in feed if key in name]
        if len(match) != 1:
            raise CnnkitError(f"The exported model's input {name!r} matches none or several of {list(feed)}.")
        picked.append(feed[match[0]])
    return picked


def run_tflite(content: bytes, feed: dict, batch: int = 32) -> np.ndarray:
    """Runs a TFLite model on `feed` ({input name: array (N, ...)}), `batch` at a time -> outputs (N, classes)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow's own interpreter (deprecated, still there in 2.21)
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interp = Interpreter(model_content=content)
    inputs, out = interp.get_input_details(), interp.get_output_details()[0]
    arrays = by_input_name([inp["name"] for inp in inputs], feed)
    results = []
    for i in range(0, len(arrays[0]), batch):
        chunks = [np.asarray(x[i:i + batch]) for x in arrays]
        chunks = [c.astype(inp["dtype"]) if inp["dtype"] != np.object_ else c.astype(bytes) for inp, c in zip(inputs, chunks)]
        for inp, chunk in zip(inputs, chunks):
            interp.resize_tensor_input(inp["index"], list(chunk.shape))
        interp.allocate_tensors()
        for inp, chunk in zip(inputs, chunks):
            interp.set_tensor(inp["index"], chunk)
        interp.invoke()
        results.append(interp.get_tensor(out["index"]).copy())
    return np.concatenate(results)


def core_model(model, cfg):
    """The part of the end-to-end model that TFLite and ONNX can run: image runs from the
    resized float image (batch, h, w, c), text runs from token ids (batch, sequence_length) and,
    with subwords, the n-gram ids of the words outside the vocabulary (batch, sequence_length,
    MAX_WORD_GRAMS); speech runs whole. Called with training=False (see the SavedModel note in `export`)."""
    import keras

    name = CORE_INPUT.get(cfg.task)
    if not name:
        return without_training(model, ["waveform"])
    starts = [model.get_layer(name).output]
    unknown = unknown_words_layer(model) if cfg.task == "text-cls" else None
    if unknown is not None:  # string work too: computed beside the tokenizer (core_inputs)
        starts.append(unknown.output)
    graph = keras.Model(starts if len(starts) > 1 else starts[0], model.output)
    return without_training(graph, list(CORE_INPUT_NAMES[cfg.task][:len(starts)]))


# The names of the inputs of a TFLite or ONNX export (`core_model`), in order.
CORE_INPUT_NAMES = {"image-cls": ("image",), "text-cls": ("token_ids", "unknown_subword_ids"), "speech-cls": ("waveform",)}


def without_training(graph, input_names: list[str]):
    """`graph` wrapped so that it is always called with training=False, its inputs named `input_names`."""
    import keras

    inputs = [keras.Input(t.shape[1:], dtype=t.dtype, name=name) for t, name in zip(graph.inputs, input_names)]
    one = inputs if len(inputs) > 1 else inputs[0]
    return keras.Model(one, graph(one, training=False), name=graph.name)


def core_inputs(x, cfg, model, out_dir: Path | None = None) -> dict:
    """What `core_model` takes for raw inputs `x`, {input name: array}: float images, token ids
    from the Python tokenizer (writing vocabulary.txt and tokenizer.json into `out_dir`) and with
    subwords their unknown words' n-gram ids, or float waveforms."""
    if cfg.task == "text-cls":
        from cnnkit.features import plain_tokenizer
        from cnnkit.features.text import END, START, tokenize, unknown_subword_ids, vectorizer_standardize

        p = cfg.preprocess
        if p.ngrams:
            raise CnnkitError("A token-id export reproduces word or character tokens; this run also uses n-grams "
                              "(preprocess.ngrams). Export it as savedmodel or keras.")
        vocab = model.get_layer("vectorize").get_vocabulary()
        standardize = vectorizer_standardize(model.get_layer("vectorize"))
        cased, unicode = list(standardize.cased), standardize.unicode  # truecasing's words, else []
        unknown = unknown_words_layer(model)
        if out_dir is not None:
            runs.atomic_write(out_dir / "vocabulary.txt", "\n".join(vocab) + "\n")
            spec = {"vocabulary": "vocabulary.txt", "sequence_length": p.sequence_length, "standardize": p.standardize,
                    "split": p.split, "boundaries": p.boundaries, "start_token": START, "end_token": END,
                    "padding_id": 0, "out_of_vocabulary_id": 1, "cased_words": cased, "unicode": unicode,
                    "python": "tokenizer.py beside this file (Python 3 and NumPy, no TensorFlow; also "
                              "cnnkit.features.text): tokenize(texts, vocabulary, sequence_length, standardize, "
                              "split, boundaries, cased_words, unicode)"}
            if unknown is not None:
                spec["unknown_subword_ids"] = UNKNOWN_SUBWORDS_SPEC | {"buckets": unknown.buckets}
            runs.write_json(out_dir / "tokenizer.json", spec)
            # The module the check below runs, copied: a server without TensorFlow imports it.
            runs.atomic_write(out_dir / "tokenizer.py", Path(plain_tokenizer.__file__).read_text(encoding="utf-8"))
        texts = [str(t) for t in x]
        ids = tokenize(texts, vocab, p.sequence_length, p.standardize, p.split, p.boundaries, cased, unicode)
        if unknown is None:
            return {"token_ids": ids}
        # In plain Python, as a caller without TensorFlow would: the check below then covers it.
        grams = unknown_subword_ids(texts, vocab, p.sequence_length, unknown.buckets, p.standardize, p.boundaries, cased,
                                    unicode)
        return {"token_ids": ids, "unknown_subword_ids": grams}
    return {CORE_INPUT_NAMES[cfg.task][0]: np.asarray(x).astype("float32")}


# tokenizer.json's description of the second input of a text run with subwords.
UNKNOWN_SUBWORDS_SPEC = {
    "shape": f"(batch, sequence_length, {MAX_WORD_GRAMS}) int64",
    "what": f"for each token whose id is 1 (out of vocabulary): its character n-grams of sizes {list(SUBWORD_SIZES)} "
            f"(the word cut to {SUBWORD_LONGEST} characters, wrapped in < and >), each "
            "tf.strings.to_hash_bucket_fast(n-gram, buckets) + 1, i.e. FarmHash Fingerprint64 of the n-gram's "
            "UTF-8 bytes modulo buckets, plus 1; 0-padded; zeros at every other step",
    "python": "tokenizer.py beside this file: unknown_subword_ids(texts, vocabulary, sequence_length, buckets, "
              "standardize, boundaries, cased_words, unicode)"}


def write_savedmodel(model, cfg, path: Path) -> None:
    """A SavedModel with the signature `serve` (the raw input) and, for image runs,
    `serve_bytes` (encoded image files as strings -> probabilities)."""
    import keras
    import tensorflow as tf

    from cnnkit.datasets.image import decode_image_bytes

    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.string if model.input.dtype == "string" else tf.float32)
    # Traced with training=None, a reloaded image model ran its batch norm in training mode
    # (batch statistics, moving averages updated by every serving call): fix it to False.
    archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=[spec])
    if cfg.task == "image-cls":
        p = cfg.preprocess
        size = tuple(p.image_size)

        def serve_bytes(data):
            images = tf.map_fn(lambda b: tf.cast(decode_image_bytes(b, p.channels, size), tf.float32), data,
                               fn_output_signature=tf.TensorSpec((*size, p.channels), tf.float32))
            return model(images, training=False)

        archive.add_endpoint("serve_bytes", serve_bytes, input_signature=[tf.TensorSpec((None,), tf.string)])
    archive.write_out(str(path), verbose=False)


def run_savedmodel(path: Path, x, cfg) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities from `serve`, from `serve_bytes` of the images PNG-encoded, or None)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept referenced: its functions use its variables
    xs = x if x.dtype == object else x.astype("float32")
    probs = np.concatenate([loaded.serve(tf.constant(xs[i:i + 64])).numpy() for i in range(0, len(xs), 64)])
    from_bytes = None
    if cfg.task == "image-cls":
        encoded = [tf.io.encode_png(np.asarray(img, dtype="uint8")).numpy() for img in x]
        from_bytes = np.concatenate([loaded.serve_bytes(tf.constant(encoded[i:i + 64])).numpy()
                                     for i in range(0, len(encoded), 64)])
    return probs, from_bytes


def write_onnx(core, path: Path, sample: np.ndarray) -> None:
    """`core` as ONNX through tf2onnx. Two layers are swapped for equivalents first: adapted
    Normalization layers for the same affine map as a Rescaling (tf2onnx turns their statistics
    into missing graph inputs), and the log-mel layer for its convolution STFT (tf2onnx turns
    the FFT into a contrib op that onnxruntime rejects). The model is called on `sample` first
    (Keras exports only a model that has been called)."""
    import keras

    from cnnkit.features.audio import LogMelSpectrogram

    def constants(layer):
        if isinstance(layer, LogMelSpectrogram):
            return LogMelSpectrogram.from_config({**layer.get_config(), "stft": "conv"})
        if isinstance(layer, keras.layers.Normalization):
            mean = keras.ops.convert_to_numpy(layer.mean)
            scale = 1.0 / np.sqrt(np.maximum(keras.ops.convert_to_numpy(layer.variance), keras.backend.epsilon()))
            return keras.layers.Rescaling(scale=scale.astype("float32"), offset=(-mean * scale).astype("float32"),
                                          name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        raise CnnkitError("--format onnx needs tf2onnx and onnxruntime: pip install 'cnnkit[export]'.") from None
    graph = core.layers[-1]  # the end-to-end graph inside the training=False wrapper
    clone = keras.models.clone_model(graph, clone_function=constants)
    for a, b in zip(graph.layers, clone.layers):
        if a.weights and not isinstance(a, keras.layers.Normalization):
            b.set_weights(a.get_weights())
    flat = without_training(clone, [t.name for t in core.inputs])
    flat([sample[t.name][:2] for t in core.inputs] if len(core.inputs) > 1 else sample[core.inputs[0].name][:2])
    flat.export(str(path), format="onnx", verbose=False)


def run_onnx(path: Path, feed: dict, batch: int = 64) -> np.ndarray:
    """Runs an ONNX model on `feed` ({input name: array (N, ...)}), `batch` at a time -> outputs (N, classes)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [inp.name for inp in session.get_inputs()]
    arrays = by_input_name(names, feed)
    return np.concatenate([session.run(None, {name: x[i:i + batch] for name, x in zip(names, arrays)})[0]
                           for i in range(0, len(arrays[0]), batch)])


def core_input_description(cfg, model) -> str:
    """What a TFLite or ONNX export of this run takes, in words (for export.json)."""
    p = cfg.preprocess
    if cfg.task == "image-cls":
        return f"float32 images (batch, {p.image_size[0]}, {p.image_size[1]}, {p.channels}), values 0-255"
    if cfg.task == "text-cls":
        words = f"int64 token ids (batch, {p.sequence_length}) from tokenizer.json"
        if unknown_words_layer(model) is not None:
            words += (f" and int64 unknown_subword_ids (batch, {p.sequence_length}, {MAX_WORD_GRAMS}): the n-grams of "
                      f"the words outside the vocabulary (tokenizer.json)")
        return words
    return f"float32 waveforms (batch, samples) at {p.sample_rate} Hz"


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
    if (fmt, cfg.task) in UNSUPPORTED:
        raise CnnkitError(f"--format {fmt} does not support {cfg.task} runs yet: {UNSUPPORTED[fmt, cfg.task]} "
                          f"Use --format savedmodel, tflite or keras.")
    model = runs.load_model(run_path)
    out_dir = Path(out) if out else run_path / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    x, y = sample_data(cfg, task_obj)
    reference = api.predict_probs(model, task_obj, x, cfg)
    start = time.perf_counter()
    extra = {}
    if fmt == "keras":
        target = out_dir / "model.keras"
        shutil.copyfile(run_path / "model.keras", target)
        probs = api.predict_probs(runs.load_keras_file(target, compile=True), task_obj, x, cfg)
    elif fmt == "savedmodel":
        target = out_dir / "savedmodel"
        if target.exists():
            shutil.rmtree(target)
        write_savedmodel(model, cfg, target)
        probs, from_bytes = run_savedmodel(target, x, cfg)
        if from_bytes is not None:
            extra["serve_bytes_agreement"] = round(float((from_bytes.argmax(1) == reference.argmax(1)).mean()), 4)
    else:
        core = core_model(model, cfg)
        feed = core_inputs(x, cfg, model, out_dir)
        if fmt == "onnx":
            target = out_dir / "model.onnx"
            write_onnx(core, target, feed)
            probs = run_onnx(target, feed)
        else:
            saved = out_dir / "savedmodel-core"
            if saved.exists():
                shutil.rmtree(saved)
            core.export(str(saved), verbose=False)
            calib = None
            if quantize == "int8":
                calib = lambda: ([x[i:i + 1] for x in feed.values()] for i in range(len(next(iter(feed.values())))))  # noqa: E731
            content = tflite_bytes(saved, quantize, calib)
            target = out_dir / f"model{'-' + quantize if quantize else ''}.tflite"
            runs.atomic_write(target, content)
            shutil.rmtree(saved)
            probs = run_tflite(content, feed)
        extra["input"] = core_input_description(cfg, model)
    seconds = time.perf_counter() - start
    same = (probs.argmax(1) == reference.argmax(1)) if not cfg.data.multi_label else \
        ((probs >= 0.5) == (reference >= 0.5)).all(axis=1)
    size = sum(f.stat().st_size for f in ([target] if target.is_file() else target.rglob("*")) if f.is_file())
    record = {"format": fmt, "quantize": quantize, "path": str(target), "bytes": int(size),
              "seconds": round(seconds, 2), "sample": int(len(x)), "agreement": round(float(same.mean()), 4),
              "max_abs_difference": float(np.abs(probs - reference).max()), **extra}
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
