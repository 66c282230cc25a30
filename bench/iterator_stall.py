"""Per-epoch first-step stall of `model.fit(dataset)` (a new iterator each epoch), against one
iterator for the run (`repeat()` + `steps_per_epoch`). ResNet-20, 5 000 random 32x32 images.

    python bench/iterator_stall.py            # per epoch: first step, median step, total
    python bench/iterator_stall.py --repeat
"""
import time, sys, numpy as np, keras, tensorflow as tf
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
import cnnkit.backbones as B
from cnnkit.blocks import ClassifierHead
x = np.random.randint(0,255,(5000,32,32,3)).astype("uint8"); y = np.random.randint(0,10,5000)
REPEAT = "--repeat" in sys.argv
ds = tf.data.Dataset.from_tensor_slices((x,y)).shuffle(5000).batch(128)
ds = (ds.repeat() if REPEAT else ds).prefetch(2)
inp = keras.Input((32,32,3)); m = keras.Model(inp, ClassifierHead(10)(B.get("resnet20",(32,32,3))(inp))); m.compile("adam","sparse_categorical_crossentropy")
class T(keras.callbacks.Callback):
    def on_epoch_begin(self, e, logs=None): self.t=[time.perf_counter()]
    def on_train_batch_end(self, b, logs=None): self.t.append(time.perf_counter())
    def on_epoch_end(self, e, logs=None):
        d=np.diff(self.t); print("epoch", e, "first", round(d[0],2), "max", round(d.max(),2), "at", int(d.argmax()), "median", round(float(np.median(d)),3), "total", round(self.t[-1]-self.t[0],2), flush=True)
t0=time.perf_counter()
m.fit(ds, epochs=5, steps_per_epoch=40 if REPEAT else None, verbose=0, callbacks=[T()])
