"""speech-cls: spoken word and command recognition with CNNs on spectrograms.

Data: class folders of wav/flac/ogg/mp3 (any source of `cnnkit.datasets`), `tfds:speech_commands`,
`builtin:spoken_digits`. Every clip is decoded once to mono at `sample_rate` and fitted to
`clip_seconds`. Model: waveform -> [FitLength, inference only] -> LogMelSpectrogram (or MFCC)
-> per-bin normalisation -> [SpecAugment, training only] -> backbone -> ClassifierHead. Time
shift and background noise are mixed into the training waveforms in `tf.data`. The saved model
takes float waveforms of any length at `sample_rate`.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import keras
import numpy as np

from cnnkit.datasets import audio as audio_data
from cnnkit.errors import CnnkitError
from cnnkit.features import audio as audio_features
from cnnkit.tasks.base import TASKS, Prepared, Task


@dataclasses.dataclass
class AudioPreprocessConfig:
    sample_rate: int = 16000  # Hz; every clip is resampled to it
    clip_seconds: Optional[float] = None  # unset: the 95th percentile of the training clips (<= 10 s)
    features: str = "logmel"  # logmel | mfcc
    n_mels: int = 40
    n_mfcc: int = 20  # with features: mfcc
    frame_ms: float = 32.0  # STFT window (rounded to a power of two in samples)
    hop_ms: float = 10.0
    fmin: float = 20.0
    fmax: Optional[float] = None  # unset: sample_rate / 2
    top_db: float = 80.0
    normalize: str = "per_bin"  # per_bin (each bin's mean/variance over the training clips) | per_clip (each clip's own bin means removed) | fixed ([-top_db, 0] dB -> [-1, 1])
    time_shift: float = 0.1  # random shift, fraction of the clip
    noise_prob: float = 0.0  # fraction of training clips with noise mixed in, e.g. 0.5 (0: off)
    noise_snr: list = dataclasses.field(default_factory=lambda: [10.0, 30.0])  # dB range
    noise_dir: Optional[str] = None  # background recordings to mix in; unset: white noise
    stretch_time: float = 0.1  # random time stretch of the spectrogram, +- this fraction (speaking rate)
    stretch_freq: float = 0.1  # random frequency warp, +- this fraction (vocal tract length: other speakers)
    time_masks: int = 2  # SpecAugment
    time_mask_width: float = 0.1
    freq_masks: int = 2
    freq_mask_width: float = 0.15


def arrays_to_waves(x, rate: int, sample_rate: int) -> list[np.ndarray]:
    """Audio arrays (tfds: int16 or float; one clip per row, or an object array of clips of any
    length, mono or (samples, channels)) at `rate` -> float32 mono waveforms at `sample_rate`."""
    waves = []
    for clip in x:
        clip = np.asarray(clip)
        wave = clip.astype("float32") / 32768.0 if clip.dtype == np.int16 else clip.astype("float32")
        if wave.ndim == 2:
            wave = wave.mean(axis=1)
        waves.append(audio_data.resample(wave.reshape(-1), rate, sample_rate))
    return waves


@TASKS.register("speech-cls")
class SpeechClassification(Task):
    name = "speech-cls"
    modality = "spectrogram"
    preprocess_cls = AudioPreprocessConfig
    default_source = "builtin:spoken_digits"
    extensions = audio_data.AUDIO_EXTENSIONS
    defaults = {
        "train": {"epochs": 30, "batch_size": 16, "lr": 3e-3, "optimizer": "adamw", "weight_decay": 1e-3,
                  "schedule": "onecycle"},
        "model": {"backbone": "spectrogram_cnn", "head_dropout": 0.2},
    }

    # ------------------------------------------------------------ data
    def prepare(self, cfg, data) -> Prepared:
        p = cfg.preprocess
        if p.features not in ("logmel", "mfcc"):
            raise CnnkitError(f"preprocess.features must be logmel or mfcc. Received: {p.features!r}")
        if data.kind == "texts":
            raise CnnkitError(f"{data.origin} holds text, not audio: use `cnnkit train text-cls` for it. (A table "
                              f"of audio files names them in a column, relative to its folder, with a label column.)")
        waves, ids, skipped = {}, {}, list(data.skipped)
        for name, split in data.splits.items():
            if data.kind == "files":
                w, kept, skip = audio_data.read_audio_files(split.x, p.sample_rate, strict=cfg.data.strict)
                skipped += skip
                ids[name] = [split.x[i] for i in kept]
            else:
                w, kept = arrays_to_waves(split.x, data.sample_rate or p.sample_rate, p.sample_rate), list(range(len(split.y)))
                ids[name] = [f"{name}[{i}]" for i in kept]
            if not w:
                raise CnnkitError(f"{data.origin}: no readable audio in the {name} split.")
            waves[name] = (w, split.y[kept])
        if p.clip_seconds is None:
            p.clip_seconds = audio_data.auto_clip_seconds(waves["train"][0], p.sample_rate)
        n = self.num_samples(p)
        splits = {name: (audio_data.fit_length(w, n), y) for name, (w, y) in waves.items()}
        return Prepared(splits, ids, list(data.class_names), skipped, data.origin)

    @staticmethod
    def num_samples(p) -> int:
        """Samples per training clip."""
        if not p.clip_seconds or p.clip_seconds <= 0:
            raise CnnkitError(f"preprocess.clip_seconds must be > 0. Received: {p.clip_seconds}")
        return int(round(p.clip_seconds * p.sample_rate))

    def dataset(self, x, y, cfg, training: bool, num_classes: int | None = None):
        p = cfg.preprocess
        noise = None
        if training and p.noise_dir and p.noise_prob:
            noise = audio_data.read_noise_folder(p.noise_dir, p.sample_rate, x.shape[1])
        return audio_data.make_dataset(x, y, cfg.train.batch_size, training, seed=cfg.train.seed,
                                       time_shift=p.time_shift, noise_prob=p.noise_prob,
                                       noise_snr=tuple(p.noise_snr), noise=noise)

    def inference_dataset(self, x, cfg, batch_size: int | None = None):
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(np.asarray(x, dtype="float32")).batch(
            batch_size or cfg.train.batch_size).prefetch(2)

    # ------------------------------------------------------------ model
    def spectrogram_layer(self, p) -> audio_features.LogMelSpectrogram:
        n_fft, hop = audio_features.frame_lengths(p.sample_rate, p.frame_ms, p.hop_ms)
        return audio_features.LogMelSpectrogram(p.sample_rate, n_fft, hop, p.n_mels, p.fmin, p.fmax, p.top_db,
                                                n_mfcc=p.n_mfcc if p.features == "mfcc" else 0, name="logmel")

    def build(self, cfg, prepared: Prepared):
        p, m = cfg.preprocess, cfg.model
        n = self.num_samples(p)
        if m.backbone == "auto":
            m.backbone = "spectrogram_cnn"
        self.backbone_info(m.backbone)
        spectrogram, norm = self.preprocessing_layers(cfg, prepared)
        frames_shape = spectrogram.compute_output_shape((None, n))[1:]
        augment = audio_features.SpecAugment(p.time_masks, p.time_mask_width, p.freq_masks, p.freq_mask_width,
                                             seed=cfg.train.seed, name="aug_specaugment")
        stretch = audio_features.RandomStretch(p.stretch_time, p.stretch_freq, seed=cfg.train.seed, name="aug_stretch")
        backbone = self.make_backbone(m.backbone, frames_shape, len(prepared.class_names), **m.backbone_args)
        head = self.head(cfg, prepared, backbone)
        classify = (lambda x: head(backbone(x))) if head is not None else backbone

        waves = keras.Input((n,), name="waveform")
        train_model = keras.Model(waves, classify(augment(stretch(norm(spectrogram(waves))))), name=f"{self.name}_train")
        raw = keras.Input((None,), name="waveform")
        fitted = audio_features.FitLength(n, name="fit_length")(raw)
        infer_model = keras.Model(raw, classify(norm(spectrogram(fitted))), name=self.name)
        return train_model, infer_model

    def preprocessing_layers(self, cfg, prepared: Prepared) -> list:
        """[LogMelSpectrogram, normalisation]: waveforms (batch, samples) -> (batch, frames, bins, 1)."""
        p = cfg.preprocess
        spectrogram = self.spectrogram_layer(p)
        if p.normalize not in ("per_bin", "per_clip", "fixed"):
            raise CnnkitError(f"preprocess.normalize must be per_bin, per_clip or fixed. Received: {p.normalize!r}")
        if p.normalize == "fixed":
            norm = keras.layers.Rescaling(2.0 / p.top_db, offset=1.0, name="normalize")
        elif p.normalize == "per_clip":
            norm = audio_features.ClipNormalization(name="normalize")
        else:  # per-bin statistics of the training spectrograms (a sample is enough)
            norm = keras.layers.Normalization(axis=2, name="normalize")
            x_train = prepared.splits["train"][0]
            sample = x_train[np.random.default_rng(0).choice(len(x_train), min(len(x_train), 2000), replace=False)]
            norm.adapt(np.concatenate([keras.ops.convert_to_numpy(spectrogram(sample[i:i + 256]))
                                       for i in range(0, len(sample), 256)]))
        return [spectrogram, norm]

    # ------------------------------------------------------------ prediction inputs
    def array_inputs(self, x: np.ndarray, cfg) -> np.ndarray:
        """Waveforms in memory at the run's sample rate -> float32 (N, clip samples): one (samples,)
        or a batch (N, samples), each fitted to the clip length as files are (`fit_length`)."""
        if x.dtype.kind not in "uif" or x.ndim not in (1, 2):
            raise CnnkitError(f"A speech-cls run predicts on waveforms at its sample rate "
                              f"({cfg.preprocess.sample_rate} Hz): one (samples,) or a batch (N, samples). Received an "
                              f"array of shape {x.shape} and dtype {x.dtype}.")
        waves = x[None] if x.ndim == 1 else x
        return audio_data.fit_length([w.astype("float32") for w in waves], self.num_samples(cfg.preprocess))

    def read_inputs(self, inputs: list[str], cfg):
        """Whole files, decoded at the run's rate; the saved model fits each to the clip length."""
        p = cfg.preprocess
        waves, kept, skipped = audio_data.read_audio_files(inputs, p.sample_rate)
        return audio_data.fit_length(waves, self.num_samples(p)), [inputs[i] for i in kept], skipped

    def read_windows(self, path: str, cfg, hop_seconds: float | None = None):
        """A long recording cut into clip-length windows for `predict --sliding`.

        Returns (windows (W, num_samples), start seconds (W,), speech (W,) bool): a window is
        speech when its energy is within 20 dB of the loudest window's.
        Raises CnnkitError for an unreadable file.
        """
        p = cfg.preprocess
        n = self.num_samples(p)
        waves, kept, skipped = audio_data.read_audio_files([path], p.sample_rate)
        if not waves:
            raise CnnkitError(f"{path}: {skipped[0][1]}.")
        hop = max(1, int(round((hop_seconds or p.clip_seconds / 2) * p.sample_rate)))
        windows, starts = audio_data.sliding_windows(waves[0], n, hop)
        rms = np.sqrt(np.mean(windows ** 2, axis=1))
        speech = rms >= 0.1 * rms.max() if rms.max() > 0 else np.zeros(len(rms), bool)
        return windows, starts / p.sample_rate, speech
