"""Adam with global-norm gradient clipping, and dynamic loss scaling under float16."""

import tensorflow as tf
import tf_keras

from dreamer.agents import distribute


class FusedAdam(tf_keras.optimizers.Adam):
  """tf_keras's Adam whose update of a variable is one fused kernel (ResourceApplyAdam).

  The same variables, slots and checkpoints, and Adam's arithmetic: m += (g - m)(1 - b1),
  v += (g^2 - v)(1 - b2), w -= m lr sqrt(1 - b2^t) / (1 - b1^t) / (sqrt(v) + eps)
  (tests/agents/test_optimizer.py checks it against numpy). The Python update builds about
  20 ops per variable into every train step's graph (2310 of the smoke config's 6399); the
  fused kernel is one, so the step traces and runs faster.
  """

  def update_step(self, gradient, variable):
    if self.amsgrad or self.adaptive_epsilon or isinstance(gradient, tf.IndexedSlices):
      return super().update_step(gradient, variable)
    dtype = variable.dtype
    step = tf.cast(self.iterations + 1, dtype)
    beta_1 = tf.cast(self.beta_1, dtype)
    beta_2 = tf.cast(self.beta_2, dtype)
    index = self._index_dict[self._var_key(variable)]
    return tf.raw_ops.ResourceApplyAdam(
        var=variable.handle, m=self._momentums[index].handle,
        v=self._velocities[index].handle, beta1_power=tf.pow(beta_1, step),
        beta2_power=tf.pow(beta_2, step), lr=tf.cast(self.learning_rate, dtype),
        beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype), grad=gradient)


class Optimizer(tf.Module):
  """Minimises one loss over one variable selection (SPEC 5.10)."""

  def __init__(self, name, lr, epsilon=1e-4, clip=100.0, mixed=False):
    super().__init__(name=f'optimizer_{name}')
    self.label = name
    self.lr = lr
    self.clip = clip
    self.mixed = mixed
    opt = FusedAdam(lr, epsilon=epsilon)
    if mixed:
      opt = tf_keras.mixed_precision.LossScaleOptimizer(opt)
    self.opt = opt

  def scale(self, loss):
    """Call inside the gradient tape. Under a distribution strategy this also divides
    by the number of replicas, whose gradients `apply_gradients` sums."""
    loss = distribute.per_replica_loss(loss)
    return self.opt.get_scaled_loss(loss) if self.mixed else loss

  def gradients(self, tape, scaled_loss, variables):
    """This replica's unscaled gradients; zeros for variables the loss does not reach.

    Pure math, so that XLA can compile it together with the losses (jit under a strategy).
    """
    grads = tape.gradient(scaled_loss, variables)
    if self.mixed:
      grads = self.opt.get_unscaled_gradients(grads)
    return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]

  def apply_gradients(self, grads, variables):
    """Sums the replicas' gradients, clips and applies them; returns the gradient-norm
    metrics."""
    # Summed over replicas before clipping, so that the norm is the global batch's.
    grads = distribute.sum_gradients(grads)
    norm = tf.linalg.global_norm(grads)
    clipped, _ = tf.clip_by_global_norm(grads, self.clip, use_norm=norm)
    self.opt.apply_gradients(zip(clipped, variables), skip_gradients_aggregation=True)
    return {'grad_norm': norm, 'clipped_gradient_norm': tf.minimum(norm, self.clip)}

  def build(self, variables):
    """Creates the slot variables now, so checkpoints restore them before the first update."""
    inner = self.opt.inner_optimizer if self.mixed else self.opt
    inner.build(list(variables))
