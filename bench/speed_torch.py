"""The PyTorch side of bench/speed.py: the same networks, one warm-up and one timed epoch.

Runs in its own environment (torch is never a cnnkit dependency):
    ENV/bin/python bench/speed_torch.py image|text|speech DATA_DIR BATCH
DATA_DIR holds x.npy and y.npy (text: token ids and vocab.txt with the vocabulary size;
speech: float waveforms, and audio.json, mel.npy, mean.npy, variance.npy of cnnkit's front end).
Prints {"samples_per_second": ...}.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

torch.set_num_threads(2)


class Block(nn.Module):
    """The CIFAR ResNet basic block: conv-BN-ReLU-conv-BN + (projected) shortcut, ReLU."""

    def __init__(self, cin, cout, stride, dropout=0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.drop(self.b2(self.c2(F.relu(self.b1(self.c1(x))))))
        return F.relu(y + (x if self.short is None else self.short(x)))


class ResNet20(nn.Module):
    def __init__(self, cin=3, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(cin, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        layers, c = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for b in range(3):
                layers.append(Block(c, width, 2 if stage > 0 and b == 0 else 1))
                c = width
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(64, classes)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class KimCNN(nn.Module):
    def __init__(self, vocab, dim=128, classes=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.convs = nn.ModuleList([nn.Conv1d(dim, 100, w, padding="same") for w in (3, 4, 5)])
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(300, classes)

    def forward(self, ids):
        e = self.embed(ids).transpose(1, 2)
        h = torch.cat([F.relu(c(e)).amax(2) for c in self.convs], 1)
        return self.head(self.drop(h))


class LogMel(nn.Module):
    """cnnkit's LogMelSpectrogram and per-bin normalisation: centred periodic-Hann STFT, power,
    the same mel matrix, dB below each clip's maximum floored at -top_db, (x - mean) / std."""

    def __init__(self, folder: Path):
        super().__init__()
        cfg = json.loads((folder / "audio.json").read_text())
        self.n_fft, self.hop, self.top_db = cfg["n_fft"], cfg["hop_length"], cfg["top_db"]
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True))
        self.register_buffer("mel", torch.from_numpy(np.load(folder / "mel.npy")).float())
        self.register_buffer("mean", torch.from_numpy(np.load(folder / "mean.npy")).float().reshape(1, 1, -1))
        self.register_buffer("std", torch.from_numpy(np.load(folder / "variance.npy")).float().reshape(1, 1, -1).sqrt())

    def forward(self, waves):
        waves = F.pad(waves, (self.n_fft // 2, self.n_fft // 2))
        spec = torch.stft(waves, self.n_fft, self.hop, self.n_fft, self.window, center=False, return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2  # (batch, bins, frames)
        db = 10.0 * torch.log10(torch.clamp(power.transpose(1, 2) @ self.mel, min=1e-10))
        db = torch.clamp(db - db.amax((1, 2), keepdim=True), min=-self.top_db)
        return ((db - self.mean) / torch.clamp(self.std, min=1e-7)).unsqueeze(1)  # (batch, 1, frames, bins)


def spec_augment(x, time=0.1, freq=0.1, masks=2, time_width=0.1, freq_width=0.15):
    """cnnkit's RandomStretch (time around the middle, frequency from the lowest bin) and
    SpecAugment masks, on (batch, 1, frames, bins)."""
    b, _, frames, bins = x.shape
    t = 1 + (torch.rand(b) * 2 - 1) * time
    f = 1 + (torch.rand(b) * 2 - 1) * freq
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1] = f, f - 1, t
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
    keep = torch.ones(b, 1, frames, bins)
    for axis, size, width in ((2, frames, time_width), (3, bins, freq_width)):
        for _ in range(masks):
            w = (torch.rand(b) * width * size).long()
            start = (torch.rand(b) * (size - w)).long()
            pos = torch.arange(size)
            band = (pos[None] >= start[:, None]) & (pos[None] < (start + w)[:, None])  # (batch, size)
            keep = keep * (~(band[:, None, :, None] if axis == 2 else band[:, None, None, :])).float()
    return x * keep


class SpectrogramCNN(nn.Module):
    """cnnkit's spectrogram_cnn + head: conv stem, three residual stages (max pooling after the
    first, stride 2 in the others, dropout 0.1), average pooling, dropout 0.2, dense."""

    def __init__(self, folder: Path, classes: int, filters=(32, 64, 128)):
        super().__init__()
        self.front = LogMel(folder)
        self.stem = nn.Sequential(nn.Conv2d(1, filters[0], 3, 1, 1, bias=False), nn.BatchNorm2d(filters[0]), nn.ReLU())
        self.s1 = Block(filters[0], filters[0], 1, 0.1)
        self.s2 = Block(filters[0], filters[1], 2, 0.1)
        self.s3 = Block(filters[1], filters[2], 2, 0.1)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(filters[2], classes)

    def forward(self, waves):
        x = self.front(waves)
        if self.training:
            x = spec_augment(x)
        x = F.max_pool2d(self.s1(self.stem(x)), 2, ceil_mode=True)
        x = self.s3(self.s2(x))
        return self.head(self.drop(x.mean((2, 3))))


def augment(x):
    """Random horizontal flips and 4-pixel shifts (pad + random crop), as the Keras recipe."""
    flip = torch.rand(x.shape[0]) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (4, 4, 4, 4))
    i, j = np.random.randint(0, 9, 2)
    return padded[:, :, i:i + x.shape[2], j:j + x.shape[3]]


def epoch(model, opt, x, y, batch, image):
    model.train()
    order = torch.randperm(len(y))
    for s in range(0, len(y), batch):
        idx = order[s:s + batch]
        xb, yb = x[idx], y[idx]
        if image:
            xb = augment(xb.float() / 255.0).contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()


def main():
    task, folder, batch = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    x = torch.from_numpy(np.load(folder / "x.npy"))
    y = torch.from_numpy(np.load(folder / "y.npy")).long()
    if task == "image":
        x = x.permute(0, 3, 1, 2).contiguous()  # uint8 NCHW; augmented per batch
        model = ResNet20(x.shape[1], int(y.max()) + 1).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), 3e-3, weight_decay=5e-4)
    elif task == "speech":
        x = x.float()
        model = SpectrogramCNN(folder, int(y.max()) + 1)
        opt = torch.optim.AdamW(model.parameters(), 3e-3, weight_decay=1e-3)
    else:
        x = x.long()
        model = KimCNN(int((folder / "vocab.txt").read_text()), 128, int(y.max()) + 1)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
    epoch(model, opt, x, y, batch, task == "image")  # warm-up
    start = time.perf_counter()
    epoch(model, opt, x, y, batch, task == "image")
    print(json.dumps({"samples_per_second": len(y) / (time.perf_counter() - start)}))


if __name__ == "__main__":
    main()
