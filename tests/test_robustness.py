"""Bad inputs not covered next to their modules: each either works or stops with one line naming
the file and the fix (docs/RELIABILITY.md lists them all)."""
import numpy as np
import pytest
import soundfile as sf

from cnnkit import api, cli
from cnnkit.datasets import image
from cnnkit.errors import CnnkitError
from tests.conftest import write_image


def test_cmyk_and_truncated_jpeg(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    full = write_image(tmp_path / "full.jpg", rgb).read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(full[: len(full) // 2])
    paths = [str(tmp_path / "cmyk.jpg"), str(tmp_path / "truncated.jpg")]
    x, kept, skipped = image.read_image_files(paths, 3, (20, 25))
    assert 0 in kept.tolist() and x.shape[1:] == (20, 25, 3)
    # CMYK is converted to RGB: close to the original colours, not inverted
    assert abs(float(x[0].mean()) - float(np.asarray(Image.fromarray(rgb).resize((25, 20))).mean())) < 20
    # a truncated JPEG is either decoded (TensorFlow fills the missing rows) or skipped with its reason
    assert len(kept) + len(skipped) == 2


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    return api.train("text-cls", out=str(tmp_path_factory.mktemp("runs") / "text"), epochs=1, limit=300, verbose=0)


def test_images_or_audio_given_to_a_text_run_stop_with_one_line(text_run, tmp_path, capsys):
    png = write_image(tmp_path / "cat.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(CnnkitError, match="cat.png is input for image-cls.*text-cls run"):
        api.predict(str(text_run.run_dir), [str(png)])
    wav = tmp_path / "word.wav"
    sf.write(str(wav), np.zeros(800, "float32"), 8000)
    assert cli.main(["predict", str(text_run.run_dir), str(wav)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "word.wav is input for speech-cls" in err[0]


def test_very_long_document_is_cut_and_predicted(text_run, tmp_path):
    doc = tmp_path / "long.txt"
    doc.write_text("a wonderful film . " * 200_000)  # 3.8 MB
    out = api.predict(str(text_run.run_dir), [str(doc)])
    assert out[0]["input"] == str(doc) and len(out[0]["predictions"]) == 2


def test_silent_very_short_and_very_long_clips_train(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "words"
    for label, freq in (("yes", 300), ("no", 1200)):
        (root / label).mkdir(parents=True)
        for i in range(6):
            t = np.arange(4000) / 8000
            sf.write(str(root / label / f"{i}.wav"), (0.3 * np.sin(2 * np.pi * freq * t)).astype("float32"), 8000)
    sf.write(str(root / "yes" / "silent.wav"), np.zeros(4000, "float32"), 8000)
    sf.write(str(root / "no" / "short.wav"), rng.standard_normal(10).astype("float32") * 0.1, 8000)
    sf.write(str(root / "no" / "long.flac"), rng.standard_normal(8000 * 60).astype("float32") * 0.1, 8000)
    result = api.train("speech-cls", str(root), out=str(tmp_path / "run"), epochs=1, verbose=0, batch_size=4)
    assert result.metrics["skipped_inputs"] == 0 and result.metrics["num_train"] >= 12
    # the clip length comes from the 95th percentile and is capped at 10 s: no minute-long clips
    assert 0.5 <= result.config.preprocess.clip_seconds <= 10.0


def test_a_folder_of_images_given_to_a_text_run(text_run, image_folder, capsys):
    assert cli.main(["evaluate", str(text_run.run_dir), "--data", str(image_folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no .txt files" in err[0] and ".png files: is this data for another task?" in err[0]
