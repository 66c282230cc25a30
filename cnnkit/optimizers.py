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

They fall back to Keras' own update where the fused kernel does not apply: sparse gradients
(embedding rows, `tf.IndexedSlices`), AMSGrad, variables that are not float32, and training
under a distribution strategy (whose per-replica variables Keras' update handles).
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
    """The Adam update of every dense float32 gradient as one `ResourceApplyAdam` op."""

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
            if not self._fusable(gradient, variable):
                self.update_step(gradient, variable, learning_rate)
                continue
            index = self._get_variable_index(variable)
            m, v = self._momentums[index], self._velocities[index]
            tf.raw_ops.ResourceApplyAdam(
                var=_handle(variable), m=_handle(m), v=_handle(v), beta1_power=beta_1_power,
                beta2_power=beta_2_power, lr=lr, beta1=beta_1, beta2=beta_2, epsilon=epsilon,
                grad=gradient, use_locking=False,
            )


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


@keras.saving.register_keras_serializable(package="cnnkit")
class FusedAdam(_FusedAdamUpdate, keras.optimizers.Adam):
    """`keras.optimizers.Adam` (same arguments, config and results) on the fused kernel."""


@keras.saving.register_keras_serializable(package="cnnkit")
class FusedAdamW(_FusedAdamUpdate, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` (same arguments, config and results) on the fused kernel."""


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
