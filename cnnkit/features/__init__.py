"""Preprocessing inside the model: `image` (normalisation, augmentation), `text` (vectorization,
word vectors), `audio` (log-mel spectrogram, SpecAugment)."""
