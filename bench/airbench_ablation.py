"""Which of airbench94's training pieces help on a CPU: one network (airbench at --widths, written
in plain Keras here so that each piece is a flag) trained for --epochs on CIFAR-10, test accuracy
with no, flip and flip+1-pixel-shift (6-view) test-time augmentation. Appends one JSON line to
bench/results/airbench_ablation.jsonl. The rows of BENCHMARKS.md ("airbench pieces") came from:

    python bench/airbench_ablation.py --epochs 8 --tag base          # cnnkit's old training (AdamW, batch 128)
    AIR="--opt sgd --stem whiten --bn_scale 0 --bn_mom 0.4 --logit_scale 0.111 --bs 1024 --pool_first 1 --ls 0.2"
    python bench/airbench_ablation.py --epochs 8 $AIR --lookahead 1 --tag airfull
    python bench/airbench_ablation.py --epochs 8 $AIR --tag B_nolook
    python bench/airbench_ablation.py --epochs 8 $AIR --sched onecycle --tag E_B_onecycle
    python bench/airbench_ablation.py --epochs 8 $AIR --lookahead 1 --stem conv3 --bn_scale 1 --tag C_conv3_scale
    python bench/airbench_ablation.py --epochs 8 --bs 1024 --pool_first 1 --lr 0.006 --tag A_adamw1024
    python bench/airbench_ablation.py --epochs 8 $AIR --sched onecycle --bn_mom 0.6 --tag F_mom06     # 2026-12-03, 4th session
    python bench/airbench_ablation.py --epochs 8 $AIR --sched onecycle --dirac 1 --tag G_dirac
    python bench/airbench_ablation.py --epochs 8 $AIR --sched onecycle --seed 1 --tag E_B_onecycle_s1
    python bench/airbench_ablation.py --epochs 8 $AIR --sched onecycle --dirac 1 --seed 1 --tag G_dirac_s1
    python bench/airbench_ablation.py --epochs 8 --opt sgd --stem whiten --bn_scale 1 --bn_mom 0.977 \
        --bias_scaler 1 --bs 1024 --pool_first 1 --ls 0.2 --sched onecycle --tag D_cfgonly

The decoded images are cached in --cache (an .npz) after the first run.
"""
import argparse, json, time, math
from pathlib import Path
import numpy as np
import keras, tensorflow as tf
from keras import layers
from cnnkit.blocks.norm import FusedBatchNorm
from cnnkit.blocks.whitening import PatchWhitening
from cnnkit.blocks.initializers import PartialIdentity
from cnnkit import optimizers as cko

p = argparse.ArgumentParser()
p.add_argument("--widths", default="32,64,128")
p.add_argument("--epochs", type=float, default=8)
p.add_argument("--bs", type=int, default=128)
p.add_argument("--opt", default="adamw")  # adamw | sgd
p.add_argument("--lr", type=float, default=None)
p.add_argument("--wd", type=float, default=None)
p.add_argument("--wd_keras", type=float, default=None)  # SGD: Keras' decoupled decay as is
p.add_argument("--stem", default="conv3")  # conv3 | whiten
p.add_argument("--bn_scale", type=int, default=1)
p.add_argument("--bn_mom", type=float, default=None)
p.add_argument("--pool_first", type=int, default=0)
p.add_argument("--logit_scale", type=float, default=1.0)
p.add_argument("--ls", type=float, default=0.1)
p.add_argument("--lookahead", type=int, default=0)
p.add_argument("--translate", type=int, default=2)
p.add_argument("--bias_scaler", type=float, default=64.0)
p.add_argument("--momentum", type=float, default=0.85)
p.add_argument("--precision", default="mixed_bfloat16")
p.add_argument("--dirac", type=int, default=0)  # airbench: the first in-channels filters of each 3x3 conv start as identities
p.add_argument("--seed", type=int, default=0)
p.add_argument("--tag", default="")
p.add_argument("--sched", default="tri")  # tri (airbench: 0.2 -> 1 over 20 %, then linear to 0) | onecycle
p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/image/cifar10-jpg.tar.gz"))
p.add_argument("--cache", default="/tmp/cnnkit-cifar10-32.npz")
a = p.parse_args()
T0 = time.time()
keras.mixed_precision.set_global_policy(a.precision)
keras.utils.set_random_seed(a.seed)
if not Path(a.cache).exists():
    from cnnkit.datasets.image import read_image_files
    from cnnkit.datasets.sources import load_source
    src, arrays = load_source(a.data, extensions=(".jpg",)), {}
    for name, split in src.splits.items():
        images, kept, _ = read_image_files(split.x, 3, (32, 32))
        arrays[f"x_{name}"], arrays[f"y_{name}"] = images, np.asarray(split.y)[kept]
    np.savez(a.cache, **arrays)
d = np.load(a.cache)
xtr, ytr, xte, yte = d["x_train"], d["y_train"].astype("int32"), d["x_test"], d["y_test"].astype("int32")
mean = xtr[:5000].reshape(-1, 3).mean(0).astype("float32"); std = xtr[:5000].reshape(-1, 3).std(0).astype("float32")
widths = [int(w) for w in a.widths.split(",")]
steps = math.ceil(len(xtr) / a.bs)
total = int(round(a.epochs * steps))

def bn():
    return FusedBatchNorm(scale=bool(a.bn_scale), momentum=a.bn_mom if a.bn_mom else 0.99, epsilon=1e-5 if a.bn_scale else 1e-5)

def block(x, w, pool):
    x = layers.Conv2D(w, 3, padding="same", use_bias=False, kernel_initializer=PartialIdentity() if a.dirac else "glorot_uniform")(x)
    if pool and a.pool_first:
        x = layers.MaxPooling2D(2)(x)
    x = bn()(x); x = layers.ReLU()(x)
    if pool and not a.pool_first:
        x = layers.MaxPooling2D(2)(x)
    return x

inp = keras.Input((32, 32, 3), dtype="uint8")
x = layers.Rescaling(1.0)(inp)
x = layers.RandomFlip("horizontal", seed=a.seed)(x)
if a.translate:
    x = layers.RandomTranslation(a.translate / 32, a.translate / 32, fill_mode="constant", seed=a.seed)(x)
x = layers.Normalization(mean=mean, variance=std ** 2)(x)
if a.stem == "whiten":
    stem = layers.Conv2D(24, 2, padding="valid", use_bias=True, trainable=False, name="whiten")
    x = stem(x); x = layers.ReLU()(x)
else:
    x = layers.Conv2D(24, 3, padding="same", use_bias=False)(x); x = bn()(x); x = layers.ReLU()(x)
for w in widths:
    x = block(x, w, True); x = block(x, w, False)
x = layers.GlobalMaxPooling2D()(x)
x = layers.Dense(10, use_bias=(a.logit_scale == 1.0))(x)
if a.logit_scale != 1.0:
    x = layers.Rescaling(a.logit_scale)(x)
out = layers.Activation("softmax", dtype="float32")(x)
model = keras.Model(inp, out)

if a.stem == "whiten":
    # cnnkit's PatchWhitening computes the kernel; the stem stays a frozen Conv2D (bias too).
    fitted = PatchWhitening()
    fitted.adapt((xtr[:5000].astype("float32") - mean) / std)
    stem.set_weights([fitted.kernel.numpy(), np.zeros(24, "float32")])

class Tri(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak, total): self.peak, self.total = peak, float(total)
    def __call__(self, step):
        t = tf.cast(step, "float32"); w = 0.2 * self.total
        up = 0.2 + 0.8 * t / w; down = tf.maximum(0.0, (self.total - t) / (self.total - w))
        return self.peak * tf.where(t < w, up, down)

if a.opt == "sgd":
    # airbench: lr 11.5 and weight decay 0.0153 per 1024 examples of a summed loss, PyTorch SGD
    # (decay coupled through the momentum). For Keras' mean loss the lr is lr_sum * batch size.
    # airbench's decay per step is 0.0153 * bs / kilo (PyTorch's lr times its weight_decay), which
    # the momentum buffer carries 1 / (1 - m) times; Keras' decay w -= lr * wd * w is the same
    # with wd = 0.0153 / (11.5 * (1 - m)) = 0.00887. Rows before 2026-12-04 (eighth session) used
    # 0.0153 / (kilo * (1 - m)) = 1.3e-5 here: 680x too weak (pass --wd_keras 1.3e-5 for them).
    kilo = 1024 * (1 + 1 / (1 - a.momentum))
    lr = (a.lr or 11.5) / kilo * a.bs
    wd = a.wd_keras or (a.wd or 0.0153) / ((a.lr or 11.5) * (1 - a.momentum))
    from cnnkit.training import OneCycleSchedule
    opt = cko.SGD(Tri(lr, total) if a.sched == 'tri' else OneCycleSchedule(lr, total), momentum=a.momentum, nesterov=True,
                  weight_decay=wd, bias_lr_scale=a.bias_scaler)
else:
    from cnnkit.training import OneCycleSchedule
    opt = cko.FusedAdamW(OneCycleSchedule(a.lr or 0.003, total), weight_decay=a.wd or 5e-4)

from cnnkit.training import SmoothedSparseCrossentropy
model.compile(opt, SmoothedSparseCrossentropy(10, a.ls), metrics=["accuracy"])

class Lookahead(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.vars = [v for v in self.model.weights if v.dtype == "float32"]
        self.ema = [v.numpy() for v in self.vars]; self.step = 0
    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % 5 == 0:
            decay = 0.95 ** 5 * (self.step / total) ** 3
            self.update(decay)
    def update(self, decay):
        for v, e in zip(self.vars, self.ema):
            e *= decay; e += (1 - decay) * v.numpy(); v.assign(e)
    def on_train_end(self, logs=None):
        self.update(1.0)

ds = tf.data.Dataset.from_tensor_slices((xtr, ytr)).cache().shuffle(50000, seed=a.seed).batch(a.bs).prefetch(4).repeat()
cbs = [Lookahead()] if a.lookahead else []
t1 = time.time()
h = model.fit(ds, epochs=int(math.ceil(a.epochs)), steps_per_epoch=steps if a.epochs == int(a.epochs) else int(total / math.ceil(a.epochs)), callbacks=cbs, verbose=2)
train_s = time.time() - t1
def acc(views):
    pr = sum(model.predict(v, batch_size=1000, verbose=0) for v in views) / len(views)
    return float((pr.argmax(1) == yte).mean())
fl = xte[:, :, ::-1]
r = dict(vars(a), train_s=round(train_s, 1), img_s=round(total * a.bs / train_s, 1),
         acc=acc([xte]), acc_flip=acc([xte, fl]),
         train_acc=float(h.history["accuracy"][-1]))
pad = np.pad(xte, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect"); pf = np.pad(fl, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
r["acc_tta6"] = acc([xte, fl, xte, fl, pad[:, :32, :32], pf[:, :32, :32], pad[:, 2:, 2:], pf[:, 2:, 2:]])
r["total_s"] = round(time.time() - T0, 1)
print(json.dumps(r)); open(Path(__file__).parent / "results" / "airbench_ablation.jsonl", "a").write(json.dumps(r) + "\n")
