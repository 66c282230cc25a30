"""cnnkit export: every format is run and compared with the Keras model on a sample of the run's data."""
import json
from pathlib import Path

import numpy as np
import pytest

from cnnkit import api, cli
from cnnkit.errors import CnnkitError
from cnnkit.export import core_inputs, export, run_onnx, run_tflite


@pytest.fixture(scope="module")
def runs_by_task(tmp_path_factory):
    root = tmp_path_factory.mktemp("export-runs")
    return {
        "image-cls": api.train("image-cls", out=str(root / "image"), epochs=1, limit=300, backbone="resnet8", verbose=0),
        "text-cls": api.train("text-cls", out=str(root / "text"), epochs=1, limit=300, verbose=0),
        # subwords and lazy Adam: the n-gram layer (tf.unique, gathers, segment sums) must export
        "text-subwords": api.train("text-cls", out=str(root / "text-subwords"), epochs=1, limit=300, verbose=0,
                                   sets=["preprocess.subwords=2000", "train.sparse_updates=true"]),
        "speech-cls": api.train("speech-cls", out=str(root / "speech"), epochs=1, verbose=0),
    }


@pytest.mark.parametrize("task,fmt", [
    ("image-cls", "keras"), ("text-cls", "keras"), ("speech-cls", "keras"),
    ("image-cls", "savedmodel"), ("text-cls", "savedmodel"), ("speech-cls", "savedmodel"),
])
def test_keras_and_savedmodel_agree_with_the_model(runs_by_task, task, fmt, tmp_path):
    record = export(str(runs_by_task[task].run_dir), fmt, out=str(tmp_path / "export"))
    # one-epoch models have near-ties, so compare probabilities, not only the top class
    assert record["max_abs_difference"] < 5e-3 and record["sample"] > 0
    assert json.loads((tmp_path / "export" / "export.json").read_text())[-1] == record
    if fmt == "savedmodel":  # serving twice gives the same answer (no state changes between calls)
        import numpy as np
        import tensorflow as tf

        from cnnkit.export import sample_data
        from cnnkit import tasks
        from cnnkit.api import config_from_run
        from cnnkit.runs import read_run

        _, cfg_dict, _ = read_run(runs_by_task[task].run_dir)
        cfg = config_from_run(cfg_dict)
        x, _ = sample_data(cfg, tasks.get(task), n=16)
        x = tf.constant(x if x.dtype == object else x.astype("float32"))
        loaded = tf.saved_model.load(record["path"])
        np.testing.assert_array_equal(loaded.serve(x).numpy(), loaded.serve(x).numpy())


def test_tflite_speech_agrees_and_quantized_is_reported(runs_by_task, tmp_path):
    run = str(runs_by_task["speech-cls"].run_dir)
    record = export(run, "tflite", out=str(tmp_path / "export"))
    assert record["agreement"] >= 0.99 and record["path"].endswith("model.tflite")
    quantized = export(run, "tflite", "float16", out=str(tmp_path / "export"))
    assert quantized["path"].endswith("model-float16.tflite") and 0.0 <= quantized["agreement"] <= 1.0
    assert quantized["bytes"] < record["bytes"]


@pytest.mark.parametrize("task,fmt", [("image-cls", "tflite"), ("text-cls", "tflite"), ("image-cls", "onnx"),
                                      ("text-cls", "onnx"), ("speech-cls", "onnx"),
                                      ("text-subwords", "tflite"), ("text-subwords", "onnx")])
def test_token_id_and_fixed_size_exports_agree_end_to_end(runs_by_task, task, fmt, tmp_path):
    """TFLite and ONNX of image runs (fixed-size float images) and text runs (token ids from the
    Python tokenizer): the whole path from raw input agrees with the Keras model."""
    record = export(str(runs_by_task[task].run_dir), fmt, out=str(tmp_path / "export"))
    assert record["agreement"] >= 0.99 and record["max_abs_difference"] < 1e-3, record
    assert record["path"].endswith("model.tflite" if fmt == "tflite" else "model.onnx")
    assert record["input"].startswith({"image-cls": "float32 images", "text-cls": "int64 token ids",
                                       "text-subwords": "int64 token ids", "speech-cls": "float32 waveforms"}[task])
    if task.startswith("text"):
        spec = json.loads((tmp_path / "export" / "tokenizer.json").read_text())
        vocab = (tmp_path / "export" / "vocabulary.txt").read_text().split("\n")[:-1]
        assert spec["sequence_length"] == runs_by_task[task].config.preprocess.sequence_length
        assert vocab == runs_by_task[task].model.get_layer("vectorize").get_vocabulary()
        # One text at a time, one of known words only: a batch without unknown words failed in
        # onnxruntime (the subwords' scatter of no rows).
        model, cfg = runs_by_task[task].model, runs_by_task[task].config
        for text in [" ".join(vocab[4:8]), "zzqx " + " ".join(vocab[4:6])]:
            feed = core_inputs(np.array([text], dtype=object), cfg, model)
            if "unknown_subword_ids" in feed:
                assert (feed["unknown_subword_ids"].any(-1).sum() > 0) == text.startswith("zzqx")
            got = run_onnx(record["path"], feed) if fmt == "onnx" else run_tflite(Path(record["path"]).read_bytes(), feed)
            np.testing.assert_allclose(got, model.predict(np.array([text], dtype=object), verbose=0), atol=1e-4)


SERVE_WITHOUT_TENSORFLOW = """
import json, sys
import numpy as np
for name in ("tensorflow", "keras", "cnnkit"):  # importing any of them fails from here on
    sys.modules[name] = None
export_dir, texts = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, export_dir)
import tokenizer  # the export's tokenizer.py
from ai_edge_litert.interpreter import Interpreter

spec = json.load(open(export_dir + "/tokenizer.json"))
vocab = open(export_dir + "/vocabulary.txt", encoding="utf-8").read().split("\\n")[:-1]
args = (spec["sequence_length"], spec["standardize"])
ids = tokenizer.tokenize(texts, vocab, *args, spec["split"], spec["boundaries"], spec["cased_words"], spec["unicode"])
feed = {"token_ids": ids}
if "unknown_subword_ids" in spec:
    feed["unknown_subword_ids"] = tokenizer.unknown_subword_ids(texts, vocab, spec["sequence_length"],
        spec["unknown_subword_ids"]["buckets"], spec["standardize"], spec["boundaries"], spec["cased_words"],
        spec["unicode"])
interp = Interpreter(model_path=export_dir + "/model.tflite")
inputs = interp.get_input_details()
for inp in inputs:
    interp.resize_tensor_input(inp["index"], list(feed[next(k for k in feed if k in inp["name"])].shape))
interp.allocate_tensors()
for inp in inputs:
    interp.set_tensor(inp["index"], feed[next(k for k in feed if k in inp["name"])].astype(inp["dtype"]))
interp.invoke()
print(json.dumps({"probs": interp.get_tensor(interp.get_output_details()[0]["index"]).tolist(),
                  "unknown": int((ids == 1).sum()), "modules": sorted(m for m, module in sys.modules.items()
                                     if module is not None and m.split(".")[0] in ("tensorflow", "keras", "cnnkit"))}))
"""


def test_a_text_export_serves_from_raw_strings_without_tensorflow(runs_by_task, tmp_path):
    """tokenizer.py beside a text run's TFLite export, with the TFLite runtime and NumPy alone (TensorFlow,
    Keras and cnnkit made unimportable): from raw strings, words outside the vocabulary among them, to
    the Keras model's probabilities."""
    import subprocess
    import sys

    import numpy as np

    run = runs_by_task["text-cls"]
    export(str(run.run_dir), "tflite", out=str(tmp_path / "export"))
    assert (tmp_path / "export" / "tokenizer.py").is_file()
    assert "unknown_subword_ids" in json.loads((tmp_path / "export" / "tokenizer.json").read_text())
    texts = ["a superbly zorblaxian film", "Dull, dull, DULL!", "😀 日本語 " + "x" * 300, "", "the plot",
             "“Dull…”\u00a0isn’t — ÉPIC\x85film"]
    assert json.loads((tmp_path / "export" / "tokenizer.json").read_text())["unicode"] is True
    proc = subprocess.run([sys.executable, "-c", SERVE_WITHOUT_TENSORFLOW, str(tmp_path / "export"), json.dumps(texts)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    assert served["unknown"] >= 3 and served["modules"] == []
    np.testing.assert_allclose(served["probs"], run.model.predict(np.array(texts, dtype=object), verbose=0), atol=1e-5)


def test_int8_tflite_of_an_image_run_reports_its_accuracy_change(runs_by_task, tmp_path):
    record = export(str(runs_by_task["image-cls"].run_dir), "tflite", "int8", out=str(tmp_path / "export"))
    assert record["path"].endswith("model-int8.tflite")
    assert 0.0 <= record["export_accuracy_on_sample"] <= 1.0 and "keras_accuracy_on_sample" in record


def test_savedmodel_of_an_image_run_serves_encoded_files(runs_by_task, tmp_path):
    import numpy as np
    import tensorflow as tf

    from tests.conftest import write_image

    record = export(str(runs_by_task["image-cls"].run_dir), "savedmodel", out=str(tmp_path / "export"))
    assert record["serve_bytes_agreement"] >= 0.99
    rng = np.random.default_rng(0)
    files = [write_image(tmp_path / "a.png", rng.integers(0, 255, (20, 14, 3), dtype=np.uint8)),
             write_image(tmp_path / "b.jpg", rng.integers(0, 255, (8, 8), dtype=np.uint8))]
    loaded = tf.saved_model.load(record["path"])
    served = loaded.serve_bytes(tf.constant([f.read_bytes() for f in files])).numpy()
    expected = np.asarray([r["predictions"][0]["probability"] for r in api.predict(
        str(runs_by_task["image-cls"].run_dir), [str(f) for f in files], top_k=1)])
    np.testing.assert_allclose(served.max(axis=1), expected, atol=1e-4)


def test_bad_formats_and_flags_are_one_line_errors(runs_by_task, capsys):
    with pytest.raises(CnnkitError, match="--format must be one of"):
        export(str(runs_by_task["speech-cls"].run_dir), "coreml")
    with pytest.raises(CnnkitError, match="--quantize applies to --format tflite"):
        export(str(runs_by_task["speech-cls"].run_dir), "onnx", "int8")
    assert cli.main(["export", str(runs_by_task["speech-cls"].run_dir), "--format", "onnx", "--quantize", "int8"]) == 2
    assert "--quantize applies to --format tflite" in capsys.readouterr().err
