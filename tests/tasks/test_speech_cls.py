"""speech-cls: folders of audio in any format and rate, the end-to-end waveform model, predict --sliding."""
import json
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import soundfile as sf

from cnnkit import api, cli
from cnnkit.errors import CnnkitError


def tone_clip(freq: float, sample_rate: int, seconds: float, rng) -> np.ndarray:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    envelope = np.sin(np.pi * t / seconds)  # a word-like swell
    return (0.4 * envelope * np.sin(2 * np.pi * freq * t) + 0.005 * rng.standard_normal(t.size)).astype("float32")


@pytest.fixture
def tones(tmp_path) -> Path:
    """class folders "low" (300-500 Hz) and "high" (1.5-2.5 kHz): 24 clips each, of 0.3-0.6 s,
    at 8, 16 and 22.05 kHz, some stereo, as wav and flac."""
    rng = np.random.default_rng(0)
    root = tmp_path / "tones"
    for label, band in (("low", (300, 500)), ("high", (1500, 2500))):
        (root / label).mkdir(parents=True)
        for i in range(24):
            rate = (8000, 16000, 22050)[i % 3]
            wave = tone_clip(rng.uniform(*band), rate, rng.uniform(0.3, 0.6), rng)
            if i % 4 == 0:
                wave = np.stack([wave, wave * 0.5], axis=1)
            sf.write(str(root / label / f"{label}{i}.{'flac' if i % 5 == 0 else 'wav'}"), wave, rate)
    return root


def test_tones_learn_and_saved_model_takes_waveforms_of_any_length(tones, tmp_path):
    result = api.train("speech-cls", str(tones), out=str(tmp_path / "run"), epochs=10, batch_size=8, verbose=0, val_split=0.2,
                       test_split=0.0, sample_rate=8000)
    cfg = (result.run_dir / "config.yaml").read_text()
    assert "clip_seconds: 0.6" in cfg  # the 95th percentile of 0.3-0.6 s, rounded up
    assert result.metrics["val_accuracy"] >= 0.9
    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    rng = np.random.default_rng(5)
    for seconds in (0.2, 0.6, 1.7):  # shorter, equal and longer than the training clips
        batch = np.stack([tone_clip(400, 8000, seconds, rng), tone_clip(2000, 8000, seconds, rng)])
        probs = model.predict(batch, verbose=0)
        assert probs.shape == (2, 2)
        assert json.loads((result.run_dir / "labels.json").read_text()) == ["high", "low"]
        assert probs[0].argmax() == 1 and probs[1].argmax() == 0


def test_predict_files_and_sliding_over_a_long_recording(tones, tmp_path, capsys):
    result = api.train("speech-cls", str(tones), out=str(tmp_path / "run"), epochs=10, batch_size=8, verbose=0, val_split=0.2,
                       test_split=0.0, sample_rate=8000, clip_seconds=0.5)
    rng = np.random.default_rng(1)
    # 44.1 kHz stereo file: "low", silence, "high"
    silence = np.zeros(int(44100 * 0.6), "float32")
    long = np.concatenate([tone_clip(400, 44100, 0.5, rng), silence, tone_clip(2000, 44100, 0.5, rng), silence])
    path = tmp_path / "sentence.wav"
    sf.write(str(path), np.stack([long, long], axis=1), 44100)
    out = api.predict(str(result.run_dir), [str(path)], sliding=True, hop=0.25)[0]
    assert [w["label"] for w in out["words"]] == ["low", "high"]
    assert out["words"][0]["start"] < 0.3 < 1.0 < out["words"][1]["start"] < 1.4
    assert not all(w["speech"] for w in out["windows"])
    assert cli.main(["predict", str(result.run_dir), str(path), "--sliding", "--top-k", "1"]) == 0
    printed = capsys.readouterr().out
    assert "low high" in printed and "(quiet)" in printed
    clips = api.predict(str(result.run_dir), [str(tones / "low")], top_k=2)
    assert len(clips) == 24 and sum(c["predictions"][0]["label"] == "low" for c in clips) >= 20


def test_text_data_and_image_backbones_are_refused(tmp_path, tones):
    csv = tmp_path / "t.csv"
    csv.write_text("text,label\na,x\nb,y\nc,x\nd,y\n")
    with pytest.raises(CnnkitError, match="holds text, not audio"):
        api.train("speech-cls", str(csv), out=str(tmp_path / "r1"), epochs=1, verbose=0)
    with pytest.raises(CnnkitError, match="not spectrograms.*spectrogram_cnn"):
        api.train("speech-cls", str(tones), out=str(tmp_path / "r2"), epochs=1, verbose=0, backbone="resnet20")
    with pytest.raises(CnnkitError, match="--sliding is for speech runs"):
        run = api.train("text-cls", str(csv), out=str(tmp_path / "r3"), epochs=1, verbose=0, val_split=0, test_split=0)
        api.predict(str(run.run_dir), [str(csv)], sliding=True)


def test_mfcc_features_and_the_1d_backbone(tones, tmp_path):
    result = api.train("speech-cls", str(tones), out=str(tmp_path / "run"), epochs=1, verbose=0,
                       backbone="spectrogram_cnn1d", sets=["preprocess.features=mfcc", "preprocess.n_mfcc=13"])
    model = result.model
    assert model.get_layer("logmel").compute_output_shape((None, 8000))[2] == 13
    assert "test_accuracy" in result.metrics


def test_corrupt_clip_is_skipped_and_named(tones, tmp_path):
    (tones / "low" / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    result = api.train("speech-cls", str(tones), out=str(tmp_path / "run"), epochs=1, verbose=0)
    assert result.metrics["skipped_inputs"] == 1
    with pytest.raises(CnnkitError, match="broken.wav"):
        api.train("speech-cls", str(tones), out=str(tmp_path / "run2"), epochs=1, verbose=0, strict=True)


@pytest.mark.slow
def test_default_sample_trains_in_under_a_minute(tmp_path):
    start = time.perf_counter()
    result = api.train("speech-cls", out=str(tmp_path / "run"), verbose=0)
    seconds = time.perf_counter() - start
    assert result.metrics["num_train"] == 270 and seconds < 60
    assert result.metrics["test_accuracy"] >= 0.8
