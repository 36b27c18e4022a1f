"""Adam with global-norm gradient clipping, and dynamic loss scaling under float16."""

import tensorflow as tf
import tf_keras

from dreamer.agents import distribute


class Optimizer(tf.Module):
  """Minimises one loss over one variable selection (SPEC 5.10)."""

  def __init__(self, name, lr, epsilon=1e-4, clip=100.0, mixed=False):
    super().__init__(name=f'optimizer_{name}')
    self.label = name
    self.lr = lr
    self.clip = clip
    self._mixed = mixed
    opt = tf_keras.optimizers.Adam(lr, epsilon=epsilon)
    if mixed:
      opt = tf_keras.mixed_precision.LossScaleOptimizer(opt)
    self.opt = opt

  def scale(self, loss):
    """Call inside the gradient tape. Under a distribution strategy this also divides
    by the number of replicas, whose gradients `apply_gradients` sums."""
    loss = distribute.per_replica_loss(loss)
    return self.opt.get_scaled_loss(loss) if self._mixed else loss

  def gradients(self, tape, scaled_loss, variables):
    """This replica's unscaled gradients; zeros for variables the loss does not reach.

    Pure math, so that XLA can compile it together with the losses (jit under a strategy).
    """
    grads = tape.gradient(scaled_loss, variables)
    if self._mixed:
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
    inner = self.opt.inner_optimizer if self._mixed else self.opt
    inner.build(list(variables))
