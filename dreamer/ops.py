"""Pure tensor math shared by the models and agents; each function has a reference test."""

import tensorflow as tf


def static_scan(fn, inputs, start, reverse=False):
  """Unrolled scan over the leading axis of every tensor in `inputs` (a nest).

  The time dimension is static (T or H), so a Python loop builds a flat graph that is
  faster than tf.while_loop on accelerators. Returns the stacked nest of outputs.
  """
  flat = tf.nest.flatten(inputs)
  steps = flat[0].shape[0]
  indices = range(steps)
  if reverse:
    indices = reversed(indices)
  # One Unpack per input rather than a slice per step: the gradient is then one Pack,
  # where the slices' gradients were a full-size zero tensor per step, summed.
  unstacked = [tf.unstack(x, steps) for x in flat]
  last = start
  outputs = [None] * steps
  for index in indices:
    last = fn(last, tf.nest.pack_sequence_as(inputs, [x[index] for x in unstacked]))
    outputs[index] = last
  return tf.nest.map_structure(lambda *xs: tf.stack(xs, 0), *outputs)


def lambda_return(reward, value, pcont, bootstrap, lambda_, axis=0):
  """TD(lambda) returns (SPEC 5.6).

  G_k = r_k + g_k ((1 - lambda) next_k + lambda G_{k+1}), with next_k = v_{k+1} and
  next_{K-1} = G_K = bootstrap.

  Args:
    reward, value, pcont: tensors of the same shape with time along `axis`; pcont is the
      per-step discount (gamma, possibly times a predicted continuation).
    bootstrap: value after the last step, shape of one time slice (or None for zeros).
  """
  if axis != 0:
    perm = [axis] + list(range(axis)) + list(range(axis + 1, len(reward.shape)))
    reward, value, pcont = (tf.transpose(x, perm) for x in (reward, value, pcont))
  if bootstrap is None:
    bootstrap = tf.zeros_like(value[-1])
  next_values = tf.concat([value[1:], bootstrap[None]], 0)
  inputs = reward + pcont * next_values * (1 - lambda_)
  returns = static_scan(
      lambda agg, cur: cur[0] + cur[1] * lambda_ * agg, (inputs, pcont), bootstrap,
      reverse=True)
  if axis != 0:
    inverse = list(range(1, axis + 1)) + [0] + list(range(axis + 1, len(reward.shape)))
    returns = tf.transpose(returns, inverse)
  return returns


def discounted_return(reward, pcont, axis=0):
  """R_i = r_i + g_i R_{i+1} with R_K = 0 (the actor objective without a value head)."""
  return lambda_return(reward, tf.zeros_like(reward), pcont, None, 1.0, axis)


def free_nats_kl(kl, free_nats):
  """max(0, KL - free_nats) per element (after summing the latent dims), then the mean."""
  if free_nats is None:
    return tf.reduce_mean(kl)
  return tf.reduce_mean(tf.maximum(0.0, kl - free_nats))


def gaussian_kl(mean1, std1, mean2, std2):
  """KL(N(mean1, std1) || N(mean2, std2)) of diagonal Gaussians, summed over the last axis."""
  var1, var2 = tf.square(std1), tf.square(std2)
  kl = tf.math.log(std2 / std1) + (var1 + tf.square(mean1 - mean2)) / (2 * var2) - 0.5
  return tf.reduce_sum(kl, -1)


def linear_schedule(step, ramp, minimum=0.0):
  """The exploration schedule of SPEC 8.7: ramp 0 -> 1; >0 rises; <0 decays."""
  step = tf.cast(step, tf.float32)
  if ramp == 0:
    value = tf.constant(1.0)
  elif ramp > 0:
    value = tf.minimum(step / ramp, 1.0)
  else:
    value = 1.0 - tf.minimum(step / abs(ramp), 1.0)
  return tf.maximum(float(minimum), value)


def cumulative_discount(pcont):
  """w_i = prod_{j < i} g_j along axis 1 (w_0 = 1), without gradient."""
  ones = tf.ones_like(pcont[:, :1])
  return tf.stop_gradient(tf.math.cumprod(tf.concat([ones, pcont[:, :-1]], 1), 1))
