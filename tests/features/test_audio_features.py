"""cnnkit.features.audio: the in-model log-mel/MFCC layer against librosa, FitLength, SpecAugment."""
import keras
import librosa
import numpy as np
import pytest

from cnnkit.datasets.audio import fit_length
from cnnkit.features import audio as audio_features


def chirp(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """A rising tone with a little noise and a silent gap: energy in many bins, some near the floor."""
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    wave = 0.5 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    wave[len(t) // 3: len(t) // 2] *= 0.001
    return wave.astype("float32")


@pytest.mark.parametrize("sample_rate,frame_ms", [(16000, 32.0), (8000, 32.0), (22050, 25.0)])
def test_logmel_equals_librosa(sample_rate, frame_ms):
    n_fft, hop = audio_features.frame_lengths(sample_rate, frame_ms, 10.0)
    wave = chirp(sample_rate, 0.7)
    layer = audio_features.LogMelSpectrogram(sample_rate, n_fft, hop, n_mels=40, fmin=20.0, top_db=80.0)
    ours = keras.ops.convert_to_numpy(layer(wave[None]))[0, :, :, 0]  # (frames, mels)
    mel = librosa.feature.melspectrogram(y=wave, sr=sample_rate, n_fft=n_fft, hop_length=hop, n_mels=40, fmin=20.0,
                                         center=True, pad_mode="constant", power=2.0)
    ref = librosa.power_to_db(mel, ref=np.max, top_db=80.0).T
    assert ours.shape == ref.shape == (audio_features.num_frames(len(wave), hop), 40)
    # float32 FFT against librosa's float64 path: within 0.05 dB where there is signal.
    loud = ref > -60
    assert loud.mean() > 0.3
    assert np.abs(ours - ref)[loud].max() < 0.05
    assert np.abs(ours - ref).max() < 1.0


def test_mfcc_equals_librosa():
    wave = chirp(16000, 0.5, seed=1)
    layer = audio_features.LogMelSpectrogram(16000, 512, 160, n_mels=40, fmin=0.0, top_db=80.0, n_mfcc=13)
    ours = keras.ops.convert_to_numpy(layer(wave[None]))[0, :, :, 0]
    mel = librosa.feature.melspectrogram(y=wave, sr=16000, n_fft=512, hop_length=160, n_mels=40, center=True,
                                         pad_mode="constant")
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=np.max, top_db=80.0), n_mfcc=13).T
    assert ours.shape == ref.shape == (51, 13)
    np.testing.assert_allclose(ours, ref, atol=0.05 * np.abs(ref).max())


def test_frame_lengths_follow_the_sample_rate():
    assert audio_features.frame_lengths(16000, 32, 10) == (512, 160)
    assert audio_features.frame_lengths(8000, 32, 10) == (256, 80)
    assert audio_features.frame_lengths(44100, 32, 10) == (1024, 441)


def test_level_does_not_change_the_features():
    wave = chirp(16000, 0.4)
    layer = audio_features.LogMelSpectrogram(16000, 512, 160)
    loud, quiet = (keras.ops.convert_to_numpy(layer(w[None])) for w in (wave, wave * 0.01))
    above_floor = loud > -60  # the quiet copy reaches the 1e-10 power floor sooner
    np.testing.assert_allclose(loud[above_floor], quiet[above_floor], atol=1e-3)


def test_silence_gives_a_flat_spectrogram_not_nan():
    out = keras.ops.convert_to_numpy(audio_features.LogMelSpectrogram(16000, 512, 160)(np.zeros((2, 4000), "float32")))
    assert np.all(np.isfinite(out)) and np.all(out == 0.0)


@pytest.mark.parametrize("length", [999, 1000, 1001, 3333, 50])
def test_fit_length_layer_equals_numpy_rule(length):
    wave = np.arange(1, length + 1, dtype="float32")
    ours = keras.ops.convert_to_numpy(audio_features.FitLength(1000)(wave[None]))
    np.testing.assert_array_equal(ours, fit_length([wave], 1000))
    assert ours.shape == (1, 1000)


def test_specaugment_masks_in_training_only():
    x = np.ones((4, 50, 40, 1), "float32")
    layer = audio_features.SpecAugment(time_masks=2, time_width=0.2, freq_masks=2, freq_width=0.2, seed=3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    assert out.shape == x.shape
    zeros = (out == 0).mean()
    assert 0.0 < zeros < 0.6
    # masks are bands: a masked frame is masked at every bin
    frame_all_zero = (out[..., 0] == 0).all(axis=2)
    assert frame_all_zero.any()


def test_layers_save_and_reload_safely(tmp_path):
    inputs = keras.Input((None,))
    x = audio_features.FitLength(8000)(inputs)
    x = audio_features.LogMelSpectrogram(16000, 512, 160, n_mels=32, n_mfcc=12)(x)
    x = audio_features.SpecAugment(seed=1)(x)
    model = keras.Model(inputs, x)
    path = tmp_path / "front.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    wave = chirp(16000, 0.3)[None]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(wave)), keras.ops.convert_to_numpy(model(wave)), atol=1e-5)
    assert loaded.output_shape == (None, 51, 12, 1)


def test_random_stretch_warps_in_training_only():
    x = np.zeros((3, 40, 20, 1), "float32")
    x[:, :, 10, 0] = 1.0  # one lit frequency bin
    layer = audio_features.RandomStretch(time=0.0, freq=0.2, seed=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    assert out.shape == x.shape
    peaks = out[:, 20, :, 0].argmax(axis=1)  # the lit bin moved to 10 / factor, factor in [0.8, 1.2]
    assert np.all((peaks >= 8) & (peaks <= 13))
    assert not np.allclose(out, x)
    still = audio_features.RandomStretch(time=0.0, freq=0.0)(x, training=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(still), x)


def test_clip_normalization_removes_each_bins_mean_over_loud_frames():
    x = np.full((2, 10, 4, 1), -80.0, "float32")
    x[0, 2:6, :, 0] = [-10, -20, -30, -5]  # four loud frames, then silence
    x[1] = x[0] - 7.0  # the same clip through a quieter "microphone"... uniformly 7 dB down
    x[1, 2:6, :, 0] = x[0, 2:6, :, 0] + [3.0, -2.0, 0.0, 1.0]  # ...and a coloured one
    out = keras.ops.convert_to_numpy(audio_features.ClipNormalization(floor_db=60.0, scale_db=20.0)(x))
    np.testing.assert_allclose(out[:, 2:6], 0.0, atol=1e-6)  # constant loud frames: nothing left
    np.testing.assert_allclose(out[0, 0, :, 0], (-80.0 - np.array([-10, -20, -30, -5])) / 20.0, atol=1e-6)


@pytest.mark.parametrize("n_mfcc", [0, 13])
def test_conv_stft_equals_the_fft_one(n_mfcc):
    """stft="conv" (what ONNX exports run) gives the FFT layer's features within float rounding."""
    from cnnkit.features.audio import LogMelSpectrogram

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(2, 8000)) * np.linspace(0, 1, 8000)).astype("float32")
    a = LogMelSpectrogram(8000, 256, 80, 32, n_mfcc=n_mfcc)(x).numpy()
    b = LogMelSpectrogram(8000, 256, 80, 32, n_mfcc=n_mfcc, stft="conv")(x).numpy()
    np.testing.assert_allclose(a, b, atol=2e-3)
    with pytest.raises(ValueError, match="stft"):
        LogMelSpectrogram(stft="dft")
