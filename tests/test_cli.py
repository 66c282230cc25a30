"""The command line: sub-commands exist, user errors are one line with exit code 2."""
import json

import pytest

from cnnkit import cli


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("tasks", "train", "evaluate", "predict", "summary", "backbones"):
        assert command in out


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
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["backbone"] == "lenet5" and "test_accuracy" in metrics
    assert cli.main(["evaluate", str(out), "--data", "builtin:digits", "--json"]) == 0
    assert "macro-F1" in capsys.readouterr().out
