"""The command line: sub-commands exist, user errors are one line with exit code 2."""
import json
import os
import sys

import pytest

from cnnkit import cli


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("tasks", "train", "evaluate", "predict", "summary", "backbones"):
        assert command in out


def test_python_dash_m_runs_the_command(tmp_path):
    """`python -m cnnkit` is the `cnnkit` command, exit codes included."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell (conftest sets it)
    ok = subprocess.run([sys.executable, "-m", "cnnkit", "tasks"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert ok.returncode == 0 and "text-cls" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "cnnkit", "predict", str(tmp_path / "nope"), "x.jpg"],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: "), bad.stderr


def test_tasks_and_backbones(capsys):
    assert cli.main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "image-cls" in out and "cifar10" in out
    assert cli.main(["backbones"]) == 0
    assert "resnet20" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["train", "image-cls", "--data", "/no/such/folder"], "error: Data source /no/such/folder does not exist"),
    (["train", "image-cls", "--set", "train.lr=fast"], "error: train.lr must be a number"),
    (["predict", "/no/run", "x.png"], "error: /no/run is not a cnnkit run directory"),
])
def test_user_errors_are_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message) and "Traceback" not in "\n".join(err)


def test_train_evaluate_predict(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "image-cls", "--epochs", "1", "--backbone", "lenet5", "--image-size", "28",
                     "--out", str(out), "--set", "train.verbose=0"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert metrics["backbone"] == "lenet5" and "test_accuracy" in metrics
    assert "Data builtin:digits (the task's embedded sample, used when --data is not given)" in captured.err
    assert cli.main(["evaluate", str(out), "--data", "builtin:digits", "--json"]) == 0
    assert "macro-F1" in capsys.readouterr().out


def test_predict_many_texts_shows_progress_on_stderr_and_keeps_json_clean(tmp_path, capsys, monkeypatch):
    import io

    out = tmp_path / "run"
    assert cli.main(["train", "text-cls", "--epochs", "1", "--out", str(out), "--set", "train.verbose=0",
                     "--set", "data.limit=300"]) == 0
    capsys.readouterr()
    lines = [f"sentence number {i} is a fine one" for i in range(700)]  # more than ten batches of 64
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert cli.main(["predict", str(out), "-", "--json", "--top-k", "1"]) == 0
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert len(results) == 700 and results[0]["input"] == lines[0]
    assert "11/11" in captured.err  # the Keras progress bar, 11 batches


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`cnnkit predict RUN test.csv | head -2`: the pipe closes before the output ends. Before,
    "error: BrokenPipeError: [Errno 32] Broken pipe" (status 1), or Python's "Exception ignored"
    at exit for a short output."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell (conftest sets it)
    process = subprocess.Popen([sys.executable, "-m", "cnnkit", "backbones"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    process.stdout.close()  # the reader is gone before the first line
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0
    assert err == ""


def test_predictions_as_csv():
    """`cnnkit predict ... --csv > predictions.csv`: a row an input, the top k as label/probability
    column pairs; multi-label runs add their label set, --sliding runs the words heard."""
    import csv
    import io

    top = [{"label": "pos", "probability": 0.91234}, {"label": "neg", "probability": 0.08766}]
    out = io.StringIO()
    cli.write_predictions_csv([{"input": "a.txt", "predictions": top}, {"input": "b, c.txt", "predictions": top[::-1]}],
                              out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [["input", "label_1", "probability_1", "label_2", "probability_2"],
                    ["a.txt", "pos", "0.9123", "neg", "0.0877"], ["b, c.txt", "neg", "0.0877", "pos", "0.9123"]]
    out = io.StringIO()
    cli.write_predictions_csv([{"input": "t", "labels": ["a", "b"], "predictions": top[:1]}], out)
    assert out.getvalue().splitlines() == ["input,labels,label_1,probability_1", "t,a|b,pos,0.9123"]
    out = io.StringIO()
    cli.write_predictions_csv([{"input": "rec.wav", "windows": [], "words": [{"label": "one"}, {"label": "two"}]}], out)
    assert out.getvalue().splitlines() == ["input,words", "rec.wav,one two"]
    with pytest.raises(SystemExit):  # one output format at a time
        cli.build_parser().parse_args(["predict", "run", "x", "--json", "--csv"])
