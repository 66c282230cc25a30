"""A small photo folder of the kind users bring: CIFAR-10 images of a few classes, scaled up to
a larger side (bicubic) and saved as JPEGs in train/ and test/ class folders. Images over 64
pixels take `backbone: auto`'s other branch (MobileNetV2 from random weights), which the
32-pixel benchmark sets never reach.

    python bench/photo_folder.py /tmp/photos96            # 5 classes, 160 train + 100 test each, 96x96
    cnnkit train image-cls --data /tmp/photos96            # the defaults on it

Reads ../shared/data/image/cifar10-jpg.tar.gz (the first N images of each class in the archive's order).
"""
import argparse
import tarfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "data" / "image" / "cifar10-jpg.tar.gz"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--classes", default="airplane,automobile,bird,cat,ship")
    parser.add_argument("--train", type=int, default=160, help="training images per class")
    parser.add_argument("--test", type=int, default=100, help="test images per class")
    parser.add_argument("--side", type=int, default=96)
    args = parser.parse_args()
    classes = args.classes.split(",")
    counts: dict = {}
    with tarfile.open(ARCHIVE) as archive:
        for member in archive:
            parts = member.name.split("/")  # cifar10/{train,test}/CLASS/NNNN.jpg
            if not member.isfile() or len(parts) != 4 or parts[2] not in classes:
                continue
            split, cls = parts[1], parts[2]
            limit = args.train if split == "train" else args.test
            if counts.get((split, cls), 0) >= limit:
                continue
            counts[(split, cls)] = counts.get((split, cls), 0) + 1
            image = Image.open(archive.extractfile(member)).convert("RGB")
            folder = args.out / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            image.resize((args.side, args.side), Image.BICUBIC).save(folder / parts[3], quality=90)
    print({f"{s}/{c}": n for (s, c), n in sorted(counts.items())})


if __name__ == "__main__":
    main()
