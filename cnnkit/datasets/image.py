"""Images -> uint8 arrays -> tf.data pipelines.

Files are decoded by TensorFlow (jpg, png, bmp, gif; grey, RGB, RGBA, palette, 16-bit), in
parallel, and converted to the task's channels and size; files that fail to decode are
skipped and counted. Where the decoded images live is `data.cache`:

- memory (default): decoded once into a uint8 (N, h, w, c) array; training streams batches
  from it with shuffling and prefetch, no per-step Python.
- disk: decoded once into a `tf.data` cache file (under $CNNKIT_CACHE or ~/.cache/cnnkit,
  removed when the data is released); each epoch reads it back, shuffled in a buffer of
  at most SHUFFLE_BUFFER_BYTES. Memory no longer grows with the number of images.
- none: decoded again every epoch from the files, whose list is shuffled in full.

With disk and none the decoded images are an `ImageFiles`, which stands in for the array.
"""
from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import sys
import uuid
import weakref

import numpy as np
import tensorflow as tf

from cnnkit import native_logs
from cnnkit.errors import CnnkitError

# Decoded by Pillow (`pillow_to_array`), which tf.io.decode_image cannot: TIFF, and HEIC/HEIF
# (iPhone photos) when the optional pillow-heif is installed (`pip install "cnnkit[heic]"`).
HEIF_EXTENSIONS = (".heic", ".heif")
PILLOW_EXTENSIONS = (".tif", ".tiff") + (HEIF_EXTENSIONS if importlib.util.find_spec("pillow_heif") else ())
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp") + PILLOW_EXTENSIONS
AUTOTUNE = tf.data.AUTOTUNE
CACHE_MODES = ("memory", "disk", "none")
SHUFFLE_BUFFER_BYTES = 256 << 20  # decoded images held for shuffling a disk-cached split


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """(h, w, any of 1-4 channels) -> (h, w, `channels`): alpha dropped, grey <-> RGB."""
    c = tf.shape(image)[-1]
    image = tf.cond(tf.logical_or(c == 2, c == 4), lambda: image[..., :-1], lambda: image)
    c = tf.shape(image)[-1]
    if channels == 3:
        image = tf.cond(c == 1, lambda: tf.tile(image, [1, 1, 3]), lambda: image)
    else:
        image = tf.cond(c == 3, lambda: tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), image.dtype),
                        lambda: image)
    return tf.ensure_shape(image, [None, None, channels])


def resize_uint8(image: tf.Tensor, size) -> tf.Tensor:
    """(h, w, c) -> (size[0], size[1], c) uint8; antialiased bilinear, skipped when the size matches."""
    size = tf.constant(size, tf.int32)
    same = tf.reduce_all(tf.shape(image)[:2] == size)

    def resize():
        out = tf.image.resize(tf.cast(image, tf.float32), size, antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)

    return tf.cond(same, lambda: tf.cast(image, tf.uint8), resize)


def decode_image_bytes(data: tf.Tensor, channels: int, size) -> tf.Tensor:
    """Encoded image bytes (scalar string) -> uint8 (size[0], size[1], channels)."""
    image = tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)
    return resize_uint8(to_channels(image, channels), size)


@functools.cache
def register_heif_opener() -> None:
    """Teaches Pillow HEIC/HEIF (pillow-heif), once per process rather than once per file."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def pillow_to_array(path) -> np.ndarray:
    """A TIFF or HEIC file (its path, str or bytes) -> uint8 (h, w, 1, 3 or 4): its first page,
    through Pillow. 16- and 32-bit integer grey (microscopy, scanners) is scaled from 0-65535
    (divided by 257, as 16-bit PNGs are), 32-bit float grey from 0-1; CMYK and palette images
    become RGB(A).

    Raises:
        ValueError: for a file Pillow cannot read, or float values outside 0-1 (no scale to
            assume); the file is then reported as not decodable, by name.
    """
    import os

    from PIL import Image

    # The path, not the file's bytes, crosses from TensorFlow: numpy's bytes type would drop the
    # file's trailing NUL bytes. (Pillow's warnings are not silenced: warnings.catch_warnings is
    # not thread-safe, and tf.data decodes in several threads.)
    path = os.fsdecode(np.asarray(path).item())
    if path.lower().endswith(HEIF_EXTENSIONS):
        register_heif_opener()
    with Image.open(path) as image:
        mode = image.mode
        if mode.startswith("I"):  # I;16, I;16B, I (32-bit): integer grey
            array = np.clip(np.asarray(image, dtype="float64") / 257.0, 0, 255)
            return np.round(array).astype("uint8")[..., None]
        if mode == "F":
            array = np.asarray(image, dtype="float64")
            if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 1):
                raise ValueError(f"float TIFF with values {np.nanmin(array):g} to {np.nanmax(array):g}: only 0-1 is "
                                 f"read; save it as 8- or 16-bit")
            return np.round(np.nan_to_num(array) * 255).astype("uint8")[..., None]
        target = {"1": "L", "L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA"}.get(mode)
        if target is None:  # P, CMYK, YCbCr, LAB, ...
            target = "RGBA" if mode in ("P", "PA") and "transparency" in image.info else "RGB"
        array = np.asarray(image.convert(target), dtype="uint8")
    return array[..., None] if array.ndim == 2 else array


def decode_image_file(path: tf.Tensor, channels: int = 0, size=None) -> tf.Tensor:
    """An image file's path (scalar string) -> uint8 (h, w, c): JPEG/PNG/BMP/GIF/WebP by
    TensorFlow, the PILLOW_EXTENSIONS (by suffix) by Pillow (`pillow_to_array`). With
    `channels` and `size`: (size[0], size[1], channels), as `decode_image_bytes`."""
    pattern = ".*(" + "|".join(re.escape(suffix) for suffix in PILLOW_EXTENSIONS) + ")"
    pillow = tf.strings.regex_full_match(tf.strings.lower(path), pattern)

    def by_pillow():
        image = tf.numpy_function(pillow_to_array, [path], tf.uint8, stateful=False)
        image.set_shape([None, None, None])
        return image

    def by_tensorflow():
        image = tf.io.decode_image(tf.io.read_file(path), channels=0, dtype=tf.uint8, expand_animations=False)
        image.set_shape([None, None, None])
        return image

    image = tf.cond(pillow, by_pillow, by_tensorflow)
    return image if size is None else resize_uint8(to_channels(image, channels), size)


def quiet_decoder():
    """A block whose stderr drops libjpeg's nameless line for a file it cannot decode (the caller
    reports such files by name) and passes everything else on (`native_logs`)."""
    return native_logs.quiet_native_stderr(native_logs.FILTER, drop=native_logs.is_decoder_line)


def probe_images(paths: list[str], sample: int = 64, seed: int = 0):
    """(median height, median width, channels) of a random sample of image files.

    Channels is 3 if any sampled image has colour, else 1. Unreadable files are ignored.
    """
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(paths), size=min(sample, len(paths)), replace=False)
    heights, widths, colour = [], [], False
    with quiet_decoder():  # one capture for the whole sample
        for i in pick:
            try:
                image = decode_image_file(tf.constant(paths[i]))
            except (tf.errors.OpError, OSError, ValueError):  # eagerly, Pillow's errors come as they are
                continue
            h, w, c = image.shape
            heights.append(h)
            widths.append(w)
            if c >= 3:
                # A colour file whose three channels are equal is still a grey image.
                rgb = image[..., :3].numpy().astype("int16")
                colour = colour or bool(np.any(rgb[..., 0] != rgb[..., 1]) or np.any(rgb[..., 1] != rgb[..., 2]))
    if not heights:
        raise CnnkitError(f"None of {len(pick)} sampled files could be decoded as images (first: {paths[pick[0]]}).")
    return int(np.median(heights)), int(np.median(widths)), 3 if colour else 1


def decode_files_dataset(paths: list[str], channels: int, size) -> tf.data.Dataset:
    """Image files -> a dataset of (index in `paths`, uint8 (size[0], size[1], channels)), in
    file order, decoded in parallel; files that fail to decode are dropped."""
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), np.asarray(paths, dtype=object).astype(str)))
    ds = ds.map(lambda i, p: (i, decode_image_file(p, channels, size)), num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.ignore_errors()


def _drain(ds: tf.data.Dataset, n: int, size, channels: int, keep_images: bool, verbose: bool):
    """Iterates a `decode_files_dataset` to its end -> (uint8 images or None, kept indices).
    Shows a progress bar on stderr for n >= 2000."""
    images = np.empty((n, size[0], size[1], channels), dtype="uint8") if keep_images else None
    kept = []
    progress = None
    if verbose and n >= 2000:
        import keras

        print(f"Decoding {n} images to {size[0]}x{size[1]}x{channels} ...", file=sys.stderr)
        progress = keras.utils.Progbar(n, stateful_metrics=None)
    with quiet_decoder():  # the progress bar draws on stdout, which is not captured
        for idx, batch in ds.batch(512).prefetch(AUTOTUNE):
            idx = idx.numpy()
            if keep_images:
                images[len(kept):len(kept) + len(idx)] = batch.numpy()
            kept.extend(idx.tolist())
            if progress:
                progress.add(len(idx))
    kept = np.asarray(kept, dtype="int64")
    return (images[: len(kept)] if keep_images else None), kept


def _skipped(paths: list[str], kept: np.ndarray, strict: bool) -> list:
    """(path, reason) for each file of `paths` not in `kept`; with `strict`, the first raises."""
    missing = np.setdiff1d(np.arange(len(paths)), kept)
    skipped = [(paths[i], "cannot be decoded as an image") for i in missing]
    if skipped and strict:
        raise CnnkitError(f"{skipped[0][0]} cannot be decoded as an image; remove it or drop --strict to skip such files.")
    return skipped


def read_image_files(paths: list[str], channels: int, size, strict: bool = False, verbose: bool = True):
    """Decodes `paths` in parallel into uint8 (N', h, w, channels).

    Returns:
        (images, kept, skipped): `kept` indexes the decoded files in `paths`, `skipped`
        lists (path, reason) for the others. With `strict`, the first failure raises.
    """
    images, kept = _drain(decode_files_dataset(paths, channels, size), len(paths), size, channels, True, verbose)
    return images, kept, _skipped(paths, kept, strict)


class ImageFiles:
    """Image files standing in for their decoded uint8 (N, h, w, c) array (data.cache disk or
    none): `len`, `shape`, `dtype` and indexing (which decodes the files picked) work as on
    the array; `dataset` streams the images, decoded again or read from the cache file.

    Build it with `scan_image_files`, which decodes every file once to find those that fail.
    """

    dtype = np.dtype("uint8")

    def __init__(self, paths: list[str], channels: int, size, cache: str = "none",
                 source_paths: list[str] | None = None, cache_file: str | None = None):
        self.paths = list(paths)
        self.channels, self.size, self.cache = channels, tuple(size), cache
        # The cache file was written from `source_paths` (which includes skipped files); it is
        # read back through the same pipeline, which tf.data requires.
        self.source_paths, self.cache_file = source_paths, cache_file

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple:
        return (len(self.paths), *self.size, self.channels)

    @property
    def nbytes_per_image(self) -> int:
        return int(np.prod(self.shape[1:]))

    def __getitem__(self, index) -> np.ndarray:
        """Decodes the files at `index` (an int, a slice or an index array) -> uint8 images."""
        if isinstance(index, (int, np.integer)):
            return self[[int(index)]][0]
        picked = self.paths[index] if isinstance(index, slice) else [self.paths[i] for i in np.asarray(index)]
        images, kept, _ = read_image_files(picked, self.channels, self.size, verbose=False)
        if len(kept) != len(picked):
            raise CnnkitError(f"{picked[int(np.setdiff1d(np.arange(len(picked)), kept)[0])]} could no longer be "
                              "decoded: was it changed during training?")
        return images

    def images(self) -> tf.data.Dataset:
        """A dataset of the uint8 images (h, w, c), in order: read from the disk cache, or decoded."""
        if self.cache_file is not None:
            ds = decode_files_dataset(self.source_paths, self.channels, self.size).cache(self.cache_file)
            # The scan counted the decodable files; with the count known, Keras starts each
            # epoch afresh instead of running into the end of the data.
            return ds.map(lambda i, image: image).apply(tf.data.experimental.assert_cardinality(len(self)))
        ds = tf.data.Dataset.from_tensor_slices(np.asarray(self.paths, dtype=object).astype(str))
        return ds.map(lambda p: decode_image_file(p, self.channels, self.size), num_parallel_calls=AUTOTUNE,
                      deterministic=True)

    def with_labels(self, y: np.ndarray, shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
        """A dataset of (uint8 image, label), the label of image i being y[i]; with `shuffle`, a
        new order each epoch: of all files for cache none, within a buffer of at most
        SHUFFLE_BUFFER_BYTES of images for the disk cache."""
        if self.cache_file is None:
            # Shuffle paths and labels together, before decoding.
            ds = tf.data.Dataset.from_tensor_slices((np.asarray(self.paths, dtype=object).astype(str), y))
            if shuffle:
                ds = ds.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
            return ds.map(lambda p, label: (decode_image_file(p, self.channels, self.size), label),
                          num_parallel_calls=AUTOTUNE, deterministic=not shuffle)
        ds = tf.data.Dataset.zip((self.images(), tf.data.Dataset.from_tensor_slices(y)))
        if shuffle:
            buffer = min(len(self), max(1024, SHUFFLE_BUFFER_BYTES // self.nbytes_per_image))
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        return ds


def new_cache_file() -> tuple[str, str]:
    """(folder, file prefix) for a `tf.data` cache under $CNNKIT_CACHE/decoded (or
    ~/.cache/cnnkit/decoded), a folder of its own."""
    from cnnkit.datasets.sources import cache_root

    folder = cache_root() / "decoded" / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder), str(folder / "images")


def scan_image_files(paths: list[str], channels: int, size, cache: str, strict: bool = False, verbose: bool = True):
    """Decodes every file of `paths` once, without keeping the images in memory: to find the
    files that fail, and for cache "disk" to write the cache file.

    Returns:
        (ImageFiles of the decodable files, kept indices into `paths`, skipped (path, reason)).
        A disk cache is removed when the ImageFiles is garbage-collected or at exit.
    """
    if cache not in ("disk", "none"):
        raise CnnkitError(f"data.cache must be one of {', '.join(CACHE_MODES)}. Received: {cache}")
    ds = decode_files_dataset(paths, channels, size)
    folder = cache_file = None
    if cache == "disk":
        folder, cache_file = new_cache_file()
        ds = ds.cache(cache_file)
    try:
        _, kept = _drain(ds, len(paths), size, channels, False, verbose)
        skipped = _skipped(paths, kept, strict)
    except BaseException:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    files = ImageFiles([paths[i] for i in kept], channels, size, cache, source_paths=list(paths), cache_file=cache_file)
    if folder:
        weakref.finalize(files, shutil.rmtree, folder, True)
    return files, kept, skipped


def arrays_to_images(x: np.ndarray, channels: int | None = None, size=None) -> np.ndarray:
    """An array of images (N, h, w) or (N, h, w, c), any numeric dtype -> uint8 (N, h', w', c').

    Floats in [0, 1] are scaled to [0, 255], so that the model's input matches decoded files.
    """
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise CnnkitError(f"Image arrays must be (N, h, w) or (N, h, w, c). Received shape {x.shape}.")
    if x.dtype != np.uint8:
        x = x.astype("float32")
        if x.size and x.max() <= 1.0:
            x = x * 255.0
        x = np.clip(np.round(x), 0, 255).astype("uint8")
    if channels is not None and x.shape[-1] != channels:
        if x.shape[-1] in (2, 4):  # drop alpha
            x = x[..., :-1]
        if channels == 3 and x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        elif channels == 1 and x.shape[-1] == 3:
            grey = x.astype("float32") @ np.asarray([0.2989, 0.5870, 0.1140], "float32")
            x = np.clip(np.round(grey), 0, 255).astype("uint8")[..., None]
    if size is not None and tuple(x.shape[1:3]) != tuple(size):
        out = []
        for start in range(0, len(x), 1024):
            chunk = tf.image.resize(tf.cast(x[start:start + 1024], tf.float32), size, antialias=True)
            out.append(np.clip(np.round(chunk.numpy()), 0, 255).astype("uint8"))
        x = np.concatenate(out) if out else np.zeros((0, *size, x.shape[-1]), "uint8")
    return x


def sample_beta(alpha: float, seeds) -> tf.Tensor:
    """One draw from Beta(alpha, alpha), through two Gamma draws; `seeds`: two stateless seeds
    (each a shape-(2,) int tensor)."""
    a = tf.random.stateless_gamma([], seed=seeds[0], alpha=alpha)
    b = tf.random.stateless_gamma([], seed=seeds[1], alpha=alpha)
    return a / (a + b)


def mix_batch(images: tf.Tensor, labels: tf.Tensor, mixup: float, cutmix: float, key=0):
    """MixUp (Zhang et al. 2018) or CutMix (Yun et al. 2019) of a batch with a shuffled copy.

    Args:
        images: (B, h, w, c) float. labels: (B, num_classes) one-hot or soft.
        mixup, cutmix: the Beta(alpha, alpha) parameters (0 disables one); with both set,
            each batch uses one of the two at random.
        key: an integer (int64 scalar) from which every random draw of the batch derives
            (stateless ops): the same key mixes the same way, whichever thread runs the call.

    Returns:
        (mixed images, mixed labels), the labels weighted by the share of each image.
    """
    key = tf.cast(key, tf.int64)
    seed = lambda i: tf.stack([key, tf.constant(i, tf.int64)])  # noqa: E731
    perm = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(images)[0]), seed=seed(0))
    other_x, other_y = tf.gather(images, perm), tf.gather(labels, perm)

    def do_mixup():
        lam = sample_beta(mixup, (seed(1), seed(2)))
        return lam * images + (1.0 - lam) * other_x, lam * labels + (1.0 - lam) * other_y

    def do_cutmix():
        lam = sample_beta(cutmix, (seed(1), seed(2)))
        h, w = tf.shape(images)[1], tf.shape(images)[2]
        cut = tf.sqrt(1.0 - lam)
        ch, cw = tf.cast(cut * tf.cast(h, tf.float32), tf.int32), tf.cast(cut * tf.cast(w, tf.float32), tf.int32)
        cy = tf.random.stateless_uniform([], seed(3), 0, h, dtype=tf.int32)
        cx = tf.random.stateless_uniform([], seed(4), 0, w, dtype=tf.int32)
        y0, y1 = tf.clip_by_value(cy - ch // 2, 0, h), tf.clip_by_value(cy + ch // 2, 0, h)
        x0, x1 = tf.clip_by_value(cx - cw // 2, 0, w), tf.clip_by_value(cx + cw // 2, 0, w)
        rows = tf.logical_and(tf.range(h) >= y0, tf.range(h) < y1)
        cols = tf.logical_and(tf.range(w) >= x0, tf.range(w) < x1)
        box = tf.cast(tf.logical_and(rows[:, None], cols[None, :]), images.dtype)[None, :, :, None]
        share = 1.0 - tf.cast((y1 - y0) * (x1 - x0), tf.float32) / tf.cast(h * w, tf.float32)
        return images * (1.0 - box) + other_x * box, share * labels + (1.0 - share) * other_y

    if mixup and cutmix:
        return tf.cond(tf.random.stateless_uniform([], seed(5)) < 0.5, do_mixup, do_cutmix)
    return do_mixup() if mixup else do_cutmix()


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, training: bool, seed: int = 0,
                 num_classes: int | None = None, mixup: float = 0.0, cutmix: float = 0.0) -> tf.data.Dataset:
    """(x uint8 (N, h, w, c) or ImageFiles, y (N,)) -> batches of (images, labels), shuffled
    each epoch when `training`, prefetched.

    Images stay uint8 and labels integers, unless `num_classes` is given: then labels are
    one-hot float32 (for MixUp/CutMix), images float32, and training batches are mixed.
    """
    if isinstance(x, ImageFiles):
        ds = x.with_labels(y, shuffle=training, seed=seed)
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if training:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if num_classes:
        ds = ds.map(lambda a, b: (tf.cast(a, tf.float32), tf.one_hot(b, num_classes)), num_parallel_calls=AUTOTUNE)
        if training and (mixup or cutmix):
            # each batch mixed from its own number of a seeded stream: the same seed mixes alike
            keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            ds = tf.data.Dataset.zip(ds, keys).map(lambda pair, key: mix_batch(*pair, mixup, cutmix, key),
                                                   num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)
