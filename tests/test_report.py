"""report.html: written by every run, again by `cnnkit report`; offline (no scripts, no URLs)."""
import re

import pytest

import cnnkit
from cnnkit.cli import main as cli_main
from cnnkit.errors import CnnkitError


def test_every_run_writes_an_offline_report(tmp_path):
    result = cnnkit.train("image-cls", out=str(tmp_path / "run"), epochs=2, limit=300, verbose=0)
    page = (result.run_dir / "report.html").read_text()
    for section in ("Summary", "Training curves", "Test set, per class", "Confusion matrix", "Timings", "Model", "Config"):
        assert f"<h2>{section}" in page, section
    assert (result.run_dir / "report-curves.png").stat().st_size > 1000
    for src in re.findall(r'(?:src|href)="([^"]+)"', page):  # every picture and link is a file of the run
        assert (result.run_dir / src).exists(), src
    assert "<script" not in page and "http" not in page.split("<h2>Config")[0]
    assert f"{result.metrics['test_accuracy']:.4f}" in page
    (result.run_dir / "report.html").unlink()
    assert cli_main(["report", str(result.run_dir)]) == 0
    assert (result.run_dir / "report.html").exists()


def test_cross_validation_report_lists_the_folds(tmp_path):
    result = cnnkit.train("text-cls", out=str(tmp_path / "cv"), epochs=1, cv=2, limit=400, verbose=0)
    page = (result.run_dir / "report.html").read_text()
    assert "Cross-validation folds" in page and (result.run_dir / "fold-01" / "report.html").exists()


def test_report_of_an_unfinished_run_says_how_to_finish_it(tmp_path):
    (tmp_path / "config.yaml").write_text("task: image-cls\n")
    with pytest.raises(CnnkitError, match="--resume"):
        from cnnkit import report

        report.write_report(tmp_path)


def test_a_run_without_a_test_split_says_its_figures_are_on_validation(tmp_path, capsys):
    """A CSV of one split: the run's figures are on the validation split that chose the epoch;
    metrics.json, the run's last lines and the report say so instead of calling them a test."""
    rows = ["text,label"] + [f"{'a fine warm film' if i % 2 else 'a dull cold film'} {i},{'pos' if i % 2 else 'neg'}"
                             for i in range(60)]
    (tmp_path / "one.csv").write_text("\n".join(rows) + "\n")
    result = cnnkit.train("text-cls", str(tmp_path / "one.csv"), out=str(tmp_path / "run"), epochs=1, verbose=0)
    assert result.metrics["evaluated_on"] == "val" and "test_accuracy" not in result.metrics
    assert "No test split: val_accuracy" in capsys.readouterr().err
    page = (result.run_dir / "report.html").read_text()
    assert "<h2>Validation set, per class</h2>" in page and "Test set, per class" not in page
    held = cnnkit.train("text-cls", str(tmp_path / "one.csv"), out=str(tmp_path / "held"), epochs=1, verbose=0,
                        sets=["data.test_split=0.2"])
    assert held.metrics["evaluated_on"] == "test" and "No test split" not in capsys.readouterr().err
