"""Image decoding: every mode and format, broken files skipped, conversion to the task's channels and size."""
from pathlib import Path

import numpy as np
import pytest

from cnnkit.datasets import image
from cnnkit.errors import CnnkitError
from tests.conftest import write_image


@pytest.fixture
def zoo(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    grey = rng.integers(0, 255, (20, 30), dtype=np.uint8)
    files = {
        "rgb.jpg": write_image(tmp_path / "rgb.jpg", rgb),
        "grey.png": write_image(tmp_path / "grey.png", grey),
        "rgba.png": write_image(tmp_path / "rgba.png", np.dstack([rgb, np.full((20, 30), 128, np.uint8)])),
        "palette.gif": write_image(tmp_path / "palette.gif", rgb, fmt="GIF"),
        "rgb.bmp": write_image(tmp_path / "rgb.bmp", rgb),
        "grey16.png": write_image(tmp_path / "grey16.png", grey.astype(np.uint16) * 257),
        "large.png": write_image(tmp_path / "large.png", np.zeros((3000, 4000, 3), np.uint8)),
    }
    from PIL import Image

    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    files["palette.png"] = tmp_path / "palette.png"
    # TIFF, decoded by Pillow: LZW-compressed RGB, 16-bit grey (microscopy), CMYK (print)
    Image.fromarray(rgb).save(tmp_path / "rgb.tif", compression="tiff_lzw")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "grey16.tiff")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.tif")
    files.update({name: tmp_path / name for name in ("rgb.tif", "grey16.tiff", "cmyk.tif")})
    return files


@pytest.mark.parametrize("channels", [1, 3])
def test_every_mode_decodes_to_the_task_shape(zoo, channels):
    paths = [str(p) for p in zoo.values()]
    x, kept, skipped = image.read_image_files(paths, channels, (16, 16))
    assert skipped == [] and len(kept) == len(paths)
    assert x.shape == (len(paths), 16, 16, channels) and x.dtype == np.uint8


def test_webp_files_are_read_from_class_folders_with_their_pixels(tmp_path):
    """WebP (common in downloaded image folders) is one of the image extensions; a lossless
    file decodes to its exact pixels."""
    from PIL import Image

    from cnnkit.datasets import load_source

    rgb = np.random.default_rng(1).integers(0, 255, (12, 10, 3), dtype=np.uint8)
    for c in ("cat", "dog"):
        (tmp_path / "pets" / c).mkdir(parents=True)
        Image.fromarray(rgb).save(tmp_path / "pets" / c / "a.webp", lossless=True)
    data = load_source(str(tmp_path / "pets"), extensions=image.IMAGE_EXTENSIONS)
    assert data.skipped == [] and [Path(p).suffix for p in data.splits["train"].x] == [".webp", ".webp"]
    x, kept, skipped = image.read_image_files(list(data.splits["train"].x), 3, (12, 10))
    assert skipped == [] and np.array_equal(x[0], rgb)


def test_tiff_files_decode_to_their_pixels(tmp_path, zoo):
    """TIFF (microscopy, scanners, remote sensing) is read through Pillow: 8-bit RGB exactly,
    16-bit grey scaled to 8 bits as a 16-bit PNG is, float grey from 0-1, the first page of a
    multi-page file. Before, a folder of TIFF files was refused ("not decoded": convert them)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    grey = rng.integers(0, 255, (20, 30), dtype=np.uint8)
    Image.fromarray(grey.astype(np.float32) / 255).save(tmp_path / "float.tif")
    pages = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    pages[0].save(tmp_path / "pages.tif", save_all=True, append_images=pages[1:])
    Image.fromarray(grey.astype(np.float32) * 4).save(tmp_path / "float-big.tif")
    (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
    names = ["rgb.tif", "rgb.jpg", "grey16.tiff", "grey16.png", "float.tif", "pages.tif", "float-big.tif", "broken.tif"]
    paths = [str(zoo.get(n, tmp_path / n)) for n in names]
    x, kept, skipped = image.read_image_files(paths, 3, (20, 30))
    assert kept.tolist() == list(range(6))
    assert [(Path(p).name, why) for p, why in skipped] == [("float-big.tif", "cannot be decoded as an image"),
                                                           ("broken.tif", "cannot be decoded as an image")]
    assert np.array_equal(x[0], rgb) and np.array_equal(x[5], rgb)  # the first page
    assert np.array_equal(x[2], x[3]) and np.array_equal(x[2][..., 0], grey)  # as the 16-bit PNG
    assert np.abs(x[4][..., 0].astype(int) - grey).max() <= 1
    grey_x, _, _ = image.read_image_files([paths[2]], 1, (20, 30))
    assert np.array_equal(grey_x[0, ..., 0], grey)
    assert image.probe_images(paths[:3]) == (20, 30, 3) and image.probe_images([paths[2]]) == (20, 30, 1)
    assert image.probe_images([paths[7], paths[6], paths[2]]) == (20, 30, 1)  # the broken ones passed over


def test_heic_photos_decode_with_pillow_heif(tmp_path):
    """HEIC (iPhones' photo format) is an image extension when pillow-heif is installed (the
    `heic` extra; the dev install has it) and decodes through Pillow like TIFF."""
    pytest.importorskip("pillow_heif", reason="the heic extra is not installed")
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    assert ".heic" in image.IMAGE_EXTENSIONS and ".heif" in image.IMAGE_EXTENSIONS
    ramp = np.broadcast_to(np.linspace(0, 250, 30, dtype=np.uint8)[None, :, None], (20, 30, 3)).copy()
    Image.fromarray(ramp).save(tmp_path / "photo.heic", quality=95)
    (tmp_path / "broken.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    x, kept, skipped = image.read_image_files([str(tmp_path / "photo.heic"), str(tmp_path / "broken.HEIC")], 3, (20, 30))
    assert kept.tolist() == [0] and [Path(p).name for p, _ in skipped] == ["broken.HEIC"]
    assert np.abs(x[0].astype(int) - ramp).mean() < 3  # lossy, close


def test_broken_files_are_skipped_or_fail_with_strict(tmp_path, zoo):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    data = zoo["rgb.jpg"].read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    paths = [str(zoo["rgb.jpg"]), str(tmp_path / "empty.png"), str(tmp_path / "corrupt.jpg"), str(zoo["grey.png"]),
             str(tmp_path / "notes.txt")]
    (tmp_path / "notes.txt").write_text("hello")
    x, kept, skipped = image.read_image_files(paths, 3, (8, 8))
    assert kept.tolist() == [0, 3]
    assert {p for p, _ in skipped} == {paths[1], paths[2], paths[4]}
    with pytest.raises(CnnkitError, match="empty.png cannot be decoded.*--strict"):
        image.read_image_files(paths, 3, (8, 8), strict=True)


def test_grey_to_rgb_and_back_keeps_values(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    p = write_image(tmp_path / "g.png", grey)
    x, _, _ = image.read_image_files([str(p)], 3, (8, 8))
    assert np.array_equal(x[0, ..., 0], grey) and np.array_equal(x[0, ..., 2], grey)
    x1, _, _ = image.read_image_files([str(p)], 1, (8, 8))
    assert np.array_equal(x1[0, ..., 0], grey)


def test_probe_detects_grey_stored_as_rgb(tmp_path):
    grey = np.random.default_rng(0).integers(0, 255, (10, 12), dtype=np.uint8)
    paths = [str(write_image(tmp_path / f"{i}.jpg", np.dstack([grey] * 3), fmt="PNG")) for i in range(3)]
    assert image.probe_images(paths) == (10, 12, 1)
    colour = write_image(tmp_path / "c.png", np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8))
    assert image.probe_images(paths + [str(colour)])[2] == 3


def test_arrays_to_images():
    floats = np.random.default_rng(0).random((4, 6, 6)).astype("float32")
    out = image.arrays_to_images(floats, channels=3, size=(12, 12))
    assert out.shape == (4, 12, 12, 3) and out.dtype == np.uint8 and out.max() > 200
    rgba = np.zeros((2, 5, 5, 4), np.uint8)
    assert image.arrays_to_images(rgba, channels=1).shape == (2, 5, 5, 1)
    with pytest.raises(CnnkitError, match="must be \\(N, h, w\\)"):
        image.arrays_to_images(np.zeros((3, 4)))


def test_make_dataset_batches_and_shuffles():
    x = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    y = np.arange(10)
    batches = list(image.make_dataset(x, y, 4, training=False))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    order = np.concatenate([b[1].numpy() for b in image.make_dataset(x, y, 4, training=True, seed=1)])
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))


@pytest.mark.parametrize("mixup,cutmix", [(0.2, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_mixup_cutmix_keep_label_mass_and_mix(mixup, cutmix):
    import tensorflow as tf

    tf.random.set_seed(0)
    x = np.stack([np.full((8, 8, 1), 10 * i, np.uint8) for i in range(6)])
    y = np.arange(6)  # one class per image: any real mix gives a soft label
    ds = image.make_dataset(x, y, 6, training=True, num_classes=6, mixup=mixup, cutmix=cutmix).repeat(10)
    soft = False
    for images, labels in ds:
        assert images.dtype == tf.float32 and labels.shape == (6, 6)
        np.testing.assert_allclose(labels.numpy().sum(1), 1.0, atol=1e-5)
        soft = soft or bool((labels.numpy().max(1) < 1.0 - 1e-6).any())
    assert soft, "ten batches and no image was mixed"
    y = np.arange(6) % 3
    val = next(iter(image.make_dataset(x, y, 6, training=False, num_classes=3, mixup=mixup, cutmix=cutmix)))
    assert set(np.unique(val[1].numpy())) <= {0.0, 1.0}  # evaluation batches are never mixed


def test_cutmix_label_share_matches_pasted_area():
    import tensorflow as tf

    a = tf.zeros((2, 16, 16, 1))
    a = tf.tensor_scatter_nd_update(a, [[1]], tf.ones((1, 16, 16, 1)))
    labels = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    pasted = []
    for key in range(12):
        mixed, soft = image.mix_batch(a, labels, 0.0, 1.0, key=key)
        # image 0's share of class 1 is the fraction of its pixels that came from image 1 (0 when paired with itself)
        frac = float(tf.reduce_mean(mixed[0]))
        assert float(soft[0, 1]) == pytest.approx(frac, abs=1e-5)
        pasted.append(frac)
    assert max(pasted) > 0


def test_mixed_batches_are_the_same_for_the_same_seed():
    """Batches are mixed in parallel calls, each from its own key of a seeded stream: the same
    seed gives the same batches (a stateful draw had depended on thread order), each epoch anew."""
    x = np.random.default_rng(0).integers(0, 255, (64, 8, 8, 3)).astype("uint8")
    y = np.arange(64) % 4

    def two_epochs(seed):
        ds = image.make_dataset(x, y, 8, training=True, seed=seed, num_classes=4, mixup=0.4, cutmix=1.0)
        return [np.concatenate([b.numpy() for b, _ in ds]) for _ in range(2)]

    first, again = two_epochs(5), two_epochs(5)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], first[1])


@pytest.mark.parametrize("cache", ["disk", "none"])
def test_streamed_files_equal_the_decoded_array(tmp_path, zoo, cache):
    """data.cache disk/none: the same images, labels and skipped files as in memory, without the array."""
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    paths = [str(p) for p in zoo.values()] + [str(tmp_path / "corrupt.jpg")]
    x, kept, skipped = image.read_image_files(paths, 3, (16, 16))
    files, kept2, skipped2 = image.scan_image_files(paths, 3, (16, 16), cache)
    assert kept2.tolist() == kept.tolist() and skipped2 == skipped
    assert len(files) == len(x) and files.shape == x.shape and files.dtype == x.dtype
    assert np.array_equal(files[[0, 2]], x[[0, 2]]) and np.array_equal(files[1], x[1])
    y = np.arange(len(x))
    for epoch in range(2):  # the second epoch reads the disk cache back
        streamed = np.concatenate([b.numpy() for b in files.images().batch(3)])
        assert np.array_equal(streamed, x)
    batches = list(image.make_dataset(files, y, 4, training=True, seed=1))
    images = np.concatenate([b[0].numpy() for b in batches])
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert sorted(labels.tolist()) == y.tolist()
    assert all(np.array_equal(img, x[label]) for img, label in zip(images, labels))
    if cache == "disk":
        folder = Path(files.cache_file).parent
        assert any(folder.iterdir())
        del files, batches
        import gc

        gc.collect()
        assert not folder.exists(), "the disk cache is removed with the data"


def test_scan_with_strict_fails_and_leaves_no_cache(tmp_path, zoo, monkeypatch):
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "empty.png").write_bytes(b"")
    paths = [str(zoo["rgb.jpg"]), str(tmp_path / "empty.png")]
    with pytest.raises(CnnkitError, match="empty.png cannot be decoded.*--strict"):
        image.scan_image_files(paths, 3, (8, 8), "disk", strict=True)
    assert not any((tmp_path / "cache" / "decoded").iterdir())
    with pytest.raises(CnnkitError, match="data.cache must be one of memory, disk, none"):
        image.scan_image_files(paths, 3, (8, 8), "ram")


def test_libjpegs_nameless_line_for_a_broken_file_is_dropped(tmp_path, capfd, monkeypatch):
    """libjpeg prints "Improper call to JPEG library in state 201" for a truncated JPEG, without
    the file's name, next to cnnkit's own "Skipped PATH"; it is dropped, other stderr lines stay
    (all of them when the user set TF_CPP_MIN_LOG_LEVEL: native_logs.FILTER false)."""
    from cnnkit import native_logs

    rgb = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    whole = write_image(tmp_path / "whole.jpg", rgb, fmt="JPEG")
    (tmp_path / "cut.jpg").write_bytes(whole.read_bytes()[:300])
    paths = [str(whole), str(tmp_path / "cut.jpg")]
    for shown in (True, False):
        monkeypatch.setattr(native_logs, "FILTER", not shown)
        _, kept, skipped = image.read_image_files(paths, 3, (8, 8))
        assert kept.tolist() == [0] and skipped == [(paths[1], "cannot be decoded as an image")]
        assert ("Improper call to JPEG library" in capfd.readouterr().err) == shown
    assert native_logs.is_decoder_line("Improper call to JPEG library in state 201\n")
    assert not native_logs.is_decoder_line("Corrupt JPEG data: 12 extraneous bytes before marker 0xd9\n")
