"""cnnkit.datasets.audio: decoding any format/rate/channels, bad files, clip length, tf.data augmentation."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cnnkit.datasets import audio as audio_data
from cnnkit.errors import CnnkitError


def tone(freq: float, sample_rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t).astype("float32")
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def write_audio(path: Path, wave: np.ndarray, sample_rate: int, **kwargs) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, sample_rate, **kwargs)
    return str(path)


@pytest.mark.parametrize("name,rate,channels,kwargs", [
    ("a.wav", 8000, 1, {"subtype": "PCM_16"}),
    ("b.wav", 44100, 2, {"subtype": "PCM_24"}),
    ("c.flac", 22050, 1, {}),
    ("d.ogg", 48000, 2, {}),
    ("e.mp3", 16000, 1, {}),
])
def test_decode_any_format_to_mono_at_the_task_rate(tmp_path, name, rate, channels, kwargs):
    path = write_audio(tmp_path / name, tone(440, rate, 0.5, channels), rate, **kwargs)
    wave = audio_data.decode_audio(path, 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 8000) <= 1200  # mp3 adds encoder padding
    # still a 440 Hz tone after resampling
    spectrum = np.abs(np.fft.rfft(wave[:4096]))
    assert abs(np.argmax(spectrum) * 16000 / 4096 - 440) < 10


def test_bad_files_are_skipped_with_the_reason_or_stop_with_strict(tmp_path):
    good = write_audio(tmp_path / "good.wav", tone(300, 8000, 0.3), 8000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    no_samples = write_audio(tmp_path / "nosamples.wav", np.zeros(0, "float32"), 8000)
    waves, kept, skipped = audio_data.read_audio_files([good, str(corrupt), str(empty), no_samples], 16000)
    assert kept == [0] and len(waves) == 1
    reasons = dict(skipped)
    assert "not a readable audio file" in reasons[str(corrupt)]
    assert "not a readable audio file" in reasons[str(empty)]
    assert reasons[no_samples] == "no audio samples"
    with pytest.raises(CnnkitError, match="corrupt.wav.*--strict"):
        audio_data.read_audio_files([good, str(corrupt)], 16000, strict=True)


def test_read_keeps_the_order_of_the_files(tmp_path):
    paths = [write_audio(tmp_path / f"{i}.wav", np.full(100 + i, i / 10, "float32"), 16000) for i in range(7)]
    waves, kept, _ = audio_data.read_audio_files(paths, 16000, workers=3)
    assert kept == list(range(7))
    assert [len(w) for w in waves] == [100 + i for i in range(7)]


def test_auto_clip_seconds_is_the_95th_percentile_rounded_up_and_capped():
    waves = [np.zeros(int(16000 * s), "float32") for s in np.linspace(0.2, 0.9, 100)]
    assert audio_data.auto_clip_seconds(waves, 16000) == pytest.approx(0.9)
    assert audio_data.auto_clip_seconds([np.zeros(16000 * 60, "float32")] * 3, 16000) == audio_data.MAX_AUTO_SECONDS
    assert audio_data.auto_clip_seconds([np.zeros(10, "float32")], 16000) == pytest.approx(0.1)


def test_fit_length_pads_and_crops_around_the_middle():
    out = audio_data.fit_length([np.ones(4, "float32"), np.arange(10, dtype="float32")], 6)
    np.testing.assert_array_equal(out[0], [0, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(out[1], [2, 3, 4, 5, 6, 7])


def test_sliding_windows_cover_a_long_recording():
    windows, starts = audio_data.sliding_windows(np.arange(25, dtype="float32"), 10, 5)
    assert windows.shape == (4, 10) and starts.tolist() == [0, 5, 10, 15]
    np.testing.assert_array_equal(windows[-1], [15, 16, 17, 18, 19, 20, 21, 22, 23, 24])
    short, s = audio_data.sliding_windows(np.ones(4, "float32"), 10, 5)
    assert short.shape == (1, 10) and s.tolist() == [0]


def test_training_dataset_shifts_and_adds_noise_evaluation_does_not():
    x = np.tile(tone(500, 16000, 0.25)[None], (8, 1))
    y = np.arange(8)
    plain = next(iter(audio_data.make_dataset(x, y, 8, training=False)))[0].numpy()
    np.testing.assert_array_equal(plain, x)
    aug, labels = next(iter(audio_data.make_dataset(x, y, 8, training=True, seed=1, time_shift=0.1, noise_prob=1.0,
                                                    noise_snr=(10, 10))))
    aug = aug.numpy()
    assert aug.shape == x.shape and sorted(labels.numpy().tolist()) == list(range(8))
    assert not np.allclose(aug, x)
    # noise at 10 dB SNR: the residual after removing the best shift is about 1/10 of the signal power
    residual = min(np.mean((aug[0] - np.roll(x[0], k)) ** 2) for k in range(-400, 401))
    assert 0.03 < residual / np.mean(x[0] ** 2) < 0.5


def test_noise_folder_pieces_and_error(tmp_path):
    write_audio(tmp_path / "noise" / "fan.wav", np.random.default_rng(0).standard_normal(20000).astype("float32") * 0.1, 16000)
    pieces = audio_data.read_noise_folder(str(tmp_path / "noise"), 16000, 8000)
    assert pieces.shape == (2, 8000)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CnnkitError, match="noise_dir"):
        audio_data.read_noise_folder(str(tmp_path / "empty"), 16000, 8000)
    x = np.zeros((4, 8000), "float32") + 0.1
    batch = next(iter(audio_data.make_dataset(x, np.zeros(4), 4, training=True, noise_prob=1.0, noise=pieces)))[0]
    assert batch.shape == (4, 8000) and not np.allclose(batch.numpy(), x)


def test_training_augmentation_is_the_same_for_the_same_seed():
    # The clips are augmented in parallel calls: each draws from its own seed, so two runs of
    # one seed see the same waves (a shared generator had handed numbers out in thread order).
    x = np.tile(tone(500, 16000, 0.25)[None], (64, 1)) * np.linspace(0.5, 1.0, 64, dtype="float32")[:, None]
    y = np.arange(64)

    def two_epochs(seed):
        ds = audio_data.make_dataset(x, y, 16, training=True, seed=seed, time_shift=0.1, noise_prob=0.5)
        return [np.concatenate([w.numpy() for w, _ in ds]) for _ in range(2)]

    first, again, other = two_epochs(3), two_epochs(3), two_epochs(4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], first[1])  # each epoch draws afresh
    assert not np.allclose(first[0], other[0])
