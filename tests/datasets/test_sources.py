"""Every data source: folders, split folders, archives (and their safety), CSV/TSV, npz, tfds, builtin."""
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnkit.datasets import Split, ensure_splits, load_source
from cnnkit.datasets.image import IMAGE_EXTENSIONS
from cnnkit.errors import CnnkitError
from tests.conftest import SHARED_DATA


def test_a_folder_of_undecoded_images_says_how_to_convert_them(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        (tmp_path / c / "0.jp2").write_bytes(b"\x00\x00\x00\x0cjP  ")
    with pytest.raises(CnnkitError, match=r"holds \.jp2 images, a format that is not decoded.*mogrify -format png"):
        load_source(str(tmp_path), extensions=IMAGE_EXTENSIONS)
    # HEIC without pillow-heif installed: the error names the extra that reads them
    for c in ("a", "b"):
        (tmp_path / c / "0.jp2").rename(tmp_path / c / "0.heic")
    with pytest.raises(CnnkitError, match=r"holds \.heic images.*pip install \"cnnkit\[heic\]\""):
        load_source(str(tmp_path), extensions=tuple(e for e in IMAGE_EXTENSIONS if e not in (".heic", ".heif")))


def test_class_folders(image_folder):
    (image_folder / "cat" / "notes.txt").write_text("not an image")
    data = load_source(str(image_folder), extensions=IMAGE_EXTENSIONS)
    assert data.kind == "files" and data.class_names == ["cat", "dog", "fox"]
    assert len(data.splits["train"]) == 36 and list(data.splits) == ["train"]
    assert np.bincount(data.splits["train"].y).tolist() == [12, 12, 12]
    assert [p for p, _ in data.skipped] == [str(image_folder / "cat" / "notes.txt")]


def test_listing_a_large_class_folder_is_linear(tmp_path):
    """20 000 files in a class with one stray file: listed in well under a second (the skipped-file
    check was once quadratic and took minutes on 50 000-file CIFAR-sized class folders)."""
    import time

    for c, n in (("a", 20_000), ("b", 3)):
        (tmp_path / c).mkdir()
        for i in range(n):
            (tmp_path / c / f"{i}.png").touch()
    (tmp_path / "a" / "README").touch()
    start = time.perf_counter()
    data = load_source(str(tmp_path), extensions=IMAGE_EXTENSIONS)
    assert time.perf_counter() - start < 3.0
    assert len(data.splits["train"]) == 20_003 and [p for p, _ in data.skipped] == [str(tmp_path / "a" / "README")]


def test_split_folders(tmp_path, image_folder):
    root = tmp_path / "splits"
    for split in ("train", "test"):
        for c in ("cat", "dog", "fox"):
            (root / split / c).mkdir(parents=True)
            for f in list((image_folder / c).glob("*.png"))[:4]:
                (root / split / c / f.name).write_bytes(f.read_bytes())
    data = load_source(str(root), extensions=IMAGE_EXTENSIONS)
    assert set(data.splits) == {"train", "test"} and len(data.splits["test"]) == 12


def test_empty_and_single_class_are_errors(tmp_path, image_folder):
    (image_folder / "empty").mkdir()
    with pytest.raises(CnnkitError, match=r"Class folder .*empty has no"):
        load_source(str(image_folder), extensions=IMAGE_EXTENSIONS)
    single = tmp_path / "single" / "only"
    single.mkdir(parents=True)
    (single / "a.png").write_bytes(b"x")
    with pytest.raises(CnnkitError, match="single class folder"):
        load_source(str(tmp_path / "single"), extensions=IMAGE_EXTENSIONS)


def test_missing_source_names_the_choices(tmp_path):
    with pytest.raises(CnnkitError, match="does not exist. Give a folder"):
        load_source(str(tmp_path / "nope"))
    with pytest.raises(CnnkitError, match="Builtin sources: builtin:digits"):
        load_source("builtin:nothing")


def _tar(path, image_folder, extra=None):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(image_folder, arcname="pets")
        if extra:
            extra(tar)
    return path


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_archives_extract_into_cache(tmp_path, image_folder, kind):
    path = tmp_path / f"pets.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            for f in image_folder.rglob("*.png"):
                zf.write(f, f"pets/{f.relative_to(image_folder)}")
    else:
        _tar(path, image_folder)
    data = load_source(str(path), extensions=IMAGE_EXTENSIONS)
    assert data.class_names == ["cat", "dog", "fox"] and len(data.splits["train"]) == 36
    assert "cnnkit-cache" in data.splits["train"].x[0]
    again = load_source(str(path), extensions=IMAGE_EXTENSIONS)  # extracted once, reused
    assert again.splits["train"].x == data.splits["train"].x


def test_a_zip_made_on_a_mac_and_system_files_are_not_data(tmp_path, image_folder):
    """Finder's "Compress" adds __MACOSX/ with a `._NAME` per file (it was taken for a class
    folder: "Class folder .../__MACOSX has no .jpg/... files"); Windows adds Thumbs.db; Jupyter
    adds .ipynb_checkpoints/. None of them is data, in an archive or a folder given to predict."""
    from cnnkit.api import expand_inputs

    path = tmp_path / "pets.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in image_folder.rglob("*.png"):
            rel = f.relative_to(image_folder)
            zf.write(f, f"pets/{rel}")
            zf.writestr(f"__MACOSX/pets/{rel.parent}/._{rel.name}", b"\x00\x05\x16\x07 resource fork")
        zf.writestr("pets/cat/Thumbs.db", b"thumbnail cache")
        zf.writestr("pets/dog/.ipynb_checkpoints/0-checkpoint.png", b"not read")
    data = load_source(str(path), extensions=IMAGE_EXTENSIONS)
    assert data.class_names == ["cat", "dog", "fox"] and len(data.splits["train"]) == 36 and not data.skipped
    root = Path(data.splits["train"].x[0]).parents[2]  # the extracted archive: pets/ and __MACOSX/
    assert (root / "__MACOSX").is_dir()
    assert len(expand_inputs([str(root)], IMAGE_EXTENSIONS)) == 36


def test_archive_refuses_traversal_and_links(tmp_path, image_folder):
    def evil_member(tar):
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))

    with pytest.raises(CnnkitError, match="outside its folder"):
        load_source(str(_tar(tmp_path / "evil.tar.gz", image_folder, evil_member)))
    assert not (tmp_path / "escape.txt").exists()

    def link_member(tar):
        info = tarfile.TarInfo("pets/cat/link.png")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)

    with pytest.raises(CnnkitError, match="contains a link"):
        load_source(str(_tar(tmp_path / "link.tar.gz", image_folder, link_member)))

    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("../../escape.txt", "bad")
    with pytest.raises(CnnkitError, match="outside its folder"):
        load_source(str(zpath))


def test_empty_texts_of_a_table_are_skipped_by_line(tmp_path):
    """An empty or blank text cell (also of a multi-label table) is skipped naming its line in
    the file, or stops the run with --strict."""
    path = tmp_path / "t.csv"
    path.write_text('text,label\ngood,pos\n,neg\n"  ",pos\nbad,neg\n', encoding="utf-8")
    data = load_source(str(path))
    assert data.splits["train"].x == ["good", "bad"]
    assert data.skipped == [(f"{path}:3", "empty text"), (f"{path}:4", "empty text")]
    with pytest.raises(CnnkitError, match=":3 has an empty text.*drop --strict"):
        load_source(str(path), strict=True)
    multi = tmp_path / "m.csv"
    multi.write_text('text,labels\ngood,a|b\n,a\nbad,b\n', encoding="utf-8")
    assert load_source(str(multi)).skipped == [(f"{multi}:3", "empty text")]


def test_csv_and_tsv(tmp_path):
    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text('text,label\n"good, really",pos\nbad,neg\nfine,\nmeh,neg\n', encoding="utf-8")
    data = load_source(str(csv_path))
    assert data.kind == "texts" and data.class_names == ["neg", "pos"]
    assert data.splits["train"].x == ["good, really", "bad", "meh"]
    assert data.splits["train"].y.tolist() == [1, 0, 0]
    assert data.skipped == [(f"{csv_path}:4", "no label")]
    with pytest.raises(CnnkitError, match=":4 has no label"):
        load_source(str(csv_path), strict=True)
    tsv = tmp_path / "q.tsv"
    tsv.write_text("sentence\tcat\nwho?\tHUM\nwhere?\tLOC\n")
    data = load_source(str(tsv), text_column="sentence", label_column="cat")
    assert data.class_names == ["HUM", "LOC"]
    with pytest.raises(CnnkitError, match="no column 'label'.*data.label_column"):
        load_source(str(tsv))
    # no `text` column but a label: the longest column that is not numbers is the text, and says so
    named = tmp_path / "named.csv"
    named.write_text("id,review,stars,label\n1,a fine film indeed,4.5,pos\n2,dull,1,neg\n")
    data = load_source(str(named))
    assert data.splits["train"].x == ["a fine film indeed", "dull"]
    named.write_text("id;review;stars;label\n1;a fine film indeed;4,5;pos\n2;dull;1;neg\n")  # a spreadsheet's semicolons
    assert load_source(str(named)).splits["train"].x == ["a fine film indeed", "dull"]
    # A file without a header line: its first row is shown as the "columns" and a header suggested.
    headless = tmp_path / "headless.tsv"
    headless.write_text("HUM\tWho wrote the first of the many novels that this question is about ?\nLOC\twhere?\n")
    with pytest.raises(CnnkitError, match=r"'HUM', 'Who wrote the first of the many novel\.\.\.'.*"
                                          r"no header line: add one .* `label<TAB>text`"):
        load_source(str(headless))


def test_json_lines_and_parquet_tables(tmp_path):
    """Hugging Face datasets save JSON lines and Parquet: read like a CSV (fields named as
    columns, a list label makes the file multi-label, empty texts and missing labels skipped
    and named by line or row)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"sentence": "a fine film", "label": "pos", "idx": 0}, {"sentence": "dull", "label": "neg", "idx": 1},
            {"sentence": "", "label": "neg", "idx": 2}, {"sentence": "meh", "label": None, "idx": 3},
            {"sentence": 7, "label": 1, "idx": 4}]
    lines = tmp_path / "train.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    data = load_source(str(lines), text_column="sentence")
    assert data.kind == "texts" and data.class_names == ["1", "neg", "pos"]
    assert data.splits["train"].x == ["a fine film", "dull", "7"]
    assert data.skipped == [(f"{lines}:3", "empty text"), (f"{lines}:4", "no label")]
    pq.write_table(pa.Table.from_pylist(rows[:4]), tmp_path / "train.parquet")  # a Parquet column has one type
    data = load_source(str(tmp_path / "train.parquet"), text_column="sentence")
    assert data.splits["train"].x == ["a fine film", "dull"] and data.skipped[0] == (f"{tmp_path / 'train.parquet'}:row 3", "empty text")
    with pytest.raises(CnnkitError, match="has no field 'text' \\(the first example's fields: sentence, label, idx\\)"):
        load_source(str(lines))
    tags = tmp_path / "tags.jsonl"
    tags.write_text('{"text": "goal scored", "label": ["sport"]}\n{"text": "vote and goal", "label": ["politics", "sport"]}\n'
                    '{"text": "rain", "label": []}\n')
    data = load_source(str(tags))
    assert data.multi_label and data.class_names == ["politics", "sport"]
    assert data.splits["train"].y.tolist() == [[0, 1], [1, 1], [0, 0]]
    (tmp_path / "broken.jsonl").write_text('{"text": "fine", "label": "pos"}\ntext,label\n')
    with pytest.raises(CnnkitError, match="broken.jsonl:2 is not a JSON object"):
        load_source(str(tmp_path / "broken.jsonl"))


def test_fasttext_files(tmp_path):
    """fastText's format (`__label__X text`, one example a line): as a file, as split files of a
    folder, multi-label when a line has several labels; other .txt files are refused with what
    to give instead."""
    train = tmp_path / "train.txt"
    train.write_text("__label__pos a fine film\n\n__label__neg  dull ,  slow\nno label here\n__label__pos great\n")
    data = load_source(str(train))
    assert data.kind == "texts" and data.class_names == ["neg", "pos"]
    assert data.splits["train"].x == ["a fine film", "dull , slow", "great"]
    assert data.splits["train"].y.tolist() == [1, 0, 1]
    assert data.skipped == [(f"{train}:4", "no label")]
    (tmp_path / "test.txt").write_text("__label__neg boring\n")
    (tmp_path / "notes.txt").write_text("not a split\n")
    data = load_source(str(tmp_path))
    assert set(data.splits) == {"train", "test"} and data.splits["test"].x == ["boring"]
    tags = tmp_path / "tags.txt"
    tags.write_text("__label__sport goal scored\n__label__politics __label__sport vote and goal\nrain\n")
    data = load_source(str(tags))
    assert data.multi_label and data.class_names == ["politics", "sport"]
    assert data.splits["train"].y.tolist() == [[0, 1], [1, 1], [0, 0]]
    with pytest.raises(CnnkitError, match="notes.txt: a .txt file is read as fastText's format.*folder per class"):
        load_source(str(tmp_path / "notes.txt"))
    (tmp_path / "reviews.xlsx").write_bytes(b"PK")
    with pytest.raises(CnnkitError, match="reviews.xlsx is a spreadsheet workbook.*Save As > CSV UTF-8"):
        load_source(str(tmp_path / "reviews.xlsx"))


def test_a_test_table_without_labels_is_left_out(tmp_path, capsys):
    """Kaggle's layout: train.csv with labels, test.csv without (the inputs to predict on). Before:
    "test.csv has no column 'label'" and no training at all."""
    (tmp_path / "train.csv").write_text("id,text,label\n1,good,pos\n2,bad,neg\n3,fine,pos\n")
    (tmp_path / "test.csv").write_text("id,text\n4,great\n")
    data = load_source(str(tmp_path))
    assert set(data.splits) == {"train"} and len(data.splits["train"]) == 3
    assert "test.csv has no 'label' column: not used as the test split" in capsys.readouterr().err
    (tmp_path / "train.csv").write_text("id,text\n1,good\n")
    with pytest.raises(CnnkitError, match="train.csv has no column 'label'"):
        load_source(str(tmp_path))


def test_spreadsheet_exports_are_read(tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark, which was read into the first column's
    name ("no column 'text'" of a file that visibly has one); in locales with a decimal comma it
    separates cells by semicolons; hand-written headers have spaces after the commas."""
    bom = tmp_path / "bom.csv"
    bom.write_bytes("text,label\ngood,pos\nbad,neg\n".encode("utf-8-sig"))
    assert load_source(str(bom)).splits["train"].x == ["good", "bad"]
    semi = tmp_path / "semi.csv"
    semi.write_bytes("id;text;label\n1;good, really;pos\n2;bad;neg\n".encode("utf-8-sig"))
    data = load_source(str(semi))
    assert data.splits["train"].x == ["good, really", "bad"] and data.class_names == ["neg", "pos"]
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("text, label\ngood, pos\nbad, neg\n", encoding="utf-8")
    assert load_source(str(spaced)).class_names == ["neg", "pos"]
    commas = tmp_path / "commas.csv"  # semicolons in the texts of a comma-separated file stay text
    commas.write_text('text,label\n"good; really",pos\nbad;sad,neg\n', encoding="utf-8")
    assert load_source(str(commas)).splits["train"].x == ["good; really", "bad;sad"]
    labels = tmp_path / "multi.csv"
    labels.write_text("text;labels\nboth;a|b\none;a\n", encoding="utf-8")
    assert load_source(str(labels)).multi_label
    cased = tmp_path / "cased.csv"  # `Text`, `Label`: the columns a spreadsheet user names
    cased.write_text("Text;Labels\nboth;a|b\none;a\n", encoding="utf-8")
    data = load_source(str(cased))
    assert data.multi_label and data.splits["train"].x == ["both", "one"]


def test_csv_rows_are_named_by_their_first_line(tmp_path):
    """A quoted text over several lines shifts the rows after it: a skipped row is still
    named by its line in the file."""
    path = tmp_path / "docs.csv"
    path.write_text('text,label\n"first line\nsecond line\nthird",a\nno label here,\nshort,b\n', encoding="utf-8")
    data = load_source(str(path))
    assert data.splits["train"].x == ["first line\nsecond line\nthird", "short"]
    assert data.skipped == [(f"{path}:5", "no label")]


def test_csv_unclosed_quote_is_explained(tmp_path, capsys):
    """An opening quote never closed swallows the rest of the file into one text: a run with
    too few labels says which rows were skipped and why, a long swallowed span is warned of."""
    path = tmp_path / "bad.csv"
    path.write_text('text,label\n"unclosed,a\nfine,b\n', encoding="utf-8")
    with pytest.raises(CnnkitError, match=r"0 label\(s\) \(1 row\(s\) skipped.*bad.csv:2; a quote that is never closed"):
        load_source(str(path))
    rows = "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(300))
    path.write_text('text,label\nkept,a\nother,b\n"unclosed,a\n' + rows, encoding="utf-8")
    data = load_source(str(path))
    assert len(data.splits["train"].x) == 2  # the 300 rows after the quote are lost in its cell
    err = capsys.readouterr().err
    assert f"{path}:4: one row spans 301 lines" in err and "is never closed" in err
    with pytest.raises(CnnkitError, match=r"bad.csv:4: one row spans 301 lines.*close or remove the quote; "
                                          r"or drop --strict"):
        load_source(str(path), strict=True)
    path.write_text('text,label\nkept,a\nother,b\n' + rows, encoding="utf-8")
    load_source(str(path))
    assert "spans" not in capsys.readouterr().err


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\xe9,a\nb,b\n".encode("latin-1"))
    with pytest.raises(CnnkitError, match="not UTF-8 text.*re-save it as UTF-8, or give its encoding, e.g. "
                                          "--set data.encoding=cp1252"):
        load_source(str(path))
    assert load_source(str(path), encoding="cp1252").splits["train"].x == ["caf\xe9", "b"]


def test_folder_of_split_csvs():
    data = load_source(str(SHARED_DATA / "text" / "trec"))
    assert set(data.splits) == {"train", "test"} and len(data.splits["test"]) == 500
    assert data.class_names == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


def test_unseen_label_in_test_csv(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\n")
    (tmp_path / "test.csv").write_text("text,label\nc,z\n")
    with pytest.raises(CnnkitError, match="label\\(s\\) z that training never saw"):
        load_source(str(tmp_path))


def test_npz_mnist_slice(tmp_path):
    rng = np.random.default_rng(0)
    with np.load(SHARED_DATA / "image" / "mnist.npz") as z:  # the file is sorted by label: sample at random
        tr, te = rng.choice(60000, 100, replace=False), rng.choice(10000, 20, replace=False)
        np.savez(tmp_path / "m.npz", x_train=z["x_train"][tr], y_train=z["y_train"][tr],
                 x_test=z["x_test"][te], y_test=z["y_test"][te])
    data = load_source(str(tmp_path / "m.npz"))
    assert data.kind == "arrays" and data.splits["train"].x.shape == (100, 28, 28)
    assert data.class_names == [str(i) for i in range(10)] and len(data.splits["test"]) == 20
    np.savez(tmp_path / "bad.npz", images=np.zeros(3))
    with pytest.raises(CnnkitError, match="must hold x_train and y_train"):
        load_source(str(tmp_path / "bad.npz"))


def test_npz_with_one_hot_labels_or_channels_first_images(tmp_path, capsys):
    """Keras' `to_categorical` labels (N, K) were flattened to N x K labels (an IndexError when
    splitting); PyTorch's channels-first images (N, 3, H, W) reached the model as (N, 3, H) images
    of W channels (a ValueError deep in Keras)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(30, 3, 16, 12), dtype=np.uint8)
    y = np.arange(30) % 3
    np.savez(tmp_path / "torch.npz", x_train=x[:24], y_train=np.eye(3)[y[:24]], x_test=x[24:], y_test=y[24:, None])
    data = load_source(str(tmp_path / "torch.npz"))
    assert data.splits["train"].x.shape == (24, 16, 12, 3) and data.splits["train"].y.tolist() == y[:24].tolist()
    assert data.splits["test"].y.tolist() == y[24:].tolist() and data.class_names == ["0", "1", "2"]
    np.testing.assert_array_equal(data.splits["train"].x[5, :, :, 2], x[5, 2])
    assert "channels first (PyTorch's layout): read as (24, 16, 12, 3)" in capsys.readouterr().err
    np.savez(tmp_path / "multi.npz", x_train=x, y_train=np.ones((30, 3)))
    with pytest.raises(CnnkitError, match=r"y_train has shape \(30, 3\) but its rows are not one-hot"):
        load_source(str(tmp_path / "multi.npz"))
    np.savez(tmp_path / "short.npz", x_train=x, y_train=y[:20])
    with pytest.raises(CnnkitError, match="x_train holds 30 examples but y_train 20 labels"):
        load_source(str(tmp_path / "short.npz"))


def test_a_table_of_image_files_for_image_tasks(tmp_path):
    """Kaggle's layout: train.csv (an id without extension, a label) beside an images folder, and
    test.csv beside test/; a row whose file is missing is skipped and named (an error with
    --strict); a table naming no files says what it wants. Before, image tasks read the table as
    texts: "has no column 'text'"."""
    from PIL import Image

    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    rows = ["id,label"]
    for i in range(8):
        Image.new("RGB", (6, 6), (40 * i, 0, 0)).save(tmp_path / "train" / f"{i:03d}.png")
        rows.append(f"{i:03d},{'cat' if i % 2 else 'dog'}")
    rows.append("999,dog")  # no such image
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    Image.new("RGB", (6, 6)).save(tmp_path / "test" / "a.png")
    (tmp_path / "test.csv").write_text("label,file\ncat,a.png\n")
    data = load_source(str(tmp_path), extensions=IMAGE_EXTENSIONS)
    assert data.kind == "files" and data.class_names == ["cat", "dog"]
    assert data.splits["train"].x[:2] == [str(tmp_path / "train" / "000.png"), str(tmp_path / "train" / "001.png")]
    assert data.splits["train"].y.tolist() == [1, 0, 1, 0, 1, 0, 1, 0]
    assert data.splits["test"].x == [str(tmp_path / "test" / "a.png")] and data.splits["test"].y.tolist() == [0]
    assert data.skipped == [(str(tmp_path / "train" / "999.png"), "no such file (named in train.csv)")]
    with pytest.raises(CnnkitError, match="999.png \\(column 'id'\\): no such file; fix the row or drop --strict"):
        load_source(str(tmp_path / "train.csv"), extensions=IMAGE_EXTENSIONS, strict=True)
    # one table on its own, its column named, absolute paths
    (tmp_path / "own").mkdir()
    absolute = tmp_path / "own" / "paths.csv"
    absolute.write_text("path,label\n" + "".join(f"{tmp_path / 'train' / f'{i:03d}.png'},{i % 2}\n" for i in range(8)))
    data = load_source(str(absolute), extensions=IMAGE_EXTENSIONS, text_column="path")
    assert len(data.splits["train"].x) == 8 and data.class_names == ["0", "1"]
    (tmp_path / "list.jsonl").write_text('{"image": "train/003.png", "label": "cat"}\n{"image": "train/004", "label": "dog"}\n'
                                         '{"image": "train/404", "label": "dog"}\n')
    data = load_source(str(tmp_path / "list.jsonl"), extensions=IMAGE_EXTENSIONS)  # a row without its extension too
    assert data.splits["train"].x == [str(tmp_path / "train" / "003.png"), str(tmp_path / "train" / "004.png")]
    assert data.skipped == [(str(tmp_path / "train" / "404"), "no such file (named in list.jsonl)")]
    (tmp_path / "words.csv").write_text("caption,label\na red square,red\nblue,blue\n")
    assert load_source(str(tmp_path / "words.csv"), extensions=IMAGE_EXTENSIONS, text_column="caption").kind == "texts"


def test_a_table_in_a_folder_beside_the_files(tmp_path):
    """ESC-50's layout: meta/esc50.csv (filename, fold, category) naming the clips of audio/, a
    folder beside meta/. Before: "none of the files of column 'filename' ... is in meta"."""
    from cnnkit.datasets.audio import AUDIO_EXTENSIONS

    (tmp_path / "audio").mkdir()
    (tmp_path / "meta").mkdir()
    rows = ["filename,fold,target,category"]
    for i in range(6):
        (tmp_path / "audio" / f"1-{i}-A-0.wav").write_bytes(b"RIFF")
        rows.append(f"1-{i}-A-0.wav,1,{i % 2},{'dog' if i % 2 else 'rain'}")
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    data = load_source(str(tmp_path / "meta" / "esc50.csv"), extensions=AUDIO_EXTENSIONS, label_column="category")
    assert data.kind == "files" and data.class_names == ["dog", "rain"]
    assert data.splits["train"].x[0] == str(tmp_path / "audio" / "1-0-A-0.wav") and not data.skipped
    # UrbanSound8K's: metadata/UrbanSound8K.csv naming clips kept in audio/fold1 ... audio/fold10
    for i in range(6):
        (tmp_path / "audio" / f"fold{i % 3 + 1}").mkdir(exist_ok=True)
        (tmp_path / "audio" / f"1-{i}-A-0.wav").rename(tmp_path / "audio" / f"fold{i % 3 + 1}" / f"1-{i}-A-0.wav")
    data = load_source(str(tmp_path / "meta" / "esc50.csv"), extensions=AUDIO_EXTENSIONS, label_column="category")
    assert [Path(x).parent.name for x in data.splits["train"].x] == ["fold1", "fold2", "fold3"] * 2 and not data.skipped
    # only a column named for files is looked up beside the table: a text column's words that happen
    # to be names of clips in a neighbouring folder stay texts
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "t.csv").write_text("text,label\n1-0-A-0.wav,x\n1-1-A-0.wav,y\n")
    assert load_source(str(tmp_path / "texts" / "t.csv"), extensions=AUDIO_EXTENSIONS).kind == "texts"


def test_speech_commands_layout_split_lists_and_background_noise(tmp_path, capsys):
    """Speech Commands' archive: word folders, `_background_noise_/` (long noise recordings, not a
    word) and validation_list.txt / testing_list.txt naming the files of those splits. Before, the
    noise folder was a class of its own and the lists were ignored for a random split."""
    from cnnkit.datasets.audio import AUDIO_EXTENSIONS

    for folder, names in {"yes": ["a", "b", "c"], "no": ["d", "e", "f"], "_background_noise_": ["white_noise"]}.items():
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / f"{name}.wav").write_bytes(b"RIFF")  # listed, not decoded here
    (tmp_path / "validation_list.txt").write_text("yes/b.wav\nno/e.wav\nno/gone.wav\n")
    (tmp_path / "testing_list.txt").write_text("no/f.wav\n")
    data = load_source(str(tmp_path), extensions=AUDIO_EXTENSIONS)
    assert data.class_names == ["no", "yes"]
    named = {split: sorted(Path(x).relative_to(tmp_path).as_posix() for x in data.splits[split].x) for split in data.splits}
    assert named == {"train": ["no/d.wav", "yes/a.wav", "yes/c.wav"], "val": ["no/e.wav", "yes/b.wav"], "test": ["no/f.wav"]}
    for split in data.splits.values():  # each file keeps its folder's label
        assert [data.class_names[y] for y in split.y] == [Path(x).parent.name for x in split.x]
    err = capsys.readouterr().err
    assert "Left out" in err and "_background_noise_" in err and "give the val/test split (val 2, test 1 files)" in err


def test_builtin_digits_has_fixed_test_split():
    a, b = load_source("builtin:digits"), load_source("builtin:digits")
    assert a.splits["train"].x.shape[1:] == (8, 8, 1) and a.splits["train"].x.dtype == np.uint8
    assert len(a.splits["test"]) == 360 and np.array_equal(a.splits["test"].y, b.splits["test"].y)


def test_tfds_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        data = load_source("tfds:mnist")
    assert data.kind == "arrays" and data.class_names == [str(i) for i in range(10)]
    assert data.splits["train"].x.shape == (12, 28, 28, 1) and set(data.splits) == {"train", "test"}


TOY_BUILDER = """
import numpy as np
import tensorflow_datasets as tfds


class CnnkitToySentences(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"text": tfds.features.Text(),
                                                 "label": tfds.features.ClassLabel(names=["neg", "pos"])}),
            supervised_keys=("text", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(40), "test": self._generate_examples(10)}

    def _generate_examples(self, n):
        for i in range(n):
            yield i, {"text": ("a fine film" if i % 2 else "a dull film") + f" {i}", "label": i % 2}


class CnnkitToyUnsupervised(CnnkitToySentences):  # glue/sst2's layout: no supervised keys; idx, label, sentence

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"idx": tfds.features.Scalar(np.int32), "sentence": tfds.features.Text(),
                                                 "label": tfds.features.ClassLabel(names=["neg", "pos"])}))

    def _generate_examples(self, n):
        for i in range(n):
            yield i, {"idx": i, "sentence": ("a fine film" if i % 2 else "a dull film") + f" {i}", "label": i % 2}


class CnnkitToyTwoTexts(CnnkitToyUnsupervised):
    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"premise": tfds.features.Text(), "hypothesis": tfds.features.Text(),
                                                 "label": tfds.features.ClassLabel(names=["neg", "pos"])}))


class CnnkitToyOffline(CnnkitToySentences):
    def _split_generators(self, dl_manager):
        import requests

        from tensorflow_datasets.core.download import downloader

        # what a download would be retried with: the test reads it from the message
        raise requests.exceptions.ConnectionError(f"Failed to resolve 'example.org' ({downloader.MAX_RETRIES} retries)")
"""


def test_tfds_builds_a_data_set_through_its_builder(tmp_path, monkeypatch):
    """The path a user with a network takes the first time (`tfds.load` -> the builder's
    download_and_prepare), on a builder (in a package of its own, as TFDS wants) that generates
    its examples instead of downloading them. tensorflow-datasets 4.9.10 imports
    `importlib_resources` there but declares it for Python < 3.9 only: without it in cnnkit's
    dependencies, every `tfds:` source failed on Python 3.10+ with "No module named
    'importlib_resources'"."""
    import importlib

    from cnnkit.datasets.sources import load_tfds

    package = tmp_path / "cnnkit_toy_tfds"
    package.mkdir()
    (package / "__init__.py").write_text("from cnnkit_toy_tfds.toy import *\n")
    (package / "toy.py").write_text(TOY_BUILDER)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("cnnkit_toy_tfds")  # defining the class registers the builder's name
    data = load_tfds("cnnkit_toy_sentences", data_dir=str(tmp_path / "tfds"))
    assert data.kind == "texts" and data.class_names == ["neg", "pos"]
    assert len(data.splits["train"].x) == 40 and len(data.splits["test"].x) == 10
    pairs = set(zip(data.splits["train"].x, data.splits["train"].y.tolist()))  # TFDS shuffles the order
    assert ("a fine film 1", 1) in pairs and ("a dull film 2", 0) in pairs
    # without supervised keys: its one text feature and one class label
    data = load_tfds("cnnkit_toy_unsupervised", data_dir=str(tmp_path / "tfds"))
    assert ("a fine film 1", 1) in set(zip(data.splits["train"].x, data.splits["train"].y.tolist()))
    with pytest.raises(CnnkitError, match=r"no one input and class label.*premise \(Text\), hypothesis \(Text\)"):
        load_tfds("cnnkit_toy_two_texts", data_dir=str(tmp_path / "tfds"))
    # no network: the error says how to bring the data set here, and comes at once: downloads are
    # not retried (TFDS retries ten times with back-off: 3 min 30 s before the error, measured)
    from tensorflow_datasets.core.download import downloader

    from cnnkit.datasets import sources

    retries = downloader.MAX_RETRIES
    monkeypatch.setattr(sources, "network_reachable", lambda: False)
    with pytest.raises(CnnkitError, match=r"Failed to resolve.*\(0 retries\).*no network here.*tfds.load\("
                                          r"'cnnkit_toy_offline'\).*copy ~/tensorflow_datasets/cnnkit_toy_offline into"):
        load_tfds("cnnkit_toy_offline", data_dir=str(tmp_path / "tfds"))
    assert downloader.MAX_RETRIES == retries > 0
    monkeypatch.setattr(sources, "network_reachable", lambda: True)  # a network that fails: TFDS's retries kept
    with pytest.raises(CnnkitError, match=rf"\({retries} retries\)"):
        load_tfds("cnnkit_toy_offline", data_dir=str(tmp_path / "tfds"))


def test_network_probe_trusts_a_proxy(monkeypatch):
    """Behind a proxy a direct connection may fail though downloads work: not probed then."""
    import socket

    from cnnkit.datasets.sources import network_reachable

    def refused(*args, **kwargs):
        raise OSError("refused")

    monkeypatch.setattr(socket, "create_connection", refused)
    for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
    assert not network_reachable()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert network_reachable()


def test_stratified_val_and_test_split(image_folder):
    data = load_source(str(image_folder), extensions=IMAGE_EXTENSIONS)
    split = ensure_splits(data, val_split=0.25, test_split=1 / 3, seed=0)
    counts = {k: np.bincount(v.y, minlength=3).tolist() for k, v in split.splits.items()}
    assert counts == {"train": [6, 6, 6], "test": [4, 4, 4], "val": [2, 2, 2]}
    # seeded: the same split twice
    again = ensure_splits(data, val_split=0.25, test_split=1 / 3, seed=0)
    assert again.splits["val"].x == split.splits["val"].x


def test_small_hold_out_is_stratified_when_it_can_be():
    """12 examples of 2 classes, 10 % held out: train_test_split holds out ceil(1.2) = 2, one of
    each class (the check once rounded 1.2 down and split at random)."""
    from cnnkit.datasets.sources import stratified_split

    for seed in range(5):
        _, held = stratified_split(Split(list(range(12)), np.array([0] * 6 + [1] * 6)), 0.1, seed)
        assert sorted(held.y.tolist()) == [0, 1]


def test_groups_from_a_fold_column_are_held_out_whole(tmp_path):
    """UrbanSound8K's metadata: a `fold` column (auto) names each clip's predefined fold, and the
    clips of one recording share it. Before, the column was ignored and held-out splits and --cv
    folds mixed slices of one recording into training and testing."""
    from cnnkit.datasets.audio import AUDIO_EXTENSIONS
    from cnnkit.datasets.sources import group_folds

    (tmp_path / "audio").mkdir()
    (tmp_path / "metadata").mkdir()
    rows = ["slice_file_name,fsID,fold,class"]
    for i in range(40):
        fold = i % 10 + 1
        (tmp_path / "audio" / f"{i}.wav").write_bytes(b"RIFF")  # listed, not decoded here
        rows.append(f"{i}.wav,{i // 4},{fold},{'dog' if i % 3 else 'siren'}")
    table = tmp_path / "metadata" / "UrbanSound8K.csv"
    table.write_text("\n".join(rows) + "\n")
    data = load_source(str(table), extensions=AUDIO_EXTENSIONS, label_column="class", group_column="auto")
    train = data.splits["train"]
    assert data.groups_from == "column 'fold' of UrbanSound8K.csv"
    assert train.groups.tolist() == [str(i % 10 + 1) for i in range(40)]
    split = ensure_splits(data, val_split=0.1, test_split=0.0, seed=3)
    rest, held = split.splits["train"], split.splits["val"]
    assert len(set(held.groups)) == 1 and not set(held.groups) & set(rest.groups)  # one whole fold
    assert len(held) == 4 and sorted(held.x + rest.x) == sorted(train.x)
    # --cv with as many folds as groups: fold i tests on group i, in natural order (10 after 9)
    folds = group_folds(train.groups, train.y, 10, 0, data.groups_from)
    assert [held for _, _, held in folds] == [[str(g)] for g in range(1, 11)]
    assert all(set(train.groups[test]) == set(g) and not set(train.groups[fit]) & set(g) for fit, test, g in folds)
    # fewer folds than groups: whole groups in each
    folds = group_folds(train.groups, train.y, 3, 0, data.groups_from)
    assert sorted(g for _, _, held in folds for g in held) == sorted(str(g) for g in range(1, 11))
    assert all(not set(train.groups[fit]) & set(train.groups[test]) for fit, test, _ in folds)
    with pytest.raises(CnnkitError, match=r"--cv 12: the examples fall in 10 groups .*use --cv 10 or fewer"):
        group_folds(train.groups, train.y, 12, 0, data.groups_from)
    # another column by name (a recording's id); none; a column the table lacks
    by_id = load_source(str(table), extensions=AUDIO_EXTENSIONS, label_column="class", group_column="fsID")
    assert by_id.splits["train"].groups.tolist()[:5] == ["0", "0", "0", "0", "1"]
    assert load_source(str(table), extensions=AUDIO_EXTENSIONS, label_column="class",
                       group_column="none").splits["train"].groups is None
    with pytest.raises(CnnkitError, match="has no column 'speaker' to read groups from .*slice_file_name, fsID"):
        load_source(str(table), extensions=AUDIO_EXTENSIONS, label_column="class", group_column="speaker")
    # a text table too; without a fold column, no groups
    (tmp_path / "t.csv").write_text("text,label,fold\na,x,1\nb,y,2\n,y,2\nc,x,2\n")
    assert load_source(str(tmp_path / "t.csv"), group_column="auto").splits["train"].groups.tolist() == ["1", "2", "2"]
    (tmp_path / "u.csv").write_text("text,label\na,x\nb,y\n")
    assert load_source(str(tmp_path / "u.csv"), group_column="auto").groups_from == ""


def test_groups_from_file_names(tmp_path, capsys):
    """The Free Spoken Digit Dataset names each clip DIGIT_SPEAKER_N.wav: `data.group_pattern`
    makes the speaker a group, so a speaker's clips are not both trained on and tested."""
    from cnnkit.datasets.audio import AUDIO_EXTENSIONS
    from cnnkit.datasets.sources import with_file_groups

    for digit in ("0", "1"):
        (tmp_path / digit).mkdir()
        for speaker in ("george", "jackson", "theo"):
            for n in range(3):
                (tmp_path / digit / f"{digit}_{speaker}_{n}.wav").write_bytes(b"RIFF")
    data = with_file_groups(load_source(str(tmp_path), extensions=AUDIO_EXTENSIONS), r"^\d+_([a-z]+)_")
    assert sorted(set(data.splits["train"].groups)) == ["george", "jackson", "theo"]
    held = ensure_splits(data, val_split=0.3, test_split=0.0, seed=0).splits["val"]
    assert len(set(held.groups)) == 1 and len(held) == 6  # one speaker's six clips
    # a validation split of 10 % from three speakers: a whole one would be a third of the clips, so
    # validation is drawn from every speaker (said); a held-out test split stays whole speakers
    split = ensure_splits(data, val_split=0.1, test_split=0.3, seed=0)
    assert len(set(split.splits["test"].groups)) == 1 and len(split.splits["test"]) == 6
    assert len(split.splits["val"]) == 2 and not set(split.splits["val"].groups) & set(split.splits["test"].groups)
    assert "The validation split is drawn from every group's examples: 2 training groups" in capsys.readouterr().err
    with pytest.raises(CnnkitError, match=r"does not match the file name 0_george_0.wav"):
        with_file_groups(load_source(str(tmp_path), extensions=AUDIO_EXTENSIONS), r"^\d+-")
    with pytest.raises(CnnkitError, match="is not a regular expression"):
        with_file_groups(load_source(str(tmp_path), extensions=AUDIO_EXTENSIONS), "(")
    (tmp_path / "t.csv").write_text("text,label\na,x\nb,y\n")
    with pytest.raises(CnnkitError, match="holds texts, not files"):
        with_file_groups(load_source(str(tmp_path / "t.csv")), "x")


def test_labels_column_is_multi_label(tmp_path):
    path = tmp_path / "tags.csv"
    path.write_text('text,labels\n"first",a|b\n"second", b \n"third",\n"fourth",c|a|a\n')
    data = load_source(str(path))
    assert data.multi_label and data.class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(data.splits["train"].y, [[1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 1]])
    # an explicit single-label reading of the same column keeps "a|b" as one class name
    single = load_source(str(path), label_column="labels", multi_label=False)
    assert not single.multi_label and "a|b" in single.class_names
    with pytest.raises(CnnkitError, match="never saw"):
        (tmp_path / "split").mkdir()
        (tmp_path / "split" / "train.csv").write_text("text,labels\nx,a|b\ny,b\n")
        (tmp_path / "split" / "test.csv").write_text("text,labels\nz,a|z\n")
        load_source(str(tmp_path / "split"))



def test_multi_label_sets_written_with_commas_are_warned_about(tmp_path, capsys):
    """`labels` cells like "sport,politics" are one label each for cnnkit ('|' separates): every
    combination would be a class of its own, silently."""
    path = tmp_path / "tags.csv"
    path.write_text('text,labels\nfirst,"sport,politics"\nsecond,sport\n')
    data = load_source(str(path))
    assert data.class_names == ["sport", "sport,politics"]
    assert "labels such as 'sport,politics' hold a comma" in capsys.readouterr().err
    path.write_text('text,labels\nfirst,sport|politics\nsecond,sport\n')
    load_source(str(path))
    assert "Warning" not in capsys.readouterr().err


def test_files_named_by_class(tmp_path, capsys):
    """Kaggle's Dogs vs Cats (cat.12.jpg) and Oxford Pets (Abyssinian_12.jpg) name each file by
    its class: without class folders the error suggests data.label_pattern with the classes it
    gives; with it, labels come from the names (split folders too), the rest is skipped."""
    root = tmp_path / "pets"
    for split, n in (("train", 4), ("test", 2)):
        (root / split).mkdir(parents=True)
        for c in ("cat", "dog"):
            for i in range(n):
                (root / split / f"{c}.{i}.jpg").write_bytes(b"x")
    (root / "train" / "README").write_bytes(b"x")
    with pytest.raises(CnnkitError, match=r"no class folders.*as cat\.0\.jpg may.*data\.label_pattern=.*gives 2 classes "
                                          r"\(cat, dog\)"):
        load_source(str(root), extensions=IMAGE_EXTENSIONS)
    pattern = r"^(.+?)[ ._-]*\d+\.\w+$"
    data = load_source(str(root), extensions=IMAGE_EXTENSIONS, label_pattern=pattern)
    assert data.kind == "files" and data.class_names == ["cat", "dog"]
    assert data.splits["train"].y.tolist() == [0, 0, 0, 0, 1, 1, 1, 1] and len(data.splits["test"]) == 4
    assert "Labels from the file names" in capsys.readouterr().err
    assert [p for p, _ in data.skipped] == [str(root / "train" / "README")]
    (root / "test" / "fox.0.jpg").write_bytes(b"x")
    with pytest.raises(CnnkitError, match="files of label fox"):
        load_source(str(root), extensions=IMAGE_EXTENSIONS, label_pattern=pattern)
    with pytest.raises(CnnkitError, match="finds one label, cat"):
        load_source(str(root / "train"), extensions=IMAGE_EXTENSIONS, label_pattern="cat")
    with pytest.raises(CnnkitError, match="not a regular expression"):
        load_source(str(root), extensions=IMAGE_EXTENSIONS, label_pattern="(")
    with pytest.raises(CnnkitError, match="data.label_pattern reads labels from the file names"):
        load_source("builtin:digits", label_pattern=pattern)
