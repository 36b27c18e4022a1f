"""Output distributions: tanh-normal for continuous actions, one-hot for discrete ones, a
fixed-std normal for images."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions
tfb = tfp.bijectors


class TanhBijector(tfb.Bijector):
  """tanh with a clipped inverse, so log-probabilities of actions at +-1 stay finite."""

  def __init__(self, name='tanh'):
    super().__init__(forward_min_event_ndims=0, is_constant_jacobian=False, name=name)

  def _forward(self, x):
    return tf.tanh(x)

  def _inverse(self, y):
    limit = tf.cast(0.99999997, y.dtype)
    y = tf.where(tf.abs(y) <= 1.0, tf.clip_by_value(y, -limit, limit), y)
    return tf.atanh(y)

  def _forward_log_det_jacobian(self, x):
    log2 = tf.math.log(tf.constant(2.0, x.dtype))
    return 2.0 * (log2 - x - tf.nn.softplus(-2.0 * x))


class SampleDist:
  """Estimates mean, mode and entropy of a distribution from samples (SPEC 4.7)."""

  def __init__(self, dist, samples=100):
    self._dist = dist
    self._samples = samples

  def __getattr__(self, name):
    return getattr(self._dist, name)

  def mean(self):
    return tf.reduce_mean(self._dist.sample(self._samples), 0)

  def mode(self):
    samples = self._dist.sample(self._samples)
    logprob = self._dist.log_prob(samples)
    best = tf.argmax(logprob, 0)
    samples = tf.experimental.numpy.moveaxis(samples, 0, -2)  # [..., samples, A]
    return tf.gather(samples, best, axis=-2, batch_dims=len(best.shape))

  def stddev(self):
    return tf.math.reduce_std(self._dist.sample(self._samples), 0)

  def entropy(self):
    samples = self._dist.sample(self._samples)
    return -tf.reduce_mean(self._dist.log_prob(samples), 0)


class FixedNormal:
  """Normal(mean, std) with a fixed std, independent over the last `ndims` axes.

  The decoder's image distribution: its log-density over a batch of images is one squared
  difference and a sum, about a third of the full-size passes (and their gradients) that
  tfd.Independent(tfd.Normal) makes, with the same value.
  """

  def __init__(self, mean, std, ndims):
    self._mean = mean
    self._std = float(std)
    self._axes = list(range(-ndims, 0))
    self._size = int(np.prod(mean.shape[-ndims:])) if ndims else 1

  def log_prob(self, x):
    squares = tf.reduce_sum(tf.math.squared_difference(x, self._mean), self._axes)
    constant = self._size * (np.log(self._std) + 0.5 * np.log(2 * np.pi))
    return -0.5 / self._std ** 2 * squares - constant

  def mode(self):
    return self._mean

  def mean(self):
    return self._mean


def tanh_normal(mean, std, squash_mean=True):
  """Tanh-transformed diagonal normal; `squash_mean` gives the original's 5 tanh(m / 5)."""
  if squash_mean:
    mean = 5.0 * tf.tanh(mean / 5.0)
  dist = tfd.TransformedDistribution(tfd.Normal(mean, std), TanhBijector())
  return SampleDist(tfd.Independent(dist, 1))


class OneHotDist(tfd.OneHotCategorical):
  """Categorical over one-hot vectors whose samples carry a gradient.

  gradient='straight': sample + (probs - stop_gradient(probs)) (straight-through).
  gradient='dice': sample * exp(logp - stop_gradient(logp)), the original's score estimator.
  """

  def __init__(self, logits, gradient='straight'):
    super().__init__(logits=logits, dtype=tf.float32)
    self._gradient = gradient

  def mode(self):
    return tf.one_hot(tf.argmax(self.logits_parameter(), -1), self.event_shape_tensor()[0])

  def stddev(self):
    probs = self.probs_parameter()
    eye = tf.eye(tf.shape(probs)[-1])
    return tf.norm(eye - probs[..., None, :], axis=-1)

  def sample(self, sample_shape=(), seed=None):
    sample = tf.stop_gradient(super().sample(sample_shape, seed=seed))
    if self._gradient == 'dice':
      logp = self.log_prob(sample)
      return sample * tf.exp(logp - tf.stop_gradient(logp))[..., None]
    probs = self.probs_parameter()
    while len(probs.shape) < len(sample.shape):
      probs = probs[None]
    # probs - sg(probs) is exactly 0, so the sample stays an exact one-hot vector; summed
    # the other way round, (sample + probs) - probs rounds 1 to 0.99999994 for some probs.
    return sample + (probs - tf.stop_gradient(probs))
