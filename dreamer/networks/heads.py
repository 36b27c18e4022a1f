"""The generic dense head (SPEC 4.5): MLP from features to an output distribution."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from dreamer.networks import distributions
from dreamer.networks import layers

tfd = tfp.distributions


class DenseHead(tf.Module):
  """num_layers x Dense(units, act), then a distribution over `shape`.

  std: a fixed number, or 'learned' (softplus of a second output, shifted so that an
  untrained head starts near `init_std`, plus `min_std`).
  """

  def __init__(self, shape, num_layers, units, act='elu', dist='normal', std=1.0,
               min_std=1e-2, init_std=1.0, mean_act='none', dtype=tf.float32, name=None):
    super().__init__(name=name)
    self._shape = tuple(shape)
    self._dist = dist
    self._std = std
    self._min_std = min_std
    self._init_std = init_std
    self._mean_act = layers.activation(mean_act)
    size = int(np.prod(self._shape)) if self._shape else 1
    with self.name_scope:
      self._hidden = [layers.Dense(units, act, dtype, name=f'h{i}') for i in range(num_layers)]
      self._mean = layers.Dense(size, dtype=dtype, name='mean')
      if std == 'learned':
        self._stddev = layers.Dense(size, dtype=dtype, name='std')

  def __call__(self, features):
    x = features
    for layer in self._hidden:
      x = layer(x)
    mean = tf.cast(self._mean(x), tf.float32)
    if self._mean_act:
      mean = self._mean_act(mean)
    batch_shape = tf.shape(features)[:-1]
    mean = tf.reshape(mean, tf.concat([batch_shape, self._shape], 0))
    if self._std == 'learned':
      raw = tf.reshape(tf.cast(self._stddev(x), tf.float32), tf.shape(mean))
      shift = np.log(np.exp(self._init_std) - 1)
      std = tf.nn.softplus(raw + shift) + self._min_std
    else:
      std = tf.cast(self._std, tf.float32)
    return self._make(mean, std)

  def _make(self, mean, std):
    ndims = len(self._shape)
    if self._dist == 'normal':
      return tfd.Independent(tfd.Normal(mean, std), ndims)
    if self._dist == 'deterministic':
      return tfd.Independent(tfd.Deterministic(mean), ndims)
    if self._dist == 'binary':
      return tfd.Independent(tfd.Bernoulli(logits=mean, dtype=tf.float32), ndims)
    if self._dist == 'tanh_normal':
      return distributions.tanh_normal(mean, std, squash_mean=False)
    if self._dist == 'tanh_normal_tanh':
      return distributions.tanh_normal(mean, std, squash_mean=True)
    if self._dist in ('onehot_score', 'onehot_straight'):
      return distributions.OneHotDist(mean, gradient='straight')
    if self._dist == 'onehot_dice':
      return distributions.OneHotDist(mean, gradient='dice')
    raise ValueError(f'unknown distribution {self._dist!r}')
