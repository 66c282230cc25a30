"""Audio preprocessing as Keras layers (they live inside the model, so the saved model takes
raw waveforms and the features run wherever the model runs, GPU included).

- `FitLength`: waveforms of any length (batch, samples) -> (batch, num_samples), centred.
- `LogMelSpectrogram`: (batch, samples) -> (batch, frames, n_mels, 1) log-mel in dB, or MFCCs.
  Computed with `tf.signal`; equal to `librosa.feature.melspectrogram` + `librosa.power_to_db`
  for the same parameters (tests/features/test_audio.py checks it).
- `SpecAugment`: random time and frequency masks, training only.
- `RandomStretch`: random time stretch and frequency warp of the spectrogram, training only.
- `ClipNormalization`: each clip's per-bin mean over its loud frames removed (cepstral mean
  normalisation), so a microphone's or room's colouring does not reach the network.
"""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers


def frame_lengths(sample_rate: int, frame_ms: float, hop_ms: float) -> tuple[int, int]:
    """(n_fft, hop_length) in samples: the FFT size is the power of two nearest to `frame_ms`,
    so a 32 ms frame is 512 samples at 16 kHz and 256 at 8 kHz."""
    n_fft = 2 ** max(4, int(round(math.log2(sample_rate * frame_ms / 1000.0))))
    hop = max(1, int(round(sample_rate * hop_ms / 1000.0)))
    return n_fft, hop


def num_frames(num_samples: int, hop_length: int) -> int:
    """Frames of a centred STFT (librosa's `center=True`) of `num_samples` samples."""
    return 1 + num_samples // hop_length


@keras.saving.register_keras_serializable(package="cnnkit")
class FitLength(layers.Layer):
    """Pads with zeros or crops waveforms to `num_samples`, keeping the middle.

    Input (batch, samples) of any length; output (batch, num_samples). The same rule as
    `cnnkit.datasets.audio.fit_length`, which prepares the training clips.
    """

    def __init__(self, num_samples: int, **kwargs):
        super().__init__(**kwargs)
        self.num_samples = int(num_samples)

    def call(self, waves):
        import tensorflow as tf

        n = tf.shape(waves)[1]
        short = tf.maximum(self.num_samples - n, 0)
        waves = tf.pad(waves, [[0, 0], [short // 2, short - short // 2]])
        start = (tf.shape(waves)[1] - self.num_samples) // 2
        return waves[:, start:start + self.num_samples]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_samples)

    def get_config(self):
        return {**super().get_config(), "num_samples": self.num_samples}


@keras.saving.register_keras_serializable(package="cnnkit")
class LogMelSpectrogram(layers.Layer):
    """Waveforms (batch, samples) float -> log-mel spectrogram (batch, frames, n_mels, 1) in dB.

    Like librosa: centred frames (zero padding of n_fft/2 at both ends), periodic Hann window,
    power spectrum, Slaney mel filters (`librosa.filters.mel`), then
    `power_to_db(ref=max, top_db)`: each clip's loudest bin is 0 dB and nothing is below
    -top_db, so the features do not depend on the recording level.
    With `n_mfcc` > 0 the output is (batch, frames, n_mfcc, 1) MFCCs (DCT-II, orthonormal,
    of the dB spectrogram: `librosa.feature.mfcc`).

    Args:
        sample_rate: of the input waveforms, Hz.
        n_fft: FFT and window length in samples. hop_length: frame step in samples.
        n_mels, fmin, fmax: the mel filter bank (fmax None: sample_rate / 2).
        top_db: dynamic range kept below each clip's maximum (None: no floor).
        n_mfcc: 0 for log-mel, else the number of MFCCs.
        stft: "fft" (tf.signal.stft) or "conv": the same transform as a strided convolution
            with windowed cosine and sine kernels (and the DCT as a matrix product), which
            converts to ONNX and other runtimes without FFT ops; slower, equal within float
            rounding. `cnnkit export --format onnx` uses it.
    """

    def __init__(self, sample_rate=16000, n_fft=512, hop_length=160, n_mels=40, fmin=0.0, fmax=None,
                 top_db=80.0, n_mfcc=0, stft="fft", **kwargs):
        super().__init__(**kwargs)
        if stft not in ("fft", "conv"):
            raise ValueError(f"stft must be 'fft' or 'conv'. Received: stft={stft!r}")
        self.stft = stft
        self.sample_rate, self.n_fft, self.hop_length = int(sample_rate), int(n_fft), int(hop_length)
        self.n_mels, self.fmin, self.fmax = int(n_mels), float(fmin), None if fmax is None else float(fmax)
        self.top_db = None if top_db is None else float(top_db)
        self.n_mfcc = int(n_mfcc)
        import librosa

        # (n_fft/2 + 1, n_mels); a constant of the graph, rebuilt from the config on load.
        self._mel_matrix = np.ascontiguousarray(librosa.filters.mel(
            sr=self.sample_rate, n_fft=self.n_fft, n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax).T,
            dtype="float32")

    def call(self, waves):
        import tensorflow as tf

        waves = tf.cast(waves, "float32")
        pad = self.n_fft // 2
        waves = tf.pad(waves, [[0, 0], [pad, pad]])
        if self.stft == "conv":
            bins = self.n_fft // 2 + 1
            spec = tf.nn.conv1d(tf.expand_dims(waves, -1), tf.constant(self._dft_kernel()), self.hop_length, "VALID")
            power = tf.math.square(spec[..., :bins]) + tf.math.square(spec[..., bins:])
        else:
            stft = tf.signal.stft(waves, self.n_fft, self.hop_length, self.n_fft,
                                  window_fn=tf.signal.hann_window, pad_end=False)
            power = tf.math.square(tf.math.real(stft)) + tf.math.square(tf.math.imag(stft))
        mel = tf.linalg.matmul(power, tf.constant(self._mel_matrix))  # (batch, frames, n_mels)
        db = 10.0 * tf.math.log(tf.maximum(mel, 1e-10)) / math.log(10.0)
        db = db - tf.reduce_max(db, axis=[1, 2], keepdims=True)
        if self.top_db is not None:
            db = tf.maximum(db, -self.top_db)
        if self.n_mfcc and self.stft == "conv":
            db = tf.linalg.matmul(db, tf.constant(self._dct_matrix()))
        elif self.n_mfcc:
            db = tf.signal.dct(db, type=2, norm="ortho")[..., :self.n_mfcc]
        return tf.expand_dims(db, -1)  # not db[..., None]: a new-axis slice is no TFLite builtin

    def _dft_kernel(self) -> np.ndarray:
        """(n_fft, 1, 2 * (n_fft/2 + 1)) conv kernels: periodic-Hann-windowed cos, then -sin,
        so that the convolution gives the real and imaginary parts of the STFT."""
        n = np.arange(self.n_fft)
        k = np.arange(self.n_fft // 2 + 1)
        window = 0.5 - 0.5 * np.cos(2 * np.pi * n / self.n_fft)  # periodic, as tf.signal.hann_window
        angle = 2 * np.pi * np.outer(n, k) / self.n_fft
        kernel = np.concatenate([window[:, None] * np.cos(angle), -window[:, None] * np.sin(angle)], axis=1)
        return kernel[:, None, :].astype("float32")

    def _dct_matrix(self) -> np.ndarray:
        """(n_mels, n_mfcc): orthonormal DCT-II, the first n_mfcc coefficients."""
        m = self.n_mels
        k = np.arange(self.n_mfcc)[None, :]
        basis = np.cos(np.pi * k * (2 * np.arange(m)[:, None] + 1) / (2 * m)) * np.sqrt(2.0 / m)
        basis[:, 0] /= np.sqrt(2.0)
        return basis.astype("float32")

    def compute_output_shape(self, input_shape):
        frames = None if input_shape[1] is None else num_frames(input_shape[1], self.hop_length)
        return (input_shape[0], frames, self.n_mfcc or self.n_mels, 1)

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate, "n_fft": self.n_fft,
                "hop_length": self.hop_length, "n_mels": self.n_mels, "fmin": self.fmin, "fmax": self.fmax,
                "top_db": self.top_db, "n_mfcc": self.n_mfcc, "stft": self.stft}


@keras.saving.register_keras_serializable(package="cnnkit")
class SpecAugment(layers.Layer):
    """SpecAugment masks (Park et al. 2019), active only in training.

    Input (batch, frames, bins, channels). Each example gets `time_masks` bands of up to
    `time_width` x frames consecutive frames and `freq_masks` bands of up to
    `freq_width` x bins bins set to `fill` (0 = the mean after normalisation).
    """

    def __init__(self, time_masks=2, time_width=0.1, freq_masks=2, freq_width=0.15, fill=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.time_masks, self.time_width = int(time_masks), float(time_width)
        self.freq_masks, self.freq_width = int(freq_masks), float(freq_width)
        self.fill, self.seed = float(fill), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _band_mask(self, batch, length, count, width):
        """(batch, length) bool: True inside any of `count` random bands per example."""
        import tensorflow as tf

        masked = tf.zeros((batch, length), "bool")
        positions = tf.range(length, dtype="float32")[None, :]
        max_width = width * tf.cast(length, "float32")
        for _ in range(count):
            w = keras.random.uniform((batch, 1), 0.0, 1.0, seed=self.seed_generator) * max_width
            start = keras.random.uniform((batch, 1), 0.0, 1.0, seed=self.seed_generator) * (tf.cast(length, "float32") - w)
            masked = masked | ((positions >= start) & (positions < start + w))
        return masked

    def call(self, x, training=None):
        if not training:
            return x
        import tensorflow as tf

        shape = tf.shape(x)
        time = self._band_mask(shape[0], shape[1], self.time_masks, self.time_width)[:, :, None, None]
        freq = self._band_mask(shape[0], shape[2], self.freq_masks, self.freq_width)[:, None, :, None]
        return tf.where(time | freq, tf.cast(self.fill, x.dtype), x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "time_masks": self.time_masks, "time_width": self.time_width,
                "freq_masks": self.freq_masks, "freq_width": self.freq_width, "fill": self.fill, "seed": self.seed}


@keras.saving.register_keras_serializable(package="cnnkit")
class RandomStretch(layers.Layer):
    """Random stretching of spectrograms, active only in training.

    Input (batch, frames, bins, channels). Each example is stretched in time by a factor in
    [1 - time, 1 + time] around its middle (speaking rate), and its frequency axis is scaled by
    a factor in [1 - freq, 1 + freq] from the lowest bin up (a vocal-tract-length perturbation,
    as in Jaitly & Hinton 2013); bins scaled in from beyond the top get `fill`.
    """

    def __init__(self, time=0.1, freq=0.1, fill=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.time, self.freq, self.fill, self.seed = float(time), float(freq), float(fill), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or (not self.time and not self.freq):
            return x
        import tensorflow as tf

        batch = tf.shape(x)[0]
        t = keras.random.uniform((batch,), 1.0 - self.time, 1.0 + self.time, seed=self.seed_generator)
        f = keras.random.uniform((batch,), 1.0 - self.freq, 1.0 + self.freq, seed=self.seed_generator)
        # crop_and_resize boxes are [y1, x1, y2, x2] in [0, 1]: a box larger than the image reads
        # `fill` outside it, a smaller one zooms in.
        boxes = tf.stack([0.5 - t / 2, tf.zeros_like(f), 0.5 + t / 2, f], axis=1)
        out = tf.image.crop_and_resize(tf.cast(x, "float32"), boxes, tf.range(batch), tf.shape(x)[1:3],
                                       extrapolation_value=self.fill)
        return tf.cast(out, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "time": self.time, "freq": self.freq, "fill": self.fill, "seed": self.seed}


@keras.saving.register_keras_serializable(package="cnnkit")
class ClipNormalization(layers.Layer):
    """Per-clip, per-bin mean removal over the clip's loud frames, then a fixed scale.

    Input (batch, frames, bins, 1) in dB below the clip's maximum (`LogMelSpectrogram`). A frame
    is loud when its mean over bins is above `-floor_db`; the mean of each bin over the loud
    frames is subtracted from every frame (padding and silence do not shift it), and the result
    is divided by `scale_db`. Output has the input's shape.
    """

    def __init__(self, floor_db=60.0, scale_db=20.0, **kwargs):
        super().__init__(**kwargs)
        self.floor_db, self.scale_db = float(floor_db), float(scale_db)

    def call(self, x):
        import tensorflow as tf

        x = tf.cast(x, "float32")
        loud = tf.cast(tf.reduce_mean(x, axis=[2, 3], keepdims=True) > -self.floor_db, "float32")  # (b, t, 1, 1)
        count = tf.maximum(tf.reduce_sum(loud, axis=1, keepdims=True), 1.0)
        mean = tf.reduce_sum(x * loud, axis=1, keepdims=True) / count  # (b, 1, bins, 1)
        return (x - mean) / self.scale_db

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "floor_db": self.floor_db, "scale_db": self.scale_db}
