"""Do maps with num_parallel_calls=AUTOTUNE still run in parallel when tf.data's autotuning is
off (as in cnnkit.training.without_autotune_thread)? 3 000 maps of five 200x200 matmuls,
batched and prefetched, timed with autotuning on and off (twice each), and sequentially.

    python bench/autotune_parallelism.py
"""
import time

import tensorflow as tf


def heavy(i):
    """Five 200x200 matmuls on a random matrix seeded by `i`: a scalar."""
    a = tf.random.stateless_normal([200, 200], seed=[i, 0])
    for _ in range(5):
        a = tf.linalg.matmul(a, a) / 200.0
    return tf.reduce_sum(a)


def seconds(autotune: bool, parallel: bool = True) -> float:
    """Seconds to iterate the 3 000 maps."""
    options = tf.data.Options()
    options.autotune.enabled = autotune
    ds = tf.data.Dataset.range(3000).map(heavy, num_parallel_calls=tf.data.AUTOTUNE if parallel else None)
    ds = ds.batch(8).prefetch(tf.data.AUTOTUNE).with_options(options)
    start = time.perf_counter()
    for _ in ds:
        pass
    return time.perf_counter() - start


if __name__ == "__main__":
    for on in (True, False, True, False):
        print(f"autotune {on}: {seconds(on):.2f} s", flush=True)
    print(f"sequential: {seconds(False, parallel=False):.2f} s")
