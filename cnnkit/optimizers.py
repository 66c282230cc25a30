"""Adam and AdamW on TensorFlow's fused update kernel.

Keras 3's Adam builds a dozen graph ops per variable and step (the bias-corrected step size,
both moments, the update), and its weight decay runs the learning-rate schedule again for
every variable. For the small CNNs cnnkit trains on a CPU much of a step is then the
optimizer's op overhead, not arithmetic: one traced AdamW `apply` with a one-cycle schedule on
the 63 trainable variables of `backbones.get("resnet20", (32, 32, 3))` has 5 531 ops, the
FusedAdamW one 733 (counted with `len(tf.function(...).get_concrete_function().graph
.get_operations())`, 2026-12-02). `FusedAdam` and `FusedAdamW` compute the step size, the bias corrections and the decay
factor once per step and update each variable with one `ResourceApplyAdam` op: the same
arithmetic (results equal to Keras' to float rounding, tests/test_optimizers.py), fewer ops,
and a shorter first step (the graph is traced faster).

Sparse gradients (embedding rows, `tf.IndexedSlices`: a row once for each of its
occurrences in the batch) are summed into the dense gradient and take the same fused op: Adam
of the gradient, as tf.keras 2 (which summed a repeated row's slices first) and PyTorch compute
it. Keras 3's own update differs there: it squares a repeated row's slices apart (its second
moment gets g1^2 + g2^2, not (g1 + g2)^2), and it rewrites the table and both its moments in a
dozen full-table ops (BENCHMARKS.md, text-cls, thirty-second session).

They fall back to Keras' own update where the fused kernel does not apply: AMSGrad, variables
that are not float32, and training under a distribution strategy (whose per-replica variables
Keras' update handles).

With `sparse_updates=True` a sparse gradient instead updates only the rows it holds, and
only their moments (the "lazy" Adam of `tfa.optimizers.LazyAdam` and `torch.optim.SparseAdam`).
The dense update rewrites the table and both its moments every step, so a step's cost grows
with the vocabulary (or the hash buckets) rather than with the batch. Rows absent from a batch
then keep their moments instead of decaying them and do not move: not Adam, so it is an
option, off by default (under AMSGrad or a distribution strategy Keras' update runs
regardless). Measured in BENCHMARKS.md (text-cls, eleventh session): 50 000 subword buckets
trained SST-5 in 127 s instead of 182 s; the word embedding alone was no faster.
"""
from __future__ import annotations

import keras
import tensorflow as tf


def _plain_context() -> bool:
    """True when no distribution strategy is active (the default strategy, one device)."""
    return not tf.distribute.has_strategy()


class _LearningRateOnce:
    """Decoupled weight decay with the learning rate (the schedule) read once per step.

    Keras multiplies each variable by (1 - lr * weight_decay) and reads `self.learning_rate`,
    which runs the schedule, inside its loop over the variables.
    """

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None or not _plain_context():
            return super()._apply_weight_decay(variables)
        decay = None
        for variable in variables:
            if self._use_weight_decay(variable):
                if decay is None:
                    decay = tf.cast(self.learning_rate, "float32") * tf.cast(self.weight_decay, "float32")
                variable.assign_sub(variable * tf.cast(decay, variable.dtype))


class _FusedAdamUpdate(_LearningRateOnce):
    """The Adam update of every float32 gradient as one `ResourceApplyAdam` op (a sparse one
    summed to dense first); with `sparse_updates`, the rows of a sparse gradient updated alone
    (see the module docstring)."""

    def __init__(self, *args, sparse_updates=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.sparse_updates = bool(sparse_updates)

    def get_config(self):
        return {**super().get_config(), "sparse_updates": self.sparse_updates}

    def _fusable(self, gradient, variable) -> bool:
        return isinstance(gradient, tf.Tensor) and gradient.dtype == tf.float32 and variable.dtype == "float32"

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if self.amsgrad or not _plain_context():
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        lr = tf.cast(learning_rate, "float32")
        step = tf.cast(self.iterations + 1, "float32")
        beta_1 = tf.cast(self.beta_1, "float32")
        beta_2 = tf.cast(self.beta_2, "float32")
        beta_1_power, beta_2_power = tf.pow(beta_1, step), tf.pow(beta_2, step)
        epsilon = tf.cast(self.epsilon, "float32")
        for gradient, variable in zip(grads, trainable_variables):
            index = self._get_variable_index(variable)
            m, v = self._momentums[index], self._velocities[index]
            if self.sparse_updates and isinstance(gradient, tf.IndexedSlices) and variable.dtype == "float32":
                alpha = lr * tf.sqrt(1.0 - beta_2_power) / (1.0 - beta_1_power)
                self._sparse_rows_update(gradient, variable, m, v, alpha, beta_1, beta_2, epsilon)
                continue
            if isinstance(gradient, tf.IndexedSlices) and variable.dtype == "float32":
                # Embedding rows: Adam of the summed (dense) gradient in one fused op, as tf.keras 2
                # (which summed repeated rows first) and PyTorch compute it. Keras 3's own update
                # squares a row's repeated slices apart and rewrites the table in a dozen ops.
                gradient = tf.convert_to_tensor(gradient)
            if not self._fusable(gradient, variable):
                self.update_step(gradient, variable, learning_rate)
                continue
            tf.raw_ops.ResourceApplyAdam(
                var=_handle(variable), m=_handle(m), v=_handle(v), beta1_power=beta_1_power,
                beta2_power=beta_2_power, lr=lr, beta1=beta_1, beta2=beta_2, epsilon=epsilon,
                grad=gradient, use_locking=False,
            )

    def _sparse_rows_update(self, gradient, variable, m, v, alpha, beta_1, beta_2, epsilon):
        """Adam on the rows of `gradient` (a `tf.IndexedSlices` of (n, ...) values) only.

        Repeated indices (a word twice in a batch) are summed first, as the dense gradient
        would hold them. alpha: the bias-corrected step size lr * sqrt(1 - b2^t) / (1 - b1^t).
        """
        rows, position = tf.unique(tf.cast(gradient.indices, "int64"))
        g = tf.math.unsorted_segment_sum(tf.cast(gradient.values, "float32"), position, tf.shape(rows)[0])
        m_rows = beta_1 * tf.gather(m, rows) + (1.0 - beta_1) * g
        v_rows = beta_2 * tf.gather(v, rows) + (1.0 - beta_2) * tf.square(g)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        self.assign_sub(variable, tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + epsilon), rows))


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


@keras.saving.register_keras_serializable(package="cnnkit")
class FusedAdam(_FusedAdamUpdate, keras.optimizers.Adam):
    """`keras.optimizers.Adam` (same arguments and config) on the fused kernel: Keras' results for
    dense gradients, Adam of the summed gradient for sparse ones (see the module docstring)."""


@keras.saving.register_keras_serializable(package="cnnkit")
class FusedAdamW(_FusedAdamUpdate, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` (same arguments and config) on the fused kernel: Keras' results for
    dense gradients, Adam of the summed gradient for sparse ones (see the module docstring)."""


@keras.saving.register_keras_serializable(package="cnnkit")
class SGD(_LearningRateOnce, keras.optimizers.SGD):
    """`keras.optimizers.SGD` whose weight decay reads the learning rate once per step.

    Args:
        bias_lr_scale: multiplies the learning rate (not the weight decay) of biases and batch
            norm shifts (variables named "bias" or "beta"). airbench trains them 64x faster:
            in a network of batch norms without scale they are the only parameters whose
            effective step does not grow as their weights shrink.
        Other arguments: those of `keras.optimizers.SGD`.
    """

    def __init__(self, *args, bias_lr_scale=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.bias_lr_scale = float(bias_lr_scale)
        self._scaled_indices = set()

    def build(self, variables):
        super().build(variables)
        self._scaled_indices = {self._get_variable_index(v) for v in variables
                                if v.path.rsplit("/", 1)[-1] in ("bias", "beta")}

    def update_step(self, gradient, variable, learning_rate):
        if self.bias_lr_scale != 1.0 and self._get_variable_index(variable) in self._scaled_indices:
            learning_rate = learning_rate * self.bias_lr_scale
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "bias_lr_scale": self.bias_lr_scale}


@keras.saving.register_keras_serializable(package="cnnkit")
class RMSprop(_LearningRateOnce, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` whose weight decay reads the learning rate once per step."""
