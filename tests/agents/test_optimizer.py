"""The optimizer: tf_keras's Adam with one fused kernel per variable, clipping, loss scaling."""

import numpy as np
import tensorflow as tf
import tf_keras

from dreamer.agents import optimizer


def adam_steps(opt, steps=5, seed=0, dtype=np.float32):
  """Weights after `steps` updates of two variables with fixed random gradients."""
  rng = np.random.default_rng(seed)
  variables = [tf.Variable(rng.normal(size=(3, 4)).astype(dtype)),
               tf.Variable(rng.normal(size=(4,)).astype(dtype))]
  grads = [[tf.constant(rng.normal(size=v.shape).astype(dtype) * 10 ** -k)
            for v in variables] for k in range(steps)]  # Smaller and smaller: eps matters.

  @tf.function
  def apply(step_grads):
    opt.apply_gradients(zip(step_grads, variables))

  for step_grads in grads:
    apply(step_grads)
  return [v.numpy() for v in variables], opt


def numpy_adam(weights, grads, lr, epsilon, b1=0.9, b2=0.999):
  """Adam as Kingma and Ba write it, with epsilon outside the square root (their eps-hat)."""
  weights = [w.copy() for w in weights]
  m = [np.zeros_like(w) for w in weights]
  v = [np.zeros_like(w) for w in weights]
  for t, step_grads in enumerate(grads, 1):
    alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    for i, g in enumerate(step_grads):
      m[i] += (g - m[i]) * (1 - b1)
      v[i] += (g * g - v[i]) * (1 - b2)
      weights[i] -= alpha * m[i] / (np.sqrt(v[i]) + epsilon)
  return weights


def test_fused_adam_makes_the_textbook_update_and_that_of_tf_keras_adam():
  rng = np.random.default_rng(0)
  start = [rng.normal(size=(3, 4)), rng.normal(size=(4,))]
  grads = [[rng.normal(size=w.shape) * 10.0 ** -k for w in start] for k in range(5)]
  lr = float(np.float32(1e-2))  # The learning rate is a float32 variable.
  want = numpy_adam(start, grads, lr, 1e-4)
  got, _ = adam_steps(optimizer.FusedAdam(1e-2, epsilon=1e-4), dtype=np.float64)
  for a, b in zip(got, want):
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12)  # Measured: 2e-8 at most.
  # tf_keras's own Python update moved a weight by 7e-6 of a step less in float64 (one
  # step, measured); in float32 the two differ by at most 3e-7 here.
  fused, opt = adam_steps(optimizer.FusedAdam(1e-2, epsilon=1e-4))
  plain, _ = adam_steps(tf_keras.optimizers.Adam(1e-2, epsilon=1e-4))
  for a, b in zip(fused, plain):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
  assert int(opt.iterations.numpy()) == 5
  # One fused kernel per variable, none of the Python update's assignments.
  variables = [tf.Variable(tf.zeros([3, 4])), tf.Variable(tf.zeros([4]))]
  fused = optimizer.FusedAdam(1e-2)
  graph = tf.function(lambda: fused.apply_gradients(zip(
      [tf.ones([3, 4]), tf.ones([4])], variables))).get_concrete_function().graph
  types = [op.type for op in graph.get_operations()]
  assert types.count('ResourceApplyAdam') == 2 and 'AssignSubVariableOp' not in types


def test_fused_adam_keeps_the_slots_and_checkpoint_names_of_tf_keras_adam(tmp_path):
  _, fused = adam_steps(optimizer.FusedAdam(1e-2))
  path = tf.train.Checkpoint(opt=fused).save(str(tmp_path / 'fused'))
  _, plain = adam_steps(tf_keras.optimizers.Adam(1e-2), steps=1, seed=1)
  tf.train.Checkpoint(opt=plain).restore(path).assert_consumed()
  for a, b in zip(fused.variables, plain.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_loss_scaling_skips_a_step_with_inf_gradients_and_halves_the_scale():
  opt = optimizer.Optimizer('model', 1e-2, mixed=True)
  variable = tf.Variable([1.0, 2.0])
  opt.build([variable])
  scale = float(opt.opt.loss_scale)
  opt.apply_gradients([tf.constant([np.inf, 1.0])], [variable])
  np.testing.assert_array_equal(variable.numpy(), [1.0, 2.0])
  assert float(opt.opt.loss_scale) == scale / 2
  opt.apply_gradients([tf.constant([1.0, -1.0])], [variable])
  # tf_keras counts the skipped step as an iteration, so this is Adam's step t = 2:
  # lr sqrt(1 - 0.999^2) / (1 - 0.9^2) * 0.1 / (sqrt(0.001) + 1e-4) = 0.742 lr.
  step = 1e-2 * np.sqrt(1 - 0.999 ** 2) / (1 - 0.9 ** 2) * 0.1 / (np.sqrt(0.001) + 1e-4)
  np.testing.assert_allclose(variable.numpy(), [1.0 - step, 2.0 + step], rtol=1e-5)
